package publisher

import (
	"bytes"
	"context"
	"image/jpeg"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/testcam"
	"framehub/internal/testutil"
	"framehub/protocol"
)

func TestFFmpegQScale(t *testing.T) {
	for _, c := range []struct{ quality, want int }{
		{100, 1}, {95, 1}, {90, 2}, {80, 3}, {75, 4}, {70, 5}, {60, 6}, {50, 8}, {25, 16}, {10, 31}, {1, 31}, {0, 31}, {200, 1},
	} {
		if got := ffmpegQScale(c.quality); got != c.want {
			t.Errorf("quality %d: -q:v %d; want %d", c.quality, got, c.want)
		}
	}
}

func TestFFmpegArgs(t *testing.T) {
	for _, c := range []struct {
		name, url string
		cfg       FFmpegConfig
		probe     bool
		has, not  []string
	}{
		{name: "rtsp", url: "rtsp://cam/s", cfg: FFmpegConfig{Quality: 80},
			has: []string{"-rtsp_transport tcp -timeout 4000000", "-timeout 4000000 -flags low_delay -probesize 32 -analyzeduration 0",
				"-i rtsp://cam/s", "-fps_mode passthrough -enc_time_base -1", "-c:v mjpeg -q:v 3 -qmin 1", "-f mjpeg pipe:1"},
			not: []string{"-vf", "-r ", "nobuffer"}},
		{name: "probing", url: "rtsp://cam/s", probe: true, not: []string{"-probesize"}},
		{name: "http", url: "http://cam/video.mp4", has: []string{"-rw_timeout 4000000 -re -flags low_delay -i"}, not: []string{"rtsp_transport", "-probesize", "nobuffer"}},
		{name: "width", url: "rtsp://c", cfg: FFmpegConfig{Width: 640}, has: []string{"-vf scale=640:-2"}},
		{name: "height", url: "rtsp://c", cfg: FFmpegConfig{Height: 360}, has: []string{"-vf scale=-2:360"}},
		{name: "both", url: "rtsp://c", cfg: FFmpegConfig{Width: 320, Height: 200}, has: []string{"-vf scale=320:200"}},
		{name: "fps cap", url: "rtsp://c", cfg: FFmpegConfig{FPS: 7.5}, has: []string{"-fps_mode vfr -r 7.5"}, not: []string{"passthrough"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(ffmpegArgs(c.url, c.cfg, 4*time.Second, c.probe), " ")
			for _, h := range c.has {
				if !strings.Contains(got, h) {
					t.Errorf("args %q lack %q", got, h)
				}
			}
			for _, n := range c.not {
				if strings.Contains(got, n) {
					t.Errorf("args %q have %q", got, n)
				}
			}
		})
	}
}

// TestFFmpegRedactsCredentials: ffmpeg prints the URL as given; what it
// prints reaches logs and the hub only without the password.
func TestFFmpegRedactsCredentials(t *testing.T) {
	url := "rtsp://admin:s3cret@10.0.0.9:554/stream?token=abc"
	r := redactor(url)
	for _, line := range []string{
		url + ": Connection refused",
		"[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized (admin:s3cret)",
	} {
		got := r(line)
		if strings.Contains(got, "s3cret") || strings.Contains(got, "abc") {
			t.Errorf("%q became %q", line, got)
		}
	}
	if got := redactor("rtsp://cam/s")("rtsp://cam/s: refused"); got != "rtsp://cam/s: refused" {
		t.Errorf("a URL without credentials changed: %q", got)
	}
}

// TestRelayWithoutFFmpeg: a missing ffmpeg is one clear error.
func TestRelayWithoutFFmpeg(t *testing.T) {
	_, err := NewRelay(context.Background(), RelayConfig{Source: "rtsp://127.0.0.1:1/cam",
		FFmpeg: &FFmpegConfig{Path: filepath.Join(t.TempDir(), "ffmpeg")}, Sender: SenderConfig{Hub: "127.0.0.1:1", Channel: "cam"}})
	if err == nil || !strings.Contains(err.Error(), "needs ffmpeg") || !strings.Contains(err.Error(), "apt install ffmpeg") {
		t.Fatalf("NewRelay without ffmpeg: %v", err)
	}
}

// TestRelayCannotOpenCamera: a camera that refuses is an error at start,
// with ffmpeg's reason.
func TestRelayCannotOpenCamera(t *testing.T) {
	testutil.RequireTool(t, "ffmpeg")
	cam := testutil.Camera(t, testcam.Options{Size: "160x90", FPS: 10})
	cam.Stop()
	_, err := NewRelay(context.Background(), RelayConfig{Source: cam.URL(), FFmpeg: &FFmpegConfig{},
		Sender: SenderConfig{Hub: "127.0.0.1:1", Channel: "cam"}})
	if err == nil || !strings.Contains(err.Error(), "cannot open stream rtsp://") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("NewRelay on a stopped camera: %v", err)
	}
	if n := ffmpegChildren(t); n != 0 {
		t.Fatalf("%d ffmpeg children left", n)
	}
}

