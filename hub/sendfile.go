package hub

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// zeroCopyMaxFiles caps the memory files in existence (each is a file
// descriptor; see maxFiles).
const zeroCopyMaxFiles = 1024

// ZeroCopyMinSubscribers is how many subscribers a frame must be published
// to before it goes out by sendfile from a memory file: making the file
// costs one copy of the frame, which pays from the second subscriber on.
const ZeroCopyMinSubscribers = 2

// zeroCopy is the hub's sendfile path (zerocopy_linux.go) and its budget.
type zeroCopy struct {
	log      *slog.Logger
	maxBytes int64
	maxFiles int64
	off      atomic.Bool // disabled by config, or by the kernel's refusal
	files    atomic.Int64
	bytes    atomic.Int64
	offOnce  sync.Once
	sent     atomic.Uint64 // frames sent by sendfile
}

func newZeroCopy(cfg *Config, log *slog.Logger) *zeroCopy {
	z := &zeroCopy{log: log, maxBytes: 64 << 20, maxFiles: maxFiles()}
	if cfg.MaxMemory > 0 {
		z.maxBytes = min(z.maxBytes, cfg.MaxMemory/4)
	}
	z.off.Store(cfg.NoZeroCopy || !zeroCopySupported)
	return z
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

// file returns f's memory file, made on the first call, or nil when f goes
// out with plain writes.
func (z *zeroCopy) file(f *frame) *frameFile {
	f.fileOnce.Do(func() { f.file = z.makeFile(f) })
	return f.file
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
