package testcam

import "syscall"

// sysProcAttr kills the camera if the thread that started it ends, which
// in practice means the process: no camera outlives a test binary.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
