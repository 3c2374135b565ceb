//go:build !linux

package testcam

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
