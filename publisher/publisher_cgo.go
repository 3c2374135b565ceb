//go:build cgo

package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"framehub/internal/dial"
	"framehub/protocol"
)

// Config configures a Publisher.
type Config struct {
	Source string         // see OpenSource
	Loop   bool           // files: repeat
	FPS    float64        // cap on frames sent per second (0: the source's rate)
	Width  int            // resize to this width (0: keep; with Height 0, keep aspect)
	Height int            // resize to this height (0: keep; with Width 0, keep aspect)
	Flip   string         // "", "h", "v" or "both"
	Rotate int            // 0, 90, 180 or 270 degrees clockwise
	Filter []Filter       // applied in order after resize, flip and rotate
	Codec  protocol.Codec // CodecJPEG (default) or CodecRaw
	// Quality is the JPEG quality, 1 to 100 (default 80).
	Quality int
	// Renditions are the widths of smaller copies of every frame to send
	// after it on the same connection (protocol.Rendition): even, at most
	// 7680, each made from the frame as it is sent (after resize, flip,
	// rotate and filters), its aspect kept and its height rounded to even,
	// with the frame's sequence number and capture time and its boxes
	// scaled. A rendition not narrower than the frame is not sent.
	Renditions []int
	Sender     SenderConfig
	// OnDemand captures and encodes only while someone watches the channel
	// (the hub says how many do): in between a camera or stream is
	// released and a file or the test pattern pauses, so the publisher
	// uses next to no CPU, and it keeps its connection to the hub.
	OnDemand bool
	// SourceTimeout is how long the source may send no frame before it
	// is stalled (told to the hub, logged); 0: ten of the source's frame
	// intervals, at least 1 s and at most 3 s. A stream silent for twice
	// as long is reopened.
	SourceTimeout time.Duration
	// OnDemandHold keeps capturing this long after the last viewer left
	// (or the connection to the hub was lost) before the source is
	// released, so that viewers who come and go, a snapshot now and then,
	// or a hub restarting do not close and reopen a camera each time. 0
	// releases it at once. DefaultOnDemandHold is what the CLI uses.
	OnDemandHold time.Duration
	Logger       *slog.Logger // nil discards
}

func (c *Config) check() error {
	if c.Codec == 0 {
		c.Codec = protocol.CodecJPEG
	}
	if c.Quality == 0 {
		c.Quality = 80
	}
	switch {
	case c.Quality < 1 || c.Quality > 100:
		return fmt.Errorf("quality %d: must be 1 to 100", c.Quality)
	case c.Codec != protocol.CodecJPEG && c.Codec != protocol.CodecRaw:
		return fmt.Errorf("codec %v: use jpeg or raw", c.Codec)
	case c.FPS < 0 || c.Width < 0 || c.Height < 0 || c.SourceTimeout < 0:
		return errors.New("fps, width, height and source timeout must not be negative")
	case c.OnDemandHold < 0:
		return fmt.Errorf("on-demand hold %v: must not be negative", c.OnDemandHold)
	case c.Width > 7680 || c.Height > 4320:
		return fmt.Errorf("size %dx%d: at most 7680x4320", c.Width, c.Height)
	case c.Rotate != 0 && c.Rotate != 90 && c.Rotate != 180 && c.Rotate != 270:
		return fmt.Errorf("rotate %d: use 0, 90, 180 or 270", c.Rotate)
	}
	switch c.Flip {
	case "", "none", "h", "v", "both":
	default:
		return fmt.Errorf("flip %q: use h, v or both", c.Flip)
	}
	seen := map[int]bool{}
	for _, w := range c.Renditions {
		switch {
		case w < 2 || w > 7680 || w%2 != 0:
			return fmt.Errorf("rendition width %d: use even widths from 2 to 7680", w)
		case seen[w]:
			return fmt.Errorf("rendition width %d given twice", w)
		}
		seen[w] = true
	}
	if len(c.Renditions) > 0 && c.Sender.Rendition != protocol.RenditionMain {
		return errors.New("a publisher of one rendition makes no renditions of its own")
	}
	return nil
}

