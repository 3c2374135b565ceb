package subscriber

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"framehub/protocol"
)

func TestPercentile(t *testing.T) {
	vals := make([]float64, 100)
	for i := range vals {
		vals[i] = float64(i + 1) // 1..100
	}
	for _, c := range []struct {
		in   []float64
		p    float64
		want float64
	}{
		{vals, 50, 50}, {vals, 99, 99}, {vals, 100, 100}, {vals, 0, 1}, {vals, 1, 1},
		{[]float64{5}, 99, 5}, {nil, 50, 0}, {[]float64{1, 2, 3, 4}, 50, 2}, {[]float64{1, 2, 3, 4}, 75, 3},
	} {
		if got := Percentile(c.in, c.p); got != c.want {
			t.Errorf("Percentile(%d values, %v) = %v; want %v", len(c.in), c.p, got, c.want)
		}
	}
}

func TestStatsSummary(t *testing.T) {
	start := time.Unix(1000, 0)
	s := NewStats(start)
	// Ten frames, one every 100 ms, each 20 ms old on arrival except the last
	// (110 ms); sequence 1..12 with 4 and 7 missing.
	seqs := []uint64{1, 2, 3, 5, 6, 8, 9, 10, 11, 12}
	for i, seq := range seqs {
		recv := start.Add(time.Duration(i+1) * 100 * time.Millisecond)
		age := 20 * time.Millisecond
		if i == len(seqs)-1 {
			age = 110 * time.Millisecond
		}
		s.Observe(&Frame{Frame: protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 64, Height: 48,
			Seq: seq, CaptureTime: recv.Add(-age).UnixNano()}}, Received: recv, Size: 1000})
	}
	got := s.Summary(start.Add(time.Second))
	want := Summary{Frames: 10, FPS: 10, Bytes: 10000, KBPS: 80, Width: 64, Height: 48, Codec: "jpeg",
		AgeP50MS: 20, AgeP99MS: 110, AgeMaxMS: 110, Skipped: 2, FirstFrameMS: 100, Seconds: 1,
		Boxes: BoxSummary{Labels: map[string]uint64{}}, Events: EventSummary{Labels: map[string]uint64{}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Summary =\n %+v\nwant\n %+v", got, want)
	}
	// A publisher that restarts its count is not a skip.
	s.Observe(&Frame{Frame: protocol.Frame{Header: protocol.Header{Seq: 1}}, Received: start})
	if s.Summary(start.Add(time.Second)).Skipped != 2 {
		t.Fatal("a sequence restart was counted as skipped frames")
	}
	// Nor is one frame numbered 2^64−1 (forged, or a broken publisher),
	// and back.
	s.Observe(&Frame{Frame: protocol.Frame{Header: protocol.Header{Seq: math.MaxUint64}}, Received: start.Add(time.Second)})
	s.Observe(&Frame{Frame: protocol.Frame{Header: protocol.Header{Seq: 2}}, Received: start.Add(time.Second)})
	if n := s.Summary(start.Add(time.Second)).Skipped; n != 2 {
		t.Fatalf("skipped %d after a jump to 2^64-1; want still 2", n)
	}
}

// TestStatsBoxes: the summary counts frames with boxes and boxes per
// label, reading metadata as the page does, and keeps a bounded number of
// labels whatever publishers send.
func TestStatsBoxes(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewStats(now)
	for i, meta := range []string{
		`{"boxes":[{"x":1,"y":2,"w":3,"h":4,"label":"face","score":0.9},{"x":1,"y":2,"w":3,"h":4,"label":"face"}]}`,
		`{"boxes":[{"x":1,"y":2,"w":3,"h":4,"label":"person"},{"x":1,"y":2,"w":3,"h":4}]}`,
		`{"boxes":[]}`,
		`{"other":1}`,
		``,
		`{"boxes":"not a list"}`,
		`{"boxes":[{"x":"1","y":2,"w":3,"h":4,"label":"face"}]}`,
	} {
		s.Observe(&Frame{Frame: protocol.Frame{Header: protocol.Header{Seq: uint64(i + 1)}, Meta: []byte(meta)}, Received: now})
	}
	for i := range 200 { // a label per frame: hostile
		meta := fmt.Sprintf(`{"boxes":[{"x":1,"y":2,"w":3,"h":4,"label":"l%d"}]}`, i)
		s.Observe(&Frame{Frame: protocol.Frame{Header: protocol.Header{Seq: uint64(i + 100)}, Meta: []byte(meta)}, Received: now})
	}
	got := s.Summary(now).Boxes
	if got.Frames != 202 || got.Labels["face"] != 2 || got.Labels["person"] != 1 || got.Labels[NoLabel] != 1 || got.BadMeta != 2 {
		t.Fatalf("boxes summary %+v; want 202 frames, face 2, person 1, (none) 1, 2 with bad metadata", got)
	}
	if len(got.Labels) != maxLabels+1 || got.Labels[OtherLabels] != 200-(maxLabels-3) {
		t.Fatalf("%d labels, %d under %s; want %d kept and the rest folded", len(got.Labels), got.Labels[OtherLabels], OtherLabels, maxLabels)
	}
}
