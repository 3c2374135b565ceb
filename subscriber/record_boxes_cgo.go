//go:build cgo

package subscriber

import (
	"fmt"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// boxBurner draws a frame's boxes into its picture for a Motion JPEG
// recording (RecordConfig.DrawBoxes): it decodes the frame, draws, and
// encodes it again. Frames without boxes are stored as they came.
type boxBurner struct {
	mat       gocv.Mat
	maxPixels uint64
	params    []int
}

func newBoxBurner(maxPixels uint64) (*boxBurner, error) {
	return &boxBurner{mat: gocv.NewMat(), maxPixels: maxPixels, params: []int{gocv.IMWriteJpegQuality, rawJPEGQuality}}, nil
}

// jpeg returns f's picture with its boxes and the events going on drawn
// in, as a JPEG, or nil when f has neither.
func (b *boxBurner) jpeg(f *Frame) ([]byte, error) {
	boxes, _ := protocol.ParseBoxes(f.Meta)
	events, _ := protocol.ParseEvents(f.Meta)
	if len(boxes) == 0 && !anyActive(events) {
		return nil, nil
	}
	if err := DecodeMatLimit(&f.Frame, &b.mat, b.maxPixels); err != nil {
		return nil, err
	}
	toBGR(&b.mat)
	DrawBoxes(&b.mat, boxes)
	DrawEvents(&b.mat, events)
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, b.mat, b.params)
	if err != nil {
		return nil, fmt.Errorf("frame %d: %w", f.Seq, err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

func (b *boxBurner) close() { b.mat.Close() }

// toBGR converts a gray or BGRA picture to BGR in place.
func toBGR(m *gocv.Mat) {
	switch m.Channels() {
	case 1:
		gocv.CvtColor(*m, m, gocv.ColorGrayToBGR)
	case 4:
		gocv.CvtColor(*m, m, gocv.ColorBGRAToBGR)
	}
}
