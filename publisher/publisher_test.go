//go:build cgo

package publisher

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"gocv.io/x/gocv"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/matleak"
	"framehub/internal/testutil"
	"framehub/protocol"
	"framehub/subscriber"
)

// atExit holds clean-ups of files shared by several tests or benchmarks.
var atExit []func()

func TestMain(m *testing.M) {
	os.Setenv("OPENCV_LOG_LEVEL", "ERROR")
	code := m.Run()
	for _, f := range atExit {
		f()
	}
	os.Exit(testutil.Check(code, matleak.Check))
}

func testHub(t *testing.T) string {
	t.Helper()
	h := hub.New(hub.Config{})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return srv.URL
}

// makeClip writes a test clip with Debian's ffmpeg: testsrc2 (moving
// pattern with a burned-in timestamp), every frame different.
func makeClip(t *testing.T, w, h, fps, frames int) string {
	t.Helper()
	ffmpeg := testutil.RequireTool(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "clip.avi")
	cmd := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", w, h, fps),
		"-frames:v", fmt.Sprint(frames), "-c:v", "mjpeg", "-q:v", "2", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// clipFrames decodes every frame of a clip with OpenCV.
func clipFrames(t *testing.T, path string) []gocv.Mat {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	var out []gocv.Mat
	for {
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			break
		}
		out = append(out, m)
	}
	t.Cleanup(func() {
		for _, m := range out {
			m.Close()
		}
	})
	return out
}

// received is a frame kept by a test subscriber.
type received struct {
	hdr     protocol.Header
	payload []byte
	meta    []byte
	age     time.Duration
}

// collect subscribes to channel and keeps frames until stop returns true
// for the frames so far or ctx ends.
func collect(t *testing.T, ctx context.Context, base, channel string, stop func([]received) bool) (func() []received, *subscriber.Client) {
	t.Helper()
	return collectWant(t, ctx, base, channel, protocol.RenditionWant{}, stop)
}

// collectWant is collect for a reader of what want asks for.
func collectWant(t *testing.T, ctx context.Context, base, channel string, want protocol.RenditionWant, stop func([]received) bool) (func() []received, *subscriber.Client) {
	t.Helper()
	cl, err := subscriber.New(subscriber.Config{Hub: base, Channel: channel, Want: want})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []received
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl.Run(ctx, func(f *subscriber.Frame) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, received{hdr: f.Header, payload: append([]byte(nil), f.Payload...), meta: append([]byte(nil), f.Meta...), age: f.Age()})
			if stop != nil && stop(got) {
				return subscriber.ErrStop
			}
			return nil
		})
	}()
	// Connected, or already done: stop may end it at its first frame.
	testutil.Eventually(t, 5*time.Second, "the collector connected", func() bool {
		select {
		case <-done:
			return true
		default:
			return cl.Connected()
		}
	})
	return func() []received {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return got
	}, cl
}

// meanAbsDiff compares two pictures of the same size, 0 (same) to 255.
func meanAbsDiff(t *testing.T, a, b gocv.Mat) float64 {
	t.Helper()
	if a.Rows() != b.Rows() || a.Cols() != b.Cols() {
		t.Fatalf("sizes differ: %dx%d and %dx%d", a.Cols(), a.Rows(), b.Cols(), b.Rows())
	}
	d := gocv.NewMat()
	defer d.Close()
	gocv.AbsDiff(a, b, &d)
	s := d.Mean()
	return (s.Val1 + s.Val2 + s.Val3) / 3
}

