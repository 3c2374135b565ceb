//go:build cgo

package publisher

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"framehub/protocol"

	"framehub/internal/backoff"
)

// Source delivers frames. Read waits for the next frame, as the source
// paces it, and decodes it into m (BGR, 8-bit). It returns io.EOF at the end
// of a file that does not loop. A Source is used by one goroutine.
type Source interface {
	Read(ctx context.Context, m *gocv.Mat) error
	Close() error
	String() string
}

// SourceOptions tune OpenSource.
type SourceOptions struct {
	Loop   bool         // files: start again at the end
	FPS    float64      // test pattern: frame rate (default 30)
	Logger *slog.Logger // reopen attempts of live sources

	// health, set by a Publisher, hears of a live source's losses and
	// reopenings, and gets FFmpeg's error lines while a stream is open.
	health *health
}

// OpenSource opens a source described by spec:
//
//	0, 1, …           a camera by index (/dev/videoN on Linux)
//	test, test:WxH    the built-in animated test pattern (default 1280x720)
//	gst:PIPELINE      a GStreamer pipeline ending in appsink
//	-                 a Motion JPEG stream on stdin (ffmpeg -f mjpeg -, libcamera-vid)
//	rtsp://…, http://…, https://…  a stream, through OpenCV's FFmpeg backend
//	anything else     a video file, paced to its own frame rate
//
// A missing camera, an unreadable file or a URL that cannot be opened is a
// clear error here; a live source (camera, URL, pipeline) that fails later
// is reopened with backoff.
func OpenSource(spec string, opt SourceOptions) (Source, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.health == nil {
		opt.health = newHealth(opt.Logger, nil, 0)
	}
	switch {
	case spec == "":
		return nil, errors.New("no source given: use a camera index (0), a file, a URL, gst:PIPELINE or test")
	case spec == "-":
		return openStdinSource()
	case spec == "test" || strings.HasPrefix(spec, "test:"):
		return newPattern(spec, opt.FPS)
	case strings.HasPrefix(spec, "gst:"):
		return openLive("GStreamer pipeline", opt.health, func() (*gocv.VideoCapture, error) {
			return gocv.VideoCaptureFileWithAPI(strings.TrimPrefix(spec, "gst:"), gocv.VideoCaptureGstreamer)
		})
	case isDigits(spec):
		idx, err := strconv.Atoi(spec)
		if err != nil {
			return nil, fmt.Errorf("camera index %q: %w", spec, err)
		}
		if runtime.GOOS == "linux" {
			dev := fmt.Sprintf("/dev/video%d", idx)
			if _, err := os.Stat(dev); err != nil {
				return nil, fmt.Errorf("no camera %d: %s does not exist (is a camera connected?)", idx, dev)
			}
		}
		return openLive("camera "+spec, opt.health, func() (*gocv.VideoCapture, error) {
			return gocv.VideoCaptureDevice(idx)
		})
	case strings.Contains(spec, "://"):
		release := captureAVLog(opt.health, redactor(spec))
		probe := false
		src, err := openLive("stream "+protocol.RedactURL(spec), opt.health, func() (*gocv.VideoCapture, error) {
			setCaptureOptions(spec, 2*opt.health.timeout(), probe)
			vc, err := gocv.VideoCaptureFileWithAPI(spec, gocv.VideoCaptureFFmpeg)
			if (err != nil || !vc.IsOpened()) && !probe && needsProbe(opt.health.lastError()) {
				// The session description does not say the picture size:
				// probe the stream, from now on.
				if vc != nil {
					vc.Close()
				}
				probe = true
				setCaptureOptions(spec, 2*opt.health.timeout(), probe)
				vc, err = gocv.VideoCaptureFileWithAPI(spec, gocv.VideoCaptureFFmpeg)
			}
			return vc, err
		})
		if err != nil {
			release()
			return nil, err
		}
		src.(*liveSource).release = release
		src.(*liveSource).addr = hostPort(spec)
		return src, nil
	default:
		return openFile(spec, opt.Loop)
	}
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// capture wraps an OpenCV VideoCapture.
type capture struct {
	name string
	vc   *gocv.VideoCapture
}

func (c *capture) String() string { return c.name }

func (c *capture) Close() error {
	if c.vc == nil {
		return nil
	}
	err := c.vc.Close()
	c.vc = nil
	return err
}

// fileSource plays a video file at its own frame rate.
type fileSource struct {
	capture
	path  string
	loop  bool
	every time.Duration
	next  time.Time
}

func openFile(path string, loop bool) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("video file: %w", err)
	}
	st, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("video file: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("video file %s is a directory", path)
	}
	vc, err := openVideoFile(path)
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return nil, fmt.Errorf("cannot read video file %s: OpenCV could not open it as video", path)
	}
	fps := vc.Get(gocv.VideoCaptureFPS)
	if fps <= 0 || fps > 1000 || math.IsNaN(fps) {
		fps = 30
	}
	return &fileSource{capture: capture{name: "file " + path, vc: vc}, path: path, loop: loop,
		every: time.Duration(float64(time.Second) / fps)}, nil
}

