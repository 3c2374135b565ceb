package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"time"
)

// Events in a frame's metadata (see the package doc, "Metadata"). These
// limits are every reader's, so that the page, the hub, the recorder and
// the Python client see the same events in a frame.
const (
	// MaxEvents is the most events read from one frame; the rest are left
	// out. A processing worker has at most one event per label and zone
	// going at once, and announces an ended one for a few frames more.
	MaxEvents = 32
	// MaxEventTime bounds an event's start and end, in Unix seconds
	// (about the year 2255): a time past it does not fit in int64
	// nanoseconds with room to spare.
	MaxEventTime = 9e9
)

// eventID is the form of an event id and of a zone name: the channel
// name's alphabet, so that either is safe in a file name, a URL and a
// header.
var eventID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidEventID reports whether s may be an event id or a zone name.
func ValidEventID(s string) bool { return eventID.MatchString(s) }

// Event is one event as a frame's metadata states it: a label seen in a
// zone from Start to End, with the best score of the frames flagged Best.
// {"id":"5f3a…","label":"person","zone":"door","start":1712345678.125,
// "end":null,"score":0.91,"best":true}
type Event struct {
	ID    string
	Label string // what was seen; at most MaxLabelLen characters
	Zone  string // the zone it was seen in; "" for the whole picture
	// Start and End are Unix seconds on the capture clock of the frames:
	// Start when the label was first seen, End when it was last seen, 0
	// while the event lasts.
	Start, End float64
	Score      float64 // the best score so far, 0 to 1; 0 means none
	// Best marks the frame this event is seen best in so far: its
	// snapshot.
	Best bool
}

// Active reports whether the event has not ended.
func (e Event) Active() bool { return e.End == 0 }

// StartTime returns Start as a time.
func (e Event) StartTime() time.Time { return secondsTime(e.Start) }

// EndTime returns End as a time, the zero time while the event lasts.
func (e Event) EndTime() time.Time {
	if e.End == 0 {
		return time.Time{}
	}
	return secondsTime(e.End)
}

// EventSeconds returns t (Unix nanoseconds) as an event time: Unix seconds
// to the millisecond.
func EventSeconds(ns int64) float64 { return math.Round(float64(ns)/1e6) / 1e3 }

func secondsTime(s float64) time.Time {
	return time.Unix(0, int64(math.Round(s*1e3))*int64(time.Millisecond))
}

// ParseEvents reads the events of a frame's metadata by the rules every
// reader shares (static/events.js frameEvents, clients/python
// frame_events): "events" must be an array; an entry must be an object
// with an "id" of 1 to 64 letters, digits, '_' or '-' not seen earlier in
// the list, a "label" that is a non-empty string (cut to MaxLabelLen
// characters), a "zone" that is absent, null, "" or a name like an id, a
// "start" that is a number above 0 and at most MaxEventTime, and an "end"
// that is absent, null, or such a number not before "start", or it is
// left out; a "score" that is not a number from 0 to 1 is left out (the
// event is kept); "best" is true or false (anything else is false);
// entries past MaxEvents are left out. Keys are case-sensitive. Metadata
// that is not a JSON object, or has no "events", has none. The problem is
// nil when nothing was left out. It never panics, and allocates in
// proportion to len(meta).
func ParseEvents(meta []byte) ([]Event, *BoxProblem) {
	if len(meta) == 0 {
		return nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(meta, &top); err != nil {
		return nil, &BoxProblem{First: "metadata is not a JSON object"}
	}
	raw, ok := top["events"]
	if !ok {
		return nil, nil
	}
	return ParseEventList(raw)
}

// HasEvents reports, without parsing it, whether metadata may hold
// events: a cheap test before ParseEvents on every frame.
func HasEvents(meta []byte) bool { return bytes.Contains(meta, []byte(`"events"`)) }

// ParseEventList is ParseEvents for the value of "events" alone.
func ParseEventList(raw json.RawMessage) ([]Event, *BoxProblem) {
	var p BoxProblem
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || isNull(raw) {
		p.add(0, `"events" is not a list`)
		return nil, &p
	}
	if len(list) > MaxEvents {
		p.add(len(list)-MaxEvents, "%d events, reading the first %d", len(list), MaxEvents)
		list = list[:MaxEvents]
	}
	events := make([]Event, 0, len(list))
	for i, r := range list {
		e, why := parseEvent(r)
		if why == "" {
			for _, o := range events {
				if o.ID == e.ID {
					why = "its id is an earlier event's"
					break
				}
			}
		}
		if why != "" {
			p.add(1, "event %d: %s", i, why)
			continue
		}
		if e.Score < 0 {
			p.add(0, "event %d: score is not a number from 0 to 1", i)
			e.Score = 0
		}
		events = append(events, e)
	}
	if p.First == "" {
		return events, nil
	}
	return events, &p
}

// parseEvent reads one entry, or says why it is left out. A score that is
// present but not from 0 to 1 comes back as -1.
func parseEvent(r json.RawMessage) (Event, string) {
	var e Event
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r, &obj); err != nil || obj == nil {
		return e, "not an object"
	}
	if json.Unmarshal(obj["id"], &e.ID) != nil || !ValidEventID(e.ID) {
		return e, "id is not 1 to 64 letters, digits, '_' or '-'"
	}
	if json.Unmarshal(obj["label"], &e.Label) != nil || e.Label == "" {
		return e, "label is not a non-empty string"
	}
	e.Label = CutLabel(e.Label)
	if z, ok := obj["zone"]; ok && !isNull(z) {
		if json.Unmarshal(z, &e.Zone) != nil || (e.Zone != "" && !ValidEventID(e.Zone)) {
			return e, "zone is not a name"
		}
	}
	if !number(obj, "start", &e.Start) || e.Start <= 0 || e.Start > MaxEventTime {
		return e, "start is not a time"
	}
	if end, ok := obj["end"]; ok && !isNull(end) {
		if !number(obj, "end", &e.End) || e.End < e.Start || e.End > MaxEventTime {
			return e, "end is not a time from start on"
		}
	}
	if sc, ok := obj["score"]; ok {
		if json.Unmarshal(sc, &e.Score) != nil || isNull(sc) || e.Score < 0 || e.Score > 1 {
			e.Score = -1
		}
	}
	if b, ok := obj["best"]; ok {
		_ = json.Unmarshal(b, &e.Best) // anything but true is false
	}
	return e, ""
}

// AppendEvent appends e's JSON form to dst: times to the millisecond,
// "end" only once it has ended, the score with three decimals when there
// is one, "best":true when set.
func AppendEvent(dst []byte, e Event) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendQuote(dst, e.ID) // an id is plain ASCII
	dst = append(dst, `,"label":`...)
	l, _ := json.Marshal(CutLabel(e.Label)) // a string always marshals
	dst = append(dst, l...)
	if e.Zone != "" {
		dst = append(dst, `,"zone":`...)
		dst = strconv.AppendQuote(dst, e.Zone)
	}
	dst = append(dst, `,"start":`...)
	dst = strconv.AppendFloat(dst, math.Round(e.Start*1e3)/1e3, 'f', -1, 64)
	if e.End != 0 {
		dst = append(dst, `,"end":`...)
		dst = strconv.AppendFloat(dst, math.Round(e.End*1e3)/1e3, 'f', -1, 64)
	}
	if e.Score > 0 && e.Score <= 1 {
		dst = append(dst, `,"score":`...)
		dst = strconv.AppendFloat(dst, math.Round(e.Score*1000)/1000, 'f', -1, 64)
	}
	if e.Best {
		dst = append(dst, `,"best":true`...)
	}
	return append(dst, '}')
}
