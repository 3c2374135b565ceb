package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// publisher is one publishing WebSocket connection.
type publisher struct {
	*wsConn
	h *Hub
	localPart
	onDemand bool // static: it captures only while someone watches

	viewerCount atomic.Int64  // the channel's readers, as last told
	notify      chan struct{} // capacity 1: "send the count"
}

// viewers records the channel's reader count and wakes the goroutine that
// sends it. It never blocks.
func (p *publisher) viewers(n int) {
	p.viewerCount.Store(int64(n))
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *publisher) isOnDemand() bool { return p.onDemand }

func (p *publisher) local() *localPart  { return &p.localPart }
func (p *publisher) remoteAddr() string { return p.remote }

// replacedOn closes a publisher that a newer one on another hub took over.
func (p *publisher) replacedOn(hubName string) {
	p.closeWith(ending{kind: endReplaced, detail: "on hub " + hubName}, protocol.CloseReplaced, "replaced by a newer publisher on hub "+hubName)
}

// replaced closes a publisher that a newer one took over.
func (p *publisher) replaced() {
	p.h.counters.Replaced.Add(1)
	p.h.events.logf(slog.LevelInfo, "replaced:"+p.channel, "publisher replaced by a newer one",
		slog.String("channel", p.channel), slog.String("remote", p.remote))
	p.closeWith(ending{kind: endReplaced}, protocol.CloseReplaced, "replaced by a newer publisher")
}

func (h *Hub) servePublish(w http.ResponseWriter, r *http.Request, name string) {
	onDemand := false
	if v, ok := r.URL.Query()[protocol.QueryOnDemand]; ok {
		switch v[0] {
		case "1", "true":
			onDemand = true
		case "0", "false":
		default:
			h.refuse(reasonBadQuery, r.RemoteAddr, "bad on_demand in publish URL", slog.String("on_demand", truncate(v[0], 20)))
			http.Error(w, "on_demand: want 1 or 0", http.StatusBadRequest)
			return
		}
	}
	if !h.track(w, r) {
		return
	}
	ch, ok := h.admitPublisher(w, r, name)
	if !ok {
		h.handlers.Done()
		return
	}
	h.serveWebSocket(w, r, name, RightPublish, int64(h.cfg.MaxFrameBytes), func() { h.table.unclaim(ch) }, func(c *wsConn) {
		h.runPublisher(&publisher{wsConn: c, h: h, localPart: localPart{ch: ch}, onDemand: onDemand, notify: make(chan struct{}, 1)})
	})
}

// runPublisher reads and publishes a publisher's frames until it leaves.
func (h *Hub) runPublisher(p *publisher) {
	start := time.Now()
	leave := h.takeChannel(p)
	h.events.logf(slog.LevelInfo, "connected:"+p.channel, "publisher connected",
		slog.String("channel", p.channel), slog.String("remote", p.remote))

	// The publisher's writer: pings keep the read deadline honest on a
	// publisher that is alive but between frames, and the viewer count
	// goes out when it changes (the newest count; changes in between are
	// folded). It stops when the reader returns.
	stopPing := make(chan struct{})
	var pingWG sync.WaitGroup
	pingWG.Add(1)
	go func() {
		defer pingWG.Done()
		t := time.NewTicker(h.cfg.PingInterval)
		defer t.Stop()
		sent := int64(-1)
		for {
			select {
			case <-stopPing:
				return
			case <-t.C:
				if p.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(controlWait)) != nil {
					return
				}
			case <-p.notify:
				n := p.viewerCount.Load()
				if n == sent {
					continue
				}
				sent = n
				msg, _ := json.Marshal(protocol.ViewersNotice{Op: protocol.OpViewers, Count: int(n)})
				_ = p.ws.SetWriteDeadline(time.Now().Add(controlWait))
				if p.ws.WriteMessage(websocket.TextMessage, msg) != nil {
					return
				}
			}
		}
	}()

	frames, dropped, end := h.readFrames(p)
	close(stopPing)
	pingWG.Wait()
	leave()
	attrs := append([]slog.Attr{slog.String("channel", p.channel), slog.String("remote", p.remote),
		slog.Uint64("frames", frames), slog.Uint64("dropped", dropped),
		slog.Float64("seconds", round2(time.Since(start).Seconds()))}, end.attrs()...)
	h.events.logf(slog.LevelInfo, "left:"+p.channel, "publisher left", attrs...)
}

