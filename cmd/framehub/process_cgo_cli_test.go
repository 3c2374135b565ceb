//go:build cgo

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
	"framehub/subscriber"
)

// messiFrames returns n frames of OpenCV's sample still with one face.
func messiFrames(t *testing.T, n int) []protocol.Frame {
	t.Helper()
	b, err := os.ReadFile(testutil.RequireFile(t, "/usr/share/doc/opencv-doc/examples/data/messi5.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	frames := make([]protocol.Frame, n)
	for i := range frames {
		frames[i] = hubtest.JPEGFrame(548, 342, b)
	}
	return frames
}

// TestProcessCLI: framehub process finds the face and publishes it, and a
// face event (its rules from a config file); watch --json counts the
// frames with boxes and their labels, and the events, --print-meta prints
// each frame's metadata as a JSON line, and process --json says what it
// did, CPU included.
//
// Each frame goes once the one before has come out of the processor: what
// is tested is what the processor makes of every frame, and face
// detection on a loaded machine can take longer than any fixed frame
// interval (a processor skips the frames it has no time for).
func TestProcessCLI(t *testing.T) {
	bin := cgoBinary(t)
	_, addr := startHub(t, nocgoBin)
	conf := filepath.Join(t.TempDir(), "process.yaml")
	if err := os.WriteFile(conf, []byte("event: [face]\nzone: [\"all:0,0,1,0,1,1,0,1\", \"top:0,0,1,0,1,0.1\"]\nevent-frames: 2/3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, bin, nil, "process", "--hub", addr, "--in", "cam", "--out", "cam-faces", "--step", "faces", "--step", "draw",
		"--config", conf, "--json", "--quiet")
	w := start(t, nocgoBin, nil, "watch", "--hub", addr, "--channel", "cam-faces", "--count", "10", "--duration", "60s", "--json", "--quiet")
	m := start(t, nocgoBin, nil, "watch", "--hub", addr, "--channel", "cam-faces", "--count", "3", "--duration", "60s", "--print-meta", "--quiet")
	_, out := hubtest.Subscribe(t, addr, "cam-faces", "")
	waitSubscribers(t, addr, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hubtest.PublishPaced(t, ctx, addr, "cam", messiFrames(t, 12), func(seq uint64) bool {
		f := hubtest.Next(t, out, 20*time.Second)
		for f.Seq < seq { // an older frame's result
			f = hubtest.Next(t, out, 20*time.Second)
		}
		return true
	})
	for _, c := range []*proc{w, m} {
		if err := c.wait(t, 20*time.Second); err != nil {
			t.Fatalf("%v: %v\n%s", c.cmd.Args, err, c.errText())
		}
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.wait(t, 20*time.Second); err != nil {
		t.Fatalf("process after SIGINT: %v\n%s", err, p.errText())
	}
	var sum subscriber.Summary
	if err := json.Unmarshal([]byte(w.outText()), &sum); err != nil || sum.Frames != 10 || sum.Boxes.Frames != 10 || sum.Boxes.Labels["face"] != 10 {
		t.Fatalf("watch --json: %v %s; want 10 frames, each with one face box", err, w.outText())
	}
	if sum.Events.Events != 1 || sum.Events.Labels["face"] != 1 || sum.Events.Ended != 0 || sum.Events.Frames < 8 {
		t.Fatalf("watch --json: events %+v; want one face event (in zone all, none in top), going on from the second frame", sum.Events)
	}
	sc := bufio.NewScanner(strings.NewReader(m.outText()))
	lines := 0
	for sc.Scan() {
		var line struct {
			Seq  uint64          `json:"seq"`
			Meta json.RawMessage `json:"meta"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Seq == 0 {
			t.Fatalf("watch --print-meta line %q: %v", sc.Text(), err)
		}
		if boxes, prob := protocol.ParseBoxes(line.Meta); len(boxes) != 1 || prob != nil || !strings.Contains(string(line.Meta), `"steps"`) {
			t.Fatalf("watch --print-meta: metadata %s; want one face and the steps", line.Meta)
		}
		lines++
	}
	if lines != 3 {
		t.Fatalf("watch --print-meta printed %d lines; want 3:\n%s", lines, m.outText())
	}
	var ps struct {
		Processed uint64  `json:"processed"`
		Published uint64  `json:"published"`
		CPU       float64 `json:"cpu_ms_per_frame"`
		Events    uint64  `json:"events_started"`
	}
	if err := json.Unmarshal([]byte(p.outText()), &ps); err != nil || ps.Published < 10 || ps.CPU <= 0 || ps.Events != 1 {
		t.Fatalf("process --json: %v %s; want 10 or more published, CPU per frame, one event", err, p.outText())
	}
}

// TestProcessAddsARendition: a resize step publishing into the channel it
// reads, as its rendition 320, adds a thumbnail to a channel that arrives
// with the main picture alone; each copy keeps its frame's sequence number
// and capture time. A step that makes another width is an error that
// says so.
func TestProcessAddsARendition(t *testing.T) {
	bin := cgoBinary(t)
	_, addr := startHub(t, nocgoBin)
	p := start(t, bin, nil, "process", "--hub", addr, "--in", "cam", "--out", "cam", "--out-rendition", "320",
		"--step", "resize=320", "--quiet", "--duration", "8s")
	waitSubscribers(t, addr, 1) // the processor reads the main picture
	cl, err := subscriber.New(subscriber.Config{Hub: addr, Channel: "cam", Want: protocol.RenditionWant{MaxWidth: 320}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var thumbs []protocol.Header
	done := make(chan error, 1)
	go func() {
		done <- cl.Run(ctx, func(f *subscriber.Frame) error {
			if f.Rendition == 320 {
				thumbs = append(thumbs, f.Header)
				if len(thumbs) == 3 {
					return subscriber.ErrStop
				}
			}
			return nil
		})
	}()
	sent := map[uint64]int64{}
	frames := messiFrames(t, 30)
	for i := range frames {
		frames[i].CaptureTime = time.Now().Add(time.Duration(i) * 100 * time.Millisecond).UnixNano()
		sent[uint64(i+1)] = frames[i].CaptureTime
	}
	pushFrames(t, ctx, addr, "cam", 100*time.Millisecond, frames)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(thumbs) < 3 {
		t.Fatalf("%d frames of rendition 320 arrived; want 3", len(thumbs))
	}
	for _, h := range thumbs {
		if h.Width != 320 || h.Height != 200 || sent[h.Seq] != h.CaptureTime {
			t.Fatalf("rendition frame %d: %dx%d captured %d; want 320x200, captured %d as its main frame", h.Seq, h.Width, h.Height,
				h.CaptureTime, sent[h.Seq])
		}
	}
	cancel()
	p.wait(t, 20*time.Second)

	bad := start(t, bin, nil, "process", "--hub", addr, "--in", "cam", "--out", "cam", "--out-rendition", "320",
		"--step", "resize=300", "--quiet", "--duration", "8s")
	waitSubscribers(t, addr, 1)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	pushFrames(t, ctx2, addr, "cam", 100*time.Millisecond, messiFrames(t, 30))
	if err := bad.wait(t, 20*time.Second); err == nil || !strings.Contains(bad.errText(), "resize=320") {
		t.Fatalf("a resize to 300 published as rendition 320: %v\n%s; want an error naming resize=320", err, bad.errText())
	}
}

// TestProcessErrorsAreOneLine: bad process flags end with one line that
// says what is wrong.
func TestProcessErrorsAreOneLine(t *testing.T) {
	bin := cgoBinary(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--in", "a", "--out", "a", "--step", "faces"}, "--out a is --in"},
		{[]string{"--in", "a", "--out", "b", "--step", "sepia"}, "unknown step"},
		{[]string{"--in", "a", "--out", "b", "--step", "faces", "--workers", "17"}, "--workers 17"},
		{[]string{"--in", "a", "--out", "b", "--step", "faces", "--gate", "sound"}, "--gate"},
		{[]string{"--in", "a", "--out", "b", "--step", "resize=320", "--gate", "motion"}, "detectors"},
		{[]string{"--in", "a", "--out", "b", "--step", "faces", "--cascade", "/no/such.xml"}, "--cascade"},
		{[]string{"--in", "a", "--out", "b"}, "--step is required"},
		{[]string{"--in", "a", "--out", "b", "--step", "faces", "--event", "face", "--zone", "door:0,0,1,0"}, "--zone"},
		{[]string{"--in", "a", "--out", "b", "--step", "faces", "--event", "face", "--zone", "door:0,0,1,0,1,2"}, "0 to 1"},
		{[]string{"--in", "a", "--out", "b", "--step", "faces", "--zone", "door:0,0,1,0,1,1"}, "--zone without --event"},
		{[]string{"--in", "a", "--out", "b", "--step", "faces", "--event", "face", "--event-frames", "5/3"}, "--event-frames"},
		{[]string{"--in", "a", "--out", "b", "--step", "faces", "--event", "face", "--event-min-score", "2"}, "minimum score"},
		{[]string{"--in", "a", "--out", "a", "--step", "resize=320", "--out-rendition", "0"}, "--out-rendition"},
		{[]string{"--in", "a", "--out", "a", "--step", "resize=320", "--out-rendition", "main"}, "--out a is --in"},
	} {
		out, err := exec.Command(bin, append([]string{"process", "--hub", "127.0.0.1:1"}, c.args...)...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err == nil || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("framehub process %v: %v, %q; want one line mentioning %q", c.args, err, out, c.want)
		}
	}
}

// TestDemoShowsAProcessedChannel: the demo runs a motion worker on its
// channel, so the grid shows a channel with boxes next to the original:
// the test pattern's ball moves, and its boxes arrive.
func TestDemoShowsAProcessedChannel(t *testing.T) {
	bin := cgoBinary(t)
	d := start(t, bin, nil, "demo", "--listen", "127.0.0.1:0", "--quiet")
	base := d.waitOut(t, regexp.MustCompile(`processed channel\s+(http://127\.0\.0\.1:\d+)/view/demo-motion`), 20*time.Second)[1]
	w := start(t, nocgoBin, nil, "watch", "--hub", base, "--channel", "demo-motion", "--count", "30", "--duration", "15s", "--json", "--quiet")
	if err := w.wait(t, 20*time.Second); err != nil {
		t.Fatalf("watch demo-motion: %v\n%s", err, w.errText())
	}
	var sum subscriber.Summary
	if err := json.Unmarshal([]byte(w.outText()), &sum); err != nil || sum.Frames != 30 || sum.Boxes.Frames < 20 || sum.Boxes.Labels["motion"] == 0 {
		t.Fatalf("watch demo-motion: %v %s; want 30 frames, most with motion boxes", err, w.outText())
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	if err := d.wait(t, 10*time.Second); err != nil {
		t.Fatalf("demo exit after SIGINT: %v\n%s", err, d.errText())
	}
}
