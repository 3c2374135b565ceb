package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"framehub/internal/procstat"
)

// procCPU returns the CPU seconds (user + system) a process has used.
func procCPU(pid int) (float64, error) { return procstat.CPU(pid) }

// procRSS returns a process's resident memory in bytes.
func procRSS(pid int) (uint64, error) { return procstat.RSS(pid) }

// procAnon returns the part of a process's resident memory that is its
// own (heap, stacks), without the file-backed pages of its binary and
// shared libraries: framehub's cgo build maps OpenCV's, about 70 MB
// resident, which a static build's hub does not have.
func procAnon(pid int) (uint64, error) { return procstat.Status(pid, "RssAnon:") }

// loadAvg returns the machine's 1-minute load average, or 0 if unknown.
func loadAvg() float64 { return procstat.LoadAvg() }

// childPIDs returns the running children of a process.
func childPIDs(pid int) []int { return procstat.Children(pid, "") }

// selfCPU returns this process's CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// child is a server the benchmark started as a separate process, so that
// its CPU and memory can be read from /proc apart from the load
// generator's.
type child struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{} // closed when the process has been waited for
	err    error         // its exit status, once exited is closed
}

// startChild runs bin with args and waits for it to print, on stderr or
// stdout, a JSON log line with an "addr" field whose "msg" is want.
func startChild(ctx context.Context, bin string, args []string, want string) (*child, error) {
	cmd := exec.Command(bin, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
		pw.Close()
	}()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if !sent && json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == want && line.Addr != "" {
				found <- line.Addr
				sent = true
			}
		}
		io.Copy(io.Discard, pr) // keep draining so the child never blocks on its output
	}()
	select {
	case c.addr = <-found:
		return c, nil
	case <-c.exited:
		return nil, fmt.Errorf("%s exited before listening: %v", bin, c.err)
	case <-time.After(15 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s did not report its address within 15 s", bin)
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the child to finish (SIGTERM) and kills it if it has not
// within 10 s. Only this child is signalled, by its PID.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// cpuTimes is one CPU's line of /proc/stat in clock ticks: busy (user,
// nice, system, irq, softirq, steal) and total. Busy counts softirq,
// where much of loopback TCP's receive work is done and which no
// process's own CPU time includes.
type cpuTimes struct{ busy, total uint64 }

// readCPUTimes returns /proc/stat's per-CPU times, by CPU number.
func readCPUTimes() (map[int]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	out := map[int]cpuTimes{}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var v [8]uint64 // user nice system idle iowait irq softirq steal
		for i := range v {
			v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
		}
		busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
		out[n] = cpuTimes{busy: busy, total: busy + v[3] + v[4]}
	}
	return out, nil
}

// busyShare returns how busy the CPUs in cpus were between two readings,
// as a fraction of their time (1 = all of them all the time).
func busyShare(before, after map[int]cpuTimes, cpus []int) float64 {
	var busy, total uint64
	for _, c := range cpus {
		b, a := before[c], after[c]
		busy += a.busy - b.busy
		total += a.total - b.total
	}
	if total == 0 {
		return 0
	}
	return float64(busy) / float64(total)
}
