// Package bench is framehub's load generator: it runs a hub (as a child
// process, so its CPU and memory are read from /proc apart from the load
// generator's) or an external one, publishes pre-encoded JPEG frames, and
// measures what fast, slow, stalled, idle and churning subscribers get. With
// baselines it runs the same load against the two strongest simple fan-outs
// of the same bytes (ServeRawTCP: one with write(2), one with sendfile(2)
// like the hub's zero-copy path), and reports each figure next to them as a
// ratio: absolute numbers on a shared machine are noisy, ratios within one
// run are not. Runs repeats the whole set, alternating the order of the
// servers, and reports each figure and ratio as a median with its range.
//
// It is pure Go and works in the CGO_ENABLED=0 build.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"framehub/internal/backoff"
	"framehub/subscriber"
)

// Config describes a benchmark run. Zero fields take the defaults noted.
type Config struct {
	// Hub, if set, is an external hub to load (with HubPID for its /proc
	// figures); otherwise the benchmark runs HubCommand as a child.
	Hub    string
	HubPID int
	// HubCommand, WriteBaselineCommand and SendfileBaselineCommand start
	// the servers to load as child processes: the program and its
	// arguments. Each must log, as a JSON line on stderr, its Ready message
	// with the address it listens on in "addr". The caller knows how (the
	// framehub command passes its own "hub" and "bench-rawtcp"
	// subcommands), and gives the hub and the baselines the same send
	// buffer size; the package does not.
	HubCommand              []string
	HubReady                string
	WriteBaselineCommand    []string
	SendfileBaselineCommand []string
	BaselineReady           string
	// SendBuffer is the subscriber send buffer the caller gave the
	// servers, for the report.
	SendBuffer int

	Mode        string // "ws" (default) or "mjpeg"
	Subscribers int    // readers, fast and slow (default 10)
	Slow        int    // how many of them read slowly
	SlowFPS     float64
	Stalled     int // extra subscribers that connect and never read
	Idle        int // extra subscribers on a channel that has no publisher
	Channels    int // channels, one publisher each; readers spread over them (default 1)
	Credit      int // WebSocket readers ask for credit mode with this window (0: off)
	Churn       int // short-lived subscribers started per second during the run

	Duration time.Duration // measured time (default 10s)
	Warmup   time.Duration // before measuring (default 2s)
	Width    int           // default 1280
	Height   int           // default 720
	Quality  int           // default 80
	FPS      float64       // default 30

	Baseline bool // also run the two raw-TCP baselines (write and sendfile)
	// CompareDefault also runs the hub with credit mode off on the same
	// load, to compare credit mode's cost with the default's (needs
	// Credit); with Baseline, the sendfile baseline without credit too.
	CompareDefault bool
	// Runs repeats every target this many times, alternating their order
	// (default 1); figures are reported as medians with their ranges.
	Runs     int
	Pin      bool      // run the servers and the load generator on separate CPUs (see pin.go)
	Progress io.Writer // a line per second while measuring; nil for none
	Logger   *slog.Logger

	pin *pinning // set by Run when Pin
}

func (c *Config) fill() error {
	if c.Mode == "" {
		c.Mode = "ws"
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Subscribers, 10)
	def(&c.Channels, 1)
	def(&c.Width, 1280)
	def(&c.Height, 720)
	def(&c.Quality, 80)
	def(&c.Runs, 1)
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.SlowFPS == 0 {
		c.SlowFPS = 10
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Mode != "ws" && c.Mode != "mjpeg":
		return fmt.Errorf("mode %q: use ws or mjpeg", c.Mode)
	case c.Subscribers < 0 || c.Slow < 0 || c.Stalled < 0 || c.Idle < 0 || c.Churn < 0 || c.Credit < 0:
		return errors.New("subscriber counts must not be negative")
	case c.Slow > c.Subscribers:
		return fmt.Errorf("--slow %d is more than --subscribers %d", c.Slow, c.Subscribers)
	case c.Channels < 1 || c.Channels > 10000:
		return fmt.Errorf("channels %d: use 1 to 10000", c.Channels)
	case c.FPS <= 0 || c.FPS > 1000 || c.SlowFPS <= 0:
		return errors.New("fps and slow fps must be positive (fps at most 1000)")
	case c.Duration < time.Second || c.Duration > time.Hour:
		return fmt.Errorf("duration %v: use 1s to 1h", c.Duration)
	case c.Runs < 1 || c.Runs > 100:
		return fmt.Errorf("runs %d: use 1 to 100", c.Runs)
	case c.Baseline && c.Channels > 1:
		return errors.New("the raw-TCP baselines fan out one channel: use --channels 1 with --baseline")
	case c.Baseline && c.Mode != "ws":
		return errors.New("the raw-TCP baselines are compared with WebSocket subscribers: use --mode ws with --baseline")
	case c.CompareDefault && (c.Credit == 0 || c.Mode != "ws"):
		return errors.New("--compare-default compares credit mode with the default: give --credit with --mode ws")
	case c.Hub != "" && c.Pin:
		return errors.New("--pin pins the servers the benchmark starts; pin an external --hub yourself (taskset -a -p -c CPUS PID)")
	case c.Hub != "" && c.HubPID == 0:
		return errors.New("--hub needs --hub-pid, to read the hub's CPU and memory from /proc")
	}
	if c.Hub == "" && len(c.HubCommand) == 0 {
		return errors.New("no hub to load: give Hub and HubPID, or HubCommand")
	}
	if c.Baseline && (len(c.WriteBaselineCommand) == 0 || len(c.SendfileBaselineCommand) == 0) {
		return errors.New("the baselines need WriteBaselineCommand and SendfileBaselineCommand")
	}
	return nil
}

