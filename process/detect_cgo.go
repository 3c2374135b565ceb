//go:build cgo

package process

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "detect_cgo.h"
*/
import "C"

import (
	"errors"
	"image"
	"math"
	"unsafe"

	"gocv.io/x/gocv"
)

// detection is a detector's find, in pixels of the picture it ran on, with
// its confidence mapped to 0..1.
type detection struct {
	rect  image.Rectangle
	score float64
}

func cError(p *C.char) error {
	if p == nil {
		return nil
	}
	err := errors.New("opencv: " + C.GoString(p))
	C.free(unsafe.Pointer(p))
	return err
}

// detections turns a C result into detections, mapping each weight w through
// score, and frees the result.
func detections(d C.fhDetections, score func(w float64) float64) ([]detection, error) {
	defer C.fh_detections_free(d)
	if d.err != nil {
		return nil, errors.New("opencv: " + C.GoString(d.err))
	}
	if d.n == 0 {
		return nil, nil
	}
	items := unsafe.Slice(d.items, int(d.n))
	out := make([]detection, len(items))
	for i, it := range items {
		out[i] = detection{rect: image.Rect(int(it.x), int(it.y), int(it.x+it.w), int(it.y+it.h)), score: score(float64(it.weight))}
	}
	return out, nil
}

// matPtr returns the cv::Mat* behind a gocv Mat.
func matPtr(m gocv.Mat) unsafe.Pointer { return unsafe.Pointer(m.Ptr()) }

// hog is OpenCV's HOG people detector: a 64×128 window slid over an image
// pyramid, scored by a linear SVM. Not safe for concurrent use.
type hog struct{ p C.fhHOG }

// HOG parameters: a window stride of 8 pixels with 8 of padding and a
// pyramid step of 1.05 are OpenCV's people-detection sample's; 2 is
// OpenCV's default grouping threshold.
const (
	hogStride = 8
	hogPad    = 8
	hogScale  = 1.05
	hogGroup  = 2
	// hogWindowW, hogWindowH: the detection window. A person is about
	// 96 pixels tall in it.
	hogWindowW = 64
	hogWindowH = 128
)

func newHOG() (*hog, error) {
	var cerr *C.char
	p := C.fh_hog_new(&cerr)
	if p == nil {
		return nil, cError(cerr)
	}
	return &hog{p: p}, nil
}

// detect finds people in m. A score is the SVM margin m mapped to
// 1 − e^−m: 0 at the decision threshold, 0.92 at a margin of 2.5.
func (h *hog) detect(m gocv.Mat) ([]detection, error) {
	d := C.fh_hog_detect(h.p, matPtr(m), 0, hogStride, hogPad, hogScale, hogGroup)
	return detections(d, func(w float64) float64 { return 1 - math.Exp(-max(w, 0)) })
}

func (h *hog) close() {
	if h.p != nil {
		C.fh_hog_free(h.p)
		h.p = nil
	}
}

// cascade is an OpenCV cascade classifier (Haar or LBP). Not safe for
// concurrent use.
type cascade struct{ p C.fhCascade }

// Cascade parameters: a pyramid step of 1.1 and 5 neighbours, as in
// OpenCV's face detection sample.
const (
	cascadeScale     = 1.1
	cascadeNeighbors = 5
)

func loadCascade(path string) (*cascade, error) {
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	var cerr *C.char
	p := C.fh_cascade_new(cs, &cerr)
	if p == nil {
		return nil, cError(cerr)
	}
	return &cascade{p: p}, nil
}

// detect finds objects at least minSize pixels wide in m. A score is the
// last stage's sum w (how far past the cascade's threshold the detection
// got) mapped to 1 − e^(−w/3): faces in OpenCV's sample data score 0.7 to
// 0.9.
func (c *cascade) detect(m gocv.Mat, minSize int) ([]detection, error) {
	d := C.fh_cascade_detect(c.p, matPtr(m), cascadeScale, cascadeNeighbors, C.int(minSize))
	return detections(d, func(w float64) float64 { return 1 - math.Exp(-max(w, 0)/3) })
}

func (c *cascade) close() {
	if c.p != nil {
		C.fh_cascade_free(c.p)
		c.p = nil
	}
}
