package main

import (
	"bytes"
	"context"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// publish in the build without OpenCV: Motion JPEG from stdin or a URL,
// passed through as it is.

// startWithStdin starts bin as start does, with stdin read from in (an
// *os.File is handed to the child as it is: a pipe stays a pipe).
func startWithStdin(t *testing.T, bin string, in io.Reader, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = in
	return startCmd(t, cmd)
}

// collect reads frames from in until one numbered last arrives or d
// passes.
func collect(in <-chan protocol.Frame, last uint64, d time.Duration) []protocol.Frame {
	var got []protocol.Frame
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-in:
			if !ok {
				return got
			}
			got = append(got, f)
			if f.Seq >= last {
				return got
			}
		case <-deadline:
			return got
		}
	}
}

// TestPublishStdinWithoutOpenCV pipes real ffmpeg into the static build's
// publish, as the README says: ffmpeg -re … -f mjpeg - | framehub publish
// --source -. Every frame arrives, 640x360, in order, and publish ends by
// itself, with status 0, when ffmpeg does.
func TestPublishStdinWithoutOpenCV(t *testing.T) {
	ffmpeg := testutil.RequireTool(t, "ffmpeg")
	_, addr := startHub(t, nocgoBin)
	_, in := hubtest.Subscribe(t, addr, "cam", "")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ff := exec.Command(ffmpeg, "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "3", "-f", "mjpeg", "-")
	ff.Stdout = pw
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ff.Process.Kill(); ff.Wait() }) // by PID
	pw.Close()
	p := startWithStdin(t, nocgoBin, pr, "publish", "--hub", addr, "--channel", "cam", "--source", "-")
	pr.Close()
	got := collect(in, 90, 20*time.Second)
	if err := ff.Wait(); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("publish did not end well when stdin ended: %v", err)
	}
	var prev uint64
	for _, f := range got {
		if f.Seq <= prev || f.Width != 640 || f.Height != 360 {
			t.Fatalf("frame seq %d after %d, %dx%d; want increasing seqs of 640x360", f.Seq, prev, f.Width, f.Height)
		}
		prev = f.Seq
	}
	if len(got) < 85 || prev != 90 {
		t.Fatalf("subscriber got %d frames, the last %d; want about 90, ending with 90", len(got), prev)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(got[len(got)-1].Payload)); err != nil || cfg.Width != 640 {
		t.Fatalf("the last frame does not decode: %v", err)
	}
	m := regexp.MustCompile(`captured=(\d+) sent=(\d+) skipped=(\d+)`).FindStringSubmatch(p.errText())
	if m == nil || m[1] != "90" {
		t.Fatalf("publish's summary: %v; want 90 captured\n%s", m, p.errText())
	}
	if !regexp.MustCompile(`cam  captured +\d+\.\d fps  sent +\d+\.\d fps .* 640x360 .* skipped \d+`).MatchString(p.errText()) {
		t.Errorf("no status line:\n%s", p.errText())
	}
	t.Logf("stdin: %d frames seen by the subscriber; publish says %s", len(got), m[0])
}

// TestPublishRelaysMJPEGURL relays one hub's stream.mjpeg to another with
// the static build: the JPEGs arrive byte for byte, with the capture
// times the first hub's publisher stamped (its parts' X-Capture-Time).
func TestPublishRelaysMJPEGURL(t *testing.T) {
	_, a := startHub(t, nocgoBin)
	_, b := startHub(t, nocgoBin)
	frames := cameraFrames(320, 240, 400)
	const epoch = int64(1_600_000_000_000_000_000)
	for i := range frames {
		frames[i].CaptureTime = epoch + int64(i+1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hubtest.Publish(t, ctx, a, "cam", 25*time.Millisecond, frames) }()
	defer func() { cancel(); <-done }()
	_, in := hubtest.Subscribe(t, b, "relay", "")
	p := start(t, nocgoBin, nil, "publish", "--hub", b, "--channel", "relay", "--source", "http://"+a+"/channels/cam/stream.mjpeg",
		"--duration", "3s", "--quiet")
	got := collect(in, 1<<62, 2*time.Second)
	if len(got) < 20 {
		t.Fatalf("hub b got %d relayed frames in 2 s; want about 80", len(got))
	}
	for _, f := range got {
		k := f.CaptureTime - epoch - 1
		if k < 0 || k >= int64(len(frames)) {
			t.Fatalf("relayed frame %d has capture time %d; want the source's, %d + its number", f.Seq, f.CaptureTime, epoch)
		}
		if !bytes.Equal(f.Payload, frames[k].Payload) || f.Width != 320 || f.Height != 240 {
			t.Fatalf("relayed frame %d differs from source frame %d", f.Seq, k+1)
		}
	}
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("publish after --duration: %v", err)
	}
	t.Logf("relayed %d frames in 2 s with their bytes and capture times", len(got))
}

