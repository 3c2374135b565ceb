package static_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
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

// TestPageListsEvents: the grid lists each channel's recent events from
// the hub (GET /api/events, then its stream), each with its best snapshot
// fetched with the page's token, and marks a tile while the hub says one
// goes on; the channel page lists them too; labels stay text; once the
// event ends, the mark goes and the list says how long it lasted.
func TestPageListsEvents(t *testing.T) {
	const tok = "page-events-view-token-0123456789"
	auth, err := hub.NewAuth([]hub.Grant{{Token: tok, Rights: hub.RightView, Channels: []string{"*"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := startHub(t, "127.0.0.1:0", hub.Config{Auth: auth, DenyDelay: -1}) // publishing stays open on loopback
	start := float64(time.Now().UnixMilli()) / 1e3
	red := solidJPEG(t, 320, 180, color.RGBA{220, 0, 0, 255})
	best, going := *red, *red // a worker flags a frame best when it beats the ones before: here the first
	best.Meta = []byte(fmt.Sprintf(`{"events":[{"id":"ev1","label":"<i id=pwn2>person</i>","zone":"porch","start":%.3f,"score":0.8,"best":true}]}`, start))
	going.Meta = []byte(fmt.Sprintf(`{"events":[{"id":"ev1","label":"<i id=pwn2>person</i>","zone":"porch","start":%.3f,"score":0.8}]}`, start))
	ended := *red
	ended.Meta = []byte(fmt.Sprintf(`{"events":[{"id":"ev1","label":"<i id=pwn2>person</i>","zone":"porch","start":%.3f,"end":%.3f,"score":0.8}]}`, start, start+3))
	plain := solidJPEG(t, 320, 180, color.RGBA{0, 0, 0, 255})
	var phase atomic.Int32
	startFeedFunc(t, s.url(), "cam", 10, func(seq uint64) *protocol.Frame {
		switch phase.Load() {
		case 0:
			if seq == 1 {
				return &best
			}
			return &going
		case 1:
			return &ended
		}
		return plain
	})
	// Each page asks for the token once, as a user enters it.
	enterToken := func(ctx context.Context) {
		waitJS(t, ctx, "the token form", `!!document.getElementById('auth-token')`, 10*time.Second)
		eval[bool](t, ctx, `(() => { document.getElementById('auth-token').value = `+strconv.Quote(tok)+`;
			document.getElementById('auth').requestSubmit(); return true; })()`)
	}
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	enterToken(ctx)
	waitJS(t, ctx, "the grid's event list with its snapshot", `(() => {
		const li = document.querySelector('[data-channel="cam"] ul.events li.active');
		const img = li && li.querySelector('img');
		return !!img && !img.hidden && img.naturalWidth === 320;
	})()`, 20*time.Second)
	line := eval[string](t, ctx, `document.querySelector('[data-channel="cam"] ul.events li span').textContent`)
	if !strings.HasPrefix(line, "● <i id=pwn2>person</i> in porch 0.80 · ") || !strings.HasSuffix(line, " · going on") {
		t.Errorf("grid event line %q", line)
	}
	waitJS(t, ctx, "the tile marked", `!!document.querySelector('[data-channel="cam"].event')`, 5*time.Second)
	view := browser(t)
	navigate(t, view, s.url()+"/view/cam")
	enterToken(view)
	waitJS(t, view, "the channel page's event list", `document.querySelectorAll('#events li').length === 1`, 20*time.Second)
	shot(t, ctx, "grid-events")

	phase.Store(1)
	waitJS(t, ctx, "the event ended in the list", `(() => {
		const li = document.querySelector('[data-channel="cam"] ul.events li');
		return !!li && !li.classList.contains('active') && li.textContent.endsWith(' · 3 s');
	})()`, 10*time.Second)
	phase.Store(2)
	waitJS(t, ctx, "the tile's mark gone", `!document.querySelector('[data-channel="cam"].event')`, 10*time.Second)
	waitJS(t, view, "the channel page's event ended", `document.querySelector('#events li') && !document.querySelector('#events li.active')`, 10*time.Second)
	for _, c := range []context.Context{ctx, view} {
		if n := eval[int](t, c, `document.querySelectorAll('#pwn2').length`); n != 0 {
			t.Fatal("markup from an event label became an element")
		}
	}
}
