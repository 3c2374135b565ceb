package procstat

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pid := os.Getpid()
	if cpu, err := CPU(pid); err != nil || cpu < 0 {
		t.Fatalf("CPU = %v, %v", cpu, err)
	}
	if rss, err := RSS(pid); err != nil || rss < 1<<20 {
		t.Fatalf("RSS = %d, %v; want at least 1 MiB for a Go test binary", rss, err)
	}
	if n, err := OpenFiles(pid); err != nil || n < 3 {
		t.Fatalf("OpenFiles = %d, %v; want stdin, stdout and stderr at least", n, err)
	}
	if _, err := CPU(1 << 30); err == nil {
		t.Fatal("CPU of a missing PID succeeded")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	kids := Children(pid, "sleep")
	if len(kids) != 1 || kids[0] != cmd.Process.Pid || !Alive(kids[0]) {
		t.Fatalf("Children = %v; want [%d], alive", kids, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for Alive(cmd.Process.Pid) && time.Now().Before(deadline) { // a zombie until waited for: not alive
		time.Sleep(10 * time.Millisecond)
	}
	if Alive(cmd.Process.Pid) {
		t.Fatal("a killed process is alive")
	}
	cmd.Wait()
	if LoadAvg() < 0 {
		t.Fatal("negative load")
	}
}
