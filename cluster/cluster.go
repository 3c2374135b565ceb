// Package cluster links framehub hubs over NATS so that they act as one:
// a frame published on any hub reaches subscribers on every hub, newest
// frame first. It implements hub.Bus with the nats.go client; users run
// nats-server (one, or a cluster of them) and start each hub with --nats.
//
// # Subjects
//
// Under a prefix P (default "framehub"), for a channel C and a hub whose ID
// is H:
//
//	P.frame.C  frames of C from the hub whose publisher holds C, sent only
//	           while some other hub wants C; a hub subscribes only while it
//	           has local readers of C
//	P.want.C   "I have readers of C": join when a hub starts to want C
//	           (answered with C's newest frame on the asker's inbox), keep
//	           once a second while it does, leave when it stops; the hub
//	           holding C subscribes while it does
//	P.dir.C    announcements: the hub holding C says so once a second (and
//	           at once when a publisher comes or goes), as JSON
//	P.hub.H    hub H's inbox: the newest frame of a channel it has just
//	           joined
//	P.event.C  C's event notices (protocol.EventInfo JSON: each start and
//	           end), from the hub whose publisher holds C; for other
//	           services (events.go)
//
// So a frame crosses the bus once per interested hub, and never reaches,
// or leaves for, hubs that do not want it.
//
// # Frames
//
// A frame crosses as the same bytes as on a publisher's WebSocket (the
// protocol header carries its sequence number and capture time), with NATS
// headers naming its channel (Framehub-Channel) and the claim of its
// publisher (Framehub-Hub, Framehub-Gen; see hub.Claim). A frame bigger
// than the server's max_payload (read from the connection) less 1 KiB of
// headroom crosses in chunks of that size, each with Framehub-Frame (a
// frame ID), Framehub-Part (0-based), Framehub-Parts and Framehub-Size (the
// frame's bytes). A receiver reassembles at most two frames per channel at
// once, charged to the hub's memory budget as chunks arrive, and drops (and
// counts) one that is not complete within two seconds or has a gap. The
// hub then checks the frame exactly like a publisher's.
//
// # Freshness
//
// The bus never queues stale frames. Sending: each channel (and inbox) has
// a one-frame slot that a newer frame overwrites, and one goroutine sends
// whatever is newest. Receiving: each channel's subscription has small
// pending limits, and a complete frame is relayed only if no message waits
// behind it; otherwise it is held, and a newer complete frame replaces it
// (drop-oldest, counted). A slow hub skips frames like a slow viewer.
//
// # Failures
//
// The client reconnects forever and buffers nothing while disconnected, so
// no stale frame is sent when the server returns. Meanwhile each hub serves
// its own publishers and reports "degraded" in /healthz and /api/stats;
// once back, it announces its channels and asks for the ones it wants.
package cluster

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"framehub/hub"
	"framehub/internal/ratelimit"
	"framehub/protocol"
)

// DefaultPrefix is the subject prefix when Config.Prefix is empty.
const DefaultPrefix = "framehub"

// Defaults for the tuning fields of Config.
const (
	// DefaultAnnounceInterval is how often a hub announces its channels
	// and repeats its wants; a hub that falls silent for three intervals
	// is forgotten.
	DefaultAnnounceInterval = time.Second
	// DefaultReassemblyTimeout bounds the time a frame sent in chunks may
	// take to arrive whole.
	DefaultReassemblyTimeout = 2 * time.Second
	// DefaultReconnectWait is the pause between reconnection attempts.
	DefaultReconnectWait = time.Second
)

const (
	// headroom is kept free under max_payload in every message for the
	// NATS headers.
	headroom = 1024
	// minChunk is the smallest chunk the pending limits allow for: NATS
	// servers take at least 64 KiB messages.
	minChunk = 64 << 10
	// maxParts bounds the chunks of one frame.
	maxParts = 4096
	// maxAnnouncement bounds an announcement's JSON.
	maxAnnouncement = 16 << 10
)

// Config configures a Bus.
type Config struct {
	// Servers are NATS URLs (nats://host:4222, tls://host:4222); the
	// client tries them all.
	Servers   []string
	CredsFile string // a NATS credentials file (JWT and seed), or ""
	Token     string // a NATS token, or ""
	TLSCAFile string // PEM CA certificates for the servers; implies TLS
	Prefix    string // subject prefix (default "framehub")
	Name      string // this hub's name in listings (default: the host name)
	Logger    *slog.Logger

	// Tuning; zero takes the default. Tests shorten them.
	AnnounceInterval  time.Duration
	ReassemblyTimeout time.Duration
	ReconnectWait     time.Duration
	// MaxMessage, if positive and below the server's max_payload, is the
	// largest message sent (tests use it to force chunks).
	MaxMessage int
}

