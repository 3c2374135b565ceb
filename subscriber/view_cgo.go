//go:build cgo

package subscriber

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"log/slog"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"framehub/internal/newest"
	"framehub/protocol"
)

// ViewConfig configures View.
type ViewConfig struct {
	Client   Config   // Hub, Header, TLS, Guard, backoff; Channel is set per window
	Channels []string // one window each
	// MaxPixels is the viewer's own limit on a frame's width × height,
	// checked before a frame is decoded whatever the client accepted.
	// 0 means protocol.DefaultMaxPixels.
	MaxPixels uint64
	// OnShow, if set, is called with each picture as it is shown (boxes
	// and text drawn), on the window goroutine. It must not keep or
	// change the Mat. For tests and programs that embed the viewer.
	OnShow func(channel string, picture gocv.Mat)
	Logger *slog.Logger
}

// A window takes the size of the frames it shows, scaled down (keeping the
// aspect ratio) to fit within MaxWindowWidth × MaxWindowHeight, which
// leaves room for the window's toolbar and status bar on a 1366×768
// laptop screen. It is sized again when the frame size changes; in
// between, the user may resize it.
const (
	MaxWindowWidth  = 1280
	MaxWindowHeight = 720
)

// fitWindow returns the window size for a w×h picture: the picture's own,
// scaled down to fit MaxWindowWidth × MaxWindowHeight.
func fitWindow(w, h int) image.Point {
	scale := min(1, float64(MaxWindowWidth)/float64(w), float64(MaxWindowHeight)/float64(h))
	return image.Pt(max(1, int(math.Round(float64(w)*scale))), max(1, int(math.Round(float64(h)*scale))))
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
	Shown    uint64 // frames decoded and drawn; the rest were replaced by newer ones first or refused
	// Refused counts frames skipped because they cannot be shown: past the
	// client's guard or the viewer's pixel limit, malformed or not
	// decodable.
	Refused uint64
}

// viewWindow is one channel's window and the newest frame waiting for it.
type viewWindow struct {
	name    string
	win     *gocv.Window
	pending newest.Slot[Frame] // newest received, not yet shown (the GUI loop polls it: no wake)
	recv    atomic.Uint64
	shown   uint64
	refused uint64
	fps     float64
	last    time.Time
	mat     gocv.Mat
	sizedTo image.Point // frame size the window was last fitted to
	// Static after creation.
	maxPixels uint64
	client    *Client
	onShow    func(string, gocv.Mat)
}

// View opens a window per channel and shows each channel's newest frame
// with its fps and frame age drawn on it, until ctx ends or the user
// presses q or Esc. Frames arriving while one is being decoded replace
// each other: only the newest is ever decoded. All windows of the process are
// driven from one OS thread, as GUI toolkits require.
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
	var stats []ViewStats
	var err error
	onGUIThread(func() { stats, err = viewLoop(ctx, cfg, clients, log) })
	return stats, err
}

// gui is the process's one GUI thread. Qt, behind OpenCV's highgui, must
// be driven from the thread that first used it: a second View on another
// thread (a second call in the same process) would hang in NewWindow.
var gui struct {
	once  sync.Once
	calls chan func()
}

// onGUIThread runs f on the GUI thread and waits for it.
func onGUIThread(f func()) {
	gui.once.Do(func() {
		gui.calls = make(chan func())
		go func() {
			runtime.LockOSThread() // for the life of the process
			for call := range gui.calls {
				call()
			}
		}()
	})
	done := make(chan struct{})
	gui.calls <- func() { defer close(done); f() }
	<-done
}

// viewLoop shows the clients' frames until ctx ends or the user quits; it
// runs on the GUI thread.
func viewLoop(ctx context.Context, cfg ViewConfig, clients []*Client, log *slog.Logger) ([]ViewStats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wins := make([]*viewWindow, len(clients))
	for i, ch := range cfg.Channels {
		wins[i] = &viewWindow{name: ch, win: gocv.NewWindow("framehub: " + ch), mat: gocv.NewMat(),
			maxPixels: cfg.MaxPixels, client: clients[i], onShow: cfg.OnShow}
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
				c.Meta = append([]byte(nil), f.Meta...)
				w.pending.Put(&c)
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
	var lastRefusalLog time.Time
	for ctx.Err() == nil {
		for _, w := range wins {
			if f := w.pending.Take(); f != nil {
				if err := w.show(f); err != nil {
					w.refused++
					if now := time.Now(); now.Sub(lastRefusalLog) >= refusalLogEvery {
						lastRefusalLog = now
						log.Warn("cannot show frame", "channel", w.name, "error", err.Error(), "refused_so_far", w.refused)
					}
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
		stats[i] = ViewStats{Channel: w.name, Received: w.recv.Load(), Shown: w.shown, Refused: w.refused + w.client.Invalid()}
	}
	return stats, loopErr
}

// show decodes f and draws it with the boxes and events of its metadata,
// its fps and age, fitting the window to the frame when the frame size changes.
func (w *viewWindow) show(f *Frame) error {
	if err := DecodeMatLimit(&f.Frame, &w.mat, w.maxPixels); err != nil {
		return err
	}
	if size := image.Pt(w.mat.Cols(), w.mat.Rows()); size != w.sizedTo {
		fit := fitWindow(size.X, size.Y)
		w.win.ResizeWindow(fit.X, fit.Y)
		w.sizedTo = size
	}
	if w.mat.Channels() != 3 {
		// Gray or BGRA: convert, so the overlay can be drawn in colour.
		code := gocv.ColorGrayToBGR
		if w.mat.Channels() == 4 {
			code = gocv.ColorBGRAToBGR
		}
		gocv.CvtColor(w.mat, &w.mat, code)
	}
	boxes, _ := protocol.ParseBoxes(f.Meta) // what cannot be drawn is left out, as on the page
	DrawBoxes(&w.mat, boxes)
	events, _ := protocol.ParseEvents(f.Meta)
	DrawEvents(&w.mat, events)
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
	if w.onShow != nil {
		w.onShow(w.name, w.mat)
	}
	w.shown++
	return nil
}
