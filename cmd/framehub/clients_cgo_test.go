//go:build cgo

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// trackPeakRSS samples a child's peak resident size (VmHWM) every 20 ms
// until it exits; the function it returns waits for that and returns the
// largest value seen, in bytes.
func trackPeakRSS(p *proc) func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	status := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	go func() {
		defer close(done)
		for {
			if b, err := os.ReadFile(status); err == nil {
				sc := bufio.NewScanner(bytes.NewReader(b))
				for sc.Scan() {
					if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "VmHWM:" {
						if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil && kb<<10 > peak.Load() {
							peak.Store(kb << 10)
						}
					}
				}
			}
			select {
			case <-p.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { <-done; return peak.Load() }
}

// TestClientsSkipHugePictures: a hub that allows 2^28 pixels relays
// 16384x16384 JPEGs between ordinary frames. Every client (record to .mkv
// without OpenCV and to .avi with it, watch --save, view) skips them
// without growing, counts them, goes on with the next frames, and stops on
// --duration; a recording stopped by SIGTERM is closed properly.
func TestClientsSkipHugePictures(t *testing.T) {
	bin := cgoBinary(t)
	frames := cameraFrames(320, 240, 40) // before the clients' --duration starts
	frames = append(frames[:10], append(hubtest.HugeFrames(), frames[10:]...)...)
	_, addr := startHub(t, nocgoBin, "--max-pixels", strconv.Itoa(1<<28))
	dir := t.TempDir()
	saveDir := filepath.Join(dir, "saved")
	const duration = 6 * time.Second
	dur := duration.String()
	type client struct {
		name string
		p    *proc
		peak func() uint64
	}
	var clients []client
	add := func(name string, p *proc) { clients = append(clients, client{name, p, trackPeakRSS(p)}) }
	add("record .mkv", start(t, nocgoBin, nil, "record", "--hub", addr, "--channel", "h", "--out", filepath.Join(dir, "h.mkv"), "--fps", "10", "--duration", dur))
	add("record .avi", start(t, bin, nil, "record", "--hub", addr, "--channel", "h", "--out", filepath.Join(dir, "h.avi"), "--fps", "10", "--duration", dur))
	add("watch --save", start(t, nocgoBin, nil, "watch", "--hub", addr, "--channel", "h", "--save", saveDir, "--duration", dur, "--quiet"))
	add("view", start(t, bin, []string{"QT_QPA_PLATFORM=offscreen"}, "view", "--hub", addr, "--channel", "h", "--duration", dur))
	term := start(t, nocgoBin, nil, "record", "--hub", addr, "--channel", "h", "--out", filepath.Join(dir, "term.mkv"), "--fps", "10")
	add("record .mkv, SIGTERM", term)
	waitSubscribers(t, addr, len(clients))
	started := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pushFrames(t, ctx, addr, "h", 100*time.Millisecond, frames) // 4.2 s
	term.cmd.Process.Signal(syscall.SIGTERM)
	termAt := time.Now()
	if err := term.wait(t, 5*time.Second); err != nil {
		t.Fatalf("record after SIGTERM: %v\n%s", err, term.errText())
	}
	if d := time.Since(termAt); d > 2*time.Second {
		t.Errorf("record took %v to stop after SIGTERM", d)
	}
	for _, c := range clients {
		if err := c.p.wait(t, duration+10*time.Second); err != nil {
			t.Errorf("%s: exit %v\n%s", c.name, err, c.p.errText())
		}
		if c.p != term {
			if d := time.Since(started); d > duration+4*time.Second {
				t.Errorf("%s stopped %v after starting; --duration is %v", c.name, d, duration)
			}
		}
		peak := c.peak()
		t.Logf("%s: peak RSS %d MiB", c.name, peak>>20)
		if peak > 200<<20 {
			t.Errorf("%s: peak RSS %d MiB; a 16384x16384 picture was decoded", c.name, peak>>20)
		}
	}
	for _, c := range clients {
		if !strings.HasPrefix(c.name, "record") {
			continue
		}
		m := summaryRE.FindStringSubmatch(c.p.errText())
		if m == nil || m[1] != "40" || m[3] != "2" {
			t.Errorf("%s: summary %q; want 40 frames received and the 2 huge ones refused\n%s", c.name, m, c.p.errText())
		}
	}
	for _, f := range []string{"h.mkv", "h.avi", "term.mkv"} {
		n, size := probeFrames(t, filepath.Join(dir, f))
		if n < 36 || size != "320x240" {
			t.Errorf("%s decodes to %d frames of %s; want the 40 ordinary ones", f, n, size)
		}
	}
	// Closed properly: ffmpeg decodes it without a complaint, and it knows
	// its duration (written on close).
	if msg, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(dir, "term.mkv"), "-f", "null", "-").CombinedOutput(); err != nil || len(msg) > 0 {
		t.Errorf("ffmpeg decoding the recording stopped by SIGTERM: %v %s", err, msg)
	}
	if out, _ := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", filepath.Join(dir, "term.mkv")).Output(); strings.TrimSpace(string(out)) == "N/A" {
		t.Errorf("the recording stopped by SIGTERM has no duration: it was not closed")
	}
	if saved, _ := filepath.Glob(filepath.Join(saveDir, "*.jpg")); len(saved) != 40 {
		t.Errorf("watch --save wrote %d frames; want the 40 ordinary ones", len(saved))
	}
	for _, c := range clients {
		if c.name == "view" {
			if m := regexp.MustCompile(`h: 40 frames received, \d+ shown, 2 refused`).FindString(c.p.errText()); m == "" {
				t.Errorf("view did not count the huge frames:\n%s", c.p.errText())
			}
		}
	}
}

