package publisher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"framehub/internal/backoff"
	"framehub/internal/dial"
	"framehub/protocol"
)

// A Relay publishes the JPEGs of a Motion JPEG stream as they are, without
// decoding them: ffmpeg or libcamera-vid writing to stdin, an MJPEG URL
// (another hub's stream.mjpeg, an IP camera), or a camera ffmpeg decodes
// for it (RTSP, see FFmpegConfig). It needs no OpenCV, so the build
// without cgo has it. Like Publisher it has two goroutines: a reader that
// keeps only the newest complete JPEG, and the sender, which takes the
// newest each time the hub has taken the previous one; JPEGs that come in
// between are skipped and counted, never queued. A third watches the
// source's health (see SourceTimeout) and tells the hub its state.

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Source is "-" (a stream on stdin: bare JPEGs or multipart), an
	// http:// or https:// URL of an MJPEG stream, or with FFmpeg any URL
	// ffmpeg reads (rtsp://…).
	Source string
	// FFmpeg, when set, has ffmpeg read Source and decode it into Motion
	// JPEG; it is restarted when the source fails or stalls.
	FFmpeg *FFmpegConfig
	// Stdin is read for "-" instead of the process's stdin (tests).
	Stdin io.Reader
	// FPS caps frames sent per second (0: every frame the source sends).
	FPS    float64
	Sender SenderConfig
	// Client fetches an MJPEG URL (nil: a client without a total
	// timeout; a source silent for SourceIdle is reopened).
	Client *http.Client
	// SourceTimeout is how long the source may send no frame before it
	// is stalled (told to the hub, logged); a URL or ffmpeg silent for
	// twice as long is reopened. 0: ten of the source's frame intervals,
	// at least 1 s and at most 3 s.
	SourceTimeout time.Duration
	// SourceIdle, when set, replaces twice SourceTimeout as how long an
	// MJPEG URL or ffmpeg may send nothing before it is reopened.
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
	health *health

	// Static after construction: the source.
	stdin     io.Reader
	interrupt func() // makes a blocked stdin read return
	restore   func() // gives stdin back as it was
	first     *http.Response
	ffmpeg    string      // the ffmpeg binary, with FFmpeg
	firstProc *ffmpegProc // ffmpeg started by NewRelay, handed to the reader
	running   atomic.Bool // Run has started

	mu    sync.Mutex
	stats Stats // Failed: JPEGs skipped, with no usable frame header or past the hub's limits
}

