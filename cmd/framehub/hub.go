package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/hub"
	"framehub/metrics"
	"framehub/protocol"
	"framehub/static"
)

func hubFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "address to serve on (host:port; port 0 picks a free one)", EnvVars: []string{"FRAMEHUB_LISTEN"}},
		&cli.IntFlag{Name: "max-frame-bytes", Value: hub.DefaultMaxFrameBytes, Usage: "largest frame a publisher may send", EnvVars: []string{"FRAMEHUB_MAX_FRAME_BYTES"}},
		&cli.BoolFlag{Name: "zero-copy", Value: true, Usage: "send a frame going to several subscribers by sendfile from a memory file, not a copy per subscriber (Linux, plain TCP); --zero-copy=false to turn off", EnvVars: []string{"FRAMEHUB_ZERO_COPY"}},
		&cli.IntFlag{Name: "send-buffer", Value: hub.DefaultSendBuffer, Usage: "kernel send buffer per subscriber socket in bytes (small keeps frames fresh; -1 leaves the OS default)", EnvVars: []string{"FRAMEHUB_SEND_BUFFER"}},
		&cli.DurationFlag{Name: "write-timeout", Value: hub.DefaultWriteTimeout, Usage: "a subscriber that takes longer to accept one frame is evicted", EnvVars: []string{"FRAMEHUB_WRITE_TIMEOUT"}},
		&cli.DurationFlag{Name: "ping-interval", Value: hub.DefaultPingInterval, Usage: "how often to ping each connection", EnvVars: []string{"FRAMEHUB_PING_INTERVAL"}},
		&cli.DurationFlag{Name: "pong-wait", Value: hub.DefaultPongWait, Usage: "drop a connection silent for this long (must exceed --ping-interval)", EnvVars: []string{"FRAMEHUB_PONG_WAIT"}},
		&cli.IntFlag{Name: "credit-window", Value: hub.DefaultCreditWindow, Usage: "frames in flight to a credit-mode subscriber that names no window (max 8)", EnvVars: []string{"FRAMEHUB_CREDIT_WINDOW"}},
		&cli.DurationFlag{Name: "channel-ttl", Value: hub.DefaultChannelTTL, Usage: "how long a channel without a publisher stays listed with its last frame", EnvVars: []string{"FRAMEHUB_CHANNEL_TTL"}},
		&cli.Uint64Flag{Name: "max-pixels", Value: hub.DefaultMaxPixels, Usage: "largest width × height of a frame (default: 8K UHD, 7680×4320); a JPEG's own size is checked too", EnvVars: []string{"FRAMEHUB_MAX_PIXELS"}},
		&cli.StringFlag{Name: "max-memory", Value: "auto", Usage: "bytes of frames the hub may hold (e.g. 2GiB, 512MiB); past it new frames are refused with 1013. auto: a quarter of RAM, or half the container's limit", EnvVars: []string{"FRAMEHUB_MAX_MEMORY"}},
		&cli.IntFlag{Name: "max-renditions", Value: hub.DefaultMaxRenditions, Usage: "renditions (smaller copies of the frames) a channel may carry besides its main picture; past it they are refused (0: none)", EnvVars: []string{"FRAMEHUB_MAX_RENDITIONS"}},
		&cli.Float64Flag{Name: "max-fps-per-publisher", Value: hub.DefaultMaxFPSPerPublisher, Usage: "frames per second relayed from one publisher; the rest are dropped and counted", EnvVars: []string{"FRAMEHUB_MAX_FPS_PER_PUBLISHER"}},
		&cli.IntFlag{Name: "max-metadata-bytes", Value: hub.DefaultMaxMetaBytes, Usage: "largest JSON side data in one frame", EnvVars: []string{"FRAMEHUB_MAX_METADATA_BYTES"}},
		&cli.IntFlag{Name: "max-control-bytes", Value: protocol.MaxControlBytes, Usage: fmt.Sprintf("largest control message a subscriber may send (64 to %d)", protocol.MaxControlBytes), EnvVars: []string{"FRAMEHUB_MAX_CONTROL_BYTES"}},
		&cli.IntFlag{Name: "max-channels", Value: hub.DefaultMaxChannels, Usage: "channels the hub keeps; a publisher of one more gets 503", EnvVars: []string{"FRAMEHUB_MAX_CHANNELS"}},
		&cli.IntFlag{Name: "max-subscribers", Value: hub.DefaultMaxSubscribers, Usage: "subscribers (WebSocket and MJPEG) in total; one more gets 503", EnvVars: []string{"FRAMEHUB_MAX_SUBSCRIBERS"}},
		&cli.IntFlag{Name: "max-subscribers-per-channel", Usage: "subscribers on one channel (0: same as --max-subscribers)", EnvVars: []string{"FRAMEHUB_MAX_SUBSCRIBERS_PER_CHANNEL"}},
		&cli.StringSliceFlag{Name: "allowed-hosts", Usage: "host names the hub answers to besides loopback names and IP addresses (e.g. camhub.lan); on loopback, other names get 403 (DNS rebinding)", EnvVars: []string{"FRAMEHUB_ALLOWED_HOSTS"}},
		&cli.StringSliceFlag{Name: "allowed-origins", Usage: "browser origins besides the hub's own that may open WebSockets (e.g. https://app.example:8443); others get 403", EnvVars: []string{"FRAMEHUB_ALLOWED_ORIGINS"}},
		&cli.DurationFlag{Name: "handshake-timeout", Value: hub.DefaultHandshakeTimeout, Usage: "time allowed for a WebSocket upgrade", EnvVars: []string{"FRAMEHUB_HANDSHAKE_TIMEOUT"}},
		&cli.IntFlag{Name: "max-conns-per-ip", Value: hub.DefaultMaxConnsPerIP, Usage: "open connections from one address; more get 429", EnvVars: []string{"FRAMEHUB_MAX_CONNS_PER_IP"}},
		&cli.Float64Flag{Name: "conn-rate-per-ip", Value: hub.DefaultConnRatePerIP, Usage: "new connections per second from one address (bursts of twice that); more get 429", EnvVars: []string{"FRAMEHUB_CONN_RATE_PER_IP"}},
		&cli.BoolFlag{Name: "limit-loopback", Usage: "apply the per-address limits to loopback clients too (exempt by default: local proxies, benchmarks)", EnvVars: []string{"FRAMEHUB_LIMIT_LOOPBACK"}},
		&cli.DurationFlag{Name: "read-header-timeout", Value: hub.DefaultReadHeaderTimeout, Usage: "time a client has to send its request headers (slowloris)", EnvVars: []string{"FRAMEHUB_READ_HEADER_TIMEOUT"}},
		&cli.StringFlag{Name: "metrics-listen", Usage: "serve Prometheus metrics at /metrics on this address (its own listener, e.g. 127.0.0.1:9090); tokens do not apply there: keep it on loopback or a private network", EnvVars: []string{"FRAMEHUB_METRICS_LISTEN"}},
		&cli.StringFlag{Name: "pprof-listen", Usage: "serve Go's pprof profiles on this address (e.g. 127.0.0.1:6060); off by default, never on the hub's own port", EnvVars: []string{"FRAMEHUB_PPROF_LISTEN"}},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: 3 * time.Second, Usage: "on SIGINT/SIGTERM, how long to wait for connections to close", EnvVars: []string{"FRAMEHUB_SHUTDOWN_TIMEOUT"}},
	}
}

