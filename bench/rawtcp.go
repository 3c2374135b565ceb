package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"framehub/protocol"
)

// Roles a client of a raw-TCP baseline announces in its first byte. A
// credit subscriber's role byte is followed by its window (1 to 255).
const (
	rawPublisher        = 'P'
	rawSubscriber       = 'S'
	rawCreditSubscriber = 'C'
)

// RawConfig chooses how a raw-TCP baseline sends.
type RawConfig struct {
	// Sendfile sends each frame from a memory file with sendfile(2), as
	// the hub's zero-copy fan-out does (Linux only); otherwise each
	// subscriber's frames go out with write(2).
	Sendfile bool
	// SendBuffer is the SO_SNDBUF asked for on subscriber sockets, as the
	// hub's --send-buffer; 0 or less leaves the kernel's default.
	SendBuffer int
}

// ServeRawTCP is a baseline the benchmark measures the hub against: the
// strongest simple fan-out of the same frames, so that the hub is compared
// with the least this machine can do for the same work, not with a strawman.
//
// A publisher connection sends frames framed by protocol.Writer (the header
// states each body's length). Each is read into one buffer whose first
// bytes are the WebSocket header the hub would send it with, so that every
// subscriber receives, byte for byte, what a hub subscriber receives and
// the benchmark reads both with the same client. The newest frame is an
// atomic pointer; a new frame closes a channel that every idle writer
// waits on, and puts a fresh one in its place: one wake-up per writer, no
// lock shared by the writers. One goroutine per subscriber sends the
// newest frame whenever it differs from the last one it sent, with one
// write(2) of the buffer, or (Sendfile) with sendfile(2) from a memory file
// the publisher's goroutine wrote the frame to once. Subscriber sockets get
// the hub's send buffer size. A credit subscriber (role 'C' and its window)
// also gets a reader goroutine that returns a token per ack, and its writer
// sends the newest frame only with a token. Nothing else: no validation
// beyond the header, no pings, no eviction; a slow reader without credit
// is limited only by what the kernel buffers. It serves until ctx ends.
func ServeRawTCP(ctx context.Context, ln net.Listener, cfg RawConfig) error {
	if cfg.Sendfile && !rawSendfileSupported {
		return errors.New("the sendfile baseline needs Linux (memfd_create and sendfile)")
	}
	var (
		latest atomic.Pointer[rawFrame]
		wake   atomic.Pointer[chan struct{}] // closed when latest changes or the server stops
		done   atomic.Bool
	)
	first := make(chan struct{})
	wake.Store(&first)
	// announce wakes every writer waiting for a change.
	announce := func() {
		next := make(chan struct{})
		close(*wake.Swap(&next))
	}

	var wg sync.WaitGroup
	var connsMu sync.Mutex
	conns := map[net.Conn]struct{}{}
	go func() {
		<-ctx.Done()
		ln.Close()
		done.Store(true)
		announce()
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
			var role [1]byte
			if _, err := io.ReadFull(c, role[:]); err != nil {
				return
			}
			switch role[0] {
			case rawPublisher:
				for {
					f, err := readRawFrame(c, cfg.Sendfile)
					if err != nil {
						return
					}
					latest.Store(f)
					announce()
				}
			case rawSubscriber, rawCreditSubscriber:
				if cfg.SendBuffer > 0 {
					if tc, ok := c.(*net.TCPConn); ok {
						_ = tc.SetWriteBuffer(cfg.SendBuffer)
					}
				}
				send, err := rawSender(c, cfg.Sendfile)
				if err != nil {
					return
				}
				// In credit mode a frame is sent only with a token; the
				// subscriber's reader returns one per ack.
				var tokens chan struct{}
				if role[0] == rawCreditSubscriber {
					var window [1]byte
					if _, err := io.ReadFull(c, window[:]); err != nil || window[0] == 0 {
						return
					}
					tokens = make(chan struct{}, window[0])
					for range window[0] {
						tokens <- struct{}{}
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						readAcks(c, tokens)
					}()
				}
				var sent *rawFrame
				for {
					w := *wake.Load() // before latest: a frame stored after this load closes w
					f := latest.Load()
					for f == sent && !done.Load() {
						<-w
						w = *wake.Load()
						f = latest.Load()
					}
					// With credit, the frame waits for a token; the newest
					// frame then goes, so one wake-up per frame for a
					// reader that keeps up, as without credit.
					if tokens != nil {
						<-tokens
						f = latest.Load()
					}
					if done.Load() || send(f) != nil {
						return
					}
					sent = f
				}
			}
		}()
	}
}