func decode(t *testing.T, r received) gocv.Mat {
	t.Helper()
	m := gocv.NewMat()
	f := protocol.Frame{Header: r.hdr, Payload: r.payload}
	if err := subscriber.DecodeMat(&f, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func runPublisher(t *testing.T, ctx context.Context, cfg Config) (Stats, error) {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.Run(ctx)
	return p.Stats(), err
}

func TestFileThroughHubMatchesClip(t *testing.T) {
	const n = 30
	clip := makeClip(t, 320, 240, 10, n)
	want := clipFrames(t, clip)
	if len(want) != n {
		t.Fatalf("clip has %d frames; want %d", len(want), n)
	}
	base := testHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	frames, _ := collect(t, ctx, base, "clip", func(got []received) bool { return got[len(got)-1].hdr.Seq == n })
	st, err := runPublisher(t, ctx, Config{Source: clip, Quality: 95, Sender: SenderConfig{Hub: base, Channel: "clip"}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := frames()
	if st.Captured != n || st.Sent != n || st.Skipped != 0 {
		t.Fatalf("publisher stats %+v; want %d captured and sent, none skipped at 10 fps", st, n)
	}
	if len(got) != n {
		t.Fatalf("received %d frames; want %d", len(got), n)
	}
	closer := 0
	for i, r := range got {
		if r.hdr.Seq != uint64(i+1) || r.hdr.Width != 320 || r.hdr.Height != 240 || r.hdr.Codec != protocol.CodecJPEG {
			t.Fatalf("frame %d: seq %d %dx%d %v; want seq %d 320x240 jpeg", i, r.hdr.Seq, r.hdr.Width, r.hdr.Height, r.hdr.Codec, i+1)
		}
		m := decode(t, r)
		own := meanAbsDiff(t, m, want[i])
		if own > 4 {
			t.Errorf("frame %d differs from the clip's frame %d by %.2f (mean abs); want a match", r.hdr.Seq, i, own)
		}
		if i > 0 && own < meanAbsDiff(t, m, want[i-1]) {
			closer++
		}
		m.Close()
	}
	if closer < n-2 {
		t.Errorf("only %d of %d frames are closer to their own clip frame than to the previous one", closer, n-1)
	}
}

func TestLoopRepeatsTheFile(t *testing.T) {
	const n = 6
	clip := makeClip(t, 160, 120, 30, n)
	want := clipFrames(t, clip)
	base := testHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	frames, _ := collect(t, ctx, base, "loop", func(got []received) bool { return len(got) >= 2*n+2 })
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	errc := make(chan error, 1)
	go func() {
		_, err := runPublisher(t, pctx, Config{Source: clip, Loop: true, Quality: 95, Sender: SenderConfig{Hub: base, Channel: "loop"}})
		errc <- err
	}()
	got := frames()
	pcancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(got) < 2*n+2 {
		t.Fatalf("received %d frames; want more than the file's %d", len(got), n)
	}
	// Sequence numbers keep counting; the pictures start over.
	for i, r := range got {
		if i > 0 && r.hdr.Seq <= got[i-1].hdr.Seq {
			t.Fatalf("sequence went from %d to %d", got[i-1].hdr.Seq, r.hdr.Seq)
		}
		if r.hdr.Seq > 2*n {
			continue
		}
		m := decode(t, r)
		idx := int((r.hdr.Seq - 1) % n)
		other := (idx + n/2) % n
		if d, o := meanAbsDiff(t, m, want[idx]), meanAbsDiff(t, m, want[other]); d > 8 || d >= o {
			t.Errorf("seq %d differs from clip frame %d by %.2f (from frame %d by %.2f); want it to match frame %d", r.hdr.Seq, idx, d, other, o, idx)
		}
		m.Close()
	}
}

func TestTestPattern(t *testing.T) {
	base := testHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	frames, _ := collect(t, ctx, base, "pattern", func(got []received) bool { return len(got) >= 10 })
	pctx, pcancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := runPublisher(t, pctx, Config{Source: "test:320x180", Sender: SenderConfig{Hub: base, Channel: "pattern"}})
		errc <- err
	}()
	got := frames()
	pcancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(got) < 10 {
		t.Fatalf("received %d frames; want 10", len(got))
	}
	a, b := decode(t, got[0]), decode(t, got[len(got)-1])
	defer a.Close()
	defer b.Close()
	if a.Cols() != 320 || a.Rows() != 180 {
		t.Fatalf("pattern is %dx%d; want 320x180", a.Cols(), a.Rows())
	}
	if d := meanAbsDiff(t, a, b); d < 0.5 {
		t.Fatalf("pattern frames do not change (diff %.2f); the ball and counter should move", d)
	}
}

// slowFilter is a user-defined Filter that takes its time, as a heavy
// detector would: the sender falls behind the 30 fps test pattern.
type slowFilter struct{ d time.Duration }

func (s slowFilter) Apply(*Frame) error { time.Sleep(s.d); return nil }

func TestSlowSenderSkipsAndStaysFresh(t *testing.T) {
	base := testHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	frames, _ := collect(t, ctx, base, "slow", func(got []received) bool { return len(got) >= 15 })
	pctx, pcancel := context.WithCancel(ctx)
	var st Stats
	errc := make(chan error, 1)
	go func() {
		var err error
		st, err = runPublisher(t, pctx, Config{Source: "test:320x180", FPS: 30, Filter: []Filter{slowFilter{100 * time.Millisecond}},
			Sender: SenderConfig{Hub: base, Channel: "slow"}})
		errc <- err
	}()
	got := frames()
	pcancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	var maxAge time.Duration
	gaps := 0
	for i, r := range got {
		maxAge = max(maxAge, r.age)
		if i > 0 && r.hdr.Seq > got[i-1].hdr.Seq+1 {
			gaps++
		}
	}
	if st.Skipped == 0 || gaps < len(got)/2 {
		t.Errorf("skipped %d, %d gaps in %d frames; a 10 fps sender of a 30 fps source must skip", st.Skipped, gaps, len(got))
	}
	// Age is the filter's 100 ms plus encoding, not a growing queue: 15
	// frames at 10 fps from a 30 fps source would otherwise be ~1 s behind.
	if maxAge > 400*time.Millisecond {
		t.Errorf("frame age reached %v; want bounded near the 100 ms processing time", maxAge)
	}
}

func TestURLSourceReadsHubMJPEG(t *testing.T) {
	base := testHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Publisher A: the test pattern on channel "a".
	actx, acancel := context.WithCancel(ctx)
	defer acancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p, err := New(Config{Source: "test:320x240", Sender: SenderConfig{Hub: base, Channel: "a"}})
		if err != nil {
			t.Error(err)
			return
		}
		defer p.Close()
		p.Run(actx)
	}()
	defer wg.Wait()
	defer acancel()
	// Wait until channel a has a frame, so the MJPEG stream starts at once.
	fa, _ := collect(t, ctx, base, "a", func(got []received) bool { return true })
	fa()
	// Publisher B re-publishes a's MJPEG stream, resized, as channel "b".
	frames, _ := collect(t, ctx, base, "b", func(got []received) bool { return len(got) >= 5 })
	bctx, bcancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := runPublisher(t, bctx, Config{Source: base + "/channels/a/stream.mjpeg", Width: 160, Sender: SenderConfig{Hub: base, Channel: "b"}})
		errc <- err
	}()
	got := frames()
	bcancel()
	if err := <-errc; err != nil {
		t.Fatalf("URL publisher: %v", err)
	}
	if len(got) < 5 || got[0].hdr.Width != 160 || got[0].hdr.Height != 120 {
		t.Fatalf("channel b: %d frames, first %dx%d; want 5 at 160x120", len(got), got[0].hdr.Width, got[0].hdr.Height)
	}
}

func TestSourceErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"/no/such/clip.mp4", "no such file"},
		{"7", "no camera 7"},
		{"test:10x10", "test pattern size"},
		{"", "no source"},
		{"http://127.0.0.1:1/none.mjpeg", "cannot open stream"},
	} {
		_, err := New(Config{Source: c.src, Sender: SenderConfig{Hub: "127.0.0.1:1", Channel: "x"}})
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("source %q: error %v; want one line mentioning %q", c.src, err, c.want)
		}
	}
	bad := filepath.Join(t.TempDir(), "junk.mp4")
	os.WriteFile(bad, []byte("this is not a video"), 0o644)
	if _, err := New(Config{Source: bad, Sender: SenderConfig{Hub: "127.0.0.1:1", Channel: "x"}}); err == nil || !strings.Contains(err.Error(), "cannot read video file") {
		t.Errorf("junk file: %v", err)
	}
	for _, cfg := range []Config{
		{Source: "test", Quality: 101},
		{Source: "test", Rotate: 45},
		{Source: "test", Flip: "sideways"},
		{Source: "test", Sender: SenderConfig{Hub: "127.0.0.1:1", Channel: "../x"}},
	} {
		if cfg.Sender.Channel == "" {
			cfg.Sender = SenderConfig{Hub: "127.0.0.1:1", Channel: "x"}
		}
		if p, err := New(cfg); err == nil {
			p.Close()
			t.Errorf("New(%+v) accepted a bad config", cfg)
		}
	}
}

