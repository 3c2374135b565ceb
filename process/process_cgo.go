//go:build cgo

package process

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"gocv.io/x/gocv"

	"framehub/protocol"
	"framehub/publisher"
	"framehub/subscriber"
)

// Limits and defaults of a Config.
const (
	MaxWorkers     = 16
	DefaultQuality = 80
	// DefaultCredit is the credit window of the input subscription: two
	// frames in flight, so that a link with some delay still brings frames
	// at the camera's rate, while the hub keeps the rest (and sends the
	// newest) instead of the network holding them.
	DefaultCredit = 2
)

// Config configures a Processor.
type Config struct {
	Hub string // http://, https://, ws://, wss:// or host:port
	In  string // channel to process (its main picture)
	Out string // channel to publish to; In only with an OutRendition
	// OutRendition, when not the main picture, publishes the results as
	// that rendition of Out (which may be In: a resize step adding a
	// thumbnail to the channel it reads). The results must be exactly
	// that wide: end the steps with resize=N.
	OutRendition protocol.Rendition
	// Header holds handshake headers for both channels (a token with the
	// view right on In and the publish right on Out); OutHeader, if set,
	// replaces it for Out (for signed tokens, which hold one right on one
	// channel).
	Header    http.Header
	OutHeader http.Header
	TLS       *tls.Config
	// ConnectTimeout bounds the retries before the first connection
	// (default 5 s; negative: forever): see package dial.
	ConnectTimeout time.Duration
	// Steps run in order on every processed frame. The processor closes
	// those that implement io.Closer.
	Steps []Step
	// Workers is how many frames are processed at once (1 to MaxWorkers;
	// 0 means 1). Steps that implement Cloner get an instance per worker;
	// the others run one frame at a time, in frame order.
	Workers int
	// Gate runs the detectors (faces, people, blur-faces) only on frames
	// where the motion step found movement, and only on the moving
	// regions; a frame without movement carries their newest boxes
	// forward, marked "carried". The motion step must come before the
	// detectors; without one, a motion step is added before the first
	// detector, and its own boxes are not published.
	Gate bool
	// GateRefresh is how often the gate runs the detectors on the whole
	// picture whatever moved (0: DefaultGateRefresh; negative: never, after
	// the first frames).
	GateRefresh time.Duration
	Quality     int // JPEG quality of frames whose picture a step changed, 1 to 100 (default 80)
	Credit      int // input credit window, 1 to protocol.MaxCreditWindow (0: DefaultCredit)
	// MaxPixels is the largest input picture (width × height) decoded;
	// 0 means protocol.DefaultMaxPixels.
	MaxPixels uint64
	// Events turns detections into events (see EventRules): written into
	// the metadata of every published frame while they go on.
	Events EventRules
	Logger *slog.Logger // nil discards
}

// Processor subscribes to a channel, runs steps on its newest frames and
// publishes the results to another channel, keeping each input frame's
// sequence number and capture time. Create it with New, call Run once,
// then Close. Stats is safe to call from any goroutine.
type Processor struct {
	cfg   Config
	r     *runner
	steps []Step // Config.Steps, and the motion step the gate added
	store *carryStore
}

// gatedStep is a step the motion gate governs (faces, people,
// blur-faces): it needs a key of its own in the carry store.
type gatedStep interface{ setKey(int) }

