package publisher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"framehub/internal/backoff"
	"framehub/internal/dial"
	"framehub/protocol"
)

// A Relay publishes the JPEGs of a Motion JPEG stream as they are, without
// decoding them: ffmpeg or libcamera-vid writing to stdin, or an MJPEG URL
// (another hub's stream.mjpeg, an IP camera). It needs no OpenCV, so the
// build without cgo has it. Like Publisher it has two goroutines: a reader
// that keeps only the newest complete JPEG, and the sender, which takes
// the newest each time the hub has taken the previous one; JPEGs that come
// in between are skipped and counted, never queued.

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Source is "-" (a stream on stdin: bare JPEGs or multipart) or an
	// http:// or https:// URL of an MJPEG stream.
	Source string
	// Stdin is read for "-" instead of the process's stdin (tests).
	Stdin io.Reader
	// FPS caps frames sent per second (0: every frame the source sends).
	FPS    float64
	Sender SenderConfig
	// Client fetches an MJPEG URL (nil: a client without a total
	// timeout; a source silent for SourceIdle is reopened).
	Client *http.Client
	// SourceIdle is how long an MJPEG URL may send nothing before it is
	// reopened (default 10 s).
	SourceIdle time.Duration
	Logger     *slog.Logger // nil discards
}

// IsRelaySource reports whether a Relay reads source: "-" or an http(s)
// URL.
func IsRelaySource(source string) bool {
	s := strings.ToLower(source)
	return source == "-" || strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// Relay publishes a Motion JPEG stream to a hub channel without decoding
// it. Create it with NewRelay, call Run once, then Close.
type Relay struct {
	cfg    RelayConfig
	log    *slog.Logger
	sender *Sender
	slot   *slot[jpegFrame]

	// Static after construction: the source.
	stdin     io.Reader
	interrupt func() // makes a blocked stdin read return
	restore   func() // gives stdin back as it was
	first     *http.Response

	mu    sync.Mutex
	stats Stats // Failed: JPEGs skipped, with no usable frame header or past the hub's limits
}

// NewRelay checks cfg and opens the source: stdin is checked (a terminal
// is refused), an MJPEG URL is requested once, so that a URL that cannot
// be opened is a clear error here.
func NewRelay(ctx context.Context, cfg RelayConfig) (*Relay, error) {
	if !IsRelaySource(cfg.Source) {
		return nil, fmt.Errorf("source %q: a relay reads - (stdin) or an http(s) MJPEG URL", cfg.Source)
	}
	if cfg.FPS < 0 {
		return nil, errors.New("fps must not be negative")
	}
	if cfg.SourceIdle <= 0 {
		cfg.SourceIdle = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Sender.Logger == nil {
		cfg.Sender.Logger = log
	}
	sender, err := NewSender(cfg.Sender)
	if err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg, log: log, sender: sender, slot: newSlot(func() *jpegFrame { return &jpegFrame{} }), interrupt: func() {}, restore: func() {}}
	if cfg.Source == "-" {
		r.stdin = cfg.Stdin
		if r.stdin == nil {
			if r.stdin, r.interrupt, r.restore, err = openStdin(); err != nil {
				return nil, err
			}
		}
		return r, nil
	}
	if r.first, err = r.open(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Source describes the source, its credentials hidden.
func (r *Relay) Source() string {
	if r.cfg.Source == "-" {
		return "stdin"
	}
	return "stream " + protocol.RedactURL(r.cfg.Source)
}

// Connected reports whether the relay is connected to the hub.
func (r *Relay) Connected() bool { return r.sender.Connected() }

// Stats returns the counters so far. Safe to call from any goroutine.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	s := r.stats
	r.mu.Unlock()
	s.Skipped = r.slot.skippedCount()
	s.Reconnects = r.sender.Reconnects()
	return s
}

// Run publishes until ctx ends (nil), stdin ends (nil, after its last
// frame is sent), stdin holds something that is not MJPEG, or an error
// retrying cannot fix (the hub refusing, a newer publisher taking over).
// A URL whose stream drops or goes silent is reopened with backoff.
func (r *Relay) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() { readErr <- r.readLoop(ctx) }()
	err := r.sendLoop(ctx)
	cancel()
	r.interrupt()
	rerr := <-readErr
	if err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		err = rerr
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Close ends the connection to the hub and gives stdin back. Call it
// after Run has returned.
func (r *Relay) Close() error {
	if r.first != nil {
		r.first.Body.Close()
	}
	r.restore()
	return r.sender.Close()
}

// readLoop reads the source into the slot until it ends or ctx does.
func (r *Relay) readLoop(ctx context.Context) error {
	defer r.slot.finish()
	if r.cfg.Source == "-" {
		err := r.readStream(ctx, r.stdin, protocol.MJPEGOptions{})
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("stdin: %w", err)
		}
		return nil
	}
	var b backoff.Backoff
	resp := r.first
	r.first = nil
	for {
		if resp == nil {
			var err error
			if resp, err = r.open(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.log.Warn("cannot reopen the source; retrying", "source", r.Source(), "error", err.Error())
				if !b.Sleep(ctx) {
					return nil
				}
				continue
			}
			r.log.Info("source reopened", "source", r.Source())
		}
		opt, _ := protocol.ParseMJPEGContentType(resp.Header.Get("Content-Type")) // open checked it
		err := r.readURL(ctx, resp, opt, &b)
		resp.Body.Close()
		resp = nil
		if ctx.Err() != nil {
			return nil
		}
		r.log.Warn("source stream ended; reopening", "source", r.Source(), "error", errText(err))
		if !b.Sleep(ctx) {
			return nil
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "end of stream"
	}
	return err.Error()
}

// open requests the MJPEG URL and checks that its answer is one. The
// response must come within SourceIdle; its body is read until the
// request's context is cancelled (cancelBody.cancel), which ctx ending
// does too.
func (r *Relay) open(ctx context.Context) (*http.Response, error) {
	cctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, r.cfg.Source, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("source %s: %w", protocol.RedactURL(r.cfg.Source), err)
	}
	header := time.AfterFunc(r.cfg.SourceIdle, cancel)
	resp, err := r.cfg.Client.Do(req)
	header.Stop()
	fail := func(err error) (*http.Response, error) {
		if resp != nil {
			resp.Body.Close()
		}
		cancel()
		return nil, fmt.Errorf("source %s: %w", protocol.RedactURL(r.cfg.Source), err)
	}
	switch {
	case err != nil:
		return fail(unwrapURLError(err))
	case resp.StatusCode != http.StatusOK:
		return fail(errors.New(resp.Status))
	}
	if _, err := protocol.ParseMJPEGContentType(resp.Header.Get("Content-Type")); err != nil {
		return fail(fmt.Errorf("not an MJPEG stream: %w", err))
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody is a response body whose request's context cancel ends: a
// read it blocks returns at once.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// unwrapURLError drops the "Get URL:" that net/http puts in front of an
// error, since the caller names the source itself.
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Get ") {
		return ue.Unwrap()
	}
	return err
}

// readURL reads one response of an MJPEG URL until it ends, ctx ends, or
// the source sends nothing for SourceIdle.
func (r *Relay) readURL(ctx context.Context, resp *http.Response, opt protocol.MJPEGOptions, b *backoff.Backoff) error {
	body := resp.Body.(*cancelBody)
	idle := time.AfterFunc(r.cfg.SourceIdle, body.cancel)
	defer idle.Stop()
	stop := context.AfterFunc(ctx, body.cancel)
	defer stop()
	err := r.readStream(ctx, &idleReader{r: body, idle: idle, wait: r.cfg.SourceIdle, progress: b.Reset}, opt)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
		err = fmt.Errorf("no bytes for %v", r.cfg.SourceIdle)
	}
	return err
}

