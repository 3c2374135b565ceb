// Command soak runs framehub as an unattended site would, for a given
// number of minutes, with faults injected, and fails on what would hurt
// after weeks: a leak, a crash, a stale frame, a full disk.
//
//	go run ./tools/soak --minutes 30 --out /tmp/soak
//	scripts/soak.sh --minutes 2     (the same; CI runs it for 2 minutes)
//
// It builds framehub (with and without OpenCV) and nats-server, then
// starts two hubs joined by the NATS server; eight publishers: two RTSP
// test cameras (internal/testcam, GStreamer's RTSP server), one read by
// the static build through ffmpeg and one by the OpenCV build, which drop
// every few minutes (stopped, or paused: silent); an ffmpeg upload over
// HTTP and one piped into framehub publish; a Python publisher (Debian's
// /usr/bin/python3 and clients/python); an on-demand test pattern; an
// MJPEG-URL relay from one hub to the other; a test pattern; a processing
// worker (framehub process, motion); a recorder with retention
// (--segment, --max-size); and subscribers, some staying, some churning
// (connecting for a few seconds, to a random channel of a random hub).
// Mid-run it kills (SIGKILL) and restarts a hub, then the NATS server.
//
// Every few seconds it samples each process's RSS, CPU, open files and
// (hubs, from /metrics) goroutines into OUT/samples.csv, and ends with
// OUT/report.md. It exits 1 on a leak (growth after the warm-up beyond
// the stated bounds, see check.go), open files or goroutines not back
// after a fault, a crash (a process that exits on its own), a frame older
// than the newest a subscriber already had after a reconnect, or the
// recording directory over --max-size by more than one segment.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"framehub/internal/procstat"
	"framehub/internal/testcam"
	"framehub/protocol"
	"framehub/subscriber"
)

func main() {
	minutes := flag.Float64("minutes", 2, "how long to run")
	out := flag.String("out", "", "directory for report.md, samples.csv and every process's log (default: a new one under $TMPDIR)")
	flag.Parse()
	if *minutes < 1 {
		fmt.Fprintln(os.Stderr, "soak: --minutes must be 1 or more (the faults need room)")
		os.Exit(2)
	}
	if *out == "" {
		d, err := os.MkdirTemp("", "framehub-soak-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(2)
		}
		*out = d
	}
	s := newSoak(time.Duration(*minutes*float64(time.Minute)), *out)
	// Ctrl-C or a CI timeout's SIGTERM ends the run early: everything is
	// stopped and the report covers what ran.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed, err := s.run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if failed {
		fmt.Fprintf(os.Stderr, "soak: FAILED; report and logs in %s\n", *out)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "soak: passed; report and logs in %s\n", *out)
}

// Settings of a run, from its length.
type plan struct {
	dur        time.Duration
	warmup     float64 // seconds before the leak checks start (and each restarted process's own)
	every      time.Duration
	dropEvery  float64 // seconds between camera drops
	hubKill    float64 // when hub-a is killed, seconds in
	natsKill   float64
	settle     float64 // seconds after a fault before its recovery is judged
	window     float64 // seconds of samples compared before and after a fault
	segment    string
	maxSize    int64
	churners   int
	sourceWait float64 // a camera loss not shown by then is not shown
}

func newPlan(d time.Duration) plan {
	T := d.Seconds()
	p := plan{dur: d, warmup: min(max(0.1*T, 30), 180), every: 2 * time.Second, dropEvery: max(15, T/10),
		hubKill: 0.4 * T, natsKill: 0.65 * T, settle: 20, window: 10, segment: "10s", maxSize: 4 << 20, churners: 6, sourceWait: 15}
	if T > 300 {
		p.every, p.window = 5*time.Second, 30
	} else {
		// Short runs record less: a smaller directory, so that retention
		// deletes within the run.
		p.segment, p.maxSize = "5s", 1<<20
	}
	return p
}

type soak struct {
	plan
	dir, logDir, binDir, recDir string
	cgoBin, staticBin, natsBin  string
	start                       time.Time
	ports                       map[string]int

	procs  []*proc
	byName map[string]*proc
	cams   map[string]*testcam.Camera
	camHub map[string]string // the hub each camera's publisher publishes to

	ended       atomic.Bool
	hubAKilled  atomic.Int64 // Unix ns of the last kill of hub-a
	fresh       *freshness
	timecodes   map[string]*atomic.Int64 // the newest camera time (Unix ms) a watcher decoded, by camera
	churnFrames atomic.Uint64
	churnConns  atomic.Uint64

	mu        sync.Mutex
	failures  []string
	samples   []sample
	faults    []fault
	timeline  []string
	drops     []dropResult
	recording dirWatch           // the recorder's directory
	cpuPrev   map[int][2]float64 // pid: CPU seconds, at (s)
	loadAt    [2]string
}