func TestHubDownThenUp(t *testing.T) {
	// A publisher started before its hub keeps trying (within its connect
	// timeout), drops what it captures meanwhile, and publishes once the
	// hub is up.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, err := New(Config{Source: "test:160x120", Sender: SenderConfig{Hub: addr, Channel: "x",
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, ConnectTimeout: 20 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, "frames captured while the hub is down", func() bool { return p.Stats().Captured >= 5 })
	if st := p.Stats(); st.Sent != 0 {
		t.Fatalf("sent %d frames to a hub that is not there", st.Sent)
	}
	h := hubtest.StartAt(t, addr, hub.Config{})
	_, in := hubtest.Subscribe(t, h.Addr, "x", "")
	f := hubtest.Next(t, in, 10*time.Second)
	if age := time.Since(time.Unix(0, f.CaptureTime)); age > 2*time.Second {
		t.Fatalf("first frame after the hub came up is %v old; want a fresh one, not one held while it was down", age)
	}
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

func TestFilters(t *testing.T) {
	src := gocv.NewMatWithSize(120, 160, gocv.MatTypeCV8UC3)
	defer src.Close()
	src.SetTo(gocv.NewScalar(30, 60, 200, 0))
	gocv.Rectangle(&src, image.Rect(40, 30, 120, 90), colorWhite, -1)
	apply := func(spec string) gocv.Mat {
		f, err := ParseFilter(spec)
		if err != nil {
			t.Fatal(err)
		}
		in := src.Clone()
		defer in.Close()
		fr := Frame{Mat: &in, Channel: "cam", Captured: time.Now(), FPS: 25}
		if err := f.Apply(&fr); err != nil {
			t.Fatal(err)
		}
		out := fr.Mat.Clone()
		if c, ok := f.(interface{ Close() error }); ok {
			c.Close()
		}
		return out
	}
	gray := apply("gray")
	defer gray.Close()
	if gray.Channels() != 1 {
		t.Errorf("gray has %d channels; want 1", gray.Channels())
	}
	// BGR (30,60,200) is mostly red: luma = 0.299 R + 0.587 G + 0.114 B ≈ 98.
	if v := gray.GetUCharAt(5, 5); v < 90 || v > 106 {
		t.Errorf("gray of BGR(30,60,200) = %d; want about 98", v)
	}
	blur := apply("blur=9")
	defer blur.Close()
	// At the rectangle's edge a blur mixes white and red.
	if v := blur.GetVecbAt(60, 40); v[0] == 255 || v[0] == 30 {
		t.Errorf("blur left the edge pixel at %v; want a mix", v)
	}
	edges := apply("edges")
	defer edges.Close()
	if edges.Channels() != 1 || edges.GetUCharAt(60, 40) != 255 && edges.GetUCharAt(60, 39) != 255 || edges.GetUCharAt(5, 5) != 0 {
		t.Errorf("edges: want 255 on the rectangle's border and 0 in flat areas")
	}
	over := apply("overlay")
	defer over.Close()
	if d := meanAbsDiff(t, over, src); d == 0 {
		t.Errorf("overlay changed no pixel")
	}
	for _, bad := range []string{"blur=4", "blur=x", "edges=9:1", "sepia", "gray=1"} {
		if _, err := ParseFilter(bad); err == nil {
			t.Errorf("ParseFilter(%q) accepted", bad)
		}
	}
}

