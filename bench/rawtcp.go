package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"

	"framehub/protocol"
)

// Roles a client of the raw-TCP baseline announces in its first byte.
const (
	rawPublisher  = 'P'
	rawSubscriber = 'S'
)

// ServeRawTCP is the baseline the benchmark measures the hub against: the
// least a fan-out of the same frames can do on this machine. A publisher
// connection sends frames framed by protocol.Writer (the header states each
// body's length); the server keeps the newest in one shared buffer, and one
// goroutine per subscriber writes it whenever a newer one exists. There is
// nothing else: no WebSocket framing, no validation beyond the header, no
// mailbox, no send-buffer tuning, no eviction, so slow readers are limited
// only by what the kernel buffers. It serves until ctx ends.
func ServeRawTCP(ctx context.Context, ln net.Listener) error {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	var latest []byte // shared, never written once published
	var version uint64
	closed := false

	var wg sync.WaitGroup
	var connsMu sync.Mutex
	conns := map[net.Conn]struct{}{}
	go func() {
		<-ctx.Done()
		ln.Close()
		mu.Lock()
		closed = true
		cond.Broadcast()
		mu.Unlock()
		connsMu.Lock()
		for c := range conns {
			c.Close()
		}
		connsMu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		connsMu.Lock()
		conns[c] = struct{}{}
		connsMu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				connsMu.Lock()
				delete(conns, c)
				connsMu.Unlock()
				c.Close()
			}()
			br := bufio.NewReader(c)
			role, err := br.ReadByte()
			if err != nil {
				return
			}
			switch role {
			case rawPublisher:
				r := protocol.NewReader(br, protocol.DefaultLimits)
				for {
					f, err := r.ReadFrame()
					if err != nil {
						return
					}
					msg := protocol.AppendFrame(make([]byte, 0, protocol.FrameLen(&f)), &f)
					mu.Lock()
					latest = msg
					version++
					cond.Broadcast()
					mu.Unlock()
				}
			case rawSubscriber:
				var seen uint64
				for {
					mu.Lock()
					for version == seen && !closed {
						cond.Wait()
					}
					if closed {
						mu.Unlock()
						return
					}
					msg := latest
					seen = version
					mu.Unlock()
					if _, err := c.Write(msg); err != nil {
						return
					}
				}
			}
		}()
	}
}
