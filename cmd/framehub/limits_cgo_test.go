//go:build cgo

package main

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// Pictures a client makes past what its hub takes (issue 22): valid
// JPEGs of an extreme aspect ratio, resized to a width, become pictures
// of 640×320000 (OpenCV's JPEG encoder throws, and gocv lets that abort
// the process) or 640×64000 (the hub refuses it with 1007, and the client
// reconnected for every frame). Each must cost its frame only.

// tallMix is a channel's frames as a hostile publisher would send them:
// ordinary 320×240 pictures, each followed by valid, tiny JPEGs of each
// of the heights given, two pixels wide.
func tallMix(n int, heights ...int) (frames []protocol.Frame, tall int) {
	good := hubtest.JPEGFrame(320, 240, testutil.JPEG(320, 240, 1))
	for len(frames) < n {
		frames = append(frames, good)
		for _, h := range heights {
			frames = append(frames, hubtest.JPEGFrame(2, h, testutil.JPEG(2, h, h)))
			tall++
		}
	}
	return frames, tall
}

// TestProcessSurvivesPicturesPastTheLimits runs framehub process --step
// resize=640 on such a channel: it stays up and connected, publishes the
// ordinary frames resized, and counts the others as failed. Before, the
// 2×1000 JPEGs aborted it, and the 2×200 ones made it reconnect for each.
func TestProcessSurvivesPicturesPastTheLimits(t *testing.T) {
	for _, h := range []int{1000, 200} {
		t.Run("2x"+strconv.Itoa(h), func(t *testing.T) { processTall(t, h) })
	}
}

func processTall(t *testing.T, height int) {
	bin := cgoBinary(t)
	_, addr := startHub(t, nocgoBin)
	p := start(t, bin, nil, "process", "--hub", addr, "--in", "cam", "--out", "small", "--step", "resize=640",
		"--json", "--quiet", "--duration", "6s")
	_, out := hubtest.Subscribe(t, addr, "small", "")
	waitSubscribers(t, addr, 2)
	frames, tall := tallMix(45, height)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Slow enough that the worker takes every frame, even on a busy machine.
	pushFrames(t, ctx, addr, "cam", 100*time.Millisecond, frames)
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("process: %v (exit status %d)", err, exitCode(err))
	}
	var st struct {
		Received, Skipped, Published, Failed uint64
		SendErrors                           uint64 `json:"send_errors"`
	}
	if err := json.Unmarshal([]byte(p.outText()), &st); err != nil {
		t.Fatalf("process --json: %v %q", err, p.outText())
	}
	if st.SendErrors != 0 || st.Published == 0 || st.Failed == 0 || st.Failed > uint64(tall) {
		t.Fatalf("process: %+v; want the ordinary frames published, up to %d failed, no send errors (reconnections)", st, tall)
	}
	if got := regexp.MustCompile(`msg="connected to hub"`).FindAllString(p.errText(), -1); len(got) != 1 {
		t.Errorf("process connected to the output %d times; want once", len(got))
	}
	readToLast(t, addr, "small", out, int(st.Published))
	t.Logf("process: %+v", st)
}

// TestPublishSurvivesPicturesPastTheLimits: framehub publish --width 640
// reading such a stream from stdin (decoded, since it resizes) sends the
// ordinary frames and counts the others as failed, without reconnecting.
func TestPublishSurvivesPicturesPastTheLimits(t *testing.T) {
	bin := cgoBinary(t)
	_, addr := startHub(t, nocgoBin)
	_, in := hubtest.Subscribe(t, addr, "cam", "")
	frames, tall := tallMix(30, 1000, 200)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startWithStdin(t, bin, pr, "publish", "--hub", addr, "--channel", "cam", "--source", "-", "--width", "640", "--quiet")
	pr.Close()
	// Paced, as a camera would send them, so that the sender takes every
	// frame.
	for _, f := range frames {
		if _, err := pw.Write(f.Payload); err != nil {
			t.Fatalf("stdin: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pw.Close()
	if err := p.wait(t, 20*time.Second); err != nil {
		t.Fatalf("publish: %v (exit status %d)", err, exitCode(err))
	}
	m := regexp.MustCompile(`captured=(\d+) sent=(\d+) skipped=(\d+) failed=(\d+) .*reconnects=(\d+)`).FindStringSubmatch(p.errText())
	if m == nil {
		t.Fatalf("no summary line:\n%s", p.errText())
	}
	sent, _ := strconv.Atoi(m[2])
	failed, _ := strconv.Atoi(m[4])
	if sent == 0 || failed == 0 || failed > tall || m[5] != "0" {
		t.Fatalf("publish: %s; want the ordinary frames sent, up to %d failed, no reconnects", m[0], tall)
	}
	readToLast(t, addr, "cam", in, sent)
	t.Logf("publish: %s", m[0])
}

// readToLast reads the channel's frames up to the last one the hub holds
// (at most sent of them: a subscriber on a loaded machine may be skipped
// past some, as the newest-frame rule says) and fails on any that is not
// an ordinary 640x480 picture.
func readToLast(t *testing.T, addr, channel string, in <-chan protocol.Frame, sent int) {
	t.Helper()
	var last uint64
	for _, c := range listChannels(t, addr) {
		if c.Name == channel {
			last = c.Seq
		}
	}
	if last == 0 {
		t.Fatalf("the hub lists no frame on %s", channel)
	}
	for i := 0; i < sent; i++ {
		f := hubtest.Next(t, in, 5*time.Second)
		if f.Width != 640 || f.Height != 480 {
			t.Fatalf("frame %d is %dx%d; want only the ordinary frames, 640x480", f.Seq, f.Width, f.Height)
		}
		if f.Seq == last {
			return
		}
	}
	t.Fatalf("%d frames read without the hub's last, %d", sent, last)
}
