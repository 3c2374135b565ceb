package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"framehub/internal/backoff"
)

// ClusterConfig describes a cross-hub benchmark: Hubs hub processes joined
// by one NATS server, one publisher on the first hub, and Subscribers
// readers on every hub. Zero fields take the defaults noted.
type ClusterConfig struct {
	Hubs        int // default 3
	Subscribers int // per hub (default 5)
	HubBinary   string
	HubArgs     []string
	// NATSServer is a nats-server binary the benchmark starts on loopback
	// (scripts/bench-cluster.sh builds one from the Go module); or NATS is
	// a running server's URL, and NATSMonitor its monitoring URL
	// (http://127.0.0.1:8222), which the bus figures are read from.
	NATSServer  string
	NATS        string
	NATSMonitor string

	Duration time.Duration // default 10s
	Warmup   time.Duration // default 2s
	Width    int           // default 1280
	Height   int           // default 720
	Quality  int           // default 80
	FPS      float64       // default 30
	Progress io.Writer
	Logger   *slog.Logger
}

// HubFigures is what one hub of the cluster did.
type HubFigures struct {
	Name        string  `json:"name"`
	Publisher   bool    `json:"publisher"` // the publisher is connected to this hub
	FPSMedian   float64 `json:"fps_median"`
	Delivered   float64 `json:"delivered_fraction_min"` // of the frames published
	Age         Ages    `json:"age_ms"`
	Skipped     uint64  `json:"skipped"`
	CPU         float64 `json:"cpu_s"`
	DeliveredGB float64 `json:"delivered_gb"` // to this hub's readers
	CPUPerGB    float64 `json:"cpu_s_per_gb"` // CPU seconds per GB delivered to its readers
	RSSMB       float64 `json:"rss_mb"`
	// Bytes between this hub and NATS while measuring, as the server
	// counts them, and in copies of the published frames.
	BusBytesIn    uint64  `json:"bus_bytes_in"`
	BusBytesOut   uint64  `json:"bus_bytes_out"`
	BusCopiesIn   float64 `json:"bus_copies_in_per_frame"`
	BusCopiesOut  float64 `json:"bus_copies_out_per_frame"`
	BusFramesIn   uint64  `json:"bus_frames_in"`
	BusSkippedIn  uint64  `json:"bus_skipped_in"`
	BusRefusedIn  uint64  `json:"bus_refused_in"`
	BusFramesOut  uint64  `json:"bus_frames_out"`
	BusSkippedOut uint64  `json:"bus_skipped_out"`
	BusChunkedOut uint64  `json:"bus_chunked_out"`
	BusMaxPayload int64   `json:"bus_max_payload"`
}

// ClusterReport is the outcome of RunCluster.
type ClusterReport struct {
	Hubs              int     `json:"hubs"`
	SubscribersPerHub int     `json:"subscribers_per_hub"`
	FrameBytes        int     `json:"frame_bytes"`
	Width             int     `json:"width"`
	Height            int     `json:"height"`
	FPS               float64 `json:"fps"`
	Seconds           float64 `json:"duration_s"`
	Published         uint64  `json:"published_frames"`
	// Frame age on the other hubs over the publisher's own hub: the worst
	// remote hub's p50 and p99 less the local ones.
	AgeOverheadP50 float64      `json:"age_overhead_p50_ms"`
	AgeOverheadP99 float64      `json:"age_overhead_p99_ms"`
	NATSCPU        float64      `json:"nats_cpu_s,omitempty"` // when the benchmark started the server
	PerHub         []HubFigures `json:"per_hub"`
}

func (c *ClusterConfig) fill() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Hubs, 3)
	def(&c.Subscribers, 5)
	def(&c.Width, 1280)
	def(&c.Height, 720)
	def(&c.Quality, 80)
	if c.FPS == 0 {
		c.FPS = 30
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
	case c.Hubs < 2 || c.Hubs > 16:
		return fmt.Errorf("--cluster %d: use 2 to 16 hubs", c.Hubs)
	case c.Subscribers < 1:
		return errors.New("--subscribers: at least one per hub")
	case (c.NATSServer == "") == (c.NATS == ""):
		return errors.New("--cluster needs --nats-server PATH (a nats-server binary to start; scripts/bench-cluster.sh builds one) or --nats URL of a running server")
	case c.FPS <= 0 || c.FPS > 1000:
		return errors.New("fps must be positive (at most 1000)")
	case c.Duration < time.Second || c.Duration > time.Hour:
		return fmt.Errorf("duration %v: use 1s to 1h", c.Duration)
	}
	if c.HubBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the framehub binary: %w", err)
		}
		c.HubBinary = exe
	}
	return nil
}