// idleReader pushes its idle timer back whenever bytes arrive.
type idleReader struct {
	r        io.Reader
	idle     *time.Timer
	wait     time.Duration
	progress func()
	reset    bool
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.idle.Reset(i.wait)
		if !i.reset {
			i.progress() // the source works again: reopen quickly next time
			i.reset = true
		}
	}
	return n, err
}

// readStream splits a stream into JPEGs and offers each as the newest. It
// returns nil at the stream's end.
func (r *Relay) readStream(ctx context.Context, in io.Reader, opt protocol.MJPEGOptions) error {
	opt.MaxJPEG = protocol.DefaultLimits.MaxFrameBytes - protocol.HeaderLen
	mr := protocol.NewMJPEGReader(in, opt)
	defer mr.Close()
	var minGap time.Duration
	if r.cfg.FPS > 0 {
		minGap = time.Duration(float64(time.Second) / r.cfg.FPS * 0.9)
	}
	var last time.Time
	for {
		p, err := mr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		now := time.Now()
		r.mu.Lock()
		r.stats.Captured++
		seq := r.stats.Captured
		r.mu.Unlock()
		if minGap > 0 && !last.IsZero() && now.Sub(last) < minGap {
			continue
		}
		w, h, err := protocol.JPEGSize(p.JPEG)
		if rend := r.cfg.Sender.Rendition; err == nil && rend != protocol.RenditionMain && w != int(rend) {
			err = fmt.Errorf("a %dx%d JPEG is not rendition %v, which is exactly %v pixels wide (scale the source to that width)", w, h, rend, rend)
		}
		if err != nil {
			r.skip(err)
			continue
		}
		last = now
		at := p.CaptureTime // the source's own, when it is a framehub stream
		if at == 0 {
			at = now.UnixNano()
		}
		f := r.slot.free()
		f.jpeg = append(f.jpeg[:0], p.JPEG...)
		f.seq, f.captured, f.w, f.h = seq, at, w, h
		r.slot.put(f)
	}
}

