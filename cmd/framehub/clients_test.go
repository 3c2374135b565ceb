package main

import (
	"context"
	"errors"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
	"framehub/subscriber"
)

// cameraFrames returns n real w×h JPEG frames: ten different pictures,
// repeated (encoding large ones takes a while).
func cameraFrames(w, h, n int) []protocol.Frame {
	frames := make([]protocol.Frame, n)
	for i := range frames {
		if i < 10 {
			frames[i] = hubtest.JPEGFrame(w, h, testutil.JPEG(w, h, i))
		} else {
			frames[i] = frames[i%10]
		}
	}
	return frames
}

// pushFrames publishes frames at one per interval, numbered from 1 and
// stamped with the time of sending, until all are sent or ctx ends.
func pushFrames(t *testing.T, ctx context.Context, addr, channel string, interval time.Duration, frames []protocol.Frame) {
	t.Helper()
	hubtest.Publish(t, ctx, addr, channel, interval, frames)
}

// waitSubscribers waits until the hub at addr counts n subscribers.
func waitSubscribers(t *testing.T, addr string, n int) {
	t.Helper()
	hubtest.WaitSubscribers(t, addr, n, 15*time.Second)
}

// probeFrames returns how many frames ffprobe decodes from a video file,
// and their size.
func probeFrames(t *testing.T, file string) (n int, size string) {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, "ffprobe"), "-v", "quiet", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0", file).Output()
	f := strings.Split(strings.TrimSpace(string(out)), ",")
	if err != nil || len(f) != 3 {
		return 0, ""
	}
	n, _ = strconv.Atoi(f[2])
	return n, f[0] + "x" + f[1]
}

// exitCode returns a finished process's exit status (-1 if a signal ended it).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

var summaryRE = regexp.MustCompile(`(\d+) frames received, (\d+) written .* (\d+) refused, (\d+) dropped`)

// TestRecordSurvivesKill9: a recording killed with SIGKILL, which no
// program can catch, keeps every frame it had written. On the old code an
// .mp4 killed so was 44 bytes, no frame. The recorder here is the build
// without cgo: .mkv needs no OpenCV.
func TestRecordSurvivesKill9(t *testing.T) {
	frames := cameraFrames(320, 240, 300)
	_, addr := startHub(t, nocgoBin)
	out := filepath.Join(t.TempDir(), "kill.mkv")
	r := start(t, nocgoBin, nil, "record", "--hub", addr, "--channel", "k", "--out", out, "--fps", "10")
	waitSubscribers(t, addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		pushFrames(t, ctx, addr, "k", 100*time.Millisecond, frames)
	}()
	defer func() { cancel(); <-pushed }()
	// Kill it as soon as the file, read while it grows, holds 20 frames.
	var before int
	testutil.Eventually(t, 20*time.Second, "the growing file to decode to 20 frames", func() bool {
		before, _ = probeFrames(t, out)
		return before >= 20
	})
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 10*time.Second)
	cancel()
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	n, size := probeFrames(t, out)
	if n < before || size != "320x240" {
		t.Fatalf("after kill -9 the %d-byte file decodes to %d frames of %s; it held %d before the kill", st.Size(), n, size, before)
	}
	// The file ends with whole frames, or with part of the one being
	// written when the kill came: ffmpeg may say so, and nothing else.
	msg, _ := exec.Command(testutil.RequireTool(t, "ffmpeg"), "-v", "error", "-i", out, "-f", "null", "-").CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(msg)), "\n") {
		if line != "" && !strings.Contains(line, "File ended prematurely") {
			t.Fatalf("ffmpeg decoding the killed recording: %s", msg)
		}
	}
	t.Logf("killed with %d frames visible; the %d-byte file decodes to %d frames", before, st.Size(), n)
}

