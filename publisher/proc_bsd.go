//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package publisher

import "syscall"

// childProcAttr puts a decoder child (ffmpeg) in a process group of its
// own, so that killGroup ends it with anything it started. These systems
// have no parent-death signal: a publisher killed with SIGKILL leaves
// ffmpeg running until it next writes to the closed pipe.
func childProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills the process group a child started with childProcAttr
// leads.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
