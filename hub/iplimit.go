package hub

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Per-IP connection limits are enforced where connections are accepted,
// before any byte is read: a client that opens sockets and trickles header
// bytes (slowloris) is stopped by the count, one that opens them fast by
// the rate, whatever it later sends.

// Defaults for the per-IP limits.
const (
	DefaultMaxConnsPerIP     = 256
	DefaultConnRatePerIP     = 50 // new connections per second, sustained
	DefaultReadHeaderTimeout = 10 * time.Second
)

// ipLimiter counts open connections and new-connection tokens per IP.
type ipLimiter struct {
	max   int
	rate  float64 // tokens per second
	burst float64

	mu  sync.Mutex
	ips map[netip.Addr]*ipState
}

type ipState struct {
	open   int
	tokens float64
	last   time.Time
}

func newIPLimiter(maxOpen int, rate float64) *ipLimiter {
	return &ipLimiter{max: maxOpen, rate: rate, burst: max(2*rate, 10), ips: make(map[netip.Addr]*ipState)}
}

// acquire takes a place for a new connection from ip, or says which limit
// refuses it.
func (l *ipLimiter) acquire(ip netip.Addr, now time.Time) (ok bool, why reason) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.ips[ip]
	if s == nil {
		s = &ipState{tokens: l.burst, last: now}
		l.ips[ip] = s
	}
	s.tokens = min(l.burst, s.tokens+now.Sub(s.last).Seconds()*l.rate)
	s.last = now
	if s.open >= l.max {
		return false, reasonTooManyConnsPerIP
	}
	if s.tokens < 1 {
		return false, reasonConnRatePerIP
	}
	s.tokens--
	s.open++
	return true, 0
}

func (l *ipLimiter) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.ips[ip]; s != nil {
		s.open--
	}
}

// sweep forgets idle IPs whose bucket has refilled, so the map stays as
// small as the set of clients that are connected or recently busy.
func (l *ipLimiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, s := range l.ips {
		if s.open == 0 && s.tokens+now.Sub(s.last).Seconds()*l.rate >= l.burst {
			delete(l.ips, ip)
		}
	}
}

// Listener wraps ln so that the hub's per-IP limits apply to every
// connection it accepts. A refused connection gets a plain-text 429 and is
// closed; the refusal is counted and logged like any other.
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
		body := "too many connections: " + limit + "\n"
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

// Server returns an http.Server for the hub with its header and idle
// timeouts. Serve it on h.Listener(ln) for the per-IP limits.
func (h *Hub) Server() *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: h.cfg.ReadHeaderTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}
