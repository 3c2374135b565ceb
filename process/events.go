package process

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"framehub/protocol"
)

// Events: what a detection becomes. A box is one detector's finding in
// one frame; an event is a label seen in a zone, debounced, with a start,
// an end and a best frame. The engine reads the boxes of every processed
// frame in frame order (observe), and writes the events going on into
// every published frame's metadata (annotate): the page, viewers,
// recorders and the hub all learn of events from the frames themselves.

// Defaults and limits of EventRules.
const (
	DefaultEventNeed   = 3
	DefaultEventWindow = 5
	DefaultEventQuiet  = 2 * time.Second
	// MaxEventWindow bounds the frames an event's start looks back over.
	MaxEventWindow = 64
	// MaxZones bounds --zone; maxZonePoints a zone's corners.
	MaxZones      = 16
	maxZonePoints = 64
	// MaxEventKinds bounds labels × zones: one event of each kind may be
	// going on at once, and all of them fit in a frame's metadata
	// (protocol.MaxEvents) with the ended ones being announced.
	MaxEventKinds = 16
	// endAnnounceFrames and endAnnounceTime: an ended event stays in the
	// metadata of at least this many published frames and for at least
	// this long, so that a reader that misses a frame (a viewer skipping,
	// a reconnecting sender) still sees the end.
	endAnnounceFrames = 3
	endAnnounceTime   = time.Second
)

// EventRules say which detections become events, and when an event starts
// and ends. The zero value makes no events.
type EventRules struct {
	// Labels are the box labels that make events (--event): "person",
	// "face", "motion", … Labels are case-sensitive.
	Labels []string
	// Zones, if any, are where an object must be: a box is in a zone when
	// the middle of its bottom edge (where a person stands) is. Each label
	// has its own event per zone. Without zones, the whole picture is one.
	Zones []Zone
	// MinScore is the least score a box must have (0: any, including boxes
	// without one).
	MinScore float64
	// MinArea is the least share of the picture a box must cover, 0 to 1.
	MinArea float64
	// Need and Window: an event starts when its object is seen in Need of
	// the last Window processed frames (default 3 of 5). Its start is the
	// capture time of the first of those frames.
	Need, Window int
	// Quiet ends an event when its object has not been seen for this long
	// (default 2 s); its end is the capture time of the last frame it was
	// seen in. Frames on which the motion gate carried the detections
	// forward count as seen: a person standing still is still there.
	Quiet time.Duration
}

// Enabled reports whether the rules make any events.
func (r EventRules) Enabled() bool { return len(r.Labels) > 0 }

// withDefaults checks the rules and fills in the defaults.
func (r EventRules) withDefaults() (EventRules, error) {
	if !r.Enabled() {
		if len(r.Zones) > 0 {
			return r, errors.New("--zone without --event: name the labels that make events")
		}
		return r, nil
	}
	if r.Need == 0 && r.Window == 0 {
		r.Need, r.Window = DefaultEventNeed, DefaultEventWindow
	}
	if r.Quiet == 0 {
		r.Quiet = DefaultEventQuiet
	}
	seen := map[string]bool{}
	for _, l := range r.Labels {
		if l == "" || l != protocol.CutLabel(l) {
			return r, fmt.Errorf("--event %q: a label is 1 to %d characters", l, protocol.MaxLabelLen)
		}
		if seen[l] {
			return r, fmt.Errorf("--event %q given twice", l)
		}
		seen[l] = true
	}
	zones := map[string]bool{}
	for _, z := range r.Zones {
		if zones[z.Name] {
			return r, fmt.Errorf("--zone %s given twice", z.Name)
		}
		zones[z.Name] = true
	}
	switch {
	case len(r.Zones) > MaxZones:
		return r, fmt.Errorf("%d zones: at most %d", len(r.Zones), MaxZones)
	case len(r.Labels)*max(1, len(r.Zones)) > MaxEventKinds:
		return r, fmt.Errorf("%d labels in %d zones make %d kinds of event: at most %d", len(r.Labels), len(r.Zones),
			len(r.Labels)*len(r.Zones), MaxEventKinds)
	case r.Window < 1 || r.Window > MaxEventWindow || r.Need < 1 || r.Need > r.Window:
		return r, fmt.Errorf("event frames %d/%d: need 1 to %d frames of 1 to %d", r.Need, r.Window, r.Window, MaxEventWindow)
	case r.Quiet < 0:
		return r, fmt.Errorf("event quiet time %v: must not be negative", r.Quiet)
	case !(r.MinScore >= 0 && r.MinScore <= 1):
		return r, fmt.Errorf("event minimum score %g: must be 0 to 1", r.MinScore)
	case !(r.MinArea >= 0 && r.MinArea <= 1):
		return r, fmt.Errorf("event minimum area %g: must be a share of the picture, 0 to 1", r.MinArea)
	}
	return r, nil
}

