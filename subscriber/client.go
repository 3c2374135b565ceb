// Package subscriber receives a channel's frames from a hub, shows them and
// records them. The headless client, its statistics and the recorder's
// Matroska writer have no cgo dependency and build everywhere; the native
// viewer, DecodeMat and the recorder's OpenCV formats (.avi, .mp4) live in
// cgo-only files. Every decoder checks a frame's picture size
// (PictureSize) before it allocates.
package subscriber

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/backoff"
	"framehub/protocol"
)

// ErrStop, returned by a FrameFunc, ends Run without an error.
var ErrStop = errors.New("stop")

// Frame is a received frame and when it arrived.
type Frame struct {
	protocol.Frame
	Received time.Time
	Size     int // bytes of the whole message
}

// Age returns how old the frame was when it arrived: receive time minus
// capture time. It is glass-to-glass latency when publisher and subscriber
// share a clock (one machine, or NTP-synced ones).
func (f *Frame) Age() time.Duration { return f.Received.Sub(time.Unix(0, f.CaptureTime)) }

// FrameFunc handles one frame. It runs on the client's reading goroutine:
// while it runs no newer frame is read, so the hub skips frames for this
// client instead of queueing them. Frame data is valid only during the call.
type FrameFunc func(*Frame) error

// Config configures a Client.
type Config struct {
	Hub     string // http://, https://, ws://, wss:// or host:port
	Channel string
	// Credit, if positive, asks the hub for acknowledged delivery with this
	// many frames in flight; the client acknowledges each frame after its
	// FrameFunc returns.
	Credit int
	Header http.Header // extra handshake headers, e.g. Authorization
	TLS    *tls.Config
	// Guard caps what the client accepts whatever its hub says: frame,
	// metadata and picture size. The client follows the limits the hub
	// announces in its handshake, each capped by Guard. Zero fields take
	// protocol.ClientGuard's.
	Guard      protocol.Limits
	MinBackoff time.Duration // default 250ms
	MaxBackoff time.Duration // default 2.5s
	// IdleTimeout drops a connection on which nothing (no frame, no ping)
	// arrived for this long, and reconnects: the hub pings every 10 s by
	// default, so only a vanished hub or a cut network is that quiet.
	// Default 30s.
	IdleTimeout time.Duration
	Logger      *slog.Logger // nil discards
}

// Client connects to a hub channel and reconnects forever, with capped,
// jittered backoff, until its context ends. Create it with New; Run may be
// called once. Reconnects and Connected are safe to call concurrently.
type Client struct {
	cfg    Config
	url    string
	limits protocol.Limits
	log    *slog.Logger

	reconnects atomic.Uint64
	connected  atomic.Bool
	invalid    atomic.Uint64
	lastBadLog atomic.Int64 // Unix ns of the last "invalid frame" log line
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := protocol.ChannelURL(cfg.Hub, protocol.PathSubscribe, cfg.Channel)
	if err != nil {
		return nil, err
	}
	if cfg.Credit < 0 || cfg.Credit > protocol.MaxCreditWindow {
		return nil, fmt.Errorf("credit window %d: must be 0 (off) to %d", cfg.Credit, protocol.MaxCreditWindow)
	}
	if cfg.Credit > 0 {
		// Credit mode from the first frame: no race with a control message.
		u += "?" + protocol.QueryWindow + "=" + strconv.Itoa(cfg.Credit)
	}
	lim := protocol.ClientGuard
	if g := cfg.Guard; g.MaxFrameBytes > 0 {
		lim.MaxFrameBytes = g.MaxFrameBytes
	}
	if g := cfg.Guard; g.MaxMetaBytes > 0 {
		lim.MaxMetaBytes = g.MaxMetaBytes
	}
	if g := cfg.Guard; g.MaxPixels > 0 {
		lim.MaxPixels = g.MaxPixels
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, url: u, limits: lim, log: log.With("channel", cfg.Channel)}, nil
}

// URL returns the WebSocket URL the client connects to.
func (c *Client) URL() string { return c.url }

// Reconnects returns how many times the client connected again after its
// first connection.
func (c *Client) Reconnects() uint64 { return c.reconnects.Load() }

// Connected reports whether the client is connected now.
func (c *Client) Connected() bool { return c.connected.Load() }

// Invalid returns how many frames the client refused (past its guard, or
// malformed) and skipped.
func (c *Client) Invalid() uint64 { return c.invalid.Load() }

// DefaultIdleTimeout is Config.IdleTimeout's default: three of the hub's
// default ping intervals.
const DefaultIdleTimeout = 30 * time.Second

