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
	"encoding/json"
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

// ErrReplaced means a newer publisher took over the channel; retrying
// would only take it back and forth.
var ErrReplaced = errors.New("replaced by a newer publisher of the channel")

// DefaultOnDemandHold is the default of publish --on-demand-hold (see
// Config.OnDemandHold): long enough for a viewer switching between pages,
// a snapshot poller, or a hub restart; short enough that an unwatched
// camera's light goes off soon after.
const DefaultOnDemandHold = 10 * time.Second

// SenderConfig configures a Sender.
type SenderConfig struct {
	Hub          string
	Channel      string
	Header       http.Header // extra handshake headers, e.g. Authorization
	TLS          *tls.Config
	WriteTimeout time.Duration // one frame write; default 5s
	MinBackoff   time.Duration // default 250ms
	MaxBackoff   time.Duration // default 1s: a channel's only publisher comes back first
	// ConnectTimeout bounds the retries before the first connection
	// (default 5 s; negative: forever): see package dial.
	ConnectTimeout time.Duration
	// OnDemand tells the hub that this publisher captures only while
	// someone watches (?on_demand=1), for its listings; Viewers says how
	// many do either way.
	OnDemand bool
	// Rendition, when not the main picture, makes this a publisher of that
	// one rendition of the channel (?rendition=N): a source that makes a
	// small copy of frames another publisher sends (a processing step, an
	// ffmpeg scale). Every frame sent must carry it.
	Rendition protocol.Rendition
	Logger    *slog.Logger // nil discards
}

// Sender holds the connection to the hub and reconnects it with capped,
// jittered backoff. Send and Close must not be called concurrently with
// each other or themselves; Connected may be called from any goroutine.
type Sender struct {
	cfg    SenderConfig
	dialer *dial.Dialer
	log    *slog.Logger

	viewers     atomic.Int64  // the hub's last viewer notice; -1 before the first on a connection
	viewersWake chan struct{} // capacity 1: the count changed

	connMu  sync.Mutex // one Connect at a time: the sender and an idle capture loop may both call it
	writeMu sync.Mutex // one writer at a time on the connection: frames (Send) and source notices

	sourceWake chan struct{} // capacity 1: the source's state changed

	mu           sync.Mutex // guards the fields below
	ws           *websocket.Conn
	readerDone   chan struct{}
	notifyDone   chan struct{}         // the connection's notice writer has returned
	source       protocol.SourceNotice // the source's state to tell the hub; Op "" before the first
	sourceSent   protocol.SourceNotice // what the hub was last told on this connection
	takesNotices bool                  // the hub said it takes source notices (older hubs close on text)
	closeErr     error                 // why the hub closed the connection, if it said
	reconnects   uint64
	everUp       bool
	limits       protocol.Limits // the hub's, from the last handshake
	renditions   int             // renditions besides main the hub accepts per channel, from the last handshake
}

// NewSender checks cfg and returns a Sender; it connects on the first Send.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if err := protocol.CheckChannelName(cfg.Channel); err != nil {
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
	log = log.With("channel", cfg.Channel)
	d, err := dial.New(dial.Config{Hub: cfg.Hub, Header: cfg.Header, TLS: cfg.TLS, ConnectTimeout: cfg.ConnectTimeout,
		MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff, WriteBufferSize: 64 << 10, Logger: log})
	if err != nil {
		return nil, err
	}
	s := &Sender{cfg: cfg, dialer: d, log: log, viewersWake: make(chan struct{}, 1), sourceWake: make(chan struct{}, 1)}
	s.viewers.Store(-1)
	return s, nil
}

// Connected reports whether the sender has a live connection.
func (s *Sender) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws != nil
}

// HubLimits returns the limits the hub announced on the last connection
// (its handshake headers), each capped by protocol.ClientGuard: what a
// frame sent to it may hold. Before the first connection it returns
// protocol.ClientGuard.
func (s *Sender) HubLimits() protocol.Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits.MaxFrameBytes == 0 {
		return protocol.ClientGuard
	}
	return s.limits
}

// MaxRenditions returns how many renditions besides the main picture the
// hub said (on the last connection) that a channel may carry; 0 before the
// first connection, or from a hub that knows no renditions.
func (s *Sender) MaxRenditions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renditions
}

// Reconnects returns how many times the sender connected again after its
// first connection.
func (s *Sender) Reconnects() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconnects
}

