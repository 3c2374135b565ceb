package process

import (
	"strings"
	"testing"
	"time"

	"framehub/protocol"
)

func TestParseZone(t *testing.T) {
	for _, c := range []struct {
		spec string
		ok   bool
	}{
		{"door:0,0.5,1,0.5,1,1,0,1", true},
		{"tri:0,0,1,0,0.5,1", true},
		{"sp: 0 , 0 ,1,0, 0.5,1", true},
		{"door:0,0.5,1,0.5", false},                // two corners
		{"door:0,0.5,1,0.5,1", false},              // odd count
		{"door:0,0,1,1,2,2", false},                // outside 0–1
		{"door:0,0,0.5,0.5,1,1", false},            // a line: no area
		{"front door:0,0,1,0,1,1", false},          // name
		{":0,0,1,0,1,1", false},                    // no name
		{"door", false},                            // no corners
		{"door:0,0,1,0,NaN,1", false},              // not a number
		{"door:0,0,1,0,1,x", false},                // not a number
		{"d:" + strings.Repeat("0,0,", 65), false}, // too many corners
	} {
		_, err := ParseZone(c.spec)
		if (err == nil) != c.ok {
			t.Errorf("ParseZone(%q): %v; want ok %v", c.spec, err, c.ok)
		}
	}
}

func TestZoneContains(t *testing.T) {
	lower, err := ParseZone("lower:0,0.5,1,0.5,1,1,0,1")
	if err != nil {
		t.Fatal(err)
	}
	tri, err := ParseZone("tri:0,0,1,0,0,1") // the top-left half
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		z    Zone
		p    Point
		want bool
	}{
		{lower, Point{0.5, 0.75}, true},
		{lower, Point{0.5, 0.25}, false},
		{lower, Point{0.5, 1}, true}, // standing on the bottom edge of the picture
		{lower, Point{1, 1}, true},
		{lower, Point{0, 0.5}, true},
		{lower, Point{0.5, 0.499}, false},
		{tri, Point{0.2, 0.2}, true},
		{tri, Point{0.8, 0.8}, false},
		{tri, Point{0.6, 0.3}, true},
		{tri, Point{0.3, 0.8}, false},
	} {
		if got := c.z.Contains(c.p); got != c.want {
			t.Errorf("%s contains %v: %v; want %v", c.z.Name, c.p, got, c.want)
		}
	}
}

func TestEventRulesChecked(t *testing.T) {
	z := func(name string) Zone { zz, _ := ParseZone(name + ":0,0,1,0,1,1"); return zz }
	for _, c := range []struct {
		name  string
		rules EventRules
		ok    bool
	}{
		{"none", EventRules{}, true},
		{"zone without event", EventRules{Zones: []Zone{z("a")}}, false},
		{"defaults", EventRules{Labels: []string{"person"}}, true},
		{"label twice", EventRules{Labels: []string{"person", "person"}}, false},
		{"empty label", EventRules{Labels: []string{""}}, false},
		{"long label", EventRules{Labels: []string{strings.Repeat("x", 65)}}, false},
		{"zone twice", EventRules{Labels: []string{"p"}, Zones: []Zone{z("a"), z("a")}}, false},
		{"too many kinds", EventRules{Labels: []string{"a", "b", "c"}, Zones: []Zone{z("a"), z("b"), z("c"), z("d"), z("e"), z("f")}}, false},
		{"need over window", EventRules{Labels: []string{"p"}, Need: 4, Window: 3}, false},
		{"window too long", EventRules{Labels: []string{"p"}, Need: 1, Window: MaxEventWindow + 1}, false},
		{"score over 1", EventRules{Labels: []string{"p"}, MinScore: 1.5}, false},
		{"area over 1", EventRules{Labels: []string{"p"}, MinArea: 2}, false},
		{"negative quiet", EventRules{Labels: []string{"p"}, Quiet: -time.Second}, false},
	} {
		r, err := c.rules.withDefaults()
		if (err == nil) != c.ok {
			t.Errorf("%s: %v; want ok %v", c.name, err, c.ok)
		}
		if c.name == "defaults" && (r.Need != DefaultEventNeed || r.Window != DefaultEventWindow || r.Quiet != DefaultEventQuiet) {
			t.Errorf("defaults: %+v", r)
		}
	}
	for _, c := range []struct {
		s       string
		n, m    int
		wantErr bool
	}{{"3/5", 3, 5, false}, {"1/1", 1, 1, false}, {"5/3", 0, 0, true}, {"0/3", 0, 0, true}, {"3", 0, 0, true}, {"a/b", 0, 0, true}, {"1/65", 0, 0, true}} {
		n, m, err := ParseEventFrames(c.s)
		if (err != nil) != c.wantErr || n != c.n || m != c.m {
			t.Errorf("ParseEventFrames(%q) = %d, %d, %v", c.s, n, m, err)
		}
	}
}

