package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testSoak(t *testing.T) *soak {
	s := newSoak(time.Minute, t.TempDir())
	s.logDir = t.TempDir()
	s.start = time.Now()
	return s
}

func (s *soak) failureList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.failures...)
}

// TestProcCrash: a process that exits on its own is a crash; one the soak
// stops is not.
func TestProcCrash(t *testing.T) {
	s := testSoak(t)
	crasher := &proc{name: "crasher", bin: "/bin/sh", args: []string{"-c", "echo dying; exit 3"}}
	stopped := &proc{name: "stopped", bin: "/bin/sleep", args: []string{"60"}}
	for _, p := range []*proc{crasher, stopped} {
		if err := s.add(p); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the crash counted", func() bool { return len(s.failureList()) == 1 })
	stopped.kill(syscall.SIGTERM)
	if stopped.pid() != 0 {
		t.Fatal("the stopped process still runs")
	}
	time.Sleep(50 * time.Millisecond) // an exit handler that would wrongly count it has run by now
	f := s.failureList()
	if len(f) != 1 || !strings.HasPrefix(f[0], "crash: crasher exited (exit status 3)") {
		t.Fatalf("failures %q; want the crasher's alone", f)
	}
}

// TestProcRestart: a process with restart is started again after it
// exits; its exit is no crash while expected says so, and a crash once
// it does not.
func TestProcRestart(t *testing.T) {
	s := testSoak(t)
	expected := true
	p := &proc{name: "upload", bin: "/bin/sh", args: []string{"-c", "exit 1"}, restart: true,
		expected: func() bool { return expected }}
	if err := s.add(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ended.Store(true); p.kill(syscall.SIGKILL) })
	starts := func() int { p.mu.Lock(); defer p.mu.Unlock(); return p.starts }
	eventually(t, "a restart", func() bool { return starts() >= 2 })
	if f := s.failureList(); len(f) != 0 {
		t.Fatalf("expected exits counted as crashes: %q", f)
	}
	p.mu.Lock()
	expected = false
	p.mu.Unlock()
	eventually(t, "the unexpected exit counted", func() bool { return len(s.failureList()) > 0 })
}
