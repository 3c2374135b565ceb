package subscriber

import "framehub/protocol"

// Box tallies keep at most maxLabels distinct labels; further ones are
// counted under OtherLabels, so hostile metadata cannot grow a summary.
const (
	maxLabels   = 64
	OtherLabels = "(other)"
	// NoLabel counts boxes without a label.
	NoLabel = "(none)"
)

// BoxSummary is what a subscriber saw of the boxes in frames' metadata
// (protocol.ParseBoxes rules): how many frames carried at least one box,
// and how many boxes each label had over all frames. Its JSON form is
// "boxes" in `framehub watch --json`.
type BoxSummary struct {
	Frames uint64            `json:"frames"`
	Labels map[string]uint64 `json:"labels"`
	// BadMeta counts frames whose metadata had boxes left out.
	BadMeta uint64 `json:"bad_meta,omitempty"`
}

// boxTally accumulates a BoxSummary. Not safe for concurrent use.
type boxTally struct{ sum BoxSummary }

// observe counts boxes, already parsed from a frame's metadata.
func (b *boxTally) observe(boxes []protocol.Box, problem *protocol.BoxProblem) {
	if problem != nil {
		b.sum.BadMeta++
	}
	if len(boxes) == 0 {
		return
	}
	b.sum.Frames++
	if b.sum.Labels == nil {
		b.sum.Labels = map[string]uint64{}
	}
	for _, box := range boxes {
		l := box.Label
		if l == "" {
			l = NoLabel
		}
		if _, ok := b.sum.Labels[l]; !ok && len(b.sum.Labels) >= maxLabels {
			l = OtherLabels
		}
		b.sum.Labels[l]++
	}
}

// summary returns a copy.
func (b *boxTally) summary() BoxSummary {
	s := b.sum
	s.Labels = make(map[string]uint64, len(b.sum.Labels))
	for k, v := range b.sum.Labels {
		s.Labels[k] = v
	}
	return s
}
