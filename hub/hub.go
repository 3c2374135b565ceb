// Package hub is framehub's relay: publishers push frames of a channel over
// WebSocket, and the hub fans out only the newest frame of each channel to
// any number of subscribers (WebSocket, MJPEG over HTTP, snapshots).
//
// Freshness is the design rule. A publisher never waits for a subscriber:
// publishing a frame stores it in each subscriber's one-slot mailbox, where
// it overwrites a frame not yet sent (counted, never queued). One writer
// goroutine per subscriber sends whatever is newest when its previous write
// completes; the WebSocket framing of a frame is done once for everyone
// (websocket.PreparedMessage). Subscriber sockets get a small kernel send
// buffer so the kernel does not hoard stale frames either, and a subscriber
// may ask for credit-based delivery, in which the hub keeps at most a few
// unacknowledged frames in flight to it. A subscriber that misses its write
// deadline is evicted and its TCP connection reset.
//
// The hub has no cgo dependency and never imports gocv; a test checks it.
package hub

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// Defaults for Config fields left zero.
const (
	// DefaultMaxFrameBytes bounds a publisher's message: a raw 1080p BGR
	// frame (6.2 MB) fits, with room to spare.
	DefaultMaxFrameBytes = 16 << 20
	// DefaultSendBuffer is the kernel send buffer asked for on subscriber
	// sockets. Small, so that a slow link holds one or two frames, not
	// seconds of them; Linux doubles the value for its bookkeeping.
	DefaultSendBuffer = 128 << 10
	// DefaultWriteTimeout is how long one frame write to a subscriber may
	// take before the subscriber is evicted as stalled.
	DefaultWriteTimeout = 5 * time.Second
	// DefaultPingInterval is how often the hub pings each connection. It
	// must be less than DefaultPongWait.
	DefaultPingInterval = 10 * time.Second
	// DefaultPongWait is how long a connection may stay silent (no message,
	// no pong) before it is dropped as dead.
	DefaultPongWait = 25 * time.Second
	// DefaultCreditWindow is the number of unacknowledged frames in flight
	// to a subscriber in credit mode when it does not ask for a number.
	DefaultCreditWindow = 1
	// MaxCreditWindow is the largest window a subscriber may ask for.
	MaxCreditWindow = 8
	// DefaultChannelTTL is how long a channel without a publisher stays
	// listed with its last frame.
	DefaultChannelTTL = 60 * time.Second
	// DefaultHandshakeTimeout bounds the WebSocket upgrade.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxMetaBytes bounds the JSON side data of one frame.
	DefaultMaxMetaBytes = 64 << 10
	// DefaultMaxChannels bounds the channels a hub keeps.
	DefaultMaxChannels = 1000
	// DefaultMaxSubscribers bounds subscribers (WebSocket and MJPEG) in
	// total and on any one channel.
	DefaultMaxSubscribers = 20000
	// refusalLogInterval is the least time between two log lines about the
	// same kind of refusal; the ones in between are counted and summarised.
	refusalLogInterval = 10 * time.Second
	// statsInterval is how often per-channel stats are logged at Debug.
	statsInterval = 10 * time.Second
)

// Config configures a Hub. The zero value is usable: every zero field takes
// the default named after it.
type Config struct {
	Logger           *slog.Logger // nil discards
	MaxFrameBytes    int          // largest publisher message
	MaxMetaBytes     int          // largest metadata in a frame (default 64 KiB)
	MaxControlBytes  int          // largest subscriber control message (default and most protocol.MaxControlBytes)
	SendBuffer       int          // subscriber socket SO_SNDBUF in bytes; negative leaves the OS default
	WriteTimeout     time.Duration
	PingInterval     time.Duration
	PongWait         time.Duration
	CreditWindow     int
	ChannelTTL       time.Duration
	HandshakeTimeout time.Duration
	// AllowedOrigins lists browser origins ("https://app.example:8443")
	// allowed besides the hub's own. A WebSocket upgrade whose Origin header
	// differs from the hub's in scheme, host or port and is not listed gets
	// 403. Requests with no Origin (non-browser clients) are not affected.
	AllowedOrigins           []string
	MaxChannels              int // channels the hub keeps (default 1000)
	MaxSubscribers           int // subscribers in total (default 20000)
	MaxSubscribersPerChannel int // subscribers on one channel (default MaxSubscribers)
	// Per-IP limits, enforced by h.Listener: open connections, and new
	// connections per second (sustained; bursts of twice that). Loopback
	// clients are exempt unless LimitLoopback is set, so a local reverse
	// proxy or benchmark is not throttled.
	MaxConnsPerIP     int     // default 256
	ConnRatePerIP     float64 // default 50
	LimitLoopback     bool
	ReadHeaderTimeout time.Duration // for h.Server (default 10 s): slowloris
	// Auth, when not nil, requires tokens for the rights it grants; see
	// NewAuth. Nil leaves every endpoint open.
	Auth *Auth
}

