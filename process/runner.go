package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"framehub/internal/dial"
	"framehub/internal/ratelimit"
	"framehub/protocol"
	"framehub/publisher"
	"framehub/subscriber"
)

// logEvery is the least time between two log lines about the same kind of
// trouble with frames (bad input, a failing step, metadata cut); the ones
// in between are counted and reported with the next line.
const logEvery = 10 * time.Second

// errBadInput marks a frame the worker cannot use: it does not decode, or
// its picture is past the pixel limit.
var errBadInput = errors.New("bad input frame")

// StepError is a step's failure on one frame: the frame is dropped
// (never published half processed), counted, and the worker goes on.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return "step " + e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// worker processes frames, one at a time. Each runner goroutine owns one.
type worker interface {
	// process turns an input frame into a result (header, metadata and
	// payload; the runner fills in ticket, timing and order). An error
	// wrapping errBadInput means the frame is unusable; any other, that
	// a step failed.
	process(in *input) (*result, error)
	close()
}

// runConfig is what the runner needs: where frames come from and go, and
// how to make the workers that process them.
type runConfig struct {
	Client    subscriber.Config
	Sender    publisher.SenderConfig
	Workers   int
	newWorker func(i int) (worker, error)
	// Events, when enabled, turns the boxes of processed frames into
	// events in the published frames' metadata.
	Events EventRules
	Logger *slog.Logger
}

// runner subscribes to the input channel, hands the newest frame to the
// next free worker, and publishes results in order. Goroutines: the
// client's reader (Run's caller), Workers workers, one publisher; Run
// waits for all of them.
type runner struct {
	cfg     runConfig
	log     *slog.Logger
	client  *subscriber.Client
	sender  *publisher.Sender
	workers []worker
	in      *inputSlot
	out     *outputSlot
	logs    warnLog
	events  *eventEngine // nil without EventRules

	received, processed, published atomic.Uint64
	failed, badInput, badMeta      atomic.Uint64
	metaCut, carried, sendErrors   atomic.Uint64
	samples                        sampler
}

func newRunner(cfg runConfig) (*runner, error) {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Client.Logger, cfg.Sender.Logger = log, log
	client, err := subscriber.New(cfg.Client)
	if err != nil {
		return nil, err
	}
	sender, err := publisher.NewSender(cfg.Sender)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, log: log, client: client, sender: sender,
		in: newInputSlot(), out: newOutputSlot(), logs: warnLog{ratelimit.NewLogger(log, logEvery)}}
	if cfg.Events.Enabled() {
		r.events = newEventEngine(cfg.Events)
	}
	for i := range cfg.Workers {
		w, err := cfg.newWorker(i)
		if err != nil {
			r.closeWorkers()
			return nil, err
		}
		r.workers = append(r.workers, w)
	}
	return r, nil
}

func (r *runner) closeWorkers() {
	for _, w := range r.workers {
		w.close()
	}
	r.workers = nil
}

// run processes until ctx ends (nil) or an error that retrying cannot
// fix: the hub refusing either channel, or never reached within the
// connect timeout, or a newer publisher taking the output channel.
func (r *runner) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var outErr error
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		if outErr = r.publishLoop(ctx); outErr != nil {
			cancel()
		}
	}()
	for _, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.workLoop(ctx, w)
		}()
	}
	inErr := r.client.Run(ctx, func(f *subscriber.Frame) error {
		// The frame's bytes are valid only during this call: copy them,
		// and return at once, so that the hub always has credit to send
		// the newest frame.
		in := &input{frame: f.Frame, recvNS: f.Received.UnixNano()}
		in.frame.Meta = bytes.Clone(f.Meta)
		in.frame.Payload = bytes.Clone(f.Payload)
		r.received.Add(1)
		r.in.put(in)
		return nil
	})
	r.in.close()
	cancel()
	wg.Wait()
	r.out.close()
	<-outDone
	r.sender.Close()
	if outErr != nil {
		return outErr
	}
	return inErr
}

// workLoop takes the newest frame whenever its worker is free.
func (r *runner) workLoop(ctx context.Context, w worker) {
	for {
		in := r.in.take(ctx)
		if in == nil {
			return
		}
		start := time.Now()
		res, err := w.process(in)
		if err != nil {
			var se *StepError
			switch {
			case errors.Is(err, errBadInput):
				r.badInput.Add(1)
				r.logs.warn("bad_input", "skipped input frames that cannot be processed", r.badInput.Load(), "error", err.Error())
			case errors.As(err, &se):
				r.failed.Add(1)
				r.logs.warn("step:"+se.Step, "a step failed; frames dropped", r.failed.Load(), "step", se.Step, "error", se.Err.Error())
			default:
				r.failed.Add(1)
				r.logs.warn("failed", "processing failed; frames dropped", r.failed.Load(), "error", err.Error())
			}
			continue
		}
		r.processed.Add(1)
		res.ticket, res.recvNS = in.ticket, in.recvNS
		if r.events != nil {
			// Before the result is offered: the publisher annotates it
			// with what this frame showed.
			res.scores = r.events.observe(in.ticket, res.header.CaptureTime, in.recvNS,
				int(res.header.Width), int(res.header.Height), res.meta.Boxes)
		}
		res.procMS = msSince(start)
		r.samples.add(sampleWait, float64(start.UnixNano()-in.recvNS)/1e6)
		r.samples.add(sampleProc, res.procMS)
		r.out.put(res)
	}
}

