//go:build cgo

package publisher

import (
	"fmt"
	"image"
	"image/color"
	"strconv"
	"strings"
	"time"

	"gocv.io/x/gocv"
)

// Frame is what a Filter works on: the picture and what is known about it.
type Frame struct {
	// Mat is the picture: 8-bit BGR, or gray after a gray filter. A filter
	// may draw on it in place, or point Mat at a Mat of its own that stays
	// valid until its next Apply.
	Mat      *gocv.Mat
	Seq      uint64
	Captured time.Time
	Channel  string
	FPS      float64 // frames sent per second lately
	// Meta is sent with the frame as its JSON metadata: a filter may add
	// keys, such as "boxes" (see protocol.Box for the schema the page
	// draws). It is empty at the start of every frame. Metadata that does
	// not marshal to JSON, or is larger than the hub accepts, is left out
	// of the frame (the frame is still sent), counted and logged.
	Meta map[string]any
}

// Filter is one processing step, applied to every frame the publisher
// sends (not to frames it skips). Apply runs on the sender goroutine, one
// frame at a time. A Filter that holds OpenCV memory should also implement
// io.Closer; the publisher closes it when it is done.
type Filter interface {
	Apply(f *Frame) error
}

// ParseFilter returns the built-in filter named by spec:
//
//	gray           convert to grayscale (one channel)
//	blur=K         Gaussian blur with an odd kernel size K (default 5)
//	edges[=LO:HI]  Canny edges with hysteresis thresholds (default 100:200)
//	overlay        burn in the capture time, channel name and fps
func ParseFilter(spec string) (Filter, error) {
	name, arg, hasArg := strings.Cut(strings.TrimSpace(spec), "=")
	switch name {
	case "gray", "grey":
		if hasArg {
			return nil, fmt.Errorf("filter gray takes no argument")
		}
		return &grayFilter{out: gocv.NewMat()}, nil
	case "blur":
		k := 5
		if hasArg {
			var err error
			if k, err = strconv.Atoi(arg); err != nil || k < 1 || k > 99 || k%2 == 0 {
				return nil, fmt.Errorf("filter blur=%s: kernel size must be odd, 1 to 99", arg)
			}
		}
		return &blurFilter{k: k, out: gocv.NewMat()}, nil
	case "edges", "canny":
		lo, hi := float32(100), float32(200)
		if hasArg {
			if _, err := fmt.Sscanf(arg, "%f:%f", &lo, &hi); err != nil || lo < 0 || hi < lo {
				return nil, fmt.Errorf("filter edges=%s: use LO:HI with 0 <= LO <= HI", arg)
			}
		}
		return &edgesFilter{lo: lo, hi: hi, gray: gocv.NewMat(), out: gocv.NewMat()}, nil
	case "overlay":
		if hasArg {
			return nil, fmt.Errorf("filter overlay takes no argument")
		}
		return overlayFilter{}, nil
	}
	return nil, fmt.Errorf("unknown filter %q: use gray, blur=K, edges[=LO:HI] or overlay", spec)
}

type grayFilter struct{ out gocv.Mat }

func (g *grayFilter) Apply(f *Frame) error {
	if f.Mat.Channels() == 1 {
		return nil
	}
	gocv.CvtColor(*f.Mat, &g.out, gocv.ColorBGRToGray)
	f.Mat = &g.out
	return nil
}

func (g *grayFilter) Close() error { return g.out.Close() }

type blurFilter struct {
	k   int
	out gocv.Mat
}

func (b *blurFilter) Apply(f *Frame) error {
	gocv.GaussianBlur(*f.Mat, &b.out, image.Pt(b.k, b.k), 0, 0, gocv.BorderDefault)
	f.Mat = &b.out
	return nil
}

func (b *blurFilter) Close() error { return b.out.Close() }

type edgesFilter struct {
	lo, hi    float32
	gray, out gocv.Mat
}

func (e *edgesFilter) Apply(f *Frame) error {
	src := f.Mat
	if src.Channels() != 1 {
		gocv.CvtColor(*src, &e.gray, gocv.ColorBGRToGray)
		src = &e.gray
	}
	gocv.Canny(*src, &e.out, e.lo, e.hi)
	f.Mat = &e.out
	return nil
}

func (e *edgesFilter) Close() error {
	e.gray.Close()
	return e.out.Close()
}

// overlayFilter draws on the frame in place.
type overlayFilter struct{}

func (overlayFilter) Apply(f *Frame) error {
	h := f.Mat.Rows()
	scale := float64(h) / 480
	text := fmt.Sprintf("%s  %s  %.1f fps", f.Channel, f.Captured.Format("2006-01-02 15:04:05.000"), f.FPS)
	org := image.Pt(int(8*scale)+1, int(24*scale)+1)
	thick := max(1, int(2*scale))
	// Dark outline first, so the text reads on any background.
	gocv.PutText(f.Mat, text, org, gocv.FontHersheySimplex, 0.6*scale, color.RGBA{0, 0, 0, 0}, thick+2)
	gocv.PutText(f.Mat, text, org, gocv.FontHersheySimplex, 0.6*scale, color.RGBA{255, 255, 255, 0}, thick)
	return nil
}
