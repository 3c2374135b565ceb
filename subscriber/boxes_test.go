//go:build cgo

package subscriber

import (
	"context"
	"fmt"
	"image"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// boxedFrames returns n real 320x240 JPEG frames; the odd ones carry a box
// at boxAt in their metadata, the even ones none.
func boxedFrames(n int) []protocol.Frame {
	frames := make([]protocol.Frame, n)
	for i := range frames {
		frames[i] = hubtest.JPEGFrame(320, 240, testutil.JPEG(320, 240, 0)) // the same picture: only the box differs
		if i%2 == 1 {
			frames[i].Meta = []byte(fmt.Sprintf(`{"boxes":[{"x":%d,"y":%d,"w":%d,"h":%d,"label":"face","score":0.9}]}`,
				boxAt.Min.X, boxAt.Min.Y, boxAt.Dx(), boxAt.Dy()))
		}
	}
	return frames
}

var boxAt = image.Rect(40, 60, 200, 180)

// boxDrawn reports whether m shows the box edge in BoxColor at the middle
// of boxAt's top and left sides, and the picture unchanged at its centre.
func boxDrawn(m gocv.Mat) (drawn, centreGreen bool) {
	green := func(y, x int) bool {
		v := m.GetVecbAt(y, x) // B, G, R
		return v[1] > 200 && v[0] < 110 && v[2] < 110
	}
	mid := image.Pt((boxAt.Min.X+boxAt.Max.X)/2, (boxAt.Min.Y+boxAt.Max.Y)/2)
	return green(boxAt.Min.Y, mid.X) && green(mid.Y, boxAt.Min.X), green(mid.Y, mid.X)
}

// TestViewDrawsBoxes: the native viewer draws the boxes of each frame's
// metadata on the picture, and nothing on frames without any.
func TestViewDrawsBoxes(t *testing.T) {
	t.Setenv("QT_QPA_PLATFORM", "offscreen") // Qt aborts without a display
	addr, _ := runHub(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	vctx, vcancel := context.WithCancel(ctx)
	type shown struct{ drawn, centre bool }
	var seen []shown
	shows := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() {
		_, err := View(vctx, ViewConfig{Client: Config{Hub: addr}, Channels: []string{"v"},
			OnShow: func(_ string, m gocv.Mat) {
				d, c := boxDrawn(m)
				seen = append(seen, shown{drawn: d, centre: c})
				shows <- struct{}{}
			}})
		done <- err
	}()
	waitSubscribers(t, addr, 1)
	// Each frame goes once the one before is shown: the viewer shows
	// only the newest, and on a loaded machine a clock would let it skip.
	hubtest.PublishPaced(t, ctx, addr, "v", boxedFrames(6), func(uint64) bool {
		select {
		case <-shows:
			return true
		case <-ctx.Done():
			t.Fatal("a frame was not shown within 20 s")
			return false
		}
	})
	vcancel()
	if err := <-done; err != nil {
		t.Fatalf("View: %v", err)
	}
	if len(seen) != 6 {
		t.Fatalf("%d frames shown; want 6", len(seen))
	}
	for i, s := range seen {
		if s.drawn != (i%2 == 1) || s.centre {
			t.Errorf("frame %d: box drawn %v, inside painted %v; want drawn only on frames with a box, the inside untouched", i+1, s.drawn, s.centre)
		}
	}
}

// TestRecordDrawsBoxes: record --draw-boxes burns each frame's boxes into
// the file, for Matroska (re-encoding only the frames with boxes) and
// OpenCV's formats; the file decodes, and its pixels show the boxes.
func TestRecordDrawsBoxes(t *testing.T) {
	for _, ext := range []string{".mkv", ".avi"} {
		t.Run(ext, func(t *testing.T) {
			addr, _ := runHub(t, "127.0.0.1:0")
			out := filepath.Join(t.TempDir(), "boxes"+ext)
			rec := startRecord(t, RecordConfig{Client: Config{Hub: "http://" + addr, Channel: "b"}, Out: out, FPS: 10, DrawBoxes: true})
			waitSubscribers(t, addr, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			pushFrames(t, ctx, addr, "b", 100*time.Millisecond, boxedFrames(8))
			rec.waitReceived(t, 8)
			st, err := rec.stop(t)
			if err != nil || st.Written < 8 {
				t.Fatalf("Record: %+v, %v; want 8 frames written", st, err)
			}
			vc, err := gocv.VideoCaptureFile(out)
			if err != nil {
				t.Fatal(err)
			}
			defer vc.Close()
			m := gocv.NewMat()
			defer m.Close()
			boxed, plain := 0, 0
			for i := 0; vc.Read(&m) && !m.Empty(); i++ {
				drawn, centre := boxDrawn(m)
				if centre {
					t.Errorf("file frame %d: the box's inside is painted", i)
				}
				if drawn {
					boxed++
				} else {
					plain++
				}
			}
			// An .avi may repeat a frame to fill a late one's slot.
			if boxed < 4 || plain < 4 || (ext == ".mkv" && boxed != 4) {
				t.Fatalf("boxes drawn in %d frames of the file, %d without; want the 4 that had one, and the 4 others without", boxed, plain)
			}
		})
	}
}
