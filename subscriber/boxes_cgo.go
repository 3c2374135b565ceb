//go:build cgo

package subscriber

import (
	"fmt"
	"image"
	"image/color"
	"strings"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// BoxColor is the colour boxes are drawn in, as on the web page (#3f3).
var BoxColor = color.RGBA{R: 0x33, G: 0xff, B: 0x33, A: 0xff}

// DrawBoxes burns boxes (in pixels of m) into m, an 8-bit BGR or BGRA
// picture, each with its label and score (two decimals) on a dark band
// above it (inside its top edge when there is no room), the way the web
// page draws them. Lines and text scale with the picture. Parts of boxes
// outside the picture are cut off; boxes past protocol.MaxBoxes are left
// out. Labels are drawn in ASCII: OpenCV's fonts have nothing else, so
// other characters show as '?'. It draws nothing on a gray picture:
// convert it to BGR first.
func DrawBoxes(m *gocv.Mat, boxes []protocol.Box) {
	if m.Empty() || m.Channels() < 3 || len(boxes) == 0 {
		return
	}
	bounds := image.Rect(0, 0, m.Cols(), m.Rows())
	lw := max(2, m.Cols()/400)
	fontScale := max(0.4, float64(m.Rows())/900)
	thick := max(1, int(fontScale*1.5))
	for i, b := range boxes {
		if i == protocol.MaxBoxes {
			break
		}
		x, y, w, h := b.Rect()
		r := image.Rect(x, y, x+w, y+h).Intersect(bounds)
		if r.Empty() {
			continue
		}
		gocv.Rectangle(m, r, BoxColor, lw)
		text := BoxText(b)
		if text == "" {
			continue
		}
		size, baseline := gocv.GetTextSizeWithBaseline(text, gocv.FontHersheySimplex, fontScale, thick)
		top := r.Min.Y - lw - size.Y - baseline
		if top < 0 {
			top = r.Min.Y + lw
		}
		band := image.Rect(r.Min.X, top, r.Min.X+size.X+2*lw, top+size.Y+baseline+lw).Intersect(bounds)
		if !band.Empty() {
			gocv.Rectangle(m, band, color.RGBA{A: 0xff}, -1)
		}
		gocv.PutText(m, text, image.Pt(r.Min.X+lw, top+size.Y+lw/2), gocv.FontHersheySimplex, fontScale, BoxColor, thick)
	}
}

// BoxText is what is drawn by a box: its label (in printable ASCII), and
// its score with two decimals, as on the web page.
func BoxText(b protocol.Box) string {
	label := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, protocol.CutLabel(b.Label))
	switch {
	case label != "" && b.Score > 0:
		return fmt.Sprintf("%s %.2f", label, b.Score)
	case b.Score > 0:
		return fmt.Sprintf("%.2f", b.Score)
	}
	return label
}
