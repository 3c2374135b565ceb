package hub

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// subscriber is the state of one WebSocket subscriber.
type subscriber struct {
	*wsConn
	mb     *mailbox
	credit credit

	// writeStart is when the frame write in progress began (Unix ns), or
	// 0 between writes. The hub's watchdog evicts a subscriber whose write
	// has taken longer than WriteTimeout; a write needs no deadline of its
	// own, which saves arming a timer per frame per subscriber.
	writeStart atomic.Int64
	evicted    atomic.Bool
	pong       atomic.Pointer[string] // a ping's payload the writer owes a pong for
	pingDue    atomic.Bool            // set by the watchdog every PingInterval
	stopped    atomic.Bool            // the connection has ended: the writer returns
	files      *fileSender            // sends on the plain-TCP socket by sendfile, or nil
}

// serveSubscribe admits and upgrades a subscriber. ?window=N asks for
// credit mode from the first frame.
func (h *Hub) serveSubscribe(w http.ResponseWriter, r *http.Request, name string) {
	window := 0
	if v, ok := r.URL.Query()[protocol.QueryWindow]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > MaxCreditWindow {
			h.refuse(reasonBadQuery, r.RemoteAddr, "bad credit window in subscribe URL", slog.String("window", truncate(v[0], 20)))
			http.Error(w, "window: want 1 to "+strconv.Itoa(MaxCreditWindow), http.StatusBadRequest)
			return
		}
		window = n
	}
	if !h.track(w, r) {
		return
	}
	release, ok := h.admitSubscriber(w, r, name)
	if !ok {
		h.handlers.Done()
		return
	}
	h.serveWebSocket(w, r, name, RightView, int64(h.cfg.MaxControlBytes), release, func(c *wsConn) {
		s := &subscriber{wsConn: c, mb: newMailbox(readerWS)}
		if window > 0 {
			s.credit.enable(window)
		}
		h.runSubscriber(s)
	})
}

// runSubscriber serves one subscriber until it leaves or is evicted.
func (h *Hub) runSubscriber(s *subscriber) {
	h.counters.SubscribersConnected.Add(1)
	if h.cfg.SendBuffer > 0 {
		if tcp := tcpConn(s.nc); tcp != nil {
			_ = tcp.SetWriteBuffer(h.cfg.SendBuffer)
		}
	}
	if !h.zc.off.Load() {
		if rc := rawConn(s.nc); rc != nil {
			s.files = newFileSender(rc)
		}
	}
	s.wsConn.sub.Store(s)
	// Pongs are written by the writer, like everything else it sends, so
	// that a control write never moves a deadline under a frame write.
	s.ws.SetPingHandler(func(data string) error {
		s.pong.Store(&data)
		s.mb.poke()
		return nil
	})
	ch := h.join(s.channel, s.mb)
	debug := h.events.enabled(slog.LevelDebug) // each connect and leave: build no line nobody reads
	if debug {
		h.events.logf(slog.LevelDebug, "sub:"+s.channel, "subscriber connected", slog.String("channel", s.channel), slog.String("remote", s.remote))
	}
	start := time.Now()

	var writerWG sync.WaitGroup
	writerWG.Add(1)
	go func() {
		defer writerWG.Done()
		h.writeLoop(s, ch)
	}()
	end := h.readControl(s)
	s.stopped.Store(true)
	s.mb.poke()
	writerWG.Wait()
	h.leave(ch, s.mb)
	if debug {
		attrs := append([]slog.Attr{slog.String("channel", s.channel), slog.String("remote", s.remote),
			slog.Uint64("sent", s.mb.delivered.Load()), slog.Uint64("skipped", s.mb.overwritten.Load()),
			slog.Float64("seconds", round2(time.Since(start).Seconds()))}, end.attrs()...)
		h.events.logf(slog.LevelDebug, "sub:"+s.channel, "subscriber left", attrs...)
	}
}

// readControl reads control messages until the connection ends, and
// returns how it ended.
func (h *Hub) readControl(s *subscriber) ending {
	h.keepAlive(s.wsConn)
	for {
		typ, msg, err := s.ws.ReadMessage()
		if err != nil {
			h.readFailure(s.wsConn, err)
			return s.endedBy(err)
		}
		_ = s.ws.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
		if typ != websocket.TextMessage {
			h.refuse(reasonMessageType, s.remote, "subscriber sent a binary message", slog.String("channel", s.channel))
			s.closeWith(ending{kind: endRefused, refused: reasonMessageType}, websocket.CloseUnsupportedData, "subscribers send JSON text control messages")
			return s.endedBy(nil)
		}
		ctl, err := protocol.ParseControl(msg)
		if err != nil {
			h.refuse(reasonBadControl, s.remote, "bad control message", slog.String("channel", s.channel), slog.String("error", err.Error()))
			s.closeWith(ending{kind: endRefused, refused: reasonBadControl, detail: err.Error()}, websocket.CloseInvalidFramePayloadData, err.Error())
			return s.endedBy(nil)
		}
		switch ctl.Op {
		case protocol.OpCredit:
			w := h.cfg.CreditWindow
			if ctl.Window > 0 {
				w = ctl.Window
			}
			s.credit.enable(w)
		case protocol.OpAck:
			s.credit.ack(ctl.Seq)
		}
		// The writer may now have credit for the newest frame.
		s.mb.poke()
	}
}

