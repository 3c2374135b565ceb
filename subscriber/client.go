// Package subscriber receives a channel's frames from a hub, shows them and
// records them. The headless client, its statistics and the recorder's
// Matroska writer have no cgo dependency and build everywhere; the native
// viewer, DecodeMat and the recorder's OpenCV formats (.avi, .mp4) live in
// cgo-only files. Every decoder checks a frame's picture size
// (PictureSize) before it allocates.
//
// Recordings are continuous (Record) or by event (RecordEvents: a file per
// event from the frames' metadata, with a pre-roll ring bounded in bytes),
// and either may keep their files within an age and a size (Retention: one
// implementation, which deletes only files it wrote, checked against its
// ledger).
package subscriber

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/dial"
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
	// Want is the rendition to receive: the zero value is the main
	// picture; MaxWidth asks for the narrowest rendition at least that
	// wide (or else the widest), following the renditions the channel has.
	Want   protocol.RenditionWant
	Header http.Header // extra handshake headers, e.g. Authorization
	TLS    *tls.Config
	// Guard caps what the client accepts whatever its hub says: frame,
	// metadata and picture size. The client follows the limits the hub
	// announces in its handshake, each capped by Guard. Zero fields take
	// protocol.ClientGuard's.
	Guard      protocol.Limits
	MinBackoff time.Duration // default 250ms
	MaxBackoff time.Duration // default 2.5s
	// ConnectTimeout bounds the retries before the first connection
	// (default 5 s; negative: forever): see package dial.
	ConnectTimeout time.Duration
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
	dialer *dial.Dialer
	query  dial.Query
	limits protocol.Limits
	log    *slog.Logger

	reconnects atomic.Uint64
	connected  atomic.Bool
	invalid    atomic.Uint64
	lastBadLog atomic.Int64 // Unix ns of the last "invalid frame" log line
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if err := protocol.CheckChannelName(cfg.Channel); err != nil {
		return nil, err
	}
	if cfg.Credit < 0 || cfg.Credit > protocol.MaxCreditWindow {
		return nil, fmt.Errorf("credit window %d: must be 0 (off) to %d", cfg.Credit, protocol.MaxCreditWindow)
	}
	if w := cfg.Want.MaxWidth; w < 0 || w > protocol.MaxRenditionWidth {
		return nil, fmt.Errorf("max width %d: must be 0 (the main picture) to %d pixels", w, protocol.MaxRenditionWidth)
	}
	// Credit mode from the first frame: no race with a control message.
	query := dial.Query{Window: cfg.Credit, Want: cfg.Want}
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
	log = log.With("channel", cfg.Channel)
	d, err := dial.New(dial.Config{Hub: cfg.Hub, Header: cfg.Header, TLS: cfg.TLS, ConnectTimeout: cfg.ConnectTimeout,
		MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff, ReadBufferSize: 64 << 10, Logger: log})
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, dialer: d, query: query, limits: lim, log: log}, nil
}

// URL returns the WebSocket URL the client connects to.
func (c *Client) URL() string {
	u, _ := c.dialer.URL(protocol.PathSubscribe, c.cfg.Channel, c.query)
	return u
}

// HubURL returns the hub's HTTP base URL.
func (c *Client) HubURL() string { return c.dialer.HTTPBase() }

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

// Run receives frames and calls fn for each until ctx ends (it returns
// nil), fn returns ErrStop (nil) or another error (that error), or the hub
// cannot be reached or refuses the client as package dial says (a
// *dial.Error, which wraps a *protocol.RefusedError for a refusal).
func (c *Client) Run(ctx context.Context, fn FrameFunc) error {
	everConnected := false
	for ctx.Err() == nil {
		ws, resp, err := c.dialer.Dial(ctx, protocol.PathSubscribe, c.cfg.Channel, c.query)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if everConnected {
			c.reconnects.Add(1)
		}
		everConnected = true
		c.log.Info("connected", "hub", c.dialer.HTTPBase())
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
			c.dialer.ResetBackoff()
		}
		c.log.Warn("disconnected from hub; reconnecting", "error", errString(err))
		// Jittered, so viewers cut off by one hub restart do not all come
		// back in the same instant.
		if !c.dialer.Pause(ctx) {
			break
		}
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
			if c.cfg.Credit > 0 {
				// Even a header this client cannot parse names its frame's
				// sequence number; without the ack the hub's window stays
				// full and nothing more comes.
				seq, ok := protocol.PeekSeq(msg)
				if !ok {
					return got, connError{fmt.Errorf("a %d-byte message is too short to acknowledge: reconnecting for fresh credit", len(msg))}
				}
				if err := ws.WriteJSON(protocol.Control{Op: protocol.OpAck, Seq: seq}); err != nil {
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
