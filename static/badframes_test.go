package static_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"image/color"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"framehub/hub"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// fakeJPEGFrame is a frame whose payload passes every check the hub makes
// on a JPEG (SOI, a baseline SOF stating w×h, a scan header, filler, EOI)
// but is not decodable: a tiny payload that makes a decoder that trusts
// the header allocate for w×h.
func fakeJPEGFrame(w, h int, seed uint64, size int) *protocol.Frame {
	return &protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey,
		Width: uint32(w), Height: uint32(h)}, Payload: testutil.FakeJPEG(w, h, seed, size)}
}

// withMeta returns a copy of f carrying the metadata meta.
func withMeta(f *protocol.Frame, meta string) *protocol.Frame {
	c := *f
	c.Meta = []byte(meta)
	return &c
}

// interceptDecoder serves the page's decoder worker script
// (/static/decoder.js) from body for the loads body gives a script for
// (n counts the loads from 1), and lets the hub serve the others. It
// returns the number of loads so far, and stops with the test.
func interceptDecoder(t *testing.T, ctx context.Context, body func(n int) (script string, ok bool)) func() int {
	t.Helper()
	return interceptScript(t, ctx, "/static/decoder.js", body)
}

// interceptScript is interceptDecoder for the page's script at path.
func interceptScript(t *testing.T, ctx context.Context, path string, body func(n int) (script string, ok bool)) func() int {
	t.Helper()
	lctx, cancel := context.WithCancel(ctx)
	events := chromedp.Events(lctx, fetch.RequestPaused)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: "*" + path + "*"}},
	}); err != nil {
		cancel()
		t.Fatalf("intercept %s: %v", path, err)
	}
	var loads atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev, err := range events {
			if err != nil {
				return
			}
			n := int(loads.Add(1))
			if script, ok := body(n); ok {
				_, err = chromedp.Call(lctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
					RequestID: ev.RequestID, ResponseCode: 200, Body: []byte(script),
					ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/javascript"}},
				})
			} else {
				_, err = chromedp.Call(lctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			}
			if err != nil && lctx.Err() == nil {
				t.Errorf("answer the request for %s: %v", path, err)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return func() int { return int(loads.Load()) }
}

// TestBadFramesNeverFreezeThePage: frames the hub accepts but the page
// cannot fully use, because their metadata is not what the page draws
// ({"boxes":[null]}, the case that froze it, and other shapes) or their
// JPEG does not decode, are counted on screen and acknowledged, and the
// player (two frames of credit) and the grid (one) keep drawing.
func TestBadFramesNeverFreezeThePage(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	red := solidJPEG(t, 320, 180, color.RGBA{230, 20, 20, 255})
	var many strings.Builder
	many.WriteString(`{"boxes":[`)
	for i := range 1000 {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `{"x":%d,"y":10,"w":5,"h":5}`, i%300)
	}
	many.WriteString(`]}`)
	hostile := []*protocol.Frame{
		withMeta(red, `{"boxes":"everywhere"}`),
		withMeta(red, `{"boxes":[{"x":"10","y":10,"w":50,"h":50}]}`),
		withMeta(red, `{"boxes":[{"x":1e999,"y":10,"w":50,"h":50,"label":"overflow"}]}`), // valid JSON, Infinity in JS
		withMeta(red, `{"boxes":[{"x":10,"y":10,"w":50,"h":50,"label":{"html":"<b>x</b>"},"score":"high"}]}`),
		withMeta(red, `{"boxes":[[1,2,3,4],true,7]}`),
		withMeta(red, many.String()),
		fakeJPEGFrame(320, 180, 7, 600), // the hub relays it; no browser can decode it
	}
	// Phase 1: every frame has a null box. Phase 2: each frame is bad in
	// another way. Phase 3: good frames, with a box.
	var phase atomic.Int32
	blue := withMeta(solidJPEG(t, 320, 180, color.RGBA{20, 20, 230, 255}),
		`{"boxes":[{"x":40,"y":40,"w":100,"h":80,"label":"ok","score":0.5}]}`)
	startFeedFunc(t, s.url(), "cam", 20, func(seq uint64) *protocol.Frame {
		switch phase.Load() {
		case 0:
			return withMeta(red, `{"boxes":[null]}`)
		case 1:
			return hostile[seq%uint64(len(hostile))]
		}
		return blue
	})
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "frames with a null box drawn and counted",
		`(() => { const s = framehub.player.stats(); return s.drawn >= 5 && s.badMeta >= 5 && s.bad === 0; })()`, 15*time.Second)
	if c := centre(t, ctx); !near(c, color.RGBA{230, 20, 20, 255}, 30) {
		t.Fatalf("centre pixel %v; want the red picture drawn despite its metadata", c)
	}
	waitJS(t, ctx, "the count and the reason on screen", `document.getElementById('stats').textContent.includes('bad metadata ') &&
		document.getElementById('problem').textContent.includes('box 0 is not an object')`, 5*time.Second)

	phase.Store(1)
	before := stats(t, ctx)
	waitJS(t, ctx, "drawing to go on through every kind of bad frame", fmt.Sprintf(`(() => {
		const s = framehub.player.stats();
		return s.drawn >= %d && s.badMeta >= %d && s.bad >= 3;
	})()`, before.Drawn+3*len(hostile), before.BadMeta+3*len(hostile)), 20*time.Second)
	waitJS(t, ctx, "the header to say frames were skipped",
		`/^live · \d+ bad frames? skipped$/.test(document.getElementById('state').textContent)`, 5*time.Second)
	if st := stats(t, ctx); st.State != "live" || st.Worker == false {
		t.Fatalf("after the bad frames: %+v; want live, decoding in a worker", st)
	}

	phase.Store(2)
	waitJS(t, ctx, "the good frames with their box", `(() => {
		const c = document.getElementById('canvas');
		const d = c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
		return d[2] > 200 && d[0] < 50 && framehub.player.stats().labels.join() === 'ok 0.50';
	})()`, 10*time.Second)
	shot(t, ctx, "bad-frames-player")

	// The grid has one frame of credit: a frame it failed to acknowledge
	// would stop its thumbnail at once.
	phase.Store(0)
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "the grid thumbnail to keep drawing frames with a null box",
		`(() => { const s = framehubGrid.stats().cam; return !!s && s.drawn >= 5 && s.badMeta >= 5; })()`, 15*time.Second)
	phase.Store(1)
	before = eval[map[string]playerStats](t, ctx, `framehubGrid.stats()`)["cam"]
	waitJS(t, ctx, "the thumbnail to draw through every kind of bad frame", fmt.Sprintf(`(() => {
		const s = framehubGrid.stats().cam;
		return s.drawn >= %d && s.bad >= 2 && document.querySelector('[data-channel="cam"] .info').textContent.includes('bad frame');
	})()`, before.Drawn+2*len(hostile)), 20*time.Second)
}