func TestProcessingPipeline(t *testing.T) {
	base := testHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []struct {
		name  string
		cfg   Config
		w, h  uint32
		codec protocol.Codec
		ch    uint8
	}{
		{"resize_width_keeps_aspect", Config{Width: 160}, 160, 90, protocol.CodecJPEG, 0},
		{"rotate90", Config{Rotate: 90}, 180, 320, protocol.CodecJPEG, 0},
		{"raw_gray", Config{Codec: protocol.CodecRaw, Width: 64, Height: 48, Filter: mustFilters(t, "gray")}, 64, 48, protocol.CodecRaw, 1},
		{"raw_bgr", Config{Codec: protocol.CodecRaw, Height: 36}, 64, 36, protocol.CodecRaw, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			frames, _ := collect(t, ctx, base, c.name, func(got []received) bool { return len(got) >= 2 })
			pctx, pcancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			cfg := c.cfg
			cfg.Source = "test:320x180"
			cfg.Sender = SenderConfig{Hub: base, Channel: c.name}
			go func() { _, err := runPublisher(t, pctx, cfg); errc <- err }()
			got := frames()
			pcancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			h := got[0].hdr
			if h.Width != c.w || h.Height != c.h || h.Codec != c.codec || h.Channels != c.ch {
				t.Fatalf("frame %dx%d %v ch %d; want %dx%d %v ch %d", h.Width, h.Height, h.Codec, h.Channels, c.w, c.h, c.codec, c.ch)
			}
			m := decode(t, got[0])
			m.Close()
		})
	}
}