func (c *Config) fill() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxFrameBytes, DefaultMaxFrameBytes)
	def(&c.MaxMetaBytes, DefaultMaxMetaBytes)
	def(&c.SendBuffer, DefaultSendBuffer)
	def(&c.CreditWindow, DefaultCreditWindow)
	c.CreditWindow = min(max(c.CreditWindow, 1), MaxCreditWindow)
	defd(&c.WriteTimeout, DefaultWriteTimeout)
	defd(&c.PingInterval, DefaultPingInterval)
	defd(&c.PongWait, DefaultPongWait)
	if c.PongWait <= c.PingInterval {
		c.PongWait = c.PingInterval * 5 / 2
	}
	if c.MaxControlBytes <= 0 || c.MaxControlBytes > protocol.MaxControlBytes {
		c.MaxControlBytes = protocol.MaxControlBytes
	}
	def(&c.MaxConnsPerIP, DefaultMaxConnsPerIP)
	if c.ConnRatePerIP <= 0 {
		c.ConnRatePerIP = DefaultConnRatePerIP
	}
	defd(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.MaxChannels, DefaultMaxChannels)
	def(&c.MaxSubscribers, DefaultMaxSubscribers)
	def(&c.MaxSubscribersPerChannel, c.MaxSubscribers)
	defd(&c.ChannelTTL, DefaultChannelTTL)
	defd(&c.HandshakeTimeout, DefaultHandshakeTimeout)
}

// Hub relays frames from publishers to subscribers. Create one with New,
// serve it as an http.Handler, and end it with Shutdown or Close. All
// methods are safe for concurrent use.
type Hub struct {
	// Static after construction.
	cfg            Config
	log            *slog.Logger
	limits         protocol.Limits
	upgrader       websocket.Upgrader
	http           http.Handler // routes other than the WebSocket endpoints
	allowedOrigins []string     // lower case, no trailing slash
	auth           *Auth
	ipl            *ipLimiter
	started        time.Time

	mu       sync.Mutex
	channels map[string]*channel
	conns    map[*wsConn]struct{}
	closing  bool

	subscribers atomic.Int64 // WebSocket and MJPEG subscribers, reserved before the upgrade

	done       chan struct{} // closed when shutdown begins
	handlers   sync.WaitGroup
	janitorWG  sync.WaitGroup
	closeOnce  sync.Once
	counters   Counters
	refusalLog refusalLog
}

// New returns a running Hub. Its background goroutine (stats and channel
// expiry) stops on Shutdown or Close.
func New(cfg Config) *Hub {
	cfg.fill()
	h := &Hub{
		ipl:  newIPLimiter(cfg.MaxConnsPerIP, cfg.ConnRatePerIP),
		auth: cfg.Auth,
		cfg:  cfg,
		log:  cfg.Logger,
		limits: protocol.Limits{
			MaxFrameBytes: cfg.MaxFrameBytes,
			MaxMetaBytes:  cfg.MaxMetaBytes,
			MaxDimension:  protocol.DefaultLimits.MaxDimension,
		},
		started:  time.Now(),
		channels: make(map[string]*channel),
		conns:    make(map[*wsConn]struct{}),
		done:     make(chan struct{}),
	}
	for _, o := range cfg.AllowedOrigins {
		h.allowedOrigins = append(h.allowedOrigins, strings.ToLower(strings.TrimSuffix(o, "/")))
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		// Read buffers: reuse the HTTP server's, already allocated for the
		// handshake. Write buffers: lent from a pool only while a message is
		// written through one; prepared frames and control frames need none,
		// so an idle or subscribing connection holds no write buffer at all.
		ReadBufferSize:    0,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: false, // a read limit does not bound a decompressed message
		Error:             h.upgradeError,
		CheckOrigin:       h.checkOrigin,
		Subprotocols:      []string{Subprotocol},
	}
	h.http = h.routes()
	h.janitorWG.Add(1)
	go h.janitor()
	return h
}

