//go:build cgo

package publisher

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"gocv.io/x/gocv"

	"framehub/hub"
)

// benchFrames is the number of frames in the benchmark clip.
const benchFrames = 60

var (
	benchClipOnce sync.Once
	benchClipPath string
)

// benchClip writes a 1280x720 clip of raw BGR frames (testsrc2), so that
// capture costs a copy rather than a second codec and the benchmark weighs
// the publisher's own work.
func benchClip(b *testing.B) string {
	benchClipOnce.Do(func() {
		// Not b.TempDir: that is removed between the runs of one benchmark.
		dir, err := os.MkdirTemp("", "framehub-bench")
		if err != nil {
			b.Fatal(err)
		}
		atExit = append(atExit, func() { os.RemoveAll(dir) })
		benchClipPath = filepath.Join(dir, "bench.avi")
		out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
			"-frames:v", "60", "-c:v", "rawvideo", "-pix_fmt", "bgr24", benchClipPath).CombinedOutput()
		if err != nil {
			b.Fatalf("ffmpeg: %v %s", err, out)
		}
	})
	return benchClipPath
}

// unpaced opens the clip as a looping file source that does not wait for
// frame times, so the publisher runs as fast as it can.
func unpaced(b *testing.B, path string) Source {
	src, err := openFile(path, true)
	if err != nil {
		b.Fatal(err)
	}
	src.(*fileSource).every = 0
	return src
}

// BenchmarkPublishVsEncode compares, within each iteration and so within
// one run, the publisher's throughput (capture from a clip, JPEG encode at
// quality 80, send to a real hub) with two bare loops over the same frames:
// gocv.IMEncodeWithParams alone on decoded frames, and capture + encode one
// after the other. It reports the three rates and the publisher's ratio to
// each. Run it on one core with
//
//	taskset -c 0 go test ./publisher -run '^$' -bench PublishVsEncode -cpu 1
func BenchmarkPublishVsEncode(b *testing.B) {
	clip := benchClip(b)
	// Bare encode input: the same frames, decoded once.
	vc, err := gocv.VideoCaptureFile(clip)
	if err != nil {
		b.Fatal(err)
	}
	var mats []gocv.Mat
	for {
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			break
		}
		mats = append(mats, m)
	}
	vc.Close()
	defer func() {
		for _, m := range mats {
			m.Close()
		}
	}()
	params := []int{gocv.IMWriteJpegQuality, 80}

	h := newBenchHub(b)
	defer h.close()

	var encodeTime, pubTime, seqTime time.Duration
	var encoded, published, seqDone uint64
	b.ResetTimer()
	for range b.N {
		// Bare capture + encode, one after the other, from the same clip.
		src := unpaced(b, clip)
		m := gocv.NewMat()
		start := time.Now()
		for range mats {
			if err := src.Read(context.Background(), &m); err != nil {
				b.Fatal(err)
			}
			buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, params)
			if err != nil {
				b.Fatal(err)
			}
			buf.Close()
		}
		seqTime += time.Since(start)
		seqDone += uint64(len(mats))
		m.Close()
		src.Close()

		start = time.Now()
		for _, m := range mats {
			buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, params)
			if err != nil {
				b.Fatal(err)
			}
			buf.Close()
		}
		encodeTime += time.Since(start)
		encoded += uint64(len(mats))

		n, d := publishFor(b, sinkURL(b, h.url), unpaced(b, clip), len(mats), true)
		pubTime += d
		published += n
	}
	b.StopTimer()
	encFPS := float64(encoded) / encodeTime.Seconds()
	pubFPS := float64(published) / pubTime.Seconds()
	b.ReportMetric(encFPS, "encode-fps")
	b.ReportMetric(pubFPS, "publish-fps")
	seqFPS := float64(seqDone) / seqTime.Seconds()
	b.ReportMetric(seqFPS, "capture+encode-fps")
	b.ReportMetric(pubFPS/encFPS, "ratio-to-encode")
	b.ReportMetric(pubFPS/seqFPS, "ratio-to-capture+encode")
}

// publishFor runs a publisher until it has sent n frames and returns how
// many it sent and how long that took. With onDemand, the source captures a
// frame only while fewer than two are ahead of the sender (one waiting, one
// being encoded): like a camera exactly as fast as the sender, capture
// overlaps encoding and no captured frame is wasted.
func publishFor(b *testing.B, hubURL string, src Source, n int, onDemand bool) (uint64, time.Duration) {
	p := &Publisher{cfg: Config{Codec: 1, Quality: 80, Sender: SenderConfig{Hub: hubURL, Channel: "bench"}},
		src: src, slot: newCaptureSlot(), resized: gocv.NewMat(), flipped: gocv.NewMat(), rotated: gocv.NewMat()}
	p.log = discardLogger()
	if onDemand {
		p.src = &demandSource{Source: src, p: p}
	}
	var err error
	if p.sender, err = NewSender(p.cfg.Sender); err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := p.sender.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	for p.Stats().Sent < uint64(n) {
		runtime.Gosched()
		time.Sleep(100 * time.Microsecond)
	}
	d := time.Since(start)
	sent := p.Stats().Sent
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return sent, d
}

// demandSource paces a source by the sender's progress.
type demandSource struct {
	Source
	p        *Publisher
	captured uint64
}

func (d *demandSource) Read(ctx context.Context, m *gocv.Mat) error {
	for {
		st := d.p.Stats()
		if d.captured < st.Sent+st.Skipped+2 || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Microsecond)
	}
	d.captured++
	return d.Source.Read(ctx, m)
}

// BenchmarkPublishAllocs counts Go allocations per frame on the publisher
// side alone: frames go to a WebSocket server that discards them without
// allocating, so every allocation counted is the publisher's.
func BenchmarkPublishAllocs(b *testing.B) {
	clip := benchClip(b)
	sink := newSink(b)
	defer sink.Close()
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	b.ResetTimer()
	runtime.ReadMemStats(&ms0)
	sent, _ := publishFor(b, sink.URL, unpaced(b, clip), b.N, true)
	runtime.ReadMemStats(&ms1)
	b.StopTimer()
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(sent), "allocs/frame")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(sent), "B/frame")
}

// newSink is a WebSocket endpoint that reads and discards raw bytes.
func newSink(b *testing.B) *httptest.Server {
	up := websocket.Upgrader{}
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		buf := make([]byte, 256<<10)
		for {
			if _, err := c.NetConn().Read(buf); err != nil {
				c.Close()
				return
			}
		}
	}))
	return srv
}

// benchHub is a real hub served over loopback for the benchmark.
type benchHub struct {
	url   string
	close func()
}

func newBenchHub(b *testing.B) *benchHub {
	h := hub.New(hub.Config{})
	srv := httptest.NewServer(h)
	return &benchHub{url: srv.URL, close: func() { h.Close(); srv.Close() }}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func sinkURL(b *testing.B, hub string) string {
	if os.Getenv("BENCH_SINK") == "" {
		return hub
	}
	s := newSink(b)
	b.Cleanup(s.Close)
	return s.URL
}