// New checks cfg and prepares the processor: it makes the steps' per-worker
// instances, but connects to nothing until Run.
func New(cfg Config) (*Processor, error) {
	switch {
	case cfg.In == cfg.Out && cfg.OutRendition == protocol.RenditionMain:
		return nil, fmt.Errorf("--out %q is the input channel: publishing to the channel being processed would feed it its own output "+
			"(publish a rendition of it instead: --out-rendition N with --step resize=N)", cfg.Out)
	case len(cfg.Steps) == 0:
		return nil, errors.New("no steps to run")
	case cfg.Workers < 0 || cfg.Workers > MaxWorkers:
		return nil, fmt.Errorf("workers %d: must be 1 to %d", cfg.Workers, MaxWorkers)
	case cfg.Quality < 0 || cfg.Quality > 100:
		return nil, fmt.Errorf("quality %d: must be 1 to 100", cfg.Quality)
	case cfg.Credit < 0 || cfg.Credit > protocol.MaxCreditWindow:
		return nil, fmt.Errorf("credit %d: must be 1 to %d", cfg.Credit, protocol.MaxCreditWindow)
	}
	for _, ch := range []string{cfg.In, cfg.Out} {
		if err := protocol.CheckChannelName(ch); err != nil {
			return nil, err
		}
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.Quality == 0 {
		cfg.Quality = DefaultQuality
	}
	if cfg.Credit == 0 {
		cfg.Credit = DefaultCredit
	}
	if cfg.GateRefresh == 0 {
		cfg.GateRefresh = DefaultGateRefresh
	}
	events, err := cfg.Events.withDefaults()
	if err != nil {
		return nil, err
	}
	steps, err := gateSteps(cfg.Steps, cfg.Gate, cfg.GateRefresh)
	if err != nil {
		return nil, err
	}
	p := &Processor{cfg: cfg, steps: steps, store: newCarryStore()}
	// One turnstile per step that is not a Cloner: its one instance runs
	// on every worker, a frame at a time, in frame order.
	turns := make([]*turnstile, len(steps))
	for i, s := range steps {
		if _, ok := s.(Cloner); !ok {
			turns[i] = newTurnstile()
		}
	}
	outHeader := cfg.Header
	if cfg.OutHeader != nil {
		outHeader = cfg.OutHeader
	}
	rc := runConfig{
		Client: subscriber.Config{Hub: cfg.Hub, Channel: cfg.In, Credit: cfg.Credit, Header: cfg.Header, TLS: cfg.TLS,
			ConnectTimeout: cfg.ConnectTimeout, Guard: protocol.Limits{MaxPixels: cfg.MaxPixels}},
		Sender: publisher.SenderConfig{Hub: cfg.Hub, Channel: cfg.Out, Header: outHeader, TLS: cfg.TLS, ConnectTimeout: cfg.ConnectTimeout,
			Rendition: cfg.OutRendition},
		Workers: cfg.Workers,
		Events:  events,
		Logger:  cfg.Logger,
	}
	rc.newWorker = func(i int) (worker, error) {
		pl, err := p.newPipeline(i, turns)
		if err != nil {
			return nil, err
		}
		return pl, nil
	}
	if p.r, err = newRunner(rc); err != nil {
		p.closeAdded()
		return nil, err
	}
	return p, nil
}

// gateSteps returns the steps to run: with the gate, the motion step
// governs the detectors after it (one is added before the first detector
// when there is none), and each detector gets its key.
func gateSteps(steps []Step, gate bool, refresh time.Duration) ([]Step, error) {
	out := append([]Step(nil), steps...)
	firstDetector, motionAt := -1, -1
	for i, s := range out {
		if g, ok := s.(gatedStep); ok {
			g.setKey(i)
			if firstDetector < 0 {
				firstDetector = i
			}
		}
		if _, ok := s.(*motionStep); ok && motionAt < 0 {
			motionAt = i
		}
	}
	if !gate {
		return out, nil
	}
	if firstDetector < 0 {
		return nil, errors.New("--gate motion governs the detectors (faces, people, blur-faces), and no step is one")
	}
	if motionAt > firstDetector {
		return nil, errors.New("--gate motion: the motion step must come before the detectors it governs")
	}
	if motionAt < 0 {
		m := newMotion(0)
		m.emit = false
		out = append(out[:firstDetector], append([]Step{m}, out[firstDetector:]...)...)
		motionAt = firstDetector
		for i, s := range out {
			if g, ok := s.(gatedStep); ok {
				g.setKey(i)
			}
		}
	}
	m := out[motionAt].(*motionStep)
	m.gate = true
	m.refresh = refresh
	if refresh < 0 {
		m.refresh = 0
	}
	return out, nil
}

// Run processes frames until ctx ends (it returns nil) or an error that
// retrying cannot fix: the hub refusing either channel or never reached
// within the connect timeout, or a newer publisher taking the output
// channel. A missing input channel is waited for; a hub that goes away is
// reconnected to, as by every client.
func (p *Processor) Run(ctx context.Context) error { return p.r.run(ctx) }

// Out returns the output channel.
func (p *Processor) Out() string { return p.cfg.Out }

// Stats returns the counters and timings so far.
func (p *Processor) Stats() Stats { return p.r.stats() }

// Close releases the workers' and the steps' OpenCV memory. Call it after
// Run has returned.
func (p *Processor) Close() error {
	p.r.closeWorkers()
	closeSteps(p.steps)
	return nil
}

// closeAdded closes the steps New added (the gate's motion step) when New
// fails; the caller's steps stay the caller's until New succeeds.
func (p *Processor) closeAdded() {
	for _, s := range p.steps {
		if m, ok := s.(*motionStep); ok && !m.emit {
			m.Close()
		}
	}
}

// pipeline is one worker: it decodes a frame, runs the steps on it and
// encodes the result.
type pipeline struct {
	p       *Processor
	steps   []Step
	turns   []*turnstile // per step: nil for a worker's own instance
	owned   []Step       // clones made for this worker
	decoded gocv.Mat
	bgr     gocv.Mat
	params  []int
}

func (p *Processor) newPipeline(i int, turns []*turnstile) (*pipeline, error) {
	pl := &pipeline{p: p, turns: turns, decoded: gocv.NewMat(), bgr: gocv.NewMat(),
		params: []int{gocv.IMWriteJpegQuality, p.cfg.Quality}}
	for _, s := range p.steps {
		c, ok := s.(Cloner)
		if !ok || i == 0 {
			pl.steps = append(pl.steps, s) // worker 0 uses the originals
			continue
		}
		cl, err := c.Clone()
		if err != nil {
			pl.close()
			return nil, fmt.Errorf("step %s: %w", s.Name(), err)
		}
		pl.steps = append(pl.steps, cl)
		pl.owned = append(pl.owned, cl)
	}
	return pl, nil
}

func (pl *pipeline) close() {
	closeSteps(pl.owned)
	pl.owned = nil
	pl.decoded.Close()
	pl.bgr.Close()
}

func (pl *pipeline) process(in *input) (res *result, err error) {
	passed := 0 // steps whose turnstile this frame has passed
	defer func() {
		for i := passed; i < len(pl.steps); i++ {
			if t := pl.turns[i]; t != nil {
				t.skip(in.ticket)
			}
		}
	}()
	if err := subscriber.DecodeMatLimit(&in.frame, &pl.decoded, pl.p.cfg.MaxPixels); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadInput, err)
	}
	mat := &pl.decoded
	if mat.Channels() == 4 {
		gocv.CvtColor(pl.decoded, &pl.bgr, gocv.ColorBGRAToBGR)
		mat = &pl.bgr
	}
	meta, problem := parseInput(in.frame.Meta)
	if problem != nil {
		pl.p.r.noteMeta(problem)
	}
	lim := pl.p.r.sender.HubLimits()
	f := &Frame{Mat: mat, Seq: in.frame.Seq, Captured: time.Unix(0, in.frame.CaptureTime), Channel: pl.p.cfg.In, Meta: &meta,
		Limits: lim}
	if pl.p.cfg.Gate {
		f.Gate = &Gate{ticket: in.ticket, store: pl.p.store}
	}
	for i, s := range pl.steps {
		t := pl.turns[i]
		if t != nil {
			t.wait(in.ticket)
		}
		start := time.Now()
		f.gated = false
		err := s.Apply(f)
		if t != nil {
			t.done(in.ticket)
		}
		passed = i + 1
		if err != nil {
			return nil, &StepError{Step: s.Name(), Err: err}
		}
		// Checked after every step, so that neither the next step nor the
		// encoder gets a picture OpenCV would throw on, and the hub never
		// one it would refuse (closing the connection).
		if err := publisher.CheckPicture(f.Mat, lim); err != nil {
			return nil, &StepError{Step: s.Name(), Err: err}
		}
		meta.Steps = append(meta.Steps, StepTime{Name: s.Name(), MS: msSince(start), Gated: f.gated})
	}
	w, h := f.Mat.Cols(), f.Mat.Rows()
	meta.clip(w, h)
	res = &result{meta: meta, carried: f.carried}
	if !f.Changed {
		// The picture is the input's: publish its bytes as they came.
		res.header, res.payload = in.frame.Header, in.frame.Payload
		return res, nil
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, *f.Mat, pl.params)
	if err != nil {
		return nil, &StepError{Step: "encode", Err: err}
	}
	res.payload = append([]byte(nil), buf.GetBytes()...)
	buf.Close()
	res.header = protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey, Width: uint32(w), Height: uint32(h),
		Seq: in.frame.Seq, CaptureTime: in.frame.CaptureTime}
	return res, nil
}
