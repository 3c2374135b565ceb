package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// eventCase is one of the cases in testdata/events.json, which the page's
// and the Python client's tests read too.
type eventCase struct {
	Name   string          `json:"name"`
	Meta   json.RawMessage `json:"meta"`
	Events []struct {
		ID    string  `json:"id"`
		Label string  `json:"label"`
		Zone  string  `json:"zone"`
		Start float64 `json:"start"`
		End   float64 `json:"end"`
		Score float64 `json:"score"`
		Best  bool    `json:"best"`
	} `json:"events"`
	Dropped int  `json:"dropped"`
	Problem bool `json:"problem"`
}

func eventCases(t testing.TB) []eventCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []eventCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Cases
}

// TestParseEvents: every shared case is read as the page and the Python
// client read it.
func TestParseEvents(t *testing.T) {
	for _, c := range eventCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			got, p := ParseEvents(c.Meta)
			if (p != nil) != c.Problem {
				t.Errorf("problem %+v; want one: %v", p, c.Problem)
			}
			dropped := 0
			if p != nil {
				dropped = p.Dropped
			}
			if dropped != c.Dropped {
				t.Errorf("dropped %d; want %d", dropped, c.Dropped)
			}
			if len(got) != len(c.Events) {
				t.Fatalf("got %d events %+v; want %d", len(got), got, len(c.Events))
			}
			for i, w := range c.Events {
				want := Event{ID: w.ID, Label: w.Label, Zone: w.Zone, Start: w.Start, End: w.End, Score: w.Score, Best: w.Best}
				if got[i] != want {
					t.Errorf("event %d: got %+v; want %+v", i, got[i], want)
				}
			}
		})
	}
}

// TestParseEventsFlood: metadata claiming 10,000 events costs a bounded
// read: the first MaxEvents are kept, the rest counted.
func TestParseEventsFlood(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	for i := range 10000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"e%d","label":"person","start":1700000000}`, i)
	}
	b.WriteString(`]}`)
	got, p := ParseEvents(b.Bytes())
	if len(got) != MaxEvents || p == nil || p.Dropped != 10000-MaxEvents {
		t.Fatalf("read %d events, problem %+v; want %d and %d left out", len(got), p, MaxEvents, 10000-MaxEvents)
	}
	if !strings.Contains(p.First, "10000 events") {
		t.Errorf("problem %q does not say how many there were", p.First)
	}
}

// TestAppendEvent: what an Event writes is what ParseEvents reads back,
// to the millisecond, with a label that is valid JSON whatever it holds.
func TestAppendEvent(t *testing.T) {
	for _, e := range []Event{
		{ID: "a-1", Label: "person \"x\"\n\xff<b>", Zone: "door", Start: 1712345678.1234, End: 1712345690.5, Score: 0.87654, Best: true},
		{ID: "b", Label: "car", Start: 1712345678},
	} {
		out := append([]byte(`{"events":[`), AppendEvent(nil, e)...)
		out = append(out, "]}"...)
		if !json.Valid(out) {
			t.Fatalf("not JSON: %s", out)
		}
		got, p := ParseEvents(out)
		want := e
		want.Label = strings.ToValidUTF8(e.Label, "\ufffd")
		want.Start = float64(int64(e.Start*1000+0.5)) / 1000
		want.Score = float64(int64(e.Score*1000+0.5)) / 1000
		if p != nil || len(got) != 1 || got[0] != want {
			t.Errorf("read back %+v (%+v) from %s; want %+v", got, p, out, want)
		}
	}
	if s := string(AppendEvent(nil, Event{ID: "x", Label: "car", Start: 5})); s != `{"id":"x","label":"car","start":5}` {
		t.Errorf("a bare event is %s", s)
	}
}

// TestEventTimes: times convert to the millisecond both ways.
func TestEventTimes(t *testing.T) {
	ns := int64(1712345678123456789)
	s := EventSeconds(ns)
	if s != 1712345678.123 {
		t.Fatalf("EventSeconds(%d) = %v", ns, s)
	}
	e := Event{Start: s, End: s + 2}
	if got := e.StartTime().UnixMilli(); got != 1712345678123 {
		t.Errorf("StartTime %d", got)
	}
	if got := e.EndTime().UnixMilli(); got != 1712345680123 {
		t.Errorf("EndTime %d", got)
	}
	if !(Event{Start: s}).EndTime().IsZero() || !(Event{Start: s}).Active() {
		t.Error("an event without an end is active, with a zero end time")
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte(`{"events":[{"id":"a","label":"person","zone":"door","start":1700000000.5,"end":1700000001,"score":0.5,"best":true}]}`))
	f.Add([]byte(`{"events":[null,{"id":"../x"},[],{"start":1e400},{"id":"a","label":"p","start":1,"end":0.5}]}`))
	f.Fuzz(func(t *testing.T, meta []byte) {
		events, _ := ParseEvents(meta)
		if len(events) > MaxEvents {
			t.Fatalf("%d events", len(events))
		}
		seen := map[string]bool{}
		for _, e := range events {
			if !ValidEventID(e.ID) || seen[e.ID] || e.Label == "" || (e.Zone != "" && !ValidEventID(e.Zone)) ||
				e.Start <= 0 || e.Start > MaxEventTime || (e.End != 0 && (e.End < e.Start || e.End > MaxEventTime)) ||
				e.Score < 0 || e.Score > 1 {
				t.Fatalf("kept %+v", e)
			}
			seen[e.ID] = true
			if !json.Valid(AppendEvent(nil, e)) {
				t.Fatalf("event %+v writes invalid JSON", e)
			}
		}
	})
}
