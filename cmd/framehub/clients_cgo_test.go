//go:build cgo

package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"framehub/internal/testutil"
)

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
