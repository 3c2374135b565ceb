package testcam_test

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"os"
	"os/exec"
	"testing"
	"time"

	"framehub/internal/testcam"
	"framehub/internal/testutil"
	"framehub/protocol"
)

func TestMain(m *testing.M) { os.Exit(testutil.Check(m.Run())) }

// read runs ffmpeg on the camera for n frames and returns the time each
// frame says it was made and when it came out of ffmpeg.
func read(t *testing.T, ffmpeg, url string, n int) (made, got []time.Time, err error) {
	t.Helper()
	// vfr: ffmpeg's default for the mjpeg muxer keeps a constant rate and
	// repeats a frame when the camera's clock runs late under load, which
	// would read as a frame made no later than the one before; vfr never
	// repeats one (and drops one that would share its time with another).
	cmd := exec.Command(ffmpeg, "-v", "error", "-rtsp_transport", "tcp", "-timeout", "2000000", "-i", url,
		"-frames:v", "20", "-fps_mode", "vfr", "-q:v", "3", "-f", "mjpeg", "-")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }() // by PID
	mr := protocol.NewMJPEGReader(out, protocol.MJPEGOptions{MaxJPEG: 4 << 20})
	for len(made) < n {
		p, rerr := mr.Next()
		if rerr != nil {
			cmd.Wait()
			return made, got, fmt.Errorf("ffmpeg: %v: %s", rerr, bytes.TrimSpace(stderr.Bytes()))
		}
		now := time.Now()
		img, derr := jpeg.Decode(bytes.NewReader(p.JPEG))
		if derr != nil {
			t.Fatalf("frame %d does not decode: %v", len(made), derr)
		}
		at, ok := testcam.Timecode(img)
		if !ok {
			t.Fatalf("frame %d carries no timecode", len(made))
		}
		made, got = append(made, at), append(got, now)
	}
	return made, got, nil
}

// TestCamera streams H.264 over RTSP whose frames say when they were made,
// then drops (stopped: refused), comes back on the same port, goes silent
// (paused: no answer) and comes back again.
func TestCamera(t *testing.T) {
	ffmpeg := testutil.RequireTool(t, "ffmpeg")
	cam := testutil.Camera(t, testcam.Options{Size: "320x180", FPS: 15, Timecode: true})
	made, got, err := read(t, ffmpeg, cam.URL(), 10)
	if err != nil {
		t.Fatalf("read the camera: %v", err)
	}
	for i := range made {
		if age := got[i].Sub(made[i]); age < -50*time.Millisecond || age > 5*time.Second {
			t.Errorf("frame %d is %v old by its timecode", i, age)
		}
		if i > 0 && !made[i].After(made[i-1]) {
			t.Errorf("frame %d was made at %v, not after frame %d (%v)", i, made[i], i-1, made[i-1])
		}
	}
	port := cam.Port()
	cam.Stop()
	if _, _, err := read(t, ffmpeg, cam.URL(), 1); err == nil {
		t.Fatal("the stopped camera still streams")
	}
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	if cam.Port() != port {
		t.Fatalf("restarted on port %d; want %d", cam.Port(), port)
	}
	if _, _, err := read(t, ffmpeg, cam.URL(), 3); err != nil {
		t.Fatalf("the restarted camera: %v", err)
	}
	if err := cam.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, _, err := read(t, ffmpeg, cam.URL(), 1); err == nil {
		t.Fatal("the paused camera still streams")
	}
	t.Logf("ffmpeg gave up on the paused camera after %v", time.Since(start).Round(time.Millisecond))
	if err := cam.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := read(t, ffmpeg, cam.URL(), 3); err != nil {
		t.Fatalf("the resumed camera: %v", err)
	}
}

// TestTimecodeRefusesOtherPictures: a picture without the grid is no time.
func TestTimecodeRefusesOtherPictures(t *testing.T) {
	img, err := jpeg.Decode(bytes.NewReader(testutil.JPEG(320, 180, 3)))
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := testcam.Timecode(img); ok {
		t.Fatalf("a gradient reads as %v", at)
	}
}
