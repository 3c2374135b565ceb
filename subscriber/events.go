package subscriber

import "framehub/protocol"

// maxTrackedEvents bounds the event ids a tally remembers: past it the
// oldest are forgotten (an event that goes on that long may be counted
// again), so hostile metadata cannot grow a summary.
const maxTrackedEvents = 4096

// EventSummary is what a subscriber saw of the events in frames' metadata
// (protocol.ParseEvents rules): how many distinct events, how many of them
// it saw end, and how many events each label had. Its JSON form is
// "events" in `framehub watch --json`.
type EventSummary struct {
	Events uint64            `json:"events"`
	Ended  uint64            `json:"ended"`
	Labels map[string]uint64 `json:"labels"`
	// Frames counts the frames that carried at least one event.
	Frames uint64 `json:"frames"`
	// BadMeta counts frames whose metadata had events left out.
	BadMeta uint64 `json:"bad_meta,omitempty"`
}

// eventTally accumulates an EventSummary. Not safe for concurrent use.
type eventTally struct {
	sum   EventSummary
	state map[string]bool // id -> seen ended
	order []string        // ids in the order first seen, for forgetting
}

// observe counts events, already parsed from a frame's metadata.
func (t *eventTally) observe(events []protocol.Event, problem *protocol.BoxProblem) {
	if problem != nil {
		t.sum.BadMeta++
	}
	if len(events) == 0 {
		return
	}
	t.sum.Frames++
	if t.state == nil {
		t.state = map[string]bool{}
		t.sum.Labels = map[string]uint64{}
	}
	for _, e := range events {
		ended, known := t.state[e.ID]
		if !known {
			if len(t.order) >= maxTrackedEvents {
				delete(t.state, t.order[0])
				t.order = t.order[1:]
			}
			t.order = append(t.order, e.ID)
			t.sum.Events++
			l := e.Label
			if _, ok := t.sum.Labels[l]; !ok && len(t.sum.Labels) >= maxLabels {
				l = OtherLabels
			}
			t.sum.Labels[l]++
		}
		if !e.Active() && !ended {
			t.sum.Ended++
			ended = true
		}
		t.state[e.ID] = ended
	}
}

// summary returns a copy.
func (t *eventTally) summary() EventSummary {
	s := t.sum
	s.Labels = make(map[string]uint64, len(t.sum.Labels))
	for k, v := range t.sum.Labels {
		s.Labels[k] = v
	}
	return s
}

// anyActive reports whether any of events is going on.
func anyActive(events []protocol.Event) bool {
	for _, e := range events {
		if e.Active() {
			return true
		}
	}
	return false
}