func newSoak(d time.Duration, dir string) *soak {
	p := newPlan(d)
	return &soak{plan: p, dir: dir, logDir: filepath.Join(dir, "logs"), binDir: filepath.Join(dir, "bin"), recDir: filepath.Join(dir, "recordings"),
		ports: map[string]int{}, byName: map[string]*proc{}, cams: map[string]*testcam.Camera{}, camHub: map[string]string{},
		fresh: newFreshness(), timecodes: map[string]*atomic.Int64{}, cpuPrev: map[int][2]float64{},
		recording: dirWatch{Max: p.maxSize}}
}

func (s *soak) elapsed() float64 { return time.Since(s.start).Seconds() }
func (s *soak) ending() bool     { return s.ended.Load() }

func (s *soak) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "soak:", msg)
	s.mu.Lock()
	s.failures = append(s.failures, msg)
	s.mu.Unlock()
}

func (s *soak) note(format string, args ...any) {
	msg := fmt.Sprintf("%6.1fs  ", s.elapsed()) + fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "soak:", msg)
	s.mu.Lock()
	s.timeline = append(s.timeline, msg)
	s.mu.Unlock()
}

// run sets everything up, runs the plan, tears down and reports. err is a
// soak that could not run; failed, one that ran and found a problem.
func (s *soak) run(parent context.Context) (failed bool, err error) {
	for _, d := range []string{s.logDir, s.binDir, s.recDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return false, err
		}
	}
	if err := s.prerequisites(); err != nil {
		return false, err
	}
	if err := s.build(); err != nil {
		return false, err
	}
	for _, name := range []string{"nats", "hub-a", "hub-b", "metrics-a", "metrics-b"} {
		if s.ports[name], err = freePort(); err != nil {
			return false, err
		}
	}
	s.loadAt[0] = loadavg()
	s.start = time.Now()
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	defer s.teardown()
	if err := s.startAll(ctx); err != nil {
		return false, err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.sampleLoop(ctx) }()
	go func() { defer wg.Done(); s.dirLoop(ctx) }()
	s.subscribers(ctx, &wg)
	s.schedule(ctx)
	if parent.Err() != nil {
		s.fail("interrupted at %.0f s of %.0f", s.elapsed(), s.dur.Seconds())
	}
	s.note("the run ends")
	s.ended.Store(true)
	cancel()
	wg.Wait()
	s.teardown()
	s.loadAt[1] = loadavg()
	os.RemoveAll(s.binDir) // a few hundred MB; the report and the logs stay
	return s.report()
}

// prerequisites says what is missing to run the soak here.
func (s *soak) prerequisites() error {
	if err := testcam.Available(); err != nil {
		return fmt.Errorf("test camera: %w (scripts/setup.sh installs it)", err)
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return fmt.Errorf("ffmpeg is not on PATH (scripts/setup.sh installs it)")
	}
	if out, err := exec.Command(testcam.Python, "-c", "import cv2, numpy, websockets").CombinedOutput(); err != nil {
		return fmt.Errorf("%s cannot run the Python client (python3-opencv, python3-numpy, python3-websockets): %v %s", testcam.Python, err, out)
	}
	return nil
}

