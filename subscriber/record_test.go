//go:build cgo

package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
	"framehub/publisher"
)

// probe returns what Debian's ffprobe sees in a video file: codec, size and
// the number of frames it decodes.
func probe(t *testing.T, file string) (codec string, w, h, frames int) {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, "ffprobe"), "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			W      int    `json:"width"`
			H      int    `json:"height"`
			Frames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) != 1 {
		t.Fatalf("ffprobe %s: %s", file, out)
	}
	n, _ := strconv.Atoi(p.Streams[0].Frames)
	return p.Streams[0].Codec, p.Streams[0].W, p.Streams[0].H, n
}

// countFrames re-opens a video with OpenCV and counts the frames it reads.
func countFrames(t *testing.T, file string) (n, w, h int) {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	for vc.Read(&m) && !m.Empty() {
		n++
		w, h = m.Cols(), m.Rows()
	}
	return n, w, h
}

// publishSource runs a publisher until ctx ends or the source does.
func publishSource(t *testing.T, ctx context.Context, wg *sync.WaitGroup, base, channel, source string) {
	t.Helper()
	p, err := publisher.New(publisher.Config{Source: source, Quality: 90,
		Sender: publisher.SenderConfig{Hub: base, Channel: channel}})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer p.Close()
		p.Run(ctx)
	}()
}

func TestRecordFileIsValid(t *testing.T) {
	for _, ext := range []string{".mkv", ".avi", ".mp4"} {
		t.Run(ext, func(t *testing.T) {
			addr, _ := runHub(t, "127.0.0.1:0")
			base := "http://" + addr
			clip := filepath.Join(t.TempDir(), "clip.avi")
			if out, err := exec.Command(testutil.RequireTool(t, "ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10",
				"-frames:v", "20", "-c:v", "mjpeg", clip).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v %s", err, out)
			}
			out := filepath.Join(t.TempDir(), "rec"+ext)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rec := startRecord(t, RecordConfig{Client: Config{Hub: base, Channel: "rec"}, Out: out, FPS: 10})
			waitSubscribers(t, addr, 1)
			var wg sync.WaitGroup
			publishSource(t, ctx, &wg, base, "rec", clip)
			wg.Wait() // the file has been published: 20 frames at 10 fps
			// Each frame reached the recorder or was skipped for a newer one
			// (a recorder slowed by a loaded machine is, as any subscriber).
			skipped := rec.waitAccounted(t, addr, "rec", 20)
			st, err := rec.stop(t) // what Ctrl-C does
			if err != nil {
				t.Fatalf("Record: %v", err)
			}
			if st.Received < 10 || st.Written < 18 || st.Written > 21 || len(st.Files) != 1 {
				t.Logf("the hub skipped %d frames for the recorder", skipped)
				t.Fatalf("record stats %+v; want about 20 frames written to one file", st)
			}
			n, w, h := countFrames(t, out)
			if n != int(st.Written) || w != 320 || h != 240 {
				t.Fatalf("OpenCV reads %d frames of %dx%d; want %d of 320x240", n, w, h, st.Written)
			}
			codec, pw, ph, pn := probe(t, out)
			wantCodec := map[string]string{".mkv": "mjpeg", ".avi": "mjpeg", ".mp4": "mpeg4"}[ext]
			if codec != wantCodec || pw != 320 || ph != 240 || pn != int(st.Written) {
				t.Fatalf("ffprobe sees %s %dx%d, %d frames; want %s 320x240, %d frames", codec, pw, ph, pn, wantCodec, st.Written)
			}
			if msg := ffmpegDecode(t, out); msg != "" {
				t.Fatalf("ffmpeg -v error: %s", msg)
			}
		})
	}
}