// Dist summarises delivered frame rates across subscribers.
type Dist struct {
	Min    float64 `json:"min"`
	P10    float64 `json:"p10"`
	Median float64 `json:"median"`
}

// Ages are frame ages in milliseconds (receive time minus capture time).
type Ages struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Result is one target's figures.
type Result struct {
	Target         string  `json:"target"` // "hub", "write", "sendfile", "hub-default" or "sendfile-default"
	PublishedFPS   float64 `json:"published_fps"`
	FastFPS        Dist    `json:"fast_fps"`
	SlowFPS        Dist    `json:"slow_fps"`
	FastDelivered  Dist    `json:"fast_delivered_fraction"` // of the frames published to their channel
	DeliveredMBps  float64 `json:"delivered_mb_per_s"`
	FastAge        Ages    `json:"fast_age_ms"`
	SlowAge        Ages    `json:"slow_age_ms"`
	Skipped        uint64  `json:"skipped"` // gaps in sequence numbers, all readers
	ServerCPU      float64 `json:"server_cpu_s"`
	ServerCPUPerGB float64 `json:"server_cpu_s_per_gb"`
	ServerRSSMB    float64 `json:"server_rss_mb"`
	ServerAnonMB   float64 `json:"server_private_mb"` // RssAnon: RSS less the binary's and libraries' pages
	HeapMB         float64 `json:"heap_mb,omitempty"` // hub only
	Goroutines     uint64  `json:"goroutines,omitempty"`
	LoadgenCPU     float64 `json:"loadgen_cpu_s"`
	// ConnectS is the time from the first subscriber's dial to the last
	// one's first frame, with the publishers already running.
	ConnectS float64 `json:"connect_s"`
	// How busy the server's and the load generator's CPUs were while
	// measuring (from /proc/stat, so with softirq time and anything else
	// that ran there); unpinned, both are the whole machine's.
	ServerCPUsBusy  float64 `json:"server_cpus_busy"`
	LoadgenCPUsBusy float64 `json:"loadgen_cpus_busy"`
	// LoadAvg is the machine's 1-minute load average (/proc/loadavg) as
	// the measuring began: on a shared machine, what else was running.
	LoadAvg      float64 `json:"load_avg_1m"`
	IdleKBPerSub float64 `json:"idle_kb_per_subscriber,omitempty"`
	Evicted      uint64  `json:"evicted,omitempty"`
	Churn        *Churn  `json:"churn,omitempty"`
}

// Churn reports whether the hub returns to its resting state after many
// short-lived subscribers.
type Churn struct {
	Started          uint64  `json:"started"`
	GoroutinesBefore uint64  `json:"goroutines_before"`
	GoroutinesAfter  uint64  `json:"goroutines_after"` // 3 s after the churn stopped
	HeapMBBefore     float64 `json:"heap_mb_before"`
	HeapMBAfter      float64 `json:"heap_mb_after"`
}

