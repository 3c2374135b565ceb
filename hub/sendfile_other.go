//go:build !linux

package hub

import "syscall"

// zeroCopySupported is whether this build can send frames with sendfile:
// the memory files it needs are Linux's.
const zeroCopySupported = false

func maxFiles() int64 { return 0 }

func (z *zeroCopy) makeFile(*frame) *frameFile { return nil }

func closeFile(*frameFile) {}

type fileSender struct{}

func newFileSender(syscall.RawConn) *fileSender { return nil }

func (*fileSender) send(*frameFile) error { return syscall.ENOTSUP }