func TestRecordSegments(t *testing.T) {
	for _, ext := range []string{".mkv", ".avi"} {
		t.Run(ext, func(t *testing.T) {
			addr, _ := runHub(t, "127.0.0.1:0")
			base := "http://" + addr
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			pctx, pcancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			publishSource(t, pctx, &wg, base, "seg", "test:160x120")
			defer func() { pcancel(); wg.Wait() }()
			out := filepath.Join(t.TempDir(), "seg"+ext)
			rctx, rcancel := context.WithTimeout(ctx, 2500*time.Millisecond)
			defer rcancel()
			st, err := Record(rctx, RecordConfig{Client: Config{Hub: base, Channel: "seg"}, Out: out, FPS: 30, Segment: time.Second})
			if err != nil {
				t.Fatalf("Record: %v", err)
			}
			if len(st.Files) < 2 || len(st.Files) > 3 {
				t.Fatalf("files %v; want 2 or 3 one-second segments in 2.5 s", st.Files)
			}
			total := 0
			for i, f := range st.Files {
				if want := filepath.Join(filepath.Dir(out), fmt.Sprintf("seg-%04d%s", i+1, ext)); f != want {
					t.Errorf("segment %d is %s; want %s", i, f, want)
				}
				n, w, h := countFrames(t, f)
				if n == 0 || w != 160 || h != 120 {
					t.Errorf("segment %s: %d frames of %dx%d", f, n, w, h)
				}
				total += n
			}
			if total != int(st.Written) {
				t.Errorf("segments hold %d frames; recorder wrote %d", total, st.Written)
			}
		})
	}
}

// recording is a Record call running in the background.
type recording struct {
	cancel   context.CancelFunc
	done     chan struct{}
	received atomic.Uint64
	// first and last: when the recorder handled its first and its latest
	// frame (Unix ns).
	first, last atomic.Int64
	st          RecordStats
	err         error
}

// startRecord runs Record until stop is called or the test ends.
func startRecord(t *testing.T, cfg RecordConfig) *recording {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &recording{cancel: cancel, done: make(chan struct{})}
	cfg.OnFrame = func(st RecordStats) {
		now := time.Now().UnixNano()
		r.first.CompareAndSwap(0, now)
		r.last.Store(now)
		r.received.Store(st.Received)
	}
	go func() {
		defer close(r.done)
		r.st, r.err = Record(ctx, cfg)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// waitAccounted waits until n frames published on channel have each
// reached the recorder or been skipped by the hub for a newer one, and
// returns how many were skipped.
func (r *recording) waitAccounted(t *testing.T, addr, channel string, n uint64) uint64 {
	t.Helper()
	var skipped uint64
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("the recorder to handle or skip %d frames", n), func() bool {
		resp, err := http.Get("http://" + addr + "/api/channels")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var list []protocol.ChannelInfo
		if json.NewDecoder(resp.Body).Decode(&list) != nil {
			return false
		}
		for _, c := range list {
			if c.Name == channel {
				skipped = c.Skipped
			}
		}
		return r.received.Load()+skipped >= n
	})
	return skipped
}

// waitReceived waits until the recorder has handled n frames.
func (r *recording) waitReceived(t *testing.T, n uint64) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("the recorder to handle %d frames", n), func() bool { return r.received.Load() >= n })
}

// stop ends the recording as Ctrl-C does and returns what Record did; it
// fails the test if Record takes more than 5 s to return.
func (r *recording) stop(t *testing.T) (RecordStats, error) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Record did not return within 5 s of its context ending")
	}
	return r.st, r.err
}

