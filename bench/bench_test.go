package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"framehub/internal/testutil"
	"framehub/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDistAndAges(t *testing.T) {
	// 1..20 shuffled: min 1, p10 2 (nearest rank: ceil(0.1*20) = 2nd), median 10.
	v := []float64{20, 3, 1, 19, 2, 18, 4, 17, 5, 16, 6, 15, 7, 14, 8, 13, 9, 12, 10, 11}
	if got := dist(append([]float64(nil), v...)); got != (Dist{Min: 1, P10: 2, Median: 10}) {
		t.Errorf("dist = %+v; want {1 2 10}", got)
	}
	// 100 ages 1..100 ms: p50 50, p99 99, max 100.
	a := make([]float64, 100)
	for i := range a {
		a[i] = float64(100 - i)
	}
	if got := ages(a); got != (Ages{P50: 50, P99: 99, Max: 100}) {
		t.Errorf("ages = %+v; want {50 99 100}", got)
	}
	if dist(nil) != (Dist{}) || ages(nil) != (Ages{}) {
		t.Error("empty inputs should give zero figures")
	}
}

func TestSummarise(t *testing.T) {
	r := &run{cfg: &Config{}, published: make([]atomic.Uint64, 1)}
	r.published[0].Store(100) // 100 frames published in 10 s
	readers := []*reader{
		{frames: 100, bytes: 100e6, ages: []float64{1, 2, 3}},
		{frames: 90, bytes: 90e6, skipped: 10, ages: []float64{4}},
		{slow: true, frames: 50, bytes: 50e6, ages: []float64{500, 700}},
	}
	res := &Result{ServerCPU: 0.48}
	r.summarise(res, readers, 10)
	if res.PublishedFPS != 10 || res.FastFPS != (Dist{Min: 9, P10: 9, Median: 9}) || res.SlowFPS.Median != 5 {
		t.Errorf("rates: published %v, fast %+v, slow %+v", res.PublishedFPS, res.FastFPS, res.SlowFPS)
	}
	if res.FastDelivered != (Dist{Min: 0.9, P10: 0.9, Median: 0.9}) {
		t.Errorf("delivered fraction %+v; want min 0.9 (90 of 100), median 0.9 (nearest rank of two)", res.FastDelivered)
	}
	if res.DeliveredMBps != 24 || res.ServerCPUPerGB != 2 || res.Skipped != 10 {
		t.Errorf("MB/s %v (want 24), CPU per GB %v (want 0.48 s / 0.24 GB = 2), skipped %d", res.DeliveredMBps, res.ServerCPUPerGB, res.Skipped)
	}
	if res.FastAge != (Ages{P50: 2, P99: 4, Max: 4}) || res.SlowAge != (Ages{P50: 500, P99: 700, Max: 700}) {
		t.Errorf("ages fast %+v slow %+v", res.FastAge, res.SlowAge)
	}
}

func TestReaderRecordsOnlyWhileMeasuring(t *testing.T) {
	r := &run{cfg: &Config{}}
	rd := &reader{}
	now := time.Unix(100, 0)
	rd.record(r, 1, now.Add(-5*time.Millisecond).UnixNano(), 1000, now) // warm-up
	r.measuring.Store(true)
	rd.record(r, 2, now.Add(-7*time.Millisecond).UnixNano(), 1000, now)
	rd.record(r, 5, now.Add(-9*time.Millisecond).UnixNano(), 1000, now) // 3 and 4 skipped
	if rd.frames != 2 || rd.bytes != 2000 || rd.skipped != 2 || len(rd.ages) != 2 || rd.ages[0] != 7 || rd.ages[1] != 9 {
		t.Fatalf("reader = frames %d bytes %d skipped %d ages %v", rd.frames, rd.bytes, rd.skipped, rd.ages)
	}
}

func TestProcReadings(t *testing.T) {
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu < 0 {
		t.Fatalf("procCPU = %v, %v", cpu, err)
	}
	rss, err := procRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("procRSS = %d, %v; want at least 1 MiB for a Go test binary", rss, err)
	}
	if _, err := procCPU(1 << 30); err == nil {
		t.Fatal("procCPU of a missing PID succeeded")
	}
}