// PermanentError is a refusal that retrying cannot fix, such as a bad
// channel name (HTTP 400) or a missing right (401, 403).
type PermanentError struct {
	Status int
	Body   string
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("hub refused the connection: %d %s %s", e.Status, http.StatusText(e.Status), e.Body)
}

// Run receives frames and calls fn for each until ctx ends (it returns
// nil), fn returns ErrStop (nil) or another error (that error), or the hub
// refuses the connection permanently (a *PermanentError).
func (c *Client) Run(ctx context.Context, fn FrameFunc) error {
	b := backoff.Backoff{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: c.cfg.TLS,
		Proxy: http.ProxyFromEnvironment, ReadBufferSize: 64 << 10}
	everConnected := false
	failures := 0 // dial failures in a row: the first is a warning, the rest debug
	for ctx.Err() == nil {
		ws, resp, err := dialer.DialContext(ctx, c.url, c.cfg.Header)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if perr := permanent(resp); perr != nil {
				return perr
			}
			failures++
			level := slog.LevelDebug
			if failures == 1 {
				level = slog.LevelWarn
			}
			c.log.Log(ctx, level, "cannot reach hub; retrying with backoff", "url", c.url, "attempt", failures, "error", err.Error())
			b.Sleep(ctx)
			continue
		}
		failures = 0
		if everConnected {
			c.reconnects.Add(1)
		}
		everConnected = true
		c.log.Info("connected", "url", c.url)
		gotFrame, err := c.session(ctx, ws, protocol.ClientLimits(resp.Header, c.limits), fn)
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil && ctx.Err() == nil && !isConnErr(err) {
			return err
		}
		if ctx.Err() != nil {
			break
		}
		if gotFrame {
			b.Reset()
		}
		c.log.Warn("disconnected from hub; reconnecting", "error", errString(err))
		b.Sleep(ctx)
	}
	return nil
}

// connError marks an error of the connection, after which Run reconnects.
type connError struct{ err error }

func (e connError) Error() string { return e.err.Error() }
func (e connError) Unwrap() error { return e.err }

func isConnErr(err error) bool {
	var ce connError
	return errors.As(err, &ce)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func permanent(resp *http.Response) error {
	if resp == nil {
		return nil
	}
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		buf := make([]byte, 200)
		n, _ := resp.Body.Read(buf)
		return &PermanentError{Status: resp.StatusCode, Body: string(buf[:n])}
	}
	return nil
}

// session reads frames from one connection, accepting what the hub said it
// accepts (lim). It reports whether any frame arrived, and returns a
// connError when the connection ends.
func (c *Client) session(ctx context.Context, ws *websocket.Conn, lim protocol.Limits, fn FrameFunc) (bool, error) {
	c.connected.Store(true)
	defer c.connected.Store(false)
	ws.SetReadLimit(int64(lim.MaxFrameBytes))
	// Closing the connection is how a cancelled context interrupts a read.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			_ = ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
			_ = ws.Close()
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
		_ = ws.Close()
	}()

	idle := c.cfg.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(time.Now().Add(idle))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
	got := false
	for {
		_ = ws.SetReadDeadline(time.Now().Add(idle))
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			return got, connError{err}
		}
		now := time.Now()
		if typ != websocket.BinaryMessage {
			continue
		}
		pf, err := protocol.ParseMessage(msg, lim)
		if err != nil {
			// Skip it, as a viewer must: a frame past this client's guard
			// (or broken) harms no later frame. Its ack returns the credit.
			c.invalid.Add(1)
			if now.UnixNano()-c.lastBadLog.Load() > int64(10*time.Second) {
				c.lastBadLog.Store(now.UnixNano())
				c.log.Warn("skipped a frame this client refuses", "error", err.Error(), "skipped_so_far", c.invalid.Load())
			}
			if _, herr := protocol.ParseHeader(msg); herr == nil && c.cfg.Credit > 0 {
				if err := ws.WriteJSON(protocol.Control{Op: protocol.OpAck, Seq: pf.Seq}); err != nil {
					return got, connError{err}
				}
			}
			continue
		}
		got = true
		f := Frame{Frame: pf, Received: now, Size: len(msg)}
		if err := fn(&f); err != nil {
			return got, err
		}
		if c.cfg.Credit > 0 {
			if err := ws.WriteJSON(protocol.Control{Op: protocol.OpAck, Seq: pf.Seq}); err != nil {
				return got, connError{err}
			}
		}
	}
}
