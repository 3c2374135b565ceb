// Package hub is framehub's relay: publishers push frames of a channel over
// WebSocket (or upload JPEGs over HTTP: ingest.go), and the hub fans out
// only the newest frame of each channel to any number of subscribers
// (WebSocket, MJPEG over HTTP, snapshots).
//
// Freshness is the design rule. A publisher never waits for a subscriber:
// publishing a frame stores it in each subscriber's one-slot mailbox, where
// it overwrites a frame not yet sent (counted, never queued). One writer
// goroutine per subscriber sends whatever is newest when its previous write
// completes. A frame is one buffer, framed for WebSocket once for everyone
// (frame.go); a frame going to several plain-TCP subscribers is also put
// once in a memory file and sent to each by sendfile, so the kernel does
// not copy it per subscriber (zerocopy.go). Subscriber sockets get a small
// kernel send buffer so the kernel does not hoard stale frames either, and
// a subscriber may ask for credit-based delivery, in which the hub keeps at
// most a few unacknowledged frames in flight to it. A subscriber whose
// write stalls past the write timeout is evicted by a watchdog and its TCP
// connection reset.
//
// The hub has no cgo dependency and never imports gocv; a test checks it.
package hub

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// Hub relays frames from publishers to subscribers. Create one with New,
// serve it as an http.Handler, and end it with Shutdown or Close. All
// methods are safe for concurrent use.
type Hub struct {
	// Static after construction.
	cfg          Config
	log          *slog.Logger
	limits       protocol.Limits
	limitHeaders http.Header // the limits, as told to every WebSocket client
	upgrader     websocket.Upgrader
	http         http.Handler // routes other than the channel endpoints
	ownNames     []string     // lower case
	ipl          *ipLimiter
	started      time.Time
	table        *table
	mem          *budget
	events       *eventLog
	link         *busLink // the hub's side of Config.Bus, or nil
	zc           *zeroCopy

	acc atomic.Pointer[access] // tokens, origins and hosts; swapped by Reload

	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	streams map[*stream]struct{} // MJPEG readers, for Reload
	closing bool

	subscribers atomic.Int64 // WebSocket and MJPEG subscribers, reserved before the upgrade
	publishers  atomic.Int64 // publishers connected

	done      chan struct{} // closed when shutdown begins
	shut      atomic.Bool   // set just before done is closed; writers check it when woken
	handlers  sync.WaitGroup
	janitorWG sync.WaitGroup
	closeOnce sync.Once
	counters  counters
}

// New returns a running Hub. Its background goroutines (the janitor:
// stats, channel expiry, log summaries; the write watchdog) stop on
// Shutdown or Close.
func New(cfg Config) *Hub {
	cfg.fill()
	h := &Hub{
		ipl: newIPLimiter(cfg.MaxConnsPerIP, cfg.ConnRatePerIP),
		cfg: cfg,
		log: cfg.Logger,
		limits: protocol.Limits{
			MaxFrameBytes: cfg.MaxFrameBytes,
			MaxMetaBytes:  cfg.MaxMetaBytes,
			MaxDimension:  protocol.DefaultLimits.MaxDimension,
			MaxPixels:     cfg.MaxPixels,
		},
		limitHeaders: http.Header{},
		started:      time.Now(),
		table:        newTable(cfg.MaxChannels, cfg.Instruments),
		mem:          &budget{max: cfg.MaxMemory},
		zc:           newZeroCopy(&cfg, cfg.Logger),
		events:       newEventLog(cfg.Logger, refusalLogInterval),
		conns:        make(map[*wsConn]struct{}),
		streams:      make(map[*stream]struct{}),
		done:         make(chan struct{}),
	}
	cfg.limits().SetHeaders(h.limitHeaders)
	h.acc.Store(newAccess(Access{Auth: cfg.Auth, AllowedOrigins: cfg.AllowedOrigins, AllowedHosts: cfg.AllowedHosts}))
	for _, n := range cfg.OwnNames {
		h.ownNames = append(h.ownNames, hostName(n))
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		// Read buffers: reuse the HTTP server's, already allocated for the
		// handshake. Write buffers: lent from a pool only while a message is
		// written through one; frames and control frames need none, so an
		// idle or subscribing connection holds no write buffer at all.
		ReadBufferSize:    0,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: false, // a read limit does not bound a decompressed message
		Error:             h.upgradeError,
		CheckOrigin:       h.checkOrigin,
		Subprotocols:      []string{protocol.Subprotocol},
	}
	h.http = h.routes()
	if cfg.Bus != nil {
		h.link = newBusLink(h, cfg.Bus) // before the janitor, which reads it
	}
	h.janitorWG.Add(2)
	go h.janitor()
	go h.watchdog()
	if h.link != nil {
		cfg.Bus.Start(busNode{h.link})
	}
	return h
}

