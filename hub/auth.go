package hub

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"framehub/protocol"
)

// Right is what a token lets its bearer do on a channel.
type Right uint8

const (
	RightView    Right = 1 << iota // subscribe, snapshot, MJPEG, /api
	RightPublish                   // publish
)

func (r Right) String() string {
	var parts []string
	if r&RightPublish != 0 {
		parts = append(parts, "publish")
	}
	if r&RightView != 0 {
		parts = append(parts, "view")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// ParseRights reads "view", "publish" or both joined by commas.
func ParseRights(s string) (Right, error) {
	var r Right
	for p := range strings.SplitSeq(s, ",") {
		switch strings.TrimSpace(p) {
		case "view":
			r |= RightView
		case "publish":
			r |= RightPublish
		default:
			return 0, fmt.Errorf("unknown right %q: want view, publish or publish,view", p)
		}
	}
	return r, nil
}

// MinTokenLen is the shortest token the hub accepts in its configuration:
// long enough that guessing is hopeless even without the failure delay.
const MinTokenLen = 16

// MaxSignedTTL is the longest life of a signed token.
const MaxSignedTTL = 24 * time.Hour

// signedPrefix starts every signed token; configured tokens may not.
const signedPrefix = "fh1."

// Grant gives a token rights on the channels that match any of its
// patterns (path.Match globs over channel names: "*", "cam-*", "lobby").
type Grant struct {
	Token    string
	Rights   Right
	Channels []string
}

// ParseTokens reads a tokens file: one grant per line, "TOKEN RIGHTS
// PATTERNS", where RIGHTS is view, publish or publish,view and PATTERNS
// is a comma-separated list of channel globs. Blank lines and lines
// starting with # are ignored. Errors name the line, never the token.
func ParseTokens(r io.Reader) ([]Grant, error) {
	var out []Grant
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want TOKEN RIGHTS CHANNELS, got %d fields", n, len(f))
		}
		rights, err := ParseRights(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		g := Grant{Token: f[0], Rights: rights, Channels: strings.Split(f[2], ",")}
		if err := g.check(); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, g)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func (g Grant) check() error {
	if len(g.Token) < MinTokenLen {
		return fmt.Errorf("token is shorter than %d characters", MinTokenLen)
	}
	if strings.HasPrefix(g.Token, signedPrefix) {
		return fmt.Errorf("token may not start with %q (reserved for signed tokens)", signedPrefix)
	}
	if strings.ContainsFunc(g.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("token contains spaces or control characters")
	}
	if g.Rights == 0 {
		return errors.New("no rights")
	}
	for _, p := range g.Channels {
		if _, err := path.Match(p, "x"); err != nil || p == "" {
			return fmt.Errorf("bad channel pattern %q", p)
		}
	}
	return nil
}

// Auth decides who may publish and view which channels. A right that no
// grant gives is open to everyone (the caller decides whether that is
// allowed; see Open). A nil *Auth lets everyone do everything.
type Auth struct {
	grants    []grant
	secret    []byte
	generated bool // secret is random, made by NewAuth: Reload keeps the one in force
	open      Right
}

type grant struct {
	hash     [sha256.Size]byte
	rights   Right
	patterns []string
}

// NewAuth builds an Auth from grants and the key that signs short-lived
// tokens (at least 16 bytes; nil picks a random one, so tokens minted by
// this hub's API stop working when it restarts).
func NewAuth(grants []Grant, secret []byte) (*Auth, error) {
	generated := secret == nil
	if generated {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	if len(secret) < 16 {
		return nil, fmt.Errorf("token secret is %d bytes; want at least 16", len(secret))
	}
	a := &Auth{secret: secret, generated: generated, open: RightView | RightPublish}
	for i, g := range grants {
		if err := g.check(); err != nil {
			return nil, fmt.Errorf("grant %d: %w", i+1, err)
		}
		a.grants = append(a.grants, grant{hash: sha256.Sum256([]byte(g.Token)), rights: g.Rights, patterns: g.Channels})
		a.open &^= g.Rights
	}
	return a, nil
}

// Open reports the rights that no grant gives, which anyone has.
func (a *Auth) Open() Right {
	if a == nil {
		return RightView | RightPublish
	}
	return a.open
}

// Sign mints a token that gives right on one channel until exp.
func (a *Auth) Sign(channel string, right Right, exp time.Time) (string, error) {
	if !protocol.ValidChannelName(channel) {
		return "", fmt.Errorf("invalid channel name %q", channel)
	}
	var r string
	switch right {
	case RightView:
		r = "v"
	case RightPublish:
		r = "p"
	default:
		return "", errors.New("a signed token carries exactly one right")
	}
	body := signedPrefix + channel + "." + r + "." + strconv.FormatInt(exp.Unix(), 10)
	return body + "." + a.mac(body), nil
}

func (a *Auth) mac(body string) string {
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// principal is who a request's token says it is.
type principal struct {
	present  bool // a token came with the request
	valid    bool // and it is known (or correctly signed and unexpired)
	signed   bool
	rights   Right
	patterns []string
}

func (p principal) allows(open Right, channel string, need Right) bool {
	if need&^open == 0 {
		return true
	}
	if !p.valid || (p.rights|open)&need != need {
		return false
	}
	for _, pat := range p.patterns {
		if ok, _ := path.Match(pat, channel); ok {
			return true
		}
	}
	return false
}

// identify finds the token a request carries: an Authorization bearer
// token, a WebSocket subprotocol value, or (query true: snapshot and MJPEG
// URLs only) a signed token in ?token=. A configured token is compared
// against every grant in constant time.
func (a *Auth) identify(r *http.Request, query bool) principal {
	return a.identifyToken(requestToken(r, query))
}

// requestToken returns the token a request carries, as identify reads it,
// or "".
func requestToken(r *http.Request, query bool) string {
	tok := ""
	if v := r.Header.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
		tok = strings.TrimSpace(v[7:])
	}
	if tok == "" {
		for _, p := range websocketProtocols(r) {
			if s, ok := strings.CutPrefix(p, protocol.SubprotocolAuthPrefix); ok {
				if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
					tok = string(b)
				}
				break
			}
		}
	}
	if tok == "" && query {
		if q := r.URL.Query().Get(protocol.QueryToken); strings.HasPrefix(q, signedPrefix) {
			tok = q
		}
	}
	return tok
}

// identifyToken finds who tok says the bearer is.
func (a *Auth) identifyToken(tok string) principal { return a.identifyAt(tok, true) }

// identifyAt is identifyToken, optionally without a signed token's expiry.
func (a *Auth) identifyAt(tok string, expiry bool) principal {
	if tok == "" {
		return principal{}
	}
	p := principal{present: true}
	if strings.HasPrefix(tok, signedPrefix) {
		return a.verifySigned(tok, expiry)
	}
	sum := sha256.Sum256([]byte(tok))
	found := -1
	for i := range a.grants {
		if subtle.ConstantTimeCompare(sum[:], a.grants[i].hash[:]) == 1 && found < 0 {
			found = i
		}
	}
	if found >= 0 {
		g := a.grants[found]
		p.valid, p.rights, p.patterns = true, g.rights, g.patterns
	}
	return p
}

func (a *Auth) verifySigned(tok string, expiry bool) principal {
	p := principal{present: true, signed: true}
	i := strings.LastIndexByte(tok, '.')
	body, sig := tok[:i], tok[i+1:]
	if !hmac.Equal([]byte(sig), []byte(a.mac(body))) {
		return p
	}
	f := strings.Split(strings.TrimPrefix(body, signedPrefix), ".")
	if len(f) != 3 || !protocol.ValidChannelName(f[0]) {
		return p
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || (expiry && time.Now().Unix() >= exp) {
		return p
	}
	switch f[1] {
	case "v":
		p.rights = RightView
	case "p":
		p.rights = RightPublish
	default:
		return p
	}
	p.valid, p.patterns = true, []string{f[0]}
	return p
}

// serveToken mints a signed token for a logged-in page or script: POST
// /api/token with {"channel":"cam1","right":"view","ttl_seconds":60} and a
// configured (not signed) token that has that right on that channel.
func (h *Hub) serveToken(w http.ResponseWriter, r *http.Request) {
	auth := h.access().auth
	if auth == nil {
		http.Error(w, "this hub has no access control; no token is needed", http.StatusNotFound)
		return
	}
	var req struct {
		Channel    string  `json:"channel"`
		Right      string  `json:"right"`
		TTLSeconds float64 `json:"ttl_seconds"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, "want JSON {\"channel\":…,\"right\":\"view\",\"ttl_seconds\":60}: "+err.Error(), http.StatusBadRequest)
		return
	}
	right, err := ParseRights(req.Right)
	if err != nil || (right != RightView && right != RightPublish) {
		http.Error(w, "right: want view or publish", http.StatusBadRequest)
		return
	}
	if !protocol.ValidChannelName(req.Channel) {
		h.refuseRequest(w, r, reasonBadName, "", slog.String("path", "/api/token"))
		return
	}
	ttl := time.Duration(req.TTLSeconds * float64(time.Second))
	if ttl == 0 {
		ttl = time.Minute
	}
	if ttl < time.Second || ttl > MaxSignedTTL {
		http.Error(w, fmt.Sprintf("ttl_seconds: want 1 to %.0f", MaxSignedTTL.Seconds()), http.StatusBadRequest)
		return
	}
	p := auth.identify(r, false)
	// A signed token may not mint more (403): its life must stay bounded.
	if !p.valid || p.signed || !p.allows(0, req.Channel, right) {
		h.deny(w, r, p, req.Channel, right)
		return
	}
	exp := time.Now().Add(ttl).Truncate(time.Second)
	tok, err := auth.Sign(req.Channel, right, exp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, map[string]any{"token": tok, "channel": req.Channel, "right": right.String(), "expires": exp.UTC().Format(time.RFC3339)})
}

// websocketProtocols lists the subprotocols a WebSocket request offers.
func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// authorize checks that the request may use right need on channel and,
// when it may not, answers 401 (no token, an unknown or expired one) or
// 403 (a valid token without this right or channel) after a short random
// delay, counts and logs the refusal without the token, and returns false.
func (h *Hub) authorize(w http.ResponseWriter, r *http.Request, channel string, need Right, query bool) bool {
	auth := h.access().auth
	if auth == nil || need&^auth.open == 0 {
		return true
	}
	p := auth.identify(r, query)
	if p.allows(auth.open, channel, need) {
		return true
	}
	h.deny(w, r, p, channel, need)
	return false
}

// deny answers a request that lacks a right.
func (h *Hub) deny(w http.ResponseWriter, r *http.Request, p principal, channel string, need Right) {
	// A random pause makes guessing slow and timing useless; it costs the
	// attacker one of its connections (bounded per IP) for that long.
	switch d := h.cfg.DenyDelay; {
	case d == 0:
		time.Sleep(50*time.Millisecond + mrand.N(100*time.Millisecond))
	case d > 0:
		time.Sleep(d)
	}
	if !p.valid {
		what := "no token"
		if p.present {
			what = "unknown or expired token"
		}
		h.refuse(reasonUnauthorized, r.RemoteAddr, "unauthorized: "+what,
			slog.String("path", truncate(r.URL.EscapedPath(), 100)), slog.String("need", need.String()))
		w.Header().Set("WWW-Authenticate", `Bearer realm="framehub"`)
		msg := "unauthorized: this hub needs a " + need.String() + " token"
		if p.present {
			msg = "unauthorized: the " + need.String() + " token is unknown or expired"
		}
		http.Error(w, msg+" (clients: --token or --token-file; HTTP: Authorization: Bearer TOKEN)", refusals[reasonUnauthorized].status)
		return
	}
	h.refuse(reasonForbidden, r.RemoteAddr, "forbidden: token lacks the right",
		slog.String("path", truncate(r.URL.EscapedPath(), 100)), slog.String("need", need.String()))
	what := "on channel " + channel
	if channel == "" {
		what = "here"
	}
	http.Error(w, "forbidden: this token has no "+need.String()+" right "+what, refusals[reasonForbidden].status)
}
