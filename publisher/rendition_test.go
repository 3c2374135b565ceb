//go:build cgo

package publisher

import (
	"context"
	"image"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"framehub/hub"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// thingFilter adds one box, 160×80 at (320, 160), to every frame.
type thingFilter struct{}

func (thingFilter) Apply(f *Frame) error {
	f.Meta["boxes"] = []map[string]any{{"x": 320, "y": 160, "w": 160, "h": 80, "label": "thing"}}
	return nil
}

// TestRenditionsSentAsSets: --renditions sends each frame, then its
// copies at each width narrower than the frame (aspect kept, even sides),
// with its sequence number and capture time and its boxes scaled; a width
// not narrower is not sent. Readers get what they ask for, and a copy
// looks like the frame it was made from.
func TestRenditionsSentAsSets(t *testing.T) {
	base := testHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	enough := func(got []received) bool { return len(got) >= 12 }
	mains, _ := collect(t, ctx, base, "cam", enough)
	smalls, _ := collectWant(t, ctx, base, "cam", protocol.RenditionWant{MaxWidth: 300}, enough)
	mids, _ := collectWant(t, ctx, base, "cam", protocol.RenditionWant{Rendition: 640}, enough)
	pctx, pcancel := context.WithCancel(ctx)
	var st Stats
	errc := make(chan error, 1)
	go func() {
		var err error
		st, err = runPublisher(t, pctx, Config{Source: "test:1280x720", FPS: 15, Renditions: []int{320, 2000, 640},
			Filter: []Filter{thingFilter{}}, Sender: SenderConfig{Hub: base, Channel: "cam"}})
		errc <- err
	}()
	main, small, mid := mains(), smalls(), mids()
	pcancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if st.RenditionsSent < 2*(st.Sent-1) || st.RenditionsSent > 2*st.Sent {
		t.Errorf("%d renditions sent with %d frames; want two per frame (2000 is wider than the frame: not sent)", st.RenditionsSent, st.Sent)
	}
	byWant := map[string][]received{"main": main, "320": small, "640": mid}
	want := map[string][2]uint32{"main": {1280, 720}, "320": {320, 180}, "640": {640, 360}}
	captured := map[uint64]int64{}
	for name, got := range byWant {
		// A reader that joined before the renditions appeared may start
		// with what fitted it then; from its first frame of its
		// rendition on, it gets only that.
		i := 0
		for i < len(got) && got[i].hdr.Rendition.String() != name {
			i++
		}
		if len(got)-i < 8 {
			t.Fatalf("reader of %s got %d frames of it", name, len(got)-i)
		}
		for _, r := range got[i:] {
			if r.hdr.Rendition.String() != name || r.hdr.Width != want[name][0] || r.hdr.Height != want[name][1] {
				t.Fatalf("reader of %s got rendition %v %dx%d; want %v", name, r.hdr.Rendition, r.hdr.Width, r.hdr.Height, want[name])
			}
			if at, ok := captured[r.hdr.Seq]; ok && at != r.hdr.CaptureTime {
				t.Fatalf("frame %d: %s captured at %d, another copy at %d; want one capture time per set", r.hdr.Seq, name, r.hdr.CaptureTime, at)
			}
			captured[r.hdr.Seq] = r.hdr.CaptureTime
			boxes, _ := protocol.ParseBoxes(r.meta)
			scale := float64(r.hdr.Width) / 1280
			if len(boxes) != 1 || boxes[0].X != 320*scale || boxes[0].W != 160*scale || boxes[0].Label != "thing" {
				t.Fatalf("%s frame %d boxes %+v; want the box scaled by %g", name, r.hdr.Seq, boxes, scale)
			}
		}
	}
	// The copy of a frame looks like the frame, made smaller.
	for _, r := range small {
		for _, m := range main {
			if m.hdr.Seq != r.hdr.Seq || r.hdr.Rendition != 320 {
				continue
			}
			a, b := decode(t, m), decode(t, r)
			shrunk := gocv.NewMat()
			gocv.Resize(a, &shrunk, image.Pt(320, 180), 0, 0, gocv.InterpolationArea)
			d := meanAbsDiff(t, shrunk, b)
			a.Close()
			b.Close()
			shrunk.Close()
			if d > 6 {
				t.Fatalf("rendition 320 of frame %d differs from the frame shrunk by %.1f (0-255); want a faithful copy", r.hdr.Seq, d)
			}
			return
		}
	}
	t.Fatal("no frame received both whole and as rendition 320")
}

// TestRenditionsPastTheHubsLimit: a publisher asked for more renditions
// than the hub takes per channel stops at once and says so.
func TestRenditionsPastTheHubsLimit(t *testing.T) {
	for _, c := range []struct {
		max  int
		want string
	}{
		{1, "at most 1"},
		{-1, "takes no renditions"},
	} {
		h := hub.New(hub.Config{MaxRenditions: c.max})
		srv := httptest.NewServer(h)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := runPublisher(t, ctx, Config{Source: "test:640x360", Renditions: []int{320, 160}, Sender: SenderConfig{Hub: srv.URL, Channel: "cam"}})
		cancel()
		h.Close()
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("hub --max-renditions %d: publisher ended with %v; want an error saying %q", c.max, err, c.want)
		}
	}
}

