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

// controlWait bounds what a close costs: the write in progress when the hub
// closes a connection, then the write of its close frame, and the wait for
// the peer's reply.
const controlWait = time.Second

// wsConn is one upgraded WebSocket connection, publisher or subscriber.
//
// One reader, one writer. The connection's handler goroutine is its only
// reader; its writer goroutine (a subscriber's writeLoop, a publisher's
// controlLoop) is the only goroutine that writes to its socket, and it
// writes every byte itself: frames (which carry their own WebSocket header,
// see frame.wire), pings, pongs, viewer notices and the close frame, with
// plain writes (or sendfile), never through gorilla's writer. So no write
// can land inside another, and no deadline set for one write moves under
// another. Anyone else who wants something sent (a pong, a close) records
// it and wakes the writer (wake). The one exception is gorilla's own close
// frame when a peer breaks the protocol or the read limit (see closeSent):
// the connection ends then anyway.
type wsConn struct {
	// Static after construction.
	ws      *websocket.Conn
	nc      net.Conn // ws.NetConn(): TCP, or TLS over TCP
	remote  string
	channel string
	right   Right                      // what it uses the channel for: RightPublish or RightView
	token   string                     // what it presented, for Reload to check again; never logged
	wake    chan struct{}              // capacity 1: "writer, look at what you owe"; a subscriber's mailbox shares it
	sub     atomic.Pointer[subscriber] // set for subscribers, for the write watchdog
	writer  atomic.Pointer[idleWriter] // a subscriber's writer, started on demand (idlewriter.go); nil for publishers

	pong       atomic.Pointer[string] // a ping's payload the writer owes a pong for
	closeOnce  sync.Once
	closeMsg   atomic.Pointer[[]byte] // the close frame the writer owes, once it is owed
	closedByUs atomic.Bool            // we sent a close frame: let the peer read it before the socket goes
	ended      atomic.Pointer[ending] // why the hub ended the connection, if it did
}

// endKind is how a connection ended: its close reason, logged when it
// goes and, for the hub's own decisions, counted (refusals under their
// reason, takeovers in Stats.Replaced, evictions in Stats.Evicted).
type endKind uint8

const (
	endPeerClosed endKind = iota // the peer sent a close frame
	endLost                      // the connection broke, or went silent past the pong wait
	endRefused                   // the hub refused something the peer sent (ending.refused says what)
	endReplaced                  // a newer publisher took the channel
	endShutdown                  // the hub is shutting down
	endEvicted                   // a write stalled past the write timeout (slow.go)
	endRevoked                   // a reload took away its token's right
)

var endNames = [...]string{"peer_closed", "lost", "refused", "replaced", "shutdown", "evicted", "revoked"}

func (k endKind) String() string { return endNames[k] }

// ending is why a connection ended, as logged when it goes.
type ending struct {
	kind    endKind
	refused reason // for endRefused
	detail  string // the close text, or the error
}

// attrs are the log attributes of e.
func (e ending) attrs() []slog.Attr {
	a := []slog.Attr{slog.String("end", e.kind.String())}
	if e.kind == endRefused {
		a = append(a, slog.String("reason", e.refused.String()))
	}
	if e.detail != "" {
		a = append(a, slog.String("detail", truncate(e.detail, 200)))
	}
	return a
}

// endedBy returns why the connection ended: as the hub recorded it when it
// ended it, or else from the error that ended the read.
func (c *wsConn) endedBy(err error) ending {
	if e := c.ended.Load(); e != nil {
		return *e
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ending{kind: endPeerClosed, detail: fmt.Sprintf("%d %s", ce.Code, ce.Text)}
	}
	if err == nil {
		return ending{kind: endLost}
	}
	return ending{kind: endLost, detail: err.Error()}
}

// poke wakes the connection's writer (starting a subscriber's if none
// runs). It never blocks.
func (c *wsConn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
	c.writer.Load().kick()
}

// closeWith records why the hub ends the connection and has its writer send
// a close frame with code and text (once; later calls record nothing
// more), then the socket is closed once the peer has had a moment to read
// it. It never blocks, so closing many connections (a shutdown, a reload)
// costs no more than closing one: the write in progress, if any, gets
// controlWait to finish, so does the close frame after it, and the reader
// waits as long for the peer's reply. Safe from any goroutine.
func (c *wsConn) closeWith(why ending, code int, text string) {
	c.ended.CompareAndSwap(nil, &why)
	c.closeOnce.Do(func() {
		c.closedByUs.Store(true)
		msg := wsMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, truncate(text, 123)))
		deadline := time.Now().Add(controlWait)
		_ = c.nc.SetWriteDeadline(deadline)
		_ = c.ws.SetReadDeadline(deadline)
		c.closeMsg.Store(&msg)
		c.poke()
	})
}

// owePong is the connection's ping handler: the writer owes the peer a
// pong with the ping's payload (the newest ping's, if several arrive
// before it writes), so that gorilla never writes the pong itself.
func (c *wsConn) owePong(data string) error {
	c.pong.Store(&data)
	c.poke()
	return nil
}

