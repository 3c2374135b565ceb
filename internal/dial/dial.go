// Package dial is how every framehub client reaches a hub: publish, watch,
// view, record, process, relay and bench. It turns the hub address a user
// typed into URLs, sends the token and TLS settings, retries with capped,
// jittered backoff, and applies one refusal policy, so that every client
// fails the same clear way:
//
//   - A refusal retrying cannot fix ends at once with a
//     *protocol.RefusedError and a hint: a bad channel name (400), a
//     missing or wrong token (401: "--token or --token-file"), a token
//     without the right (403), something that is not a hub (404, or no
//     WebSocket upgrade).
//   - A host name that does not resolve, and a TLS certificate that does
//     not verify ("--ca FILE"), end at once too: waiting will not fix them.
//   - Anything else (connection refused, timeouts, 429 too many
//     connections, 503 hub full) is retried. A client that has never
//     reached the hub retries for ConnectTimeout (default 5 s) and then
//     gives up with the cause and a hint ("is the hub running?"); once it
//     has connected, it retries for as long as its context lasts, so that
//     a hub restart costs viewers a reconnect, not their session.
package dial

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/backoff"
	"framehub/protocol"
)

// DefaultConnectTimeout is how long a client that has never reached its
// hub keeps trying before it gives up.
const DefaultConnectTimeout = 5 * time.Second

// Config says how to reach a hub.
type Config struct {
	Hub    string      // http://, https://, ws://, wss:// or host:port
	Header http.Header // handshake headers, e.g. Authorization: Bearer
	TLS    *tls.Config // nil: the system's roots
	// ConnectTimeout bounds the retries of a client that has never
	// connected (default DefaultConnectTimeout; negative: retry forever).
	ConnectTimeout time.Duration
	MinBackoff     time.Duration // default 250 ms
	MaxBackoff     time.Duration // default 2.5 s
	// ReadBufferSize and WriteBufferSize are the WebSocket connection's
	// buffers (0: gorilla's default of 4 KiB).
	ReadBufferSize, WriteBufferSize int
	Logger                          *slog.Logger // nil discards
}

// Dialer dials one hub's WebSocket endpoints. Dial may be called again
// after a connection ends (it remembers that the hub was reached once);
// it must not be called concurrently with itself. Reached is safe from any
// goroutine.
type Dialer struct {
	cfg     Config
	http    *url.URL
	ws      *url.URL
	log     *slog.Logger
	b       backoff.Backoff
	gorilla websocket.Dialer
	reached atomic.Bool
}

// New checks cfg's hub address and returns a Dialer.
func New(cfg Config) (*Dialer, error) {
	h, w, err := protocol.HubURL(cfg.Hub)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dialer{cfg: cfg, http: h, ws: w, log: log,
		b: backoff.Backoff{Min: cfg.MinBackoff, Max: cfg.MaxBackoff},
		gorilla: websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: cfg.TLS,
			Proxy: http.ProxyFromEnvironment, ReadBufferSize: cfg.ReadBufferSize, WriteBufferSize: cfg.WriteBufferSize,
			Subprotocols: []string{protocol.Subprotocol}},
	}, nil
}

// HTTPBase returns the hub's HTTP base URL (no trailing slash).
func (d *Dialer) HTTPBase() string { return d.http.String() }

// Query is what a client says in its WebSocket URL's query. It is the one
// place clients put protocol's query names together; the zero value asks
// for nothing (a publisher of the main picture and its renditions, or a
// subscriber of the main picture without credit).
type Query struct {
	// Subscribe: credit mode from the first frame, with this many frames
	// in flight (0: off).
	Window int
	// Subscribe: the rendition to receive (zero: the main picture).
	Want protocol.RenditionWant
	// Publish: publish this one rendition only (0: the main picture, and
	// whatever renditions the connection sends with it).
	Rendition protocol.Rendition
	// Publish: capture only while someone watches.
	OnDemand bool
}

// Encode returns q as an encoded query, without "?": parameters in a fixed
// order, or "" when q asks for nothing.
func (q Query) Encode() string {
	var parts []string
	if q.Window > 0 {
		parts = append(parts, protocol.QueryWindow+"="+strconv.Itoa(q.Window))
	}
	switch w := q.Want; {
	case w.MaxWidth > 0:
		parts = append(parts, protocol.QueryMaxWidth+"="+strconv.Itoa(w.MaxWidth))
	case w.Rendition != protocol.RenditionMain:
		parts = append(parts, protocol.QueryRendition+"="+w.Rendition.String())
	}
	if q.Rendition != protocol.RenditionMain {
		parts = append(parts, protocol.QueryRendition+"="+q.Rendition.String())
	}
	if q.OnDemand {
		parts = append(parts, protocol.QueryOnDemand+"=1")
	}
	return strings.Join(parts, "&")
}