// RunCluster runs the cross-hub benchmark described by cfg: it starts the
// hubs (and nats-server if asked), loads them, warms up, measures, and
// stops everything it started.
func RunCluster(ctx context.Context, cfg ClusterConfig) (*ClusterReport, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	b := &clusterBench{cfg: cfg}
	defer b.close()
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	if err := b.warmUp(ctx); err != nil {
		return nil, err
	}
	return b.measure(ctx), nil
}

// clusterBench is one run of the cross-hub benchmark.
type clusterBench struct {
	cfg       ClusterConfig
	frames    [][]byte
	natsProc  *child // the nats-server started for the run, or nil
	monitor   string // its monitoring URL
	published []atomic.Uint64
	runs      []*run // one per hub; runs[0]'s hub has the publisher
	readers   [][]*reader
	figs      []HubFigures
	stops     []func() // what close undoes, in order
}

// close stops what start started, last first.
func (b *clusterBench) close() {
	for i := len(b.stops) - 1; i >= 0; i-- {
		b.stops[i]()
	}
}

// start starts nats-server (if cfg.NATSServer) and the hubs, connects
// every hub's readers and starts the publisher on the first hub. Every hub
// is loaded like the single-hub benchmark's: one run each, sharing the
// publisher's count of published frames.
func (b *clusterBench) start(ctx context.Context) error {
	cfg := b.cfg
	var err error
	if b.frames, err = PatternFrames(cfg.Width, cfg.Height, cfg.Quality, 8); err != nil {
		return err
	}
	natsURL, monitor := cfg.NATS, cfg.NATSMonitor
	if cfg.NATSServer != "" {
		if b.natsProc, natsURL, monitor, err = startNATS(ctx, cfg.NATSServer); err != nil {
			return err
		}
		b.stops = append(b.stops, b.natsProc.stop)
	}
	b.monitor = monitor
	bcfg := &Config{Mode: "ws", FPS: cfg.FPS, Width: cfg.Width, Height: cfg.Height, SlowFPS: 1}
	b.published = make([]atomic.Uint64, 1)
	b.runs = make([]*run, cfg.Hubs)
	b.figs = make([]HubFigures, cfg.Hubs)
	b.readers = make([][]*reader, cfg.Hubs)
	for i := range b.runs {
		b.figs[i].Name, b.figs[i].Publisher = fmt.Sprintf("bench-hub%d", i), i == 0
		args := append([]string{"--log-format", "json", "hub", "--listen", "127.0.0.1:0", "--nats", natsURL,
			"--nats-hub-name", b.figs[i].Name}, cfg.HubArgs...)
		srv, err := startChild(ctx, cfg.HubBinary, args, "hub listening")
		if err != nil {
			return fmt.Errorf("hub %d: %w", i, err)
		}
		b.stops = append(b.stops, srv.stop)
		r := &run{cfg: bcfg, target: targetHub, addr: srv.addr, pid: srv.pid(), frames: b.frames, published: b.published,
			sent: make([]atomic.Uint64, 1), stop: make(chan struct{})}
		b.runs[i] = r
		b.stops = append(b.stops, r.shutdown)
	}
	for i, r := range b.runs {
		if err := waitConnected(ctx, r.addr); err != nil {
			return fmt.Errorf("hub %d: %w", i, err)
		}
		b.readers[i] = make([]*reader, cfg.Subscribers)
		for k := range b.readers[i] {
			b.readers[i][k] = &reader{}
		}
		if err := r.connectMany(ctx, cfg.Subscribers, func(k int) error { return r.startReader(ctx, b.readers[i][k]) }); err != nil {
			return fmt.Errorf("hub %d subscribers: %w", i, err)
		}
	}
	if err := b.runs[0].startPublisher(ctx, 0); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	return nil
}