// ServeHTTP routes a request. Channel names are checked on the escaped
// path, before any redirect or upgrade: "..", "%2e%2e", "a/b" and other
// invalid names get 400.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	p := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/view/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if _, ok := h.channelFromPath(w, r, strings.TrimPrefix(p, "/view/")); ok {
			servePage(w, "view.html")
		}
	case strings.HasPrefix(p, protocol.PathPublish):
		if name, ok := h.channelFromPath(w, r, strings.TrimPrefix(p, protocol.PathPublish)); ok && h.authorize(w, r, name, RightPublish, false) {
			h.servePublish(w, r, name)
		}
	case strings.HasPrefix(p, protocol.PathSubscribe):
		if name, ok := h.channelFromPath(w, r, strings.TrimPrefix(p, protocol.PathSubscribe)); ok && h.authorize(w, r, name, RightView, false) {
			h.serveSubscribe(w, r, name)
		}
	case strings.HasPrefix(p, "/channels/"):
		// Split at the last slash, so "a/b" is a (bad) name, not a path.
		rest := strings.TrimPrefix(p, "/channels/")
		i := strings.LastIndexByte(rest, '/')
		if i < 0 || (rest[i+1:] != "snapshot.jpg" && rest[i+1:] != "stream.mjpeg") {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if name, ok := h.channelFromPath(w, r, rest[:i]); ok && h.authorize(w, r, name, RightView, true) {
			if rest[i+1:] == "snapshot.jpg" {
				h.serveSnapshot(w, r, name)
			} else {
				h.serveMJPEG(w, r, name)
			}
		}
	default:
		h.http.ServeHTTP(w, r)
	}
}

// channelFromPath validates a channel name taken from the escaped path and
// answers 400 for a bad one.
func (h *Hub) channelFromPath(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	if !protocol.ValidChannelName(name) {
		h.refuse(reasonBadName, r.RemoteAddr, "invalid channel name", slog.String("path", truncate(r.URL.EscapedPath(), 100)))
		http.Error(w, "invalid channel name: use 1 to 64 letters, digits, '_' or '-'", http.StatusBadRequest)
		return "", false
	}
	return name, true
}

// track registers a handler goroutine so that Shutdown waits for it. It
// returns false once shutdown has begun.
func (h *Hub) track() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.handlers.Add(1)
	return true
}

// channelFor returns the named channel, creating it, and runs fn on it under
// the hub lock so that the janitor cannot expire it in between.
func (h *Hub) channelFor(name string, fn func(*channel)) *channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.channels[name]
	if c == nil {
		c = newChannel(name, time.Now())
		h.channels[name] = c
	}
	fn(c)
	return c
}

// lookup returns the named channel or nil.
func (h *Hub) lookup(name string) *channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.channels[name]
}

// Channels returns the listed channels (those with a publisher or a recent
// frame), sorted by name.
func (h *Hub) Channels() []ChannelInfo {
	h.mu.Lock()
	chans := make([]*channel, 0, len(h.channels))
	for _, c := range h.channels {
		chans = append(chans, c)
	}
	h.mu.Unlock()
	now := time.Now()
	out := make([]ChannelInfo, 0, len(chans))
	for _, c := range chans {
		if in, ok := c.info(now, h.cfg.ChannelTTL); ok {
			out = append(out, in)
		}
	}
	sortInfos(out)
	return out
}

func (h *Hub) janitor() {
	defer h.janitorWG.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastStats := time.Now()
	for {
		select {
		case <-h.done:
			return
		case now := <-t.C:
			logStats := now.Sub(lastStats) >= statsInterval && h.log.Enabled(context.Background(), slog.LevelDebug)
			if logStats {
				lastStats = now
			}
			h.mu.Lock()
			for name, c := range h.channels {
				c.tick(now)
				if c.expired(now, h.cfg.ChannelTTL) {
					delete(h.channels, name)
					h.log.Debug("channel expired", "channel", name)
				}
			}
			h.mu.Unlock()
			h.ipl.sweep(now)
			if logStats {
				for _, in := range h.Channels() {
					h.log.Debug("channel stats", "channel", in.Name, "live", in.Live, "fps", in.FPS,
						"bitrate_bps", in.BitrateBPS, "subscribers", in.Subscribers, "frames", in.Frames,
						"skipped", in.Skipped, "last_frame_age_ms", in.LastFrameAgeMS)
				}
			}
		}
	}
}