// ParseEventFrames reads "N/M" (--event-frames): seen in N of the last M
// processed frames.
func ParseEventFrames(s string) (need, window int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		need, err = strconv.Atoi(a)
		if err == nil {
			window, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || window < 1 || window > MaxEventWindow || need < 1 || need > window {
		return 0, 0, fmt.Errorf("event frames %q: want N/M, seen in N of the last M frames (1 ≤ N ≤ M ≤ %d), like 3/5", s, MaxEventWindow)
	}
	return need, window, nil
}

// Point is a point in a picture, in coordinates normalised to 0–1 (0,0 the
// top-left corner, 1,1 the bottom-right).
type Point struct{ X, Y float64 }

// Zone is a named polygon in normalised coordinates.
type Zone struct {
	Name   string
	Points []Point
}

// ParseZone reads a zone: "NAME:x1,y1,x2,y2,x3,y3,…", a name like a
// channel's and at least three corners in coordinates from 0 to 1, in
// order around the polygon. "door:0,0.5,1,0.5,1,1,0,1" is the lower half.
func ParseZone(spec string) (Zone, error) {
	name, coords, ok := strings.Cut(spec, ":")
	if !ok || !protocol.ValidEventID(name) {
		return Zone{}, fmt.Errorf("zone %q: want NAME:x1,y1,x2,y2,x3,y3,… with a NAME of 1 to 64 letters, digits, '_' or '-'", spec)
	}
	parts := strings.Split(coords, ",")
	if len(parts)%2 != 0 || len(parts) < 6 || len(parts) > 2*maxZonePoints {
		return Zone{}, fmt.Errorf("zone %s: want 3 to %d corners as x,y pairs, got %d numbers", name, maxZonePoints, len(parts))
	}
	z := Zone{Name: name}
	for i := 0; i < len(parts); i += 2 {
		x, errX := strconv.ParseFloat(strings.TrimSpace(parts[i]), 64)
		y, errY := strconv.ParseFloat(strings.TrimSpace(parts[i+1]), 64)
		if errX != nil || errY != nil || !(x >= 0 && x <= 1) || !(y >= 0 && y <= 1) {
			return Zone{}, fmt.Errorf("zone %s: corner %d (%s,%s) is not two numbers from 0 to 1 (coordinates are shares of the width and height)",
				name, i/2+1, parts[i], parts[i+1])
		}
		z.Points = append(z.Points, Point{x, y})
	}
	if polygonArea(z.Points) == 0 {
		return Zone{}, fmt.Errorf("zone %s: its corners enclose no area", name)
	}
	return z, nil
}

// Contains reports whether p is inside the zone (even-odd rule; a point on
// the left or top edge is inside, one on the right or bottom edge may not
// be, so that zones that share an edge do not both hold it; the picture's
// own bottom and right edges are inside a zone that reaches them).
func (z Zone) Contains(p Point) bool {
	in := false
	n := len(z.Points)
	for i, j := 0, n-1; i < n; j, i = i, i+1 {
		a, b := z.Points[i], z.Points[j]
		if (a.Y > p.Y) != (b.Y > p.Y) && p.X < (b.X-a.X)*(p.Y-a.Y)/(b.Y-a.Y)+a.X {
			in = !in
		}
	}
	if in {
		return true
	}
	// A box standing on the bottom of the picture has its point at y = 1,
	// which the rule above leaves outside a zone whose edge is y = 1: look
	// a hair above (and left of the right edge) for those.
	if p.Y >= 1 || p.X >= 1 {
		q := Point{min(p.X, 1-1e-9), min(p.Y, 1-1e-9)}
		if q != p {
			return z.Contains(q)
		}
	}
	return false
}

func polygonArea(ps []Point) float64 {
	a := 0.0
	for i := range ps {
		j := (i + 1) % len(ps)
		a += ps[i].X*ps[j].Y - ps[j].X*ps[i].Y
	}
	return math.Abs(a) / 2
}

// eventEngine turns the boxes of processed frames into events. observe
// is called for each processed frame in ticket order (a frame that comes
// after a newer one is ignored, as the output slot drops it); annotate for
// each published frame. Safe for concurrent use.
type eventEngine struct {
	rules EventRules
	newID func() string

	mu      sync.Mutex
	last    uint64       // newest ticket observed
	kinds   []*eventKind // one per label and zone
	ended   []*liveEvent // ended, still being announced, oldest first
	started uint64
	endedN  uint64
}

// eventKind is one label in one zone: the frames it was seen in lately,
// and its event going on, if any.
type eventKind struct {
	label string
	zone  *Zone // nil: the whole picture
	hist  []sighting
	next  int // where the next sighting goes in hist
	ev    *liveEvent
}

// sighting is whether a kind was seen in one processed frame, and when.
type sighting struct {
	seen    bool
	capture float64 // event time (Unix seconds) of the frame
}

// liveEvent is an event the engine announces.
type liveEvent struct {
	protocol.Event
	lastRecv time.Time // when a frame it was seen in arrived
	// pubScore is the best score of the published frames that showed it
	// (the one flagged best); pubSeen whether any did.
	pubScore float64
	pubSeen  bool
	// announced counts the published frames that carried its end, since
	// endFirst.
	announced int
	endFirst  time.Time
}

func newEventEngine(rules EventRules) *eventEngine {
	e := &eventEngine{rules: rules, newID: randomEventID}
	for _, l := range rules.Labels {
		if len(rules.Zones) == 0 {
			e.kinds = append(e.kinds, &eventKind{label: l, hist: make([]sighting, rules.Window)})
		}
		for i := range rules.Zones {
			e.kinds = append(e.kinds, &eventKind{label: l, zone: &rules.Zones[i], hist: make([]sighting, rules.Window)})
		}
	}
	return e
}

// randomEventID returns 16 random hex digits: unique enough across
// workers and restarts for ids, file names and idempotency keys.
func randomEventID() string {
	var b [8]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b[:])
}