// closeSent records why the hub ends the connection when the close frame
// has gone out already: gorilla writes one itself, from the reader, when a
// message passes the read limit (1009) or a frame breaks the protocol
// (1002), before it returns the error. The writer then owes none.
func (c *wsConn) closeSent(why ending) {
	c.ended.CompareAndSwap(nil, &why)
	c.closeOnce.Do(func() {
		c.closedByUs.Store(true)
		_ = c.ws.SetReadDeadline(time.Now().Add(controlWait))
	})
}

// replyClose answers a close frame from the peer with one carrying its
// code, as RFC 6455 §5.5.1 asks, by way of the writer. It is the
// connection's close handler, so gorilla never writes the reply itself.
func (c *wsConn) replyClose(code int, _ string) error {
	c.closeOnce.Do(func() {
		var payload []byte
		if code != websocket.CloseNoStatusReceived {
			payload = websocket.FormatCloseMessage(code, "")
		}
		msg := wsMessage(websocket.CloseMessage, payload)
		_ = c.nc.SetWriteDeadline(time.Now().Add(controlWait))
		c.closeMsg.Store(&msg)
		c.poke()
	})
	return nil
}

// writeOwedClose writes the close frame the connection owes, if it owes
// one, and reports whether it did: the writer then writes nothing more.
// Only the writer calls it.
func (c *wsConn) writeOwedClose() bool {
	msg := c.closeMsg.Load()
	if msg == nil {
		return false
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(controlWait))
	_, _ = c.nc.Write(*msg)
	return true
}

// reset closes the TCP connection with SO_LINGER 0, so the kernel sends a
// RST and frees the socket's buffers at once instead of trying to deliver
// what a stalled peer never reads. A write blocked on the socket returns.
// Safe from any goroutine.
func (c *wsConn) reset() {
	if tcp := tcpConn(c.nc); tcp != nil {
		_ = tcp.SetLinger(0)
	}
	_ = c.ws.Close()
}

// upgrade performs the WebSocket handshake, telling the client the hub's
// limits, and registers the connection. It returns nil if the handshake
// failed (the upgrader answered) or the hub is shutting down.
func (h *Hub) upgrade(w http.ResponseWriter, r *http.Request, channel string, right Right, readLimit int64) *wsConn {
	up := &h.upgrader
	if right == RightView {
		up = &h.subUpgrader
	}
	ws, err := up.Upgrade(w, r, h.limitHeaders)
	if err != nil {
		return nil
	}
	ws.SetReadLimit(readLimit)
	c := &wsConn{ws: ws, nc: ws.NetConn(), remote: r.RemoteAddr, channel: channel, right: right,
		token: requestToken(r, false), wake: make(chan struct{}, 1)}
	ws.SetCloseHandler(c.replyClose)
	ws.SetPingHandler(c.owePong)
	h.mu.Lock()
	closing := h.closing
	if !closing {
		h.conns[c] = struct{}{}
	}
	h.mu.Unlock()
	if closing {
		// No writer yet: this goroutine, the only one to know c, writes.
		c.closeWith(ending{kind: endShutdown}, websocket.CloseGoingAway, "hub shutting down")
		c.writeOwedClose()
		_ = ws.Close()
		return nil
	}
	// A Reload between the request's authorization and this registration
	// did not see the connection: check it against the access in force now.
	if !h.access().grants(c.token, channel, right) {
		c.closeWith(ending{kind: endRevoked}, protocol.CloseRevoked, "token no longer grants this right")
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
	_ = c.nc.SetReadDeadline(time.Now().Add(drainWait))
	_, _ = io.CopyN(io.Discard, c.nc, drainBytes)
}

// keepAlive arms the read deadline and extends it on every pong.
func (h *Hub) keepAlive(c *wsConn) {
	_ = c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
	})
}

// readFailure counts and reports why a read ended: a message over the limit
// or a frame that breaks the WebSocket protocol is a refusal; a close or a
// dropped connection is not.
func (h *Hub) readFailure(c *wsConn, err error) {
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent close 1009 itself.
		h.refuse(reasonTooBig, c.remote, refusals[reasonTooBig].text, slog.String("channel", c.channel))
		c.closeSent(ending{kind: endRefused, refused: reasonTooBig, detail: "message too big"})
	case errors.As(err, &ce), connectionFailure(err), errors.Is(err, io.EOF), errors.Is(err, websocket.ErrCloseSent):
	default:
		// What is left are gorilla's protocol errors, for which it has
		// already sent close 1002 with the cause.
		h.refuse(reasonBadWebSocket, c.remote, refusals[reasonBadWebSocket].text,
			slog.String("channel", c.channel), slog.String("error", err.Error()))
		c.closeSent(ending{kind: endRefused, refused: reasonBadWebSocket, detail: err.Error()})
	}
}

// serveWebSocket upgrades a request and runs the connection in its own
// goroutine, which Shutdown waits for. The handler returns at once: that
// lets net/http free the request, its headers and the connection's HTTP
// write buffer, which would otherwise live as long as the WebSocket.
// release, if not nil, runs when the connection ends or fails to open.
func (h *Hub) serveWebSocket(w http.ResponseWriter, r *http.Request, name string, right Right, readLimit int64, release func(), run func(*wsConn)) {
	c := h.upgrade(w, r, name, right, readLimit)
	if c == nil {
		release()
		h.handlers.Done()
		return
	}
	go func() {
		defer h.handlers.Done()
		defer release()
		defer h.unregister(c)
		run(c)
	}()
}
