package hub

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// Close codes the hub sends, besides the standard ones (1001 going away on
// shutdown, 1003 wrong message type, 1007 invalid frame, 1009 too big).
const (
	CloseReplaced = 4001 // a newer publisher took over the channel
)

// controlWait bounds writing a close or ping frame.
const controlWait = time.Second

// wsConn is one upgraded WebSocket connection, publisher or subscriber.
type wsConn struct {
	// Static after construction.
	ws      *websocket.Conn
	remote  string
	channel string
	log     *slog.Logger

	closeOnce  sync.Once
	closedByUs atomic.Bool // we sent a close frame: let the peer read it before the socket goes
}

// closeWith sends a close frame with code and reason (at most once), then
// closes the socket after a moment so the peer can read it. Safe to call
// from any goroutine: gorilla allows WriteControl concurrently with writes.
func (c *wsConn) closeWith(code int, reason string) {
	c.closeOnce.Do(func() {
		c.closedByUs.Store(true)
		msg := websocket.FormatCloseMessage(code, truncate(reason, 123))
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(controlWait))
		// The reader sees the peer's close reply (or the deadline) and returns;
		// a short read deadline makes sure it does.
		_ = c.ws.SetReadDeadline(time.Now().Add(controlWait))
	})
}

// reset closes the TCP connection with SO_LINGER 0, so the kernel sends a
// RST and frees the socket's buffers at once instead of trying to deliver
// what a stalled peer never reads.
func (c *wsConn) reset() {
	if tcp := tcpConn(c.ws.NetConn()); tcp != nil {
		_ = tcp.SetLinger(0)
	}
	_ = c.ws.Close()
}

// upgrade performs the WebSocket handshake and registers the connection.
// It returns nil if the handshake failed (the upgrader answered) or the hub
// is shutting down.
func (h *Hub) upgrade(w http.ResponseWriter, r *http.Request, channel string, readLimit int64) *wsConn {
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil
	}
	ws.SetReadLimit(readLimit)
	c := &wsConn{ws: ws, remote: r.RemoteAddr, channel: channel,
		log: h.log.With("channel", channel, "remote", r.RemoteAddr)}
	h.mu.Lock()
	closing := h.closing
	if !closing {
		h.conns[c] = struct{}{}
	}
	h.mu.Unlock()
	if closing {
		c.closeWith(websocket.CloseGoingAway, "hub shutting down")
		_ = ws.Close()
		return nil
	}
	return c
}

func (h *Hub) unregister(c *wsConn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	if c.closedByUs.Load() {
		c.drain()
	}
	_ = c.ws.Close()
}

// Bounds on draining a peer we closed on.
const (
	drainWait  = time.Second
	drainBytes = 4 << 20
)

// drain reads and discards what the peer is still sending (say, the rest of
// an oversized message), for a moment, before the socket is closed. Closing
// a socket with unread input makes the kernel send a reset, and a reset can
// destroy the close frame that tells the peer why it was refused.
func (c *wsConn) drain() {
	nc := c.ws.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(drainWait))
	_, _ = io.CopyN(io.Discard, nc, drainBytes)
}

// keepAlive arms the read deadline and extends it on every pong.
func (h *Hub) keepAlive(c *wsConn) {
	_ = c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
	})
}

// readFailure counts and reports why a read ended: a message over the limit
// is a refusal; a close or a dropped connection is not.
func (h *Hub) readFailure(c *wsConn, err error) {
	if errors.Is(err, websocket.ErrReadLimit) {
		h.refuse(reasonTooBig, c.remote, "message over the read limit", slog.String("channel", c.channel))
		c.closeWith(websocket.CloseMessageTooBig, "message too big")
	}
}

func (h *Hub) servePublish(w http.ResponseWriter, r *http.Request, name string) {
	h.serveWebSocket(w, r, name, false, int64(h.cfg.MaxFrameBytes), h.runPublisher)
}

// serveWebSocket upgrades a request and runs the connection in its own
// goroutine, which Shutdown waits for. The handler returns at once: that
// lets net/http free the request, its headers and the connection's HTTP
// write buffer, which would otherwise live as long as the WebSocket.
func (h *Hub) serveWebSocket(w http.ResponseWriter, r *http.Request, name string, sub bool, readLimit int64, run func(*wsConn, string)) {
	if !h.track() {
		h.refuse(reasonShuttingDown, r.RemoteAddr, "connection during shutdown")
		http.Error(w, "hub shutting down", http.StatusServiceUnavailable)
		return
	}
	release, ok := h.admit(w, r, name, sub)
	if !ok {
		h.handlers.Done()
		return
	}
	c := h.upgrade(w, r, name, readLimit)
	if c == nil {
		release()
		h.handlers.Done()
		return
	}
	go func() {
		defer h.handlers.Done()
		defer release()
		defer h.unregister(c)
		run(c, name)
	}()
}