// Publisher captures from a source and publishes to a hub channel. Create
// it with New, call Run once, then Close.
type Publisher struct {
	cfg    Config
	log    *slog.Logger
	src    Source
	sender *Sender
	slot   *slot[capFrame]
	health *health

	// Owned by the sender goroutine (Run).
	resized, flipped, rotated gocv.Mat
	halves                    [2]gocv.Mat // the renditions' halving steps (shrink)
	msg                       []byte
	meta                      []byte // the last main frame's metadata, for its renditions
	jpegParams                []int
	fps                       float64 // smoothed send rate, for overlays
	lastMetaLog               time.Time
	lastFailLog               time.Time
	rends                     []*renditionOut // widest first

	mu    sync.Mutex
	stats Stats
}

// New opens the source (so a missing camera or unreadable file fails here,
// clearly) and prepares the connection to the hub.
func New(cfg Config) (*Publisher, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Sender.Logger == nil {
		cfg.Sender.Logger = log
	}
	cfg.Sender.OnDemand = cfg.Sender.OnDemand || cfg.OnDemand
	sender, err := NewSender(cfg.Sender)
	if err != nil {
		return nil, err
	}
	h := newHealth(log.With("source", protocol.RedactURL(cfg.Source)), sender, cfg.SourceTimeout)
	src, err := OpenSource(cfg.Source, SourceOptions{Loop: cfg.Loop, FPS: cfg.FPS, Logger: log, health: h})
	if err != nil {
		return nil, err
	}
	p := &Publisher{cfg: cfg, log: log, src: src, sender: sender, slot: newCaptureSlot(), health: h,
		resized: gocv.NewMat(), flipped: gocv.NewMat(), rotated: gocv.NewMat(), halves: [2]gocv.Mat{gocv.NewMat(), gocv.NewMat()}}
	widths := slices.Clone(cfg.Renditions)
	slices.SortFunc(widths, func(a, b int) int { return b - a })
	for _, w := range widths {
		p.rends = append(p.rends, &renditionOut{width: w, mat: gocv.NewMat()})
	}
	return p, nil
}

// Source returns a description of the source.
func (p *Publisher) Source() string { return p.src.String() }

// Connected reports whether the publisher is connected to the hub.
func (p *Publisher) Connected() bool { return p.sender.Connected() }

// Stats returns the counters so far. Safe to call from any goroutine.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Skipped = p.slot.skippedCount()
	s.Reconnects = p.sender.Reconnects()
	s.SourceState, s.SourceError, s.SourceLosses = p.health.snapshot()
	return s
}

