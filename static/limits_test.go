package static_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"framehub/hub"
	"framehub/protocol"
)

// TestPageFollowsHubLimits: a hub that allows 200 000 bytes of metadata
// relays a frame with 100 KB of it (over the hub default of 64 KiB that
// the page used to assume); the page fetches the hub's limits once per
// load and draws the frame. The page's guard and its capping of the hub's
// limits are the Go client's.
func TestPageFollowsHubLimits(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{MaxMetaBytes: 200000})
	big := solidJPEG(t, 320, 180, color.RGBA{200, 200, 0, 255})
	big.Meta = []byte(`{"boxes":[{"x":20,"y":20,"w":100,"h":60,"label":"big"}],"pad":"` + strings.Repeat("a", 100_000) + `"}`)
	startFeed(t, s.url(), "cam", 10, big)
	startFeed(t, s.url(), "cam2", 10, solidJPEG(t, 320, 180, color.RGBA{0, 200, 200, 255}))
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "frames with 100 KB of metadata drawn", `framehub.player.stats().drawn >= 3`, 15*time.Second)
	if st := stats(t, ctx); st.Bad != 0 || st.BadMeta != 0 || strings.Join(st.Labels, ",") != "big" {
		t.Fatalf("stats %+v; want no bad frames and the box labelled big", st)
	}
	if n := len(s.requested(protocol.PathLimits)); n != 1 {
		t.Fatalf("the player page fetched %s %d times; want once", protocol.PathLimits, n)
	}
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "both thumbnails drawn", `(() => {
		const st = framehubGrid.stats();
		return !!st.cam && !!st.cam2 && st.cam.drawn >= 3 && st.cam2.drawn >= 3 && st.cam.bad === 0;
	})()`, 15*time.Second)
	if n := len(s.requested(protocol.PathLimits)); n != 2 {
		t.Fatalf("%s fetched %d times after two page loads; want 2 (once per load, not per player)", protocol.PathLimits, n)
	}

	// The page's guard is protocol.ClientGuard, and it caps a hub's limits
	// as protocol.ClientLimits does.
	type jsLimits struct {
		MaxFrameBytes   int    `json:"maxFrameBytes"`
		MaxMetaBytes    int    `json:"maxMetaBytes"`
		MaxDimension    uint32 `json:"maxDimension"`
		MaxPixels       uint64 `json:"maxPixels"`
		MaxCreditWindow int    `json:"maxCreditWindow"`
	}
	g := eval[jsLimits](t, ctx, `FH.CLIENT_GUARD`)
	cg := protocol.ClientGuard
	if g.MaxFrameBytes != cg.MaxFrameBytes || g.MaxMetaBytes != cg.MaxMetaBytes || g.MaxDimension != cg.MaxDimension ||
		g.MaxPixels != cg.MaxPixels || g.MaxCreditWindow != protocol.MaxCreditWindow {
		t.Fatalf("page guard %+v; want protocol.ClientGuard %+v and window %d", g, cg, protocol.MaxCreditWindow)
	}
	for _, hl := range []protocol.HubLimits{
		s.h.Limits(),
		{MaxFrameBytes: 1 << 40, MaxMetaBytes: 1 << 30, MaxPixels: 1 << 40, MaxDimension: 1 << 20, MaxCreditWindow: 100},
		{MaxFrameBytes: 1000, MaxMetaBytes: 10, MaxPixels: 64, MaxDimension: 8, MaxCreditWindow: 1},
		{}, // nothing announced: the guard
	} {
		j, _ := json.Marshal(hl)
		got := eval[jsLimits](t, ctx, `FH.clientLimits(`+string(j)+`)`)
		h := http.Header{}
		hl.SetHeaders(h)
		want := protocol.ClientLimits(h, cg)
		if got.MaxFrameBytes != want.MaxFrameBytes || got.MaxMetaBytes != want.MaxMetaBytes || got.MaxPixels != want.MaxPixels {
			t.Errorf("clientLimits(%s) = %+v; Go's ClientLimits gives %+v", j, got, want)
		}
		wantDim := cg.MaxDimension
		if hl.MaxDimension > 0 {
			wantDim = min(hl.MaxDimension, cg.MaxDimension)
		}
		if got.MaxDimension != wantDim {
			t.Errorf("clientLimits(%s).maxDimension = %d; want %d", j, got.MaxDimension, wantDim)
		}
	}
}

// wsLog records, through the DevTools protocol, the WebSockets the page
// opens and the messages it sends on them.
type wsLog struct {
	mu   sync.Mutex
	urls map[network.RequestID]string
	sent map[network.RequestID][]string
}