var (
	prefixRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$`)
	idRe     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// Check validates a configuration without connecting, with errors that
// name the flag at fault.
func (c *Config) Check() error {
	if len(c.Servers) == 0 {
		return errors.New("--nats: give at least one server, e.g. nats://127.0.0.1:4222")
	}
	for _, s := range c.Servers {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("--nats %q: want nats://HOST:PORT or tls://HOST:PORT", s)
		}
	}
	if c.Prefix != "" && !prefixRe.MatchString(c.Prefix) {
		return fmt.Errorf("--nats-subject-prefix %q: want dot-separated tokens of letters, digits, '_' or '-'", c.Prefix)
	}
	if c.CredsFile != "" {
		if _, err := os.ReadFile(c.CredsFile); err != nil {
			return fmt.Errorf("--nats-creds: %w", err)
		}
	}
	if c.CredsFile != "" && c.Token != "" {
		return errors.New("--nats-creds and --nats-token: give one, not both")
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return fmt.Errorf("--nats-tls-ca: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return fmt.Errorf("--nats-tls-ca %s: no PEM certificate in it", c.TLSCAFile)
		}
	}
	return nil
}

func (c *Config) fill() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
		if c.Name == "" {
			c.Name = "hub"
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AnnounceInterval <= 0 {
		c.AnnounceInterval = DefaultAnnounceInterval
	}
	if c.ReassemblyTimeout <= 0 {
		c.ReassemblyTimeout = DefaultReassemblyTimeout
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
}

// Bus is a hub's link to the others over NATS; it implements hub.Bus.
// Create one with New and hand it to hub.Config.Bus: the hub starts it and
// closes it. All methods are safe for concurrent use.
type Bus struct {
	// Static after New.
	cfg  Config
	log  *slog.Logger
	id   string
	subj subjects
	nc   *nats.Conn
	node hub.BusNode // set by Start, before the goroutines that read it

	mu       sync.Mutex
	started  bool
	closed   bool
	feeds    map[string]*feed       // channels watched (local readers)
	claims   map[string]*claimState // channels a local publisher holds
	retired  []*feed                // feeds unwatched, to unsubscribe
	released []*claimState          // claims released, to unsubscribe and announce
	joinNow  []string               // watched channels to send a join for at once
	resync   bool                   // after a reconnect: announce and join everything
	handlers sync.WaitGroup         // NATS callbacks under way into the hub

	out      outbox
	events   eventOutbox   // event notices (events.go)
	kick     chan struct{} // wakes the control loop
	sendKick chan struct{} // wakes the sender
	stop     chan struct{} // closed by Close
	wg       sync.WaitGroup

	dirSub, inboxSub *nats.Subscription
	inbox            inboxState

	frameID        atomic.Uint64     // IDs of frames sent in chunks
	disconnectedAt atomic.Int64      // Unix ns of the last disconnect, 0 while connected
	logs           *ratelimit.Logger // lines a broken server could repeat without end
	counters       counters
}

type counters struct {
	framesOut, bytesOut, chunkedOut, skippedOut, failedOut atomic.Uint64
	skippedIn, droppedGone                                 atomic.Uint64
}

// New validates cfg and starts connecting to NATS. A server that cannot be
// reached is not an error: the client keeps trying, and the hub serves its
// own publishers meanwhile.
func New(cfg Config) (*Bus, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg.fill()
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	b := &Bus{
		cfg: cfg, log: cfg.Logger, logs: ratelimit.NewLogger(cfg.Logger, retryLogEvery), id: hex.EncodeToString(idb[:]), subj: subjects{cfg.Prefix},
		feeds: make(map[string]*feed), claims: make(map[string]*claimState),
		kick: make(chan struct{}, 1), sendKick: make(chan struct{}, 1), stop: make(chan struct{}),
		events: eventOutbox{wake: make(chan struct{}, 1)},
	}
	b.out.items = make(map[string]*outItem)
	b.inbox.parts = newAssembler(4, cfg.ReassemblyTimeout)
	b.disconnectedAt.Store(time.Now().UnixNano())
	opts := []nats.Option{
		nats.Name("framehub hub " + cfg.Name),
		nats.NoEcho(), // a hub never hears its own frames and announcements
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectJitter(cfg.ReconnectWait/4, cfg.ReconnectWait/2),
		nats.RetryOnFailedConnect(true),
		// Nothing is kept while disconnected: frames would be stale on return.
		nats.ReconnectBufSize(-1),
		nats.Timeout(2 * time.Second),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(b.onConnect),
		nats.ReconnectHandler(b.onConnect),
		nats.DisconnectErrHandler(b.onDisconnect),
		nats.ReconnectErrHandler(b.onRetry),
		nats.ErrorHandler(b.onAsyncError),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
	}
	nc, err := nats.Connect(strings.Join(cfg.Servers, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("--nats: %w", err)
	}
	b.nc = nc
	if !nc.IsConnected() {
		b.log.Warn("nats unreachable; serving local publishers only and retrying", "servers", redacted(cfg.Servers))
	}
	return b, nil
}

// Self returns this hub's ID and name.
func (b *Bus) Self() (id, name string) { return b.id, b.cfg.Name }

// Start subscribes to the announcements and this hub's inbox and starts
// the control loop and the sender. The hub calls it once, from hub.New.
func (b *Bus) Start(n hub.BusNode) {
	b.mu.Lock()
	if b.started || b.closed {
		b.mu.Unlock()
		return
	}
	b.node, b.started = n, true
	b.mu.Unlock()
	var err error
	if b.dirSub, err = b.nc.Subscribe(b.subj.dirAll(), b.onAnnounce); err != nil {
		b.log.Error("nats subscribe failed", "subject", b.subj.dirAll(), "error", err.Error())
	}
	if b.inboxSub, err = b.nc.Subscribe(b.subj.inbox(b.id), b.onInbox); err == nil {
		b.setPendingLimits(b.inboxSub)
	} else {
		b.log.Error("nats subscribe failed", "subject", b.subj.inbox(b.id), "error", err.Error())
	}
	b.wg.Add(3)
	go func() { defer b.wg.Done(); b.control() }()
	go func() { defer b.wg.Done(); b.sender() }()
	go func() { defer b.wg.Done(); b.eventSender() }()
}

// Close leaves the bus: it announces that its channels are no longer
// published here, says it wants nothing more, closes the NATS connection,
// and waits for every callback into the hub to return.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	started := b.started
	b.mu.Unlock()
	close(b.stop)
	b.wg.Wait()
	if started {
		b.farewell()
	}
	b.nc.Close()
	b.handlers.Wait()
	b.mu.Lock()
	feeds := b.retired
	for _, f := range b.feeds {
		feeds = append(feeds, f)
	}
	b.feeds, b.retired = map[string]*feed{}, nil
	b.mu.Unlock()
	for _, f := range feeds {
		f.close(b.node)
	}
	b.inbox.mu.Lock()
	b.inbox.parts.dropAll(b.node)
	b.inbox.mu.Unlock()
	return nil
}

// farewell tells the other hubs, while the connection still works, that
// this hub's publishers and readers are gone, so they need not wait for
// the announcements to lapse.
func (b *Bus) farewell() {
	if !b.nc.IsConnected() {
		return
	}
	b.mu.Lock()
	var bye []hub.Announcement
	for _, cl := range b.claims {
		a := cl.a
		a.Live = false
		bye = append(bye, a)
	}
	for _, cl := range b.released {
		bye = append(bye, cl.a)
	}
	var leave []string
	for ch := range b.feeds {
		leave = append(leave, ch)
	}
	for _, f := range b.retired {
		leave = append(leave, f.channel)
	}
	b.mu.Unlock()
	for _, a := range bye {
		b.announce(a)
	}
	for _, ch := range leave {
		b.want(ch, wantLeave)
	}
	_ = b.nc.FlushTimeout(time.Second)
}

// enter registers a NATS callback about to call into the hub; it returns
// false once Close has begun, or before Start.
func (b *Bus) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || !b.started {
		return false
	}
	b.handlers.Add(1)
	return true
}

func (b *Bus) exit() { b.handlers.Done() }

// maxMessage is the largest message this hub sends: the server's
// max_payload, or Config.MaxMessage if smaller.
func (b *Bus) maxMessage() int {
	n := int(b.nc.MaxPayload())
	if n <= 0 {
		n = 1 << 20 // not connected yet: NATS's default
	}
	if m := b.cfg.MaxMessage; m > 0 && m < n {
		n = m
	}
	return n
}

// setPendingLimits gives a frame subscription small pending limits: two
// frames of the hub's largest size, in bytes, and in as many messages as
// their chunks take even if the sender's server allows only 64 KiB
// messages. Past them the NATS client drops messages (counted in
// Dropped); within them the handler keeps only the newest complete frame,
// so what waits is never more than two frames' worth.
func (b *Bus) setPendingLimits(sub *nats.Subscription) {
	maxFrame := b.node.MaxFrameBytes()
	parts := (maxFrame + minChunk - 1) / minChunk
	_ = sub.SetPendingLimits(2*parts+8, 2*(maxFrame+parts*headroom)+b.maxMessage())
}

// Status reports the connection and the bus's counters; the hub adds its
// own (frames relayed, stale, refused).
func (b *Bus) Status() protocol.ClusterStats {
	s := protocol.ClusterStats{
		State:      stateName(b.nc.Status()),
		Hub:        b.cfg.Name,
		HubID:      b.id,
		MaxPayload: int64(b.maxMessage()),
		Reconnects: b.nc.Stats().Reconnects,
		FramesOut:  b.counters.framesOut.Load(),
		BytesOut:   b.counters.bytesOut.Load(),
		ChunkedOut: b.counters.chunkedOut.Load(),
		SkippedOut: b.counters.skippedOut.Load(),
		FailedOut:  b.counters.failedOut.Load(),
		SkippedIn:  b.counters.skippedIn.Load(),
		DroppedIn:  b.counters.droppedGone.Load(),
	}
	s.EventsOut, s.EventsDropped = b.eventCounts()
	if s.State == "connected" {
		s.Server = withoutUser(b.nc.ConnectedUrl())
	}
	now := time.Now()
	b.mu.Lock()
	s.Watching = len(b.feeds)
	for _, cl := range b.claims {
		if cl.wanted(now) {
			s.Sending++
		}
	}
	for _, f := range b.feeds {
		if f.sub != nil {
			if n, err := f.sub.Dropped(); err == nil {
				s.DroppedIn += uint64(n)
			}
		}
	}
	b.mu.Unlock()
	return s
}

func stateName(s nats.Status) string {
	switch s {
	case nats.CONNECTED, nats.DRAINING_SUBS, nats.DRAINING_PUBS:
		return "connected"
	case nats.CONNECTING:
		return "connecting"
	case nats.RECONNECTING, nats.DISCONNECTED:
		return "reconnecting"
	}
	return "closed"
}

// Connection events, called from the NATS client's callback goroutine.

func (b *Bus) onConnect(nc *nats.Conn) {
	attrs := []any{"server", withoutUser(nc.ConnectedUrl()), "max_payload", nc.MaxPayload(), "hub", b.cfg.Name}
	if at := b.disconnectedAt.Swap(0); at != 0 && nc.Stats().Reconnects > 0 {
		attrs = append(attrs, "outage_seconds", round2(time.Since(time.Unix(0, at)).Seconds()))
		b.log.Info("nats reconnected; rejoining the cluster", attrs...)
	} else {
		b.log.Info("nats connected", attrs...)
	}
	b.mu.Lock()
	b.resync = true
	b.mu.Unlock()
	b.wake()
}

func (b *Bus) onDisconnect(_ *nats.Conn, err error) {
	b.disconnectedAt.CompareAndSwap(0, time.Now().UnixNano())
	msg := "nats disconnected; serving local publishers only until it is back"
	if err != nil {
		b.log.Warn(msg, "error", err.Error())
	} else if !b.isClosed() {
		b.log.Warn(msg)
	}
}

// onRetry logs failed reconnection attempts, at most once per
// retryLogEvery (the attempts in between are folded into the next line's
// count).
func (b *Bus) onRetry(_ *nats.Conn, err error) {
	attrs := []any{"servers", redacted(b.cfg.Servers)}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	b.logs.LogKV(slog.LevelWarn, "retry", "nats still unreachable; retrying", attrs...)
}

// retryLogEvery is the least time between two log lines about failed
// reconnection attempts.
const retryLogEvery = 30 * time.Second

func (b *Bus) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		return // counted per subscription (Dropped) and reported in stats
	}
	subject := ""
	if sub != nil {
		subject = sub.Subject
	}
	b.log.Warn("nats error", "subject", subject, "error", err.Error())
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *Bus) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// subjects names the subjects under a prefix.
type subjects struct{ prefix string }

func (s subjects) frame(ch string) string { return s.prefix + ".frame." + ch }
func (s subjects) want(ch string) string  { return s.prefix + ".want." + ch }
func (s subjects) dir(ch string) string   { return s.prefix + ".dir." + ch }
func (s subjects) dirAll() string         { return s.prefix + ".dir.*" }
func (s subjects) inbox(id string) string { return s.prefix + ".hub." + id }
func (s subjects) isInbox(subj string) bool {
	id, ok := strings.CutPrefix(subj, s.prefix+".hub.")
	return ok && idRe.MatchString(id)
}

// redacted lists server URLs without their credentials (a token may be
// the URL's user name, which url.URL.Redacted would show).
func redacted(servers []string) string {
	out := make([]string, 0, len(servers))
	for _, s := range servers {
		out = append(out, withoutUser(s))
	}
	return strings.Join(out, ",")
}

func withoutUser(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	u.User = nil
	return u.String()
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
