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

// stream is an MJPEG reader, an event stream or an HTTP upload,
// registered so that Reload can end it.
type stream struct {
	channel string // "" for an event stream of every channel
	token   string // what the client presented, if anything
	right   Right  // RightView for a reader, RightPublish for an upload
	cancel  func()
}

// grants reports whether auth lets a connection admitted with tok keep
// using right on channel; channel "" is a stream of every channel tok may
// use right on (the event stream), which it may keep while tok has right
// on any. A signed token's expiry is not checked: it bounds when its URL
// can be opened, not how long a stream opened with it lasts (a reload
// would otherwise end every stream whose token has expired).
func (a *access) grants(tok, channel string, right Right) bool {
	if a.auth == nil || right&^a.auth.open == 0 {
		return true
	}
	p := a.auth.identifyAt(tok, false)
	if channel == "" {
		return p.valid && p.rights&right == right
	}
	return p.allows(a.auth.open, channel, right)
}

// Reload replaces the tokens, origins and host names the hub accepts,
// without dropping anyone they still admit. Open connections whose token
// no longer grants their right on their channel are closed: WebSockets
// with 4003 (CloseRevoked), MJPEG streams ended, uploads answered 403. It
// returns how many it closed, without waiting for them to go: a stalled
// connection among them costs it nothing (slow.go). New requests are
// checked against the new settings at once. Safe for concurrent use.
func (h *Hub) Reload(a Access) (closed int) {
	if na := a.Auth; na != nil && na.generated {
		// No secret configured: keep signing with the one in force, or
		// every token minted at /api/token would stop verifying.
		if old := h.access().auth; old != nil {
			cp := *na
			cp.secret, cp.generated = old.secret, old.generated
			a.Auth = &cp
		}
	}
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
		if !acc.grants(s.token, s.channel, s.right) {
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

// registerStream lets Reload end st, and ends it at once if a Reload since
// its request was authorized took its right away. The returned func
// unregisters it.
func (h *Hub) registerStream(st *stream) (unregister func()) {
	h.mu.Lock()
	h.streams[st] = struct{}{}
	h.mu.Unlock()
	if !h.access().grants(st.token, st.channel, st.right) {
		st.cancel()
	}
	return func() {
		h.mu.Lock()
		delete(h.streams, st)
		h.mu.Unlock()
	}
}