// URL returns the WebSocket URL of endpoint (protocol.PathPublish or
// PathSubscribe) for channel, with q as its query.
func (d *Dialer) URL(endpoint, channel string, q Query) (string, error) {
	if err := protocol.CheckChannelName(channel); err != nil {
		return "", err
	}
	u := *d.ws
	u.Path += endpoint + channel
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Reached reports whether a Dial has ever succeeded.
func (d *Dialer) Reached() bool { return d.reached.Load() }

// ResetBackoff makes the next retry wait short again: call it once a
// connection has proved itself (delivered a frame).
func (d *Dialer) ResetBackoff() { d.b.Reset() }

// Pause waits one backoff delay, or until ctx ends (then it returns
// false): for a client whose connection just ended, before it dials again.
func (d *Dialer) Pause(ctx context.Context) bool { return d.b.Sleep(ctx) }

// Dial connects a WebSocket to endpoint for channel, retrying as the
// package doc says. It returns the connection and the handshake response
// (its headers carry the hub's limits), or the error that ended the
// retries: ctx's, a *protocol.RefusedError, or one with a hint. Each
// failure is logged: the first at Warn, the rest at Debug.
func (d *Dialer) Dial(ctx context.Context, endpoint, channel string, q Query) (*websocket.Conn, *http.Response, error) {
	u, err := d.URL(endpoint, channel, q)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		ws, resp, err := d.gorilla.DialContext(ctx, u, d.cfg.Header)
		if err == nil {
			d.reached.Store(true)
			return ws, resp, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if ferr := d.fatal(err, resp, channel); ferr != nil {
			return nil, nil, ferr
		}
		if !d.reached.Load() && d.cfg.ConnectTimeout > 0 && time.Since(start) >= d.cfg.ConnectTimeout {
			return nil, nil, d.gaveUp(err, resp)
		}
		level := slog.LevelDebug
		if attempt == 1 {
			level = slog.LevelWarn
		}
		d.log.Log(ctx, level, "cannot reach hub; retrying with backoff", "hub", d.http.String(), "attempt", attempt, "error", describe(err, resp))
		wait := d.b.Next()
		if !d.reached.Load() && d.cfg.ConnectTimeout > 0 {
			wait = min(wait, max(d.cfg.ConnectTimeout-time.Since(start), time.Millisecond))
		}
		if !backoff.Wait(ctx, wait) {
			return nil, nil, ctx.Err()
		}
	}
}

// Error is a failure to reach the hub, with what to do about it.
type Error struct {
	Hub  string
	Err  error
	Hint string
}

func (e *Error) Error() string {
	s := "cannot reach hub " + e.Hub + ": " + e.Err.Error()
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// fatal returns the error to end with if err cannot be fixed by waiting.
func (d *Dialer) fatal(err error, resp *http.Response, channel string) error {
	if resp != nil {
		rerr := refused(resp)
		if rerr.Permanent() {
			return &Error{Hub: d.http.String(), Err: rerr, Hint: d.hint(rerr.Status, channel)}
		}
		if resp.StatusCode < 300 {
			// Answered, but not with a WebSocket upgrade: not a hub.
			return &Error{Hub: d.http.String(), Err: rerr, Hint: "is --hub the address of a framehub hub?"}
		}
		return nil
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return &Error{Hub: d.http.String(), Err: err, Hint: "check the host name in --hub"}
	}
	var unknownCA x509.UnknownAuthorityError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &certErr) && errors.As(certErr.Err, &unknownCA):
		return &Error{Hub: d.http.String(), Err: err, Hint: "the hub's certificate is signed by an authority this machine does not trust: pass its CA with --ca FILE"}
	case errors.As(err, &hostErr):
		return &Error{Hub: d.http.String(), Err: err, Hint: "the hub's certificate is for another name: use that name in --hub"}
	case errors.As(err, &certErr):
		return &Error{Hub: d.http.String(), Err: err, Hint: "the hub's TLS certificate does not verify"}
	}
	var recordErr tls.RecordHeaderError
	if errors.As(err, &recordErr) {
		return &Error{Hub: d.http.String(), Err: err, Hint: "the hub does not speak TLS here: use http:// or ws:// in --hub"}
	}
	return nil
}

// gaveUp is the error of a client that never reached the hub in time.
func (d *Dialer) gaveUp(err error, resp *http.Response) error {
	hint := "is the hub running? start one with `framehub hub`"
	if resp != nil {
		hint = "the hub is refusing connections; try again later"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Timeout() {
		hint = "no answer: is the hub's address right, and is a firewall in the way?"
	}
	e := err
	if resp != nil {
		e = refused(resp)
	}
	return &Error{Hub: d.http.String(), Err: fmt.Errorf("gave up after %v: %w", d.cfg.ConnectTimeout, e), Hint: hint}
}

// hint says what to do about a permanent refusal.
func (d *Dialer) hint(status int, channel string) string {
	hasToken := d.cfg.Header.Get("Authorization") != ""
	switch status {
	case http.StatusUnauthorized:
		if hasToken {
			return "the hub does not accept this token (wrong, or expired): check --token or --token-file"
		}
		return "the hub needs a token: pass --token-file FILE (or --token, or FRAMEHUB_TOKEN)"
	case http.StatusForbidden:
		if hasToken {
			return "this token does not give the right on channel " + channel + ": ask for a token that does"
		}
		return "the hub refused this client (origin or host not allowed)"
	case http.StatusBadRequest:
		return "check the channel name: 1 to 64 letters, digits, '_' or '-'"
	case http.StatusNotFound:
		return "is --hub the address of a framehub hub?"
	}
	return ""
}

// refused reads a refusal's status and the start of its body.
func refused(resp *http.Response) *protocol.RefusedError {
	var reason string
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		reason = strings.TrimSpace(string(b))
	}
	if reason == "" {
		reason = http.StatusText(resp.StatusCode)
	}
	return &protocol.RefusedError{Status: resp.StatusCode, Reason: reason}
}

func describe(err error, resp *http.Response) string {
	if resp != nil {
		return fmt.Sprintf("%s (HTTP %d)", err.Error(), resp.StatusCode)
	}
	return err.Error()
}

// CloseError returns the hub's close code and reason if err is the end of
// a connection the hub closed, as a *protocol.RefusedError, else nil.
func CloseError(err error) *protocol.RefusedError {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return nil
	}
	return &protocol.RefusedError{Code: ce.Code, Reason: ce.Text}
}
