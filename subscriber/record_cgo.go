//go:build cgo

package subscriber

import (
	"context"
	"fmt"
	"os"
	"time"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// haveOpenCV says whether this build can write .avi and .mp4 files.
const haveOpenCV = true

// openCVFiles writes files of a constant frame rate through OpenCV's
// VideoWriter. The writer reports no write errors (a full disk goes
// unnoticed), so close reopens each file and checks that it holds every
// frame written.
type openCVFiles struct {
	// Static after creation.
	fourcc    string
	fps       float64
	maxPixels uint64
	drawBoxes bool

	vw      *gocv.VideoWriter // the open file, or nil
	name    string
	written int      // frames in the open file
	prev    gocv.Mat // the picture written last, repeated to fill gaps
	next    gocv.Mat // the prepared picture
	have    bool     // prev holds a picture of the open file
}

func newOpenCVFiles(fourcc string, fps float64, maxPixels uint64, drawBoxes bool) (videoWriter, error) {
	return &openCVFiles{fourcc: fourcc, fps: fps, maxPixels: maxPixels, drawBoxes: drawBoxes, prev: gocv.NewMat(), next: gocv.NewMat()}, nil
}

// prepare decodes f as 8-bit BGR, and draws its boxes in if asked.
func (o *openCVFiles) prepare(f *Frame, w, h int) error {
	if err := DecodeMatLimit(&f.Frame, &o.next, o.maxPixels); err != nil {
		return err
	}
	toBGR(&o.next)
	if o.drawBoxes {
		boxes, _ := protocol.ParseBoxes(f.Meta)
		DrawBoxes(&o.next, boxes)
	}
	if o.next.Cols() != w || o.next.Rows() != h {
		return fmt.Errorf("frame %d: decodes to %dx%d, not %dx%d", f.Seq, o.next.Cols(), o.next.Rows(), w, h)
	}
	return nil
}

func (o *openCVFiles) open(name string, w, h int, _ time.Time, fresh bool) error {
	if fresh { // made here first, so that OpenCV writes a new file, not through a symlink
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	vw, err := gocv.VideoWriterFile(name, o.fourcc, o.fps, w, h, true)
	if err != nil || !vw.IsOpened() {
		if vw != nil {
			vw.Close()
		}
		return fmt.Errorf("cannot write %s with codec %s at %dx%d: OpenCV could not open it", name, o.fourcc, w, h)
	}
	o.vw, o.name, o.written, o.have = vw, name, 0, false
	return nil
}

// write repeats the previous picture fill times (fewer if ctx ends), then
// writes the prepared one.
func (o *openCVFiles) write(ctx context.Context, _ time.Duration, fill int) (int, error) {
	n := 0
	for ; o.have && n < fill && ctx.Err() == nil; n++ {
		if err := o.vw.Write(o.prev); err != nil {
			o.written += n
			return n, fmt.Errorf("write %s: %w", o.name, err)
		}
	}
	if err := o.vw.Write(o.next); err != nil {
		o.written += n
		return n, fmt.Errorf("write %s: %w", o.name, err)
	}
	n++
	o.written += n
	o.prev, o.next = o.next, o.prev
	o.have = true
	return n, nil
}

// close finishes the file and checks it: OpenCV's writer drops write
// errors, so a file that holds fewer frames than were written to it is
// reported here, with the likeliest cause.
func (o *openCVFiles) close() error {
	if o.vw == nil {
		return nil
	}
	err := o.vw.Close()
	o.vw = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", o.name, err)
	}
	got, err := videoFrameCount(o.name)
	if err == nil && got >= o.written {
		return nil
	}
	cause := writeFailureCause(o.name)
	if err != nil {
		return fmt.Errorf("write %s: the file is unreadable after %d frames were written (%v): %w", o.name, o.written, err, cause)
	}
	return fmt.Errorf("write %s: the file holds %d of the %d frames written: %w", o.name, got, o.written, cause)
}

func (o *openCVFiles) release() {
	o.prev.Close()
	o.next.Close()
}

// videoFrameCount opens a video file with OpenCV and returns the frame
// count its container states.
func videoFrameCount(name string) (int, error) {
	if _, err := os.Stat(name); err != nil {
		return 0, err
	}
	vc, err := gocv.VideoCaptureFile(name)
	if err != nil {
		return 0, err
	}
	defer vc.Close()
	if !vc.IsOpened() {
		return 0, fmt.Errorf("OpenCV cannot open it")
	}
	return int(vc.Get(gocv.VideoCaptureFrameCount)), nil
}
