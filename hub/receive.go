package hub

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/ratelimit"
	"framehub/protocol"
)

// The first steps of a frame's path through the hub: a publisher's reader
// reads each message into one buffer charged to the memory budget
// (readMessage), applies the frame-rate cap, turns it into a frame or
// refuses it (acceptFrame), and publishes it (publish.go). Uploads
// (ingest.go) and frames from the bus (bus.go) meet the same checks.

// frameRateCap returns the token bucket that caps a publisher at rate
// frames per second, with bursts of a quarter second's worth (at least 4).
func frameRateCap(rate float64) ratelimit.Bucket {
	return ratelimit.NewBucket(rate, max(rate/4, 4))
}

// readFrames reads and publishes frames until the connection ends. It
// returns the frames published, those dropped over the rate cap, and how
// it ended.
func (h *Hub) readFrames(p *publisher) (n, dropped uint64, end ending) {
	h.keepAlive(p.wsConn)
	rateCap := frameRateCap(h.cfg.MaxFPSPerPublisher)
	for {
		typ, r, err := p.ws.NextReader()
		if err != nil {
			h.readFailure(p.wsConn, err)
			return n, dropped, p.endedBy(err)
		}
		h.retire(p.ch.retirePrev())
		now := time.Now()
		_ = p.ws.SetReadDeadline(now.Add(h.cfg.PongWait))
		if typ == websocket.TextMessage {
			if end, ok := h.receiveText(p, r); !ok {
				return n, dropped, end
			}
			continue
		}
		if typ != websocket.BinaryMessage {
			return n, dropped, h.refuseConn(p.wsConn, reasonMessageType, "publishers send binary frames")
		}
		buf, err := h.readMessage(r)
		if buf != nil && !p.rend.allowRate(&rateCap, buf, time.Now()) {
			// Over the cap: read (the stream must go on) but not relayed.
			// A main frame's renditions go with it (rendition.go).
			h.mem.release(int64(cap(buf)))
			h.dropped(p.ch, p.remote, "")
			dropped++
			continue
		}
		f, end := h.acceptFrame(p.wsConn, buf, err)
		if f == nil {
			return n, dropped, end
		}
		old, ok, err := h.publishFrame(p, f)
		h.retire(old)
		switch {
		case errors.Is(err, errNotRelayed):
			continue // a rendition it no longer holds, or past the limit: the rest goes on
		case err != nil:
			return n, dropped, h.refuseConn(p.wsConn, refusalOf(err, reasonBadRendition), err.Error(), slog.String("error", err.Error()))
		case !ok:
			// Replaced while this frame was on its way. The close frame
			// must be owed before the reader returns: the writer, told to
			// stop, writes only a close owed by then, and a publisher
			// closed without 4001 would take its channel back at once.
			// (Whoever replaced it closes it the same way; the first wins.)
			p.closeWith(ending{kind: endReplaced}, protocol.CloseReplaced, "replaced by a newer publisher")
			return n, dropped, ending{kind: endReplaced}
		}
		h.counters.FramesIn.Add(1)
		n++
	}
}

// dropped counts and logs, at a bounded rate, a frame of ch not relayed
// because its publisher is over the frame-rate cap.
func (h *Hub) dropped(ch *channel, remote, via string) {
	ch.drop()
	h.counters.FramesDropped.Add(1)
	attrs := []slog.Attr{slog.String("channel", ch.name), slog.String("remote", remote), slog.Float64("max_fps", h.cfg.MaxFPSPerPublisher)}
	if via != "" {
		attrs = append(attrs, slog.String("via", via))
	}
	h.logs.Log(slog.LevelWarn, "dropped:"+ch.name, "publisher over the frame-rate cap; frames dropped", attrs...)
}

