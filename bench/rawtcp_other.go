//go:build !linux

package bench

import (
	"errors"
	"syscall"
)

// rawSendfileSupported is whether this build has the sendfile baseline:
// its memory files are Linux's.
const rawSendfileSupported = false

type memFile struct{}

func newMemFile(*rawFrame, []byte) (*memFile, error) { return nil, errors.ErrUnsupported }

type fileWriter struct{}

func newFileWriter(syscall.RawConn) *fileWriter { return &fileWriter{} }

func (*fileWriter) send(*rawFrame) error { return errors.ErrUnsupported }
