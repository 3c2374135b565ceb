package subscriber

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"framehub/protocol"
)

// maxAgeSamples bounds the frame ages a Stats keeps for its percentiles:
// past it, samples are replaced at random (reservoir sampling), so memory
// stays fixed on a run of any length.
const maxAgeSamples = 100_000

// Stats accumulates what a subscriber sees: frames, bytes, frame age,
// skipped sequence numbers. It is safe for concurrent use: one goroutine
// may Observe while another takes snapshots.
type Stats struct {
	mu         sync.Mutex
	start      time.Time
	firstFrame time.Duration // since start; 0 until the first frame
	frames     uint64
	bytes      uint64
	skipped    uint64
	lastSeq    uint64
	lastRecv   time.Time
	haveSeq    bool
	width      uint32
	height     uint32
	codec      string
	ages       []float64 // ms, reservoir of the whole run
	seen       uint64    // ages offered to the reservoir
	maxAge     float64
	win        window
	boxes      boxTally
	events     eventTally
}

// window is the part of the stats since the last status line.
type window struct {
	start  time.Time
	frames uint64
	bytes  uint64
	ages   []float64
}

// NewStats returns Stats whose clock starts now.
func NewStats(now time.Time) *Stats {
	return &Stats{start: now, win: window{start: now}}
}

// Observe records a frame.
func (s *Stats) Observe(f *Frame) {
	age := float64(f.Age()) / float64(time.Millisecond)
	boxes, problem := protocol.ParseBoxes(f.Meta)
	var events []protocol.Event
	var eventProblem *protocol.BoxProblem
	if protocol.HasEvents(f.Meta) {
		events, eventProblem = protocol.ParseEvents(f.Meta)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.boxes.observe(boxes, problem)
	s.events.observe(events, eventProblem)
	if s.frames == 0 {
		s.firstFrame = f.Received.Sub(s.start)
	}
	s.frames++
	s.bytes += uint64(f.Size)
	s.width, s.height, s.codec = f.Width, f.Height, f.Codec.String()
	// Sequence numbers go up by one per captured frame; a gap is frames
	// skipped somewhere on the way (publisher, hub or network). A lower
	// number, or a jump no camera could have made in the time, means the
	// publisher numbers anew (protocol.SkippedFrames).
	if s.haveSeq {
		s.skipped += protocol.SkippedFrames(s.lastSeq, f.Seq, f.Received.Sub(s.lastRecv))
	}
	s.lastSeq, s.lastRecv, s.haveSeq = f.Seq, f.Received, true
	s.seen++
	if len(s.ages) < maxAgeSamples {
		s.ages = append(s.ages, age)
	} else if i := rand.Uint64N(s.seen); i < maxAgeSamples {
		s.ages[i] = age
	}
	s.maxAge = max(s.maxAge, age)
	s.win.frames++
	s.win.bytes += uint64(f.Size)
	if len(s.win.ages) < maxAgeSamples {
		s.win.ages = append(s.win.ages, age)
	}
}

// Summary is the outcome of a run. Its JSON form is what `framehub watch
// --json` prints.
type Summary struct {
	Channel      string  `json:"channel,omitempty"`
	Frames       uint64  `json:"frames"`
	FPS          float64 `json:"fps"`
	Bytes        uint64  `json:"bytes"`
	KBPS         float64 `json:"kbps"`
	Width        uint32  `json:"width"`
	Height       uint32  `json:"height"`
	Codec        string  `json:"codec"`
	AgeP50MS     float64 `json:"age_ms_p50"`
	AgeP99MS     float64 `json:"age_ms_p99"`
	AgeMaxMS     float64 `json:"age_ms_max"`
	Skipped      uint64  `json:"skipped"`
	Reconnects   uint64  `json:"reconnects"`
	FirstFrameMS float64 `json:"first_frame_ms"` // -1 if no frame arrived
	Seconds      float64 `json:"duration_s"`
	// Boxes counts the frames whose metadata carried boxes, and the boxes
	// of each label.
	Boxes BoxSummary `json:"boxes"`
	// Events counts the distinct events the frames' metadata carried, and
	// those seen to end.
	Events EventSummary `json:"events"`
}

// Summary returns the totals since the Stats began.
func (s *Stats) Summary(now time.Time) Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	secs := now.Sub(s.start).Seconds()
	sum := Summary{
		Frames: s.frames, Bytes: s.bytes, Width: s.width, Height: s.height, Codec: s.codec,
		Skipped: s.skipped, AgeMaxMS: round(s.maxAge), FirstFrameMS: -1, Seconds: round(secs),
		Boxes: s.boxes.summary(), Events: s.events.summary(),
	}
	if secs > 0 {
		sum.FPS = round(float64(s.frames) / secs)
		sum.KBPS = round(8 * float64(s.bytes) / 1000 / secs)
	}
	if s.frames > 0 {
		sum.FirstFrameMS = round(float64(s.firstFrame) / float64(time.Millisecond))
	}
	sorted := slices.Clone(s.ages)
	slices.Sort(sorted)
	sum.AgeP50MS = round(Percentile(sorted, 50))
	sum.AgeP99MS = round(Percentile(sorted, 99))
	return sum
}

// Status returns a one-line report of the time since the previous call (or
// the start) and begins a new window.
func (s *Stats) Status(now time.Time) string {
	s.mu.Lock()
	w := s.win
	s.win = window{start: now, ages: w.ages[:0:0]}
	skipped, width, height, codec := s.skipped, s.width, s.height, s.codec
	s.mu.Unlock()
	secs := now.Sub(w.start).Seconds()
	if secs <= 0 {
		secs = 1
	}
	slices.Sort(w.ages)
	return fmt.Sprintf("%5.1f fps  %7.0f kbps  %dx%d %s  age p50 %6.1f ms  p99 %6.1f ms  skipped %d",
		float64(w.frames)/secs, 8*float64(w.bytes)/1000/secs, width, height, codec,
		Percentile(w.ages, 50), Percentile(w.ages, 99), skipped)
}

// Percentile returns the p-th percentile (0 to 100) of sorted values by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. It returns 0 for no values.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func round(v float64) float64 { return math.Round(v*100) / 100 }