// Run publishes until ctx ends (nil), a file source ends (nil, after its
// last frame is sent), or an error that retrying cannot fix: the source
// failing, the hub refusing the channel, or a newer publisher taking over.
func (p *Publisher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	capErr := make(chan error, 1)
	go func() { capErr <- p.captureLoop(ctx) }()
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); p.health.watch(ctx) }()
	err := p.sendLoop(ctx)
	cancel()
	<-watchDone
	cerr := <-capErr
	switch {
	case errors.Is(cerr, io.EOF):
		p.health.ended("end of file")
	case cerr != nil && !errors.Is(cerr, context.Canceled):
		p.health.ended(cerr.Error())
	default:
		p.health.ended("publisher stopped")
	}
	if err == nil && cerr != nil && !errors.Is(cerr, context.Canceled) && !errors.Is(cerr, io.EOF) {
		err = cerr
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// captureLoop reads frames into free Mats and offers each as the newest.
// With an FPS cap, frames that come sooner than the cap allows are read
// (so the source's own buffer never holds stale frames) and dropped.
func (p *Publisher) captureLoop(ctx context.Context) error {
	defer p.slot.finish()
	var minGap time.Duration
	if p.cfg.FPS > 0 {
		minGap = time.Duration(float64(time.Second) / p.cfg.FPS * 0.9)
	}
	var seq uint64
	var last time.Time
	var watched time.Time // on demand: when a viewer was last known to watch
	for {
		if p.cfg.OnDemand {
			if n, known := p.sender.Viewers(); known && n > 0 {
				watched = time.Now()
			} else if time.Since(watched) >= p.cfg.OnDemandHold {
				// Nobody since the hold began (at once on start: nobody has
				// watched yet).
				if err := p.idle(ctx); err != nil {
					return err
				}
				watched = time.Now()
			}
		}
		f := p.slot.free()
		err := p.src.Read(ctx, &f.mat)
		now := time.Now()
		if err != nil {
			p.slot.release(f)
			return err
		}
		p.health.frame(now)
		p.mu.Lock()
		p.stats.Captured++
		p.mu.Unlock()
		if minGap > 0 && !last.IsZero() && now.Sub(last) < minGap {
			p.slot.release(f)
			continue
		}
		last = now
		seq++
		f.seq, f.captured = seq, now
		p.slot.put(f)
	}
}

// idle releases the source and waits until the hub says someone watches.
func (p *Publisher) idle(ctx context.Context) error {
	if r, ok := p.src.(interface{ Release() }); ok {
		r.Release()
	}
	p.health.pause()
	defer p.health.resume()
	p.log.Info("nobody is watching: capture paused", "held_s", round1(p.cfg.OnDemandHold.Seconds()))
	start := time.Now()
	if err := p.sender.AwaitViewers(ctx); err != nil {
		return err
	}
	n, _ := p.sender.Viewers()
	p.log.Info("watched again: capture resumed", "viewers", n, "paused_s", round1(time.Since(start).Seconds()))
	return nil
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// sendLoop connects, takes the newest frame, processes, encodes and sends
// it, and does it again.
func (p *Publisher) sendLoop(ctx context.Context) error {
	var lastSent time.Time
	for {
		if err := p.sender.Connect(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if err := p.checkRenditions(); err != nil {
			return err
		}
		f, ok := p.slot.take(ctx)
		if !ok {
			return ctx.Err() // nil when the source ended
		}
		start := time.Now()
		msg, pic, err := p.encode(f)
		if err != nil {
			p.slot.release(f)
			p.failed(err) // costs this frame, not the publisher
			continue
		}
		encoded := time.Since(start)
		w, h := pic.Cols(), pic.Rows()
		err = p.sender.Send(ctx, msg)
		sent, sentBytes := 0, len(msg)
		if err == nil {
			// The frame's renditions follow it, made from the picture just
			// sent (which may be the captured Mat itself: f is released
			// only after them).
			start = time.Now()
			var n, b int
			n, b, err = p.sendRenditions(ctx, pic, f)
			encoded += time.Since(start)
			sent, sentBytes = n, sentBytes+b
		}
		p.slot.release(f)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // stopping: a connection error on the way out is not a failure
			}
			var derr *dial.Error
			if errors.Is(err, ErrReplaced) || errors.As(err, &derr) {
				return err // replaced, refused, or a hub never reached
			}
			continue // reconnect on the next round, with a fresh frame
		}
		now := time.Now()
		if !lastSent.IsZero() {
			inst := 1 / now.Sub(lastSent).Seconds()
			if p.fps == 0 {
				p.fps = inst
			} else {
				p.fps += 0.1 * (inst - p.fps)
			}
		}
		lastSent = now
		p.mu.Lock()
		p.stats.Sent++
		p.stats.RenditionsSent += uint64(sent)
		p.stats.Bytes += uint64(sentBytes)
		p.stats.EncodeTime += encoded
		p.stats.Width, p.stats.Height = w, h
		p.mu.Unlock()
	}
}

// failed counts a frame that could not be sent (a filter failed on it, or
// the picture is past the hub's limits) and logs it, at most once per 10 s.
func (p *Publisher) failed(err error) {
	p.note(&p.stats.Failed, &p.lastFailLog, "frames dropped: they cannot be sent", err)
}

// note adds one to *counter (a field of p.stats) and logs msg with err and
// the total, unless it did less than 10 s ago (*last). Called from the
// sender goroutine only.
func (p *Publisher) note(counter *uint64, last *time.Time, msg string, err error) {
	p.mu.Lock()
	*counter++
	n := *counter
	p.mu.Unlock()
	if now := time.Now(); now.Sub(*last) >= 10*time.Second {
		*last = now
		p.log.Warn(msg, "error", err.Error(), "total", n)
	}
}

// encode processes a captured frame and encodes it, with its header, into
// p.msg, which is reused from frame to frame. It returns the message and
// the picture it encoded, which stays valid until the next encode (it may
// be cf's own Mat). Every picture is checked against the hub's limits
// before OpenCV makes or encodes it (see CheckPicture); an error costs
// this frame only.
func (p *Publisher) encode(cf *capFrame) ([]byte, *gocv.Mat, error) {
	lim := p.sender.HubLimits()
	fr := Frame{Mat: &cf.mat, Seq: cf.seq, Captured: cf.captured, Channel: p.cfg.Sender.Channel, FPS: p.fps,
		Meta: map[string]any{}}
	if err := p.transform(&fr, lim); err != nil {
		return nil, nil, err
	}
	if err := CheckPicture(fr.Mat, lim); err != nil {
		return nil, nil, fmt.Errorf("source frame: %w", err)
	}
	for _, flt := range p.cfg.Filter {
		if err := flt.Apply(&fr); err != nil {
			return nil, nil, fmt.Errorf("filter: %w", err)
		}
		if err := CheckPicture(fr.Mat, lim); err != nil {
			return nil, nil, fmt.Errorf("filter %T: %w", flt, err)
		}
	}
	m := fr.Mat
	if r := p.cfg.Sender.Rendition; r != protocol.RenditionMain && m.Cols() != int(r) {
		return nil, nil, fmt.Errorf("frames are %d pixels wide after resize, rotate and filters, and rendition %v must be exactly %v wide",
			m.Cols(), r, r)
	}
	p.meta = p.marshalMeta(p.meta[:0], fr.Meta)
	hdr := protocol.Header{Seq: cf.seq, CaptureTime: cf.captured.UnixNano(), Rendition: p.cfg.Sender.Rendition}
	msg, err := p.pack(p.msg[:0], m, hdr, p.meta, lim)
	p.msg = msg
	return msg, m, err
}

// pack appends to dst a frame of picture m with header hdr (its sequence
// number, capture time and rendition; pack fills in the rest) and
// metadata meta, encoded with the publisher's codec; a frame larger than
// the hub takes (lim) is an error.
func (p *Publisher) pack(dst []byte, m *gocv.Mat, hdr protocol.Header, meta []byte, lim protocol.Limits) ([]byte, error) {
	w, h, ch := m.Cols(), m.Rows(), m.Channels()
	hdr.Codec, hdr.Flags, hdr.Width, hdr.Height = p.cfg.Codec, protocol.FlagKey, uint32(w), uint32(h)
	var zero [protocol.HeaderLen]byte // filled in by PutHeader below
	start := len(dst)
	dst = append(dst, zero[:]...)
	dst = append(dst, meta...)
	hdr.MetaLen = uint32(len(meta))
	switch p.cfg.Codec {
	case protocol.CodecJPEG:
		if p.jpegParams == nil {
			p.jpegParams = []int{gocv.IMWriteJpegQuality, p.cfg.Quality}
		}
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, *m, p.jpegParams)
		if err != nil {
			return dst[:start], fmt.Errorf("jpeg encode: %w", err)
		}
		dst = append(dst, buf.GetBytes()...)
		buf.Close()
	case protocol.CodecRaw:
		if !m.IsContinuous() {
			return dst[:start], fmt.Errorf("raw frame is not continuous in memory")
		}
		px, err := m.DataPtrUint8()
		if err != nil {
			return dst[:start], fmt.Errorf("raw frame: %w", err)
		}
		dst = append(dst, px...)
		hdr.ElemType, hdr.Channels = protocol.ElemUint8, uint8(ch)
	}
	if n := len(dst) - start; n > lim.MaxFrameBytes {
		return dst[:start], fmt.Errorf("%w: a %dx%d frame of %d bytes, the hub takes %d (--max-frame-bytes)",
			ErrPicture, w, h, n, lim.MaxFrameBytes)
	}
	hdr.PayloadLen = uint32(len(dst) - start - protocol.HeaderLen - len(meta))
	protocol.PutHeader(dst[start:], hdr)
	return dst, nil
}

