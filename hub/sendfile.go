package hub

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// Zero-copy fan-out, the last step of a frame's path. Writing a frame to a
// socket copies it into the kernel once per subscriber, and that copy is
// most of what fan-out costs. Instead, a frame going to several plain-TCP
// subscribers is put once in an anonymous memory file, and each
// subscriber's socket is fed from it with sendfile(2): the kernel then
// queues references to the file's pages rather than copies of the bytes
// (Linux: sendfile_linux.go; elsewhere frames go out with plain writes).
//
// Ownership. A memory file is closed by reference count, never by the
// garbage collector: the frame holds one reference from the file's making
// until the channel lets go of the frame (Hub.retire), and each send holds
// one from before its first sendfile until its last, so no file can be
// closed, and its descriptor number reused, in the middle of a send. A
// send that starts once the frame is retired gets no file and writes the
// frame from memory. The file is never written again once made, so pages a
// socket still holds always carry this frame.
//
// Budget. The files in existence, and their bytes, are capped
// (zeroCopyMaxFiles, or an eighth of the descriptors the process may open;
// and a quarter of the memory budget): past either cap, or if the kernel
// refuses to make them, frames go out with plain writes.

// zeroCopyMaxFiles caps the memory files in existence (each is a file
// descriptor; see maxFiles).
const zeroCopyMaxFiles = 1024

// ZeroCopyMinSubscribers is how many subscribers a frame must be published
// to before it goes out by sendfile from a memory file: making the file
// costs one copy of the frame, which pays from the second subscriber on.
const ZeroCopyMinSubscribers = 2

// zeroCopy is the hub's sendfile path and its budget. Safe for concurrent
// use.
type zeroCopy struct {
	// Static after construction.
	log      *slog.Logger
	maxBytes int64
	maxFiles int64

	off     atomic.Bool // disabled by config, or by the kernel's refusal
	files   atomic.Int64
	bytes   atomic.Int64
	offOnce sync.Once
	sent    atomic.Uint64 // frames sent by sendfile
}

func newZeroCopy(cfg *Config, log *slog.Logger) *zeroCopy {
	z := &zeroCopy{log: log, maxBytes: 64 << 20, maxFiles: maxFiles()}
	if cfg.MaxMemory > 0 {
		z.maxBytes = min(z.maxBytes, cfg.MaxMemory/4)
	}
	z.off.Store(cfg.NoZeroCopy || !zeroCopySupported)
	return z
}

// frameFile is a frame's wire bytes in a memory file.
type frameFile struct {
	fd   int
	size int64
	refs atomic.Int64 // the frame's own, until it is retired, and one per send under way
}

// ref takes a reference for a send, unless the last one is gone (the file
// is closed or closing).
func (ff *frameFile) ref() bool {
	for {
		n := ff.refs.Load()
		if n <= 0 {
			return false
		}
		if ff.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// unref gives a reference back; the last one closes the file.
func (z *zeroCopy) unref(ff *frameFile) {
	if ff.refs.Add(-1) == 0 {
		closeFile(ff)
		z.unreserve(ff.size)
	}
}

// acquire returns f's memory file with a reference taken for one send,
// making the file on the first call, or nil when f goes out with plain
// writes (zero copy off, over a cap, or f retired). The caller gives the
// reference back with unref once its send has ended.
func (z *zeroCopy) acquire(f *frame) *frameFile {
	ff := f.file.Load()
	if ff == nil {
		f.fileMu.Lock()
		if !f.fileTried && !f.retired {
			f.fileTried = true
			if made := z.makeFile(f); made != nil {
				made.refs.Store(1) // the frame's
				f.file.Store(made)
			}
		}
		ff = f.file.Load()
		f.fileMu.Unlock()
		if ff == nil {
			return nil
		}
	}
	if !ff.ref() {
		return nil
	}
	return ff
}

// retire drops f's own reference to its memory file, once: the file is
// closed as soon as no send uses it, and no file is made for f from now on.
func (z *zeroCopy) retire(f *frame) {
	f.fileMu.Lock()
	already := f.retired
	f.retired = true
	ff := f.file.Load()
	f.fileMu.Unlock()
	if ff != nil && !already {
		z.unref(ff)
	}
}

// reserve counts a file of n bytes, if both caps allow it.
func (z *zeroCopy) reserve(n int64) bool {
	files, bytes := z.files.Add(1), z.bytes.Add(n)
	if files > z.maxFiles || bytes > z.maxBytes {
		z.unreserve(n)
		return false
	}
	return true
}

// unreserve gives back what reserve counted.
func (z *zeroCopy) unreserve(n int64) {
	z.files.Add(-1)
	z.bytes.Add(-n)
}

// disable turns the sendfile path off for good, logging why once.
func (z *zeroCopy) disable(err error) {
	z.off.Store(true)
	z.offOnce.Do(func() {
		z.log.Warn("zero-copy fan-out is off: frames go out with plain writes", "error", err.Error())
	})
}

// rawConn returns the socket of a plain-TCP connection for sendfile, or
// nil for TLS (encrypted in Go) and anything else.
func rawConn(nc net.Conn) syscall.RawConn {
	if !zeroCopySupported {
		return nil
	}
	if l, ok := nc.(*limitedConn); ok {
		nc = l.Conn
	}
	tc, plain := nc.(*net.TCPConn)
	if !plain {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