func mustFilters(t *testing.T, specs ...string) []Filter {
	var fs []Filter
	for _, s := range specs {
		f, err := ParseFilter(s)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	return fs
}

var colorWhite = color.RGBA{255, 255, 255, 0}

// TestOnDemandCapturesOnlyWhileWatched: an on-demand publisher keeps its
// connection but captures nothing while nobody watches; the first
// subscriber gets a fresh frame within a second; when it leaves, capture
// stops again; a snapshot wakes it too.
func TestOnDemandCapturesOnlyWhileWatched(t *testing.T) {
	h := hubtest.Start(t, hub.Config{})
	p, err := New(Config{Source: "test:320x240", OnDemand: true, Sender: SenderConfig{Hub: h.URL, Channel: "cam"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, "the publisher connected", p.Connected)
	idleStart := p.Stats().Captured
	time.Sleep(700 * time.Millisecond) // nobody watching: nothing may be captured in this time
	if n := p.Stats().Captured - idleStart; n > 0 {
		t.Fatalf("captured %d frames while nobody watched", n)
	}
	var in protocol.ChannelInfo
	for _, c := range h.Channels() {
		in = c
	}
	if !in.OnDemand || !in.Idle {
		t.Fatalf("/api/channels says %+v; want on_demand and idle", in)
	}

	start := time.Now()
	c, frames := hubtest.Subscribe(t, h.Addr, "cam", "")
	f := hubtest.Next(t, frames, 5*time.Second)
	wake := time.Since(start)
	if age := time.Since(time.Unix(0, f.CaptureTime)); age > time.Second {
		t.Fatalf("first frame after waking is %v old; want a fresh one", age)
	}
	if wake > time.Second {
		t.Errorf("first frame %v after the first subscriber; want within 1 s", wake)
	}
	t.Logf("first fresh frame %v after the first subscriber", wake.Round(time.Millisecond))
	c.Close()
	testutil.Eventually(t, 5*time.Second, "capture paused again", func() bool {
		n := p.Stats().Captured
		time.Sleep(300 * time.Millisecond)
		return p.Stats().Captured == n
	})

	// A snapshot wakes it and gets a fresh frame.
	start = time.Now()
	resp, err := http.Get(h.URL + "/channels/cam/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ns, _ := strconv.ParseInt(resp.Header.Get("X-Capture-Time"), 10, 64)
	if resp.StatusCode != 200 || time.Unix(0, ns).Before(start) {
		t.Fatalf("snapshot %d of a frame captured %v before it was asked for; want a fresh one", resp.StatusCode, start.Sub(time.Unix(0, ns)))
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestOnDemandReleasesALiveSource: while nobody watches, an on-demand
// publisher lets go of a live source (here another channel's MJPEG stream,
// as it would a camera): the stream is closed, and opened again when a
// viewer comes.
func TestOnDemandReleasesALiveSource(t *testing.T) {
	h := hubtest.Start(t, hub.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	frames := make([]protocol.Frame, 3000)
	for i := range frames {
		frames[i] = hubtest.JPEGFrame(160, 120, testutil.JPEG(160, 120, i%10))
	}
	feedDone := make(chan struct{})
	go func() { defer close(feedDone); hubtest.Publish(t, ctx, h.Addr, "src", 33*time.Millisecond, frames) }()
	defer func() { cancel(); <-feedDone }()
	mjpegReaders := func() int {
		for _, c := range h.ChannelCounters() {
			if c.Name == "src" {
				return c.SubscribersMJPEG
			}
		}
		return 0
	}
	p, err := New(Config{Source: h.URL + "/channels/src/stream.mjpeg", OnDemand: true,
		Sender: SenderConfig{Hub: h.URL, Channel: "cam"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, "the idle publisher to let go of the stream", func() bool {
		return p.Connected() && mjpegReaders() == 0
	})
	c, in := hubtest.Subscribe(t, h.Addr, "cam", "")
	hubtest.Next(t, in, 10*time.Second)
	if n := mjpegReaders(); n != 1 {
		t.Fatalf("%d readers of the source stream while watched; want 1", n)
	}
	c.Close()
	testutil.Eventually(t, 5*time.Second, "the stream let go again", func() bool { return mjpegReaders() == 0 })
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestOnDemandIdleReconnects: an idle on-demand publisher sends nothing,
// so only its own watch on the connection can notice the hub going away.
// It reconnects to the restarted hub, wakes for a viewer there, and ends
// with ErrReplaced when a newer publisher takes the channel while it idles.
func TestOnDemandIdleReconnects(t *testing.T) {
	h := hubtest.Start(t, hub.Config{})
	addr := h.Addr
	p, err := New(Config{Source: "test:320x240", OnDemand: true,
		Sender: SenderConfig{Hub: h.URL, Channel: "cam", MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, "the publisher connected", p.Connected)

	h.Stop()
	h2 := hubtest.StartAt(t, addr, hub.Config{})
	testutil.Eventually(t, 10*time.Second, "the idle publisher back on the restarted hub", func() bool {
		for _, c := range h2.Channels() {
			if c.Name == "cam" && c.Live && c.OnDemand {
				return true
			}
		}
		return false
	})
	c, frames := hubtest.Subscribe(t, h2.Addr, "cam", "")
	f := hubtest.Next(t, frames, 5*time.Second)
	if age := time.Since(time.Unix(0, f.CaptureTime)); age > time.Second {
		t.Fatalf("first frame after the restart is %v old", age)
	}
	c.Close()
	testutil.Eventually(t, 5*time.Second, "capture paused again", func() bool {
		n, known := p.sender.Viewers()
		return known && n == 0
	})

	// A newer publisher of the channel: the idle one learns it and stops.
	newer, _, err := websocket.DefaultDialer.Dial("ws://"+h2.Addr+protocol.PathPublish+"cam", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer newer.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrReplaced) {
			t.Fatalf("Run ended with %v; want ErrReplaced", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced idle publisher is still running")
	}
}
