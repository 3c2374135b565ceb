package subscriber

import (
	"fmt"
	"testing"
	"time"

	"framehub/protocol"
)

// TestStatsEvents: the summary counts distinct events (a frame repeats the
// ones going on), those seen to end, and events per label, reading
// metadata by the shared rules, in bounded memory whatever publishers send.
func TestStatsEvents(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewStats(now)
	seq := uint64(0)
	observe := func(meta string) {
		seq++
		s.Observe(&Frame{Frame: protocol.Frame{Header: protocol.Header{Seq: seq}, Meta: []byte(meta)}, Received: now})
	}
	const a = `{"id":"a","label":"person","start":1700000000}`
	const aEnd = `{"id":"a","label":"person","start":1700000000,"end":1700000005}`
	const b = `{"id":"b","label":"car","zone":"drive","start":1700000001}`
	for _, meta := range []string{
		`{"events":[` + a + `]}`,
		`{"events":[` + a + `,` + b + `]}`,
		`{"events":[` + aEnd + `,` + b + `]}`,
		`{"events":[` + aEnd + `]}`,
		`{"boxes":[]}`,
		`{"events":"no"}`,
		`{"events":[{"id":"../c","label":"x","start":1}]}`,
	} {
		observe(meta)
	}
	got := s.Summary(now).Events
	if got.Events != 2 || got.Ended != 1 || got.Frames != 4 || got.Labels["person"] != 1 || got.Labels["car"] != 1 || got.BadMeta != 2 {
		t.Fatalf("events summary %+v; want 2 events, 1 ended, 4 frames, person 1, car 1, 2 with bad metadata", got)
	}
	// A flood of events, each with a new id and label: memory stays bounded.
	for i := range maxTrackedEvents + 100 {
		observe(fmt.Sprintf(`{"events":[{"id":"f%d","label":"l%d","start":1700000000}]}`, i, i))
	}
	got = s.Summary(now).Events
	if got.Events != 2+maxTrackedEvents+100 || len(s.events.state) != maxTrackedEvents || len(got.Labels) != maxLabels+1 {
		t.Fatalf("after a flood: %d events, %d ids remembered, %d labels", got.Events, len(s.events.state), len(got.Labels))
	}
}