// acceptFrame turns what readMessage returned into a frame, or refuses it:
// it counts the refusal, closes the publisher with the reason's code and
// returns nil and how the connection ended. The channel keeps its last
// good frame.
func (h *Hub) acceptFrame(c *wsConn, buf []byte, err error) (*frame, ending) {
	var ioErr readError
	if errors.As(err, &ioErr) {
		h.readFailure(c, ioErr.err)
		return nil, c.endedBy(ioErr.err)
	}
	var pf protocol.Frame
	if err == nil {
		pf, err = protocol.ParseMessage(buf[wsRoom:], h.limits)
	}
	if err == nil {
		return newFrame(buf, pf, time.Now()), ending{}
	}
	if buf != nil {
		h.mem.release(int64(cap(buf)))
	}
	why := refusalOf(err, reasonBadFrame)
	text := err.Error()
	if refusals[why].code == websocket.CloseInvalidFramePayloadData {
		text = "invalid frame: " + text
	}
	return nil, h.refuseConn(c, why, text, slog.String("error", err.Error()))
}

// readError marks a failure to read from the connection (as opposed to a
// message that is malformed).
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }

// readMessage reads one publisher message into a buffer with wsRoom free
// bytes in front, charged to the memory budget (the caller releases it
// or hands it to a frame). It reads the fixed header first and checks the
// declared length against the limits; then it reads the body into a
// buffer that grows with what arrives (see memory.go), never allocating
// what a header merely declares. A message shorter or longer than it
// declares is an error. On error the returned buffer is nil and nothing
// stays charged.
func (h *Hub) readMessage(r io.Reader) ([]byte, error) {
	var hdr [protocol.HeaderLen]byte
	k, err := io.ReadFull(r, hdr[:])
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return nil, fmt.Errorf("%w: %d bytes, need %d", protocol.ErrShort, k, protocol.HeaderLen)
	}
	if err != nil {
		return nil, readError{err}
	}
	ph, err := protocol.ParseHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	size := uint64(ph.HeaderLen) + ph.BodyLen()
	if size > uint64(h.limits.MaxFrameBytes) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", protocol.ErrTooBig, size, h.limits.MaxFrameBytes)
	}
	total := wsRoom + int(size)

	// grow moves what has arrived into a buffer of capacity n, charging the
	// difference; intermediate buffers go back to their pool.
	var buf []byte
	charged := int64(0)
	grow := func(n int) error {
		if !h.mem.reserve(int64(n)) {
			return errMemory
		}
		var nb []byte
		if n == total {
			nb = make([]byte, len(buf), n) // the frame's own buffer
		} else {
			nb = getChunk(chunkClass(n))[:len(buf)]
		}
		copy(nb, buf)
		if buf != nil {
			h.mem.release(int64(cap(buf)))
			putChunk(buf)
		}
		buf, charged = nb, int64(n)
		return nil
	}
	fail := func(err error) ([]byte, error) {
		h.mem.release(charged)
		if buf != nil && cap(buf) != total {
			putChunk(buf)
		}
		return nil, err
	}
	first := total
	if total > firstChunk {
		first = firstChunk
	}
	if err := grow(first); err != nil {
		return fail(err)
	}
	buf = append(buf[:0], make([]byte, wsRoom)...)
	buf = append(buf, hdr[:]...)
	for len(buf) < total {
		if len(buf) == cap(buf) {
			// Fourfold, or straight to the exact size once an eighth of it
			// has arrived: at most eight times what arrived is allocated,
			// and a frame just over a chunk does not pass through two.
			next := cap(buf) * 4
			if cap(buf)*8 >= total || next > maxChunk {
				next = total
			}
			if err := grow(next); err != nil {
				return fail(err)
			}
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), total)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(readError{err})
		}
	}
	if len(buf) < total {
		return fail(fmt.Errorf("%w: header says %d bytes, message has %d", protocol.ErrLength, size, len(buf)-wsRoom))
	}
	// Nothing may follow the declared end.
	var extra [1]byte
	if m, err := r.Read(extra[:]); m > 0 {
		return fail(fmt.Errorf("%w: message longer than its header says", protocol.ErrLength))
	} else if err != nil && err != io.EOF {
		return fail(readError{err})
	}
	return buf, nil
}