// FPS returns the file's frame rate.
func (s *fileSource) FPS() float64 { return float64(time.Second) / float64(s.every) }

func (s *fileSource) Read(ctx context.Context, m *gocv.Mat) error {
	if err := sleepUntil(ctx, s.next); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if s.vc.Read(m) && !m.Empty() {
			break
		}
		if !s.loop || attempt > 0 {
			if attempt > 0 {
				return fmt.Errorf("%s: no frame after rewinding", s.name)
			}
			return io.EOF
		}
		// Rewind; some containers cannot seek, so reopen instead.
		s.vc.Close()
		vc, err := openVideoFile(s.path)
		if err != nil || !vc.IsOpened() {
			if vc != nil {
				vc.Close()
			}
			s.vc = nil
			return fmt.Errorf("cannot reopen %s to loop it", s.path)
		}
		s.vc = vc
	}
	now := time.Now()
	if s.next.IsZero() || now.Sub(s.next) > time.Second {
		s.next = now // first frame, or we fell far behind: do not rush to catch up
	}
	s.next = s.next.Add(s.every)
	return nil
}

// openVideoFile opens a file with OpenCV's FFmpeg backend only: letting
// OpenCV try every backend makes a bad file print a page of exceptions from
// the GStreamer and image-sequence backends.
func openVideoFile(path string) (*gocv.VideoCapture, error) {
	return gocv.VideoCaptureFileWithAPI(path, gocv.VideoCaptureFFmpeg)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	backoff.Wait(ctx, d)
	return ctx.Err()
}

// setCaptureOptions has OpenCV's FFmpeg backend give up on a socket that
// is silent for timeout, and read an RTSP camera over TCP without probing
// (the session description says what the stream holds), through the
// environment variable OpenCV 4.6 reads when it opens a stream (gocv
// v0.31.0 cannot pass it open parameters). Without it, a camera that hangs
// keeps a read blocked for OpenCV's own 30 s, and opening a camera that
// returns took about 2.7 s. Not "fflags;nobuffer", for the reason given at
// ffmpegArgs: it cost every reopen a key frame interval (a camera that
// returned streamed again 1.3-1.8 s after it answered; without it, 0.3-0.5
// s, with the same frame age). A value the user set is left alone.
func setCaptureOptions(url string, timeout time.Duration, probe bool) {
	const name = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
	if v, ok := os.LookupEnv(name); ok && !strings.HasPrefix(v, framehubOptions) {
		return
	}
	opts := framehubOptions + "timeout;" + strconv.FormatInt(timeout.Microseconds(), 10)
	if u := strings.ToLower(url); strings.HasPrefix(u, "rtsp://") || strings.HasPrefix(u, "rtsps://") {
		opts += "|rtsp_transport;tcp"
		if !probe {
			opts += "|probesize;32|analyzeduration;0"
		}
	}
	os.Setenv(name, opts)
}

// framehubOptions starts the capture options framehub sets, so that it
// can tell them from the user's: an option FFmpeg ignores.
const framehubOptions = "framehub;1|"

// liveSource is a camera, stream or pipeline: it paces itself, and when it
// fails it is reopened with backoff until the context ends.
type liveSource struct {
	capture
	open     func() (*gocv.VideoCapture, error)
	health   *health
	b        backoff.Backoff
	released bool    // closed while idle on demand: open again at once
	release  func()  // stops sending FFmpeg's lines to health (streams)
	addr     string  // a stream's TCP host:port, polled before it is reopened ("": none)
	lastPos  float64 // the stream time of the last frame, ms (0: unknown)
	stale    uint64  // frames dropped as stale (see Read)
}

func openLive(name string, h *health, open func() (*gocv.VideoCapture, error)) (Source, error) {
	vc, err := open()
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		cause := ""
		if text := h.lastError(); text != "" {
			cause = ": " + text
		}
		return nil, fmt.Errorf("cannot open %s%s", name, cause)
	}
	return &liveSource{capture: capture{name: name, vc: vc}, open: open, health: h, b: reopenBackoff(), release: func() {}}, nil
}

func (s *liveSource) Close() error {
	s.release()
	return s.capture.Close()
}

// Release closes the device or stream while the publisher idles on
// demand (a camera's light goes off, a stream stops downloading); the next
// Read opens it again.
func (s *liveSource) Release() {
	if s.vc != nil {
		s.vc.Close()
		s.vc = nil
	}
	s.released = true
}

