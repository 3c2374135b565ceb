package bench

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"framehub/protocol"
)

// The measured subscribers read with the least work a client can do, and
// the same work for the hub and the baselines, so that the benchmark
// measures servers and not its own clients: one 256 KiB buffered reader
// per connection (a 100 KB frame takes one or two read calls), only the
// WebSocket framing and the frame header parsed, the rest skipped in the
// buffer, nothing allocated per frame. The baselines send the hub's bytes
// (see ServeRawTCP), so after the handshake (an HTTP upgrade for the hub,
// a role byte for a baseline) the same reader reads both; only the hub
// sends pings. In credit mode the same acks go to both.

const leanBuffer = 256 << 10

// wsLean reads a subscriber's WebSocket stream: unmasked server frames,
// one frame per message.
type wsLean struct {
	c   net.Conn
	br  *bufio.Reader
	hdr [protocol.HeaderLen]byte
	out []byte // reused for pongs and acks
}

// dialWSLean opens a subscriber WebSocket to addr by hand (the handshake
// is a few lines; a library would add buffers and copies per frame).
func dialWSLean(addr, path string) (*wsLean, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, addr); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, leanBuffer)
	line, err := br.ReadString('\n')
	if err == nil && !strings.HasPrefix(line, "HTTP/1.1 101") {
		err = fmt.Errorf("subscriber handshake: %q", strings.TrimSpace(line))
	}
	for err == nil && line != "\r\n" {
		line, err = br.ReadString('\n')
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return &wsLean{c: c, br: br}, nil
}

// dialRawLean subscribes to a raw-TCP baseline at addr, in credit mode
// with this window if it is not 0.
func dialRawLean(addr string, window int) (*wsLean, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	hello := []byte{rawSubscriber}
	if window > 0 {
		hello = []byte{rawCreditSubscriber, byte(min(window, 255))}
	}
	if _, err := c.Write(hello); err != nil {
		c.Close()
		return nil, err
	}
	return &wsLean{c: c, br: bufio.NewReaderSize(c, leanBuffer)}, nil
}

var errClosed = errors.New("closed by the server")

func (w *wsLean) next() (uint64, int64, int, error) {
	for {
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, 0, 0, err
		}
		op := b[0] & 0x0f
		n := int(b[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(w.br, l[:]); err != nil {
				return 0, 0, 0, err
			}
			n = int(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			if _, err := io.ReadFull(w.br, l[:]); err != nil {
				return 0, 0, 0, err
			}
			n = int(binary.BigEndian.Uint64(l[:]))
		}
		switch op {
		case 0x2: // binary: a frame
			if n < protocol.HeaderLen {
				return 0, 0, 0, fmt.Errorf("a %d-byte message", n)
			}
			if _, err := io.ReadFull(w.br, w.hdr[:]); err != nil {
				return 0, 0, 0, err
			}
			if _, err := w.br.Discard(n - protocol.HeaderLen); err != nil {
				return 0, 0, 0, err
			}
			h, err := protocol.ParseHeader(w.hdr[:])
			if err != nil {
				return 0, 0, 0, err
			}
			return h.Seq, h.CaptureTime, n, nil
		case 0x9: // ping: pong with the same payload
			p := make([]byte, n) // rare: every 10 s
			if _, err := io.ReadFull(w.br, p); err != nil {
				return 0, 0, 0, err
			}
			if err := w.write(0xA, p); err != nil {
				return 0, 0, 0, err
			}
		case 0x8:
			return 0, 0, 0, errClosed
		default: // text or pong: not for us
			if _, err := w.br.Discard(n); err != nil {
				return 0, 0, 0, err
			}
		}
	}
}

// write sends a masked client frame (mask key 0: the payload is unchanged).
func (w *wsLean) write(op byte, payload []byte) error {
	w.out = append(w.out[:0], 0x80|op, 0x80|byte(len(payload)), 0, 0, 0, 0)
	w.out = append(w.out, payload...)
	_, err := w.c.Write(w.out)
	return err
}

// ack sends {"op":"ack","seq":N}.
func (w *wsLean) ack(seq uint64) error {
	var b [40]byte
	p := strconv.AppendUint(append(b[:0], `{"op":"ack","seq":`...), seq, 10)
	return w.write(0x1, append(p, '}'))
}
