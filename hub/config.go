package hub

import (
	"io/fs"
	"log/slog"
	"time"

	"framehub/protocol"
)

// Defaults for Config fields left zero.
const (
	// DefaultMaxFrameBytes bounds a publisher's message: a raw 1080p BGR
	// frame (6.2 MB) fits, with room to spare.
	DefaultMaxFrameBytes = 16 << 20
	// DefaultMaxPixels bounds a frame's width × height: 8K UHD passes.
	DefaultMaxPixels = protocol.DefaultMaxPixels
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
	MaxCreditWindow = protocol.MaxCreditWindow
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
	// DefaultMaxFPSPerPublisher caps the frames per second one publisher
	// may have relayed: far above any camera, low enough that a flood
	// cannot take the fan-out from other channels.
	DefaultMaxFPSPerPublisher = 240
	// refusalLogInterval is the least time between two log lines about the
	// same kind of refusal or connection event; the ones in between are
	// counted and summarised.
	refusalLogInterval = 10 * time.Second
	// statsInterval is how often per-channel stats are logged at Debug.
	statsInterval = 10 * time.Second
)

// Config configures a Hub. The zero value is usable: every zero field takes
// the default named after it.
type Config struct {
	Logger          *slog.Logger // nil discards
	MaxFrameBytes   int          // largest publisher message
	MaxMetaBytes    int          // largest metadata in a frame (default 64 KiB)
	MaxPixels       uint64       // largest width × height of a frame (default 8K UHD)
	MaxControlBytes int          // largest subscriber control message (default and most protocol.MaxControlBytes)
	// MaxMemory bounds the bytes of frames the hub holds: frames being
	// received, and each channel's newest frame and the one before it
	// (which slow subscribers may still be sent). A frame that would pass
	// it is refused and its publisher closed with 1013 (try again later).
	// Zero means DefaultMaxMemory(); negative means no budget.
	MaxMemory          int64
	MaxFPSPerPublisher float64 // frames per second relayed per publisher (default 240); the rest are dropped
	// MaxRenditions is how many renditions besides the main picture a
	// channel may carry (rendition.go). Zero means DefaultMaxRenditions;
	// negative means none.
	MaxRenditions int
	SendBuffer    int // subscriber socket SO_SNDBUF in bytes; negative leaves the OS default
	// NoZeroCopy sends every frame with plain writes, never by sendfile
	// from a memory file (sendfile.go).
	NoZeroCopy       bool
	WriteTimeout     time.Duration
	PingInterval     time.Duration
	PongWait         time.Duration
	CreditWindow     int
	ChannelTTL       time.Duration
	HandshakeTimeout time.Duration
	// AllowedOrigins lists browser origins ("https://app.example:8443")
	// allowed besides the hub's own. A WebSocket upgrade whose Origin header
	// is neither gets 403. Requests with no Origin (non-browser clients)
	// are not affected.
	AllowedOrigins []string
	// LoopbackOnly says the hub listens on a loopback address. It then
	// answers only requests whose Host is a loopback name or address
	// (localhost, 127.0.0.1, [::1], any port) or one of AllowedHosts, so a
	// web site whose name resolves to 127.0.0.1 (DNS rebinding) cannot
	// reach it; others get 403.
	LoopbackOnly bool
	// AllowedHosts are host names (no port) the hub answers to besides
	// loopback names and IP addresses. On a hub that is not LoopbackOnly an
	// empty list accepts any Host; a non-empty one refuses the others with
	// 403. A page served under one of these names may open WebSockets.
	AllowedHosts []string
	// OwnNames are this machine's own host names (the command passes
	// os.Hostname): a page opened under one is the hub's own origin, like
	// one under an IP address, without making the Host check strict.
	OwnNames                 []string
	MaxChannels              int // channels with a publisher or a frame (default 1000)
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
	// Page is the web page the hub serves at /, /view/{channel} and
	// /static/ (index.html, view.html and their files; the command passes
	// framehub/static). Nil serves no page: those paths get 404.
	Page fs.FS
	// Bus, when not nil, links the hub with others so that they act as one
	// (see Bus; package cluster implements it over NATS). The hub starts it
	// and closes it on Shutdown. Nil: a hub on its own, which runs none of
	// the cluster code.
	Bus Bus
	// Webhook, with a URL, POSTs a signed JSON document for each event
	// start and end of a local publisher's channel (events.go, webhook.go).
	// Check it with WebhookConfig.Check: a hub given one that does not
	// check sends none, and logs why.
	Webhook WebhookConfig
	// Instruments, when not nil, receive what the hub measures on its hot
	// path (package metrics exports them for Prometheus).
	Instruments Instruments
	// DenyDelay is the pause before answering a request without the right
	// token (default 50 to 150 ms, random): it makes guessing slow. Tests
	// may set a negative value for none.
	DenyDelay time.Duration
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
	def(&c.MaxRenditions, DefaultMaxRenditions)
	c.MaxRenditions = max(c.MaxRenditions, 0)
	def(&c.MaxMetaBytes, DefaultMaxMetaBytes)
	if c.MaxPixels == 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	if c.MaxMemory == 0 {
		c.MaxMemory = DefaultMaxMemory()
	}
	if c.MaxFPSPerPublisher <= 0 {
		c.MaxFPSPerPublisher = DefaultMaxFPSPerPublisher
	}
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

// limits returns what the hub enforces on frames, as it tells clients.
func (c *Config) limits() protocol.HubLimits {
	return protocol.HubLimits{
		MaxFrameBytes:   c.MaxFrameBytes,
		MaxMetaBytes:    c.MaxMetaBytes,
		MaxPixels:       c.MaxPixels,
		MaxDimension:    protocol.DefaultLimits.MaxDimension,
		MaxControlBytes: c.MaxControlBytes,
		MaxCreditWindow: MaxCreditWindow,
		MaxRenditions:   c.MaxRenditions,
	}
}