// TestPublishWithoutOpenCVSaysWhatItNeeds: the static build's publish
// refuses, in one line, what needs OpenCV or ffmpeg, and says so; a camera
// that cannot be opened is one line too.
func TestPublishWithoutOpenCVSaysWhatItNeeds(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--channel", "x"}, "--source 0 needs OpenCV"},
		{[]string{"--channel", "x", "--source", "test:320x240"}, "needs OpenCV"},
		{[]string{"--channel", "x", "--source", "rtsp://cam/stream", "--filter", "overlay"}, "--filter needs OpenCV"},
		{[]string{"--channel", "x", "--source", "rtsp://cam/stream", "--ffmpeg", "/nonexistent/ffmpeg"}, "needs ffmpeg"},
		{[]string{"--channel", "x", "--source", "rtsp://127.0.0.1:1/cam"}, "cannot open stream rtsp://127.0.0.1:1/cam"},
		{[]string{"--channel", "x", "--source", "rtsp://cam/s", "--decoder", "opencv"}, "--decoder opencv needs the build with OpenCV"},
		{[]string{"--channel", "x", "--source", "-", "--width", "640"}, "--width needs OpenCV"},
		{[]string{"--channel", "x", "--source", "-", "--filter", "gray"}, "--filter needs OpenCV"},
		{[]string{"--channel", "x", "--source", "http://127.0.0.1:1/s.mjpeg", "--quality", "50"}, "--quality needs OpenCV"},
		{[]string{"--channel", "x", "--source", "-", "--codec", "raw"}, "--codec needs OpenCV"},
		{[]string{"--channel", "x", "--source", "-", "--loop"}, "--loop repeats a video file"},
		{[]string{"--channel", "x", "--source", "http://127.0.0.1:1/s.mjpeg"}, "connection refused"},
		{[]string{"--channel", "x/y", "--source", "-"}, "invalid channel name"},
	} {
		cmd := exec.Command(nocgoBin, append([]string{"publish"}, c.args...)...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if exitCode(err) != 1 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("framehub publish %v: exit %d, %q; want status 1 and one line saying %q", c.args, exitCode(err), out, c.want)
		}
	}
	// No ffmpeg on PATH at all: the RTSP camera is refused at start, with
	// how to get ffmpeg, not reconnected to forever.
	cmd := exec.Command(nocgoBin, "publish", "--channel", "x", "--source", "rtsp://127.0.0.1:1/cam")
	cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if exitCode(err) != 1 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 ||
		!strings.Contains(string(out), "needs ffmpeg") || !strings.Contains(string(out), "apt install ffmpeg") {
		t.Errorf("publish of an RTSP camera without ffmpeg on PATH: exit %d, %q; want status 1 and one line saying how to get ffmpeg", exitCode(err), out)
	}
}

// TestPublishStdinStopsWhenSilent: a pipe that never writes cannot hold
// publish past --duration: its blocked read of stdin is ended.
func TestPublishStdinStopsWhenSilent(t *testing.T) {
	_, addr := startHub(t, nocgoBin)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close() // open and silent until the test ends
	start := time.Now()
	p := startWithStdin(t, nocgoBin, pr, "publish", "--hub", addr, "--channel", "cam", "--source", "-", "--duration", "1s", "--quiet")
	pr.Close()
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("publish on a silent pipe after --duration 1s: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("publish took %v to stop; want about 1 s", d)
	}
}

// TestRelaySkipsJPEGsTheHubRefuses: a relayed stream (stdin, passed
// through without decoding) with JPEGs the hub would refuse between good
// ones, one 20000 pixels wide (past the 16384 per side) and one past the
// hub's --max-pixels: those are skipped and counted, the good ones sent,
// and the connection stays up. Before, each made the hub close the
// connection (1007) and the relay reconnect.
func TestRelaySkipsJPEGsTheHubRefuses(t *testing.T) {
	_, addr := startHub(t, nocgoBin, "--max-pixels", "100000")
	_, in := hubtest.Subscribe(t, addr, "cam", "")
	good, wide, many := testutil.JPEG(320, 240, 1), testutil.JPEG(20000, 2, 2), testutil.JPEG(400, 300, 3)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startWithStdin(t, nocgoBin, pr, "publish", "--hub", addr, "--channel", "cam", "--source", "-", "--quiet")
	pr.Close()
	const rounds = 8
	for range rounds {
		for _, j := range [][]byte{good, wide, many} {
			if _, err := pw.Write(j); err != nil {
				t.Fatalf("stdin: %v", err)
			}
			time.Sleep(40 * time.Millisecond) // a camera's pace: the sender takes every frame
		}
	}
	pw.Close()
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("publish: %v", err)
	}
	m := regexp.MustCompile(`sent=(\d+) skipped=(\d+) failed=(\d+) .*reconnects=(\d+)`).FindStringSubmatch(p.errText())
	if m == nil {
		t.Fatalf("no summary line:\n%s", p.errText())
	}
	sent, _ := strconv.Atoi(m[1])
	skipped, _ := strconv.Atoi(m[2]) // the sender takes the newest: on a busy machine some are overtaken
	failed, _ := strconv.Atoi(m[3])
	if failed == 0 || failed > 2*rounds || sent+skipped+failed != 3*rounds || m[4] != "0" {
		t.Fatalf("publish's summary: %s; want up to %d failed, every JPEG accounted for, 0 reconnects", m[0], 2*rounds)
	}
	for range sent {
		if f := hubtest.Next(t, in, 5*time.Second); f.Width != 320 {
			t.Fatalf("frame %d is %dx%d; want only the good ones", f.Seq, f.Width, f.Height)
		}
	}
	if st, err := hubtest.Stats(addr); err != nil || st.Refused["bad_frame"]+st.Refused["too_many_pixels"] != 0 {
		t.Fatalf("hub refused %v (%v); want nothing refused", st.Refused, err)
	}
}