// TestDecoderWorkerFailuresAreSurvived: a decoder worker that throws, and
// one that dies without a word, fail the decode waiting on them (the frame
// is counted and acknowledged) and are replaced, so frames are drawn again
// in a worker; a worker script that never works moves decoding to the
// main thread after three tries instead of stopping the page.
func TestDecoderWorkerFailuresAreSurvived(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	startFeed(t, s.url(), "cam", 20, solidJPEG(t, 320, 180, color.RGBA{20, 200, 20, 255}))
	ctx := browser(t)
	loads := interceptDecoder(t, ctx, func(n int) (string, bool) {
		switch n {
		case 1: // throws on every message: Worker.onerror
			return `self.onmessage = () => { throw new Error('decoder crashed'); };`, true
		case 2: // dies on its first message, silently
			return `self.onmessage = () => self.close();`, true
		case 4, 5, 6: // after a reload: a script that fails as it loads
			return `throw new Error('broken deploy');`, true
		}
		return "", false
	})
	navigate(t, ctx, s.url()+"/view/cam?test-decode-timeout-ms=1000")
	waitJS(t, ctx, "frames drawn by the third worker", `(() => {
		const s = framehub.player.stats();
		return s.drawn >= 5 && s.worker && s.state === 'live';
	})()`, 20*time.Second)
	if n := loads(); n != 3 {
		t.Fatalf("decoder script loaded %d times; want 3 (two broken workers replaced)", n)
	}
	st := stats(t, ctx)
	if st.Bad < 2 {
		t.Fatalf("stats %+v; want the two decodes the broken workers held counted as bad", st)
	}
	if text := eval[string](t, ctx, `document.getElementById('stats').textContent`); !strings.Contains(text, "bad frames ") {
		t.Errorf("stats line %q; want the bad frames counted", text)
	}

	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "frames decoded on the main thread", `(() => {
		const s = framehub.player.stats();
		return s.drawn >= 5 && !s.worker && s.bad >= 3;
	})()`, 20*time.Second)
	if n := loads(); n != 6 {
		t.Fatalf("decoder script loaded %d times in all; want 6 (three tries after the reload)", n)
	}
	if p := stats(t, ctx).Problem; !strings.Contains(p, "decoder worker failed") {
		t.Errorf("last problem %q; want the worker failure", p)
	}
}