// readAcks reads a credit subscriber's acks, masked WebSocket text frames
// {"op":"ack","seq":N} as a hub subscriber sends them, and returns a token
// for each, until the connection ends; then it closes tokens so that the
// writer, if it waits for one, stops.
func readAcks(c net.Conn, tokens chan struct{}) {
	defer close(tokens)
	br := bufio.NewReaderSize(c, 256)
	var msg [125]byte
	for {
		var h [6]byte // FIN and opcode, mask bit and length (< 126), mask key
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		n := int(h[1] & 0x7f)
		if h[1]&0x80 == 0 || n >= 126 {
			return // not a client's short control message
		}
		if _, err := io.ReadFull(br, msg[:n]); err != nil {
			return
		}
		for i := range n {
			msg[i] ^= h[2+i%4]
		}
		if _, ok := parseAck(msg[:n]); ok {
			select {
			case tokens <- struct{}{}:
			default: // more acks than frames sent: ignored
			}
		}
	}
}

// parseAck reads the sequence number of {"op":"ack","seq":N}.
func parseAck(b []byte) (uint64, bool) {
	const prefix = `{"op":"ack","seq":`
	if len(b) < len(prefix)+2 || string(b[:len(prefix)]) != prefix || b[len(b)-1] != '}' {
		return 0, false
	}
	var v uint64
	for _, d := range b[len(prefix) : len(b)-1] {
		if d < '0' || d > '9' || v > (1<<64-1-uint64(d-'0'))/10 {
			return 0, false
		}
		v = v*10 + uint64(d-'0')
	}
	return v, true
}

// rawFrame is one frame as the baselines send it.
type rawFrame struct {
	wire []byte   // the WebSocket header, then the frame as published
	file *memFile // wire in a memory file, for the sendfile baseline
}

// readRawFrame reads one protocol-framed message into a buffer that has
// the WebSocket header of an unmasked, final binary message in front of
// it, as the hub sends it (RFC 6455 §5.2), and with file also into a
// memory file.
func readRawFrame(r io.Reader, file bool) (*rawFrame, error) {
	var hdr [protocol.HeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	h, err := protocol.ParseHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	if total := uint64(h.HeaderLen) + h.BodyLen(); total > uint64(protocol.DefaultLimits.MaxFrameBytes) {
		return nil, fmt.Errorf("a %d-byte frame", total)
	}
	n := int(h.HeaderLen) + int(h.BodyLen())
	var ws [10]byte
	ws[0] = 0x80 | 0x2 // FIN, binary
	k := 2
	switch {
	case n < 126:
		ws[1] = byte(n)
	case n <= 0xFFFF:
		ws[1] = 126
		binary.BigEndian.PutUint16(ws[2:], uint16(n))
		k = 4
	default:
		ws[1] = 127
		binary.BigEndian.PutUint64(ws[2:], uint64(n))
		k = 10
	}
	wire := make([]byte, k+n)
	copy(wire, ws[:k])
	copy(wire[k:], hdr[:])
	if _, err := io.ReadFull(r, wire[k+protocol.HeaderLen:]); err != nil {
		return nil, err
	}
	f := &rawFrame{wire: wire}
	if file {
		if f.file, err = newMemFile(f, wire); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// rawSender returns how a baseline sends a frame to c.
func rawSender(c net.Conn, file bool) (func(*rawFrame) error, error) {
	if !file {
		return func(f *rawFrame) error { _, err := c.Write(f.wire); return err }, nil
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil, errors.New("sendfile needs a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return newFileWriter(rc).send, nil
}
