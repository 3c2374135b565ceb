package subscriber

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"framehub/protocol"
)

// Event recordings: `framehub record --on-event LABEL --pre 5s --post 10s
// --dir DIR`. The recorder keeps the last Pre of frames (and a little more)
// in a ring bounded in bytes; when a frame says an event of one of its
// labels goes on, it starts a Matroska file with the ring's frames from Pre
// before the event's start, then every frame until Post after its end.
// Events that overlap (or start within Post of the end of one) extend the
// same file. Files are written as Record writes them: crash-safe, each
// frame in one write, a write error ends the recording.

// Event recording defaults and limits.
const (
	// DefaultPreMaxBytes is the ring's byte budget: a --pre that would need
	// more, at the channel's frame size and rate, is refused.
	DefaultPreMaxBytes = 256 << 20
	// ringSlack is how much more than Pre the ring keeps: an event is
	// announced a little after it starts (the worker's debounce and
	// processing), and its file still begins Pre before the start.
	ringSlack = 3 * time.Second
	// maxTrackedRecordEvents bounds the events one file follows (a flood
	// of ids cannot grow it): past it, new ones extend the file as they
	// come but are not remembered apart.
	maxTrackedRecordEvents = 64
)

// EventRecordConfig configures RecordEvents.
type EventRecordConfig struct {
	Client Config // Hub, Channel, Header, TLS, Guard, backoff
	// Dir is where files go (created if missing): one per event, or per
	// run of overlapping events, named CHANNEL-YYYYMMDD-HHMMSS-LABEL-ID.mkv
	// after the first event's start (local time) and id.
	Dir string
	// Labels are the event labels to record (at least one); "*" records
	// every event.
	Labels []string
	// Pre and Post: a file begins Pre before its first event starts and
	// ends Post after its last event ends.
	Pre, Post time.Duration
	// PreMaxBytes bounds the ring that holds the last Pre of frames (0:
	// DefaultPreMaxBytes). RecordEvents refuses a Pre that would need
	// more, at the channel's frame size and rate, as soon as it knows them.
	PreMaxBytes int64
	FPS         float64 // file frame rate; 0: the channel's
	MaxPixels   uint64  // as RecordConfig.MaxPixels
	DrawBoxes   bool    // as RecordConfig.DrawBoxes
	// Retention, with a Keep or a MaxSize, deletes the oldest event files
	// (see RetentionConfig); its Dir is Dir, its ledger named after the
	// channel and "events".
	Retention RetentionConfig
	// OnFrame, if set, is called after each frame with the stats so far, on
	// the goroutine receiving frames; it must return quickly.
	OnFrame func(EventRecordStats)
	Logger  *slog.Logger // nil discards
}

// EventRecordStats describes an event recording.
type EventRecordStats struct {
	RecordStats          // files, frames received, written, refused, dropped
	Events      int      `json:"events"`      // events recorded
	RingBytes   int64    `json:"ring_bytes"`  // the ring's size now
	RingPeak    int64    `json:"ring_peak"`   // its largest
	RingFrames  int      `json:"ring_frames"` // frames in it now
	RingCut     uint64   `json:"ring_cut"`    // frames dropped from it before Pre had passed, to stay within its budget
	IDs         []string `json:"-"`           // ids of the events recorded, oldest first (at most 1000)
}

// ErrPreTooLong is RecordEvents' answer to a Pre whose frames do not fit
// in the ring's byte budget.
var ErrPreTooLong = errors.New("the pre-roll does not fit in its memory budget")