// publishLoop connects to the output channel, then publishes the newest
// result each time the previous send completes, with its metadata cut to
// the hub's limit.
func (r *runner) publishLoop(ctx context.Context) error {
	if err := r.sender.Connect(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("publish to %s: %w", r.cfg.Sender.Channel, err)
	}
	var buf []byte
	for {
		res := r.out.take(ctx)
		if res == nil {
			return nil
		}
		lim := r.sender.HubLimits()
		if r.events != nil {
			res.meta.Events = mergeEvents(res.meta.Events, r.events.annotate(res.scores, time.Now()))
		}
		meta, cut := res.meta.encode(lim.MaxMetaBytes)
		if cut.boxesCut > 0 || cut.keysCut > 0 || cut.stepsCut > 0 || cut.eventsCut > 0 || cut.overBudget {
			r.metaCut.Add(1)
			r.logs.warn("meta_cut", "output metadata cut to the hub's limit", r.metaCut.Load(),
				"limit_bytes", lim.MaxMetaBytes, "boxes_left_out", cut.boxesCut, "input_keys_left_out", cut.keysCut,
				"events_left_out", cut.eventsCut)
		}
		// The workers checked the picture with the limits known when they
		// made it; a frame made before the first connection is checked here
		// with the hub's own.
		if err := lim.CheckSize(int64(res.header.Width), int64(res.header.Height)); err != nil {
			r.failed.Add(1)
			r.logs.warn("too_big", "processed frame larger than the hub accepts; dropped", r.failed.Load(), "error", err.Error())
			continue
		}
		f := protocol.Frame{Header: res.header, Meta: meta, Payload: res.payload}
		// A rendition of the output channel copies its input's sequence
		// number and capture time, and must be as wide as its name.
		f.Rendition = r.cfg.Sender.Rendition
		if f.Rendition != protocol.RenditionMain && f.Width != uint32(f.Rendition) {
			return fmt.Errorf("publish to %s as rendition %v: the steps make frames %d pixels wide, and a rendition is exactly "+
				"as wide as its name (end the steps with resize=%v)", r.cfg.Sender.Channel, f.Rendition, f.Width, f.Rendition)
		}
		if n := protocol.FrameLen(&f); n > lim.MaxFrameBytes {
			r.failed.Add(1)
			r.logs.warn("too_big", "processed frame larger than the hub accepts; dropped", r.failed.Load(), "bytes", n, "limit", lim.MaxFrameBytes)
			continue
		}
		buf = protocol.AppendFrame(buf[:0], &f)
		if err := r.sender.Send(ctx, buf); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var derr *dial.Error
			if errors.Is(err, publisher.ErrReplaced) || errors.As(err, &derr) {
				return fmt.Errorf("publish to %s: %w", r.cfg.Sender.Channel, err)
			}
			r.sendErrors.Add(1) // the next send reconnects, with a newer frame
			continue
		}
		if res.carried {
			r.carried.Add(1)
		}
		r.published.Add(1)
		r.samples.add(sampleAdded, float64(time.Now().UnixNano()-res.recvNS)/1e6)
	}
}

// noteMeta counts an input frame whose metadata had something left out.
func (r *runner) noteMeta(p *MetaProblem) {
	r.badMeta.Add(1)
	r.logs.warn("bad_meta", "input metadata partly left out", r.badMeta.Load(), "reason", p.Reason, "left_out", p.Dropped)
}