// TestRecordDiskFull: a recorder that cannot write (here the file size
// limit, ulimit -f, set to 256 KiB for the child: writes past it fail with
// EFBIG as they would with ENOSPC on a full disk) exits non-zero naming
// the error; the file keeps the frames that fit. On the old code: exit 0,
// "N written".
func TestRecordDiskFull(t *testing.T) {
	frames := cameraFrames(640, 480, 200)
	_, addr := startHub(t, nocgoBin)
	out := filepath.Join(t.TempDir(), "full.mkv")
	r := startLimited(t, 256<<10, nocgoBin, "record", "--hub", addr, "--channel", "f", "--out", out, "--fps", "20")
	waitSubscribers(t, addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		pushFrames(t, ctx, addr, "f", 50*time.Millisecond, frames)
	}()
	err := r.wait(t, 20*time.Second)
	cancel()
	<-pushed
	lines := strings.Split(strings.TrimSpace(r.errText()), "\n")
	last := lines[len(lines)-1]
	if exitCode(err) != 1 || !strings.Contains(last, "write "+out+": file too large") {
		t.Fatalf("record on a full disk: %v, last line %q; want exit 1 naming the write error", err, last)
	}
	st, _ := os.Stat(out)
	n, size := probeFrames(t, out)
	if n < 5 || size != "640x480" {
		t.Fatalf("the %d-byte file decodes to %d frames of %s; want the frames that fit", st.Size(), n, size)
	}
	t.Logf("exit %d: %s; the %d-byte file decodes to %d frames", exitCode(err), last, st.Size(), n)
}

// TestWatchSaveSkipsWhatItCannotSave: a raw frame that PNG cannot hold
// (32-bit float) is skipped and counted, and saving goes on; raw 8-bit
// frames are saved as PNG, JPEG as they came. The old code ended watch
// with an error on the float frame.
func TestWatchSaveSkipsWhatItCannotSave(t *testing.T) {
	_, addr := startHub(t, nocgoBin)
	dir := t.TempDir()
	w := start(t, nocgoBin, nil, "watch", "--hub", addr, "--channel", "s", "--count", "4", "--duration", "20s", "--save", dir, "--quiet")
	waitSubscribers(t, addr, 1)
	bgr := make([]byte, 64*48*3)
	for i := 0; i < len(bgr); i += 3 {
		bgr[i], bgr[i+1], bgr[i+2] = 10, 20, 200 // BGR: red
	}
	raw := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecRaw, ElemType: protocol.ElemUint8, Channels: 3, Width: 64, Height: 48}, Payload: bgr}
	float := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecRaw, ElemType: protocol.ElemFloat32, Channels: 1, Width: 4, Height: 4}, Payload: make([]byte, 4*4*4)}
	frames := []protocol.Frame{raw, float, hubtest.JPEGFrame(64, 48, testutil.JPEG(64, 48, 0)), raw}
	pushFrames(t, context.Background(), addr, "s", 50*time.Millisecond, frames)
	if err := w.wait(t, 20*time.Second); err != nil {
		t.Fatalf("watch --save: %v", err)
	}
	got, _ := filepath.Glob(filepath.Join(dir, "*"))
	var names []string
	for _, g := range got {
		names = append(names, filepath.Base(g))
	}
	if want := "s-0000000001.png s-0000000003.jpg s-0000000004.png"; strings.Join(names, " ") != want {
		t.Fatalf("saved %v; want %s", names, want)
	}
	f, err := os.Open(got[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 48 {
		t.Fatalf("saved PNG: %v", err)
	}
	if c := color.RGBAModel.Convert(img.At(5, 5)).(color.RGBA); c.R != 200 || c.G != 20 || c.B != 10 {
		t.Fatalf("saved PNG pixel %v; want the frame's red (200, 20, 10)", c)
	}
	if !strings.Contains(w.errText(), "frames not saved") || !strings.Contains(w.errText(), "count=1") {
		t.Fatalf("watch did not report the unsaved frame:\n%s", w.errText())
	}
}

// TestSaveFrameChecksPictureSize: a consistent 16384x16384 JPEG is not
// saved (whoever opens it would allocate 256 MiB), and nothing is decoded
// to find out.
func TestSaveFrameChecksPictureSize(t *testing.T) {
	dir := t.TempDir()
	f := subscriber.Frame{Frame: hubtest.JPEGFrame(16384, 16384, testutil.BombJPEG(16384, 16384))}
	err := saveFrame(dir, "c", &f)
	if !errors.Is(err, errNotSaved) || !errors.Is(err, protocol.ErrPixels) {
		t.Fatalf("saveFrame of a 16384x16384 JPEG = %v; want errNotSaved and ErrPixels", err)
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "*")); len(got) != 0 {
		t.Fatalf("saveFrame wrote %v", got)
	}
}