// RecordEvents records the events of the channel until ctx ends, then
// completes the file being written. Any error writing a file ends it with
// that error; the file keeps what was written.
func RecordEvents(ctx context.Context, cfg EventRecordConfig) (EventRecordStats, error) {
	var st EventRecordStats
	switch {
	case len(cfg.Labels) == 0:
		return st, errors.New("--on-event: name the event labels to record (or * for all)")
	case cfg.Pre < 0 || cfg.Post < 0:
		return st, errors.New("--pre and --post must not be negative")
	case cfg.Dir == "":
		return st, errors.New("--dir: the directory event recordings go to")
	}
	for _, l := range cfg.Labels {
		if l == "" || l != protocol.CutLabel(l) {
			return st, fmt.Errorf("--on-event %q: a label is 1 to %d characters", l, protocol.MaxLabelLen)
		}
	}
	if cfg.FPS < 0 || cfg.FPS > MaxRecordFPS || math.IsNaN(cfg.FPS) {
		return st, fmt.Errorf("frame rate %g: must be 0 (the channel's) to %d", cfg.FPS, MaxRecordFPS)
	}
	if cfg.DrawBoxes && !haveOpenCV {
		return st, errDrawBoxes
	}
	if cfg.PreMaxBytes == 0 {
		cfg.PreMaxBytes = DefaultPreMaxBytes
	}
	if cfg.MaxPixels == 0 {
		cfg.MaxPixels = protocol.DefaultMaxPixels
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cc := cfg.Client
	cc.Logger = log
	cl, err := New(cc)
	if err != nil {
		return st, err
	}
	rc := cfg.Retention
	rc.Dir = cfg.Dir
	if rc.Name == "" {
		rc.Name = cc.Channel + "-events"
	}
	if rc.Logger == nil {
		rc.Logger = log
	}
	var ret *Retention
	if retentionOn(rc) {
		if ret, err = OpenRetention(rc); err != nil {
			return st, err
		}
		defer ret.Close()
	} else if err := mkdirAll(cfg.Dir); err != nil {
		return st, err
	}
	st.FPS = cfg.FPS
	if st.FPS == 0 {
		st.FPS = channelFPS(ctx, cc)
	}
	mf := &matroskaFiles{fps: st.FPS, title: "framehub " + cc.Channel + " event"}
	if cfg.DrawBoxes {
		if mf.burn, err = newBoxBurner(cfg.MaxPixels); err != nil {
			return st, err
		}
	}
	defer mf.release()
	er := &eventRecorder{cfg: cfg, log: log.With("channel", cc.Channel), out: mf, ret: ret, st: &st,
		labels: cfg.Labels, channel: cc.Channel}
	err = cl.Run(ctx, func(f *Frame) error {
		err := er.frame(ctx, f)
		if cfg.OnFrame != nil {
			cfg.OnFrame(st)
		}
		return err
	})
	if er.err != nil {
		err = er.err // a write error or a refused pre-roll, even if ctx ended as it happened
	}
	if cerr := er.closeFile(); err == nil {
		err = cerr
	}
	st.Refused += cl.Invalid()
	return st, err
}

// eventRecorder follows the events of a channel and writes their files. It
// runs on the client's goroutine.
type eventRecorder struct {
	cfg     EventRecordConfig
	log     *slog.Logger
	out     *matroskaFiles // shared by the files, one open at a time
	ret     *Retention     // nil without retention
	st      *EventRecordStats
	labels  []string
	channel string
	err     error

	ring      []*Frame // the last frames, oldest first, with bytes of their own
	ringBytes int64
	checked   bool // the budget was checked against the first frame

	file     *recorder              // the file being written, or nil
	fileSt   RecordStats            // what file wrote, merged into st
	events   map[string]*liveRecord // events the file follows, by id
	stopAt   float64                // event time (capture seconds) after which the file ends, once no event goes on
	lastWarn time.Time
}

// liveRecord is an event a file follows.
type liveRecord struct {
	end  float64 // 0 while it goes on
	seen bool    // in the latest frame that listed events
}

// frame handles one received frame.
func (er *eventRecorder) frame(ctx context.Context, f *Frame) error {
	er.st.Received++
	own := copyFrame(f)
	if err := er.checkBudget(own); err != nil {
		er.err = err
		return err
	}
	er.push(own)
	at := float64(own.CaptureTime) / 1e9
	events := er.matching(own)
	if er.file == nil {
		var first *protocol.Event
		for i := range events {
			if events[i].Active() && (first == nil || events[i].Start < first.Start) {
				first = &events[i]
			}
		}
		if first == nil {
			return nil
		}
		if err := er.openFile(ctx, *first); err != nil {
			er.err = err
			return err
		}
	} else if err := er.write(ctx, own); err != nil {
		er.err = err
		return err
	}
	er.follow(events, at)
	if er.goingOn() == 0 && at > er.stopAt {
		if err := er.closeFile(); err != nil {
			er.err = err
			return err
		}
	}
	return nil
}

// copyFrame returns f with bytes of its own: the client's are valid only
// during its callback.
func copyFrame(f *Frame) *Frame {
	c := *f
	c.Meta = bytes.Clone(f.Meta)
	c.Payload = bytes.Clone(f.Payload)
	return &c
}

func frameBytes(f *Frame) int64 { return int64(len(f.Meta) + len(f.Payload) + protocol.HeaderLen) }

// checkBudget refuses, on the first frame, a Pre that would need more than
// the ring's budget at this frame's size and the file's frame rate.
func (er *eventRecorder) checkBudget(f *Frame) error {
	if er.checked {
		return nil
	}
	er.checked = true
	span := (er.cfg.Pre + ringSlack).Seconds()
	need := float64(frameBytes(f)) * er.st.FPS * span
	if need <= float64(er.cfg.PreMaxBytes) {
		return nil
	}
	return fmt.Errorf("%w: --pre %v of %dx%d frames (%d KB each at %g fps, and %v of slack) needs about %s of memory, over --pre-max-bytes %s: shorten --pre or raise --pre-max-bytes",
		ErrPreTooLong, er.cfg.Pre, f.Width, f.Height, frameBytes(f)/1000, er.st.FPS, ringSlack, humanBytes(need), humanBytes(float64(er.cfg.PreMaxBytes)))
}

// humanBytes writes a byte count in binary units.
func humanBytes(n float64) string {
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if n < 1024 || u == "TiB" {
			return fmt.Sprintf("%.1f %s", n, u)
		}
		n /= 1024
	}
	return ""
}

