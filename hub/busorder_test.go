package hub

import (
	"math"
	"testing"
)

// TestSeqOrder: frames not newer than the last relayed are dropped, up to
// seqRestartAfter in a row; then the stream starts anew.
func TestSeqOrder(t *testing.T) {
	type step struct {
		seq           uint64
		ok, restarted bool
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"in_order_with_gaps", []step{{5, true, false}, {6, true, false}, {9, true, false}}},
		{"first_frame_any_number", []step{{0, true, false}, {1, true, false}}},
		{"a_late_frame_then_newer", []step{{5, true, false}, {4, false, false}, {6, true, false}, {5, false, false}, {7, true, false}}},
		{"a_duplicate", []step{{5, true, false}, {5, false, false}, {6, true, false}}},
		{"forged_max_then_the_real_stream", []step{{10, true, false}, {math.MaxUint64, true, false},
			{11, false, false}, {12, false, false}, {13, true, true}, {14, true, false}}},
		{"counting_anew", []step{{1000, true, false}, {1, false, false}, {2, false, false}, {3, true, true}, {4, true, false}}},
		{"repeated_number", []step{{7, true, false}, {7, false, false}, {7, false, false}, {7, true, true},
			{7, false, false}, {7, false, false}, {7, true, true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var o seqOrder
			for i, s := range c.steps {
				ok, restarted := o.admit(s.seq)
				if ok != s.ok || restarted != s.restarted {
					t.Fatalf("step %d, seq %d: ok %v, restarted %v; want %v, %v", i, s.seq, ok, restarted, s.ok, s.restarted)
				}
			}
		})
	}
}
