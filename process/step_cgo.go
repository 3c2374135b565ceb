//go:build cgo

package process

import (
	"errors"
	"fmt"
	"image"
	"os"
	"strconv"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// Frame is what a Step works on: the picture, what is known about it, and
// its metadata.
type Frame struct {
	// Mat is the picture: 8-bit BGR, or gray (after gray or edges). A step
	// may draw on it in place, or point Mat at a Mat of its own that stays
	// valid until the step's next Apply.
	Mat      *gocv.Mat
	Seq      uint64    // the input frame's sequence number, kept on the output
	Captured time.Time // the input frame's capture time, kept on the output
	Channel  string    // the input channel
	// Meta holds the boxes found so far, in pixels of Mat (the input's,
	// checked, then each step's). A step appends its own; a step that
	// resizes Mat scales them.
	Meta *Meta
	// Gate is the motion gate's verdict, nil without --gate motion. The
	// built-in detectors follow it; a step of your own may too.
	Gate *Gate
	// Changed must be set by a step that changes the picture. When no
	// step did, the input's JPEG is published as it came, without
	// decoding it again or losing quality.
	Changed bool
	// Limits are the output hub's limits (as it announced them, capped by
	// the client's guard; zero means protocol.ClientGuard). A step that
	// makes a larger picture checks its size with publisher.CheckSize
	// before OpenCV allocates it; after every step the processor checks
	// the picture (publisher.CheckPicture), and one past them costs the
	// frame. gocv does not catch OpenCV's C++ exceptions, so a step of
	// your own must check what it hands OpenCV: an exception aborts the
	// process.
	Limits protocol.Limits

	gated   bool // the current step was skipped by the gate
	carried bool // a step carried boxes forward from an earlier frame
}

// Step is one processing stage. Apply runs on one frame at a time, in
// frame order, unless the step also implements Cloner. A step that fails
// returns an error: the frame is dropped (never published half
// processed), counted, and processing goes on with the next. A Step that
// holds OpenCV memory should implement io.Closer; the processor closes it
// when done.
type Step interface {
	Name() string // as in --step, for "steps" in the metadata and in logs
	Apply(f *Frame) error
}

// Cloner is a Step that can run on several frames at once (--workers N):
// Clone returns an independent instance for another worker. A Step that
// keeps state from frame to frame (the motion step's background model)
// does not implement it, and runs one frame at a time in frame order.
type Cloner interface {
	Clone() (Step, error)
}

// limits returns f.Limits, or protocol.ClientGuard when they are unset.
func (f *Frame) limits() protocol.Limits {
	if f.Limits.MaxDimension == 0 {
		return protocol.ClientGuard
	}
	return f.Limits
}

// Gate is the motion gate's verdict on one frame, set by the motion step.
type Gate struct {
	// Known is set once the motion step has run on the frame.
	Known bool
	// Moving reports movement; Regions are the moving regions (in pixels
	// of a Size picture), or nil with Refresh: detectors then run on the
	// whole picture.
	Moving  bool
	Refresh bool
	Regions []image.Rectangle
	Size    image.Point

	ticket uint64
	store  *carryStore
}

// StepOptions configure the built-in steps.
type StepOptions struct {
	// Cascade is the Haar cascade file for faces and blur-faces; empty
	// looks in the places Debian's opencv-data and OpenCV builds install
	// haarcascade_frontalface_default.xml.
	Cascade string
}

// cascadePaths are where faces looks for its cascade when none is given.
var cascadePaths = [...]string{
	"/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
	"/usr/share/opencv/haarcascades/haarcascade_frontalface_default.xml",
	"/usr/local/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
	"/usr/local/share/opencv/haarcascades/haarcascade_frontalface_default.xml",
}

// ErrNoCascade means no Haar cascade was found for faces.
var ErrNoCascade = errors.New("no Haar face cascade found: install Debian's opencv-data (sudo apt-get install opencv-data) or pass --cascade FILE")

// findCascade returns path if given, or the first of search that exists.
func findCascade(path string, search []string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("--cascade: %w", err)
		}
		return path, nil
	}
	for _, p := range search {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (looked in %s)", ErrNoCascade, strings.Join(search, ", "))
}