// runPublisher reads and publishes a publisher's frames until it leaves.
func (h *Hub) runPublisher(c *wsConn, name string) {
	h.counters.PublishersConnected.Add(1)

	now := time.Now()
	var old *wsConn
	ch := h.channelFor(name, func(ch *channel) { old = ch.setPublisher(c) })
	if old != nil {
		h.counters.Replaced.Add(1)
		old.log.Info("publisher replaced by a newer one")
		old.closeWith(CloseReplaced, "replaced by a newer publisher")
	}
	c.log.Info("publisher connected")

	// A pinger keeps the read deadline honest on a publisher that is alive
	// but between frames; it stops when the reader returns.
	stopPing := make(chan struct{})
	var pingWG sync.WaitGroup
	pingWG.Add(1)
	go func() {
		defer pingWG.Done()
		t := time.NewTicker(h.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-stopPing:
				return
			case <-t.C:
				if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(controlWait)) != nil {
					return
				}
			}
		}
	}()

	frames, why := h.readFrames(c, ch)
	close(stopPing)
	pingWG.Wait()
	ch.clearPublisher(c)
	c.log.Info("publisher left", "frames", frames, "seconds", round2(time.Since(now).Seconds()), "why", why)
}

// readFrames reads and publishes frames until the connection ends. It
// returns the number of frames published and why it stopped.
func (h *Hub) readFrames(c *wsConn, ch *channel) (n uint64, why string) {
	h.keepAlive(c)
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			h.readFailure(c, err)
			return n, closeReason(err)
		}
		now := time.Now()
		_ = c.ws.SetReadDeadline(now.Add(h.cfg.PongWait))
		if typ != websocket.BinaryMessage {
			h.refuse(reasonMessageType, c.remote, "publisher sent a text message", slog.String("channel", c.channel))
			c.closeWith(websocket.CloseUnsupportedData, "publishers send binary frames")
			return n, "sent text"
		}
		msg, err := h.readMessage(r)
		var ioErr readError
		if errors.As(err, &ioErr) {
			h.readFailure(c, ioErr.err)
			return n, closeReason(ioErr.err)
		}
		var pf protocol.Frame
		if err == nil {
			pf, err = protocol.ParseMessage(msg, h.limits)
		}
		if errors.Is(err, protocol.ErrTooBig) {
			h.refuse(reasonTooBig, c.remote, "frame over the limit", slog.String("channel", c.channel), slog.String("error", err.Error()))
			c.closeWith(websocket.CloseMessageTooBig, err.Error())
			return n, "frame too big"
		}
		if err != nil {
			h.refuse(reasonBadFrame, c.remote, "invalid frame", slog.String("channel", c.channel), slog.String("error", err.Error()))
			c.closeWith(websocket.CloseInvalidFramePayloadData, "invalid frame: "+err.Error())
			return n, "invalid frame"
		}
		f, err := newFrame(msg, pf, now)
		if err != nil {
			c.closeWith(websocket.CloseInternalServerErr, "internal error")
			return n, err.Error()
		}
		ch.publish(f)
		h.counters.FramesIn.Add(1)
		n++
	}
}

// readError marks a failure to read from the connection (as opposed to a
// message that is malformed).
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }

// readMessage reads one publisher message. It reads the fixed header first
// and checks the declared length against the limits, then allocates the
// message once at its exact size and reads the rest, instead of growing a
// buffer as it goes (a 100 KB frame would take a dozen allocations and
// copies). A message longer than it declares is an error; a shorter one is
// left for ParseMessage to reject.
func (h *Hub) readMessage(r io.Reader) ([]byte, error) {
	var hdr [protocol.HeaderLen]byte
	k, err := io.ReadFull(r, hdr[:])
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return hdr[:k], nil // too short: ParseMessage says why
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
	msg := make([]byte, size)
	copy(msg, hdr[:])
	k, err = io.ReadFull(r, msg[protocol.HeaderLen:])
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return msg[:protocol.HeaderLen+k], nil // shorter than declared: ParseMessage says so
	}
	if err != nil {
		return nil, readError{err}
	}
	// Nothing may follow the declared end.
	var extra [1]byte
	if m, err := r.Read(extra[:]); m > 0 {
		return nil, fmt.Errorf("%w: message longer than its header says", protocol.ErrLength)
	} else if err != nil && err != io.EOF {
		return nil, readError{err}
	}
	return msg, nil
}

func closeReason(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("closed (%d %s)", ce.Code, ce.Text)
	}
	return err.Error()
}

// subscriber is the state of one WebSocket subscriber.
type subscriber struct {
	*wsConn
	mb *mailbox

	mu       sync.Mutex // guards the credit state, shared by reader and writer
	credit   bool
	window   int
	inflight []uint64 // sequence numbers sent and not yet acknowledged, oldest first
}

func (h *Hub) serveSubscribe(w http.ResponseWriter, r *http.Request, name string) {
	h.serveWebSocket(w, r, name, true, int64(h.cfg.MaxControlBytes), h.runSubscriber)
}