// push adds f to the ring and drops what is older than Pre and the slack
// before it, or past the byte budget (counted: the pre-roll is then
// shorter than Pre).
func (er *eventRecorder) push(f *Frame) {
	er.ring = append(er.ring, f)
	er.ringBytes += frameBytes(f)
	horizon := f.CaptureTime - int64(er.cfg.Pre+ringSlack)
	drop := 0
	for drop < len(er.ring)-1 && (er.ring[drop].CaptureTime < horizon || er.ringBytes > er.cfg.PreMaxBytes) {
		if er.ring[drop].CaptureTime >= horizon {
			er.st.RingCut++
			if now := time.Now(); now.Sub(er.lastWarn) >= refusalLogEvery {
				er.log.Warn("the pre-roll ring is over its budget: frames are larger than at the start, the pre-roll is shorter than --pre",
					"budget_bytes", er.cfg.PreMaxBytes, "cut", er.st.RingCut)
				er.lastWarn = now
			}
		}
		er.ringBytes -= frameBytes(er.ring[drop])
		er.ring[drop] = nil
		drop++
	}
	er.ring = er.ring[drop:]
	if cap(er.ring) > 2*len(er.ring)+64 {
		er.ring = slices.Clone(er.ring) // let the dropped part's array go
	}
	er.st.RingBytes, er.st.RingFrames = er.ringBytes, len(er.ring)
	er.st.RingPeak = max(er.st.RingPeak, er.ringBytes)
}

// matching returns the events of f that have one of the labels.
func (er *eventRecorder) matching(f *Frame) []protocol.Event {
	if !protocol.HasEvents(f.Meta) {
		return nil
	}
	events, _ := protocol.ParseEvents(f.Meta)
	out := events[:0]
	for _, e := range events {
		if slices.Contains(er.labels, "*") || slices.Contains(er.labels, e.Label) {
			out = append(out, e)
		}
	}
	return out
}