// warmUp waits until every hub's readers get frames, then cfg.Warmup more.
func (b *clusterBench) warmUp(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	for i := range b.runs {
		for b.readers[i][0].progress.Load() == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("hub %d's readers got no frame within 15 s", i)
			}
			if !backoff.Wait(ctx, 20*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	if !backoff.Wait(ctx, b.cfg.Warmup) {
		return ctx.Err()
	}
	return nil
}

// measure measures for cfg.Duration, printing progress, and reports.
func (b *clusterBench) measure(ctx context.Context) *ClusterReport {
	cpu0 := make([]float64, len(b.runs))
	for i, r := range b.runs {
		cpu0[i], _ = procCPU(r.pid)
		for _, rd := range b.readers[i] {
			rd.progress.Store(0)
		}
	}
	natsCPU0 := 0.0
	if b.natsProc != nil {
		natsCPU0, _ = procCPU(b.natsProc.pid())
	}
	conns0, _ := natsConns(b.monitor)
	start := time.Now()
	for _, r := range b.runs {
		r.measuring.Store(true)
	}
	clusterProgress(ctx, b.cfg, b.runs, b.readers, b.figs, start)
	for _, r := range b.runs {
		r.measuring.Store(false)
	}
	secs := time.Since(start).Seconds()
	conns1, _ := natsConns(b.monitor)

	cfg := b.cfg
	rep := &ClusterReport{Hubs: cfg.Hubs, SubscribersPerHub: cfg.Subscribers, FrameBytes: len(b.frames[0]), Width: cfg.Width,
		Height: cfg.Height, FPS: cfg.FPS, Seconds: round3(secs), Published: b.published[0].Load()}
	if b.natsProc != nil {
		c, _ := procCPU(b.natsProc.pid())
		rep.NATSCPU = round3(c - natsCPU0)
	}
	// What the published frames weigh: the publisher cycles through the
	// pictures, each with its 48-byte protocol header.
	mean := 0.0
	for _, f := range b.frames {
		mean += float64(len(f)+48) / float64(len(b.frames))
	}
	frameWire := float64(rep.Published) * mean
	for i := range b.runs {
		b.hubFigures(i, cpu0[i], secs, conns0, conns1, frameWire)
		if f := &b.figs[i]; i > 0 {
			rep.AgeOverheadP50 = max(rep.AgeOverheadP50, round3(f.Age.P50-b.figs[0].Age.P50))
			rep.AgeOverheadP99 = max(rep.AgeOverheadP99, round3(f.Age.P99-b.figs[0].Age.P99))
		}
	}
	rep.PerHub = b.figs
	return rep
}

// hubFigures fills hub i's figures from its readers, its process, the
// NATS server's counts of its connection and its own /api/stats.
func (b *clusterBench) hubFigures(i int, cpu0, secs float64, conns0, conns1 map[string]natsConn, frameWire float64) {
	r, f := b.runs[i], &b.figs[i]
	res := &Result{}
	cpu1, _ := procCPU(r.pid)
	res.ServerCPU = round3(cpu1 - cpu0)
	r.summarise(res, b.readers[i], secs)
	f.FPSMedian, f.Delivered, f.Age, f.Skipped = res.FastFPS.Median, res.FastDelivered.Min, res.FastAge, res.Skipped
	f.CPU, f.DeliveredGB, f.CPUPerGB = res.ServerCPU, round3(res.DeliveredMBps*secs/1e3), res.ServerCPUPerGB
	rss, _ := procRSS(r.pid)
	f.RSSMB = mb(rss)
	if c0, c1 := conns0[f.Name], conns1[f.Name]; c1.OutBytes > 0 {
		f.BusBytesIn, f.BusBytesOut = uint64(c1.OutBytes-c0.OutBytes), uint64(c1.InBytes-c0.InBytes)
		if frameWire > 0 {
			f.BusCopiesIn, f.BusCopiesOut = round3(float64(f.BusBytesIn)/frameWire), round3(float64(f.BusBytesOut)/frameWire)
		}
	}
	if st, err := clusterStats(r.addr); err == nil && st.Cluster != nil {
		c := st.Cluster
		f.BusFramesIn, f.BusSkippedIn, f.BusFramesOut, f.BusSkippedOut, f.BusChunkedOut, f.BusMaxPayload =
			c.FramesIn, c.SkippedIn, c.FramesOut, c.SkippedOut, c.ChunkedOut, c.MaxPayload
		for _, n := range c.Refused {
			f.BusRefusedIn += n
		}
	}
}

// clusterProgress prints a line a second until the measured time is over.
func clusterProgress(ctx context.Context, cfg ClusterConfig, runs []*run, readers [][]*reader, figs []HubFigures, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for time.Since(start) < cfg.Duration {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if cfg.Progress == nil {
			continue
		}
		line := fmt.Sprintf("bench cluster: %2.0fs ", time.Since(start).Seconds())
		for i := range runs {
			var fps []float64
			for _, rd := range readers[i] {
				fps = append(fps, float64(rd.progress.Swap(0)))
			}
			slices.Sort(fps)
			cpu, _ := procCPU(runs[i].pid)
			line += fmt.Sprintf(" %s fps %4.1f cpu %5.2fs", figs[i].Name, fps[len(fps)/2], cpu)
		}
		fmt.Fprintln(cfg.Progress, line)
	}
}

// startNATS starts a nats-server binary on two free loopback ports and
// waits until its monitoring endpoint answers.
func startNATS(ctx context.Context, bin string) (*child, string, string, error) {
	ports := make([]int, 2)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", "", err
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(ports[0]), "-m", strconv.Itoa(ports[1]))
	if err := cmd.Start(); err != nil {
		return nil, "", "", fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.exited) }()
	url := "nats://127.0.0.1:" + strconv.Itoa(ports[0])
	monitor := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := natsConns(monitor); err == nil {
			return c, url, monitor, nil
		}
		select {
		case <-c.exited:
			return nil, "", "", fmt.Errorf("%s exited: %v", bin, c.err)
		default:
		}
		if time.Now().After(deadline) || !backoff.Wait(ctx, 50*time.Millisecond) {
			c.stop()
			return nil, "", "", fmt.Errorf("%s did not answer on %s within 10 s", bin, monitor)
		}
	}
}