// build builds framehub with and without OpenCV, and nats-server, into
// the run's bin directory.
func (s *soak) build() error {
	s.cgoBin, s.staticBin, s.natsBin = filepath.Join(s.binDir, "framehub"), filepath.Join(s.binDir, "framehub-static"), filepath.Join(s.binDir, "nats-server")
	for _, b := range []struct{ out, pkg, cgo string }{
		{s.cgoBin, "framehub/cmd/framehub", "1"},
		{s.staticBin, "framehub/cmd/framehub", "0"},
		{s.natsBin, "github.com/nats-io/nats-server/v2", "0"},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *soak) addr(name string) string { return "127.0.0.1:" + strconv.Itoa(s.ports[name]) }

// add registers a process and starts it.
func (s *soak) add(p *proc) error {
	p.s = s
	s.procs = append(s.procs, p)
	s.byName[p.name] = p
	return p.start()
}

// pythonPublisher is the Python publisher: a drawn picture ten times a
// second, through clients/python's Publisher, which reconnects by itself.
const pythonPublisher = `
import sys, time
import numpy as np, cv2, framehub
hub, channel = sys.argv[1:3]
img = np.zeros((240, 320, 3), np.uint8)
n = 0
try:
    with framehub.Publisher(hub, channel) as pub:
        while True:
            img[:] = (n * 7 % 255, 90, 160)
            cv2.putText(img, str(n), (20, 140), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
            pub.send(img)
            n += 1
            time.sleep(0.1)
except KeyboardInterrupt:
    pass
`

// startAll starts the NATS server, the hubs, the cameras, the publishers,
// the worker and the recorder, each waited for.
func (s *soak) startAll(ctx context.Context) error {
	hubURL := func(name string) string { return "http://" + s.addr(name) }
	if err := s.add(&proc{name: "nats", bin: s.natsBin, args: []string{"-a", "127.0.0.1", "-p", strconv.Itoa(s.ports["nats"])}}); err != nil {
		return err
	}
	if err := waitTCP(s.addr("nats"), 20*time.Second); err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	for _, h := range []string{"a", "b"} {
		if err := s.add(&proc{name: "hub-" + h, bin: s.staticBin, args: []string{"hub", "--listen", s.addr("hub-" + h),
			"--metrics-listen", s.addr("metrics-" + h), "--nats", "nats://" + s.addr("nats"), "--nats-hub-name", "hub-" + h}}); err != nil {
			return err
		}
	}
	for _, h := range []string{"hub-a", "hub-b"} {
		if err := waitHTTP(hubURL(h)+"/api/stats", 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w", h, err)
		}
	}
	for _, c := range []string{"cam1", "cam2"} {
		cam, err := testcam.Start(testcam.Options{Size: "320x180", FPS: 10, Timecode: true})
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		s.cams[c] = cam
		s.timecodes[c] = &atomic.Int64{}
	}
	s.camHub["cam1"], s.camHub["cam2"] = "hub-a", "hub-b"
	publish := func(hub, channel string, args ...string) []string {
		return append([]string{"publish", "--hub", hubURL(hub), "--channel", channel, "--quiet"}, args...)
	}
	upload := "http://" + s.addr("hub-a") + "/channels/up1/stream.mjpeg"
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	lavfi := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-c:v", "mjpeg", "-q:v", "6"}
	clients, _ := filepath.Abs("clients/python")
	for _, p := range []*proc{
		// The static build reads cam1 through ffmpeg; the OpenCV build
		// reads cam2 through OpenCV's FFmpeg backend.
		// Both log at debug level: each reopen's time and every line
		// FFmpeg wrote, so that a slow return says where its time went.
		{name: "pub-cam1", bin: s.staticBin, args: append([]string{"--log-level", "debug"}, publish("hub-a", "cam1", "--source", s.cams["cam1"].URL())...)},
		{name: "pub-cam2", bin: s.cgoBin, args: append([]string{"--log-level", "debug"}, publish("hub-b", "cam2", "--source", s.cams["cam2"].URL(), "--decoder", "opencv")...)},
		// An HTTP upload ends with its hub; it is started again, as a
		// service manager would.
		{name: "upload-up1", bin: "ffmpeg", args: append(lavfi, "-f", "mpjpeg", upload), restart: true, expected: func() bool {
			return time.Since(time.Unix(0, s.hubAKilled.Load())) < 30*time.Second
		}},
		{name: "ffmpeg-up2", bin: "ffmpeg", args: append(lavfi, "-f", "mjpeg", "pipe:1"), stdout: pw},
		{name: "pub-up2", bin: s.staticBin, args: publish("hub-b", "up2", "--source", "-"), stdin: pr},
		{name: "pub-python", bin: testcam.Python, args: []string{"-c", pythonPublisher, hubURL("hub-a"), "py"}, env: []string{"PYTHONPATH=" + clients}},
		{name: "pub-ondemand", bin: s.cgoBin, args: publish("hub-b", "od", "--source", "test:320x240", "--fps", "10", "--on-demand")},
		{name: "pub-pattern", bin: s.cgoBin, args: publish("hub-a", "pat", "--source", "test:320x240", "--fps", "10")},
	} {
		if err := s.add(p); err != nil {
			return err
		}
	}
	// The relay opens its URL at start: it needs up1 there.
	if err := s.waitChannel(ctx, "hub-a", "up1", 30*time.Second); err != nil {
		return err
	}
	if err := s.add(&proc{name: "pub-relay", bin: s.staticBin, args: publish("hub-b", "relay", "--source", upload)}); err != nil {
		return err
	}
	if err := s.add(&proc{name: "worker", bin: s.cgoBin, args: []string{"process", "--hub", hubURL("hub-b"), "--in", "pat", "--out", "pat-motion", "--step", "motion", "--quiet"}}); err != nil {
		return err
	}
	if err := s.add(&proc{name: "recorder", bin: s.staticBin, args: []string{"record", "--hub", hubURL("hub-a"), "--channel", "cam1",
		"--out", filepath.Join(s.recDir, "cam1.mkv"), "--segment", s.segment, "--max-size", strconv.FormatInt(s.maxSize, 10) + "B"}}); err != nil {
		return err
	}
	for _, ch := range []string{"cam1", "cam2", "up2", "py", "pat", "relay", "pat-motion"} {
		hub := "hub-b"
		if ch == "cam1" || ch == "py" || ch == "pat" {
			hub = "hub-a"
		}
		if err := s.waitChannel(ctx, hub, ch, 60*time.Second); err != nil {
			return err
		}
	}
	s.note("all %d processes up", len(s.procs)+len(s.cams))
	return nil
}

func waitTCP(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitHTTP(url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// channels returns a hub's channel listing (nil if it does not answer).
func (s *soak) channels(hub string) []protocol.ChannelInfo {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + s.addr(hub) + "/api/channels")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var list []protocol.ChannelInfo
	if json.NewDecoder(resp.Body).Decode(&list) != nil {
		return nil
	}
	return list
}

func (s *soak) channel(hub, name string) (protocol.ChannelInfo, bool) {
	for _, in := range s.channels(hub) {
		if in.Name == name {
			return in, true
		}
	}
	return protocol.ChannelInfo{}, false
}

// waitChannel waits until a hub lists a channel as live with frames.
func (s *soak) waitChannel(ctx context.Context, hub, name string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for ctx.Err() == nil {
		if in, ok := s.channel(hub, name); ok && in.Live && in.Frames > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never listed channel %s live within %v (see %s)", hub, name, d, s.logDir)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return ctx.Err()
}

// subscribers starts the staying subscribers (one per channel on hub-b,
// and each camera's on its own hub, which decodes the camera's time) and
// the churning ones.
func (s *soak) subscribers(ctx context.Context, wg *sync.WaitGroup) {
	all := []string{"cam1", "cam2", "up1", "up2", "py", "od", "pat", "relay", "pat-motion"}
	run := func(ctx context.Context, hub, channel string, fn func(*subscriber.Frame)) {
		c, err := subscriber.New(subscriber.Config{Hub: s.addr(hub), Channel: channel, ConnectTimeout: -1})
		if err != nil {
			s.fail("subscriber %s/%s: %v", hub, channel, err)
			return
		}
		_ = c.Run(ctx, func(f *subscriber.Frame) error { fn(f); return nil })
	}
	for _, ch := range all {
		if ch == "od" {
			continue // watched by churners only: it turns on and off
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx, "hub-b", ch, func(f *subscriber.Frame) { s.fresh.saw("stay hub-b/"+ch, f.CaptureTime) })
		}()
	}
	for cam, hub := range s.camHub {
		newest := s.timecodes[cam]
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx, hub, cam, func(f *subscriber.Frame) {
				s.fresh.saw("camera "+hub+"/"+cam, f.CaptureTime)
				if img, err := jpeg.Decode(bytes.NewReader(f.Payload)); err == nil {
					if at, ok := testcam.Timecode(img); ok && at.UnixMilli() > newest.Load() {
						newest.Store(at.UnixMilli())
					}
				}
			})
		}()
	}
	for i := range s.churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for ctx.Err() == nil {
				hub := []string{"hub-a", "hub-b"}[r.IntN(2)]
				ch := all[r.IntN(len(all))]
				slow := i%3 == 0 // a viewer that takes 200 ms per frame: it skips, nobody waits
				cctx, cancel := context.WithTimeout(ctx, time.Duration(2000+r.IntN(6000))*time.Millisecond)
				s.churnConns.Add(1)
				run(cctx, hub, ch, func(f *subscriber.Frame) {
					s.churnFrames.Add(1)
					s.fresh.saw(fmt.Sprintf("churner %d %s/%s", i, hub, ch), f.CaptureTime)
					if slow {
						time.Sleep(200 * time.Millisecond)
					}
				})
				cancel()
				if ctx.Err() == nil {
					time.Sleep(time.Duration(r.IntN(1000)) * time.Millisecond)
				}
			}
		}()
	}
}