// TestRenditionsSkipWholeSets: a sender slower than the camera skips
// whole sets (a frame and its copies), never sends a copy without its
// frame or a frame without its copies.
func TestRenditionsSkipWholeSets(t *testing.T) {
	base := testHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := New(Config{Source: "test:640x360", FPS: 30, Renditions: []int{320}, Filter: []Filter{slowFilter{80 * time.Millisecond}},
		Sender: SenderConfig{Hub: base, Channel: "slow"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	time.AfterFunc(2*time.Second, pcancel)
	if err := p.Run(pctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Skipped == 0 || st.Sent < 5 || st.RenditionsSent != st.Sent {
		t.Fatalf("captured %d, skipped %d, sent %d frames and %d renditions; want skips and one rendition per frame sent",
			st.Captured, st.Skipped, st.Sent, st.RenditionsSent)
	}
}

func TestRenditionConfigChecks(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Renditions: []int{321}}, "even"},
		{Config{Renditions: []int{0}}, "even"},
		{Config{Renditions: []int{8000}}, "even"},
		{Config{Renditions: []int{320, 320}}, "twice"},
		{Config{Renditions: []int{320}, Sender: SenderConfig{Rendition: 640}}, "one rendition"},
	} {
		c.cfg.Source = "test:64x36"
		c.cfg.Sender.Hub, c.cfg.Sender.Channel = "http://127.0.0.1:9", "cam"
		p, err := New(c.cfg)
		if err == nil {
			p.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want an error about %q", c.cfg.Renditions, err, c.want)
		}
	}
}

// TestShrinkLooksLikeAnAreaResize: the renditions' cheap chain of bilinear
// halvings gives what OpenCV's area resize does (no aliasing), at 2:1,
// 3:1, 4:1 and 6:1, on a picture with fine detail.
func TestShrinkLooksLikeAnAreaResize(t *testing.T) {
	img := gocv.IMRead(testutil.RequireFile(t, "/usr/share/doc/opencv-doc/examples/data/baboon.jpg"), gocv.IMReadColor)
	defer img.Close()
	src := gocv.NewMat()
	defer src.Close()
	gocv.Resize(img, &src, image.Pt(1920, 1080), 0, 0, gocv.InterpolationCubic)
	p := &Publisher{halves: [2]gocv.Mat{gocv.NewMat(), gocv.NewMat()}}
	defer p.halves[0].Close()
	defer p.halves[1].Close()
	for _, w := range []int{960, 640, 480, 320} {
		h := w * 9 / 16
		got, want := gocv.NewMat(), gocv.NewMat()
		p.shrink(&src, &got, w, h)
		gocv.Resize(src, &want, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		d := meanAbsDiff(t, got, want)
		got.Close()
		want.Close()
		if d > 3 {
			t.Errorf("1920 to %d: differs from an area resize by %.2f (0-255); want under 3", w, d)
		}
	}
}