// decodeVideo reads every frame of a video file with OpenCV and counts
// them by size.
func decodeVideo(t *testing.T, file string) (n int, sizes map[image.Point]int) {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(file)
	if err != nil {
		t.Fatalf("open %s: %v", file, err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	sizes = map[image.Point]int{}
	for vc.Read(&m) && !m.Empty() {
		n++
		sizes[image.Pt(m.Cols(), m.Rows())]++
	}
	return n, sizes
}

// TestRecordPublisherClock: the capture times a publisher sends decide
// where frames go, but cannot stretch or squash the file. Twenty frames
// sent at 20 fps make about twenty frames, one second of video, whether
// the publisher's clock is right, stuck, running backwards or racing
// ahead (on the old code: 1, 1 and 2,798 frames).
func TestRecordPublisherClock(t *testing.T) {
	const n, fps = 20, 20
	t0 := time.Now().UnixNano()
	clocks := []struct {
		name    string
		capture func(i int) int64 // 0: the time of sending
	}{
		{"steady", func(int) int64 { return 0 }},
		{"stuck", func(int) int64 { return t0 }},
		{"backwards", func(i int) int64 { return t0 - int64(i)*int64(time.Second) }},
		{"racing", func(i int) int64 { return t0 + int64(i)*int64(4900*time.Millisecond) }},
	}
	for _, ext := range []string{".mkv", ".avi"} {
		for _, c := range clocks {
			t.Run(ext+"/"+c.name, func(t *testing.T) {
				addr, _ := runHub(t, "127.0.0.1:0")
				out := filepath.Join(t.TempDir(), "clock"+ext)
				rec := startRecord(t, RecordConfig{Client: Config{Hub: addr, Channel: "c"}, Out: out, FPS: fps})
				waitSubscribers(t, addr, 1)
				frames := make([]protocol.Frame, n)
				for i := range frames {
					frames[i] = hubtest.JPEGFrame(64, 48, testutil.JPEG(64, 48, i))
					frames[i].CaptureTime = c.capture(i)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				pushFrames(t, ctx, addr, "c", time.Second/fps, frames)
				rec.waitReceived(t, n)
				st, err := rec.stop(t)
				if err != nil {
					t.Fatalf("Record: %v", err)
				}
				// A steady clock places the frames one interval apart;
				// with a broken one the recorder keeps to the arrival times,
				// which a loaded machine may bunch or spread: the file then
				// spans the time they took to arrive.
				want := int64(n)
				if c.name != "steady" {
					span := time.Duration(rec.last.Load() - rec.first.Load())
					want = int64(span.Round(time.Second/fps)/(time.Second/fps)) + 1
				}
				if st.Received != n || int64(st.Written) < want-3 || int64(st.Written) > want+3 {
					t.Fatalf("received %d, wrote %d frames; want about %d of %d", st.Received, st.Written, want, n)
				}
				got, sizes := decodeVideo(t, out)
				if got != int(st.Written) || sizes[image.Pt(64, 48)] != got {
					t.Fatalf("the file decodes to %d frames %v; the recorder wrote %d", got, sizes, st.Written)
				}
			})
		}
	}
}

// TestRecordStopsWhileFilling: at a constant frame rate, an outage is
// filled by repeating the last picture. Recorded at 1000 fps, a 2 s outage
// takes seconds to fill with 640x480 MPEG-4 frames; the old code ignored
// Ctrl-C until it was done. The filling now stops when the context ends,
// and is bounded by the frame rate and the recorder's clock.
func TestRecordStopsWhileFilling(t *testing.T) {
	const fps = MaxRecordFPS
	addr, _ := runHub(t, "127.0.0.1:0")
	out := filepath.Join(t.TempDir(), "fill.mp4")
	start := time.Now()
	rec := startRecord(t, RecordConfig{Client: Config{Hub: addr, Channel: "c"}, Out: out, FPS: fps})
	waitSubscribers(t, addr, 1)
	frame := func(i int) protocol.Frame { return hubtest.JPEGFrame(640, 480, testutil.JPEG(640, 480, i)) }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pushFrames(t, ctx, addr, "c", 2*time.Second, []protocol.Frame{frame(0)}) // then 2 s of nothing
	pushFrames(t, ctx, addr, "c", time.Millisecond, []protocol.Frame{frame(1)})
	rec.waitReceived(t, 1)
	time.Sleep(300 * time.Millisecond) // Ctrl-C while the gap is being filled
	stopAt := time.Now()
	st, err := rec.stop(t)
	latency := time.Since(stopAt)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	elapsed := time.Since(start)
	if limit := uint64(fps * (elapsed + 2*recordSlack).Seconds()); st.Written > limit {
		t.Fatalf("wrote %d frames in %v at %d fps; want at most %d", st.Written, elapsed, fps, limit)
	}
	if latency > 500*time.Millisecond {
		t.Fatalf("Record returned %v after its context ended; want under 500 ms", latency)
	}
	t.Logf("%d frames received, %d written in %v; returned %v after cancel", st.Received, st.Written, elapsed.Round(time.Millisecond), latency.Round(time.Millisecond))
}

// TestRecordSizeChange: a first frame of another size no longer decides
// the file's size: a new size starts a new file (after at least a second
// of the old one), each file at its frames' own size.
func TestRecordSizeChange(t *testing.T) {
	for _, ext := range []string{".mkv", ".avi"} {
		t.Run(ext, func(t *testing.T) {
			addr, _ := runHub(t, "127.0.0.1:0")
			out := filepath.Join(t.TempDir(), "size"+ext)
			rec := startRecord(t, RecordConfig{Client: Config{Hub: addr, Channel: "c"}, Out: out, FPS: 10})
			waitSubscribers(t, addr, 1)
			var frames []protocol.Frame
			for i := range 30 {
				w, h := 320, 240
				if i < 5 {
					w, h = 64, 48
				}
				frames = append(frames, hubtest.JPEGFrame(w, h, testutil.JPEG(w, h, i)))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			pushFrames(t, ctx, addr, "c", 100*time.Millisecond, frames)
			rec.waitReceived(t, 30)
			st, err := rec.stop(t)
			if err != nil {
				t.Fatalf("Record: %v", err)
			}
			want := []string{out, strings.TrimSuffix(out, ext) + "-0002" + ext}
			if fmt.Sprint(st.Files) != fmt.Sprint(want) {
				t.Fatalf("files %v; want %v", st.Files, want)
			}
			n1, s1 := decodeVideo(t, want[0])
			n2, s2 := decodeVideo(t, want[1])
			if n1 < 4 || s1[image.Pt(64, 48)] != n1 || n2 < 17 || s2[image.Pt(320, 240)] != n2 {
				t.Fatalf("first file %d frames %v, second %d frames %v; want 5 of 64x48, then about 20 of 320x240", n1, s1, n2, s2)
			}
		})
	}
}

// TestRecordBrokenFrameOfAnotherSize: through OpenCV, a frame is decoded
// before it may start a new file, so an undecodable frame of another size
// is refused and the recording stays in its file.
func TestRecordBrokenFrameOfAnotherSize(t *testing.T) {
	addr, _ := runHub(t, "127.0.0.1:0")
	out := filepath.Join(t.TempDir(), "broken.avi")
	rec := startRecord(t, RecordConfig{Client: Config{Hub: addr, Channel: "c"}, Out: out, FPS: 10})
	waitSubscribers(t, addr, 1)
	var frames []protocol.Frame
	for i := range 25 {
		frames = append(frames, hubtest.JPEGFrame(320, 240, testutil.JPEG(320, 240, i)))
	}
	frames[15] = hubtest.JPEGFrame(640, 480, testutil.FakeJPEG(640, 480, 1, 2000))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pushFrames(t, ctx, addr, "c", 100*time.Millisecond, frames)
	rec.waitReceived(t, 25)
	st, err := rec.stop(t)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if len(st.Files) != 1 || st.Refused != 1 {
		t.Fatalf("stats %+v; want one file and the broken frame refused", st)
	}
	if n, sizes := decodeVideo(t, out); n < 22 || sizes[image.Pt(320, 240)] != n {
		t.Fatalf("the file decodes to %d frames %v; want about 25 of 320x240", n, sizes)
	}
}

// TestRecordRefusesHugePictures: a hub allowing 2^28 pixels and a client
// whose guard allows as much relay 16384x16384 JPEGs; the recorder's own
// pixel limit refuses them before anything is decoded, counts them, and
// goes on with the next frames.
func TestRecordRefusesHugePictures(t *testing.T) {
	for _, ext := range []string{".avi", ".mkv"} {
		t.Run(ext, func(t *testing.T) {
			addr, _ := runHubConfig(t, "127.0.0.1:0", hub.Config{MaxPixels: 1 << 28})
			out := filepath.Join(t.TempDir(), "huge"+ext)
			rec := startRecord(t, RecordConfig{Client: Config{Hub: addr, Channel: "c", Guard: protocol.Limits{MaxPixels: 1 << 28}},
				Out: out, FPS: 10})
			waitSubscribers(t, addr, 1)
			var frames []protocol.Frame
			for i := range 10 {
				frames = append(frames, hubtest.JPEGFrame(320, 240, testutil.JPEG(320, 240, i)))
			}
			frames = append(frames[:5], append(hubtest.HugeFrames(), frames[5:]...)...)
			resetPeakRSS(t)
			before := peakRSS(t, "self")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			pushFrames(t, ctx, addr, "c", 100*time.Millisecond, frames)
			rec.waitReceived(t, 12)
			st, err := rec.stop(t)
			grew := peakRSS(t, "self") - before
			if err != nil {
				t.Fatalf("Record: %v", err)
			}
			if st.Received != 12 || st.Refused != 2 || len(st.Files) != 1 {
				t.Fatalf("stats %+v; want 12 frames received, the 2 huge ones refused, one file", st)
			}
			n, sizes := decodeVideo(t, out)
			if n < 9 || sizes[image.Pt(320, 240)] != n {
				t.Fatalf("the file decodes to %d frames %v; want the 10 ordinary ones, at 320x240", n, sizes)
			}
			if grew > 100<<20 {
				t.Fatalf("peak RSS grew by %d MiB while recording; the 16384x16384 frame was decoded", grew>>20)
			}
			t.Logf("peak RSS grew by %d MiB", grew>>20)
		})
	}
}

// TestDecodeMatChecksBeforeAllocating: DecodeMat refuses a picture past
// its limit, and a JPEG whose own size differs from its header's, before
// OpenCV allocates anything. Allowed the same picture, OpenCV allocates
// 256 MiB, which shows the measurement can see it.
func TestDecodeMatChecksBeforeAllocating(t *testing.T) {
	bomb := testutil.BombJPEG(16384, 16384)
	m := gocv.NewMat()
	defer m.Close()
	resetPeakRSS(t)
	before := peakRSS(t, "self")
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 16384, Height: 16384}, Payload: bomb}
	if err := DecodeMat(&f, &m); !errors.Is(err, protocol.ErrPixels) {
		t.Fatalf("DecodeMat of a 16384x16384 JPEG = %v; want ErrPixels", err)
	}
	lying := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 16, Height: 16}, Payload: bomb}
	if err := DecodeMatLimit(&lying, &m, 1<<30); !errors.Is(err, protocol.ErrJPEG) {
		t.Fatalf("DecodeMat of a JPEG of 16384x16384 in a 16x16 frame = %v; want ErrJPEG", err)
	}
	if grew := peakRSS(t, "self") - before; grew > 32<<20 {
		t.Fatalf("peak RSS grew by %d MiB refusing two frames", grew>>20)
	}
	if err := DecodeMatLimit(&f, &m, 1<<28); err != nil || m.Cols() != 16384 {
		t.Fatalf("DecodeMat allowed 2^28 pixels: %v, %d columns", err, m.Cols())
	}
	m.Close()
	m = gocv.NewMat()
	if grew := peakRSS(t, "self") - before; grew < 200<<20 {
		t.Fatalf("peak RSS grew by only %d MiB decoding 16384x16384: the measurement is blind", grew>>20)
	}
}