func TestRawTCPFanout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeRawTCP(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeRawTCP: %v", err)
		}
	}()
	var subs []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{rawSubscriber})
		subs = append(subs, c)
	}
	time.Sleep(100 * time.Millisecond) // let the server register them
	pub, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.Write([]byte{rawPublisher})
	w := protocol.NewWriter(pub)
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 8, Height: 8, Seq: 42, CaptureTime: 7},
		Payload: testutil.FakeJPEG(8, 8, 42, 50002)}
	if err := w.WriteFrame(&f); err != nil {
		t.Fatal(err)
	}
	for i, c := range subs {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := protocol.NewReader(c, protocol.DefaultLimits).ReadFrame()
		if err != nil || got.Seq != 42 || !bytes.Equal(got.Payload, f.Payload) {
			t.Fatalf("subscriber %d: %v, seq %d", i, err, got.Seq)
		}
	}
}

// TestJudge: a run is flagged client-bound when the load generator's CPUs
// are full, when an unpinned machine is full, or when both servers fall
// short of every frame with CPU to spare; a full pinned server is noted,
// not flagged.
func TestJudge(t *testing.T) {
	ok := Result{Target: "hub", FastDelivered: Dist{Min: 1}, ServerCPUsBusy: 0.5, LoadgenCPUsBusy: 0.5}
	base := ok
	base.Target = "raw-tcp"
	for _, c := range []struct {
		name         string
		pinned       string
		hub, base    func(*Result)
		clientBound  bool
		warningsWith string
	}{
		{"healthy", "", nil, nil, false, ""},
		{"load generator full", "server on CPU 0", func(r *Result) { r.LoadgenCPUsBusy = 0.97 }, nil, true, "load generator's CPUs were 97% busy"},
		{"machine full", "", nil, func(r *Result) { r.LoadgenCPUsBusy = 0.95 }, true, "competed"},
		{"both short", "", func(r *Result) { r.FastDelivered.Min = 0.9 }, func(r *Result) { r.FastDelivered.Min = 0.8 }, true, "shared cause is the client"},
		{"hub alone short", "", func(r *Result) { r.FastDelivered.Min = 0.9 }, nil, false, ""},
		{"pinned server full", "server on CPU 0", func(r *Result) { r.ServerCPUsBusy = 0.99 }, nil, false, "found its limit"},
		{"both short, one at its own limit", "server on CPU 0", func(r *Result) { r.FastDelivered.Min = 0.98 },
			func(r *Result) { r.FastDelivered.Min = 0.8; r.ServerCPUsBusy = 0.95 }, false, "found its limit"},
		{"both short, both servers idle", "server on CPU 0", func(r *Result) { r.FastDelivered.Min = 0.98 },
			func(r *Result) { r.FastDelivered.Min = 0.8 }, true, "shared cause is the client"},
	} {
		h, b := ok, base
		if c.hub != nil {
			c.hub(&h)
		}
		if c.base != nil {
			c.base(&b)
		}
		rep := &Report{Subscribers: 10, Seconds: 10, LoadgenCores: 1, Pinned: c.pinned, Hub: h, Baseline: &b}
		rep.judge()
		all := strings.Join(rep.Warnings, "\n")
		if rep.ClientBound != c.clientBound || (c.warningsWith == "") != (len(rep.Warnings) == 0) || !strings.Contains(all, c.warningsWith) {
			t.Errorf("%s: client-bound %v, warnings %q; want %v and a warning with %q", c.name, rep.ClientBound, rep.Warnings, c.clientBound, c.warningsWith)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Mode: "udp"},
		{Subscribers: 5, Slow: 6},
		{Channels: 2, Baseline: true},
		{Mode: "mjpeg", Baseline: true},
		{Hub: "http://127.0.0.1:1"},
		{Hub: "http://127.0.0.1:1", HubPID: 1, Pin: true},
		{Duration: time.Millisecond},
		{Stalled: -1},
	} {
		if err := c.fill(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

// framehubBinary builds the static binary the benchmark starts as a child.
func framehubBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "framehub")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/framehub")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestTinyScenario runs the tool end to end on a small load: a child hub
// and a child raw-TCP baseline, fast, slow, stalled, idle and churning
// subscribers. It checks that every figure is there and plausible, not how
// fast anything is.
func TestTinyScenario(t *testing.T) {
	bin := framehubBinary(t)
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		HubCommand: []string{bin, "--log-format", "json", "hub", "--listen", "127.0.0.1:0"}, HubReady: "hub listening",
		BaselineCommand: []string{bin, "--log-format", "json", "bench-rawtcp", "--listen", "127.0.0.1:0"}, BaselineReady: "rawtcp listening",
		Subscribers: 4, Slow: 1, SlowFPS: 5, Stalled: 2, Idle: 20, Churn: 5,
		Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, Width: 320, Height: 240, FPS: 20,
		Baseline: true, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, b := rep.Hub, rep.Baseline
	if b == nil {
		t.Fatal("no baseline result")
	}
	// (CPU times come in 10 ms ticks: a light run may read 0.)
	for _, r := range []Result{h, *b} {
		if r.PublishedFPS < 10 || r.FastFPS.Median < 10 || r.FastDelivered.Min <= 0.5 || r.DeliveredMBps <= 0 ||
			r.FastAge.P50 <= 0 || r.SlowFPS.Median <= 0 || r.SlowFPS.Median > 6 || r.ServerCPU < 0 || r.ServerRSSMB <= 0 ||
			r.ServerAnonMB <= 0 || r.ServerAnonMB > r.ServerRSSMB || r.ConnectS < 0 || r.ConnectS > 10 ||
			r.ServerCPUsBusy <= 0 || r.ServerCPUsBusy > 1 || r.LoadgenCPUsBusy <= 0 || r.LoadgenCPUsBusy > 1 {
			t.Errorf("%s: implausible figures %+v", r.Target, r)
		}
	}
	if h.Goroutines == 0 || h.HeapMB <= 0 || h.Churn == nil || h.Churn.Started < 3 || h.IdleKBPerSub == 0 {
		t.Errorf("hub extras: goroutines %d heap %v churn %+v idle %v", h.Goroutines, h.HeapMB, h.Churn, h.IdleKBPerSub)
	}
	if _, ok := rep.Ratios["server_cpu_per_gb"]; !ok {
		t.Errorf("ratios %v lack server_cpu_per_gb", rep.Ratios)
	}
	if !strings.Contains(progress.String(), "bench hub:") || !strings.Contains(progress.String(), "bench raw-tcp:") {
		t.Errorf("no progress lines: %q", progress.String())
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), "server CPU s per GB") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}

// TestClusterScenario runs the cross-hub benchmark on two child hubs and
// a NATS server embedded in the test process: every figure is there and
// each interested hub gets about one copy of each frame.
func TestClusterScenario(t *testing.T) {
	bin := framehubBinary(t)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, HTTPHost: "127.0.0.1", HTTPPort: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	var progress bytes.Buffer
	rep, err := RunCluster(context.Background(), ClusterConfig{
		Hubs: 2, Subscribers: 2, HubBinary: bin, NATS: ns.ClientURL(), NATSMonitor: "http://" + ns.MonitorAddr().String(),
		Duration: 2 * time.Second, Warmup: 300 * time.Millisecond, Width: 320, Height: 240, FPS: 20, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.PerHub) != 2 || rep.Published < 20 {
		t.Fatalf("report %+v", rep)
	}
	local, remote := rep.PerHub[0], rep.PerHub[1]
	if local.FPSMedian < 10 || remote.FPSMedian < 10 || remote.Age.P50 <= 0 || local.CPU < 0 || remote.CPUPerGB < 0 { // CPU comes in 10 ms ticks: a light run may read 0
		t.Errorf("implausible figures: local %+v remote %+v", local, remote)
	}
	if remote.BusCopiesIn < 0.9 || remote.BusCopiesIn > 1.2 || local.BusCopiesOut < 0.9 || local.BusCopiesOut > 1.2 || local.BusCopiesIn > 0.1 {
		t.Errorf("bus copies: remote in %v, local out %v, local in %v; want about 1, 1, 0", remote.BusCopiesIn, local.BusCopiesOut, local.BusCopiesIn)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), "bus copies in per frame") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
	if !strings.Contains(progress.String(), "bench cluster:") {
		t.Errorf("no progress lines: %q", progress.String())
	}
	if err := (&ClusterConfig{Hubs: 3}).fill(); err == nil || !strings.Contains(err.Error(), "--nats-server") {
		t.Errorf("a cluster config without NATS: %v", err)
	}
}
