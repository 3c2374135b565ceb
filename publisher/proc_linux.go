package publisher

import "syscall"

// childProcAttr puts a decoder child (ffmpeg) in a process group of its
// own, so that killGroup ends it with anything it started, and has the
// kernel kill it if the publisher dies without doing so (SIGKILL, a
// crash): no decoder outlives its publisher.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group a child started with childProcAttr
// leads.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