// engineRun feeds an engine frames 100 ms apart (capture and arrival),
// each with the given boxes, and publishes every one; it returns the
// events of each published frame.
type engineRun struct {
	e      *eventEngine
	ticket uint64
	t0     int64
	ids    int
}

const frameGap = 100 * time.Millisecond

func newEngineRun(t *testing.T, rules EventRules) *engineRun {
	t.Helper()
	r, err := rules.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	run := &engineRun{e: newEventEngine(r), t0: time.Date(2024, 4, 5, 10, 0, 0, 0, time.UTC).UnixNano()}
	run.e.newID = func() string { run.ids++; return "ev" + strings.Repeat("x", run.ids) }
	return run
}

// at returns the capture time of frame n (from 1), in event seconds.
func (r *engineRun) at(n int) float64 { return protocol.EventSeconds(r.t0 + int64(n)*int64(frameGap)) }

func (r *engineRun) frame(boxes ...protocol.Box) []protocol.Event {
	r.ticket++
	ns := r.t0 + int64(r.ticket)*int64(frameGap)
	scores := r.e.observe(r.ticket, ns, ns, 1000, 1000, boxes)
	return r.e.annotate(scores, time.Unix(0, ns))
}

// person is a 100×200 box labelled person standing at x, y (its bottom
// centre) in a 1000×1000 picture.
func person(x, y float64, score float64) protocol.Box {
	return protocol.Box{X: x - 50, Y: y - 200, W: 100, H: 200, Label: "person", Score: score}
}

func TestEventLifecycle(t *testing.T) {
	lower, _ := ParseZone("lower:0,0.5,1,0.5,1,1,0,1")
	r := newEngineRun(t, EventRules{Labels: []string{"person"}, Zones: []Zone{lower}, Need: 3, Window: 5, Quiet: time.Second})
	in, out := person(500, 800, 0.6), person(500, 300, 0.9) // in the lower half; in the upper half
	// Frames 1–2: seen twice, not yet 3 of 5; the person outside does not count.
	for n, boxes := range [][]protocol.Box{{out}, {in}, {in, out}} {
		if evs := r.frame(boxes...); len(evs) != 0 {
			t.Fatalf("frame %d: events %+v before 3 of 5 frames", n+1, evs)
		}
	}
	evs := r.frame(in) // frame 4: the third sighting (frames 2, 3, 4)
	if len(evs) != 1 {
		t.Fatalf("frame 4: %d events; want 1", len(evs))
	}
	e := evs[0]
	if e.Label != "person" || e.Zone != "lower" || e.Start != r.at(2) || !e.Active() || !e.Best || e.Score != 0.6 {
		t.Fatalf("frame 4: %+v; want person in lower from frame 2, active, best, score 0.6", e)
	}
	id := e.ID
	// A better frame is flagged best; a worse one and a frame without the
	// person are not; a gap shorter than the quiet time keeps the event.
	if evs := r.frame(person(500, 900, 0.8)); len(evs) != 1 || !evs[0].Best || evs[0].Score != 0.8 || evs[0].ID != id {
		t.Fatalf("frame 5: %+v", evs)
	}
	if evs := r.frame(in); len(evs) != 1 || evs[0].Best || evs[0].Score != 0.8 {
		t.Fatalf("frame 6: %+v", evs)
	}
	carried := in
	carried.Carried = true
	r.frame()        // 7
	r.frame()        // 8
	r.frame(carried) // 9: carried forward by the gate: still there
	for n := 10; n < 19; n++ {
		if evs := r.frame(); len(evs) != 1 || !evs[0].Active() {
			t.Fatalf("frame %d, %v after the last sighting: %+v; want the event still going", n, time.Duration(n-9)*frameGap, evs)
		}
	}
	evs = r.frame() // 19: a second after frame 9
	if len(evs) != 1 || evs[0].Active() || evs[0].End != r.at(9) || evs[0].ID != id || evs[0].Score != 0.8 || evs[0].Best {
		t.Fatalf("frame 19: %+v; want the event ended at frame 9's time", evs)
	}
	// Announced for 3 frames and a second, then gone.
	n := 1 // frame 19
	for ; n < 30 && len(r.frame()) == 1; n++ {
	}
	if n != 11 {
		t.Errorf("the end was announced in %d frames; want 11 (a second's worth at 10 fps, both ends included)", n)
	}
	// A new sighting needs its own 3 of 5 frames, and gets a new id.
	r.frame(in)
	r.frame(in)
	evs = r.frame(in)
	if len(evs) != 1 || evs[0].ID == id || !evs[0].Active() {
		t.Fatalf("a new event: %+v", evs)
	}
	if s, e := r.e.counts(); s != 2 || e != 1 {
		t.Errorf("counts %d started, %d ended; want 2, 1", s, e)
	}
}

