//go:build cgo

package process

import (
	"gocv.io/x/gocv"

	"framehub/subscriber"
)

// drawStep burns the boxes found so far into the picture, with their
// labels and scores, as the web page draws them. A gray picture becomes
// BGR first, so the boxes show in colour.
type drawStep struct{ out gocv.Mat }

func (s *drawStep) Name() string { return "draw" }

func (s *drawStep) Clone() (Step, error) { return &drawStep{out: gocv.NewMat()}, nil }

func (s *drawStep) Apply(f *Frame) error {
	if len(f.Meta.Boxes) == 0 {
		return nil
	}
	f.Meta.clip(f.Mat.Cols(), f.Mat.Rows())
	if f.Mat.Channels() != 3 {
		code := gocv.ColorGrayToBGR
		if f.Mat.Channels() == 4 {
			code = gocv.ColorBGRAToBGR
		}
		gocv.CvtColor(*f.Mat, &s.out, code)
		f.Mat = &s.out
	}
	subscriber.DrawBoxes(f.Mat, f.Meta.Boxes)
	f.Changed = true
	return nil
}

func (s *drawStep) Close() error { return s.out.Close() }
