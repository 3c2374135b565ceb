// Package publisher captures frames, processes and encodes them, and pushes
// them to a hub channel, newest frame first.
//
// The pipeline has two goroutines. Capture reads frames from the source
// (camera, file, URL, GStreamer pipeline or test pattern) as they come and
// stamps each with its capture time; the sender takes the newest captured
// frame, processes it (resize, flip, rotate, filters), encodes it (JPEG or
// raw) and writes it to the hub. If processing, encoding or the network is
// slower than the camera, the frames captured in between are skipped and
// counted, never queued, so latency cannot build up.
//
// Capture, processing and encoding need OpenCV (gocv) and are built only
// with cgo; the Sender, which owns the connection to the hub, is pure Go.
package publisher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/backoff"
	"framehub/protocol"
)

// ErrReplaced means a newer publisher took over the channel; retrying
// would only take it back and forth.
var ErrReplaced = errors.New("replaced by a newer publisher of the channel")

// SenderConfig configures a Sender.
type SenderConfig struct {
	Hub          string
	Channel      string
	Header       http.Header // extra handshake headers, e.g. Authorization
	TLS          *tls.Config
	WriteTimeout time.Duration // one frame write; default 5s
	MinBackoff   time.Duration // default 250ms
	MaxBackoff   time.Duration // default 1s: a channel's only publisher comes back first
	Logger       *slog.Logger  // nil discards
}

// Sender holds the connection to the hub and reconnects it with capped,
// jittered backoff. Send and Close must not be called concurrently with
// each other or themselves; Connected may be called from any goroutine.
type Sender struct {
	cfg SenderConfig
	url string
	log *slog.Logger
	b   backoff.Backoff

	mu         sync.Mutex // guards the fields below
	ws         *websocket.Conn
	readerDone chan struct{}
	closeErr   error // why the hub closed the connection, if it said
	reconnects uint64
	everUp     bool
}

// NewSender checks cfg and returns a Sender; it connects on the first Send.
func NewSender(cfg SenderConfig) (*Sender, error) {
	u, err := protocol.ChannelURL(cfg.Hub, protocol.PathPublish, cfg.Channel)
	if err != nil {
		return nil, err
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		// Publishers are few and every viewer of the channel waits for
		// this one, so it retries more often than subscribers do.
		cfg.MaxBackoff = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{cfg: cfg, url: u, log: log.With("channel", cfg.Channel),
		b: backoff.Backoff{Min: cfg.MinBackoff, Max: cfg.MaxBackoff}}, nil
}

// Connected reports whether the sender has a live connection.
func (s *Sender) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws != nil
}

// Reconnects returns how many times the sender connected again after its
// first connection.
func (s *Sender) Reconnects() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconnects
}

// Connect makes sure the sender is connected, dialing with backoff until it
// is or ctx ends. A refusal that retrying cannot fix (bad channel name,
// missing right: a *protocol.RefusedError) is returned at once; one that
// waiting can fix (429 too many connections, 503 hub full) is retried with
// backoff like an unreachable hub.
func (s *Sender) Connect(ctx context.Context) error {
	if s.Connected() {
		return nil
	}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: s.cfg.TLS,
		Proxy: http.ProxyFromEnvironment, WriteBufferSize: 64 << 10}
	failures := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ws, resp, err := dialer.DialContext(ctx, s.url, s.cfg.Header)
		if err == nil {
			s.attach(ws)
			s.log.Info("connected to hub", "url", s.url)
			return nil
		}
		if resp != nil && resp.StatusCode >= 400 {
			buf := make([]byte, 200)
			n, _ := resp.Body.Read(buf)
			rerr := &protocol.RefusedError{Status: resp.StatusCode, Reason: strings.TrimSpace(string(buf[:n]))}
			if rerr.Permanent() {
				return rerr
			}
			err = rerr
		}
		failures++
		level := slog.LevelDebug
		if failures == 1 {
			level = slog.LevelWarn
		}
		s.log.Log(ctx, level, "cannot reach hub; retrying with backoff", "url", s.url, "attempt", failures, "error", err.Error())
		s.b.Sleep(ctx)
	}
}

// attach installs a new connection and starts its reader, which answers
// pings and notices the hub closing the connection.
func (s *Sender) attach(ws *websocket.Conn) {
	done := make(chan struct{})
	s.mu.Lock()
	if s.everUp {
		s.reconnects++
	}
	s.everUp = true
	s.ws, s.readerDone, s.closeErr = ws, done, nil
	s.mu.Unlock()
	ws.SetReadLimit(4096) // the hub sends only control frames
	go func() {
		defer close(done)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					s.mu.Lock()
					s.closeErr = ce
					s.mu.Unlock()
				}
				_ = ws.Close() // makes a blocked Send fail at once
				return
			}
		}
	}()
}

// Send writes one encoded frame, connecting first if needed. On a write
// error it drops the connection and returns the error; the next Send
// reconnects. msg may be reused once Send returns.
func (s *Sender) Send(ctx context.Context, msg []byte) error {
	if err := s.Connect(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	ws := s.ws
	s.mu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		return s.drop(err)
	}
	s.b.Reset()
	return nil
}

// drop ends the current connection after an error and says why.
func (s *Sender) drop(err error) error {
	s.mu.Lock()
	ws, done := s.ws, s.readerDone
	s.ws = nil
	s.mu.Unlock()
	if ws == nil {
		return err
	}
	_ = ws.Close()
	<-done
	s.mu.Lock()
	ce := s.closeErr
	s.mu.Unlock()
	var cerr *websocket.CloseError
	if errors.As(ce, &cerr) {
		if cerr.Code == protocol.CloseReplaced {
			return ErrReplaced
		}
		err = fmt.Errorf("hub closed the connection: %d %s", cerr.Code, cerr.Text)
	}
	s.log.Warn("lost connection to hub; reconnecting", "error", err.Error())
	return err
}

// Close sends a normal close frame and ends the connection.
func (s *Sender) Close() error {
	s.mu.Lock()
	ws, done := s.ws, s.readerDone
	s.ws = nil
	s.mu.Unlock()
	if ws == nil {
		return nil
	}
	_ = ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, "publisher done"), time.Now().Add(time.Second))
	// Give the hub a moment to answer the close, then cut.
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	err := ws.Close()
	<-done
	return err
}

// Stats are a publisher's counters. Captured counts frames the source
// delivered; Sent those written to the hub; Skipped those captured but
// overwritten by a newer frame before the sender took them.
type Stats struct {
	Captured   uint64
	Sent       uint64
	Skipped    uint64
	Bytes      uint64        // payload bytes sent, headers included
	EncodeTime time.Duration // total time spent processing and encoding sent frames
	Reconnects uint64
	Width      int
	Height     int
}

// Status formats the change between two Stats over dt as a status line.
func Status(prev, cur Stats, dt time.Duration, connected bool) string {
	secs := dt.Seconds()
	if secs <= 0 {
		secs = 1
	}
	sent := cur.Sent - prev.Sent
	encMS := 0.0
	if sent > 0 {
		encMS = float64(cur.EncodeTime-prev.EncodeTime) / float64(time.Millisecond) / float64(sent)
	}
	state := ""
	if !connected {
		state = "  (not connected)"
	}
	return fmt.Sprintf("captured %5.1f fps  sent %5.1f fps  %7.0f kbps  %dx%d  encode %5.1f ms  skipped %d%s",
		float64(cur.Captured-prev.Captured)/secs, float64(sent)/secs, 8*float64(cur.Bytes-prev.Bytes)/1000/secs,
		cur.Width, cur.Height, encMS, cur.Skipped, state)
}
