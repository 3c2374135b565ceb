package process

import (
	"image"
	"math"
)

// The motion gate, as network video recorders do it: the motion step
// (cheap: background subtraction on a small gray copy) decides, frame by
// frame, whether the expensive detectors run, and where. A detector runs
// on the moving regions only, each grown (to the size of the object it
// looks for around the centre, and by a share of its own size: what moved
// may be only part of the object), overlapping ones merged, and enlarged
// to at least the detector's window; when the regions cover most of the
// picture it runs once on the whole. Its earlier boxes that no searched
// region touches are carried forward, marked "carried": what did not move
// is still there. On a frame where nothing moved it does not run at all,
// and all its newest boxes are carried. On the first frames (while the
// background model learns) and every refresh interval it runs on the
// whole picture whatever moved, so that nothing is carried forever.

// wholeFrameShare is the share of the picture above which a detector runs
// once on the whole picture instead of on each region.
const wholeFrameShare = 0.5

// maxRegionUpscale bounds how much a small region is enlarged for a
// detector: a 40-pixel region is not worth a 640-pixel search.
const maxRegionUpscale = 3.0

// padRegions pads each rectangle by frac of its size on each side (at
// least minPad pixels), limits it to bounds, and merges rectangles that
// overlap until none do. The result is in no particular order.
func padRegions(rects []image.Rectangle, frac float64, minPad int, bounds image.Rectangle) []image.Rectangle {
	out := make([]image.Rectangle, 0, len(rects))
	for _, r := range rects {
		px := max(minPad, int(math.Ceil(float64(r.Dx())*frac)))
		py := max(minPad, int(math.Ceil(float64(r.Dy())*frac)))
		p := image.Rect(r.Min.X-px, r.Min.Y-py, r.Max.X+px, r.Max.Y+py).Intersect(bounds)
		if !p.Empty() {
			out = append(out, p)
		}
	}
	return mergeOverlapping(out)
}

// mergeOverlapping replaces rectangles that overlap with their union,
// until none overlap.
func mergeOverlapping(rects []image.Rectangle) []image.Rectangle {
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(rects) && !merged; i++ {
			for j := i + 1; j < len(rects); j++ {
				if rects[i].Overlaps(rects[j]) {
					rects[i] = rects[i].Union(rects[j])
					rects = append(rects[:j], rects[j+1:]...)
					merged = true
					break
				}
			}
		}
	}
	return rects
}

// area returns the total area of rects.
func area(rects []image.Rectangle) int {
	n := 0
	for _, r := range rects {
		n += r.Dx() * r.Dy()
	}
	return n
}

// regionScale returns the factor to enlarge region r by so that it holds
// a minW×minH detector window, at least 1 and at most maxRegionUpscale.
func regionScale(r image.Rectangle, minW, minH int) float64 {
	s := max(1, float64(minW)/float64(max(r.Dx(), 1)), float64(minH)/float64(max(r.Dy(), 1)))
	return min(s, maxRegionUpscale)
}

// scaleRect maps r from a picture of size from to one of size to.
func scaleRect(r image.Rectangle, from, to image.Point) image.Rectangle {
	if from == to || from.X == 0 || from.Y == 0 {
		return r
	}
	sx, sy := float64(to.X)/float64(from.X), float64(to.Y)/float64(from.Y)
	return image.Rect(int(math.Floor(float64(r.Min.X)*sx)), int(math.Floor(float64(r.Min.Y)*sy)),
		int(math.Ceil(float64(r.Max.X)*sx)), int(math.Ceil(float64(r.Max.Y)*sy)))
}

// atLeast grows r around its centre to at least w×h.
func atLeast(r image.Rectangle, w, h int) image.Rectangle {
	if dx := w - r.Dx(); dx > 0 {
		r.Min.X -= dx / 2
		r.Max.X += dx - dx/2
	}
	if dy := h - r.Dy(); dy > 0 {
		r.Min.Y -= dy / 2
		r.Max.Y += dy - dy/2
	}
	return r
}
