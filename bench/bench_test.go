package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/natstest"
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

// TestRawTCPFanout: each baseline sends every subscriber the frame a
// publisher sent, framed as a WebSocket binary message.
func TestRawTCPFanout(t *testing.T) {
	for _, cfg := range []RawConfig{{}, {Sendfile: true}} {
		if cfg.Sendfile && !rawSendfileSupported {
			continue
		}
		addr := serveRaw(t, cfg)
		var subs []*wsLean
		for range 3 {
			s, err := dialRawLean(addr, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.c.Close() })
			subs = append(subs, s)
		}
		pub := dialRawPublisher(t, addr)
		f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 8, Height: 8, Seq: 42, CaptureTime: 7},
			Payload: testutil.FakeJPEG(8, 8, 42, 50002)}
		msg := protocol.AppendFrame(nil, &f)
		// Until every subscriber is registered, a frame may miss some:
		// publish until each has one.
		for i, s := range subs {
			s.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make(chan error, 1)
			var seq uint64
			var size int
			go func() {
				var err error
				seq, _, size, err = s.next()
				got <- err
			}()
			for done := false; !done; {
				if _, err := pub.Write(msg); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-got:
					if err != nil || seq != 42 || size != len(msg) {
						t.Fatalf("sendfile %v, subscriber %d: %v, seq %d, %d bytes; want seq 42, %d bytes", cfg.Sendfile, i, err, seq, size, len(msg))
					}
					done = true
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
	}
}

// TestRawTCPCredit: a baseline's credit subscriber with window 1 gets one
// frame, then nothing until it acks, then the newest frame.
func TestRawTCPCredit(t *testing.T) {
	for _, cfg := range []RawConfig{{}, {Sendfile: true}} {
		if cfg.Sendfile && !rawSendfileSupported {
			continue
		}
		addr := serveRaw(t, cfg)
		s, err := dialRawLean(addr, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.c.Close() })
		pub := dialRawPublisher(t, addr)
		frame := func(seq uint64) []byte {
			f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 8, Height: 8, Seq: seq},
				Payload: testutil.FakeJPEG(8, 8, seq, 1000)}
			return protocol.AppendFrame(nil, &f)
		}
		// Publish 1, 2, … until the subscriber has one frame.
		got := make(chan uint64, 10)
		go func() {
			for {
				seq, _, _, err := s.next()
				if err != nil {
					close(got)
					return
				}
				got <- seq
			}
		}()
		var first uint64
		for seq := uint64(1); first == 0; seq++ {
			if seq > 200 {
				t.Fatal("no frame in 200 tries")
			}
			pub.Write(frame(seq))
			select {
			case first = <-got:
			case <-time.After(20 * time.Millisecond):
			}
		}
		pub.Write(frame(1000))
		pub.Write(frame(1001))
		select {
		case seq := <-got:
			t.Fatalf("sendfile %v: frame %d arrived without credit", cfg.Sendfile, seq)
		case <-time.After(200 * time.Millisecond):
		}
		if err := s.ack(first); err != nil {
			t.Fatal(err)
		}
		select {
		case seq := <-got:
			if seq != 1001 {
				t.Errorf("sendfile %v: after the ack came frame %d; want the newest, 1001", cfg.Sendfile, seq)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("sendfile %v: no frame after the ack", cfg.Sendfile)
		}
		if v, ok := parseAck([]byte(`{"op":"ack","seq":18446744073709551615}`)); !ok || v != 1<<64-1 {
			t.Errorf("parseAck of the largest seq = %d, %v", v, ok)
		}
	}
}

// serveRaw runs a raw-TCP baseline until the test ends.
func serveRaw(t *testing.T, cfg RawConfig) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeRawTCP(ctx, ln, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeRawTCP: %v", err)
		}
	})
	return ln.Addr().String()
}

