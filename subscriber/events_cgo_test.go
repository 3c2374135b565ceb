//go:build cgo

package subscriber

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// eventMarked reports whether m shows an event band (EventColor) near its
// bottom-left corner.
func eventMarked(m gocv.Mat) bool {
	h := m.Rows()
	for y := h - 4; y > h-40 && y > 0; y-- {
		v := m.GetVecbAt(y, 6) // B, G, R
		if v[2] > 200 && v[1] < 90 && v[0] < 90 {
			return true
		}
	}
	return false
}

func TestDrawEvents(t *testing.T) {
	grey := func() gocv.Mat {
		return gocv.NewMatWithSizeFromScalar(gocv.NewScalar(128, 128, 128, 0), 240, 320, gocv.MatTypeCV8UC3)
	}
	active := protocol.Event{ID: "a", Label: "person", Zone: "door", Start: 1700000000, Score: 0.912}
	ended := active
	ended.End = 1700000005
	for _, c := range []struct {
		name   string
		events []protocol.Event
		want   bool
	}{
		{"active", []protocol.Event{active}, true},
		{"ended only", []protocol.Event{ended}, false},
		{"none", nil, false},
		{"many", []protocol.Event{active, active, active, active, active, active}, true},
	} {
		m := grey()
		DrawEvents(&m, c.events)
		if got := eventMarked(m); got != c.want {
			t.Errorf("%s: marked %v; want %v", c.name, got, c.want)
		}
		m.Close()
	}
	g := gocv.NewMatWithSize(240, 320, gocv.MatTypeCV8UC1)
	defer g.Close()
	DrawEvents(&g, []protocol.Event{active}) // gray: nothing, and no panic
	for _, c := range []struct {
		e    protocol.Event
		want string
	}{
		{active, "person in door 0.91"},
		{protocol.Event{Label: "person", Start: 1}, "person"},
		{protocol.Event{Label: "caf\u00e9", Zone: "z", Score: 0.5, Start: 1}, "caf? in z 0.50"},
	} {
		if got := EventText(c.e); got != c.want {
			t.Errorf("EventText(%+v) = %q; want %q", c.e, got, c.want)
		}
	}
}

// TestRecordDrawsEvents: record --draw-boxes marks the frames during which
// an event goes on, even when they carry no boxes, and stores the others
// as they came.
func TestRecordDrawsEvents(t *testing.T) {
	addr, _ := runHub(t, "127.0.0.1:0")
	out := filepath.Join(t.TempDir(), "events.mkv")
	rec := startRecord(t, RecordConfig{Client: Config{Hub: "http://" + addr, Channel: "e"}, Out: out, FPS: 30, DrawBoxes: true})
	waitSubscribers(t, addr, 1)
	frames := make([]protocol.Frame, 8)
	for i := range frames {
		frames[i] = hubtest.JPEGFrame(320, 240, testutil.JPEG(320, 240, 0))
		switch {
		case i >= 2 && i < 5:
			frames[i].Meta = []byte(`{"events":[{"id":"x1","label":"person","start":1700000000,"score":0.8}]}`)
		case i == 5:
			frames[i].Meta = []byte(`{"events":[{"id":"x1","label":"person","start":1700000000,"end":1700000001}]}`)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Each frame goes once the recorder has the one before and 100 ms
	// later: on a loaded machine a recorder behind would be skipped to the
	// newest frame (the hub's rule), and the test is of what it draws.
	hubtest.PublishPaced(t, ctx, addr, "e", frames, func(seq uint64) bool {
		rec.waitReceived(t, seq)
		select {
		case <-time.After(100 * time.Millisecond):
			return true
		case <-ctx.Done():
			return false
		}
	})
	rec.waitReceived(t, 8)
	// A frame may be dropped if two arrive within one frame interval.
	if st, err := rec.stop(t); err != nil || st.Written+st.Dropped != 8 || st.Dropped > 1 {
		t.Fatalf("Record: %+v, %v; want 8 frames written (one may be dropped)", st, err)
	}
	vc, err := gocv.VideoCaptureFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	var marked []bool
	for vc.Read(&m) && !m.Empty() {
		marked = append(marked, eventMarked(m))
	}
	// Frames 3 to 5 marked, the others not (one of either may be missing).
	first, last, n := -1, -1, 0
	for i, m := range marked {
		if m {
			if first < 0 {
				first = i
			}
			last, n = i, n+1
		}
	}
	if n < 2 || n > 3 || last-first+1 != n || first < 1 || len(marked)-n < 4 {
		t.Errorf("file frames marked %v; want the three with the event going on (in a row), and the others not", marked)
	}
}
