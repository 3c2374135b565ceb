//go:build cgo

package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

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
	for _, ext := range []string{".avi", ".mp4"} {
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
			rctx, rcancel := context.WithCancel(ctx)
			type result struct {
				st  RecordStats
				err error
			}
			res := make(chan result, 1)
			go func() {
				st, err := Record(rctx, RecordConfig{Client: Config{Hub: base, Channel: "rec"}, Out: out, FPS: 10})
				res <- result{st, err}
			}()
			time.Sleep(300 * time.Millisecond) // let the recorder subscribe
			var wg sync.WaitGroup
			publishSource(t, ctx, &wg, base, "rec", clip)
			wg.Wait() // the file has been published: 20 frames at 10 fps
			time.Sleep(200 * time.Millisecond)
			rcancel() // what Ctrl-C does
			r := <-res
			if r.err != nil {
				t.Fatalf("Record: %v", r.err)
			}
			st := r.st
			if st.Received < 18 || st.Written < 18 || st.Written > 21 || len(st.Files) != 1 {
				t.Fatalf("record stats %+v; want about 20 frames written to one file", st)
			}
			n, w, h := countFrames(t, out)
			if n != int(st.Written) || w != 320 || h != 240 {
				t.Fatalf("OpenCV reads %d frames of %dx%d; want %d of 320x240", n, w, h, st.Written)
			}
			codec, pw, ph, pn := probe(t, out)
			wantCodec := map[string]string{".avi": "mjpeg", ".mp4": "mpeg4"}[ext]
			if codec != wantCodec || pw != 320 || ph != 240 || pn != int(st.Written) {
				t.Fatalf("ffprobe sees %s %dx%d, %d frames; want %s 320x240, %d frames", codec, pw, ph, pn, wantCodec, st.Written)
			}
		})
	}
}

func TestRecordSegments(t *testing.T) {
	addr, _ := runHub(t, "127.0.0.1:0")
	base := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pctx, pcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	publishSource(t, pctx, &wg, base, "seg", "test:160x120")
	defer func() { pcancel(); wg.Wait() }()
	out := filepath.Join(t.TempDir(), "seg.avi")
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
		if want := filepath.Join(filepath.Dir(out), fmt.Sprintf("seg-%04d.avi", i+1)); f != want {
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