// runSubscriber serves one subscriber until it leaves or is evicted.
func (h *Hub) runSubscriber(c *wsConn, name string) {
	h.counters.SubscribersConnected.Add(1)
	if h.cfg.SendBuffer > 0 {
		if tcp := tcpConn(c.ws.NetConn()); tcp != nil {
			_ = tcp.SetWriteBuffer(h.cfg.SendBuffer)
		}
	}

	s := &subscriber{wsConn: c, mb: newMailbox()}
	ch := h.channelFor(name, func(ch *channel) { ch.addSub(s.mb) })
	c.log.Debug("subscriber connected")
	start := time.Now()

	stop := make(chan struct{})
	var writerWG sync.WaitGroup
	writerWG.Add(1)
	go func() {
		defer writerWG.Done()
		h.writeLoop(s, stop)
	}()
	why := h.readControl(s)
	close(stop)
	writerWG.Wait()
	ch.removeSub(s.mb)
	c.log.Debug("subscriber left", "sent", s.mb.delivered.Load(), "skipped", s.mb.overwritten.Load(),
		"seconds", round2(time.Since(start).Seconds()), "why", why)
}

// readControl reads control messages until the connection ends.
func (h *Hub) readControl(s *subscriber) string {
	h.keepAlive(s.wsConn)
	for {
		typ, msg, err := s.ws.ReadMessage()
		if err != nil {
			h.readFailure(s.wsConn, err)
			return closeReason(err)
		}
		_ = s.ws.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
		if typ != websocket.TextMessage {
			h.refuse(reasonMessageType, s.remote, "subscriber sent a binary message", slog.String("channel", s.channel))
			s.closeWith(websocket.CloseUnsupportedData, "subscribers send JSON text control messages")
			return "sent binary"
		}
		ctl, err := protocol.ParseControl(msg)
		if err != nil {
			h.refuse(reasonBadControl, s.remote, "bad control message", slog.String("channel", s.channel), slog.String("error", err.Error()))
			s.closeWith(websocket.CloseInvalidFramePayloadData, err.Error())
			return "bad control message"
		}
		s.control(ctl, h.cfg.CreditWindow)
	}
}

// control applies a control message and wakes the writer, which may now
// have credit to send the newest frame.
func (s *subscriber) control(ctl protocol.Control, defWindow int) {
	s.mu.Lock()
	switch ctl.Op {
	case protocol.OpCredit:
		s.credit = true
		s.window = defWindow
		if ctl.Window > 0 {
			s.window = min(ctl.Window, MaxCreditWindow)
		}
		s.inflight = s.inflight[:0]
	case protocol.OpAck:
		// Acknowledge up to and including seq; if seq is unknown (a new
		// publisher restarted its count), return one credit.
		i := 0
		for i < len(s.inflight) && s.inflight[i] != ctl.Seq {
			i++
		}
		if i == len(s.inflight) {
			i = 0
		}
		if len(s.inflight) > 0 {
			s.inflight = append(s.inflight[:0], s.inflight[i+1:]...)
		}
	}
	s.mu.Unlock()
	s.mb.poke()
}

// canSend reports whether the subscriber has credit for one more frame and,
// if so, records seq as in flight.
func (s *subscriber) canSend(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.credit {
		return true
	}
	if len(s.inflight) >= s.window {
		return false
	}
	s.inflight = append(s.inflight, seq)
	return true
}

// hasCredit reports whether a frame could be sent now.
func (s *subscriber) hasCredit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.credit || len(s.inflight) < s.window
}

// writeLoop is the subscriber's only writer. Each time it wakes, it sends
// the newest frame if there is one and the subscriber has credit; frames
// published while a write is in progress overwrite each other in the
// mailbox. A write that misses the deadline evicts the subscriber.
func (h *Hub) writeLoop(s *subscriber, stop <-chan struct{}) {
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-stop:
			return
		case <-h.done:
			return
		case <-ping.C:
			if err := s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
				h.evict(s, err)
				return
			}
			continue
		case <-s.mb.wake:
		}
		if !s.hasCredit() {
			continue // the frame stays in the slot; an ack will wake us
		}
		f := s.mb.take()
		if f == nil || !s.canSend(f.hdr.Seq) {
			continue
		}
		_ = s.ws.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
		if err := s.ws.WritePreparedMessage(f.prepared); err != nil {
			h.evict(s, err)
			return
		}
		s.mb.delivered.Add(1)
	}
}

// evict drops a subscriber whose write failed. A timeout means it stalled;
// anything else means the connection is already gone.
func (h *Hub) evict(s *subscriber, err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		h.counters.Evicted.Add(1)
		s.log.Info("subscriber evicted: write deadline missed", "write_timeout", h.cfg.WriteTimeout,
			"sent", s.mb.delivered.Load(), "skipped", s.mb.overwritten.Load())
	}
	s.reset()
}
