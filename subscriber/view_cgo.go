//go:build cgo

package subscriber

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"
)

// ViewConfig configures View.
type ViewConfig struct {
	Client   Config   // Hub, Header, TLS, backoff; Channel is set per window
	Channels []string // one window each
	Logger   *slog.Logger
}

// ErrNoDisplay is returned by View when no display is set: OpenCV's Qt
// backend would abort the whole process instead of failing.
var ErrNoDisplay = errors.New("no display: set DISPLAY (X11) or WAYLAND_DISPLAY, or QT_QPA_PLATFORM=offscreen to run without one")

// HasDisplay reports whether a window can be opened.
func HasDisplay() bool {
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" || os.Getenv("QT_QPA_PLATFORM") != ""
}

// ViewStats is what one window showed.
type ViewStats struct {
	Channel  string
	Received uint64 // frames that arrived
	Shown    uint64 // frames decoded and drawn; the rest were replaced by newer ones first
}

// viewWindow is one channel's window and the newest frame waiting for it.
type viewWindow struct {
	name    string
	win     *gocv.Window
	pending atomic.Pointer[Frame] // newest received, not yet shown
	recv    atomic.Uint64
	shown   uint64
	fps     float64
	last    time.Time
	mat     gocv.Mat
}

// View opens a window per channel and shows each channel's newest frame
// with its fps and frame age drawn on it, until ctx ends or the user
// presses q or Esc. Frames arriving while one is being decoded replace
// each other: only the newest is ever decoded. View locks its goroutine to
// its OS thread, as GUI toolkits require.
func View(ctx context.Context, cfg ViewConfig) ([]ViewStats, error) {
	if len(cfg.Channels) == 0 {
		return nil, errors.New("no channel to view")
	}
	if !HasDisplay() {
		return nil, ErrNoDisplay
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var clients []*Client
	for _, ch := range cfg.Channels {
		cc := cfg.Client
		cc.Channel, cc.Logger = ch, log
		cl, err := New(cc)
		if err != nil {
			return nil, err
		}
		clients = append(clients, cl)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wins := make([]*viewWindow, len(clients))
	for i, ch := range cfg.Channels {
		wins[i] = &viewWindow{name: ch, win: gocv.NewWindow("framehub: " + ch), mat: gocv.NewMat()}
	}
	defer func() {
		for _, w := range wins {
			w.win.Close()
			w.mat.Close()
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	for i, cl := range clients {
		w := wins[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cl.Run(ctx, func(f *Frame) error {
				// The frame's bytes are only valid during this call: keep a copy.
				c := *f
				c.Payload = append([]byte(nil), f.Payload...)
				c.Meta = nil
				w.pending.Store(&c)
				w.recv.Add(1)
				return nil
			})
			if err != nil {
				errs <- fmt.Errorf("channel %s: %w", w.name, err)
				cancel()
			}
		}()
	}

	waiting := gocv.NewMatWithSize(240, 480, gocv.MatTypeCV8UC3)
	defer waiting.Close()
	for _, w := range wins {
		waiting.SetTo(gocv.NewScalar(40, 40, 40, 0))
		gocv.PutText(&waiting, "waiting for "+w.name+"...", image.Pt(20, 120), gocv.FontHersheySimplex, 0.7, color.RGBA{220, 220, 220, 0}, 2)
		w.win.IMShow(waiting)
	}
	var loopErr error
	for ctx.Err() == nil {
		for _, w := range wins {
			if f := w.pending.Swap(nil); f != nil {
				if err := w.show(f); err != nil {
					log.Warn("cannot show frame", "channel", w.name, "error", err.Error())
				}
			}
		}
		key := wins[0].win.WaitKey(5)
		if key == 'q' || key == 'Q' || key == 27 {
			break
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		loopErr = errors.Join(loopErr, err)
	}
	stats := make([]ViewStats, len(wins))
	for i, w := range wins {
		stats[i] = ViewStats{Channel: w.name, Received: w.recv.Load(), Shown: w.shown}
	}
	return stats, loopErr
}

// show decodes f and draws it with its fps and age.
func (w *viewWindow) show(f *Frame) error {
	if err := DecodeMat(&f.Frame, &w.mat); err != nil {
		return err
	}
	if w.mat.Channels() != 3 {
		// Gray or BGRA: convert, so the overlay can be drawn in colour.
		code := gocv.ColorGrayToBGR
		if w.mat.Channels() == 4 {
			code = gocv.ColorBGRAToBGR
		}
		gocv.CvtColor(w.mat, &w.mat, code)
	}
	now := time.Now()
	if !w.last.IsZero() {
		inst := 1 / now.Sub(w.last).Seconds()
		w.fps += 0.1 * (inst - w.fps)
	}
	w.last = now
	age := now.Sub(time.Unix(0, f.CaptureTime))
	text := fmt.Sprintf("%s  %dx%d  %.1f fps  age %.0f ms  #%d", w.name, f.Width, f.Height, w.fps,
		float64(age)/float64(time.Millisecond), f.Seq)
	scale := max(0.5, float64(w.mat.Rows())/720)
	org := image.Pt(10, int(30*scale))
	gocv.PutText(&w.mat, text, org, gocv.FontHersheySimplex, 0.8*scale, color.RGBA{0, 0, 0, 0}, int(4*scale)+1)
	gocv.PutText(&w.mat, text, org, gocv.FontHersheySimplex, 0.8*scale, color.RGBA{255, 255, 0, 0}, int(2*scale)+1)
	w.win.IMShow(w.mat)
	w.shown++
	return nil
}