// NewRelay checks cfg and opens the source: stdin is checked (a terminal
// is refused), an MJPEG URL is requested once, and ffmpeg is started and
// must deliver a first frame within firstFrameWait, so that a source that
// cannot be opened is a clear error here.
func NewRelay(ctx context.Context, cfg RelayConfig) (*Relay, error) {
	switch {
	case cfg.FFmpeg != nil:
		if cfg.Source == "-" || !strings.Contains(cfg.Source, "://") {
			return nil, fmt.Errorf("source %q: ffmpeg reads URLs here", cfg.Source)
		}
	case !IsRelaySource(cfg.Source):
		return nil, fmt.Errorf("source %q: a relay reads - (stdin) or an http(s) MJPEG URL", protocol.RedactURL(cfg.Source))
	}
	if cfg.FPS < 0 || cfg.SourceTimeout < 0 || cfg.SourceIdle < 0 {
		return nil, errors.New("fps and source timeouts must not be negative")
	}
	if f := cfg.FFmpeg; f != nil {
		if f.Quality == 0 {
			f.Quality = 80
		}
		if f.Quality < 1 || f.Quality > 100 || f.Width < 0 || f.Height < 0 || f.FPS < 0 {
			return nil, fmt.Errorf("ffmpeg: quality %d (1 to 100), size %dx%d and fps %v must be valid", f.Quality, f.Width, f.Height, f.FPS)
		}
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
	r.health = newHealth(log.With("source", r.Source()), sender, cfg.SourceTimeout)
	if cfg.FFmpeg != nil {
		if r.ffmpeg, err = LookFFmpeg(cfg.FFmpeg.Path); err != nil {
			return nil, err
		}
		if r.firstProc, err = r.startFirst(ctx); err != nil {
			return nil, err
		}
		return r, nil
	}
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
	switch {
	case r.cfg.Source == "-":
		return "stdin"
	case r.cfg.FFmpeg != nil:
		return "stream " + protocol.RedactURL(r.cfg.Source) + " (ffmpeg)"
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
	s.SourceState, s.SourceError, s.SourceLosses = r.health.snapshot()
	return s
}

// Run publishes until ctx ends (nil), stdin ends (nil, after its last
// frame is sent), stdin holds something that is not MJPEG, or an error
// retrying cannot fix (the hub refusing, a newer publisher taking over).
// A URL whose stream drops or goes silent is reopened with backoff, as is
// ffmpeg.
func (r *Relay) Run(ctx context.Context) error {
	r.running.Store(true)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() { readErr <- r.readLoop(ctx) }()
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); r.health.watch(ctx) }()
	err := r.sendLoop(ctx)
	cancel()
	r.interrupt()
	<-watchDone
	rerr := <-readErr
	switch {
	case rerr != nil && !errors.Is(rerr, context.Canceled):
		r.health.ended(rerr.Error())
	case r.cfg.Source == "-" && err == nil:
		r.health.ended("end of stdin")
	default:
		r.health.ended("publisher stopped")
	}
	if err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		err = rerr
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Close ends the connection to the hub (telling it the source ended) and
// gives stdin back. Call it after Run has returned.
func (r *Relay) Close() error {
	if r.first != nil {
		r.first.Body.Close()
	}
	if r.firstProc != nil {
		r.firstProc.stop()
	}
	r.restore()
	return r.sender.Close()
}

// reopenBackoff paces the reopening of a lost source: a camera that comes
// back is streaming again within about a second plus its own start.
func reopenBackoff() backoff.Backoff {
	return backoff.Backoff{Min: 250 * time.Millisecond, Max: time.Second}
}

// idleLimit is how long a URL or ffmpeg may send nothing before it is
// reopened.
func (r *Relay) idleLimit() time.Duration {
	if r.cfg.SourceIdle > 0 {
		return r.cfg.SourceIdle
	}
	return 2 * r.health.timeout()
}

// readLoop reads the source into the slot until it ends or ctx does.
func (r *Relay) readLoop(ctx context.Context) error {
	defer r.slot.finish()
	switch {
	case r.cfg.FFmpeg != nil:
		return r.readFFmpeg(ctx)
	case r.cfg.Source == "-":
		r.health.opened(time.Now())
		err := r.readStream(ctx, r.stdin, protocol.MJPEGOptions{})
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("stdin: %w", err)
		}
		return nil
	}
	b := reopenBackoff()
	resp := r.first
	r.first = nil
	for {
		if resp == nil {
			var err error
			r.health.opening()
			began := time.Now()
			resp, err = r.open(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.health.libError(err.Error())
				r.health.openDone(time.Since(began), false)
				if !b.Sleep(ctx) {
					return nil
				}
				continue
			}
			r.health.openDone(time.Since(began), true)
		}
		r.health.opened(time.Now())
		opt, _ := protocol.ParseMJPEGContentType(resp.Header.Get("Content-Type")) // open checked it
		err := r.readURL(ctx, resp, opt, &b)
		resp.Body.Close()
		resp = nil
		if ctx.Err() != nil {
			return nil
		}
		r.health.lost(fmt.Errorf("stream ended: %s", errText(err)))
		if !b.Sleep(ctx) {
			return nil
		}
	}
}

// firstFrameWait bounds how long NewRelay waits for ffmpeg's first frame
// (opening an RTSP camera, and its next key frame).
const firstFrameWait = 10 * time.Second

// startFFmpeg starts ffmpeg on the source; its error lines go to the
// health's bounded log. ffmpeg's own I/O timeout is only a backstop, long
// enough for a slow camera to answer: watchIdle ends an ffmpeg that
// delivers nothing sooner.
func (r *Relay) startFFmpeg(probe bool) (*ffmpegProc, error) {
	args := ffmpegArgs(r.cfg.Source, *r.cfg.FFmpeg, max(r.idleLimit(), firstFrameWait), probe)
	return startFFmpeg(r.ffmpeg, args, r.cfg.Source, func(line string) {
		if r.running.Load() {
			r.health.libError(line)
		} // before Run, NewRelay's error carries ffmpeg's last line
	})
}

// startFirst starts ffmpeg for NewRelay and waits for its first bytes, so
// that a camera that cannot be opened is an error there. If ffmpeg says
// it needs to probe the stream, or gives no frame in time without probing
// (it may be waiting on a stream it cannot decode unprobed), it is started
// once more with probing.
func (r *Relay) startFirst(ctx context.Context) (*ffmpegProc, error) {
	for _, probe := range []bool{false, true} {
		p, err := r.startFFmpeg(probe)
		if err != nil {
			return nil, err
		}
		stop := context.AfterFunc(ctx, func() { p.kill("cancelled") })
		_ = p.stdout.SetReadDeadline(time.Now().Add(firstFrameWait))
		_, err = p.out.Peek(2)
		_ = p.stdout.SetReadDeadline(time.Time{})
		stop()
		if err == nil {
			p.probe = probe
			return p, nil
		}
		timedOut := errors.Is(err, os.ErrDeadlineExceeded)
		if timedOut {
			p.kill(fmt.Sprintf("no frame within %v", firstFrameWait))
		}
		cause := p.stop()
		if !probe && (p.needsProbe() || timedOut) {
			r.log.Info("ffmpeg gave no frame without probing the stream; starting it again with probing", "source", r.Source(), "cause", errText(cause))
			continue
		}
		if cause == nil {
			cause = errors.New("ffmpeg ended without a frame")
		}
		return nil, fmt.Errorf("cannot open %s: %w", r.Source(), cause)
	}
	panic("unreachable")
}

