package main

import (
	"bytes"
	"image/jpeg"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testcam"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// RTSP cameras that drop and return, read by framehub publish as users run
// it: the static binary (ffmpeg decodes) and the OpenCV one (either
// decoder), against the test IP camera stopped and started again.

// freshFrom waits for a frame on in that the camera made after since, and
// checks its size.
func freshFrom(t *testing.T, in <-chan protocol.Frame, since time.Time, w, h uint32, what string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case f, ok := <-in:
			if !ok {
				t.Fatalf("%s: the subscription ended", what)
			}
			if f.Width != w || f.Height != h {
				t.Fatalf("%s: a %dx%d frame; want %dx%d", what, f.Width, f.Height, w, h)
			}
			img, err := jpeg.Decode(bytes.NewReader(f.Payload))
			if err != nil {
				t.Fatalf("%s: a frame that does not decode: %v", what, err)
			}
			if at, ok := testcam.Timecode(img); ok && at.After(since) {
				t.Logf("%s: a frame made %v after", what, time.Since(since).Round(time.Millisecond))
				return
			}
		case <-deadline:
			t.Fatalf("%s: no frame made after %v within 30 s", what, since.Format("15:04:05.000"))
		}
	}
}

// sourceState waits until the hub at addr lists channel with state, and
// returns how long that took.
func sourceState(t *testing.T, addr, channel, state string) time.Duration {
	t.Helper()
	start := time.Now()
	testutil.Eventually(t, 15*time.Second, channel+" listed as "+state, func() bool {
		for _, in := range listChannels(t, addr) {
			if in.Name == channel && in.SourceState == state {
				return true
			}
		}
		return false
	})
	return time.Since(start)
}

// dropAndReturn publishes cam with bin and args, then takes the camera
// away twice: stopped (its connections close) and paused (silent, its
// connections open). Each time the hub lists the source as reconnecting
// or stalled, the publisher logs the loss once, and frames flow again
// when the camera is back. It returns the publisher.
func dropAndReturn(t *testing.T, bin string, cam *testcam.Camera, channel string, args ...string) *proc {
	t.Helper()
	_, addr := startHub(t, nocgoBin)
	_, in := hubtest.Subscribe(t, addr, channel, "")
	const timeout = 500 * time.Millisecond
	p := start(t, bin, nil, append([]string{"publish", "--hub", addr, "--channel", channel, "--source", cam.URL(),
		"--width", "160", "--quality", "70", "--source-timeout", timeout.String(), "--quiet"}, args...)...)
	freshFrom(t, in, time.Now(), 160, 90, "first")
	sourceState(t, addr, channel, protocol.SourceLive)

	cam.Stop()
	t.Logf("stopped camera listed as reconnecting after %v", sourceState(t, addr, channel, protocol.SourceReconnecting).Round(time.Millisecond))
	p.waitLog(t, regexp.MustCompile(`msg="source lost; reconnecting"`), 15*time.Second)
	// The camera stays away for 2 s, long enough for a reopen backoff to
	// grow; its address is polled meanwhile instead, and it is opened once
	// it answers (once, or twice if it answered before it could serve).
	time.Sleep(2 * time.Second)
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	freshFrom(t, in, time.Now(), 160, 90, "camera back")
	sourceState(t, addr, channel, protocol.SourceLive)
	back := p.waitLog(t, regexp.MustCompile(`msg="source back" [^\n]*opens=(\d+)`), 15*time.Second)
	if n, _ := strconv.Atoi(back[1]); n < 1 || n > 2 {
		t.Errorf("the camera was opened %d times while it was away and as it came back; want 1 or 2 (its address polled meanwhile)", n)
	}

	if err := cam.Pause(); err != nil {
		t.Fatal(err)
	}
	// Shown within the timeout, give or take the watch's quarter-timeout
	// tick, the notice's way to the hub and this poll.
	t.Logf("silent camera listed as stalled after %v (--source-timeout %v)",
		sourceState(t, addr, channel, protocol.SourceStalled).Round(time.Millisecond), timeout)
	if err := cam.Resume(); err != nil {
		t.Fatal(err)
	}
	freshFrom(t, in, time.Now(), 160, 90, "camera resumed")
	sourceState(t, addr, channel, protocol.SourceLive)
	p.waitLog(t, regexp.MustCompile(`(?s)msg="source back".*msg="source back"`), 15*time.Second)
	return p
}

// structuredOnly fails the test if the process wrote anything on stderr
// but log lines: no decoder chatter.
func structuredOnly(t *testing.T, p *proc) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(p.errText()), "\n") {
		if !strings.HasPrefix(line, "time=") {
			t.Errorf("a line on stderr that is not a log line: %q", line)
		}
	}
	if n := strings.Count(p.errText(), `msg="source lost; reconnecting"`); n != 1 {
		t.Errorf("the loss logged %d times; want once", n)
	}
}

// TestPublishRTSPWithoutOpenCV: the static binary reads an RTSP camera
// through ffmpeg, scaled to --width, survives the camera dropping, and its
// ffmpeg dies with it even when it is killed with SIGKILL.
func TestPublishRTSPWithoutOpenCV(t *testing.T) {
	testutil.RequireTool(t, "ffmpeg")
	cam := testutil.Camera(t, testcam.Options{Size: "320x180", FPS: 15, Timecode: true})
	p := dropAndReturn(t, nocgoBin, cam, "cam")
	structuredOnly(t, p)
	kids := testutil.Children(p.cmd.Process.Pid, "ffmpeg")
	if len(kids) != 1 {
		t.Fatalf("publish runs %d ffmpeg processes; want 1", len(kids))
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	testutil.Eventually(t, 5*time.Second, "ffmpeg to die with its publisher", func() bool {
		return !testutil.Alive(kids[0])
	})
}