// Shutdown stops accepting connections, sends every WebSocket connection a
// close frame (1001, going away), ends MJPEG streams, and waits for all of
// them to finish or for ctx to end, whichever comes first; connections still
// open then are cut. It returns ctx.Err() if it had to cut any. Shutdown does
// not stop an http.Server serving the hub: do that too (http.Server.Shutdown
// does not close hijacked WebSocket connections, which is why this exists).
func (h *Hub) Shutdown(ctx context.Context) error {
	var err error
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closing = true
		conns := make([]*wsConn, 0, len(h.conns))
		for c := range h.conns {
			conns = append(conns, c)
		}
		h.mu.Unlock()
		close(h.done)
		// Concurrently: a close frame to a stalled subscriber waits for its
		// blocked write, up to controlWait.
		var closers sync.WaitGroup
		for _, c := range conns {
			closers.Add(1)
			go func() {
				defer closers.Done()
				c.closeWith(websocket.CloseGoingAway, "hub shutting down")
			}()
		}
		closers.Wait()
		finished := make(chan struct{})
		go func() { h.handlers.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-ctx.Done():
			err = ctx.Err()
			for _, c := range conns {
				c.reset()
			}
			<-finished
		}
		h.janitorWG.Wait()
	})
	return err
}

// Close shuts the hub down, giving connections two seconds to close.
func (h *Hub) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return h.Shutdown(ctx)
}

// Counters are the hub's totals since it started. Read them with Stats.
type Counters struct {
	PublishersConnected  atomic.Uint64
	SubscribersConnected atomic.Uint64
	FramesIn             atomic.Uint64
	Replaced             atomic.Uint64 // publishers replaced by a newer one
	Evicted              atomic.Uint64 // subscribers evicted for a missed write deadline
	Refused              [numReasons]atomic.Uint64
}

// refusal reasons, each counted and logged at most once per interval.
type reason int

const (
	reasonBadName            reason = iota // channel name fails the pattern
	reasonBadFrame                         // a publisher message fails validation
	reasonTooBig                           // a message over the read limit
	reasonMessageType                      // text from a publisher, binary from a subscriber
	reasonBadControl                       // an unreadable control message
	reasonUpgrade                          // a failed WebSocket handshake (bad origin, not a WebSocket request)
	reasonShuttingDown                     // a connection attempt during shutdown
	reasonOrigin                           // a browser upgrade from a foreign origin
	reasonTooManyChannels                  // a new channel past MaxChannels
	reasonTooManySubscribers               // a subscriber past MaxSubscribers or MaxSubscribersPerChannel
	reasonUnauthorized                     // no token, or an unknown or expired one
	reasonForbidden                        // a valid token without the right
	reasonTooManyConnsPerIP                // an address past MaxConnsPerIP
	reasonConnRatePerIP                    // an address past ConnRatePerIP
	numReasons
)

var reasonNames = [numReasons]string{
	"bad_channel_name", "bad_frame", "too_big", "wrong_message_type", "bad_control", "bad_handshake", "shutting_down",
	"foreign_origin", "too_many_channels", "too_many_subscribers", "unauthorized", "forbidden",
	"too_many_connections_per_ip", "connection_rate_per_ip",
}

func (r reason) String() string { return reasonNames[r] }