func TestEventFilters(t *testing.T) {
	r := newEngineRun(t, EventRules{Labels: []string{"person", "face"}, MinScore: 0.5, MinArea: 0.01, Need: 1, Window: 1})
	small := protocol.Box{X: 0, Y: 0, W: 50, H: 50, Label: "person", Score: 0.9} // 0.25% of the picture
	weak := person(500, 500, 0.4)
	other := protocol.Box{X: 0, Y: 0, W: 500, H: 500, Label: "car", Score: 0.9}
	noScore := person(500, 500, 0)
	if evs := r.frame(small, weak, other, noScore); len(evs) != 0 {
		t.Fatalf("events from boxes too small, too weak, of another label or without a score: %+v", evs)
	}
	evs := r.frame(person(500, 500, 0.7), protocol.Box{X: 0, Y: 0, W: 200, H: 200, Label: "face", Score: 0.55})
	if len(evs) != 2 || evs[0].Label != "person" || evs[1].Label != "face" || evs[0].Zone != "" {
		t.Fatalf("events %+v; want person and face in the whole picture", evs)
	}
}

// TestEventsIgnoreLateFrames: a frame observed after a newer one (several
// workers) changes nothing.
func TestEventsIgnoreLateFrames(t *testing.T) {
	r := newEngineRun(t, EventRules{Labels: []string{"person"}, Need: 1, Window: 1})
	ns := r.t0
	if s := r.e.observe(5, ns, ns, 1000, 1000, nil); s == nil {
		t.Fatal("ticket 5 not observed")
	}
	if s := r.e.observe(4, ns, ns, 1000, 1000, []protocol.Box{person(500, 500, 0.9)}); s != nil {
		t.Fatal("ticket 4 observed after ticket 5")
	}
	if evs := r.e.annotate(nil, time.Now()); len(evs) != 0 {
		t.Fatalf("a late frame started %+v", evs)
	}
}

// TestEventsBadCaptureTime: a frame without a usable capture time is
// placed at its arrival.
func TestEventsBadCaptureTime(t *testing.T) {
	r := newEngineRun(t, EventRules{Labels: []string{"person"}, Need: 1, Window: 1})
	recv := r.t0
	scores := r.e.observe(1, -5, recv, 1000, 1000, []protocol.Box{person(500, 500, 0.9)})
	evs := r.e.annotate(scores, time.Unix(0, recv))
	if len(evs) != 1 || evs[0].Start != protocol.EventSeconds(recv) {
		t.Fatalf("events %+v; want one starting at the arrival", evs)
	}
}

// TestMetaEncodesEventsFirst: events survive a tight metadata limit
// longer than boxes do.
func TestMetaEncodesEventsFirst(t *testing.T) {
	m := Meta{Events: []protocol.Event{{ID: "a", Label: "person", Start: 1700000000}}}
	for range 50 {
		m.Boxes = append(m.Boxes, person(500, 500, 0.5))
	}
	out, res := m.encode(300)
	evs, p := protocol.ParseEvents(out)
	if p != nil || len(evs) != 1 || res.eventsCut != 0 || res.boxesCut == 0 {
		t.Fatalf("encoded %s (%+v): events %+v, %+v", out, res, evs, p)
	}
	out, res = m.encode(40)
	if res.eventsCut != 1 || len(out) > 40 {
		t.Fatalf("a limit too small for the event: %s, %+v", out, res)
	}
}

// TestInputEventsPassed: an input frame's events are read by the shared
// rules and passed on after the worker's own.
func TestInputEventsPassed(t *testing.T) {
	m, p := parseInput([]byte(`{"events":[{"id":"up","label":"car","start":1700000000},{"id":"../x","label":"car","start":1}]}`))
	if p == nil || p.Dropped != 1 || len(m.Events) != 1 || m.Events[0].ID != "up" {
		t.Fatalf("input events %+v, problem %+v", m.Events, p)
	}
	got := mergeEvents(m.Events, []protocol.Event{{ID: "own", Label: "person", Start: 1700000001}, {ID: "up", Label: "x", Start: 1}})
	if len(got) != 2 || got[0].ID != "own" || got[1].ID != "up" || got[1].Label != "x" {
		t.Fatalf("merged %+v; want own first, the input's clashing id left out", got)
	}
}
