package testcam

import (
	"image"
	"image/color"
	"time"
)

// The timecode grid of rtspcam.py --timecode: the top 40 % of the picture
// split into 16 columns and 4 rows of blocks, one bit each, white for 1,
// read left to right, top to bottom: 48 bits of Unix milliseconds, then a
// 16-bit check that a half-decoded or foreign picture fails.
const (
	cols, rows = 16, 4
	gridHeight = 0.4
)

// Timecode reads the time a camera frame was made from its picture (any
// size: the grid scales with it). ok is false when the picture carries no
// timecode, or a damaged one.
func Timecode(img image.Image) (t time.Time, ok bool) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	gh := int(float64(h) * gridHeight)
	if w < cols || gh < rows {
		return time.Time{}, false
	}
	var v uint64
	for i := range cols * rows {
		r, c := i/cols, i%cols
		x := b.Min.X + (2*c+1)*w/(2*cols)
		y := b.Min.Y + (2*r+1)*gh/(2*rows)
		g := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
		v <<= 1
		if g >= 128 {
			v |= 1
		}
	}
	ms := v >> 16
	if uint16(v) != check(ms) {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(ms)), true
}

func check(ms uint64) uint16 { return uint16(ms ^ ms>>16 ^ ms>>32 ^ 0xA5A5) }
