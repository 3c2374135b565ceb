//go:build cgo

package process

import (
	"context"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"framehub/protocol"
)

// TestEventsOnPedestrianVideo plays 15 s of OpenCV's pedestrian video in
// real time, then 4 s of an empty grey picture, through the people
// detector with person events in two zones: the lower half of the picture
// (where somebody always walks until the video ends) and its lowest third
// (which people enter and leave). Every event starts within 1 s of a frame
// where the detector's count of people in its zone became non-zero and
// ends within 1 s of one after which it was zero; every stretch in which
// the count stayed non-zero lies in an event, and every stretch in which
// it stayed zero for longer than the quiet time and a second is outside
// them; and each start and end is announced in the published frames
// within 1 s, or the quiet time and a second, of the frame it names.
func TestEventsOnPedestrianVideo(t *testing.T) {
	addr := testHub(t, hubConfig())
	pics := videoFrames(t, "vtest.avi", 0, 150)
	grey := image.NewRGBA(image.Rect(0, 0, pics[0].w, pics[0].h))
	for i := range grey.Pix {
		grey.Pix[i] = 128
	}
	pics = append(pics, repeat(encode(t, grey), 40)...)
	lower, err := ParseZone("lower:0,0.5,1,0.5,1,1,0,1")
	if err != nil {
		t.Fatal(err)
	}
	third, err := ParseZone("third:0,0.667,1,0.667,1,1,0,1")
	if err != nil {
		t.Fatal(err)
	}
	const quiet = 1500 * time.Millisecond
	rules := EventRules{Labels: []string{"person"}, Zones: []Zone{lower, third}, Quiet: quiet}
	out := collect(t, addr, "street-events")
	r := start(t, Config{Hub: addr, In: "street", Out: "street-events", Events: rules}, "people")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	push(t, ctx, addr, "street", 1, 100*time.Millisecond, pics)
	fs := out.waitFor(t, 30*time.Second, "the events to end", func(fs []received) bool {
		st := r.p.Stats()
		return st.EventsStarted > 0 && st.EventsStarted == st.EventsEnded
	})
	st := r.p.Stats()
	t.Logf("%d frames sent, %d processed; %d events", len(pics), st.Processed, st.EventsStarted)
	if st.Processed < 20 {
		t.Fatalf("only %d frames processed", st.Processed)
	}
	for _, z := range []Zone{lower, third} {
		checkZoneEvents(t, fs, z, quiet)
	}
}

// zoneEvent is what the published frames said of one event.
type zoneEvent struct {
	protocol.Event
	firstSeen float64 // capture time of the first frame that carried it
	endSeen   float64 // of the first that carried its end
}