// Connect makes sure the sender is connected, dialing with backoff until it
// is or ctx ends, with package dial's refusal policy: a refusal retrying
// cannot fix (bad channel name, missing right) or a hub never reached
// within the connect timeout ends it with a *dial.Error; 429 and 503 are
// retried.
func (s *Sender) Connect(ctx context.Context) error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.Connected() {
		return nil
	}
	ws, resp, err := s.dialer.Dial(ctx, protocol.PathPublish, s.cfg.Channel,
		dial.Query{OnDemand: s.cfg.OnDemand, Rendition: s.cfg.Rendition})
	if err != nil {
		return err
	}
	lim := protocol.ClientLimits(resp.Header, protocol.ClientGuard)
	s.mu.Lock()
	s.limits = lim
	s.renditions = protocol.MaxRenditionsFrom(resp.Header)
	s.takesNotices = resp.Header.Get(protocol.HeaderSourceNotices) == "1"
	s.mu.Unlock()
	s.attach(ws)
	s.log.Info("connected to hub", "hub", s.dialer.HTTPBase())
	return nil
}

// attach installs a new connection and starts its reader, which answers
// pings and notices the hub closing the connection, and its notice writer,
// which tells the hub the source's state (at once if it is known: a new
// connection starts knowing nothing).
func (s *Sender) attach(ws *websocket.Conn) {
	done, notifyDone := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	if s.everUp {
		s.reconnects++
	}
	s.everUp = true
	s.ws, s.readerDone, s.notifyDone, s.closeErr = ws, done, notifyDone, nil
	s.sourceSent = protocol.SourceNotice{}
	s.mu.Unlock()
	s.pokeSource()
	go func() {
		defer close(notifyDone)
		s.notifyLoop(ws, done)
	}()
	ws.SetReadLimit(4096) // the hub sends only control frames and small notices
	s.setViewers(-1)
	go func() {
		defer close(done)
		defer s.setViewers(-1)
		for {
			typ, msg, err := ws.ReadMessage()
			if err == nil && typ == websocket.TextMessage {
				var n protocol.ViewersNotice
				if json.Unmarshal(msg, &n) == nil && n.Op == protocol.OpViewers && n.Count >= 0 {
					s.setViewers(int64(n.Count))
				}
				continue // other notices: not for this version
			}
			if err != nil {
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

// notifySpacing is the least time between two source notices on a
// connection: a source that flaps sends its newest state, at most four a
// second, well within what a hub accepts.
const notifySpacing = 250 * time.Millisecond

// SetSource records the source's state (protocol.SourceLive, …) and the
// error that explains it, and tells the hub soon, without waiting for the
// network: notices are written by the connection's own goroutine, the
// newest state winning, and again on each new connection. Safe to call
// from any goroutine.
func (s *Sender) SetSource(state, errText string) {
	n := protocol.NewSourceNotice(state, errText)
	s.mu.Lock()
	changed := s.source != n
	s.source = n
	s.mu.Unlock()
	if changed {
		s.pokeSource()
	}
}

func (s *Sender) pokeSource() {
	select {
	case s.sourceWake <- struct{}{}:
	default:
	}
}

// notifyLoop writes the source's state to ws whenever it differs from
// what the hub was last told, until the connection's reader ends (done).
// A write error closes ws, which ends the reader.
func (s *Sender) notifyLoop(ws *websocket.Conn, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-s.sourceWake:
		}
		s.mu.Lock()
		n, sent, current, takes := s.source, s.sourceSent, s.ws == ws, s.takesNotices
		s.mu.Unlock()
		if !current {
			s.pokeSource() // for the connection that replaced this one
			return
		}
		if n.Op == "" || n == sent || !takes {
			continue
		}
		s.writeMu.Lock()
		_ = ws.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		err := ws.WriteMessage(websocket.TextMessage, n.Encode())
		s.writeMu.Unlock()
		if err != nil {
			_ = ws.Close()
			return
		}
		s.mu.Lock()
		if s.ws == ws {
			s.sourceSent = n
		}
		s.mu.Unlock()
		select {
		case <-done:
			return
		case <-time.After(notifySpacing):
		}
	}
}

// setViewers records the hub's count (-1: none yet) and wakes a waiter.
func (s *Sender) setViewers(n int64) {
	if s.viewers.Swap(n) != n {
		select {
		case s.viewersWake <- struct{}{}:
		default:
		}
	}
}

// Viewers returns how many read the channel, as the hub last said, and
// whether it has said on the current connection.
func (s *Sender) Viewers() (n int, known bool) {
	v := s.viewers.Load()
	return int(max(v, 0)), v >= 0
}

// AwaitViewers waits until the hub says someone reads the channel (nil),
// or ctx ends. Nobody sends frames meanwhile, so it also keeps the
// connection up itself: when the hub closes it (restarted, network cut)
// it reconnects, as Send would, and listens to the new connection's
// notices. It returns ErrReplaced or a *dial.Error when retrying cannot
// help (a newer publisher took the channel, the token lost its right).
func (s *Sender) AwaitViewers(ctx context.Context) error {
	for {
		if err := s.Connect(ctx); err != nil {
			return err
		}
		if n, known := s.Viewers(); known && n > 0 {
			return nil
		}
		s.mu.Lock()
		lost := s.readerDone
		s.mu.Unlock()
		select {
		case <-s.viewersWake:
		case <-lost:
			err := s.drop(errors.New("the hub closed the connection"))
			var derr *dial.Error
			if errors.Is(err, ErrReplaced) || errors.As(err, &derr) {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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
	s.writeMu.Lock()
	_ = ws.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	err := ws.WriteMessage(websocket.BinaryMessage, msg)
	s.writeMu.Unlock()
	if err != nil {
		return s.drop(err)
	}
	s.dialer.ResetBackoff()
	return nil
}

// drop ends the current connection after an error and says why.
func (s *Sender) drop(err error) error {
	s.mu.Lock()
	ws, done, notifyDone := s.ws, s.readerDone, s.notifyDone
	s.ws = nil
	s.mu.Unlock()
	if ws == nil {
		return err
	}
	_ = ws.Close()
	<-done
	<-notifyDone
	s.mu.Lock()
	ce := s.closeErr
	s.mu.Unlock()
	if rerr := dial.CloseError(ce); rerr != nil {
		if rerr.Code == protocol.CloseReplaced {
			return ErrReplaced
		}
		err = rerr
	}
	s.log.Warn("lost connection to hub; reconnecting", "error", err.Error())
	return err
}

// Close sends a normal close frame and ends the connection. A source
// state set last (protocol.SourceEnded, say) is written first if the
// connection's writer has not yet.
func (s *Sender) Close() error {
	s.mu.Lock()
	ws, done, notifyDone := s.ws, s.readerDone, s.notifyDone
	n, sent, takes := s.source, s.sourceSent, s.takesNotices
	s.ws = nil
	s.mu.Unlock()
	if ws == nil {
		return nil
	}
	if n.Op != "" && n != sent && takes {
		s.writeMu.Lock()
		_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
		_ = ws.WriteMessage(websocket.TextMessage, n.Encode())
		s.writeMu.Unlock()
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
	<-notifyDone
	return err
}

// Stats are a publisher's counters. Captured counts frames the source
// delivered; Sent those written to the hub; Skipped those captured but
// overwritten by a newer frame before the sender took them.
type Stats struct {
	Captured uint64
	Sent     uint64
	Skipped  uint64
	// RenditionsSent counts the smaller copies sent after the frames
	// (Config.Renditions); Sent does not count them.
	RenditionsSent uint64
	Bytes          uint64        // payload bytes sent, headers and renditions included
	EncodeTime     time.Duration // total time spent processing and encoding sent frames and their renditions
	Reconnects     uint64
	Width          int
	Height         int
	// MetaDropped counts frames sent without the metadata filters gave
	// them (it did not marshal, or was larger than the hub accepts).
	MetaDropped uint64
	// SourceState is the source's state (protocol.SourceLive, …; "" before
	// its first frame), SourceError why it is not live, and SourceLosses
	// how many times it stopped delivering after it had.
	SourceState  string
	SourceError  string
	SourceLosses uint64
	// Failed counts frames not sent because a filter failed on them or
	// their picture could not be sent: past the hub's limits (a resize of
	// a source with an extreme aspect ratio), or not an 8-bit picture.
	Failed uint64
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
	switch {
	case cur.SourceState == protocol.SourceStalled || cur.SourceState == protocol.SourceReconnecting:
		state = "  (source " + cur.SourceState + ": " + protocol.CutUTF8(cur.SourceError, 60) + ")"
	case !connected:
		state = "  (not connected)"
	}
	if cur.Failed > 0 {
		state = fmt.Sprintf("  failed %d", cur.Failed) + state
	}
	return fmt.Sprintf("captured %5.1f fps  sent %5.1f fps  %7.0f kbps  %dx%d  encode %5.1f ms  skipped %d%s",
		float64(cur.Captured-prev.Captured)/secs, float64(sent)/secs, 8*float64(cur.Bytes-prev.Bytes)/1000/secs,
		cur.Width, cur.Height, encMS, cur.Skipped, state)
}
