// Package procstat reads what Linux's /proc says about a process: its CPU
// time, memory, open files and children, and the machine's load. The
// benchmarks, the soak and tests use it to watch the processes they
// started. Elsewhere than on Linux every function fails or finds nothing.
package procstat

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is Linux's USER_HZ, the unit of CPU times in /proc/PID/stat.
const clockTicks = 100

// stat returns the fields of /proc/PID/stat after the command name (the
// state is the first), and the command name.
func stat(pid int) (fields []string, comm string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, "", err
	}
	// pid (comm) state ppid …; the name may hold spaces and parentheses.
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return nil, "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return strings.Fields(s[end+1:]), s[open+1 : end], nil
}

// CPU returns the CPU seconds (user + system) a process has used.
func CPU(pid int) (float64, error) {
	f, _, err := stat(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / clockTicks, nil
}

// Status reads one "kB" field of /proc/PID/status ("VmRSS:", "RssAnon:")
// in bytes.
func Status(pid int, field string) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// RSS returns a process's resident memory in bytes.
func RSS(pid int) (uint64, error) { return Status(pid, "VmRSS:") }

// OpenFiles returns how many file descriptors a process has open.
func OpenFiles(pid int) (int, error) {
	d, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(d), nil
}

// Children returns the running processes whose parent is ppid, and whose
// command name is comm unless comm is empty.
func Children(ppid int, comm string) []int {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := strconv.Itoa(ppid)
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		f, name, err := stat(pid)
		if err != nil || len(f) < 2 || f[1] != want || f[0] == "Z" || (comm != "" && name != comm) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// Alive reports whether process pid runs: it exists and is not a zombie
// waiting to be reaped.
func Alive(pid int) bool {
	f, _, err := stat(pid)
	return err == nil && len(f) > 0 && f[0] != "Z"
}

// LoadAvg returns the machine's 1-minute load average, or 0 if unknown.
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