func hubCommand() *cli.Command {
	return &cli.Command{
		Name:  "hub",
		Usage: "run the hub: publishers push channels to it, viewers watch them",
		Flags: append(append(append(hubFlags(), authFlags()...), natsFlags()...), webhookFlags()...),
		Action: func(c *cli.Context) error {
			cfg, err := hubConfig(c)
			if err != nil {
				return err
			}
			if cfg.Webhook, err = webhookConfig(c); err != nil {
				return err
			}
			if cfg.Auth, err = hubAuth(c, cfg.Logger); err != nil {
				return err
			}
			if err := checkExposure(c.String("listen"), cfg.Auth, c.Bool("insecure"), cfg.Logger); err != nil {
				return err
			}
			tlsConf, err := hubTLS(c)
			if err != nil {
				return err
			}
			bus, err := natsBus(c, cfg.Logger)
			if err != nil {
				return err
			}
			if bus != nil {
				cfg.Bus = bus
				defer bus.Close() // the hub closes it; this covers a hub that never started
			}
			started, stop, err := sideListeners(c, &cfg)
			if err != nil {
				return err
			}
			defer stop()
			// SIGHUP reloads tokens, origins and hosts, without dropping
			// the connections they still admit.
			var reloader sync.WaitGroup
			defer reloader.Wait()
			rctx, rcancel := context.WithCancel(c.Context)
			defer rcancel()
			return runHub(c.Context, cfg, c.String("listen"), tlsConf, c.Duration("shutdown-timeout"), func(h *hub.Hub, a net.Addr) {
				started(h, a)
				reloader.Add(1)
				go func() { defer reloader.Done(); reloadOnHUP(rctx, c, h, cfg.Logger) }()
			})
		},
	}
}

