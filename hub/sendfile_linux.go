//go:build linux

package hub

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// zeroCopySupported is whether this build can send frames with sendfile.
const zeroCopySupported = true

// maxFiles is how many memory files may exist at once: zeroCopyMaxFiles,
// or an eighth of the file descriptors the process may open if that is
// less, so that frames never take the descriptors connections need.
func maxFiles() int64 {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	return min(zeroCopyMaxFiles, int64(rl.Cur/8))
}

// makeFile puts f's wire bytes in a memory file (memfd_create), or returns
// nil. The caller sets its references.
func (z *zeroCopy) makeFile(f *frame) *frameFile {
	if z.off.Load() {
		return nil
	}
	n := int64(len(f.wire))
	if !z.reserve(n) {
		return nil
	}
	fd, err := unix.MemfdCreate("framehub-frame", unix.MFD_CLOEXEC)
	if err != nil {
		z.unreserve(n)
		if err != unix.EMFILE && err != unix.ENFILE && err != unix.ENOMEM {
			z.disable(err) // not for a passing shortage: the kernel cannot
		}
		return nil
	}
	for b := f.wire; len(b) > 0; {
		k, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil || k == 0 {
			unix.Close(fd)
			z.unreserve(n)
			if err != unix.ENOMEM && err != unix.ENOSPC { // as for memfd_create: a shortage passes
				z.disable(errors.Join(err, io.ErrShortWrite))
			}
			return nil
		}
		b = b[k:]
	}
	return &frameFile{fd: fd, size: n}
}

// closeFile closes a memory file whose last reference is gone.
func closeFile(ff *frameFile) { unix.Close(ff.fd) }

// fileSender sends memory files to one socket. It is made once per
// subscriber, so that sending allocates nothing (a closure passed to
// RawConn.Write would be allocated per call).
type fileSender struct {
	rc  syscall.RawConn
	ff  *frameFile
	off int64
	err error
	fn  func(fd uintptr) bool // s.try, bound once
	// For tests, read once the writer is done: RawConn.Write calls (one
	// per frame) and sendfile calls that moved bytes.
	calls, pieces int
}

func newFileSender(rc syscall.RawConn) *fileSender {
	s := &fileSender{rc: rc}
	s.fn = s.try
	return s
}

// try sends what is left of the file; false asks RawConn.Write to wait for
// room in the send buffer. It returns true only when the frame is out or
// has failed, so that one RawConn.Write call, which holds the socket's
// write lock throughout, sends the whole frame. Only the subscriber's
// writer writes to the socket (see wsConn), so nothing else should try;
// the one write from elsewhere, gorilla's own close frame on a protocol
// error, waits for the frame's end instead of landing inside it.
func (s *fileSender) try(fd uintptr) bool {
	for s.off < s.ff.size {
		before := s.off
		_, err := unix.Sendfile(int(fd), s.ff.fd, &s.off, int(s.ff.size-s.off))
		switch {
		case err == unix.EAGAIN:
			return false
		case err == unix.EINTR:
		case err != nil:
			s.err = err
			return true
		case s.off == before:
			s.err = io.ErrUnexpectedEOF // the file ended early: never, as nobody writes it again
			return true
		default:
			s.pieces++
		}
	}
	return true
}

// send writes ff to the socket, waiting for room in its send buffer the
// way net.Conn.Write does. The caller holds a reference to ff throughout.
func (s *fileSender) send(ff *frameFile) error {
	s.ff, s.off, s.err = ff, 0, nil
	defer func() { s.ff = nil }() // the frame may go
	s.calls++
	if err := s.rc.Write(s.fn); err != nil {
		return err
	}
	return s.err
}