// eventTime returns a frame's event time: its capture time when that is a
// time an event may have, else its arrival.
func eventTime(captureNS, recvNS int64) float64 {
	if s := protocol.EventSeconds(captureNS); s > 0 && s <= protocol.MaxEventTime {
		return s
	}
	return protocol.EventSeconds(recvNS)
}

// observe reads the boxes of the processed frame ticket (in pixels of a
// w×h picture), captured at captureNS and arrived at recvNS, and starts
// and ends events. It returns, per kind, the best score of the matching
// boxes in this frame (-1: none matched), or nil when the frame came
// after a newer one.
func (e *eventEngine) observe(ticket uint64, captureNS, recvNS int64, w, h int, boxes []protocol.Box) []float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ticket <= e.last {
		return nil
	}
	e.last = ticket
	at := eventTime(captureNS, recvNS)
	recv := time.Unix(0, recvNS)
	scores := make([]float64, len(e.kinds))
	for k, kind := range e.kinds {
		scores[k] = e.match(kind, boxes, w, h)
		seen := scores[k] >= 0
		kind.hist[kind.next] = sighting{seen: seen, capture: at}
		kind.next = (kind.next + 1) % len(kind.hist)
		switch ev := kind.ev; {
		case ev != nil && seen:
			ev.lastRecv = recv
			ev.End = at // the last time seen; reported once it ends
		case ev != nil && recv.Sub(ev.lastRecv) >= e.rules.Quiet:
			e.end(kind)
		case ev == nil && seen:
			first, n := 0.0, 0
			for _, s := range kind.hist {
				if s.seen {
					n++
					if first == 0 || s.capture < first {
						first = s.capture
					}
				}
			}
			if n >= e.rules.Need {
				zone := ""
				if kind.zone != nil {
					zone = kind.zone.Name
				}
				kind.ev = &liveEvent{Event: protocol.Event{ID: e.newID(), Label: kind.label, Zone: zone, Start: first, End: at},
					lastRecv: recv}
				e.started++
			}
		}
	}
	return scores
}