func (s *liveSource) Read(ctx context.Context, m *gocv.Mat) error {
	if s.released {
		s.released = false
		if vc, err := s.open(); err == nil && vc.IsOpened() {
			s.vc, s.lastPos = vc, 0
			s.health.opened(time.Now())
		} else if vc != nil {
			vc.Close()
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if s.vc != nil && s.vc.Read(m) && !m.Empty() {
			if s.staleAfterWait(time.Since(start)) {
				continue
			}
			s.b.Reset()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err() // stopping: a read cut short is no loss
		}
		if s.vc != nil {
			s.health.lost(errors.New("the source stopped delivering frames"))
			s.vc.Close()
			s.vc = nil
		}
		if !s.b.Sleep(ctx) {
			return ctx.Err()
		}
		// A stream whose host refuses connections (a camera restarting)
		// is polled with a bare TCP connect, cheap enough to try every
		// reachPoll, rather than opened through FFmpeg with a backoff
		// that grows while it is away: it is opened as soon as it answers.
		if !awaitReachable(ctx, s.addr, s.health) {
			return ctx.Err()
		}
		s.health.opening()
		began := time.Now()
		vc, err := s.open()
		ok := err == nil && vc.IsOpened()
		s.health.openDone(time.Since(began), ok)
		if !ok {
			if vc != nil {
				vc.Close()
			}
			continue // FFmpeg's own lines say why, through the health
		}
		s.health.opened(time.Now())
		s.vc, s.lastPos = vc, 0 // a new stream's times start again
	}
}

// staleAfterWait reports whether the frame just read, after a read that
// blocked for waited, is an old one: when a stream goes silent, OpenCV's
// FFmpeg backend gives up after its socket timeout and then returns the
// frame its parser still held, captured before the silence. A frame whose
// stream time advanced by less than half the wait is such a frame: it is
// dropped (counted, logged at most once per 10 s) rather than published
// as new. Sources without stream times (cameras) are not checked.
func (s *liveSource) staleAfterWait(waited time.Duration) bool {
	pos := s.vc.Get(gocv.VideoCapturePosMsec)
	last := s.lastPos
	s.lastPos = pos
	if pos <= 0 || last <= 0 || waited < time.Second {
		return false
	}
	advanced := time.Duration((pos - last) * float64(time.Millisecond))
	if advanced >= waited/2 {
		return false
	}
	s.stale++
	s.health.libError(fmt.Sprintf("dropped a frame %v old that the stream's decoder held through %v of silence",
		waited.Round(100*time.Millisecond), waited.Round(100*time.Millisecond)))
	return true
}

// pattern is the built-in test pattern: colour bars, a bouncing ball, a
// frame counter and the time, drawn with OpenCV at a fixed rate.
type pattern struct {
	w, h  int
	every time.Duration
	next  time.Time
	n     uint64
	bg    gocv.Mat // the static background, drawn once
}

func newPattern(spec string, fps float64) (Source, error) {
	w, h := 1280, 720
	if size, ok := strings.CutPrefix(spec, "test:"); ok {
		if _, err := fmt.Sscanf(size, "%dx%d", &w, &h); err != nil || w < 64 || h < 48 || w > 7680 || h > 4320 {
			return nil, fmt.Errorf("test pattern size %q: use WxH between 64x48 and 7680x4320", size)
		}
	}
	if fps <= 0 {
		fps = 30
	}
	p := &pattern{w: w, h: h, every: time.Duration(float64(time.Second) / fps),
		bg: gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)}
	bars := []color.RGBA{{192, 192, 192, 0}, {192, 192, 0, 0}, {0, 192, 192, 0}, {0, 192, 0, 0},
		{192, 0, 192, 0}, {192, 0, 0, 0}, {0, 0, 192, 0}, {16, 16, 16, 0}}
	for i, c := range bars {
		r := image.Rect(i*w/len(bars), 0, (i+1)*w/len(bars), h)
		gocv.Rectangle(&p.bg, r, c, -1)
	}
	return p, nil
}

func (p *pattern) String() string { return fmt.Sprintf("test pattern %dx%d", p.w, p.h) }

func (p *pattern) Close() error { return p.bg.Close() }

func (p *pattern) Read(ctx context.Context, m *gocv.Mat) error {
	if err := sleepUntil(ctx, p.next); err != nil {
		return err
	}
	now := time.Now()
	if p.next.IsZero() || now.Sub(p.next) > time.Second {
		p.next = now
	}
	p.next = p.next.Add(p.every)
	p.n++
	p.bg.CopyTo(m)
	// A ball bouncing across the frame, so motion and staleness are visible.
	t := float64(p.n) / 30
	r := p.h / 10
	x := r + int(float64(p.w-2*r)*(0.5+0.5*math.Sin(t*1.3)))
	y := r + int(float64(p.h-2*r)*(0.5+0.5*math.Abs(math.Sin(t*2.1))))
	gocv.Circle(m, image.Pt(x, y), r, color.RGBA{255, 255, 255, 0}, -1)
	gocv.Circle(m, image.Pt(x, y), r/2, color.RGBA{0, 0, 255, 0}, -1)
	scale := float64(p.h) / 360
	label := fmt.Sprintf("framehub  #%06d  %s", p.n, now.Format("15:04:05.000"))
	box := image.Rect(0, p.h-int(40*scale), p.w, p.h)
	gocv.Rectangle(m, box, color.RGBA{0, 0, 0, 0}, -1)
	gocv.PutText(m, label, image.Pt(int(10*scale), p.h-int(12*scale)), gocv.FontHersheySimplex, scale*0.8,
		color.RGBA{255, 255, 255, 0}, max(1, int(2*scale)))
	return nil
}