// writeLoop is the subscriber's only writer. Each time it wakes, it sends
// a ping or a pong it owes, then the newest frame if there is one and the
// subscriber has credit; frames published while a write is in progress
// overwrite each other in the mailbox. A write that takes longer than
// WriteTimeout gets the subscriber evicted by the watchdog.
//
// Everything that concerns the writer arrives as a poke of its mailbox
// with a flag beside it (a frame, an ack, a pong owed, the hub's pinger,
// the end of the connection or of the hub), so that a wake-up is one
// channel receive, not a select over several channels: at one wake-up per
// frame per subscriber, that is most of the hub's own CPU besides the
// kernel's write.
func (h *Hub) writeLoop(s *subscriber, ch *channel) {
	for {
		if s.stopped.Load() || h.shut.Load() {
			return
		}
		<-s.mb.wake
		if s.stopped.Load() || h.shut.Load() {
			return
		}
		if s.pingDue.Swap(false) {
			if err := h.writeControl(s, websocket.PingMessage, nil); err != nil {
				h.writeFailed(s, err)
				return
			}
		}
		if p := s.pong.Swap(nil); p != nil {
			if err := h.writeControl(s, websocket.PongMessage, []byte(*p)); err != nil {
				h.writeFailed(s, err)
				return
			}
		}
		if !s.credit.available() {
			continue // the frame stays in the slot; an ack will wake us
		}
		f := s.mb.take()
		if f == nil || !s.credit.take(f.hdr.Seq) {
			continue
		}
		s.writeStart.Store(time.Now().UnixNano())
		err := h.writeFrame(s, f)
		s.writeStart.Store(0)
		if err != nil {
			h.writeFailed(s, err)
			return
		}
		s.mb.sent(len(f.wire))
		ch.observeAge(f)
	}
}

// writeFrame sends f's wire bytes: by sendfile from its memory file when
// it goes to several plain-TCP subscribers, else with a write.
func (h *Hub) writeFrame(s *subscriber, f *frame) error {
	if s.files != nil && f.fanout >= ZeroCopyMinSubscribers {
		if ff := h.zc.file(f); ff != nil {
			if err := s.files.send(ff); err != nil {
				return err
			}
			h.zc.sent.Add(1)
			return nil
		}
	}
	_, err := s.nc.Write(f.wire)
	return err
}

// writeControl writes a control frame from the writer goroutine, bounded
// by WriteTimeout, and clears the deadline again so frame writes (which
// the watchdog times) are not cut by it.
func (h *Hub) writeControl(s *subscriber, typ int, data []byte) error {
	s.writeStart.Store(time.Now().UnixNano())
	err := s.ws.WriteControl(typ, data, time.Now().Add(h.cfg.WriteTimeout))
	s.writeStart.Store(0)
	_ = s.nc.SetWriteDeadline(time.Time{})
	return err
}

// writeFailed ends a subscriber whose write failed: evicted by the
// watchdog, closed by the hub, or gone.
func (h *Hub) writeFailed(s *subscriber, err error) {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() && !s.closedByUs.Load() {
		h.evict(s) // a control write that timed out
		return
	}
	s.reset()
}

// evict drops a stalled subscriber, once: counted, logged at a bounded
// rate, and its TCP connection reset so the kernel frees its buffers.
func (h *Hub) evict(s *subscriber) {
	if !s.evicted.CompareAndSwap(false, true) {
		return
	}
	s.ended.CompareAndSwap(nil, &ending{kind: endEvicted})
	h.counters.Evicted.Add(1)
	h.events.logf(slog.LevelInfo, "evicted:"+s.channel, "subscriber evicted: write deadline missed",
		slog.String("channel", s.channel), slog.String("remote", s.remote), slog.Duration("write_timeout", h.cfg.WriteTimeout),
		slog.Uint64("sent", s.mb.delivered.Load()), slog.Uint64("skipped", s.mb.overwritten.Load()))
	s.reset()
}

// watchdog evicts subscribers whose frame write has taken longer than
// WriteTimeout, and asks every subscriber's writer for a ping each
// PingInterval (one walk for all of them, rather than a timer each). It
// looks WriteTimeout/8 apart (at least every 50 ms, at most every second
// or half a PingInterval), so a stalled subscriber goes within about
// 1.125 × WriteTimeout.
func (h *Hub) watchdog() {
	defer h.janitorWG.Done()
	every := min(max(h.cfg.WriteTimeout/8, 50*time.Millisecond), time.Second, max(h.cfg.PingInterval/2, 10*time.Millisecond))
	t := time.NewTicker(every)
	defer t.Stop()
	lastPing := time.Now()
	var stalled []*subscriber
	for {
		select {
		case <-h.done:
			return
		case now := <-t.C:
			limit := now.Add(-h.cfg.WriteTimeout).UnixNano()
			ping := now.Sub(lastPing) >= h.cfg.PingInterval
			if ping {
				lastPing = now
			}
			stalled = stalled[:0]
			h.mu.Lock()
			for c := range h.conns {
				if s := c.sub.Load(); s != nil {
					if st := s.writeStart.Load(); st != 0 && st < limit {
						stalled = append(stalled, s)
					}
					if ping {
						s.pingDue.Store(true)
						s.mb.poke()
					}
				}
			}
			h.mu.Unlock()
			for _, s := range stalled {
				h.evict(s)
			}
		}
	}
}
