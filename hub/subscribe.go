package hub

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/ratelimit"
	"framehub/protocol"
)

// subscriber is the state of one WebSocket subscriber: its reader (this
// file: control messages in) and its writer (writer.go: frames out).
type subscriber struct {
	*wsConn
	mb     *mailbox
	credit credit

	// writeStart is when the write in progress began (Hub.sinceStart), or
	// 0 between writes. The hub's watchdog evicts a subscriber whose write
	// has taken longer than WriteTimeout (slow.go); a write needs no
	// deadline of its own, which saves arming a timer per frame per
	// subscriber.
	writeStart atomic.Int64
	evicted    atomic.Bool
	pingDue    atomic.Bool // set by the watchdog every PingInterval
	heard      atomic.Bool // a message came since the watchdog last looked: it extends the read deadline
	stopped    atomic.Bool // the connection has ended: the writer returns
	files      *fileSender // sends on the plain-TCP socket by sendfile, or nil

	want     protocol.RenditionWant // static: what it asked for in its URL (rendition.go)
	order    sendOrder              // the writer's: no older frame after a newer one across renditions
	switches ratelimit.Bucket       // the reader's: its budget of rendition switches
}

// serveSubscribe admits and upgrades a subscriber. ?window=N asks for
// credit mode from the first frame; ?rendition=NAME or ?max-width=W for a
// rendition (rendition.go).
func (h *Hub) serveSubscribe(w http.ResponseWriter, r *http.Request, name string) {
	want, err := wantFromQuery(r)
	if err != nil {
		h.refuseRequest(w, r, reasonBadQuery, err.Error(), slog.String("error", truncate(err.Error(), 100)))
		return
	}
	window := 0
	if v, ok := r.URL.Query()[protocol.QueryWindow]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > MaxCreditWindow {
			h.refuseRequest(w, r, reasonBadQuery, "window: want 1 to "+strconv.Itoa(MaxCreditWindow), slog.String("window", truncate(v[0], 20)))
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
		s := &subscriber{wsConn: c, mb: newMailbox(readerWS, c.wake), want: want, switches: newSwitchCap()}
		if window > 0 {
			s.credit.enable(window)
		}
		h.runSubscriber(s)
	})
}

// runSubscriber serves one subscriber until it leaves or is evicted: this
// goroutine reads its control messages, a second one (writeLoop) writes
// whenever there is something to write (idlewriter.go).
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
	ch := h.join(s.channel, s.mb, s.want)
	debug := h.logs.Enabled(slog.LevelDebug) // each connect and leave: build no line nobody reads
	if debug {
		h.logs.Log(slog.LevelDebug, "sub:"+s.channel, "subscriber connected", slog.String("channel", s.channel), slog.String("remote", s.remote))
	}
	start := time.Now()

	w := newIdleWriter(s.wake, func() { h.writeLoop(s, ch) })
	s.writer.Store(w)
	s.mb.writer.Store(w)
	if len(s.wake) > 0 {
		w.kick() // the newest frame, or a close, came before the writer could be started
	}
	end := h.readControl(s, ch)
	s.stopped.Store(true)
	w.stop()
	h.leave(ch, s.mb)
	if debug {
		attrs := append([]slog.Attr{slog.String("channel", s.channel), slog.String("remote", s.remote),
			slog.Uint64("sent", s.mb.delivered.Load()), slog.Uint64("skipped", s.mb.overwritten()),
			slog.Float64("seconds", round2(time.Since(start).Seconds()))}, end.attrs()...)
		h.logs.Log(slog.LevelDebug, "sub:"+s.channel, "subscriber left", attrs...)
	}
}

// readControl reads control messages until the connection ends, and
// returns how it ended.
//
// In credit mode a subscriber sends an ack for every frame, so after the
// writers this is the hub's busiest loop, and an ack costs what credit
// mode costs more than the default: an ack is read into a small buffer on
// this goroutine's stack rather than a new slice, parsed without
// encoding/json (protocol.ParseAck; anything else goes to ParseControl),
// and wakes the writer only if a frame waits for the credit it returns.
// A message only marks the subscriber as heard from: the watchdog pushes
// its silence deadline back, once a tick (slow.go), rather than a timer
// being reset per message.
func (h *Hub) readControl(s *subscriber, ch *channel) ending {
	h.keepAlive(s.wsConn)
	var small [64]byte // an ack is at most 39 bytes
	for {
		typ, msg, err := readMessage(s.ws, small[:])
		if err != nil {
			h.readFailure(s.wsConn, err)
			return s.endedBy(err)
		}
		if !s.heard.Load() { // (set once per watchdog tick, not per ack)
			s.heard.Store(true)
		}
		if typ != websocket.TextMessage {
			return h.refuseConn(s.wsConn, reasonMessageType, "subscribers send JSON text control messages")
		}
		if seq, ok := protocol.ParseAck(msg); ok {
			if s.credit.ack(seq) && s.mb.waiting() {
				s.poke() // the frame that waited for this credit may go
			}
			continue
		}
		ctl, err := protocol.ParseControl(msg)
		if err != nil {
			return h.refuseConn(s.wsConn, reasonBadControl, err.Error(), slog.String("error", err.Error()))
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
		case protocol.OpRendition:
			if !s.switches.Allow(time.Now()) {
				return h.refuseConn(s.wsConn, reasonTooManySwitches, fmt.Sprintf(
					"more than %d rendition switches a second (bursts of %d)", switchRate, switchBurst))
			}
			ch.setWant(s.mb, ctl.Want())
		}
		// The writer may now have credit for the newest frame.
		s.poke()
	}
}

// subscriberReadBuffer is the read buffer of a subscriber's connection. A
// subscriber sends only control messages of a few dozen bytes (at most
// MaxControlBytes), so it does not keep the 4 KiB buffer net/http read its
// handshake with, as a publisher does: for a subscriber that is idle for
// hours, that buffer was a third of what it cost.
const subscriberReadBuffer = 256

// readMessage reads the next message like gorilla's ReadMessage, into buf
// when it fits (the message then aliases buf, until the next call), else
// into a new slice.
func readMessage(ws *websocket.Conn, buf []byte) (typ int, msg []byte, err error) {
	typ, r, err := ws.NextReader()
	if err != nil {
		return typ, nil, err
	}
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err == io.EOF {
			return typ, buf[:n], nil
		}
		if err != nil {
			return typ, nil, err
		}
	}
	rest, err := io.ReadAll(r) // longer than buf: rare, and bounded by the read limit
	if err != nil {
		return typ, nil, err
	}
	return typ, append(buf[:n:n], rest...), nil
}
