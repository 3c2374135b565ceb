package hub

import (
	"net/netip"
	"sync"
	"time"

	"framehub/internal/ratelimit"
)

// Per-IP connection limits are enforced where connections are accepted
// (listener.go), before any byte is read: a client that opens sockets and
// trickles header bytes (slowloris) is stopped by the count, one that opens
// them fast by the rate, whatever it later sends.

// Defaults for the per-IP limits.
const (
	DefaultMaxConnsPerIP = 256
	DefaultConnRatePerIP = 50 // new connections per second, sustained
)

// ipLimiter counts open connections and new-connection tokens per IP.
// Safe for concurrent use.
type ipLimiter struct {
	// Static after construction.
	max   int
	rate  float64 // new connections per second
	burst float64

	mu  sync.Mutex
	ips map[netip.Addr]*ipState
}

type ipState struct {
	open int
	new  ratelimit.Bucket
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
		s = &ipState{new: ratelimit.NewBucket(l.rate, l.burst)}
		l.ips[ip] = s
	}
	if s.open >= l.max {
		return false, reasonTooManyConnsPerIP
	}
	if !s.new.Allow(now) {
		return false, reasonConnRatePerIP
	}
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
		if s.open == 0 && s.new.Full(now) {
			delete(l.ips, ip)
		}
	}
}
