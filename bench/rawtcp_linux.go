//go:build linux

package bench

import (
	"io"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawSendfileSupported is whether this build has the sendfile baseline.
const rawSendfileSupported = true

// memFile is a frame's wire bytes in an anonymous memory file, closed
// once its frame is garbage: writers hold the frame while they send from
// the file, so no sendfile outlives it.
type memFile struct {
	fd   int
	size int64
}

// newMemFile writes wire to a new memory file tied to f's lifetime.
func newMemFile(f *rawFrame, wire []byte) (*memFile, error) {
	fd, err := unix.MemfdCreate("bench-frame", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	for b := wire; len(b) > 0; {
		k, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil || k == 0 {
			unix.Close(fd)
			return nil, errOr(err, io.ErrShortWrite)
		}
		b = b[k:]
	}
	m := &memFile{fd: fd, size: int64(len(wire))}
	runtime.AddCleanup(f, func(fd int) { unix.Close(fd) }, fd)
	return m, nil
}

func errOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// fileWriter sends memory files to one socket with sendfile(2), waiting
// for room in the send buffer through the runtime's poller as a Write
// does; the whole frame goes out in one RawConn.Write call.
type fileWriter struct {
	rc  syscall.RawConn
	f   *memFile
	off int64
	err error
	fn  func(fd uintptr) bool // w.try, bound once so that sending allocates nothing
}

func newFileWriter(rc syscall.RawConn) *fileWriter {
	w := &fileWriter{rc: rc}
	w.fn = w.try
	return w
}

func (w *fileWriter) try(fd uintptr) bool {
	for w.off < w.f.size {
		before := w.off
		_, err := unix.Sendfile(int(fd), w.f.fd, &w.off, int(w.f.size-w.off))
		switch {
		case err == unix.EAGAIN:
			return false
		case err == unix.EINTR:
		case err != nil:
			w.err = err
			return true
		case w.off == before:
			w.err = io.ErrUnexpectedEOF
			return true
		}
	}
	return true
}

func (w *fileWriter) send(f *rawFrame) error {
	w.f, w.off, w.err = f.file, 0, nil
	err := w.rc.Write(w.fn)
	w.f = nil
	if err != nil {
		return err
	}
	return w.err
}