// Stats is the hub-wide picture served at GET /api/stats.
type Stats struct {
	UptimeSeconds        float64           `json:"uptime_seconds"`
	Channels             int               `json:"channels"`
	Connections          int               `json:"connections"` // open WebSocket connections
	PublishersConnected  uint64            `json:"publishers_connected"`
	SubscribersConnected uint64            `json:"subscribers_connected"`
	FramesIn             uint64            `json:"frames_in"`
	Replaced             uint64            `json:"publishers_replaced"`
	Evicted              uint64            `json:"subscribers_evicted"`
	Refused              map[string]uint64 `json:"refused"`
	Goroutines           uint64            `json:"goroutines"`
	HeapBytes            uint64            `json:"heap_bytes"` // live and unswept heap objects
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	nconn := len(h.conns)
	h.mu.Unlock()
	s := Stats{
		UptimeSeconds:        round2(time.Since(h.started).Seconds()),
		Channels:             len(h.Channels()),
		Connections:          nconn,
		PublishersConnected:  h.counters.PublishersConnected.Load(),
		SubscribersConnected: h.counters.SubscribersConnected.Load(),
		FramesIn:             h.counters.FramesIn.Load(),
		Replaced:             h.counters.Replaced.Load(),
		Evicted:              h.counters.Evicted.Load(),
		Refused:              make(map[string]uint64, numReasons),
	}
	for i := range numReasons {
		s.Refused[i.String()] = h.counters.Refused[i].Load()
	}
	// runtime/metrics reads these without stopping the world, unlike
	// runtime.ReadMemStats.
	sample := []metrics.Sample{{Name: "/sched/goroutines:goroutines"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() == metrics.KindUint64 {
		s.Goroutines = sample[0].Value.Uint64()
	}
	if sample[1].Value.Kind() == metrics.KindUint64 {
		s.HeapBytes = sample[1].Value.Uint64()
	}
	return s
}

// refusalLog limits refusal logging to one line per reason per interval.
type refusalLog struct {
	mu         sync.Mutex
	last       [numReasons]time.Time
	suppressed [numReasons]uint64
}

// refuse counts a refusal and logs it unless one of the same reason was
// logged less than refusalLogInterval ago.
func (h *Hub) refuse(r reason, remote, msg string, attrs ...slog.Attr) {
	h.counters.Refused[r].Add(1)
	rl := &h.refusalLog
	now := time.Now()
	rl.mu.Lock()
	if now.Sub(rl.last[r]) < refusalLogInterval {
		rl.suppressed[r]++
		rl.mu.Unlock()
		return
	}
	rl.last[r] = now
	n := rl.suppressed[r]
	rl.suppressed[r] = 0
	rl.mu.Unlock()
	attrs = append(attrs, slog.String("reason", r.String()), slog.String("remote", remote))
	if n > 0 {
		attrs = append(attrs, slog.Uint64("suppressed_since_last", n))
	}
	h.log.LogAttrs(context.Background(), slog.LevelWarn, "refused: "+msg, attrs...)
}

// checkOrigin accepts a WebSocket upgrade with no Origin (not a browser),
// from the hub's own origin (same scheme, host and port), or from an
// origin in AllowedOrigins.
func (h *Hub) checkOrigin(r *http.Request) bool {
	origins := r.Header["Origin"]
	if len(origins) == 0 {
		return true
	}
	o := strings.ToLower(strings.TrimSuffix(origins[0], "/"))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if o == scheme+"://"+strings.ToLower(r.Host) || slices.Contains(h.allowedOrigins, o) {
		return true
	}
	h.refuse(reasonOrigin, r.RemoteAddr, "websocket from a foreign origin", slog.String("origin", truncate(origins[0], 100)))
	return false
}

// admit checks the limits before a WebSocket or MJPEG subscriber (sub) or a
// publisher is upgraded, and reserves the subscriber's place. It answers
// the request itself when it refuses; release undoes the reservation.
func (h *Hub) admit(w http.ResponseWriter, r *http.Request, name string, sub bool) (release func(), ok bool) {
	h.mu.Lock()
	c := h.channels[name]
	newChannel := c == nil
	nchan := len(h.channels)
	h.mu.Unlock()
	if newChannel && nchan >= h.cfg.MaxChannels {
		h.refuse(reasonTooManyChannels, r.RemoteAddr, "channel limit reached", slog.Int("limit", h.cfg.MaxChannels))
		http.Error(w, "too many channels on this hub", http.StatusServiceUnavailable)
		return nil, false
	}
	if !sub {
		return func() {}, true
	}
	onChannel := 0
	if c != nil {
		c.mu.Lock()
		onChannel = len(c.subs)
		c.mu.Unlock()
	}
	if n := h.subscribers.Add(1); n > int64(h.cfg.MaxSubscribers) || onChannel >= h.cfg.MaxSubscribersPerChannel {
		h.subscribers.Add(-1)
		h.refuse(reasonTooManySubscribers, r.RemoteAddr, "subscriber limit reached", slog.String("channel", name))
		http.Error(w, "too many subscribers", http.StatusServiceUnavailable)
		return nil, false
	}
	return func() { h.subscribers.Add(-1) }, true
}

// upgradeError answers a failed WebSocket handshake.
func (h *Hub) upgradeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	h.refuse(reasonUpgrade, r.RemoteAddr, "websocket handshake failed", slog.Int("status", status), slog.String("error", reason.Error()))
	http.Error(w, http.StatusText(status)+": "+reason.Error(), status)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // an error means the client went away: nothing to tell it
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