type natsConn struct {
	Name     string `json:"name"`
	InBytes  int64  `json:"in_bytes"`
	OutBytes int64  `json:"out_bytes"`
}

// natsConns reads the server's connections by name from its monitoring
// endpoint.
func natsConns(monitor string) (map[string]natsConn, error) {
	if monitor == "" {
		return nil, errors.New("no monitoring URL")
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(monitor + "/connz?limit=1024")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var cz struct {
		Conns []natsConn `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cz); err != nil {
		return nil, err
	}
	out := make(map[string]natsConn, len(cz.Conns))
	for _, c := range cz.Conns {
		if name, ok := strings.CutPrefix(c.Name, "framehub hub "); ok {
			out[name] = c
		}
	}
	return out, nil
}

type clusterStatsView struct {
	Cluster *struct {
		State      string            `json:"state"`
		MaxPayload int64             `json:"max_payload"`
		FramesOut  uint64            `json:"frames_out_total"`
		ChunkedOut uint64            `json:"chunked_out_total"`
		SkippedOut uint64            `json:"skipped_out_total"`
		FramesIn   uint64            `json:"frames_in_total"`
		SkippedIn  uint64            `json:"skipped_in_total"`
		Refused    map[string]uint64 `json:"refused"`
	} `json:"cluster"`
}

func clusterStats(addr string) (clusterStatsView, error) {
	var st clusterStatsView
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/api/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitConnected waits until a hub reports its bus connected.
func waitConnected(ctx context.Context, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := clusterStats(addr)
		if err == nil && st.Cluster != nil && st.Cluster.State == "connected" {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("not connected to NATS within 15 s")
		}
		if !backoff.Wait(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// WriteTable prints the report: a column per hub.
func (rep *ClusterReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "framehub bench --cluster %d: %d subscribers per hub, one publisher on %s\n", rep.Hubs, rep.SubscribersPerHub, rep.PerHub[0].Name)
	fmt.Fprintf(w, "frames %dx%d JPEG, %d bytes, %.0f fps, %d published over %.0f s\n\n", rep.Width, rep.Height, rep.FrameBytes, rep.FPS, rep.Published, rep.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "figure\t"
	for _, f := range rep.PerHub {
		head += f.Name + "\t"
	}
	fmt.Fprintln(tw, head)
	row := func(name string, v func(f *HubFigures) float64) {
		line := name + "\t"
		for i := range rep.PerHub {
			line += num(v(&rep.PerHub[i])) + "\t"
		}
		fmt.Fprintln(tw, line)
	}
	row("readers' fps median", func(f *HubFigures) float64 { return f.FPSMedian })
	row("delivered fraction min", func(f *HubFigures) float64 { return f.Delivered })
	row("frame age p50 ms", func(f *HubFigures) float64 { return f.Age.P50 })
	row("frame age p99 ms", func(f *HubFigures) float64 { return f.Age.P99 })
	row("frame age max ms", func(f *HubFigures) float64 { return f.Age.Max })
	row("skipped frames", func(f *HubFigures) float64 { return float64(f.Skipped) })
	row("bus copies in per frame", func(f *HubFigures) float64 { return f.BusCopiesIn })
	row("bus copies out per frame", func(f *HubFigures) float64 { return f.BusCopiesOut })
	row("bus frames skipped in", func(f *HubFigures) float64 { return float64(f.BusSkippedIn) })
	row("bus frames skipped out", func(f *HubFigures) float64 { return float64(f.BusSkippedOut) })
	row("hub CPU s", func(f *HubFigures) float64 { return f.CPU })
	row("hub CPU s per GB delivered", func(f *HubFigures) float64 { return f.CPUPerGB })
	row("hub RSS MB", func(f *HubFigures) float64 { return f.RSSMB })
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nframe age over the publisher's hub: p50 %+.3f ms, p99 %+.3f ms (worst other hub)", rep.AgeOverheadP50, rep.AgeOverheadP99)
	if rep.NATSCPU > 0 {
		fmt.Fprintf(w, "; nats-server CPU %.3f s", rep.NATSCPU)
	}
	fmt.Fprintln(w)
	return nil
}