// marshalMeta appends the filters' metadata to dst as JSON, unless it is
// empty, does not marshal, or is larger than the hub accepts: then the
// frame goes without it, and that is counted and logged (at most once per
// 10 s).
func (p *Publisher) marshalMeta(dst []byte, meta map[string]any) []byte {
	if len(meta) == 0 {
		return dst
	}
	b, err := json.Marshal(meta)
	if err == nil {
		err = p.metaFits(b)
	}
	if err != nil {
		p.note(&p.stats.MetaDropped, &p.lastMetaLog, "filter metadata left out of frames", err)
		return dst
	}
	return append(dst, b...)
}

// metaFits says why b is too large for the hub, or nil.
func (p *Publisher) metaFits(b []byte) error {
	if limit := p.sender.HubLimits().MaxMetaBytes; len(b) > limit {
		return fmt.Errorf("%d bytes of metadata, the hub accepts %d", len(b), limit)
	}
	return nil
}

// shrink makes dst a w×h copy of src, which is wider: halving with
// bilinear steps while src is more than twice as wide, then one bilinear
// step of at most 2:1. A 2:1 bilinear step averages each 2×2 block, as an
// area filter does, so the chain looks like an area resize (no aliasing)
// for a fraction of its cost: measured on a 1080p frame to 640 wide, a
// quarter (an area resize of a 3:1 step is OpenCV's slow general case).
func (p *Publisher) shrink(src, dst *gocv.Mat, w, h int) {
	for i := 0; src.Cols() > 2*w; i++ {
		half := &p.halves[i%2]
		gocv.Resize(*src, half, image.Pt((src.Cols()+1)/2, (src.Rows()+1)/2), 0, 0, gocv.InterpolationLinear)
		src = half
	}
	gocv.Resize(*src, dst, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
}

// renditionOut is one rendition the publisher makes of each frame. Owned
// by the sender goroutine.
type renditionOut struct {
	width  int
	mat    gocv.Mat // the resized picture, reused
	msg    []byte   // its encoded message, reused
	unsent bool     // not narrower than the frame: said once, until it is again
}

// checkRenditions fails when the hub takes fewer renditions per channel
// than the publisher makes: the hub would refuse the frames.
func (p *Publisher) checkRenditions() error {
	if len(p.rends) == 0 {
		return nil
	}
	if limit := p.sender.MaxRenditions(); len(p.rends) > limit {
		if limit == 0 {
			return fmt.Errorf("the hub at %s takes no renditions (a framehub older than renditions, or --max-renditions 0): "+
				"publish without --renditions", p.cfg.Sender.Hub)
		}
		return fmt.Errorf("%d renditions asked for, but the hub takes at most %d per channel (its --max-renditions)",
			len(p.rends), limit)
	}
	return nil
}

// sendRenditions makes and sends the renditions of the frame whose
// picture pic was just sent: the widest from pic, each next one from the
// narrowest already made (shrink). It returns the renditions sent and
// their bytes.
func (p *Publisher) sendRenditions(ctx context.Context, pic *gocv.Mat, cf *capFrame) (n, bytes int, err error) {
	src := pic
	W, H := pic.Cols(), pic.Rows()
	lim := p.sender.HubLimits()
	for _, r := range p.rends {
		if r.width >= W {
			if !r.unsent {
				r.unsent = true
				p.log.Warn("rendition not sent: the frame is not wider", "rendition", r.width, "frame_width", W)
			}
			continue
		}
		r.unsent = false
		h := max(2, 2*int(math.Round(float64(H)*float64(r.width)/float64(W)/2)))
		h = min(h, H)
		p.shrink(src, &r.mat, r.width, h)
		src = &r.mat
		meta := protocol.ScaleBoxes(p.meta, float64(r.width)/float64(W), float64(h)/float64(H))
		if err := p.metaFits(meta); err != nil {
			p.note(&p.stats.MetaDropped, &p.lastMetaLog, "filter metadata left out of frames", err)
			meta = nil
		}
		hdr := protocol.Header{Seq: cf.seq, CaptureTime: cf.captured.UnixNano(), Rendition: protocol.Rendition(r.width)}
		if r.msg, err = p.pack(r.msg[:0], &r.mat, hdr, meta, lim); err != nil {
			p.failed(err) // this rendition of this frame only
			continue
		}
		if err := p.sender.Send(ctx, r.msg); err != nil {
			return n, bytes, err
		}
		n++
		bytes += len(r.msg)
	}
	return n, bytes, nil
}

// transform applies resize, flip and rotate, each into its own reused Mat.
// A resize whose result the hub would refuse (a source of an extreme
// aspect ratio given one side) is not made.
func (p *Publisher) transform(fr *Frame, lim protocol.Limits) error {
	src := fr.Mat
	if w, h := p.targetSize(src.Cols(), src.Rows()); w != src.Cols() || h != src.Rows() {
		if err := CheckSize(w, h, lim); err != nil {
			return fmt.Errorf("resize %dx%d to %dx%d: %w", src.Cols(), src.Rows(), w, h, err)
		}
		gocv.Resize(*src, &p.resized, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		src = &p.resized
	}
	flip := 2 // not an OpenCV flip code: no flip
	switch p.cfg.Flip {
	case "h":
		flip = 1
	case "v":
		flip = 0
	case "both":
		flip = -1
	}
	if flip != 2 {
		gocv.Flip(*src, &p.flipped, flip)
		src = &p.flipped
	}
	if p.cfg.Rotate != 0 {
		code := gocv.Rotate90Clockwise
		switch p.cfg.Rotate {
		case 180:
			code = gocv.Rotate180Clockwise
		case 270:
			code = gocv.Rotate90CounterClockwise
		}
		gocv.Rotate(*src, &p.rotated, code)
		src = &p.rotated
	}
	fr.Mat = src
	return nil
}

// targetSize returns the size after resizing, keeping the aspect ratio
// when only one side is given.
func (p *Publisher) targetSize(w, h int) (int, int) {
	tw, th := p.cfg.Width, p.cfg.Height
	switch {
	case tw == 0 && th == 0:
		return w, h
	case th == 0:
		return tw, max(1, (h*tw+w/2)/w)
	case tw == 0:
		return max(1, (w*th+h/2)/h), th
	}
	return tw, th
}

// Close releases the source, the connection and every Mat. Call it after
// Run has returned.
func (p *Publisher) Close() error {
	err := p.src.Close()
	p.sender.Close()
	for _, f := range p.slot.all {
		f.mat.Close()
	}
	p.resized.Close()
	p.flipped.Close()
	p.rotated.Close()
	for _, r := range p.rends {
		r.mat.Close()
	}
	p.halves[0].Close()
	p.halves[1].Close()
	for _, f := range p.cfg.Filter {
		if c, ok := f.(io.Closer); ok {
			c.Close()
		}
	}
	return err
}

// capFrame is a captured frame in one of the slot's Mats.
// newCaptureSlot is the slot between capture and the sender, with a Mat
// per buffer (Close frees them).
func newCaptureSlot() *slot[capFrame] {
	return newSlot(func() *capFrame { return &capFrame{mat: gocv.NewMat()} })
}

type capFrame struct {
	mat      gocv.Mat
	seq      uint64
	captured time.Time
}
