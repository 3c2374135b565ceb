//go:build cgo

package publisher

import (
	"context"
	"strings"
	"testing"
	"time"

	"framehub/protocol"
)

// boxFilter labels every frame with a box, the way a detector written as
// a filter would; every third frame it adds more than the hub accepts, and
// every fifth something JSON cannot hold.
type boxFilter struct{}

func (boxFilter) Apply(f *Frame) error {
	f.Meta["boxes"] = []map[string]any{{"x": 10, "y": 20, "w": 30, "h": 40, "label": "thing", "score": 0.5}}
	switch {
	case f.Seq%3 == 0:
		f.Meta["blob"] = strings.Repeat("x", 70<<10)
	case f.Seq%5 == 0:
		f.Meta["fn"] = func() {}
	}
	return nil
}

// TestFilterMetadata: what a filter puts in Frame.Meta goes out with the
// frame as its JSON metadata; metadata the hub would refuse, or that does
// not marshal, is left out of that frame (counted), and the frame still
// goes.
func TestFilterMetadata(t *testing.T) {
	base := testHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	frames, _ := collect(t, ctx, base, "meta", func(got []received) bool { return len(got) >= 16 })
	pctx, pcancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	stats := make(chan Stats, 1)
	go func() {
		st, err := runPublisher(t, pctx, Config{Source: "test:160x120", FPS: 30, Filter: []Filter{boxFilter{}},
			Sender: SenderConfig{Hub: base, Channel: "meta"}})
		stats <- st
		errc <- err
	}()
	got := frames()
	pcancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st := <-stats
	for _, f := range got {
		dropped := f.hdr.Seq%3 == 0 || f.hdr.Seq%5 == 0
		boxes, p := protocol.ParseBoxes(f.meta)
		switch {
		case dropped && len(f.meta) != 0:
			t.Errorf("frame %d: %d bytes of metadata; want none (too big or not JSON)", f.hdr.Seq, len(f.meta))
		case !dropped && (p != nil || len(boxes) != 1 || boxes[0].Label != "thing" || boxes[0].W != 30):
			t.Errorf("frame %d: boxes %+v (%+v) from %s; want the filter's box", f.hdr.Seq, boxes, p, f.meta)
		}
	}
	if st.MetaDropped < 5 {
		t.Errorf("MetaDropped = %d; want the frames without their metadata counted", st.MetaDropped)
	}
}