// readFFmpeg reads ffmpeg's Motion JPEG, and starts ffmpeg again with
// backoff when it ends, fails, or sends nothing for idleLimit.
func (r *Relay) readFFmpeg(ctx context.Context) error {
	b := reopenBackoff()
	p := r.firstProc
	r.firstProc = nil
	probe := p != nil && p.probe
	for {
		if p == nil {
			if !r.awaitReachable(ctx) {
				return nil
			}
			var err error
			r.health.opening()
			if p, err = r.startFFmpeg(probe); err != nil {
				r.health.lost(err)
				if !b.Sleep(ctx) {
					return nil
				}
				continue
			}
		}
		r.health.opened(time.Now())
		stop := r.watchIdle(ctx, p.kill)
		err := r.readStream(ctx, &progressReader{r: p.out, progress: b.Reset}, protocol.MJPEGOptions{Bare: true})
		stop()
		cause := p.stop()
		if ctx.Err() != nil {
			return nil
		}
		if !probe && p.needsProbe() {
			probe = true
			r.log.Info("ffmpeg needs to probe this stream: it will add some delay", "source", r.Source())
		}
		if cause == nil {
			cause = err
		}
		if cause == nil {
			cause = errors.New("ffmpeg ended")
		}
		r.health.lost(cause)
		p = nil
		if !b.Sleep(ctx) {
			return nil
		}
	}
}

// reachPoll is how often a lost camera's address is tried before ffmpeg
// is started again.
const reachPoll = 250 * time.Millisecond

// awaitReachable waits until the source's host accepts a TCP connection
// (a camera that went away is back), trying every reachPoll, so that a
// camera that returns is read again at once without starting an ffmpeg
// process per attempt meanwhile. It returns false when ctx ends. A URL
// without a TCP host (udp://) is not waited for.
func (r *Relay) awaitReachable(ctx context.Context) bool {
	return awaitReachable(ctx, hostPort(r.cfg.Source), r.health)
}

// awaitReachable waits until addr accepts a TCP connection, trying every
// reachPoll; each refusal goes to h's bounded log. An empty addr is not
// waited for. It returns false when ctx ends.
func awaitReachable(ctx context.Context, addr string, h *health) bool {
	if addr == "" {
		return ctx.Err() == nil
	}
	var d net.Dialer
	for {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		h.libError(err.Error())
		if !backoff.Wait(ctx, reachPoll) {
			return false
		}
	}
}

// hostPort returns the TCP address of a URL of a protocol over TCP, with
// its default port, or "".
func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "rtsp":
			port = "554"
		case "rtsps":
			port = "322"
		case "rtmp":
			port = "1935"
		case "rtmps", "https":
			port = "443"
		case "http":
			port = "80"
		default:
			return ""
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// watchIdle calls kill, once, with the reason when the source sends no
// frame for idleLimit (before its first frame since the watch began:
// firstFrameWait), or when ctx ends. stop ends the watch.
func (r *Relay) watchIdle(ctx context.Context, kill func(why string)) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	before := r.Stats().Captured
	go func() {
		defer close(exited)
		for {
			limit := r.idleLimit()
			if r.Stats().Captured == before {
				limit = max(limit, firstFrameWait)
			}
			t := time.NewTimer(limit / 4)
			select {
			case <-done:
				t.Stop()
				return
			case <-ctx.Done():
				t.Stop()
				kill("publisher stopped")
				return
			case <-t.C:
			}
			if q := r.health.quiet(time.Now()); q >= limit {
				kill(fmt.Sprintf("no frame for %v", q.Round(100*time.Millisecond)))
				return
			}
		}
	}()
	return func() { close(done); <-exited }
}

// progressReader calls progress once, when the first bytes arrive: the
// source works again, so the next reopen may be quick.
type progressReader struct {
	r        io.Reader
	progress func()
	done     bool
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && !p.done {
		p.progress()
		p.done = true
	}
	return n, err
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
	header := time.AfterFunc(max(r.idleLimit(), 2*time.Second), cancel)
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
// the source sends no frame for idleLimit.
func (r *Relay) readURL(ctx context.Context, resp *http.Response, opt protocol.MJPEGOptions, b *backoff.Backoff) error {
	body := resp.Body.(*cancelBody)
	stop := context.AfterFunc(ctx, body.cancel)
	defer stop()
	var idle atomic.Pointer[string]
	stopWatch := r.watchIdle(ctx, func(why string) { idle.Store(&why); body.cancel() })
	err := r.readStream(ctx, &progressReader{r: body, progress: b.Reset}, opt)
	stopWatch()
	if why := idle.Load(); why != nil && err != nil && ctx.Err() == nil {
		err = errors.New(*why)
	}
	return err
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
		r.health.frame(now)
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