// takeChannel makes p its channel's publisher, telling the one it
// replaces, counts it, and claims the channel on the bus; leave undoes it
// all (a publisher replaced meanwhile unsets nobody).
func (h *Hub) takeChannel(p localPublisher) (leave func()) {
	h.counters.PublishersConnected.Add(1)
	h.publishers.Add(1)
	ch := p.local().ch
	if old := ch.setPublisher(p); old != nil {
		old.replaced()
	}
	h.busClaim(p)
	return func() {
		ch.clearPublisher(p)
		h.busRelease(p)
		h.publishers.Add(-1)
	}
}

// rateCap lets through at most rate frames per second, with bursts of a
// quarter second's worth (at least 4), dropping the rest.
type rateCap struct {
	rate, burst, tokens float64
	last                time.Time
}

func newRateCap(rate float64) *rateCap {
	b := max(rate/4, 4)
	return &rateCap{rate: rate, burst: b, tokens: b}
}

func (r *rateCap) allow(now time.Time) bool {
	r.tokens = min(r.burst, r.tokens+now.Sub(r.last).Seconds()*r.rate)
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// readFrames reads and publishes frames until the connection ends. It
// returns the frames published, those dropped over the rate cap, and how
// it ended.
func (h *Hub) readFrames(p *publisher) (n, dropped uint64, end ending) {
	h.keepAlive(p.wsConn)
	rc := newRateCap(h.cfg.MaxFPSPerPublisher)
	for {
		typ, r, err := p.ws.NextReader()
		if err != nil {
			h.readFailure(p.wsConn, err)
			return n, dropped, p.endedBy(err)
		}
		h.mem.release(p.ch.retirePrev())
		now := time.Now()
		_ = p.ws.SetReadDeadline(now.Add(h.cfg.PongWait))
		if typ != websocket.BinaryMessage {
			h.refuse(reasonMessageType, p.remote, "publisher sent a text message", slog.String("channel", p.channel))
			p.closeWith(ending{kind: endRefused, refused: reasonMessageType}, websocket.CloseUnsupportedData, "publishers send binary frames")
			return n, dropped, p.endedBy(nil)
		}
		buf, err := h.readMessage(r)
		if buf != nil && !rc.allow(time.Now()) {
			// Over the cap: read (the stream must go on) but not relayed.
			h.mem.release(int64(cap(buf)))
			p.ch.drop()
			dropped++
			h.counters.FramesDropped.Add(1)
			h.events.logf(slog.LevelWarn, "dropped:"+p.channel, "publisher over the frame-rate cap; frames dropped",
				slog.String("channel", p.channel), slog.String("remote", p.remote), slog.Float64("max_fps", h.cfg.MaxFPSPerPublisher))
			continue
		}
		f, end := h.acceptFrame(p.wsConn, buf, err)
		if f == nil {
			return n, dropped, end
		}
		old, ok := h.publishFrame(p, f)
		if old != nil {
			h.mem.release(old.size)
		}
		if !ok { // replaced: whatever it still sends goes nowhere
			return n, dropped, ending{kind: endReplaced}
		}
		h.counters.FramesIn.Add(1)
		n++
	}
}

// acceptFrame turns what readMessage returned into a frame, or refuses it:
// it counts the refusal, closes the publisher with the matching code and
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
	r, code, why := reasonBadFrame, websocket.CloseInvalidFramePayloadData, "invalid frame"
	switch {
	case errors.Is(err, errMemory):
		r, code, why = reasonMemory, protocol.CloseTryAgainLater, "over the hub's memory budget"
	case errors.Is(err, protocol.ErrTooBig):
		r, code, why = reasonTooBig, websocket.CloseMessageTooBig, "frame too big"
	case errors.Is(err, protocol.ErrJPEG):
		r, why = reasonBadJPEG, "bad jpeg"
	case errors.Is(err, protocol.ErrPixels):
		r, why = reasonTooManyPixels, "too many pixels"
	}
	h.refuse(r, c.remote, "publisher frame refused: "+why, slog.String("channel", c.channel), slog.String("error", err.Error()))
	text := err.Error()
	if code == websocket.CloseInvalidFramePayloadData {
		text = "invalid frame: " + text
	}
	c.closeWith(ending{kind: endRefused, refused: r, detail: text}, code, text)
	return nil, c.endedBy(nil)
}

// readError marks a failure to read from the connection (as opposed to a
// message that is malformed).
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }

// errMemory means a frame would pass the hub's memory budget.
var errMemory = errors.New("hub memory budget exceeded; try again later")

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