// ServeHTTP routes a request. Channel names are checked on the escaped
// path, before any redirect or upgrade: "..", "%2e%2e", "a/b" and other
// invalid names get 400.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if !h.checkHost(w, r) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !h.checkOrigin(r) {
		http.Error(w, "forbidden: origin not allowed", http.StatusForbidden)
		return
	}
	if h.serveCORS(w, r) { // cors.go: reads by pages on allowed origins
		return
	}
	p := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/view/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if _, ok := h.channelFromPath(w, r, strings.TrimPrefix(p, "/view/")); ok {
			h.servePage(w, "view.html")
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
		if r.Method == http.MethodPost {
			h.serveUpload(w, r, rest[:i], rest[i+1:]) // ingest.go
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD, POST")
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

// track registers a handler goroutine so that Shutdown waits for it. Once
// shutdown has begun it answers 503 and returns false.
func (h *Hub) track(w http.ResponseWriter, r *http.Request) bool {
	h.mu.Lock()
	closing := h.closing
	if !closing {
		h.handlers.Add(1)
	}
	h.mu.Unlock()
	if closing {
		h.refuse(reasonShuttingDown, r.RemoteAddr, "connection during shutdown")
		http.Error(w, "hub shutting down", http.StatusServiceUnavailable)
	}
	return !closing
}

// Channels returns the listed channels (those with a publisher or a recent
// frame), sorted by name.
func (h *Hub) Channels() []protocol.ChannelInfo {
	return h.busChannels(h.table.infos(h.cfg.ChannelTTL))
}

// Readers returns how many subscribers (WebSocket and MJPEG) have joined
// channel's fan-out: each gets its next frame. A subscriber is admitted
// (and counted in Stats) just before it joins.
func (h *Hub) Readers(channel string) int { return h.table.subscribers(channel) }

// Limits returns the limits the hub enforces on frames, as served at GET
// /api/limits and in every WebSocket handshake.
func (h *Hub) Limits() protocol.HubLimits { return h.cfg.limits() }

// janitor, once a second: updates channel rates, forgets stale frames and
// unused channels, writes held-back log summaries, and every statsInterval
// logs per-channel stats at Debug.
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
			h.mem.release(h.table.sweep(now, h.cfg.ChannelTTL))
			h.ipl.sweep(now)
			h.events.flush(now)
			if h.link != nil {
				h.link.sweep(now)
			}
			if now.Sub(lastStats) >= statsInterval && h.log.Enabled(context.Background(), slog.LevelDebug) {
				lastStats = now
				for _, in := range h.Channels() {
					h.log.Debug("channel stats", "channel", in.Name, "live", in.Live, "fps", in.FPS,
						"bitrate_bps", in.BitrateBPS, "subscribers", in.Subscribers, "frames", in.Frames,
						"skipped", in.Skipped, "dropped", in.Dropped, "last_frame_age_ms", in.LastFrameAgeMS)
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
		h.shut.Store(true)
		close(h.done)
		for _, c := range conns {
			if s := c.sub.Load(); s != nil {
				s.mb.poke() // its writer sees shut and returns
			}
		}
		// Concurrently: a close frame to a stalled subscriber waits for its
		// blocked write, up to controlWait.
		var closers sync.WaitGroup
		for _, c := range conns {
			closers.Add(1)
			go func() {
				defer closers.Done()
				c.closeWith(ending{kind: endShutdown}, websocket.CloseGoingAway, "hub shutting down")
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
		if h.link != nil {
			_ = h.link.bus.Close() // its errors are the bus's to log
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
