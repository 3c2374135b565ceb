//go:build cgo

package subscriber

import (
	"image"
	"image/color"
	"strconv"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// EventColor is the colour events going on are marked in, as on the web
// page (#e33).
var EventColor = color.RGBA{R: 0xee, G: 0x33, B: 0x33, A: 0xff}

// maxEventLines is the most events DrawEvents lists; the rest are counted
// on one more line.
const maxEventLines = 4

// DrawEvents burns the events going on (those without an end) into the
// bottom-left corner of m, an 8-bit BGR or BGRA picture: one line each,
// "EVENT person in door 0.91", white on a red band, at most maxEventLines
// of them and "+N more". Text scales with the picture and is ASCII, as in
// DrawBoxes. It draws nothing on a gray picture.
func DrawEvents(m *gocv.Mat, events []protocol.Event) {
	if m.Empty() || m.Channels() < 3 {
		return
	}
	var lines []string
	active := 0
	for _, e := range events {
		if !e.Active() {
			continue
		}
		active++
		if len(lines) < maxEventLines {
			lines = append(lines, "EVENT "+EventText(e))
		}
	}
	if active == 0 {
		return
	}
	if active > len(lines) {
		lines = append(lines, "+"+strconv.Itoa(active-len(lines))+" more")
	}
	fontScale := max(0.45, float64(m.Rows())/800)
	thick := max(1, int(fontScale*1.5))
	pad := max(3, m.Rows()/150)
	bounds := image.Rect(0, 0, m.Cols(), m.Rows())
	y := m.Rows() - pad
	for i := len(lines) - 1; i >= 0; i-- {
		size, baseline := gocv.GetTextSizeWithBaseline(lines[i], gocv.FontHersheySimplex, fontScale, thick)
		band := image.Rect(pad, y-size.Y-baseline-pad, pad+size.X+2*pad, y).Intersect(bounds)
		if !band.Empty() {
			gocv.Rectangle(m, band, EventColor, -1)
		}
		gocv.PutText(m, lines[i], image.Pt(2*pad, y-baseline-pad/2), gocv.FontHersheySimplex, fontScale, color.RGBA{255, 255, 255, 255}, thick)
		y = band.Min.Y - pad/2
		if y <= 0 {
			break
		}
	}
}

// EventText is how an event is named where it is drawn: its label (in
// printable ASCII, as BoxText), "in ZONE" when it has one, and its score
// with two decimals when it has one.
func EventText(e protocol.Event) string {
	text := BoxText(protocol.Box{Label: e.Label, Score: e.Score})
	if e.Zone == "" {
		return text
	}
	label := BoxText(protocol.Box{Label: e.Label})
	return label + " in " + e.Zone + text[len(label):]
}