// checkZoneEvents compares the person events of zone z in frames fs with
// the people detector's count in z on the same frames.
func checkZoneEvents(t *testing.T, fs []received, z Zone, quiet time.Duration) {
	t.Helper()
	type point struct {
		at    float64 // capture time, event seconds
		count int
	}
	var counts []point
	events := map[string]*zoneEvent{}
	var order []string
	for _, f := range fs {
		at := protocol.EventSeconds(f.capture)
		n := 0
		for _, b := range f.boxes {
			if b.Label == "person" && z.Contains(Point{(b.X + b.W/2) / float64(f.w), (b.Y + b.H) / float64(f.h)}) {
				n++
			}
		}
		counts = append(counts, point{at, n})
		evs, p := protocol.ParseEvents(f.meta)
		if p != nil {
			t.Fatalf("frame %d: events left out: %+v", f.seq, p)
		}
		for _, e := range evs {
			if e.Zone != z.Name {
				continue
			}
			ze := events[e.ID]
			if ze == nil {
				ze = &zoneEvent{Event: e, firstSeen: at}
				events[e.ID] = ze
				order = append(order, e.ID)
			}
			if !e.Active() && ze.endSeen == 0 {
				ze.Event, ze.endSeen = e, at
			}
			if e.Start != ze.Start || e.Label != "person" {
				t.Fatalf("event %s changed: %+v, then %+v", e.ID, ze.Event, e)
			}
		}
	}
	// Where the count becomes non-zero, and where it becomes zero (at the
	// last non-zero frame).
	var rises, falls []float64
	gap := 0.0 // the longest time between two processed frames: how late a start or end can be seen
	for i, c := range counts {
		if i > 0 {
			gap = max(gap, c.at-counts[i-1].at)
		}
		if c.count > 0 && (i == 0 || counts[i-1].count == 0) {
			rises = append(rises, c.at)
		}
		if c.count > 0 && i+1 < len(counts) && counts[i+1].count == 0 {
			falls = append(falls, c.at)
		}
	}
	near := func(list []float64, at float64) float64 {
		d := math.Inf(1)
		for _, x := range list {
			d = min(d, math.Abs(x-at))
		}
		return d
	}
	if len(order) == 0 {
		t.Fatalf("zone %s: no events; counts %v", z.Name, counts)
	}
	for _, id := range order {
		e := events[id]
		if e.endSeen == 0 {
			t.Errorf("zone %s: event %s never ended", z.Name, id)
			continue
		}
		startLag, endLag := e.firstSeen-e.Start, e.endSeen-e.End
		dStart, dEnd := near(rises, e.Start), near(falls, e.End)
		t.Logf("zone %s: event %s from %.1f s to %.1f s (best score %.2f): count rose %.2f s and fell %.2f s from them; announced %.2f s after its start and %.2f s after its end",
			z.Name, id, e.Start-counts[0].at, e.End-counts[0].at, e.Score, dStart, dEnd, startLag, endLag)
		if dStart > 1 || dEnd > 1 {
			t.Errorf("zone %s: event %s starts %.2f s and ends %.2f s from where the count rose and fell; want within 1 s", z.Name, id, dStart, dEnd)
		}
		// On a machine that keeps up, 1 s and the quiet time and 1 s; a
		// busy one processes fewer frames, and sees starts and ends later
		// by as many of its gaps as the rules wait frames.
		maxStart := 1 + float64(DefaultEventWindow-1)*max(0, gap-0.2)
		maxEnd := quiet.Seconds() + 1 + max(0, gap-0.2)
		if startLag > maxStart || endLag > maxEnd {
			t.Errorf("zone %s: event %s announced %.2f s after its start and %.2f s after its end; want within %.1f s and %.1f s (processed frames up to %.2f s apart)",
				z.Name, id, startLag, endLag, maxStart, maxEnd, gap)
		}
		if e.Score <= 0 {
			t.Errorf("zone %s: event %s has no best score", z.Name, id)
		}
	}
	inEvent := func(at float64) bool {
		for _, e := range events {
			if at >= e.Start && (e.End == 0 || at <= e.End) {
				return true
			}
		}
		return false
	}
	// A run of frames with people (three or more: the debounce) lies in an
	// event; a longer stretch without is outside them.
	for i := 0; i < len(counts); {
		j := i
		for j < len(counts) && (counts[j].count > 0) == (counts[i].count > 0) {
			j++
		}
		span := counts[j-1].at - counts[i].at
		switch {
		case counts[i].count > 0 && j-i >= DefaultEventNeed:
			for _, c := range counts[i:j] {
				if !inEvent(c.at) {
					t.Errorf("zone %s: %d frames with people from %.1f s, but the one at %.1f s is in no event", z.Name, j-i, counts[i].at-counts[0].at, c.at-counts[0].at)
					break
				}
			}
		case counts[i].count == 0 && span > quiet.Seconds()+1:
			for _, c := range counts[i:j] {
				if inEvent(c.at) {
					t.Errorf("zone %s: nobody from %.1f s to %.1f s, yet an event goes on at %.1f s", z.Name, counts[i].at-counts[0].at, counts[j-1].at-counts[0].at, c.at-counts[0].at)
					break
				}
			}
		}
		i = j
	}
}

// TestEventsOnGatedStaticScene: on a still scene with sensor noise, a
// gated worker that makes events costs no more CPU than one that does not
// (the two alternate, twice each, in one run), and the detections the gate
// carries forward keep the face event going: one event, started in the
// first frames, never ended.
func TestEventsOnGatedStaticScene(t *testing.T) {
	addr := testHub(t, hubConfig())
	rng := rand.New(rand.NewPCG(3, 4))
	bg := decode(t, still(t, "messi5.jpg").jpeg)
	pics := make([]picture, 40)
	for i := range pics {
		pics[i] = encode(t, noisy(bg, 6, rng))
	}
	rules := EventRules{Labels: []string{"face", "person"}, Zones: []Zone{{Name: "all", Points: []Point{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}}}
	var plain, withEvents time.Duration
	var last gateRun
	for i := range 4 {
		cfg := Config{Gate: true}
		if i%2 == 1 {
			cfg.Events = rules
		}
		g := runGateWith(t, addr, fmt.Sprintf("still-%d", i), pics, cfg, "faces,people")
		if i%2 == 1 {
			withEvents += g.steady
			last = g
		} else {
			plain += g.steady
		}
	}
	ratio := float64(withEvents) / float64(plain)
	t.Logf("gated static scene, %d frames, after the warm-up: %v a frame without events, %v with (%.2f); events %+v",
		len(pics), plain/2, withEvents/2, ratio, last.events)
	if ratio > 1.25 {
		t.Errorf("with events the gated worker used %.0f%% of the CPU it uses without; want no more (within noise)", 100*ratio)
	}
	faces := 0
	for _, e := range last.events {
		if e.Label != "face" {
			continue
		}
		faces++
		if !e.Active() {
			t.Errorf("face event %+v ended while the gate carried the face", e)
		}
	}
	if faces != 1 {
		t.Errorf("%d face events; want one, going on: %+v", faces, last.events)
	}
}