func dialRawPublisher(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte{rawPublisher}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBaselinesSendTheHubsBytes: after the handshake, a subscriber reads
// exactly the same bytes from the hub (by write and by sendfile) and from
// both baselines, so the one client the benchmark uses does the same work
// for all of them and neither side can win on its client.
func TestBaselinesSendTheHubsBytes(t *testing.T) {
	h := hubtest.Start(t, hub.Config{})
	msg := hubtest.Frame(5, 64, 48, 70000, []byte(`{"k":1}`))
	read := func(s *wsLean, n int) []byte {
		t.Helper()
		s.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, n)
		if _, err := io.ReadFull(s.br, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	wireLen := 4 + len(msg) // 70 KB: a 4-byte WebSocket header
	var want []byte
	check := func(name string, got []byte) {
		t.Helper()
		if want == nil {
			want = got
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s sent %x…; want %x…", name, got[:16], want[:16])
		}
	}
	// The hub, with one subscriber (write) and then with two (sendfile,
	// from the second frame on: a frame's fan-out is fixed when it is published).
	for _, n := range []int{1, 2} {
		var subs []*wsLean
		for range n {
			s, err := dialWSLean(h.Addr, protocol.PathSubscribe+fmt.Sprintf("same%d", n))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.c.Close() })
			subs = append(subs, s)
		}
		hubtest.WaitSubscribers(t, h.Addr, n+(n-1), 5*time.Second)
		u, _ := protocol.ChannelURL(h.Addr, protocol.PathPublish, fmt.Sprintf("same%d", n))
		pc, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		if err := pc.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		for i, s := range subs {
			check(fmt.Sprintf("the hub to subscriber %d of %d", i+1, n), read(s, wireLen))
		}
	}
	for _, cfg := range []RawConfig{{}, {Sendfile: true}} {
		if cfg.Sendfile && !rawSendfileSupported {
			continue
		}
		addr := serveRaw(t, cfg)
		s, err := dialRawLean(addr, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.c.Close() })
		pub := dialRawPublisher(t, addr)
		// No wait for the subscriber to register: a frame that comes first
		// is sent to it anyway, as the newest.
		if _, err := pub.Write(msg); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("the baseline (sendfile %v)", cfg.Sendfile), read(s, wireLen))
	}
	if runtime.GOOS == "linux" && h.Stats().ZeroCopyFrames == 0 {
		t.Error("the hub sent nothing by sendfile: the comparison did not cover its zero-copy path")
	}
}

// TestJudge: a run is flagged client-bound when the load generator's CPUs
// are full, when an unpinned machine is full, or when every server falls
// short of every frame with CPU to spare; a full pinned server is noted,
// not flagged.
func TestJudge(t *testing.T) {
	ok := Result{Target: "hub", FastDelivered: Dist{Min: 1}, ServerCPUsBusy: 0.5, LoadgenCPUsBusy: 0.5}
	base := ok
	base.Target = "write"
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
		rep := &Report{Subscribers: 10, Seconds: 10, LoadgenCores: 1, Pinned: c.pinned}
		run := RunReport{Results: map[string]*Result{"hub": &h, "write": &b}}
		run.judge(rep, []target{targetHub, targetWrite})
		all := strings.Join(run.Warnings, "\n")
		if run.ClientBound != c.clientBound || (c.warningsWith == "") != (len(run.Warnings) == 0) || !strings.Contains(all, c.warningsWith) {
			t.Errorf("%s: client-bound %v, warnings %q; want %v and a warning with %q", c.name, run.ClientBound, run.Warnings, c.clientBound, c.warningsWith)
		}
	}
}

// TestRunOrder: over as many runs as there are targets, each target runs
// once in each position.
func TestRunOrder(t *testing.T) {
	targets := []target{targetHub, targetWrite, targetSendfile}
	for pos := range targets {
		seen := map[target]bool{}
		for i := range targets {
			seen[runOrder(targets, i)[pos]] = true
		}
		if len(seen) != len(targets) {
			t.Errorf("position %d holds only %v over %d runs", pos, seen, len(targets))
		}
	}
	if got := runOrder(targets, 4); got[0] != targetWrite {
		t.Errorf("run 5 starts with %v; want write", got[0])
	}
}