// openFile starts a file for event e: the ring's frames from Pre before
// its start, the newest (this frame) last.
func (er *eventRecorder) openFile(ctx context.Context, e protocol.Event) error {
	name := fmt.Sprintf("%s-%s-%s-%s.mkv", er.channel, e.StartTime().Local().Format("20060102-150405"), fileLabel(e.Label), e.ID)
	er.fileSt = RecordStats{FPS: er.st.FPS}
	er.file = &recorder{cfg: RecordConfig{Out: filepath.Join(er.cfg.Dir, name), MaxPixels: er.cfg.MaxPixels, DrawBoxes: er.cfg.DrawBoxes},
		format: videoFormat{name: "Motion JPEG in Matroska", minSide: 1}, out: er.out, st: &er.fileSt,
		log: er.log, step: time.Duration(float64(time.Second) / er.st.FPS), ret: er.ret,
		fresh: true} // the event names the file: a restart or another event may have taken the name
	er.events = map[string]*liveRecord{}
	from := int64(math.Round((e.Start - er.cfg.Pre.Seconds()) * 1e9))
	er.log.Info("event", "id", e.ID, "label", e.Label, "zone", e.Zone, "start", e.StartTime())
	for _, f := range er.ring {
		if f.CaptureTime < from {
			continue
		}
		if err := er.write(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// fileLabel makes a label safe in a file name: letters, digits, '_' and
// '-', at most 32 of them.
func fileLabel(l string) string {
	b := []byte(l)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), 32)])
}

// write appends f to the open file, and adds what it did to the stats.
func (er *eventRecorder) write(ctx context.Context, f *Frame) error {
	before := er.fileSt
	err := er.file.frame(ctx, f)
	now := &er.fileSt
	st := &er.st.RecordStats
	st.Written += now.Written - before.Written
	st.Refused += now.Refused - before.Refused
	st.Dropped += now.Dropped - before.Dropped
	st.Files = append(st.Files, now.Files[len(before.Files):]...)
	st.Width, st.Height, st.Retention = now.Width, now.Height, now.Retention
	return err
}

// follow updates the file's events from a frame's (matching) events: new
// ones join, ended ones (or ones the frame no longer lists) end, and the
// file's end moves to Post after the last end.
func (er *eventRecorder) follow(events []protocol.Event, at float64) {
	for _, ev := range er.events {
		ev.seen = false
	}
	for _, e := range events {
		ev := er.events[e.ID]
		if ev == nil {
			if len(er.events) >= maxTrackedRecordEvents {
				er.stopAt = max(er.stopAt, at+er.cfg.Post.Seconds())
				continue
			}
			ev = &liveRecord{}
			er.events[e.ID] = ev
			er.st.Events++
			if len(er.st.IDs) < 1000 {
				er.st.IDs = append(er.st.IDs, e.ID)
			}
		}
		ev.seen = true
		if !e.Active() {
			ev.end = e.End
		}
	}
	for _, ev := range er.events {
		if ev.end == 0 && !ev.seen {
			ev.end = at // no longer listed: it ended, by this frame at the latest
		}
		if ev.end != 0 {
			er.stopAt = max(er.stopAt, ev.end+er.cfg.Post.Seconds())
		}
	}
}

// goingOn counts the file's events that have not ended.
func (er *eventRecorder) goingOn() int {
	n := 0
	for _, ev := range er.events {
		if ev.end == 0 {
			n++
		}
	}
	return n
}

// closeFile completes the open file, if any.
func (er *eventRecorder) closeFile() error {
	if er.file == nil {
		return nil
	}
	file := er.file
	er.file, er.events, er.stopAt = nil, nil, 0
	err := file.out.close()
	file.retainClosed()
	file.retainEnforce()
	if ret := er.ret; ret != nil {
		er.st.Retention = ret.Stats()
	}
	if err == nil && len(er.st.Files) > 0 {
		er.log.Info("event recording complete", "file", er.st.Files[len(er.st.Files)-1])
	}
	return err
}

// mkdirAll creates the event directory.
func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	return nil
}