// Report is the outcome of Run.
type Report struct {
	Mode        string  `json:"mode"`
	Subscribers int     `json:"subscribers"`
	Slow        int     `json:"slow"`
	SlowFPS     float64 `json:"slow_fps"`
	Stalled     int     `json:"stalled"`
	Idle        int     `json:"idle"`
	Channels    int     `json:"channels"`
	Credit      int     `json:"credit"`
	Churn       int     `json:"churn_per_s"`
	FrameBytes  int     `json:"frame_bytes"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	FPS         float64 `json:"fps"`
	Seconds     float64 `json:"duration_s"`
	SendBuffer  int     `json:"send_buffer,omitempty"`
	// Targets are the servers loaded in each run: "hub", then any of
	// "write" and "sendfile" (the baselines), "hub-default" (the hub with
	// credit mode off) and "sendfile-default" (the sendfile baseline with
	// credit mode off).
	Targets []string `json:"targets"`
	// Runs holds every run's figures, in the order they ran.
	Runs []RunReport `json:"runs"`
	// Median, Min and Max are each figure's median and range over the
	// runs, by target.
	Median map[string]*Result `json:"median"`
	Min    map[string]*Result `json:"min"`
	Max    map[string]*Result `json:"max"`
	// Ratios are one target's figures divided by another's, taken within
	// each run, then summarised over the runs: by pair ("hub/write",
	// "hub/sendfile", "hub/hub-default", "sendfile/sendfile-default"),
	// then by figure.
	Ratios map[string]map[string]Spread `json:"ratios,omitempty"`
	// Pinned says where the servers and the load generator ran, if --pin.
	Pinned string `json:"pinned,omitempty"`
	// LoadgenCores is how many CPUs the load generator could use.
	LoadgenCores int `json:"loadgen_cores"`
	// ClientBoundRuns counts the runs that measured the load generator (or
	// the machine) more than the servers (see RunReport); ClientBound is
	// set when that is more than half of them.
	ClientBoundRuns int      `json:"client_bound_runs"`
	ClientBound     bool     `json:"client_bound"`
	Warnings        []string `json:"warnings,omitempty"`
	// Publisher compares the publisher with a bare gocv loop (--publisher, publisher.go).
	Publisher []PublisherResult `json:"publisher,omitempty"`
}

// RunReport is one run: every target loaded once, in Order.
type RunReport struct {
	Order   []string           `json:"order"`
	Results map[string]*Result `json:"results"`
	// Ratios are the figures of each pair of targets divided, by pair
	// (see Report.Ratios).
	Ratios      map[string]map[string]float64 `json:"ratios,omitempty"`
	ClientBound bool                          `json:"client_bound"`
	Warnings    []string                      `json:"warnings,omitempty"`
}

// Spread is a figure over several runs.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Run runs the benchmark described by cfg.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	frames, err := PatternFrames(cfg.Width, cfg.Height, cfg.Quality, 8)
	if err != nil {
		return nil, err
	}
	targets := []target{targetHub}
	if cfg.Baseline {
		targets = append(targets, targetWrite, targetSendfile)
	}
	if cfg.CompareDefault {
		targets = append(targets, targetHubDefault)
		if cfg.Baseline {
			targets = append(targets, targetSendfileDefault)
		}
	}
	rep := &Report{LoadgenCores: runtime.NumCPU(), Mode: cfg.Mode, Subscribers: cfg.Subscribers, Slow: cfg.Slow, SlowFPS: cfg.SlowFPS, Stalled: cfg.Stalled, Idle: cfg.Idle,
		Channels: cfg.Channels, Credit: cfg.Credit, Churn: cfg.Churn, FrameBytes: len(frames[0]),
		Width: cfg.Width, Height: cfg.Height, FPS: cfg.FPS, Seconds: cfg.Duration.Seconds(), SendBuffer: cfg.SendBuffer}
	for _, t := range targets {
		rep.Targets = append(rep.Targets, t.String())
	}
	if cfg.Pin {
		p, err := planPin()
		if err != nil {
			return nil, err
		}
		if err := p.pinSelf(); err != nil {
			return nil, err
		}
		cfg.HubCommand = p.wrap(cfg.HubCommand)
		if cfg.Baseline {
			cfg.WriteBaselineCommand = p.wrap(cfg.WriteBaselineCommand)
			cfg.SendfileBaselineCommand = p.wrap(cfg.SendfileBaselineCommand)
		}
		cfg.pin = p
		rep.Pinned, rep.LoadgenCores = p.String(), len(p.load)
		cfg.Logger.Info("pinned", "layout", rep.Pinned)
	}

	for i := range cfg.Runs {
		run := RunReport{Results: map[string]*Result{}}
		for _, t := range runOrder(targets, i) {
			if cfg.Runs > 1 {
				cfg.Logger.Info("run", "run", i+1, "of", cfg.Runs, "target", t.String())
			}
			res, err := runTarget(ctx, &cfg, frames, t)
			if err != nil {
				return nil, fmt.Errorf("%s (run %d): %w", t, i+1, err)
			}
			run.Order = append(run.Order, t.String())
			run.Results[t.String()] = res
		}
		for _, p := range ratioPairs(targets) {
			if run.Ratios == nil {
				run.Ratios = map[string]map[string]float64{}
			}
			run.Ratios[p[0].String()+"/"+p[1].String()] = ratios(run.Results[p[0].String()], run.Results[p[1].String()])
		}
		run.judge(rep, targets)
		rep.Runs = append(rep.Runs, run)
	}
	rep.summarise()
	return rep, nil
}

// ratioPairs are the pairs of targets whose figures are divided: the hub
// by each other target, and the sendfile baseline with credit by the same
// without (what acknowledgements cost the simplest server).
func ratioPairs(targets []target) [][2]target {
	var pairs [][2]target
	for _, t := range targets[1:] {
		pairs = append(pairs, [2]target{targetHub, t})
	}
	if slices.Contains(targets, targetSendfile) && slices.Contains(targets, targetSendfileDefault) {
		pairs = append(pairs, [2]target{targetSendfile, targetSendfileDefault})
	}
	return pairs
}

// runOrder is the order of the targets in run i: rotated by one each run,
// so that over the runs each target goes first, last and in between, and
// a drift in the machine's load does not favour one of them.
func runOrder(targets []target, i int) []target {
	k := i % len(targets)
	return append(append([]target(nil), targets[k:]...), targets[:k]...)
}

// summarise fills the report's medians, ranges, ratios and verdict from
// its runs.
func (rep *Report) summarise() {
	rep.Median, rep.Min, rep.Max = map[string]*Result{}, map[string]*Result{}, map[string]*Result{}
	for _, name := range rep.Targets {
		var rs []*Result
		for _, run := range rep.Runs {
			rs = append(rs, run.Results[name])
		}
		rep.Median[name], rep.Min[name], rep.Max[name] = combine(rs, median), combine(rs, slices.Min[[]float64]), combine(rs, slices.Max[[]float64])
	}
	seen := map[string]bool{}
	for _, run := range rep.Runs {
		if run.ClientBound {
			rep.ClientBoundRuns++
		}
		for _, w := range run.Warnings {
			if !seen[w] {
				seen[w] = true
				rep.Warnings = append(rep.Warnings, w)
			}
		}
		for other, rs := range run.Ratios {
			for fig := range rs {
				if rep.Ratios == nil {
					rep.Ratios = map[string]map[string]Spread{}
				}
				if rep.Ratios[other] == nil {
					rep.Ratios[other] = map[string]Spread{}
				}
				if _, done := rep.Ratios[other][fig]; done {
					continue
				}
				var v []float64
				for _, r := range rep.Runs {
					if x, ok := r.Ratios[other][fig]; ok {
						v = append(v, x)
					}
				}
				rep.Ratios[other][fig] = spread(v)
			}
		}
	}
	rep.ClientBound = rep.ClientBoundRuns*2 > len(rep.Runs)
}

// spread summarises values from several runs.
func spread(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	return Spread{Median: round3(median(v)), Min: slices.Min(v), Max: slices.Max(v)}
}

func ratios(h, b *Result) map[string]float64 {
	r := map[string]float64{}
	add := func(name string, hv, bv float64) {
		if bv > 0 {
			r[name] = round3(hv / bv)
		}
	}
	add("fast_fps_median", h.FastFPS.Median, b.FastFPS.Median)
	add("fast_fps_min", h.FastFPS.Min, b.FastFPS.Min)
	add("fast_delivered_min", h.FastDelivered.Min, b.FastDelivered.Min)
	add("delivered_mb_per_s", h.DeliveredMBps, b.DeliveredMBps)
	add("fast_age_p50", h.FastAge.P50, b.FastAge.P50)
	add("fast_age_p99", h.FastAge.P99, b.FastAge.P99)
	add("slow_age_p50", h.SlowAge.P50, b.SlowAge.P50)
	// CPU time comes in 10 ms ticks: a light run may read 0, which says
	// "under a tick", not "free", so no ratio is taken from it.
	if h.ServerCPUPerGB > 0 {
		add("server_cpu_per_gb", h.ServerCPUPerGB, b.ServerCPUPerGB)
	}
	add("server_rss", h.ServerRSSMB, b.ServerRSSMB)
	add("server_private", h.ServerAnonMB, b.ServerAnonMB)
	add("connect_s", h.ConnectS, b.ConnectS)
	return r
}

// Thresholds past which a run is said to measure its client, not its server.
const (
	busyLimit    = 0.9  // of the CPUs a process could use
	fullDelivery = 0.99 // of the published frames, for the slowest fast subscriber
)

// judge flags a run whose figures describe the load generator or the
// machine rather than the servers: a load generator whose CPUs are nearly
// all busy cannot read as fast as a server writes; in an unpinned run, a
// busy machine means server and load generator took CPU from each other;
// and when every server fails to deliver every frame to fast subscribers,
// the common cause is the client, unless a pinned server's own CPUs were
// full: then that server's shortfall is its own. A pinned server whose
// CPUs are full is noted: that run measured its limit.
func (run *RunReport) judge(rep *Report, targets []target) {
	short := 0
	for _, t := range targets {
		res := run.Results[t.String()]
		switch {
		case rep.Pinned == "" && res.LoadgenCPUsBusy > busyLimit:
			run.ClientBound = true
			run.Warnings = append(run.Warnings, fmt.Sprintf("%s: the machine's CPUs were %.0f%% busy: server and load generator competed for them; use --pin or fewer subscribers",
				res.Target, 100*res.LoadgenCPUsBusy))
		case res.LoadgenCPUsBusy > busyLimit:
			run.ClientBound = true
			run.Warnings = append(run.Warnings, fmt.Sprintf("%s: the load generator's CPUs were %.0f%% busy: it, not the server, may have set the pace; use fewer subscribers",
				res.Target, 100*res.LoadgenCPUsBusy))
		}
		serverFull := rep.Pinned != "" && res.ServerCPUsBusy > busyLimit
		if serverFull {
			run.Warnings = append(run.Warnings, fmt.Sprintf("%s: the server's CPUs were %.0f%% busy: this run found its limit",
				res.Target, 100*res.ServerCPUsBusy))
		}
		if rep.Subscribers > rep.Slow && res.FastDelivered.Min < fullDelivery && !serverFull {
			short++
		}
	}
	if len(targets) > 1 && short == len(targets) {
		run.ClientBound = true
		var each []string
		for _, t := range targets {
			each = append(each, fmt.Sprintf("%s %.3f", t, run.Results[t.String()].FastDelivered.Min))
		}
		run.Warnings = append(run.Warnings, fmt.Sprintf("every server delivered less than %.0f%% of frames to its slowest fast subscriber (%s): the shared cause is the client",
			fullDelivery*100, strings.Join(each, ", ")))
	}
}

// allCPUs lists the CPUs of a /proc/stat reading.
func allCPUs(t map[int]cpuTimes) []int {
	cpus := make([]int, 0, len(t))
	for c := range t {
		cpus = append(cpus, c)
	}
	return cpus
}

// target is a server the benchmark loads.
type target int

const (
	targetHub             target = iota // the hub, with the configured credit mode
	targetWrite                         // the baseline that sends with write(2)
	targetSendfile                      // the baseline that sends with sendfile(2)
	targetHubDefault                    // the hub with credit mode off (Config.CompareDefault)
	targetSendfileDefault               // the sendfile baseline with credit mode off (CompareDefault and Baseline)
)

func (t target) String() string {
	return [...]string{"hub", "write", "sendfile", "hub-default", "sendfile-default"}[t]
}

// baseline reports whether t is one of the raw-TCP baselines.
func (t target) baseline() bool {
	return t == targetWrite || t == targetSendfile || t == targetSendfileDefault
}

// run is the state of one target's run.
type run struct {
	cfg       *Config
	target    target
	credit    int    // the readers' credit window, 0 for none
	addr      string // host:port
	pid       int
	frames    [][]byte
	measuring atomic.Bool
	published []atomic.Uint64 // per channel, while measuring
	sent      []atomic.Uint64 // per channel, all along
	stop      chan struct{}   // closed to stop readers and publishers
	wg        sync.WaitGroup
	closersMu sync.Mutex
	closers   []io.Closer
	churned   atomic.Uint64
}

func (r *run) track(c io.Closer) {
	r.closersMu.Lock()
	r.closers = append(r.closers, c)
	r.closersMu.Unlock()
}

func runTarget(ctx context.Context, cfg *Config, frames [][]byte, t target) (*Result, error) {
	r := &run{cfg: cfg, target: t, frames: frames, published: make([]atomic.Uint64, cfg.Channels), sent: make([]atomic.Uint64, cfg.Channels), stop: make(chan struct{})}
	if t != targetHubDefault && t != targetSendfileDefault {
		r.credit = cfg.Credit
	}
	var srv *child
	var err error
	switch {
	case !t.baseline() && cfg.Hub != "":
		base, err := hubAddr(cfg.Hub)
		if err != nil {
			return nil, err
		}
		r.addr, r.pid = base, cfg.HubPID
	case !t.baseline():
		srv, err = startChild(ctx, cfg.HubCommand[0], cfg.HubCommand[1:], cfg.HubReady)
	case t == targetWrite:
		srv, err = startChild(ctx, cfg.WriteBaselineCommand[0], cfg.WriteBaselineCommand[1:], cfg.BaselineReady)
	// The sendfile baseline, with or without credit.
	default:
		srv, err = startChild(ctx, cfg.SendfileBaselineCommand[0], cfg.SendfileBaselineCommand[1:], cfg.BaselineReady)
	}
	if err != nil {
		return nil, err
	}
	if srv != nil {
		defer srv.stop()
		r.addr, r.pid = srv.addr, srv.pid()
	}
	defer r.shutdown()
	log := cfg.Logger.With("target", t.String())
	res := &Result{Target: t.String()}

	// Idle subscribers first, to measure what each one costs the server.
	if cfg.Idle > 0 && t == targetHub {
		rss0, _ := procRSS(r.pid)
		if err := r.connectMany(ctx, cfg.Idle, func(i int) error { return r.startIdle(ctx) }); err != nil {
			return nil, fmt.Errorf("idle subscribers: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
		rss1, _ := procRSS(r.pid)
		res.IdleKBPerSub = round3(float64(int64(rss1)-int64(rss0)) / 1024 / float64(cfg.Idle))
		log.Info("idle subscribers connected", "count", cfg.Idle, "kb_each", res.IdleKBPerSub)
	}
	if err := r.connectMany(ctx, cfg.Stalled, func(i int) error { return r.startStalled(i % cfg.Channels) }); err != nil {
		return nil, fmt.Errorf("stalled subscribers: %w", err)
	}
	// Publishers first, so each subscriber's connect time ends with a real
	// first frame, as a viewer joining a live channel sees it.
	for ch := range cfg.Channels {
		if err := r.startPublisher(ctx, ch); err != nil {
			return nil, fmt.Errorf("publisher: %w", err)
		}
	}
	if err := r.awaitPublished(ctx); err != nil {
		return nil, err
	}
	readers := make([]*reader, cfg.Subscribers)
	for i := range readers {
		readers[i] = &reader{slow: i < cfg.Slow, channel: i % cfg.Channels}
	}
	connStart := time.Now()
	if err := r.connectMany(ctx, len(readers), func(i int) error { return r.startReader(ctx, readers[i]) }); err != nil {
		return nil, fmt.Errorf("subscribers: %w", err)
	}
	last, err := awaitFirstFrames(ctx, readers, 30*time.Second)
	if err != nil {
		return nil, err
	}
	res.ConnectS = round3(last.Sub(connStart).Seconds())
	log.Info("subscribers connected", "count", len(readers), "seconds", res.ConnectS)
	log.Info("load running; warming up", "subscribers", cfg.Subscribers, "stalled", cfg.Stalled, "channels", cfg.Channels)
	if !backoff.Wait(ctx, cfg.Warmup) {
		return nil, ctx.Err()
	}

	var churn *Churn
	if cfg.Churn > 0 && t == targetHub {
		st, err := hubStats(r.addr)
		if err != nil {
			return nil, err
		}
		churn = &Churn{GoroutinesBefore: st.Goroutines, HeapMBBefore: mb(st.HeapBytes)}
	}
	res.LoadAvg = loadAvg()
	cpu0, _ := procCPU(r.pid)
	self0 := selfCPU()
	stat0, _ := readCPUTimes()
	for _, rd := range readers {
		rd.progress.Store(0) // the first progress line counts measured frames only
	}
	start := time.Now()
	r.measuring.Store(true)
	churnStop := make(chan struct{})
	if churn != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.churn(ctx, churnStop) }()
	}
	r.progress(ctx, readers, start)
	r.measuring.Store(false)
	close(churnStop)
	secs := time.Since(start).Seconds()
	cpu1, _ := procCPU(r.pid)
	res.LoadgenCPU = round3(selfCPU() - self0)
	if stat1, err := readCPUTimes(); err == nil {
		serverCPUs, loadCPUs := allCPUs(stat1), allCPUs(stat1)
		if cfg.pin != nil {
			serverCPUs, loadCPUs = cfg.pin.server, cfg.pin.load
		}
		res.ServerCPUsBusy = round3(busyShare(stat0, stat1, serverCPUs))
		res.LoadgenCPUsBusy = round3(busyShare(stat0, stat1, loadCPUs))
	}
	rss, _ := procRSS(r.pid)
	anon, _ := procAnon(r.pid)
	res.ServerRSSMB, res.ServerAnonMB = mb(rss), mb(anon)
	res.ServerCPU = round3(cpu1 - cpu0)
	if !t.baseline() {
		if st, err := hubStats(r.addr); err == nil {
			res.HeapMB, res.Goroutines, res.Evicted = mb(st.HeapBytes), st.Goroutines, st.Evicted
		}
	}
	r.summarise(res, readers, secs)
	if churn != nil {
		time.Sleep(3 * time.Second) // let the last short-lived subscribers leave
		churn.Started = r.churned.Load()
		if st, err := hubStats(r.addr); err == nil {
			churn.GoroutinesAfter, churn.HeapMBAfter = st.Goroutines, mb(st.HeapBytes)
		}
		res.Churn = churn
	}
	log.Info("measured", "fast_fps_median", res.FastFPS.Median, "server_cpu_s", res.ServerCPU)
	return res, nil
}

// awaitPublished waits until every channel's publisher has sent a frame.
func (r *run) awaitPublished(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for ch := range r.sent {
		for r.sent[ch].Load() == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("publisher of %s sent nothing in 10 s", channelName(ch))
			}
			if !backoff.Wait(ctx, 5*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	return nil
}

// awaitFirstFrames waits until every reader has had a frame and returns
// when the last one came.
func awaitFirstFrames(ctx context.Context, readers []*reader, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	var last time.Time
	for _, rd := range readers {
		for {
			if t := rd.first.Load(); t != 0 {
				last = maxTime(last, time.Unix(0, t))
				break
			}
			if time.Now().After(deadline) {
				return last, fmt.Errorf("a subscriber of %s had no frame %v after connecting", channelName(rd.channel), limit)
			}
			if !backoff.Wait(ctx, 5*time.Millisecond) {
				return last, ctx.Err()
			}
		}
	}
	return last, nil
}

// summarise computes a target's figures from its readers.
func (r *run) summarise(res *Result, readers []*reader, secs float64) {
	var published float64
	for i := range r.published {
		published += float64(r.published[i].Load())
	}
	res.PublishedFPS = round3(published / float64(len(r.published)) / secs)
	var fastFPS, slowFPS, fastFrac, fastAges, slowAges []float64
	var bytes uint64
	for _, rd := range readers {
		frames, n, skipped, a := rd.figures()
		fps := float64(frames) / secs
		bytes += n
		res.Skipped += skipped
		if rd.slow {
			slowFPS = append(slowFPS, fps)
			slowAges = append(slowAges, a...)
			continue
		}
		fastFPS = append(fastFPS, fps)
		fastAges = append(fastAges, a...)
		if p := r.published[rd.channel].Load(); p > 0 {
			fastFrac = append(fastFrac, min(1, float64(frames)/float64(p)))
		}
	}
	res.FastFPS, res.SlowFPS, res.FastDelivered = dist(fastFPS), dist(slowFPS), dist(fastFrac)
	res.FastAge, res.SlowAge = ages(fastAges), ages(slowAges)
	res.DeliveredMBps = round3(float64(bytes) / 1e6 / secs)
	if bytes > 0 {
		res.ServerCPUPerGB = round3(res.ServerCPU / (float64(bytes) / 1e9))
	}
}

// progress prints a line a second until the measured time is over.
func (r *run) progress(ctx context.Context, readers []*reader, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	end := start.Add(r.cfg.Duration)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.cfg.Progress == nil {
			continue
		}
		var fps []float64
		for _, rd := range readers {
			if !rd.slow {
				fps = append(fps, float64(rd.progress.Swap(0)))
			}
		}
		slices.Sort(fps)
		cpu, _ := procCPU(r.pid)
		rss, _ := procRSS(r.pid)
		med := 0.0
		if len(fps) > 0 {
			med = fps[len(fps)/2]
		}
		fmt.Fprintf(r.cfg.Progress, "bench %s: %2.0fs  fast subscribers' fps median %5.1f  server cpu %6.2fs  rss %6.1f MB\n",
			r.target, time.Since(start).Seconds(), med, cpu, mb(rss))
	}
}

// connectMany runs start for 0..n-1 with bounded concurrency, so that the
// server's listen backlog is not overrun.
func (r *run) connectMany(ctx context.Context, n int, start func(i int) error) error {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	for i := range n {
		if ctx.Err() != nil || first.Load() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			for attempt := 0; attempt < 5; attempt++ {
				if err = start(i); err == nil {
					return
				}
				time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
			}
			first.CompareAndSwap(nil, &err)
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return ctx.Err()
}

// shutdown stops every reader, publisher and connection of the run.
func (r *run) shutdown() {
	close(r.stop)
	r.closersMu.Lock()
	for _, c := range r.closers {
		c.Close()
	}
	r.closersMu.Unlock()
	r.wg.Wait()
}

func channelName(i int) string { return fmt.Sprintf("bench-%d", i) }

func hubAddr(hub string) (string, error) {
	u, _, err := parseHub(hub)
	if err != nil {
		return "", err
	}
	return u, nil
}

func hubStats(addr string) (struct {
	Goroutines uint64 `json:"goroutines"`
	HeapBytes  uint64 `json:"heap_bytes"`
	Evicted    uint64 `json:"subscribers_evicted"`
}, error) {
	var st struct {
		Goroutines uint64 `json:"goroutines"`
		HeapBytes  uint64 `json:"heap_bytes"`
		Evicted    uint64 `json:"subscribers_evicted"`
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/api/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, jsonDecode(resp.Body, &st)
}

func dist(v []float64) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	slices.Sort(v)
	return Dist{Min: round3(v[0]), P10: round3(subscriber.Percentile(v, 10)), Median: round3(subscriber.Percentile(v, 50))}
}

func ages(v []float64) Ages {
	if len(v) == 0 {
		return Ages{}
	}
	slices.Sort(v)
	return Ages{P50: round3(subscriber.Percentile(v, 50)), P99: round3(subscriber.Percentile(v, 99)), Max: round3(v[len(v)-1])}
}

func mb(b uint64) float64 { return round3(float64(b) / (1 << 20)) }

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// combine builds a Result whose every number is pick of that number over
// rs (a median, a minimum, a maximum), walking the struct's fields so that
// a figure added to Result is summarised too. Target is kept; a pointer
// field (Churn) is combined when every result has it.
func combine(rs []*Result, pick func([]float64) float64) *Result {
	out := &Result{}
	if len(rs) == 0 {
		return out
	}
	vals := make([]reflect.Value, len(rs))
	for i, r := range rs {
		vals[i] = reflect.ValueOf(r).Elem()
	}
	combineValue(reflect.ValueOf(out).Elem(), vals, pick)
	out.Target = rs[0].Target
	return out
}

func combineValue(dst reflect.Value, src []reflect.Value, pick func([]float64) float64) {
	switch dst.Kind() {
	case reflect.Struct:
		for i := range dst.NumField() {
			f := make([]reflect.Value, len(src))
			for k, s := range src {
				f[k] = s.Field(i)
			}
			combineValue(dst.Field(i), f, pick)
		}
	case reflect.Pointer:
		for _, s := range src {
			if s.IsNil() {
				return
			}
		}
		dst.Set(reflect.New(dst.Type().Elem()))
		f := make([]reflect.Value, len(src))
		for k, s := range src {
			f[k] = s.Elem()
		}
		combineValue(dst.Elem(), f, pick)
	case reflect.Float64:
		v := make([]float64, len(src))
		for k, s := range src {
			v[k] = s.Float()
		}
		dst.SetFloat(round3(pick(v)))
	case reflect.Uint64:
		v := make([]float64, len(src))
		for k, s := range src {
			v[k] = float64(s.Uint())
		}
		dst.SetUint(uint64(pick(v) + 0.5))
	}
}
