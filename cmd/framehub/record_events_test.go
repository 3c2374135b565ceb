package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// personFrames returns n camera frames of w×h; those from the 10th carry a
// person event going on.
func personFrames(w, h, n int) []protocol.Frame {
	frames := cameraFrames(w, h, n)
	start := float64(time.Now().Add(500*time.Millisecond).UnixMilli()) / 1e3
	for i := 10; i < n; i++ {
		frames[i].Meta = []byte(fmt.Sprintf(`{"events":[{"id":"p1","label":"person","zone":"door","start":%.3f}]}`, start))
	}
	return frames
}

// TestRecordEventsDiskFull: an event recording whose disk fills (the file
// size limit, as in TestRecordDiskFull) ends with exit status 1 and the
// write error, and the file up to the cut plays.
func TestRecordEventsDiskFull(t *testing.T) {
	_, addr := startHub(t, nocgoBin)
	dir := t.TempDir()
	r := startLimited(t, 256<<10, nocgoBin, "record", "--hub", addr, "--channel", "f", "--on-event", "person",
		"--pre", "1s", "--post", "1s", "--dir", dir, "--fps", "20")
	waitSubscribers(t, addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		pushFrames(t, ctx, addr, "f", 50*time.Millisecond, personFrames(640, 480, 300))
	}()
	err := r.wait(t, 30*time.Second)
	cancel()
	<-pushed
	lines := strings.Split(strings.TrimSpace(r.errText()), "\n")
	last := lines[len(lines)-1]
	if exitCode(err) != 1 || !strings.Contains(last, "file too large") {
		t.Fatalf("record --on-event on a full disk: %v, last line %q; want exit 1 naming the write error", err, last)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "f-*-person-p1.mkv"))
	if len(files) != 1 {
		t.Fatalf("event files %v; want one", files)
	}
	n, size := probeFrames(t, files[0])
	if n < 5 || size != "640x480" {
		t.Fatalf("the cut event file decodes to %d frames of %s; want the ones that fit", n, size)
	}
	t.Logf("exit %d: %s; the cut file decodes to %d frames", exitCode(err), last, n)
}

// TestRecordEventsRefusesLongPreOn4K: --pre 1h on 4K frames would need
// hundreds of GiB: refused at the first frame with what it needs, before
// the ring grows.
func TestRecordEventsRefusesLongPreOn4K(t *testing.T) {
	_, addr := startHub(t, nocgoBin)
	r := start(t, nocgoBin, nil, "record", "--hub", addr, "--channel", "uhd", "--on-event", "person", "--pre", "1h", "--dir", t.TempDir(), "--fps", "30")
	waitSubscribers(t, addr, 1)
	uhd := hubtest.JPEGFrame(3840, 2160, testutil.JPEG(3840, 2160, 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go pushFrames(t, ctx, addr, "uhd", 100*time.Millisecond, []protocol.Frame{uhd, uhd, uhd, uhd, uhd})
	err := r.wait(t, 20*time.Second)
	out := r.errText()
	if exitCode(err) != 1 || !strings.Contains(out, "--pre 1h0m0s of 3840x2160 frames") || !strings.Contains(out, "GiB of memory, over --pre-max-bytes 256.0 MiB") {
		t.Fatalf("record --pre 1h on 4K: %v\n%s\nwant exit 1 saying what it needs", err, out)
	}
	t.Logf("%s", strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]))
}

// TestRecordEventsFlags: bad event recording flags end with one line.
func TestRecordEventsFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--on-event", "person", "--out", "x.mkv"}, "--out is for continuous"},
		{[]string{"--on-event", "person", "--segment", "1m"}, "--segment is for continuous"},
		{[]string{"--on-event", "person", "--pre-max-bytes", "10"}, "--pre-max-bytes"},
		{[]string{"--on-event", "person", "--pre", "-1s"}, "--pre"},
	} {
		args := append([]string{"record", "--hub", "127.0.0.1:1", "--channel", "a", "--dir", t.TempDir()}, c.args...)
		out, err := exec.Command(nocgoBin, args...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err == nil || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("framehub %v: %v, %q; want one line mentioning %q", c.args, err, out, c.want)
		}
	}
}