// ffmpegChildren counts this process's children named ffmpeg.
func ffmpegChildren(t *testing.T) int {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	return len(testutil.Children(os.Getpid(), "ffmpeg"))
}

// TestRelayRTSPCameraDropsAndReturns publishes the test IP camera through
// ffmpeg and takes it away twice: stopped (its connections close) and
// paused (silent, connections open). Each time the relay says the source
// is reconnecting or stalled, logs it once, and streams again when the
// camera is back; ffmpeg never outlives the relay.
func TestRelayRTSPCameraDropsAndReturns(t *testing.T) {
	testutil.RequireTool(t, "ffmpeg")
	cam := testutil.Camera(t, testcam.Options{Size: "320x180", FPS: 15, Timecode: true})
	h := hubtest.Start(t, hub.Config{})
	_, in := hubtest.Subscribe(t, h.Addr, "cam", "")
	var logs testutil.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	const timeout = 500 * time.Millisecond
	r, err := NewRelay(context.Background(), RelayConfig{Source: cam.URL(), FFmpeg: &FFmpegConfig{Quality: 70, Width: 160},
		SourceTimeout: timeout, Logger: log, Sender: SenderConfig{Hub: h.URL, Channel: "cam"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() {
		stop()
		r.Close()
	})

	// fresh waits for a frame made by the camera after since, and returns
	// when it was made.
	fresh := func(since time.Time, what string) time.Time {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case f, ok := <-in:
				if !ok {
					t.Fatal("subscription ended")
				}
				if f.Width != 160 || f.Height != 90 {
					t.Fatalf("frame %dx%d; want 160x90 (scaled by ffmpeg)", f.Width, f.Height)
				}
				img, err := jpeg.Decode(bytes.NewReader(f.Payload))
				if err != nil {
					t.Fatalf("frame does not decode: %v", err)
				}
				if at, ok := testcam.Timecode(img); ok && at.After(since) {
					t.Logf("%s: a frame %v after", what, time.Since(since).Round(time.Millisecond))
					return at
				}
			case <-deadline:
				t.Fatalf("%s: no fresh frame within 20 s (state %q)", what, r.Stats().SourceState)
			}
		}
	}
	state := func(want string) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, "source "+want, func() bool { return r.Stats().SourceState == want })
	}
	fresh(time.Now(), "first")
	state(protocol.SourceLive)

	cam.Stop()
	state(protocol.SourceReconnecting)
	if s := r.Stats(); !strings.Contains(s.SourceError, "refused") && !strings.Contains(s.SourceError, "ffmpeg") {
		t.Errorf("reconnecting because of %q", s.SourceError)
	}
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	firstKept(t, fresh(time.Now(), "camera restarted"), cam)
	state(protocol.SourceLive)

	if err := cam.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	state(protocol.SourceStalled)
	t.Logf("stalled %v after the camera went silent (timeout %v)", time.Since(paused).Round(time.Millisecond), timeout)
	state(protocol.SourceReconnecting)
	if err := cam.Resume(); err != nil {
		t.Fatal(err)
	}
	fresh(time.Now(), "camera resumed")

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := ffmpegChildren(t); n != 0 {
		t.Fatalf("%d ffmpeg children outlived Run", n)
	}
	text := logs.String()
	count := func(msg string) int { return strings.Count(text, `msg="`+msg+`"`) }
	if count("source lost; reconnecting") != 1 || count("source stalled") != 1 || count("stalled source reopened") != 1 || count("source back") != 2 {
		t.Errorf("want each change logged once: lost 1, stalled 1, reopened 1, back 2; got\n%s", text)
	}
	if s := r.Stats(); s.SourceLosses != 2 {
		t.Errorf("%d losses counted; want 2", s.SourceLosses)
	}
	if strings.Count(text, `msg="source error"`) > 2 {
		t.Errorf("source errors logged more than once per 10 s:\n%s", text)
	}
}

// firstKept fails the test unless the first frame shown after a camera
// restarted (made at shown) is from its stream's first key frame interval:
// a reopen must not throw away the key frame its probe read and wait for
// the next one (as "-fflags nobuffer" made it do: a second, at the test
// camera's one key frame a second).
func firstKept(t *testing.T, shown time.Time, cam *testcam.Camera) {
	t.Helper()
	first := cam.FirstFrame()
	if first.IsZero() {
		t.Fatal("the camera did not say when it made its first frame")
	}
	if d := shown.Sub(first); d > 500*time.Millisecond {
		t.Errorf("the first frame shown after the camera returned was made %v after its stream's first key frame; want it from the first half second (its first key frame kept)", d.Round(time.Millisecond))
	} else {
		t.Logf("the first frame shown after the camera returned was made %v after its stream began", d.Round(time.Millisecond))
	}
}
