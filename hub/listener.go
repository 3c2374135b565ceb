package hub

import (
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Listener wraps ln so that the hub's per-IP limits (iplimit.go) apply to
// every connection it accepts. A refused connection gets a plain-text 429
// and is closed; the refusal is counted and logged like any other.
func (h *Hub) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, h: h}
}

type limitListener struct {
	net.Listener
	h *Hub
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ta, ok := c.RemoteAddr().(*net.TCPAddr)
		if !ok {
			return c, nil
		}
		ip := ta.AddrPort().Addr().Unmap()
		if ip.IsLoopback() && !l.h.cfg.LimitLoopback {
			return c, nil
		}
		ok, why := l.h.ipl.acquire(ip, time.Now())
		if ok {
			return &limitedConn{Conn: c, release: sync.OnceFunc(func() { l.h.ipl.release(ip) })}, nil
		}
		limit := "at most " + strconv.Itoa(l.h.cfg.MaxConnsPerIP) + " connections per address"
		if why == reasonConnRatePerIP {
			limit = "at most " + strconv.FormatFloat(l.h.cfg.ConnRatePerIP, 'g', -1, 64) + " new connections per second per address"
		}
		l.h.refuse(why, c.RemoteAddr().String(), "connection over the per-address limit", slog.String("limit", limit))
		body := refusals[why].text + ": " + limit + "\n"
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write([]byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body))
		_ = c.Close()
	}
}

// limitedConn gives its place back when closed, however it is closed (the
// HTTP server, a hijacked WebSocket, a reset).
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// NetConn returns the wrapped connection.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

// tcpConn digs the TCP socket out of TLS and limit wrappers.
func tcpConn(nc net.Conn) *net.TCPConn {
	for range 4 {
		switch c := nc.(type) {
		case *net.TCPConn:
			return c
		case interface{ NetConn() net.Conn }: // *tls.Conn, *limitedConn
			nc = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}
