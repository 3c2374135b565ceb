//go:build cgo

package process

import (
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// gatedDetector runs a detector on a frame as the motion gate says: on
// the whole picture without a gate (or when the gate refreshes), on the
// moving regions when something moved, and not at all when nothing did.
// Boxes it found earlier that no searched region touches are carried
// forward, marked: what did not move is still there. Each worker has its
// own.
type gatedDetector struct {
	key   int    // in the carry store: the step's position
	label string // of its boxes
	// minW, minH: the detector's window with a margin; smaller regions
	// are enlarged to hold it.
	minW, minH int
	// A moving region grows by padFrac of its size on each side (at least
	// minPad pixels), and to at least regionW×regionH around its centre:
	// what moved may be only part of the object (a walker's legs).
	padFrac          float64
	minPad           int
	regionW, regionH int
	run              func(m gocv.Mat) ([]detection, error)
	scaled           gocv.Mat // an enlarged region
}

func (d *gatedDetector) setKey(k int) { d.key = k }

// find returns the boxes for f, in pixels of f.Mat.
func (d *gatedDetector) find(f *Frame) ([]protocol.Box, error) {
	g := f.Gate
	size := image.Pt(f.Mat.Cols(), f.Mat.Rows())
	if g != nil && g.Known && !g.Moving && !g.Refresh {
		f.gated = true
		boxes := g.store.load(d.key)
		f.carried = f.carried || len(boxes) > 0
		return boxes, nil
	}
	var boxes []protocol.Box
	var err error
	if g == nil || !g.Known || g.Refresh || len(g.Regions) == 0 {
		boxes, err = d.whole(f.Mat)
	} else {
		boxes, err = d.regions(f, g, size)
	}
	if err != nil {
		return nil, err
	}
	if g != nil {
		g.store.store(d.key, g.ticket, boxes)
	}
	return boxes, nil
}

func (d *gatedDetector) whole(m *gocv.Mat) ([]protocol.Box, error) {
	dets, err := d.run(*m)
	if err != nil {
		return nil, err
	}
	return boxesFrom(dets, image.Rectangle{}, 1, d.label), nil
}

// regions runs the detector on each grown, merged moving region, enlarged
// to hold the detector's window, and carries forward the earlier boxes no
// region touches; or it runs once on the whole picture when the regions
// cover most of it.
func (d *gatedDetector) regions(f *Frame, g *Gate, size image.Point) ([]protocol.Box, error) {
	bounds := image.Rectangle{Max: size}
	rs := make([]image.Rectangle, 0, len(g.Regions))
	for _, r := range g.Regions {
		rs = append(rs, atLeast(scaleRect(r, g.Size, size), d.regionW, d.regionH))
	}
	rs = padRegions(rs, d.padFrac, d.minPad, bounds)
	if float64(area(rs)) > wholeFrameShare*float64(size.X*size.Y) {
		return d.whole(f.Mat)
	}
	var boxes []protocol.Box
	for _, r := range rs {
		sub := f.Mat.Region(r)
		target, s := sub, 1.0
		if s = regionScale(r, d.minW, d.minH); s > 1 {
			w, h := int(math.Round(float64(r.Dx())*s)), int(math.Round(float64(r.Dy())*s))
			gocv.Resize(sub, &d.scaled, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
			target = d.scaled
		}
		dets, err := d.run(target)
		sub.Close()
		if err != nil {
			return nil, err
		}
		boxes = append(boxes, boxesFrom(dets, r, s, d.label)...)
	}
	for _, b := range g.store.load(d.key) {
		x, y, w, h := b.Rect()
		br := image.Rect(x, y, x+w, y+h)
		touched := false
		for _, r := range rs {
			touched = touched || r.Overlaps(br)
		}
		if !touched {
			boxes = append(boxes, b)
			f.carried = true
		}
	}
	return boxes, nil
}

func (d *gatedDetector) close() { d.scaled.Close() }

// faceMinSize is the smallest face looked for, in pixels.
const faceMinSize = 24

// facesStep finds faces with a Haar cascade; blur-faces also blurs them.
type facesStep struct {
	gatedDetector
	path  string
	blur  bool
	cc    *cascade
	small gocv.Mat
}

func newFaces(path string, blur bool) (Step, error) {
	p, err := findCascade(path, cascadePaths[:])
	if err != nil {
		return nil, err
	}
	cc, err := loadCascade(p)
	if err != nil {
		return nil, fmt.Errorf("faces: load %s: %w", p, err)
	}
	s := &facesStep{path: p, blur: blur, cc: cc, small: gocv.NewMat()}
	s.gatedDetector = gatedDetector{label: "face", minW: 2 * faceMinSize, minH: 2 * faceMinSize,
		padFrac: 0.25, minPad: faceMinSize / 2, regionW: 4 * faceMinSize, regionH: 4 * faceMinSize, scaled: gocv.NewMat(),
		run: func(m gocv.Mat) ([]detection, error) { return cc.detect(m, faceMinSize) }}
	return s, nil
}

func (s *facesStep) Name() string {
	if s.blur {
		return "blur-faces"
	}
	return "faces"
}

func (s *facesStep) Clone() (Step, error) {
	c, err := newFaces(s.path, s.blur)
	if err != nil {
		return nil, err
	}
	c.(*facesStep).key = s.key
	return c, nil
}

func (s *facesStep) Apply(f *Frame) error {
	boxes, err := s.find(f)
	if err != nil {
		return err
	}
	if s.blur && len(boxes) > 0 {
		for _, b := range boxes {
			s.blurBox(f.Mat, b)
		}
		f.Changed = true
	}
	f.Meta.Boxes = append(f.Meta.Boxes, boxes...)
	return nil
}

// blurBox makes a face unrecognisable: its box, grown by a tenth on each
// side, is shrunk to about 8 pixels across and enlarged back smoothly.
func (s *facesStep) blurBox(m *gocv.Mat, b protocol.Box) {
	x, y, w, h := b.Rect()
	r := image.Rect(x-w/10, y-h/10, x+w+w/10, y+h+h/10).Intersect(image.Rect(0, 0, m.Cols(), m.Rows()))
	if r.Dx() < 2 || r.Dy() < 2 {
		return
	}
	region := m.Region(r)
	defer region.Close()
	gocv.Resize(region, &s.small, image.Pt(max(1, min(8, r.Dx()/4)), max(1, min(8, r.Dy()/4))), 0, 0, gocv.InterpolationArea)
	// Same size and type: OpenCV writes into the region, so into m.
	gocv.Resize(s.small, &region, r.Size(), 0, 0, gocv.InterpolationLinear)
}

func (s *facesStep) Close() error {
	s.cc.close()
	s.small.Close()
	s.gatedDetector.close()
	return nil
}

// peopleStep finds people with OpenCV's HOG people detector.
type peopleStep struct {
	gatedDetector
	h *hog
}

func newPeople() (Step, error) {
	h, err := newHOG()
	if err != nil {
		return nil, fmt.Errorf("people: %w", err)
	}
	s := &peopleStep{h: h}
	s.gatedDetector = gatedDetector{label: "person", minW: hogWindowW + 2*hogPad, minH: hogWindowH + 2*hogPad,
		padFrac: 0.25, minPad: hogPad, regionW: 2 * hogWindowW, regionH: 2 * hogWindowH, scaled: gocv.NewMat(), run: h.detect}
	return s, nil
}

func (s *peopleStep) Name() string { return "people" }

func (s *peopleStep) Clone() (Step, error) {
	c, err := newPeople()
	if err != nil {
		return nil, err
	}
	c.(*peopleStep).key = s.key
	return c, nil
}

func (s *peopleStep) Apply(f *Frame) error {
	boxes, err := s.find(f)
	if err != nil {
		return err
	}
	f.Meta.Boxes = append(f.Meta.Boxes, boxes...)
	return nil
}

func (s *peopleStep) Close() error {
	s.h.close()
	s.gatedDetector.close()
	return nil
}
