//go:build cgo

package process

import (
	"image"
	"math"
	"slices"
	"time"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// Motion detection parameters.
const (
	// motionWidth is the width of the gray copy motion is looked for in:
	// small enough to cost a few milliseconds, large enough for a person
	// across a room.
	motionWidth = 320
	// motionDefaultShare is the default minimum area of a moving region,
	// as a share of the picture.
	motionDefaultShare = 0.001
	// motionMinArea is the smallest default minimum area, in pixels.
	motionMinArea = 64
	// maxMotionBoxes bounds the motion boxes of one frame (the largest
	// are kept): rain or a flickering light must not make thousands.
	maxMotionBoxes = 64
	// motionWarmup is how many frames the background model learns from
	// before motion is reported; the gate runs the detectors on the whole
	// picture meanwhile. Fewer leave people who were there from the start
	// half in the background.
	motionWarmup = 5
	// shadowLevel: MOG2 marks shadows 127 and foreground 255; shadows are
	// not motion.
	shadowLevel = 200
)

// DefaultGateRefresh is how often the motion gate runs the detectors on
// the whole picture whatever moved.
const DefaultGateRefresh = 10 * time.Second

// motionStep finds moving regions by background subtraction (OpenCV's
// MOG2) on a small gray copy of the picture, and puts a box labelled
// "motion" around each region of at least minArea pixels. It keeps a
// background model from frame to frame, so it runs one frame at a time,
// in frame order (it is not a Cloner). A change of picture size starts a
// new model. As the motion gate, it also tells the detectors after it
// where to look.
type motionStep struct {
	minArea int  // pixels of the picture; 0: motionDefaultShare of it
	emit    bool // add the boxes to the metadata (not when --gate added the step)
	gate    bool
	refresh time.Duration

	mog         gocv.BackgroundSubtractorMOG2
	haveModel   bool
	small, gray gocv.Mat
	fg, mask    gocv.Mat
	open, grow  gocv.Mat // morphology kernels
	size        image.Point
	frames      int
	lastRefresh time.Time
}

func newMotion(minArea int) *motionStep {
	return &motionStep{minArea: minArea, emit: true, refresh: DefaultGateRefresh,
		small: gocv.NewMat(), gray: gocv.NewMat(), fg: gocv.NewMat(), mask: gocv.NewMat(),
		open: gocv.GetStructuringElement(gocv.MorphRect, image.Pt(3, 3)),
		grow: gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(9, 9))}
}

func (m *motionStep) Name() string { return "motion" }

func (m *motionStep) Apply(f *Frame) error {
	size := image.Pt(f.Mat.Cols(), f.Mat.Rows())
	if size != m.size || !m.haveModel {
		if m.haveModel {
			m.mog.Close()
		}
		m.mog = gocv.NewBackgroundSubtractorMOG2()
		m.haveModel, m.size, m.frames = true, size, 0
	}
	w := min(motionWidth, size.X)
	h := max(1, int(math.Round(float64(size.Y)*float64(w)/float64(size.X))))
	gocv.Resize(*f.Mat, &m.small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
	src := m.small
	if m.small.Channels() != 1 {
		gocv.CvtColor(m.small, &m.gray, gocv.ColorBGRToGray)
		src = m.gray
	}
	m.mog.Apply(src, &m.fg)
	m.frames++
	var rects []image.Rectangle
	if m.frames > motionWarmup {
		rects = m.regions(size, image.Pt(w, h))
	}
	if m.emit {
		for _, r := range rects {
			f.Meta.Boxes = append(f.Meta.Boxes, protocol.Box{X: float64(r.Min.X), Y: float64(r.Min.Y),
				W: float64(r.Dx()), H: float64(r.Dy()), Label: "motion"})
		}
	}
	if g := f.Gate; g != nil && m.gate {
		g.Known, g.Size = true, size
		now := time.Now()
		if m.frames <= motionWarmup || (m.refresh > 0 && now.Sub(m.lastRefresh) >= m.refresh) {
			g.Refresh, g.Moving = true, true
			m.lastRefresh = now
		} else {
			g.Moving, g.Regions = len(rects) > 0, rects
		}
		f.Meta.Gate = &GateInfo{Motion: len(rects) > 0, Refresh: g.Refresh, Regions: len(rects)}
	}
	return nil
}

// regions returns the moving regions of the last mask, in pixels of a
// picture of size full (the mask is small), largest first.
func (m *motionStep) regions(full, small image.Point) []image.Rectangle {
	gocv.Threshold(m.fg, &m.mask, shadowLevel, 255, gocv.ThresholdBinary)
	gocv.MorphologyEx(m.mask, &m.mask, gocv.MorphOpen, m.open)
	gocv.Dilate(m.mask, &m.mask, m.grow)
	contours := gocv.FindContours(m.mask, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	defer contours.Close()
	sx, sy := float64(full.X)/float64(small.X), float64(full.Y)/float64(small.Y)
	minArea := float64(m.minArea)
	if minArea == 0 {
		minArea = max(motionMinArea, motionDefaultShare*float64(full.X*full.Y))
	}
	type region struct {
		r    image.Rectangle
		area float64
	}
	var found []region
	for i := range contours.Size() {
		c := contours.At(i)
		a := gocv.ContourArea(c) * sx * sy
		if a < minArea {
			continue
		}
		b := gocv.BoundingRect(c)
		r := image.Rect(int(math.Floor(float64(b.Min.X)*sx)), int(math.Floor(float64(b.Min.Y)*sy)),
			int(math.Ceil(float64(b.Max.X)*sx)), int(math.Ceil(float64(b.Max.Y)*sy))).Intersect(image.Rectangle{Max: full})
		if !r.Empty() {
			found = append(found, region{r, a})
		}
	}
	slices.SortFunc(found, func(a, b region) int { return int(b.area - a.area) })
	if len(found) > maxMotionBoxes {
		found = found[:maxMotionBoxes]
	}
	rects := make([]image.Rectangle, len(found))
	for i, f := range found {
		rects[i] = f.r
	}
	return rects
}

func (m *motionStep) Close() error {
	if m.haveModel {
		m.mog.Close()
		m.haveModel = false
	}
	for _, mat := range []*gocv.Mat{&m.small, &m.gray, &m.fg, &m.mask, &m.open, &m.grow} {
		mat.Close()
	}
	return nil
}
