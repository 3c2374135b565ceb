//go:build cgo

package process

import (
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"framehub/publisher"
)

// resizeStep scales the picture to a width, keeping its aspect ratio (a
// thumbnail rendition), and the boxes found so far with it.
type resizeStep struct {
	width int
	out   gocv.Mat
}

func (s *resizeStep) Name() string { return "resize" }

func (s *resizeStep) Clone() (Step, error) {
	return &resizeStep{width: s.width, out: gocv.NewMat()}, nil
}

func (s *resizeStep) Apply(f *Frame) error {
	w0, h0 := f.Mat.Cols(), f.Mat.Rows()
	if w0 == s.width {
		return nil
	}
	h := max(1, int(math.Round(float64(h0)*float64(s.width)/float64(w0))))
	// A picture of an extreme aspect ratio (2×1000 becomes 640×320000)
	// is refused before OpenCV allocates it.
	if err := publisher.CheckSize(s.width, h, f.limits()); err != nil {
		return fmt.Errorf("%dx%d would become %dx%d: %w", w0, h0, s.width, h, err)
	}
	interp := gocv.InterpolationArea // best for shrinking
	if s.width > w0 {
		interp = gocv.InterpolationLinear
	}
	gocv.Resize(*f.Mat, &s.out, image.Pt(s.width, h), 0, 0, interp)
	f.Mat = &s.out
	f.Meta.scale(float64(s.width)/float64(w0), float64(h)/float64(h0))
	f.Changed = true
	return nil
}

func (s *resizeStep) Close() error { return s.out.Close() }