// schedule runs the plan: camera drops every dropEvery seconds, except
// near the hub and NATS kills, which come at their times.
func (s *soak) schedule(ctx context.Context) {
	T := s.dur.Seconds()
	type step struct {
		at float64
		do func()
	}
	var steps []step
	steps = append(steps, step{s.hubKill, func() { s.killAndRestart("hub-a", func() { s.hubAKilled.Store(time.Now().UnixNano()) }) }})
	steps = append(steps, step{s.natsKill, func() { s.killAndRestart("nats", nil) }})
	n := 0
	for at := s.warmup; at <= T-15; at += s.dropEvery {
		near := false
		for _, f := range []float64{s.hubKill, s.natsKill} {
			if at > f-5 && at < f+s.settle {
				near = true // its measures would be the fault's
			}
		}
		if near {
			continue
		}
		// cam1 stopped, cam2 paused, cam1 paused, cam2 stopped, …
		cam := []string{"cam1", "cam2"}[n%2]
		pause := n%4 == 1 || n%4 == 2
		n++
		steps = append(steps, step{at, func() { s.dropCamera(ctx, cam, pause) }})
	}
	// In time order.
	for i := range steps {
		for j := i + 1; j < len(steps); j++ {
			if steps[j].at < steps[i].at {
				steps[i], steps[j] = steps[j], steps[i]
			}
		}
	}
	for _, st := range steps {
		if !sleepUntil(ctx, s.start.Add(time.Duration(st.at*float64(time.Second)))) {
			return
		}
		st.do()
	}
	sleepUntil(ctx, s.start.Add(s.dur))
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// killAndRestart kills a process with SIGKILL, as a crash or the OOM
// killer would, and starts it again 2 s later on the same port.
func (s *soak) killAndRestart(name string, killed func()) {
	p := s.byName[name]
	s.note("fault: %s killed (SIGKILL)", name)
	s.mu.Lock()
	s.faults = append(s.faults, fault{Name: name + " killed", At: s.elapsed()})
	s.mu.Unlock()
	if killed != nil {
		killed()
	}
	p.kill(syscall.SIGKILL)
	time.Sleep(2 * time.Second)
	if err := p.start(); err != nil {
		s.fail("%s: restart: %v", name, err)
		return
	}
	s.note("%s started again", name)
}

// dropResult is one camera drop: how long the hub took to show it, and
// how long after the camera came back a frame it made then reached a
// subscriber.
type dropResult struct {
	Camera, How string
	At          float64
	Shown       float64 // seconds; -1: never
	Back        float64 // seconds; -1: never
	CameraStart float64 // seconds the stopped camera took to answer again
	ShownAs     string
}

// dropCamera takes a camera away (stopped: its connections close; paused:
// silent) for a few seconds, and measures.
func (s *soak) dropCamera(ctx context.Context, name string, pause bool) {
	cam, hub := s.cams[name], s.camHub[name]
	r := dropResult{Camera: name, How: "stopped", At: s.elapsed(), Shown: -1, Back: -1}
	down := 3 * time.Second
	t0 := time.Now()
	if pause {
		r.How, down = "paused", 5*time.Second
		if err := cam.Pause(); err != nil {
			s.fail("%s: pause: %v", name, err)
			return
		}
	} else {
		cam.Stop()
	}
	for time.Since(t0) < time.Duration(s.sourceWait*float64(time.Second)) && ctx.Err() == nil {
		if in, ok := s.channel(hub, name); ok && (in.SourceState == protocol.SourceStalled || in.SourceState == protocol.SourceReconnecting) {
			r.Shown, r.ShownAs = time.Since(t0).Seconds(), in.SourceState
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	sleepUntil(ctx, t0.Add(down))
	// The camera is back when it answers again: at once when resumed,
	// once its RTSP server accepts connections when started again (its
	// own start, about a second of Python and GStreamer, is not
	// framehub's).
	if pause {
		if err := cam.Resume(); err != nil {
			s.fail("%s: resume: %v", name, err)
		}
	} else {
		if err := cam.Start(); err != nil {
			s.fail("%s: start again: %v", name, err)
		}
		r.CameraStart = time.Since(t0.Add(down)).Seconds()
	}
	back := time.Now()
	newest := s.timecodes[name]
	for time.Since(back) < 30*time.Second && ctx.Err() == nil {
		if newest.Load() > back.UnixMilli() {
			r.Back = time.Since(back).Seconds()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.note("%s %s for %v: loss shown after %.2f s (%s), streaming again %.2f s after it answered again (its own start: %.2f s)",
		name, r.How, down, r.Shown, r.ShownAs, r.Back, r.CameraStart)
	s.mu.Lock()
	s.drops = append(s.drops, r)
	s.mu.Unlock()
}

// sampleLoop samples every process each s.every.
func (s *soak) sampleLoop(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.sampleAll()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleAll reads every running process: the soak's, their ffmpeg
// children, and the cameras.
func (s *soak) sampleAll() {
	type target struct {
		name string
		pid  int
		gor  int
	}
	var ts []target
	for _, p := range s.procs {
		pid := p.pid()
		if pid == 0 {
			continue
		}
		gor := -1
		if m, ok := map[string]string{"hub-a": "metrics-a", "hub-b": "metrics-b"}[p.name]; ok {
			gor = goroutines("http://" + s.addr(m) + "/metrics")
			if gor < 0 {
				continue // not serving yet (restarted a moment ago)
			}
		}
		ts = append(ts, target{p.name, pid, gor})
		for _, kid := range procstat.Children(pid, "ffmpeg") {
			ts = append(ts, target{p.name + "/ffmpeg", kid, -1})
		}
	}
	for name, c := range s.cams {
		if pid := c.PID(); pid != 0 {
			ts = append(ts, target{name, pid, -1})
		}
	}
	now := s.elapsed()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range ts {
		rss, err1 := procstat.RSS(t.pid)
		files, err2 := procstat.OpenFiles(t.pid)
		cpu, err3 := procstat.CPU(t.pid)
		if err1 != nil || err2 != nil || err3 != nil {
			continue // exited meanwhile
		}
		pct := -1.0
		if prev, ok := s.cpuPrev[t.pid]; ok && now > prev[1] {
			pct = 100 * (cpu - prev[0]) / (now - prev[1])
		}
		s.cpuPrev[t.pid] = [2]float64{cpu, now}
		s.samples = append(s.samples, sample{T: now, Proc: t.name, PID: t.pid, RSS: rss, CPU: pct, Files: files, Goroutines: t.gor})
	}
}

// goroutines reads go_goroutines from a Prometheus text page (-1: none).
func goroutines(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return int(f)
			}
		}
	}
	return -1
}

// dirLoop checks the recording directory every second.
func (s *soak) dirLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		names, _ := filepath.Glob(filepath.Join(s.recDir, "cam1-*.mkv")) // sorted: cam1-0001.mkv, …
		var sizes []int64
		for _, n := range names {
			if fi, err := os.Lstat(n); err == nil {
				sizes = append(sizes, fi.Size())
			}
		}
		s.mu.Lock()
		over := s.recording.observe(sizes)
		text := s.recording.OverText
		s.mu.Unlock()
		if over {
			s.fail("recording directory: %s", text)
		}
	}
}

// teardown stops everything the soak started with SIGINT (a clean end;
// SIGKILL after 10 s): the clients at once, then the hubs, then the NATS
// server. Safe to call twice.
func (s *soak) teardown() {
	s.ended.Store(true)
	stop := func(which func(*proc) bool) {
		var wg sync.WaitGroup
		for _, p := range s.procs {
			if which(p) {
				wg.Add(1)
				go func() { defer wg.Done(); p.kill(syscall.SIGINT) }()
			}
		}
		wg.Wait()
	}
	stop(func(p *proc) bool { return p.name != "nats" && !strings.HasPrefix(p.name, "hub-") })
	stop(func(p *proc) bool { return strings.HasPrefix(p.name, "hub-") })
	stop(func(p *proc) bool { return p.name == "nats" })
	for _, c := range s.cams {
		c.Stop()
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