// end moves kind's event to the ended ones, and forgets its sightings: the
// next event of the kind needs frames of its own.
func (e *eventEngine) end(kind *eventKind) {
	ev := kind.ev
	kind.ev = nil
	clear(kind.hist)
	ev.End = max(ev.End, ev.Start)
	if len(e.ended) >= MaxEventKinds {
		e.ended = e.ended[1:] // cannot happen with a quiet time longer than announcing takes
	}
	e.ended = append(e.ended, ev)
	e.endedN++
}

// match returns the best score of the boxes that count for kind, or -1.
func (e *eventEngine) match(kind *eventKind, boxes []protocol.Box, w, h int) float64 {
	best := -1.0
	if w <= 0 || h <= 0 {
		return best
	}
	area := float64(w) * float64(h)
	for _, b := range boxes {
		if b.Label != kind.label || b.Score < e.rules.MinScore || b.W <= 0 || b.H <= 0 || b.W*b.H < e.rules.MinArea*area {
			continue
		}
		if kind.zone != nil && !kind.zone.Contains(Point{X: (b.X + b.W/2) / float64(w), Y: (b.Y + b.H) / float64(h)}) {
			continue
		}
		best = max(best, b.Score)
	}
	return best
}

// annotate returns the events to write into a frame being published: every
// event going on, and the ended ones still being announced. scores are
// what observe returned for the frame (nil if it did not observe it): an
// event seen in it with a better score than any published frame before is
// flagged best, and its score is the best published one.
func (e *eventEngine) annotate(scores []float64, now time.Time) []protocol.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []protocol.Event
	for k, kind := range e.kinds {
		ev := kind.ev
		if ev == nil {
			continue
		}
		pe := ev.Event
		pe.End = 0 // going on
		if k < len(scores) && scores[k] >= 0 && (!ev.pubSeen || scores[k] > ev.pubScore) {
			ev.pubSeen, ev.pubScore = true, scores[k]
			pe.Best = true
		}
		pe.Score = ev.pubScore
		out = append(out, pe)
	}
	keep := e.ended[:0]
	for _, ev := range e.ended {
		if ev.announced == 0 {
			ev.endFirst = now
		}
		ev.announced++
		pe := ev.Event
		pe.Score = ev.pubScore
		out = append(out, pe)
		if ev.announced < endAnnounceFrames || now.Sub(ev.endFirst) < endAnnounceTime {
			keep = append(keep, ev)
		}
	}
	clear(e.ended[len(keep):])
	e.ended = keep
	return out
}

// counts returns the events started and ended so far.
func (e *eventEngine) counts() (started, ended uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started, e.endedN
}

// mergeEvents returns the worker's own events followed by the input's
// (when a frame cannot hold them all, its own matter most), leaving out an
// input event that has an id of the worker's.
func mergeEvents(input, own []protocol.Event) []protocol.Event {
	if len(input) == 0 {
		return own
	}
	out := append(make([]protocol.Event, 0, len(input)+len(own)), own...)
	for _, e := range input {
		clash := false
		for _, o := range own {
			clash = clash || o.ID == e.ID
		}
		if !clash {
			out = append(out, e)
		}
	}
	return out
}