// maxRenditionsFlag is the most --max-renditions allows: each rendition
// holds two frames per channel and a stream of its own on the bus.
const maxRenditionsFlag = 16

// hubConfig maps the hub flags to hub.Config.
func hubConfig(c *cli.Context) (hub.Config, error) {
	cfg := hub.Config{
		Page:          static.Files,
		Logger:        logger(c),
		MaxFrameBytes: c.Int("max-frame-bytes"),
		SendBuffer:    c.Int("send-buffer"),
		NoZeroCopy:    !c.Bool("zero-copy"),
		WriteTimeout:  c.Duration("write-timeout"),
		PingInterval:  c.Duration("ping-interval"),
		PongWait:      c.Duration("pong-wait"),
		CreditWindow:  c.Int("credit-window"),
		ChannelTTL:    c.Duration("channel-ttl"),

		MaxMetaBytes:             c.Int("max-metadata-bytes"),
		MaxPixels:                c.Uint64("max-pixels"),
		MaxFPSPerPublisher:       c.Float64("max-fps-per-publisher"),
		MaxRenditions:            c.Int("max-renditions"),
		AllowedHosts:             c.StringSlice("allowed-hosts"),
		LoopbackOnly:             isLoopback(c.String("listen")),
		OwnNames:                 ownNames(),
		MaxControlBytes:          c.Int("max-control-bytes"),
		MaxChannels:              c.Int("max-channels"),
		MaxSubscribers:           c.Int("max-subscribers"),
		MaxSubscribersPerChannel: c.Int("max-subscribers-per-channel"),
		AllowedOrigins:           c.StringSlice("allowed-origins"),
		HandshakeTimeout:         c.Duration("handshake-timeout"),
		MaxConnsPerIP:            c.Int("max-conns-per-ip"),
		ConnRatePerIP:            c.Float64("conn-rate-per-ip"),
		LimitLoopback:            c.Bool("limit-loopback"),
		ReadHeaderTimeout:        c.Duration("read-header-timeout"),
	}
	if err := checkOriginsHosts(cfg.AllowedOrigins, cfg.AllowedHosts); err != nil {
		return cfg, err
	}
	mem, err := parseMemory(c.String("max-memory"))
	if err != nil {
		return cfg, err
	}
	cfg.MaxMemory = mem
	switch {
	case cfg.MaxPixels < 64*64:
		return cfg, fmt.Errorf("--max-pixels %d: must be at least 4096", cfg.MaxPixels)
	case cfg.MaxRenditions < 0 || cfg.MaxRenditions > maxRenditionsFlag:
		return cfg, fmt.Errorf("--max-renditions %d: must be 0 to %d", cfg.MaxRenditions, maxRenditionsFlag)
	case cfg.MaxFPSPerPublisher < 1:
		return cfg, fmt.Errorf("--max-fps-per-publisher %g: must be at least 1", cfg.MaxFPSPerPublisher)
	case cfg.MaxFrameBytes < 1024:
		return cfg, fmt.Errorf("--max-frame-bytes %d: must be at least 1024", cfg.MaxFrameBytes)
	case cfg.WriteTimeout <= 0 || cfg.PingInterval <= 0 || cfg.ChannelTTL <= 0:
		return cfg, fmt.Errorf("--write-timeout, --ping-interval and --channel-ttl must be positive")
	case cfg.PongWait <= cfg.PingInterval:
		return cfg, fmt.Errorf("--pong-wait %v must exceed --ping-interval %v", cfg.PongWait, cfg.PingInterval)
	case cfg.MaxMetaBytes < 1 || cfg.MaxMetaBytes > cfg.MaxFrameBytes:
		return cfg, fmt.Errorf("--max-metadata-bytes %d: must be 1 to --max-frame-bytes", cfg.MaxMetaBytes)
	case cfg.MaxControlBytes < 64 || cfg.MaxControlBytes > protocol.MaxControlBytes:
		return cfg, fmt.Errorf("--max-control-bytes %d: must be 64 to %d", cfg.MaxControlBytes, protocol.MaxControlBytes)
	case cfg.MaxChannels < 1 || cfg.MaxSubscribers < 1 || cfg.MaxSubscribersPerChannel < 0:
		return cfg, fmt.Errorf("--max-channels and --max-subscribers must be at least 1")
	case cfg.HandshakeTimeout <= 0 || cfg.ReadHeaderTimeout <= 0:
		return cfg, fmt.Errorf("--handshake-timeout and --read-header-timeout must be positive")
	case cfg.MaxConnsPerIP < 1 || cfg.ConnRatePerIP <= 0:
		return cfg, fmt.Errorf("--max-conns-per-ip must be at least 1 and --conn-rate-per-ip positive")
	case cfg.CreditWindow < 1 || cfg.CreditWindow > hub.MaxCreditWindow:
		return cfg, fmt.Errorf("--credit-window %d: must be 1 to %d", cfg.CreditWindow, hub.MaxCreditWindow)
	}
	if cfg.MaxRenditions == 0 {
		cfg.MaxRenditions = -1 // none (hub.Config's zero means the default)
	}
	return cfg, nil
}