func TestRecordBadOutput(t *testing.T) {
	for _, out := range []string{"x.gif", "noext"} {
		if _, err := Record(context.Background(), RecordConfig{Client: Config{Hub: "127.0.0.1:1", Channel: "x"}, Out: out}); err == nil {
			t.Errorf("Record to %q: no error", out)
		}
	}
}

func TestDecodeMatRaw(t *testing.T) {
	px := make([]byte, 4*2*3)
	for i := 0; i < len(px); i += 3 {
		px[i], px[i+1], px[i+2] = 10, 20, 30
	}
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecRaw, ElemType: protocol.ElemUint8, Channels: 3, Width: 4, Height: 2}, Payload: px}
	m := gocv.NewMat()
	defer m.Close()
	if err := DecodeMat(&f, &m); err != nil {
		t.Fatal(err)
	}
	px[0] = 99 // the Mat must not alias the payload
	if m.Cols() != 4 || m.Rows() != 2 || m.Channels() != 3 || m.GetVecbAt(1, 3)[2] != 30 || m.GetVecbAt(0, 0)[0] != 10 {
		t.Fatalf("decoded %dx%dx%d %v", m.Cols(), m.Rows(), m.Channels(), m.GetVecbAt(0, 0))
	}
	bad := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG}, Payload: []byte{0xFF, 0xD8, 1, 2}}
	if err := DecodeMat(&bad, &m); err == nil {
		t.Fatal("DecodeMat accepted a broken JPEG")
	}
}