// skip counts a source JPEG that is not sent and logs it, on the 1st,
// 2nd, 4th, 8th… time.
func (r *Relay) skip(err error) {
	r.mu.Lock()
	r.stats.Failed++
	n := r.stats.Failed
	r.mu.Unlock()
	if n&(n-1) == 0 {
		r.log.Warn("source JPEG skipped: it cannot be sent", "skipped_so_far", n, "error", err.Error())
	}
}

// fits reports why the hub would refuse a w×h JPEG of n bytes (closing
// the connection), by the limits it announced, or nil.
func (r *Relay) fits(w, h, n int) error {
	lim := r.sender.HubLimits()
	if err := lim.CheckSize(int64(w), int64(h)); err != nil {
		return err
	}
	if protocol.HeaderLen+n > lim.MaxFrameBytes {
		return fmt.Errorf("%w: %d bytes, the hub takes %d", protocol.ErrTooBig, protocol.HeaderLen+n, lim.MaxFrameBytes)
	}
	return nil
}

// sendLoop connects, takes the newest JPEG, frames it and sends it, and
// does it again. A JPEG the hub would refuse is skipped: it costs that
// frame, not a reconnection.
func (r *Relay) sendLoop(ctx context.Context) error {
	var msg []byte
	for {
		if err := r.sender.Connect(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		f, ok := r.slot.take(ctx)
		if !ok {
			return ctx.Err() // nil when the source ended
		}
		if err := r.fits(f.w, f.h, len(f.jpeg)); err != nil {
			r.slot.release(f)
			r.skip(err)
			continue
		}
		msg = append(msg[:0], make([]byte, protocol.HeaderLen)...)
		protocol.PutHeader(msg, protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey,
			Width: uint32(f.w), Height: uint32(f.h), Seq: f.seq, CaptureTime: f.captured, PayloadLen: uint32(len(f.jpeg)),
			Rendition: r.cfg.Sender.Rendition})
		msg = append(msg, f.jpeg...)
		w, h := f.w, f.h
		r.slot.release(f)
		if err := r.sender.Send(ctx, msg); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var derr *dial.Error
			if errors.Is(err, ErrReplaced) || errors.As(err, &derr) {
				return err
			}
			continue // reconnect on the next round, with a fresh frame
		}
		r.mu.Lock()
		r.stats.Sent++
		r.stats.Bytes += uint64(len(msg))
		r.stats.Width, r.stats.Height = w, h
		r.mu.Unlock()
	}
}

// openStdin returns stdin for a relay: on a pipe or socket a duplicate
// descriptor in non-blocking mode, whose blocked read interrupt ends (a
// plain read of stdin cannot be ended); a file as it is; a terminal is
// refused. restore puts stdin back in blocking mode.
func openStdin() (r io.Reader, interrupt, restore func(), err error) {
	st, err := os.Stdin.Stat()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("stdin: %w", err)
	}
	nop := func() {}
	m := st.Mode()
	if m&os.ModeCharDevice != 0 && isTerminal(syscall.Stdin) {
		return nil, nil, nil, errors.New("--source - reads MJPEG from a pipe or a file, and stdin is a terminal " +
			"(pipe a stream into it: ffmpeg ... -f mjpeg - | framehub publish --channel NAME --source -)")
	}
	if m&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return os.Stdin, nop, nop, nil // a file: reads do not block for long
	}
	fd, err := syscall.Dup(syscall.Stdin)
	if err != nil {
		return os.Stdin, nop, nop, nil
	}
	// O_NONBLOCK belongs to the open file, which the duplicate shares:
	// with it, Go's poller serves the reads and deadlines work.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return os.Stdin, nop, nop, nil
	}
	f := os.NewFile(uintptr(fd), "stdin")
	return f, func() { _ = f.SetReadDeadline(time.Now()) },
		func() { _ = syscall.SetNonblock(syscall.Stdin, false); _ = f.Close() }, nil
}

// jpegFrame is a JPEG read from the source, waiting to be sent.
type jpegFrame struct {
	jpeg     []byte
	seq      uint64
	captured int64 // Unix ns
	w, h     int
}