// parseMemory reads a byte size: "auto", a number of bytes, or a number
// with a unit (KiB, MiB, GiB, TiB, or KB, MB, GB, TB in powers of 1000).
func parseMemory(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "auto") {
		return hub.DefaultMaxMemory(), nil
	}
	v, err := parseByteSize(s, 16<<20)
	if err != nil {
		return 0, fmt.Errorf("--max-memory %q: want auto or a size of at least 16MiB, such as 512MiB or 4GiB", s)
	}
	return v, nil
}

// sideListeners starts what --metrics-listen and --pprof-listen ask for,
// each on its own listener so that neither is ever reachable through the
// hub's port, and sets cfg's instruments for the metrics. started is for
// runHub: it points the metrics at the hub once there is one. stop ends
// the listeners.
func sideListeners(c *cli.Context, cfg *hub.Config) (started func(*hub.Hub, net.Addr), stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
	}
	started = func(*hub.Hub, net.Addr) {}
	if addr := c.String("metrics-listen"); addr != "" {
		exp := metrics.New()
		cfg.Instruments = exp
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", exp.Handler())
		s, err := serveSide(addr, "--metrics-listen", mux, cfg.Logger, "metrics listening")
		if err != nil {
			return nil, stop, err
		}
		stops = append(stops, s)
		started = func(h *hub.Hub, _ net.Addr) { exp.Watch(h) }
	}
	if addr := c.String("pprof-listen"); addr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		s, err := serveSide(addr, "--pprof-listen", mux, cfg.Logger, "pprof listening")
		if err != nil {
			stop()
			return nil, func() {}, err
		}
		stops = append(stops, s)
	}
	return started, stop, nil
}

// serveSide serves handler on its own listener at addr.
func serveSide(addr, flag string, handler http.Handler, log *slog.Logger, msg string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	log.Info(msg, "addr", ln.Addr().String())
	return func() { srv.Close(); <-done }, nil
}

// setMemoryLimit makes the Go runtime collect garbage harder as the heap
// nears the hub's frame budget plus room for everything else, so that
// frames the budget has let go are returned before the process grows past
// it. GOMEMLIMIT, when set, wins.
func setMemoryLimit(budget int64) {
	if os.Getenv("GOMEMLIMIT") != "" || budget <= 0 {
		return
	}
	debug.SetMemoryLimit(budget + budget/4 + 256<<20)
}

// checkOriginsHosts checks --allowed-origins and --allowed-hosts.
func checkOriginsHosts(origins, hosts []string) error {
	for _, o := range origins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("--allowed-origins %q: want scheme://host[:port], e.g. https://app.example:8443", o)
		}
	}
	for _, hn := range hosts {
		if hn == "" || strings.ContainsAny(hn, "/:@ ") {
			return fmt.Errorf("--allowed-hosts %q: want a host name such as camhub.lan (no scheme or port)", hn)
		}
	}
	return nil
}