// TestReportSummary: medians and ranges of every figure, and of the
// ratios taken within each run, not ratios of the medians.
func TestReportSummary(t *testing.T) {
	rep := &Report{Targets: []string{"hub", "write"}}
	for i, c := range []struct{ hub, write float64 }{{0.3, 0.4}, {0.2, 0.4}, {0.5, 0.5}} {
		h := &Result{Target: "hub", ServerCPUPerGB: c.hub, Skipped: uint64(i), FastAge: Ages{P99: float64(10 * (i + 1))}}
		if i < 2 {
			h.Churn = &Churn{Started: 10}
		}
		w := &Result{Target: "write", ServerCPUPerGB: c.write}
		rep.Runs = append(rep.Runs, RunReport{Results: map[string]*Result{"hub": h, "write": w},
			Ratios: map[string]map[string]float64{"hub/write": ratios(h, w)}, ClientBound: i == 0, Warnings: []string{"same"}})
	}
	rep.summarise()
	med, lo, hi := rep.Median["hub"], rep.Min["hub"], rep.Max["hub"]
	if med.ServerCPUPerGB != 0.3 || lo.ServerCPUPerGB != 0.2 || hi.ServerCPUPerGB != 0.5 || med.Skipped != 1 || med.FastAge.P99 != 20 || med.Target != "hub" {
		t.Errorf("hub median %+v, min %+v, max %+v", med, lo, hi)
	}
	if med.Churn != nil {
		t.Errorf("churn %+v combined though one run lacks it", med.Churn)
	}
	// Per-run ratios 0.75, 0.5, 1: median 0.75 (the ratio of the medians would be 0.3/0.4 too, so check the range).
	if r := rep.Ratios["hub/write"]["server_cpu_per_gb"]; r != (Spread{Median: 0.75, Min: 0.5, Max: 1}) {
		t.Errorf("ratio spread %+v; want 0.75 [0.5-1]", r)
	}
	if rep.ClientBoundRuns != 1 || rep.ClientBound || len(rep.Warnings) != 1 {
		t.Errorf("client-bound runs %d, verdict %v, warnings %q; want 1, false (1 of 3), one warning", rep.ClientBoundRuns, rep.ClientBound, rep.Warnings)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 1..4 = %v; want 2.5", m)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Mode: "udp"},
		{Subscribers: 5, Slow: 6},
		{Channels: 2, Baseline: true},
		{Mode: "mjpeg", Baseline: true},
		{CompareDefault: true},
		{Runs: -1},
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
func framehubBinary(t *testing.T) string { return testutil.Framehub(t, false) }

// TestTinyScenario runs the tool end to end on a small load: a child hub
// and a child raw-TCP baseline, fast, slow, stalled, idle and churning
// subscribers. It checks that every figure is there and plausible, not how
// fast anything is.
func TestTinyScenario(t *testing.T) {
	bin := framehubBinary(t)
	var progress bytes.Buffer
	raw := func(send string) []string {
		return []string{bin, "--log-format", "json", "bench-rawtcp", "--listen", "127.0.0.1:0", "--send", send}
	}
	rep, err := Run(context.Background(), Config{
		HubCommand: []string{bin, "--log-format", "json", "hub", "--listen", "127.0.0.1:0"}, HubReady: "hub listening",
		WriteBaselineCommand: raw("write"), SendfileBaselineCommand: raw("sendfile"), BaselineReady: "rawtcp listening",
		Subscribers: 4, Slow: 1, SlowFPS: 5, Stalled: 2, Idle: 20, Churn: 5, Credit: 1, CompareDefault: true,
		Duration: time.Second, Warmup: 500 * time.Millisecond, Width: 320, Height: 240, FPS: 20,
		Baseline: true, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Targets, []string{"hub", "write", "sendfile", "hub-default", "sendfile-default"}) || len(rep.Runs) != 1 {
		t.Fatalf("targets %v, %d runs", rep.Targets, len(rep.Runs))
	}
	// (CPU times come in 10 ms ticks: a light run may read 0.)
	for _, name := range rep.Targets {
		r := rep.Median[name]
		if r.Target != name || r.PublishedFPS < 10 || r.FastFPS.Median < 10 || r.FastDelivered.Min <= 0.5 || r.DeliveredMBps <= 0 ||
			r.FastAge.P50 <= 0 || r.SlowFPS.Median <= 0 || r.SlowFPS.Median > 6 || r.ServerCPU < 0 || r.ServerRSSMB <= 0 ||
			r.ServerAnonMB <= 0 || r.ServerAnonMB > r.ServerRSSMB || r.ConnectS < 0 || r.ConnectS > 10 ||
			r.ServerCPUsBusy <= 0 || r.ServerCPUsBusy > 1 || r.LoadgenCPUsBusy <= 0 || r.LoadgenCPUsBusy > 1 {
			t.Errorf("%s: implausible figures %+v", name, r)
		}
	}
	h := rep.Median["hub"]
	if h.Goroutines == 0 || h.HeapMB <= 0 || h.Churn == nil || h.Churn.Started < 3 || h.IdleKBPerSub == 0 {
		t.Errorf("hub extras: goroutines %d heap %v churn %+v idle %v", h.Goroutines, h.HeapMB, h.Churn, h.IdleKBPerSub)
	}
	for _, pair := range [][2]string{{"hub", "write"}, {"hub", "sendfile"}, {"hub", "hub-default"}, {"hub", "sendfile-default"}, {"sendfile", "sendfile-default"}} {
		// CPU comes in 10 ms ticks, so a light server may show none: then
		// no CPU ratio can be taken.
		r := rep.Ratios[pair[0]+"/"+pair[1]]
		_, cpu := r["server_cpu_per_gb"]
		if _, rss := r["server_rss"]; !rss || cpu != (rep.Median[pair[0]].ServerCPUPerGB > 0 && rep.Median[pair[1]].ServerCPUPerGB > 0) {
			t.Errorf("ratios %s: %v", pair, r)
		}
	}
	// The baselines honoured credit: their slow readers read no faster
	// than they ask.
	if s := rep.Median["sendfile"].SlowFPS.Median; s > 6 {
		t.Errorf("the sendfile baseline's slow reader got %v fps; want at most its 5", s)
	}
	for _, want := range []string{"bench hub:", "bench write:", "bench sendfile:", "bench hub-default:", "bench sendfile-default:"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("no %q progress lines: %q", want, progress.String())
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), "server CPU s per GB") || !strings.Contains(table.String(), "sendfile ÷ sendfile-default") {
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
	ns := natstest.Start(t, natstest.Options{Monitor: true})
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