func logWebSockets(t *testing.T, ctx context.Context) *wsLog {
	t.Helper()
	l := &wsLog{urls: map[network.RequestID]string{}, sent: map[network.RequestID][]string{}}
	lctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	err := chromedp.Listen(lctx, func(ev any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventWebSocketCreated:
			l.urls[ev.RequestID] = ev.URL
		case *network.EventWebSocketFrameSent:
			if ev.Response != nil {
				l.sent[ev.RequestID] = append(l.sent[ev.RequestID], string(ev.Response.PayloadData))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestCreditWindowFromTheFirstFrame: the player subscribes with ?window=2
// and each grid thumbnail with ?window=1, so the hub is in credit mode from
// the first frame; the page then only ever sends acks, in increasing
// order (they are cumulative), and never a credit message.
func TestCreditWindowFromTheFirstFrame(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	startFeed(t, s.url(), "cam", 20, solidJPEG(t, 320, 180, color.RGBA{90, 90, 90, 255}))
	ctx := browser(t)
	ws := logWebSockets(t, ctx)
	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "player frames", `framehub.player.stats().drawn >= 10`, 15*time.Second)
	// The grid's tile, drawn by a tile worker: with one frame in flight, it
	// draws ten only if it acknowledges them. DevTools's page session does
	// not see a worker's WebSockets, so its messages are read on the grid
	// drawn on the page, which runs the same player.
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "thumbnail frames drawn by a worker", `(() => { const s = framehubGrid.stats().cam || {}; return s.drawn >= 10 && s.drawsIn === 'worker'; })()`, 15*time.Second)
	navigate(t, ctx, s.url()+"/?test-grid=page")
	waitJS(t, ctx, "thumbnail frames drawn on the page", `(() => { const s = framehubGrid.stats().cam || {}; return s.drawn >= 10 && s.drawsIn === 'page'; })()`, 15*time.Second)

	// All also ask for the rendition that fits what they show (max-width).
	got := s.requested("/ws/subscribe/cam")
	if len(got) != 3 || !strings.HasPrefix(got[0], "/ws/subscribe/cam?window=2&max-width=") || !strings.HasPrefix(got[1], "/ws/subscribe/cam?window=1&max-width=") ||
		!strings.HasPrefix(got[2], "/ws/subscribe/cam?window=1&max-width=") {
		t.Fatalf("subscriptions %q; want window=2 then window=1 twice, each with its max-width (the player's, then the thumbnail's)", got)
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(ws.urls) != 2 {
		t.Fatalf("page opened WebSockets %v; want 2 (the player's, the thumbnail's on the page)", ws.urls)
	}
	for id, u := range ws.urls {
		msgs := ws.sent[id]
		if len(msgs) < 9 {
			t.Errorf("%s: sent %d messages; want an ack per frame drawn", u, len(msgs))
		}
		last := uint64(0)
		for i, m := range msgs {
			var c struct {
				Op  string  `json:"op"`
				Seq *uint64 `json:"seq"`
			}
			if err := json.Unmarshal([]byte(m), &c); err != nil || c.Op != "ack" || c.Seq == nil {
				t.Fatalf("%s: message %d is %q; want only acks", u, i, m)
			}
			if *c.Seq <= last {
				t.Fatalf("%s: ack %d for frame %d after an ack for %d; acks are cumulative", u, i, *c.Seq, last)
			}
			last = *c.Seq
		}
		t.Logf("%s: %d acks, up to frame %d", u, len(msgs), last)
	}
}

// TestPageDrawsOnlyRawLayoutsItCan: raw frames of 16-bit elements or two
// channels are valid frames the page cannot draw (its converter reads one
// byte per 8-bit gray, BGR or BGRA value); they are refused before
// decoding, so they are counted as bad and acked instead of drawn as noise.
func TestPageDrawsOnlyRawLayoutsItCan(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam")
	check := func(elem, channels, bytes int) string {
		return eval[string](t, ctx, fmt.Sprintf(`(() => {
			try {
				FH.checkDecodable({codec: FH.CODEC_RAW, width: 4, height: 2, elemType: %d, channels: %d, payload: new ArrayBuffer(%d)});
				return 'ok';
			} catch (e) { return e instanceof FH.FrameError ? e.code : '! ' + e; }
		})()`, elem, channels, bytes))
	}
	for _, c := range []struct {
		name                  string
		elem, channels, bytes int
		want                  string
	}{
		{"8-bit gray", int(protocol.ElemUint8), 1, 8, "ok"},
		{"8-bit BGR", int(protocol.ElemUint8), 3, 24, "ok"},
		{"8-bit BGRA", int(protocol.ElemUint8), 4, 32, "ok"},
		{"8-bit, two channels", int(protocol.ElemUint8), 2, 16, "ErrCodec"},
		{"16-bit gray", int(protocol.ElemUint16), 1, 16, "ErrCodec"},
		{"float BGR", int(protocol.ElemFloat32), 3, 96, "ErrCodec"},
	} {
		if got := check(c.elem, c.channels, c.bytes); got != c.want {
			t.Errorf("%s: %s; want %s", c.name, got, c.want)
		}
	}
}
