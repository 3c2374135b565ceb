//go:build cgo

package process

import (
	"errors"
	"fmt"
	"testing"

	"gocv.io/x/gocv"

	"framehub/protocol"
	"framehub/publisher"
)

// TestStepsOnDegeneratePictures runs every built-in step, and a few chains
// of them, on pictures of the sizes the hub lets through that OpenCV
// finds hardest: one pixel, one row or column as long as the hub allows,
// extreme aspect ratios, gray and BGRA. gocv does not catch OpenCV's C++
// exceptions, so a call OpenCV throws on would abort this test binary.
// Each step either works, leaving a picture the hub would take, or fails
// with an error: the frame is dropped, the worker goes on.
func TestStepsOnDegeneratePictures(t *testing.T) {
	lim := protocol.ClientGuard
	chains := [][]string{{"faces"}, {"people"}, {"motion"}, {"motion=1"}, {"blur-faces"}, {"resize=640"}, {"resize=16"},
		{"resize=7680"}, {"gray"}, {"blur=99"}, {"edges"}, {"overlay"}, {"draw"}, {"gray", "gray", "edges", "blur=3", "draw"},
		{"resize=16", "resize=7680"}, {"motion", "people", "faces", "draw", "resize=640"}}
	sizes := []struct{ w, h, ch int }{{1, 1, 3}, {2, 2, 1}, {1, 16384, 3}, {16384, 1, 3}, {2, 1000, 3}, {2, 200, 3},
		{1000, 2, 4}, {1, 33, 1}}
	for _, chain := range chains {
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%v/%dx%dx%d", chain, sz.w, sz.h, sz.ch), func(t *testing.T) {
				steps, err := ParseSteps(chain, StepOptions{})
				if errors.Is(err, ErrNoCascade) {
					t.Skip(err)
				}
				if err != nil {
					t.Fatal(err)
				}
				defer closeSteps(steps)
				typ := map[int]gocv.MatType{1: gocv.MatTypeCV8UC1, 3: gocv.MatTypeCV8UC3, 4: gocv.MatTypeCV8UC4}[sz.ch]
				m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 120, 200, 255), sz.h, sz.w, typ)
				defer m.Close()
				meta := Meta{Boxes: []protocol.Box{{X: 0, Y: 0, W: float64(sz.w), H: float64(sz.h), Label: "all"}}}
				f := &Frame{Mat: &m, Meta: &meta, Limits: lim}
				// Twice, as a stream would: steps that keep state see a second frame.
				for range 2 {
					f.Mat = &m
					for _, s := range steps {
						if err = s.Apply(f); err != nil {
							break
						}
						if err = publisher.CheckPicture(f.Mat, lim); err != nil {
							break
						}
					}
				}
				if err != nil && !errors.Is(err, publisher.ErrPicture) {
					t.Logf("failed, as a frame may: %v", err)
				}
				if err == nil {
					buf, err := gocv.IMEncode(gocv.JPEGFileExt, *f.Mat)
					if err != nil {
						t.Fatalf("the picture the steps left (%dx%d) does not encode: %v", f.Mat.Cols(), f.Mat.Rows(), err)
					}
					buf.Close()
				}
			})
		}
	}
}