// reloadAccess reads again what a SIGHUP reloads: the token files
// (--tokens-file, --publish-token-file, --view-token-file,
// --token-secret-file) and the allowed origins and hosts, from the
// --config file where that is where they came from.
func reloadAccess(c *cli.Context, log *slog.Logger) (hub.Access, error) {
	var a hub.Access
	var err error
	if a.Auth, err = hubAuth(c, log); err != nil {
		return a, err
	}
	if err := checkExposure(c.String("listen"), a.Auth, c.Bool("insecure"), log); err != nil {
		return a, err
	}
	a.AllowedOrigins, a.AllowedHosts = c.StringSlice("allowed-origins"), c.StringSlice("allowed-hosts")
	if v, ok, err := fileStrings(c, "allowed-origins"); err != nil {
		return a, err
	} else if ok {
		a.AllowedOrigins = v
	}
	if v, ok, err := fileStrings(c, "allowed-hosts"); err != nil {
		return a, err
	} else if ok {
		a.AllowedHosts = v
	}
	return a, checkOriginsHosts(a.AllowedOrigins, a.AllowedHosts)
}

// reloadOnHUP reloads h's access settings on each SIGHUP until ctx ends.
// A reload that fails keeps the settings in force and says why.
func reloadOnHUP(ctx context.Context, c *cli.Context, h *hub.Hub, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		a, err := reloadAccess(c, log)
		if err != nil {
			log.Error("reload failed; the settings in force stay", "error", err.Error())
			continue
		}
		h.Reload(a)
	}
}

// ownNames returns this machine's host name, which the hub treats as its
// own origin for pages opened under it.
func ownNames() []string {
	if name, err := os.Hostname(); err == nil && name != "" {
		return []string{name}
	}
	return nil
}

// openURLs returns URLs a person can open to reach a listener: for a
// wildcard address (0.0.0.0, ::) this machine's host name and each
// interface's address, instead of "http://[::]:8080".
func openURLs(scheme string, addr net.Addr) []string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return []string{scheme + "://" + addr.String() + "/"}
	}
	port := strconv.Itoa(ta.Port)
	var out []string
	if name, err := os.Hostname(); err == nil && name != "" {
		out = append(out, scheme+"://"+net.JoinHostPort(name, port)+"/")
	}
	var loop []string
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLinkLocalUnicast() || (ta.IP.To4() != nil && ipn.IP.To4() == nil) {
				continue
			}
			u := scheme + "://" + net.JoinHostPort(ipn.IP.String(), port) + "/"
			if ipn.IP.IsLoopback() {
				loop = append(loop, u)
			} else {
				out = append(out, u)
			}
		}
	}
	out = append(out, loop...)
	if len(out) == 0 {
		out = []string{scheme + "://" + net.JoinHostPort("127.0.0.1", port) + "/"}
	}
	return out
}

// runHub serves a hub on addr (with TLS when tlsConf is not nil) until ctx
// ends, then shuts it down within grace. ready, if not nil, is called with
// the hub and its listening address before it serves.
func runHub(ctx context.Context, cfg hub.Config, addr string, tlsConf *tls.Config, grace time.Duration, ready func(*hub.Hub, net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	setMemoryLimit(cfg.MaxMemory)
	h := hub.New(cfg)
	srv := h.Server()
	// The per-address limits count TCP connections, beneath TLS.
	ln = h.Listener(ln)
	scheme := "http"
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
		scheme = "https"
	}
	urls := openURLs(scheme, ln.Addr())
	cfg.Logger.Info("hub listening", "addr", ln.Addr().String(), "url", urls[0], "urls", strings.Join(urls, " "), "auth", cfg.Auth != nil)
	if ready != nil {
		ready(h, ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		h.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	cfg.Logger.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// Both at once: the hub closes WebSocket and MJPEG connections, which
	// http.Server.Shutdown would otherwise wait on or not know of.
	hubErr := make(chan error, 1)
	go func() { hubErr <- h.Shutdown(sctx) }()
	srvErr := srv.Shutdown(sctx)
	if err := <-hubErr; err != nil {
		cfg.Logger.Warn("some connections did not close in time and were cut", "error", err.Error())
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if srvErr != nil {
		cfg.Logger.Warn("http shutdown incomplete", "error", srvErr.Error())
	}
	cfg.Logger.Info("hub stopped")
	return nil
}