// Stats are a processor's counters since it started. Every input frame
// that arrived is, in the end, skipped (a newer one came before a worker
// was free), bad input, failed, late, overwritten, or published.
type Stats struct {
	Received  uint64 `json:"received"`  // input frames that arrived
	Skipped   uint64 `json:"skipped"`   // replaced by a newer input frame before a worker was free
	Processed uint64 `json:"processed"` // went through every step
	Published uint64 `json:"published"` // sent to the output channel
	// Late counts results dropped because a newer frame's result had been
	// published or was waiting (several workers): the output never goes
	// back in time.
	Late uint64 `json:"late"`
	// Overwritten counts results replaced by a newer one while the
	// previous send was in progress.
	Overwritten uint64 `json:"overwritten"`
	Failed      uint64 `json:"failed"`      // a step failed on them (or the result did not fit the hub's frame limit)
	BadInput    uint64 `json:"bad_input"`   // refused by the client's guard, or not decodable
	BadMeta     uint64 `json:"bad_meta"`    // input frames whose metadata had boxes, steps or keys left out
	MetaCut     uint64 `json:"meta_cut"`    // output frames whose metadata was cut to the hub's limit
	Carried     uint64 `json:"carried"`     // published frames whose detections the motion gate carried forward
	SendErrors  uint64 `json:"send_errors"` // sends that failed (the sender reconnects)
	Reconnects  uint64 `json:"reconnects"`  // of the input subscription
	// EventsStarted and EventsEnded count this worker's own events
	// (EventRules).
	EventsStarted uint64 `json:"events_started"`
	EventsEnded   uint64 `json:"events_ended"`
	// Milliseconds, median and 99th percentile over the last frames:
	// ProcMS from a worker taking a frame to its result; WaitMS from the
	// frame's arrival to a worker taking it; AddedMS from its arrival to
	// its publication (the frame age processing adds).
	ProcMSP50  float64 `json:"proc_ms_p50"`
	ProcMSP99  float64 `json:"proc_ms_p99"`
	WaitMSP50  float64 `json:"wait_ms_p50"`
	WaitMSP99  float64 `json:"wait_ms_p99"`
	AddedMSP50 float64 `json:"added_ms_p50"`
	AddedMSP99 float64 `json:"added_ms_p99"`
}

func (r *runner) stats() Stats {
	late, over := r.out.counts()
	s := Stats{
		Received: r.received.Load(), Skipped: r.in.skippedCount(), Processed: r.processed.Load(),
		Published: r.published.Load(), Late: late, Overwritten: over, Failed: r.failed.Load(),
		BadInput: r.badInput.Load() + r.client.Invalid(), BadMeta: r.badMeta.Load(), MetaCut: r.metaCut.Load(),
		Carried: r.carried.Load(), SendErrors: r.sendErrors.Load(), Reconnects: r.client.Reconnects(),
	}
	if r.events != nil {
		s.EventsStarted, s.EventsEnded = r.events.counts()
	}
	s.ProcMSP50, s.ProcMSP99 = r.samples.percentiles(sampleProc)
	s.WaitMSP50, s.WaitMSP99 = r.samples.percentiles(sampleWait)
	s.AddedMSP50, s.AddedMSP99 = r.samples.percentiles(sampleAdded)
	return s
}

// Status formats the change between two Stats over dt as a status line.
func Status(prev, cur Stats, dt time.Duration) string {
	secs := max(dt.Seconds(), 1e-3)
	line := fmt.Sprintf("in %5.1f fps  out %5.1f fps  proc p50 %6.1f ms  added p50 %6.1f ms  skipped %d  late %d  failed %d  bad input %d",
		float64(cur.Received-prev.Received)/secs, float64(cur.Published-prev.Published)/secs,
		cur.ProcMSP50, cur.AddedMSP50, cur.Skipped, cur.Late, cur.Failed, cur.BadInput)
	if cur.EventsStarted > 0 {
		line += fmt.Sprintf("  events %d (%d going on)", cur.EventsStarted, cur.EventsStarted-cur.EventsEnded)
	}
	return line
}

func msSince(t time.Time) float64 { return float64(time.Since(t)) / float64(time.Millisecond) }

// Kinds of timing sample.
const (
	sampleProc = iota
	sampleWait
	sampleAdded
	sampleKinds
)

// sampleWindow is how many of the newest samples of each kind percentiles
// are taken over.
const sampleWindow = 4096

// sampler keeps the newest sampleWindow samples of each kind. Safe for
// concurrent use.
type sampler struct {
	mu   sync.Mutex
	ring [sampleKinds][]float64
	next [sampleKinds]int
}

func (s *sampler) add(kind int, v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring[kind]) < sampleWindow {
		s.ring[kind] = append(s.ring[kind], v)
		return
	}
	s.ring[kind][s.next[kind]] = v
	s.next[kind] = (s.next[kind] + 1) % sampleWindow
}

func (s *sampler) percentiles(kind int) (p50, p99 float64) {
	s.mu.Lock()
	v := slices.Clone(s.ring[kind])
	s.mu.Unlock()
	slices.Sort(v)
	return subscriber.Percentile(v, 50), subscriber.Percentile(v, 99)
}

// warnLog writes the worker's warnings through the shared rate-limited
// logger: at most one line per key (one per kind of trouble and step) per
// logEvery, each with the running total of its kind.
type warnLog struct{ *ratelimit.Logger }

// warn logs msg with the running total for key, unless key was logged less
// than logEvery ago (then it is folded into the next line's count).
func (l warnLog) warn(key, msg string, total uint64, args ...any) {
	l.LogKV(slog.LevelWarn, key, msg, append(args, "total", total)...)
}