// StepNames describes the built-in steps, for help texts.
const StepNames = "faces, people, motion[=AREA], blur-faces, resize=W, gray, blur=K, edges[=LO:HI], overlay, draw"

// ParseSteps returns the built-in steps named in specs, in order; each
// spec may hold several, separated by commas:
//
//	faces          Haar cascade face detector: boxes labelled "face"
//	people         HOG people detector: boxes labelled "person"
//	motion[=AREA]  background subtraction (MOG2): boxes labelled "motion"
//	               around moving regions of at least AREA pixels (default
//	               0.1% of the picture)
//	blur-faces     faces, then blur them in the picture
//	resize=W       scale the picture to W pixels wide, keeping its aspect
//	gray, blur=K, edges[=LO:HI], overlay
//	               the publisher's filters (see publisher.ParseFilter)
//	draw           burn the boxes found so far into the picture
func ParseSteps(specs []string, opt StepOptions) ([]Step, error) {
	var steps []Step
	fail := func(err error) ([]Step, error) {
		closeSteps(steps)
		return nil, err
	}
	for _, spec := range specs {
		for _, one := range strings.Split(spec, ",") {
			one = strings.TrimSpace(one)
			if one == "" {
				continue
			}
			s, err := parseStep(one, opt)
			if err != nil {
				return fail(err)
			}
			steps = append(steps, s)
		}
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("no steps: use %s", StepNames)
	}
	return steps, nil
}

func parseStep(spec string, opt StepOptions) (Step, error) {
	name, arg, hasArg := strings.Cut(spec, "=")
	noArg := func(s Step, err error) (Step, error) {
		if hasArg {
			if s != nil {
				closeSteps([]Step{s})
			}
			return nil, fmt.Errorf("step %s takes no argument", name)
		}
		return s, err
	}
	switch name {
	case "faces":
		return noArg(newFaces(opt.Cascade, false))
	case "blur-faces":
		return noArg(newFaces(opt.Cascade, true))
	case "people":
		return noArg(newPeople())
	case "motion":
		area := 0
		if hasArg {
			var err error
			if area, err = strconv.Atoi(arg); err != nil || area < 1 || area > 1<<26 {
				return nil, fmt.Errorf("step motion=%s: the minimum area is a number of pixels, 1 to %d", arg, 1<<26)
			}
		}
		return newMotion(area), nil
	case "resize":
		w, err := strconv.Atoi(arg)
		if !hasArg || err != nil || w < 16 || w > 7680 {
			return nil, fmt.Errorf("step resize=%s: give the width in pixels, 16 to 7680 (resize=320)", arg)
		}
		return &resizeStep{width: w, out: gocv.NewMat()}, nil
	case "draw":
		return noArg(&drawStep{out: gocv.NewMat()}, nil)
	case "gray", "grey", "blur", "edges", "canny", "overlay":
		return newFilterStep(spec)
	}
	return nil, fmt.Errorf("unknown step %q: use %s", spec, StepNames)
}

// closeSteps closes the steps that hold memory.
func closeSteps(steps []Step) {
	for _, s := range steps {
		if c, ok := s.(interface{ Close() error }); ok {
			c.Close()
		}
	}
}

// boxesFrom turns detections in a picture scaled by s from region r into
// boxes of the full picture.
func boxesFrom(dets []detection, r image.Rectangle, s float64, label string) []protocol.Box {
	out := make([]protocol.Box, 0, len(dets))
	for _, d := range dets {
		out = append(out, protocol.Box{
			X: float64(r.Min.X) + float64(d.rect.Min.X)/s, Y: float64(r.Min.Y) + float64(d.rect.Min.Y)/s,
			W: float64(d.rect.Dx()) / s, H: float64(d.rect.Dy()) / s,
			Label: label, Score: d.score,
		})
	}
	return out
}
