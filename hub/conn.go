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

// controlWait bounds writing a close or ping frame.
const controlWait = time.Second

// wsConn is one upgraded WebSocket connection, publisher or subscriber.
//
// Writes: control frames go through gorilla (WriteControl, safe from any
// goroutine); a subscriber's frames are written by its one writer
// goroutine straight to the socket, as the single Write of a frame that
// already carries its WebSocket header (see frame.wire). A Write on a
// net.Conn is atomic with respect to other Writes, so the two never
// interleave within a frame.
type wsConn struct {
	// Static after construction.
	ws      *websocket.Conn
	nc      net.Conn // ws.NetConn(): TCP, or TLS over TCP
	remote  string
	channel string
	right   Right                      // what it uses the channel for: RightPublish or RightView
	token   string                     // what it presented, for Reload to check again; never logged
	sub     atomic.Pointer[subscriber] // set for subscribers, for the write watchdog

	closeOnce  sync.Once
	closedByUs atomic.Bool            // we sent a close frame: let the peer read it before the socket goes
	ended      atomic.Pointer[ending] // why the hub ended the connection, if it did
}

// endKind is how a connection ended.
type endKind uint8

const (
	endPeerClosed endKind = iota // the peer sent a close frame
	endLost                      // the connection broke, or went silent past the pong wait
	endRefused                   // the hub refused something the peer sent (ending.refused says what)
	endReplaced                  // a newer publisher took the channel
	endShutdown                  // the hub is shutting down
	endEvicted                   // a write stalled past the write timeout
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

// closeWith records why the hub ends the connection, sends a close frame
// with code and text (at most once), then closes the socket after a moment
// so the peer can read it. Safe to call from any goroutine: gorilla allows
// WriteControl concurrently with writes.
func (c *wsConn) closeWith(why ending, code int, reason string) {
	c.ended.CompareAndSwap(nil, &why)
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
// what a stalled peer never reads. A write blocked on the socket returns.
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
	ws, err := h.upgrader.Upgrade(w, r, h.limitHeaders)
	if err != nil {
		return nil
	}
	ws.SetReadLimit(readLimit)
	c := &wsConn{ws: ws, nc: ws.NetConn(), remote: r.RemoteAddr, channel: channel, right: right,
		token: requestToken(r, false)}
	h.mu.Lock()
	closing := h.closing
	if !closing {
		h.conns[c] = struct{}{}
	}
	h.mu.Unlock()
	if closing {
		c.closeWith(ending{kind: endShutdown}, websocket.CloseGoingAway, "hub shutting down")
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
		h.refuse(reasonTooBig, c.remote, "message over the read limit", slog.String("channel", c.channel))
		c.closeWith(ending{kind: endRefused, refused: reasonTooBig}, websocket.CloseMessageTooBig, "message too big")
	case errors.As(err, &ce), connectionFailure(err), errors.Is(err, io.EOF), errors.Is(err, websocket.ErrCloseSent):
	default:
		// What is left are gorilla's protocol errors, for which it has
		// already sent close 1002 with the cause.
		h.refuse(reasonBadWebSocket, c.remote, "frame breaks the WebSocket protocol",
			slog.String("channel", c.channel), slog.String("error", err.Error()))
		c.ended.CompareAndSwap(nil, &ending{kind: endRefused, refused: reasonBadWebSocket, detail: err.Error()})
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
