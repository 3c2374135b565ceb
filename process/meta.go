package process

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"framehub/protocol"
)

// Limits on what an input frame's metadata may pass on to the output.
const (
	// maxPassDepth is the deepest nesting of a key the output keeps from
	// the input's metadata; deeper values are dropped.
	maxPassDepth = 32
	// maxPassKeys is the most top-level keys kept from the input.
	maxPassKeys = 64
	// maxSteps is the most "steps" entries a frame carries (upstream
	// workers' and this one's).
	maxSteps = 32
	// maxStepName bounds a step name read from an input frame.
	maxStepName = 64
	// maxInputMeta bounds the input metadata read at all: a hub may allow
	// up to 16 MiB, which would take a worker long to parse, and no hub
	// relays that much on to the output by default (64 KiB).
	maxInputMeta = 1 << 20
)

// Keys this package writes; an input frame's values for them are read
// and checked ("boxes", "steps"), or replaced ("gate").
const (
	keyBoxes  = "boxes"
	keySteps  = "steps"
	keyGate   = "gate"
	keyCut    = "boxes_dropped"
	keyEvents = "events"
)

// Meta is a frame's metadata as it goes through the steps: the boxes
// (input's, checked, then each step's), the steps that ran with their
// times, the motion gate's verdict, and the input's other keys, passed on
// as they came (when they fit). A step adds boxes in pixels of f.Mat as it
// is when the step runs; a step that resizes the picture scales them.
type Meta struct {
	Boxes []protocol.Box
	Steps []StepTime
	Gate  *GateInfo
	// Events are the input's events (read by protocol.ParseEvents rules);
	// the worker's own (EventRules) go before them when the frame is
	// published.
	Events []protocol.Event
	pass   map[string]json.RawMessage // the input's other keys
	// nInput is how many of the first Boxes came with the input: when
	// the output's metadata must be cut, they go before the steps' own.
	nInput int
}

// StepTime is one entry of "steps": a step's name and how long it took on
// this frame. Gated marks a detector the motion gate skipped (nothing
// moved); its boxes, if any, are carried.
type StepTime struct {
	Name  string
	MS    float64
	Gated bool
}

// GateInfo is the motion gate's verdict on a frame, as "gate" in the
// metadata: whether anything moved (or the gate refreshed the detections
// on the whole frame), and in how many regions the detectors ran.
type GateInfo struct {
	Motion  bool
	Refresh bool
	Regions int
}

// MetaProblem says what was wrong with an input frame's metadata.
type MetaProblem struct {
	Reason  string // the first problem
	Dropped int    // boxes, steps and keys left out
}

// parseInput reads an input frame's metadata. It keeps what is valid and
// drops the rest, reporting what it dropped: boxes by protocol.ParseBoxes
// rules, "steps" entries that are not {"name":string,"ms":number}, keys
// nested deeper than maxPassDepth, keys past maxPassKeys, and metadata
// larger than maxInputMeta whole. It never fails.
func parseInput(meta []byte) (Meta, *MetaProblem) {
	var m Meta
	if len(meta) == 0 {
		return m, nil
	}
	if len(meta) > maxInputMeta {
		return m, &MetaProblem{Reason: fmt.Sprintf("%d bytes of metadata, more than the %d read", len(meta), maxInputMeta), Dropped: 1}
	}
	var p MetaProblem
	bad := func(n int, format string, args ...any) {
		if p.Reason == "" {
			p.Reason = fmt.Sprintf(format, args...)
		}
		p.Dropped += n
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(meta, &top); err != nil {
		// The client checked it is an object; this is a frame from elsewhere.
		return m, &MetaProblem{Reason: "metadata is not a JSON object", Dropped: 1}
	}
	if raw, ok := top[keyBoxes]; ok {
		boxes, bp := protocol.ParseBoxList(raw)
		m.Boxes, m.nInput = boxes, len(boxes)
		if bp != nil {
			bad(max(bp.Dropped, 1), "%s", bp.First)
		}
		delete(top, keyBoxes)
	}
	if raw, ok := top[keyEvents]; ok {
		events, ep := protocol.ParseEventList(raw)
		m.Events = events
		if ep != nil {
			bad(max(ep.Dropped, 1), "%s", ep.First)
		}
		delete(top, keyEvents)
	}
	if raw, ok := top[keySteps]; ok {
		var dropped int
		m.Steps, dropped = parseSteps(raw)
		if dropped > 0 {
			bad(dropped, `"steps" is not a list of {"name":string,"ms":number}`)
		}
		delete(top, keySteps)
	}
	delete(top, keyCut)
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > maxPassKeys {
		bad(len(keys)-maxPassKeys, "%d keys, keeping %d", len(keys), maxPassKeys)
		keys = keys[:maxPassKeys]
	}
	for _, k := range keys {
		v := top[k]
		if jsonDepth(v) > maxPassDepth {
			bad(1, "key %.64q nested deeper than %d", k, maxPassDepth)
			continue
		}
		if m.pass == nil {
			m.pass = make(map[string]json.RawMessage, len(keys))
		}
		m.pass[k] = v
	}
	if p.Reason == "" {
		return m, nil
	}
	return m, &p
}

// parseSteps reads "steps", keeping the well-formed entries (at most
// maxSteps) and counting the others.
func parseSteps(raw json.RawMessage) ([]StepTime, int) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, 1
	}
	var out []StepTime
	dropped := 0
	for _, r := range list {
		var obj map[string]json.RawMessage
		var st StepTime
		if json.Unmarshal(r, &obj) != nil || obj == nil ||
			json.Unmarshal(obj["name"], &st.Name) != nil || st.Name == "" || len(st.Name) > maxStepName ||
			json.Unmarshal(obj["ms"], &st.MS) != nil || isNullRaw(obj["ms"]) || st.MS < 0 || math.IsNaN(st.MS) {
			dropped++
			continue
		}
		if g, ok := obj["gated"]; ok {
			_ = json.Unmarshal(g, &st.Gated)
		}
		if len(out) == maxSteps {
			dropped++
			continue
		}
		out = append(out, st)
	}
	return out, dropped
}

