package static_test

import (
	"image/color"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/hub"
	"framehub/protocol"
)

// TestHeaderFollowsStaleness: when frames stop while the connection stays
// up (the publisher left, the hub keeps the channel), the header stops
// saying "live" as soon as the canvas says "no live video", and says live
// again when frames come back.
func TestHeaderFollowsStaleness(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	grey := solidJPEG(t, 320, 180, color.RGBA{120, 120, 120, 255})
	fd := startFeed(t, s.url(), "cam", 15, grey)
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "a live header", `document.getElementById('state').dataset.state === 'live' && framehub.player.stats().drawn > 3`, 15*time.Second)
	fd.stop()
	waitJS(t, ctx, "the no-live-video mark", `!document.getElementById('nolive').hidden`, 10*time.Second)
	waitJS(t, ctx, "the header to agree with the canvas", `(() => {
		const st = document.getElementById('state');
		return !document.getElementById('nolive').hidden && st.dataset.state === 'stale' && st.textContent === 'no live video';
	})()`, time.Second)
	if st := stats(t, ctx); st.State != "live" {
		t.Fatalf("player state %q; want the connection still up (live), so that only staleness changed the header", st.State)
	}
	if c := eval[string](t, ctx, `getComputedStyle(document.getElementById('state')).color`); c == "rgb(68, 204, 68)" {
		t.Fatalf("stale header is live green %s", c)
	}
	shot(t, ctx, "stale-header")
	startFeed(t, s.url(), "cam", 15, grey)
	waitJS(t, ctx, "the header live again", `(() => {
		const st = document.getElementById('state');
		return document.getElementById('nolive').hidden && st.dataset.state === 'live' && st.textContent === 'live';
	})()`, 10*time.Second)
}

// TestGridDrawsBoxesAndScores: grid thumbnails draw a frame's metadata
// boxes, with the label and the score (two decimals) as canvas text, a box
// with a score and no label included; markup in a label stays text.
func TestGridDrawsBoxesAndScores(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	f := solidJPEG(t, 640, 360, color.RGBA{0, 0, 0, 255})
	f.Meta = []byte(`{"boxes":[{"x":100,"y":100,"w":200,"h":120,"label":"person","score":0.87},` +
		`{"x":400,"y":60,"w":100,"h":100,"score":0.5},` +
		`{"x":300,"y":250,"w":50,"h":50,"label":"<img src=x id=pwn onerror=\"window.pwned=1\">"}]}`)
	startFeed(t, s.url(), "cam", 10, f)
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "the thumbnail's boxes", `(() => {
		const s = framehubGrid.stats().cam;
		return !!s && s.drawn > 2 && s.labels.length === 3;
	})()`, 15*time.Second)
	labels := eval[[]string](t, ctx, `framehubGrid.stats().cam.labels`)
	if got := strings.Join(labels, "|"); got != `person 0.87|0.50|<img src=x id=pwn onerror="window.pwned=1">` {
		t.Fatalf("thumbnail labels %q; want the label with its score, the score alone, the markup as text", labels)
	}
	// The thumbnail is decoded for the width the tile is shown at (in
	// device pixels): frame coordinates × k. The first box's left edge is green;
	// above the second box, where its score is written, there are green
	// text pixels on the black picture.
	got := evalAwait[[]int](t, ctx, `(async () => {
		const c = document.querySelector('[data-channel="cam"] canvas');
		const p = await framehubGrid.pixels('cam');
		const k = p.width / 640;
		const at = (x, y) => (y * p.width + x) * 4;
		const edge = p.data.slice(at(Math.round(100 * k), Math.round(160 * k)));
		let text = 0;
		for (let y = 0; y < Math.round(60 * k); y++) {
			for (let x = Math.round(400 * k) + 2, i = at(x, y); x < Math.round(400 * k) + 42; x++, i += 4) if (p.data[i + 1] > 150 && p.data[i] < 120) text++;
		}
		return [p.width, Math.round(c.clientWidth * devicePixelRatio), edge[0], edge[1], text];
	})()`)
	if got[0] < got[1] || got[0] >= 2*got[1] || got[2] > 120 || got[3] < 150 {
		t.Errorf("thumbnail %d wide, shown %d device pixels wide, box edge rgb(%d, %d, …); want it decoded for the tile's width (at least as wide, less than twice) and a green edge", got[0], got[1], got[2], got[3])
	}
	if got[4] < 10 {
		t.Errorf("%d green pixels where the second box's score is written; want its text", got[4])
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#pwn').length + (window.pwned ? 100 : 0)`); n != 0 {
		t.Fatalf("markup from a label became an element (%d)", n)
	}
	shot(t, ctx, "grid-boxes")
}

// TestGridSaysCameraLost: a tile whose publisher says its camera is lost
// says "camera lost — retrying" (with the reason as its tooltip, as text),
// and clears when the camera is live again and frames come.
func TestGridSaysCameraLost(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	grey := solidJPEG(t, 320, 180, color.RGBA{120, 120, 120, 255})
	fd := startFeed(t, s.url(), "door", 15, grey)
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "a live tile", `framehubGrid.stats().door && framehubGrid.stats().door.drawn > 3`, 15*time.Second)
	fd.stop()
	// The publisher back, saying its camera is lost.
	u, err := protocol.ChannelURL(s.url(), protocol.PathPublish, "door")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WriteMessage(websocket.TextMessage, protocol.NewSourceNotice(protocol.SourceReconnecting, "<b>connection refused</b>").Encode()); err != nil {
		t.Fatal(err)
	}
	mark := `document.querySelector('[data-channel="door"] .nolive')`
	waitJS(t, ctx, "the camera-lost mark", `(() => { const m = `+mark+`;
		return !m.hidden && m.textContent === 'camera lost — retrying' && m.title === '<b>connection refused</b>' && !m.querySelector('b'); })()`, 10*time.Second)
	shot(t, ctx, "grid-camera-lost")
	startFeed(t, s.url(), "door", 15, grey) // a publisher whose camera works takes over
	waitJS(t, ctx, "the mark gone", `(() => { const m = `+mark+`; return m.hidden && m.textContent === 'no live video'; })()`, 10*time.Second)
}
