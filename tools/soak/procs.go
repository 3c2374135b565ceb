package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// proc is a process the soak runs and watches: its output goes to
// LOGDIR/NAME.log, an exit the soak did not cause is a crash, and a
// process with restart is started again when it exits (an ffmpeg upload,
// which ends with its hub, as a service manager would restart it).
type proc struct {
	name string
	bin  string
	args []string
	env  []string
	// stdin and stdout, when set, join two processes by a pipe (ffmpeg
	// into framehub publish --source -); the soak's copies are closed
	// once the process has started.
	stdin, stdout *os.File
	restart       bool
	// expected reports whether an exit now is the fault's doing (an
	// upload whose hub was killed): counted, not a crash.
	expected func() bool

	s *soak

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	stopping bool // the soak is ending it
	starts   int
	exits    []string
}

// start starts the process (again).
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	log, err := os.OpenFile(filepath.Join(p.s.logDir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if p.stdin != nil {
		cmd.Stdin = p.stdin
	}
	if p.stdout != nil {
		cmd.Stdout = p.stdout
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	for _, f := range []*os.File{p.stdin, p.stdout} {
		if f != nil {
			f.Close() // the child has its own copy
		}
	}
	p.cmd, p.done, p.stopping = cmd, make(chan struct{}), false
	p.starts++
	done := p.done
	go func() {
		err := cmd.Wait()
		log.Close()
		close(done)
		p.exited(cmd, err)
	}()
	return nil
}

// exited records an exit, and restarts the process if it should be.
func (p *proc) exited(cmd *exec.Cmd, err error) {
	p.mu.Lock()
	if p.cmd != cmd || p.stopping {
		p.mu.Unlock()
		return
	}
	why := "exit 0"
	if err != nil {
		why = err.Error()
	}
	expected := p.expected != nil && p.expected()
	p.exits = append(p.exits, fmt.Sprintf("%.0fs: %s", p.s.elapsed(), why))
	restart := p.restart && !p.s.ending()
	p.mu.Unlock()
	if !expected {
		p.s.fail("crash: %s exited (%s) at %.0f s; its log: %s", p.name, why, p.s.elapsed(), filepath.Join(p.s.logDir, p.name+".log"))
	}
	if restart {
		time.Sleep(time.Second)
		if !p.s.ending() {
			if err := p.start(); err != nil {
				p.s.fail("%s: restart: %v", p.name, err)
			}
		}
	}
}

// pid returns the running process's ID, or 0.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	select {
	case <-p.done:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// kill ends the process with sig (its whole process group: ffmpeg children
// too) and waits for it, up to 10 s; the exit is not a crash.
func (p *proc) kill(sig syscall.Signal) {
	p.mu.Lock()
	if p.cmd == nil {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	pid, done := p.cmd.Process.Pid, p.done
	p.mu.Unlock()
	select {
	case <-done:
		return // exited already: its PID may be another process's now
	default:
	}
	_ = syscall.Kill(-pid, sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
}