func isNullRaw(r json.RawMessage) bool { return len(r) == 0 || string(r) == "null" }

// jsonDepth returns how deeply a valid JSON value nests arrays and
// objects (0 for a scalar), reading it once without allocating.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// scale multiplies every box by sx, sy: for a step that resizes the
// picture.
func (m *Meta) scale(sx, sy float64) {
	for i := range m.Boxes {
		b := &m.Boxes[i]
		b.X, b.W = b.X*sx, b.W*sx
		b.Y, b.H = b.Y*sy, b.H*sy
	}
}

// clip limits the boxes to a w×h picture and drops those left with no
// area (wholly outside it).
func (m *Meta) clip(w, h int) {
	out := m.Boxes[:0]
	nInput := m.inputBoxes()
	for i, b := range m.Boxes {
		x0, y0 := max(b.X, 0), max(b.Y, 0)
		x1, y1 := min(b.X+b.W, float64(w)), min(b.Y+b.H, float64(h))
		if x1-x0 < 0.5 || y1-y0 < 0.5 {
			if i < m.nInput {
				nInput--
			}
			continue
		}
		b.X, b.Y, b.W, b.H = x0, y0, x1-x0, y1-y0
		out = append(out, b)
	}
	m.Boxes, m.nInput = out, nInput
}

// inputBoxes returns how many of the first Boxes came with the input (a
// step of someone else's may have removed some).
func (m *Meta) inputBoxes() int { return min(m.nInput, len(m.Boxes)) }

// pickBoxes returns k of the boxes, the steps' own first, then the
// input's, in the order they are in.
func (m *Meta) pickBoxes(k int) []protocol.Box {
	in, own := m.Boxes[:m.inputBoxes()], m.Boxes[m.inputBoxes():]
	ko := min(k, len(own))
	ki := min(k-ko, len(in))
	out := make([]protocol.Box, 0, ki+ko)
	out = append(out, in[:ki]...)
	return append(out, own[:ko]...)
}

// encodeResult is what encoding a Meta had to leave out to fit.
type encodeResult struct {
	boxesCut   int // boxes left out (past protocol.MaxBoxes or the byte limit)
	keysCut    int // input keys left out for the byte limit
	stepsCut   int // "steps" entries left out for the byte limit
	eventsCut  int // events left out (past protocol.MaxEvents or the byte limit)
	overBudget bool
}

