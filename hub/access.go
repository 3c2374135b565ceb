package hub

import (
	"context"
	"log/slog"
	"strings"

	"framehub/protocol"
)

// Access is what Reload can change while the hub runs: the tokens and the
// browser origins and host names it accepts. Config sets the first one.
type Access struct {
	Auth           *Auth    // nil: every right open
	AllowedOrigins []string // as Config.AllowedOrigins
	AllowedHosts   []string // as Config.AllowedHosts
}

// access is an Access in the form the hub checks it, swapped whole.
type access struct {
	auth    *Auth
	origins []string // lower case, no trailing slash
	hosts   []string // lower case
}

func newAccess(a Access) *access {
	acc := &access{auth: a.Auth}
	for _, o := range a.AllowedOrigins {
		acc.origins = append(acc.origins, strings.ToLower(strings.TrimSuffix(o, "/")))
	}
	for _, n := range a.AllowedHosts {
		acc.hosts = append(acc.hosts, hostName(n))
	}
	return acc
}

func (h *Hub) access() *access { return h.acc.Load() }

// stream is an MJPEG reader, registered so that Reload can end it.
type stream struct {
	channel string
	token   string // what the reader presented, if anything
	cancel  context.CancelFunc
}

// grants reports whether auth lets a bearer of tok use right on channel.
func (a *access) grants(tok, channel string, right Right) bool {
	if a.auth == nil || right&^a.auth.open == 0 {
		return true
	}
	return a.auth.identifyToken(tok).allows(a.auth.open, channel, right)
}

// Reload replaces the tokens, origins and host names the hub accepts,
// without dropping anyone they still admit. Open connections whose token
// no longer grants their right on their channel are closed: WebSockets
// with 4003 (CloseRevoked), MJPEG streams ended. It returns how many were
// closed. New requests are checked against the new settings at once. Safe
// for concurrent use.
func (h *Hub) Reload(a Access) (closed int) {
	acc := newAccess(a)
	h.acc.Store(acc)
	h.mu.Lock()
	var revoked []*wsConn
	for c := range h.conns {
		if !acc.grants(c.token, c.channel, c.right) {
			revoked = append(revoked, c)
		}
	}
	var ended []*stream
	for s := range h.streams {
		if !acc.grants(s.token, s.channel, RightView) {
			ended = append(ended, s)
		}
	}
	h.mu.Unlock()
	for _, c := range revoked {
		c.closeWith(ending{kind: endRevoked}, protocol.CloseRevoked, "token no longer grants this right")
	}
	for _, s := range ended {
		s.cancel()
	}
	closed = len(revoked) + len(ended)
	h.log.LogAttrs(context.Background(), slog.LevelInfo, "access reloaded",
		slog.Bool("auth", a.Auth != nil), slog.Int("origins", len(acc.origins)), slog.Int("hosts", len(acc.hosts)),
		slog.Int("connections_closed", closed))
	return closed
}
