package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Pinning keeps the server and the load generator off each other's cores,
// so the server's CPU per GB is not inflated by a load generator competing
// for the same core, and a run the load generator cannot keep up with
// shows as the load generator's core at 100 % rather than as the server
// looking slow. The CPUs this process may use are split in two: the first
// half (at least one) for the server, the rest for the load generator.
// It uses taskset(1) (util-linux), the tool a person would use, so what
// the report says can be reproduced by hand.
type pinning struct {
	server, load []int
}

// planPin splits the CPUs this process may run on.
func planPin() (*pinning, error) {
	if _, err := exec.LookPath("taskset"); err != nil {
		return nil, fmt.Errorf("--pin needs taskset (apt-get install util-linux): %w", err)
	}
	cpus, err := allowedCPUs()
	if err != nil {
		return nil, err
	}
	if len(cpus) < 2 {
		return nil, fmt.Errorf("--pin needs at least 2 CPUs; this process may use %s", cpuList(cpus))
	}
	n := max(1, len(cpus)/2)
	return &pinning{server: cpus[:n], load: cpus[n:]}, nil
}

// allowedCPUs returns the CPUs this process may run on, from
// /proc/self/status (Cpus_allowed_list, e.g. "0-3,6").
func allowedCPUs() ([]int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("pinning needs Linux's /proc: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return parseCPUList(v)
		}
	}
	return nil, errors.New("no Cpus_allowed_list in /proc/self/status")
}

// parseCPUList reads a CPU list such as "0-3,6".
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("CPU list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// wrap returns argv run on the server's CPUs.
func (p *pinning) wrap(argv []string) []string {
	return append([]string{"taskset", "-c", cpuList(p.server)}, argv...)
}

// pinSelf moves every thread of this process onto the load generator's
// CPUs (threads started later inherit it) and sizes GOMAXPROCS to them.
func (p *pinning) pinSelf() error {
	out, err := exec.Command("taskset", "-a", "-c", "-p", cpuList(p.load), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pin the load generator with taskset: %v: %s", err, strings.TrimSpace(string(out)))
	}
	runtime.GOMAXPROCS(len(p.load))
	return nil
}

func (p *pinning) String() string {
	return fmt.Sprintf("server on CPU %s, load generator on CPU %s (taskset)", cpuList(p.server), cpuList(p.load))
}
