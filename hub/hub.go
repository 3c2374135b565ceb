// Package hub is framehub's relay: publishers push frames of a channel over
// WebSocket (or upload JPEGs over HTTP), and the hub fans out only the
// newest frame of each channel to any number of readers (WebSocket
// subscribers, MJPEG over HTTP, snapshots).
//
// Freshness is the design rule. A publisher never waits for a reader:
// publishing a frame stores it in each reader's one-slot mailbox, where it
// overwrites a frame not yet sent (counted, never queued). One writer
// goroutine per reader sends whatever is newest when its previous write
// completes (a subscriber's runs only while it has something to send:
// idlewriter.go). Subscriber sockets get a small kernel send buffer so the
// kernel does not hoard stale frames either, and a subscriber may ask for
// credit-based delivery, in which the hub keeps at most a few
// unacknowledged frames in flight to it. A reader whose write stalls past
// the write timeout is evicted.
//
// The path of one frame, file by file:
//
//	publisher.go  a publisher's connection: its reader, and its writer (pings, viewer counts)
//	receive.go    readFrames → readMessage (one buffer, charged to memory.go's budget)
//	              → the frame-rate cap → acceptFrame (protocol.ParseMessage, or a refusal: refuse.go)
//	frame.go      the frame: one buffer, WebSocket header in front, immutable
//	publish.go    publishFrame → the bus hook (bus.go) → channel.publish → each reader's mailbox
//	              → the event hook (events.go: the frame's events, after its readers have it)
//	mailbox.go    the one-slot inbox: put overwrites, the writer takes
//	writer.go     a subscriber's writer: writeLoop → writeFrame (write, or sendfile);
//	              idlewriter.go starts it on demand and ends it when idle
//	sendfile.go   zero-copy fan-out: the frame once in a memory file, sent to each socket by sendfile
//	              (sendfile_linux.go; sendfile_other.go: plain writes elsewhere)
//	mjpeg.go      an MJPEG reader's writer: the same mailbox, JPEG parts over HTTP
//
// Around it: hub.go (the Hub, routing, shutdown), config.go, table.go and
// channel.go (the channels and their admission), subscribe.go (a
// subscriber's reader: control messages, credit.go), slow.go (the
// slow-consumer policy: eviction, the write watchdog), conn.go (WebSocket
// connections: one reader, one writer, closing), ingest.go (HTTP uploads),
// snapshot.go, http.go (the API and the page), admit.go, cors.go (reads
// by pages on allowed origins), auth.go and access.go (Host, Origin,
// tokens, Reload), iplimit.go and listener.go
// (per-address limits at accept), server.go (the http.Server), stats.go,
// instruments.go (what a metrics exporter reads), physmem_*.go (the
// machine's memory, for the default budget), source.go (publishers' source
// state), bus.go (the hub's side of a cluster: the Bus interface it needs
// and the hooks it calls), busorder.go (the order rule for frames from the
// bus), events.go (the events the frames carry: /api/events, the event
// stream, snapshots), webhook.go (telling a URL of each start and end) and
// rendition.go (renditions: smaller copies of a channel's frames, each
// with its own readers, chosen by max-width or name, the hub never
// decoding them; small hooks in publish.go, channel.go, writer.go and the
// readers' handlers).
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

	"framehub/internal/ratelimit"
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
	limitHeaders http.Header        // the limits, as told to every WebSocket client
	upgrader     websocket.Upgrader // publishers'
	subUpgrader  websocket.Upgrader // subscribers': a small read buffer of their own (subscriberReadBuffer)
	http         http.Handler       // routes other than the channel endpoints
	ownNames     []string           // lower case
	ipl          *ipLimiter
	started      time.Time
	table        *table
	mem          *budget
	logs         *ratelimit.Logger // per-connection events and refusals, at a bounded rate
	link         *busLink          // the hub's side of Config.Bus, or nil
	book         *eventBook        // the events of every channel (events.go)
	zc           *zeroCopy

	acc atomic.Pointer[access] // tokens, origins and hosts; swapped by Reload

	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	streams map[*stream]struct{} // MJPEG readers, for Reload
	closing bool

	subscribers atomic.Int64 // WebSocket and MJPEG subscribers, reserved before the upgrade
	publishers  atomic.Int64 // publishers connected

	done      chan struct{} // closed when shutdown begins
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
		logs:         ratelimit.NewLogger(cfg.Logger, refusalLogInterval),
		conns:        make(map[*wsConn]struct{}),
		streams:      make(map[*stream]struct{}),
		done:         make(chan struct{}),
	}
	cfg.limits().SetHeaders(h.limitHeaders)
	sourceHeader(h.limitHeaders)
	h.acc.Store(newAccess(Access{Auth: cfg.Auth, AllowedOrigins: cfg.AllowedOrigins, AllowedHosts: cfg.AllowedHosts}))
	for _, n := range cfg.OwnNames {
		h.ownNames = append(h.ownNames, hostName(n))
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		// Read buffers: a publisher reuses the HTTP server's, already
		// allocated for the handshake (a subscriber gets a small one,
		// subUpgrader). Write buffers: lent from a pool only while a message
		// is written through one; frames and control frames need none, so an
		// idle or subscribing connection holds no write buffer at all.
		ReadBufferSize:    0,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: false, // a read limit does not bound a decompressed message
		Error:             h.upgradeError,
		CheckOrigin:       h.checkOrigin,
		Subprotocols:      []string{protocol.Subprotocol},
	}
	h.subUpgrader = h.upgrader
	h.subUpgrader.ReadBufferSize = subscriberReadBuffer
	h.http = h.routes()
	if cfg.Bus != nil {
		h.link = newBusLink(h, cfg.Bus) // before the janitor, which reads it
	}
	h.book = newEventBook(h)
	h.book.start()
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
		http.Error(w, refusals[reasonOrigin].text, refusals[reasonOrigin].status) // counted by checkOrigin
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
			h.serveUpload(w, r, rest[:i], rest[i+1:])
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
		h.refuseRequest(w, r, reasonBadName, "", slog.String("path", truncate(r.URL.EscapedPath(), 100)))
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
		h.refuseRequest(w, r, reasonShuttingDown, "")
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
			h.table.sweep(now, h.cfg.ChannelTTL, h.retire)
			h.ipl.sweep(now)
			h.logs.Flush(now)
			h.book.sweep(now)
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
// close frame (1001, going away), ends MJPEG streams and uploads, and waits
// for all of them to finish or for ctx to end, whichever comes first;
// connections still open then are cut. It returns ctx.Err() if it had to
// cut any. A stalled connection costs at most about controlWait, however
// many there are (slow.go). Shutdown does not stop an http.Server serving
// the hub: do that too (http.Server.Shutdown does not close hijacked
// WebSocket connections, which is why this exists). Calls after the first
// return nil at once.
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
		for _, c := range conns {
			c.closeWith(ending{kind: endShutdown}, websocket.CloseGoingAway, "hub shutting down")
		}
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
		h.book.close()
		// Nothing sends any more: let go of every frame (and so close
		// every memory file) now, not whenever the hub becomes garbage.
		for _, c := range h.table.all() {
			latest, prev := c.takeFrames()
			h.retire(latest)
			h.retire(prev)
			for _, f := range c.takeRenditionFrames() {
				h.retire(f)
			}
		}
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