// TestRecordDiskFullThroughOpenCV: OpenCV's writer reports no write
// errors; the recorder checks each file when it closes it, and a file that
// lost frames (here to a 128 KiB file size limit) ends the recording with
// exit 1 and the cause. On the old code: exit 0, "N written".
func TestRecordDiskFullThroughOpenCV(t *testing.T) {
	bin := cgoBinary(t)
	frames := cameraFrames(640, 480, 50)
	_, addr := startHub(t, nocgoBin)
	out := filepath.Join(t.TempDir(), "full.avi")
	r := startLimited(t, 128<<10, bin, "record", "--hub", addr, "--channel", "f", "--out", out, "--fps", "20")
	waitSubscribers(t, addr, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pushFrames(t, ctx, addr, "f", 50*time.Millisecond, frames)
	r.cmd.Process.Signal(syscall.SIGINT) // the file is closed, and checked
	err := r.wait(t, 20*time.Second)
	lines := strings.Split(strings.TrimSpace(r.errText()), "\n")
	last := lines[len(lines)-1]
	if exitCode(err) != 1 || !strings.Contains(last, "write "+out) || !strings.Contains(last, "frames written") ||
		!strings.Contains(last, "file too large") {
		t.Fatalf("record to a full disk through OpenCV: %v, last line %q; want exit 1 naming the lost frames and the cause", err, last)
	}
	t.Logf("exit %d: %s", exitCode(err), last)
}

// TestRecordTinyFrames: pictures a few pixels wide make Debian's FFmpeg
// encoders corrupt the heap; the old recorder locked the file to the first
// frame's size, so one 4x4 frame ruined (or crashed) an .mp4 recording.
// They are now refused, and the file has the camera's size.
func TestRecordTinyFrames(t *testing.T) {
	bin := cgoBinary(t)
	var frames []protocol.Frame
	for i := range 3 {
		frames = append(frames, hubtest.JPEGFrame(4, 4, testutil.JPEG(4, 4, i)))
	}
	frames = append(frames, cameraFrames(320, 240, 25)...)
	_, addr := startHub(t, nocgoBin)
	out := filepath.Join(t.TempDir(), "tiny.mp4")
	r := start(t, bin, nil, "record", "--hub", addr, "--channel", "t", "--out", out, "--fps", "10", "--duration", "4s")
	waitSubscribers(t, addr, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pushFrames(t, ctx, addr, "t", 100*time.Millisecond, frames)
	if err := r.wait(t, 20*time.Second); err != nil {
		t.Fatalf("record: %v\n%s", err, r.errText())
	}
	m := summaryRE.FindStringSubmatch(r.errText())
	if m == nil || m[3] != "3" {
		t.Fatalf("summary %q; want the 3 tiny frames refused\n%s", m, r.errText())
	}
	if n, size := probeFrames(t, out); n < 20 || size != "320x240" {
		t.Fatalf("%s decodes to %d frames of %s; want about 25 of 320x240", out, n, size)
	}
}

// startXvfb starts a virtual X display and returns its DISPLAY value.
func startXvfb(t *testing.T) string {
	t.Helper()
	xvfb := testutil.RequireTool(t, "Xvfb")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(xvfb, "-displayfd", "3", "-screen", "0", "1920x1080x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) // by PID: only the Xvfb started here
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		t.Fatalf("Xvfb printed no display number: %v", err)
	}
	return ":" + strings.TrimSpace(line)
}

// windowSize returns the size of the X window named name, as a window
// manager sees it (image, toolbar and status bar).
func windowSize(t *testing.T, display, name string) (w, h int, ok bool) {
	out, err := exec.Command(testutil.RequireTool(t, "xwininfo"), "-display", display, "-name", name).Output()
	if err != nil {
		return 0, 0, false
	}
	mw := regexp.MustCompile(`Width: (\d+)`).FindStringSubmatch(string(out))
	mh := regexp.MustCompile(`Height: (\d+)`).FindStringSubmatch(string(out))
	if mw == nil || mh == nil {
		return 0, 0, false
	}
	w, _ = strconv.Atoi(mw[1])
	h, _ = strconv.Atoi(mh[1])
	return w, h, true
}

// TestViewWindowFitsFrame: on a real (virtual) X display, the window takes
// the frame's size, scaled down to fit 1280x720, and follows a change of
// size. The old viewer's windows stayed 480x240.
func TestViewWindowFitsFrame(t *testing.T) {
	bin := cgoBinary(t)
	display := startXvfb(t)
	_, addr := startHub(t, nocgoBin)
	// Later entries win over the inherited environment's.
	v := start(t, bin, []string{"QT_QPA_PLATFORM=xcb", "DISPLAY=" + display}, "view", "--hub", addr, "--channel", "v", "--duration", "60s")
	waitSubscribers(t, addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []struct{ fw, fh, ww, wh int }{{640, 360, 640, 360}, {1920, 1080, 1280, 720}, {480, 640, 480, 640}} {
		pushed := make(chan struct{})
		fctx, fcancel := context.WithCancel(ctx)
		go func() {
			defer close(pushed)
			pushFrames(t, fctx, addr, "v", 100*time.Millisecond, cameraFrames(c.fw, c.fh, 200))
		}()
		deadline := time.Now().Add(15 * time.Second)
		var w, h int
		for {
			var ok bool
			w, h, ok = windowSize(t, display, "framehub: v")
			// The image area is the fitted size; Qt adds a toolbar and a
			// status bar below and above it.
			if ok && w == c.ww && h >= c.wh && h < c.wh+120 {
				break
			}
			if time.Now().After(deadline) {
				fcancel()
				<-pushed
				t.Fatalf("frames of %dx%d: window %dx%d; want %d wide and %d high plus its bars\n%s", c.fw, c.fh, w, h, c.ww, c.wh, v.errText())
			}
			time.Sleep(50 * time.Millisecond)
		}
		fcancel()
		<-pushed
		t.Logf("frames of %dx%d: window %dx%d after %v", c.fw, c.fh, w, h, time.Since(deadline.Add(-15*time.Second)).Round(time.Millisecond))
	}
	v.cmd.Process.Signal(syscall.SIGINT)
	if err := v.wait(t, 10*time.Second); err != nil {
		t.Fatalf("view after SIGINT: %v", err)
	}
}
