package static_test

import (
	"encoding/json"
	"image/color"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"framehub/hub"
	"framehub/protocol"
)

// TestFrameEventsAgreeWithGo: the page reads every shared case of
// protocol/testdata/events.json as Go's protocol.ParseEvents does (and the
// Python client's frame_events), what is left out included.
func TestFrameEventsAgreeWithGo(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/none")
	raw, err := os.ReadFile(filepath.Join("..", "protocol", "testdata", "events.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			Name    string            `json:"name"`
			Meta    json.RawMessage   `json:"meta"`
			Events  []json.RawMessage `json:"events"`
			Dropped int               `json:"dropped"`
			Problem bool              `json:"problem"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	metas := make([]json.RawMessage, len(doc.Cases))
	for i, c := range doc.Cases {
		metas[i] = c.Meta
	}
	list, _ := json.Marshal(metas)
	type jsEvent struct {
		ID    string  `json:"id"`
		Label string  `json:"label"`
		Zone  string  `json:"zone"`
		Start float64 `json:"start"`
		End   float64 `json:"end"`
		Score float64 `json:"score"`
		Best  bool    `json:"best"`
	}
	type result struct {
		Events  []jsEvent `json:"events"`
		Problem string    `json:"problem"`
		Dropped int       `json:"dropped"`
	}
	// The metadata goes in as JSON text and is parsed by the page, as a
	// frame's is.
	got := eval[[]result](t, ctx, `(`+string(list)+`).map((m) => FH.frameEvents(JSON.parse(JSON.stringify(m))))`)
	if len(got) != len(doc.Cases) {
		t.Fatalf("%d results for %d cases", len(got), len(doc.Cases))
	}
	for i, c := range doc.Cases {
		var want []jsEvent
		for _, e := range c.Events {
			var je jsEvent
			if err := json.Unmarshal(e, &je); err != nil {
				t.Fatal(err)
			}
			want = append(want, je)
		}
		g := got[i]
		if (g.Problem != "") != c.Problem || g.Dropped != c.Dropped || len(g.Events) != len(want) ||
			(len(want) > 0 && !reflect.DeepEqual(g.Events, want)) {
			t.Errorf("%s: page read %+v; want %d events %+v, %d dropped, a problem: %v", c.Name, g, len(want), want, c.Dropped, c.Problem)
		}
	}
	if n := eval[int](t, ctx, `FH.MAX_EVENTS`); n != protocol.MaxEvents {
		t.Errorf("FH.MAX_EVENTS = %d; protocol.MaxEvents = %d", n, protocol.MaxEvents)
	}
}

// TestPlayerMarksEvents: while a frame says an event goes on, the player
// frames the picture in red and names the event in its corner (as canvas
// text), the channel page lists it (as text), and the grid marks the
// channel's tile; once the frames no longer carry it, the marks go.
func TestPlayerMarksEvents(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	plain := solidJPEG(t, 640, 360, color.RGBA{0, 0, 0, 255})
	withEvent := *plain
	withEvent.Meta = []byte(`{"events":[{"id":"e1","label":"<b id=pwn>person</b>","zone":"door","start":1700000000,"score":0.91},` +
		`{"id":"e2","label":"car","start":1700000000,"end":1700000001}]}`)
	fd := startFeed(t, s.url(), "cam", 10, &withEvent)
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "the event marked", `framehub.player.stats().events.length === 1`, 15*time.Second)
	if got := eval[[]string](t, ctx, `framehub.player.stats().events`); len(got) != 1 || got[0] != "<b id=pwn>person</b> in door 0.91" {
		t.Fatalf("events shown %q; want the going-on one, named as text", got)
	}
	waitJS(t, ctx, "the event listed", `document.getElementById('events-now').textContent.includes('person</b> in door')`, 5*time.Second)
	edge := eval[[]int](t, ctx, `(() => {
		const c = document.getElementById('canvas');
		const d = c.getContext('2d').getImageData(2, c.height >> 1, 1, 1).data;
		return [d[0], d[1], d[2]];
	})()`)
	if edge[0] < 180 || edge[1] > 100 || edge[2] > 100 {
		t.Errorf("the picture's left edge is rgb%v; want the red event frame", edge)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#pwn').length`); n != 0 {
		t.Fatal("markup from an event label became an element")
	}
	shot(t, ctx, "player-event")

	grid := browser(t)
	navigate(t, grid, s.url()+"/")
	waitJS(t, grid, "the tile marked", `!!document.querySelector('[data-channel="cam"].event')`, 15*time.Second)

	fd.frame.Store(plain)
	waitJS(t, ctx, "the player's mark gone", `framehub.player.stats().events.length === 0 && document.getElementById('events-now').textContent === ''`, 10*time.Second)
	waitJS(t, grid, "the tile's mark gone", `!document.querySelector('[data-channel="cam"].event')`, 10*time.Second)
}
