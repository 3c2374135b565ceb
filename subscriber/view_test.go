//go:build cgo

package subscriber

import (
	"context"
	"image"
	"testing"
	"time"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// TestViewRefusesHugePictures: with a hub and a client guard that allow
// 2^28 pixels, 16384x16384 JPEGs reach the viewer; its own pixel limit
// refuses them before OpenCV allocates, and it goes on showing the next
// frames.
func TestViewRefusesHugePictures(t *testing.T) {
	t.Setenv("QT_QPA_PLATFORM", "offscreen") // Qt aborts without a display
	addr, _ := runHubConfig(t, "127.0.0.1:0", hub.Config{MaxPixels: 1 << 28})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	vctx, vcancel := context.WithCancel(ctx)
	type result struct {
		st  []ViewStats
		err error
	}
	res := make(chan result, 1)
	go func() {
		st, err := View(vctx, ViewConfig{Client: Config{Hub: addr, Guard: protocol.Limits{MaxPixels: 1 << 28}}, Channels: []string{"v"}})
		res <- result{st, err}
	}()
	waitSubscribers(t, addr, 1)
	var frames []protocol.Frame
	for i := range 6 {
		frames = append(frames, hubtest.JPEGFrame(320, 240, testutil.JPEG(320, 240, i)))
	}
	frames = append(frames[:3], append(hubtest.HugeFrames(), frames[3:]...)...)
	resetPeakRSS(t)
	before := peakRSS(t, "self")
	// Slow enough that the window shows each frame before the next comes.
	pushFrames(t, ctx, addr, "v", 200*time.Millisecond, frames)
	vcancel()
	r := <-res
	grew := peakRSS(t, "self") - before
	if r.err != nil {
		t.Fatalf("View: %v", r.err)
	}
	st := r.st[0]
	if st.Received != 8 || st.Refused != 2 || st.Shown != 6 {
		t.Fatalf("view stats %+v; want 8 received, 6 shown, the 2 huge ones refused", st)
	}
	if grew > 100<<20 {
		t.Fatalf("peak RSS grew by %d MiB while viewing; a 16384x16384 frame was decoded", grew>>20)
	}
}

func TestFitWindow(t *testing.T) {
	for _, c := range []struct{ w, h, ww, wh int }{
		{320, 240, 320, 240}, {1280, 720, 1280, 720}, {1920, 1080, 1280, 720}, {3840, 2160, 1280, 720},
		{1080, 1920, 405, 720}, {4000, 100, 1280, 32}, {7680, 4320, 1280, 720}, {2, 2, 2, 2},
	} {
		if got := fitWindow(c.w, c.h); got != image.Pt(c.ww, c.wh) {
			t.Errorf("fitWindow(%d, %d) = %v; want %dx%d", c.w, c.h, got, c.ww, c.wh)
		}
	}
}