// encode returns the metadata as a JSON object of at most limit bytes
// (limit <= 0: no limit), or nil when there is nothing to say. What it
// keeps, in order of importance: the gate's verdict, the events (at most
// protocol.MaxEvents), the boxes (at most protocol.MaxBoxes: the steps'
// own first, then the input's), the steps, and the input's other keys in
// key order. When boxes are left out, "boxes_dropped" says
// how many. It always returns a valid JSON object within the limit: when
// even {"boxes_dropped":N} does not fit, it returns nil.
func (m *Meta) encode(limit int) ([]byte, encodeResult) {
	var res encodeResult
	nBoxes := min(len(m.Boxes), protocol.MaxBoxes)
	res.boxesCut = len(m.Boxes) - nBoxes
	steps := m.Steps
	if len(steps) > maxSteps {
		res.stepsCut = len(steps) - maxSteps
		steps = steps[len(steps)-maxSteps:] // the newest (this worker's) matter most
	}
	events := m.Events[:min(len(m.Events), protocol.MaxEvents)]
	res.eventsCut = len(m.Events) - len(events)
	keys := make([]string, 0, len(m.pass))
	for k := range m.pass {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e := metaEncoder{m: m, events: events, steps: steps}
	nEvents, nSteps := len(events), len(steps)
	out := e.build(nEvents, nBoxes, nSteps, keys)
	if limit > 0 && len(out) > limit {
		// Leave out the input's keys first, last key first.
		for len(keys) > 0 && len(out) > limit {
			keys = keys[:len(keys)-1]
			res.keysCut++
			out = e.build(nEvents, nBoxes, nSteps, keys)
		}
		// Then the steps, oldest first.
		for nSteps > 0 && len(out) > limit {
			nSteps--
			res.stepsCut++
			out = e.build(nEvents, nBoxes, nSteps, keys)
		}
		// Then boxes from the end: find the most that fit.
		if len(out) > limit {
			lo, hi := 0, nBoxes // build(lo) may fit; build(hi) does not
			for lo < hi {
				mid := (lo + hi + 1) / 2
				if len(e.build(nEvents, mid, 0, nil)) <= limit {
					lo = mid
				} else {
					hi = mid - 1
				}
			}
			res.boxesCut += nBoxes - lo
			nBoxes = lo
			out = e.build(nEvents, lo, 0, nil)
		}
		// Then the events, from the end (the ended ones).
		for nEvents > 0 && len(out) > limit {
			nEvents--
			res.eventsCut++
			out = e.build(nEvents, nBoxes, 0, nil)
		}
		if len(out) > limit {
			res.overBudget = true
			return nil, res
		}
	}
	if len(out) == 2 { // {}
		return nil, res
	}
	return out, res
}

// metaEncoder writes a Meta as JSON, keeping as much of each part as it
// is told: encode tries fewer until the object fits its limit.
type metaEncoder struct {
	m      *Meta
	events []protocol.Event // at most protocol.MaxEvents
	steps  []StepTime       // at most maxSteps, the newest
	b      []byte
	first  bool
}

// build returns the object with the first nEvents events, nBoxes boxes
// (see pickBoxes), the newest nSteps steps and the input keys keys.
func (e *metaEncoder) build(nEvents, nBoxes, nSteps int, keys []string) []byte {
	m := e.m
	e.b = make([]byte, 0, 64+nEvents*128+nBoxes*64+nSteps*40)
	e.b = append(e.b, '{')
	e.first = true
	if m.Gate != nil {
		e.key("gate")
		e.b = append(e.b, `{"motion":`...)
		e.b = strconv.AppendBool(e.b, m.Gate.Motion)
		if m.Gate.Refresh {
			e.b = append(e.b, `,"refresh":true`...)
		}
		e.b = append(e.b, `,"regions":`...)
		e.b = strconv.AppendInt(e.b, int64(m.Gate.Regions), 10)
		e.b = append(e.b, '}')
	}
	if nEvents > 0 {
		e.key("events")
		e.b = appendList(e.b, e.events[:nEvents], protocol.AppendEvent)
	}
	if nBoxes > 0 || len(m.Boxes) > 0 {
		e.key("boxes")
		e.b = appendList(e.b, m.pickBoxes(nBoxes), protocol.AppendBox)
	}
	if cut := len(m.Boxes) - nBoxes; cut > 0 {
		e.key(keyCut)
		e.b = strconv.AppendInt(e.b, int64(cut), 10)
	}
	if nSteps > 0 {
		e.key("steps")
		e.b = appendList(e.b, e.steps[len(e.steps)-nSteps:], appendStep)
	}
	for _, k := range keys {
		e.sep()
		kj, _ := json.Marshal(k) // a string always marshals
		e.b = append(append(e.b, kj...), ':')
		e.b = append(e.b, m.pass[k]...)
	}
	return append(e.b, '}')
}

// sep writes the comma the next member needs, if it is not the first.
func (e *metaEncoder) sep() {
	if !e.first {
		e.b = append(e.b, ',')
	}
	e.first = false
}

// key starts a member whose key needs no escaping.
func (e *metaEncoder) key(k string) {
	e.sep()
	e.b = append(append(append(e.b, '"'), k...), `":`...)
}

// appendList appends items as a JSON array, each written by one.
func appendList[T any](b []byte, items []T, one func([]byte, T) []byte) []byte {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = one(b, it)
	}
	return append(b, ']')
}

// appendStep appends one "steps" entry.
func appendStep(b []byte, st StepTime) []byte {
	name, _ := json.Marshal(st.Name) // a string always marshals
	b = append(b, `{"name":`...)
	b = append(b, name...)
	b = append(b, `,"ms":`...)
	b = strconv.AppendFloat(b, math.Round(st.MS*100)/100, 'f', -1, 64)
	if st.Gated {
		b = append(b, `,"gated":true`...)
	}
	return append(b, '}')
}