// TestPixelGuardSkipsHugePictures: a hub configured to relay pictures up to
// 16384×16384 sends a consistent one (its JPEG states that size, in a
// payload of a few KB). The page's guard (8K UHD) refuses it before any
// decoder allocates for it: counted, acknowledged, and the next frames are
// drawn.
func TestPixelGuardSkipsHugePictures(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{MaxPixels: 1 << 28})
	huge := fakeJPEGFrame(16384, 16384, 1, 3000)
	fd := startFeed(t, s.url(), "cam", 20, huge)
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam")
	// Old pages stopped at two: the credit they never gave back.
	waitJS(t, ctx, "huge frames skipped and acknowledged", `framehub.player.stats().bad >= 5`, 15*time.Second)
	st := stats(t, ctx)
	if st.Drawn != 0 || !strings.HasPrefix(st.Problem, "ErrPixels: 16384x16384") {
		t.Fatalf("stats %+v; want nothing drawn and the pixel limit named", st)
	}
	waitJS(t, ctx, "the skipped frames on screen", `/bad frames? skipped/.test(document.getElementById('state').textContent) &&
		document.getElementById('problem').textContent.includes('ErrPixels')`, 5*time.Second)
	fd.frame.Store(solidJPEG(t, 640, 360, color.RGBA{20, 200, 20, 255}))
	waitJS(t, ctx, "the next frames drawn", `framehub.player.stats().drawn >= 3`, 10*time.Second)
	if c := centre(t, ctx); !near(c, color.RGBA{20, 200, 20, 255}, 30) {
		t.Fatalf("centre pixel %v; want green", c)
	}
}

// TestDecoderWorkerRechecksBeforeDecoding: the decoder worker does not
// trust what it is sent. Messages posted to it straight from the page,
// past the player's parser, are refused before anything is allocated: a
// picture past the page's pixel guard, a JPEG whose own frame header is
// larger than the size it comes with, a raw payload that does not match
// its shape. A sound frame still decodes.
func TestDecoderWorkerRechecksBeforeDecoding(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/none")
	good := solidJPEG(t, 64, 48, color.RGBA{1, 2, 3, 255}).Payload
	cases := []struct {
		name, msg, want string
	}{
		{"past the pixel guard", fmt.Sprintf(`{codec: 1, width: 16384, height: 16384, payload: bytes(%q)}`,
			b64(testutil.FakeJPEG(16384, 16384, 1, 2000))), "ErrPixels"},
		{"past the pixel limit it is given", fmt.Sprintf(`{codec: 1, width: 64, height: 48, maxPixels: 1000, payload: bytes(%q)}`,
			b64(good)), "ErrPixels"},
		{"JPEG larger than stated", fmt.Sprintf(`{codec: 1, width: 64, height: 48, payload: bytes(%q)}`,
			b64(testutil.FakeJPEG(7680, 4320, 1, 2000))), "ErrJPEG"},
		{"raw shorter than its shape", `{codec: 2, width: 4000, height: 4000, elemType: 1, channels: 3, payload: new ArrayBuffer(12)}`, "ErrPayload"},
		{"sound JPEG", fmt.Sprintf(`{codec: 1, width: 64, height: 48, payload: bytes(%q)}`, b64(good)), "picture 64x48"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tctx, cancel := context.WithTimeout(ctx, 10*time.Second) // an old worker may never answer
			defer cancel()
			got, err := chromedp.Run(tctx, chromedp.Evaluate[string](`new Promise((resolve) => {
				const bytes = (s) => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0)).buffer;
				const w = new Worker('/static/decoder.js');
				const m = `+c.msg+`;
				m.id = 42;
				w.onmessage = (e) => {
					w.terminate();
					const d = e.data;
					resolve(d.id !== 42 ? 'wrong id ' + d.id : d.image ? 'picture ' + d.width + 'x' + d.height : d.error);
				};
				w.onerror = (e) => resolve('worker error ' + e.message);
				w.postMessage(m, [m.payload]);
			})`, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, c.want) {
				t.Fatalf("worker answered %q; want %s", got, c.want)
			}
		})
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
