package static_test

import (
	"context"
	"encoding/json"
	"image/color"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"framehub/hub"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// tileCentre is the RGB at the centre of a grid tile's canvas, read as
// the page offers it (framehubGrid.pixels: a tile drawn by a worker cannot
// be read from the page's canvas element).
func tileCentre(t testing.TB, ctx context.Context, name string) [3]int {
	t.Helper()
	return evalAwait[[3]int](t, ctx, `(async () => {
		const p = await framehubGrid.pixels(`+strconv.Quote(name)+`);
		const i = ((p.height >> 1) * p.width + (p.width >> 1)) * 4;
		return p.data.slice(i, i + 3);
	})()`)
}

// TestGridLabelShowsWhatTileDraws: a tile's label gives the frames the
// tile draws per second and their age, not the channel's rate: here a
// 30 fps channel on a page whose decoder takes 150 ms a frame, so the tile
// draws a few frames a second, and says so.
func TestGridLabelShowsWhatTileDraws(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	startFeed(t, s.url(), "cam", 30, solidJPEG(t, 640, 360, color.RGBA{90, 90, 90, 255}))
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/?test-delay-ms=150")
	waitJS(t, ctx, "the tile to draw for a while", `(() => { const s = framehubGrid.stats().cam; return !!s && s.drawn >= 12; })()`, 20*time.Second)
	// The label is refreshed every 1.5 s; read it with the stats it was made from.
	waitJS(t, ctx, "a label with what the tile draws", `document.querySelector('[data-channel="cam"] .info').textContent.includes(' fps')`, 5*time.Second)
	type view struct {
		Label    string  `json:"label"`
		DrawnFPS float64 `json:"drawnFPS"`
	}
	v := eval[view](t, ctx, `({label: document.querySelector('[data-channel="cam"] .info').textContent, drawnFPS: framehubGrid.stats().cam.drawnFPS})`)
	m := regexp.MustCompile(`([0-9.]+) fps`).FindStringSubmatch(v.Label)
	if m == nil {
		t.Fatalf("label %q has no fps", v.Label)
	}
	fps, _ := strconv.ParseFloat(m[1], 64)
	if fps > 10 || fps <= 0 {
		t.Errorf("label %q says %.1f fps; the tile draws at most ~6 fps with a 150 ms decoder (stats: %.1f)", v.Label, fps, v.DrawnFPS)
	}
	if !regexp.MustCompile(`age [0-9]+ ms`).MatchString(v.Label) || !regexp.MustCompile(`640×360`).MatchString(v.Label) {
		t.Errorf("label %q; want the channel's size and the age of what it draws", v.Label)
	}
	// The title gives the channel's rate as the hub measures it (near the
	// feed's 30 fps, less on a loaded machine), far above what the tile draws.
	title := eval[string](t, ctx, `document.querySelector('[data-channel="cam"] .info').title`)
	var chans []protocol.ChannelInfo
	resp, err := http.Get(s.url() + "/api/channels")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&chans)
	resp.Body.Close()
	tm := regexp.MustCompile(`([0-9.]+) fps at the hub`).FindStringSubmatch(title)
	if tm == nil || len(chans) != 1 {
		t.Fatalf("label title %q, channels %+v; want the channel's own rate there", title, chans)
	}
	hubFPS, _ := strconv.ParseFloat(tm[1], 64)
	if hubFPS < chans[0].FPS-5 || hubFPS > chans[0].FPS+5 || hubFPS < 2*fps {
		t.Errorf("label title %q; want the channel's own rate there (the hub lists %.1f fps; the tile draws %.1f)", title, chans[0].FPS, fps)
	}
}

// TestGridFitsTiles: each tile decodes for the width it is shown at in
// device pixels (at least that wide, less than twice: a 1920-wide frame
// at a reduced JPEG scale, drawn as decoded; or scaled to it when no
// reduction comes close), and fits again when the window is resized or
// the device pixel ratio changes.
func TestGridFitsTiles(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	startFeed(t, s.url(), "a", 15, solidJPEG(t, 1920, 1080, color.RGBA{200, 40, 40, 255}))
	startFeed(t, s.url(), "b", 15, solidJPEG(t, 1920, 1080, color.RGBA{40, 200, 40, 255}))
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	// fitted: every tile decodes its frames for the width it is shown at.
	const fitted = `(() => {
		const st = framehubGrid.stats();
		const cards = document.querySelectorAll('.card');
		if (cards.length !== 2) return false;
		for (const c of cards) {
			const cv = c.querySelector('canvas');
			const want = Math.round(cv.clientWidth * devicePixelRatio);
			const s = st[c.dataset.channel];
			if (!s || s.drawn < 2 || s.maxWidth !== want || s.canvasWidth < want || s.canvasWidth >= 2 * want) return false;
		}
		return true;
	})()`
	const tileWidth = `framehubGrid.stats()[document.querySelector('.card').dataset.channel].maxWidth`
	width := func() int { return eval[int](t, ctx, tileWidth) }
	waitJS(t, ctx, "tiles fitted", fitted, 15*time.Second)
	w0 := width()
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(700, 900)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "tiles fitted to a narrower window, one a row", fitted+` && `+tileWidth+` > `+strconv.Itoa(w0), 10*time.Second)
	w1 := width()
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(700, 900, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "tiles fitted to twice the device pixels", fitted+` && devicePixelRatio === 2`, 10*time.Second)
	if w2 := width(); w2 < 2*w1-4 || w2 > 2*w1+4 {
		t.Errorf("tile %d device pixels wide at ratio 1, %d at ratio 2; want twice", w1, w2)
	}
	t.Logf("tile widths: %d (1280-wide window), %d (700), %d (700 at ratio 2)", w0, w1, width())
}

// TestGridAsksForTheRenditionThatFits: a tile asks the hub for the
// channel's rendition that fits it in device pixels, and asks again, on
// the same connection, when it is resized past another rendition; a
// channel with one rendition is decoded at the tile's size. Resizing back
// and forth quickly sends the hub few messages.
func TestGridAsksForTheRenditionThatFits(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	red, green := color.RGBA{220, 30, 30, 255}, color.RGBA{30, 200, 30, 255}
	small := solidJPEG(t, 320, 180, green)
	small.Rendition = 320
	startRenditionFeed(t, s.url(), "two", 15, solidJPEG(t, 1280, 720, red), small)
	startFeed(t, s.url(), "one", 15, solidJPEG(t, 1280, 720, red))
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	// The rendition messages the tiles have sent (their tile workers' sockets
	// are out of the page's reach; each player counts its own).
	const switches = `Object.values(framehubGrid.stats()).reduce((n, s) => n + s.asks, 0)`
	centreOf := func(name string) [3]int { return tileCentre(t, ctx, name) }
	// About 290 device pixels a tile: "two" draws its 320 rendition, "one"
	// its only picture decoded at the tile's size.
	waitJS(t, ctx, "the small rendition drawn", `(() => { const s = framehubGrid.stats(); return !!s.two && !!s.one &&
		s.two.rendition === '320' && s.two.drawn > 3 && s.one.drawn > 3; })()`, 15*time.Second)
	if c := centreOf("two"); !near(c, green, 40) {
		t.Errorf("tile two shows rgb%v; want its 320 rendition's green", c)
	}
	one := eval[[]int](t, ctx, `(() => { const c = document.querySelector('[data-channel="one"] canvas'); return [c.width, Math.round(c.clientWidth * devicePixelRatio)]; })()`)
	if one[0] < one[1] || one[0] >= 2*one[1] || !near(centreOf("one"), red, 40) {
		t.Errorf("tile one %d wide, shown %d device pixels wide, centre rgb%v; want its main picture decoded for the tile's size (at least as wide, less than twice)", one[0], one[1], centreOf("one"))
	}
	waitJS(t, ctx, "the tile's label to say what it draws", `document.querySelector('[data-channel="two"] .info').textContent.startsWith('1280×720 (drawing 320×180)')`, 5*time.Second)
	shot(t, ctx, "grid-renditions")
	// Twice the device pixels (about 630): the main picture fits, asked
	// for on the same connection.
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(700, 900, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the main picture drawn", `framehubGrid.stats().two.rendition === 'main'`, 10*time.Second)
	if c := centreOf("two"); !near(c, red, 40) {
		t.Errorf("tile two shows rgb%v after growing; want the main picture's red", c)
	}
	if st := eval[playerStats](t, ctx, `framehubGrid.stats().two`); st.Reconnects != 0 {
		t.Errorf("tile two reconnected %d times to change rendition; want the control message", st.Reconnects)
	}
	if n := len(s.requested(protocol.PathSubscribe + "two")); n != 1 {
		t.Errorf("%d subscriptions of two; want one, switched in place", n)
	}
	// Flapping between the two sizes 20 times in two seconds.
	before := eval[int](t, ctx, switches)
	for i := range 20 {
		scale := 1.0
		if i%2 == 0 {
			scale = 2
		}
		chromedp.Run(ctx, chromedp.EmulateViewport(700, 900, chromedp.EmulateScale(scale)))
		time.Sleep(100 * time.Millisecond)
	}
	// The last size (ratio 1) wants the 320 rendition again.
	waitJS(t, ctx, "the tiles to settle", `framehubGrid.stats().two.rendition === '320'`, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // the stats of the tile workers are up to 250 ms old
	if n := eval[int](t, ctx, switches) - before; n < 1 || n > 6 {
		t.Errorf("%d rendition messages for 20 resizes in 2 s; want a few (the tiles wait for the size to settle), and at least the way back to 320", n)
	}
}

// TestGridFollowsARenditionThatAppears: a tile resized while its channel
// has one picture sends the hub nothing (nothing would change); when a
// rendition appears later, the tile asks again for its width if the
// hub's pick for the width it last asked for is no longer the right one.
// Here the tile asked for ~290, grew to ~630 (the main picture either
// way), then a 320 rendition appears: for 290 the hub would send that, for
// 630 the main picture, which the tile must keep drawing.
func TestGridFollowsARenditionThatAppears(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	red, green := color.RGBA{220, 30, 30, 255}, color.RGBA{30, 200, 30, 255}
	startFeed(t, s.url(), "late", 15, solidJPEG(t, 1280, 720, red))
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "the tile drawing", `(framehubGrid.stats().late || {}).drawn > 3`, 15*time.Second)
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(700, 900, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the tile fitted to twice the pixels", `framehubGrid.stats().late.maxWidth > 400`, 10*time.Second)
	small := solidJPEG(t, 320, 180, green)
	small.Rendition = 320
	startRenditionOnlyFeed(t, s.url(), "late", 15, small)
	testutil.Eventually(t, 10*time.Second, "the hub to list the 320 rendition live", func() bool {
		resp, err := http.Get(s.url() + "/api/channels")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var list []protocol.ChannelInfo
		json.NewDecoder(resp.Body).Decode(&list)
		for _, c := range list {
			for _, r := range c.Renditions {
				if c.Name == "late" && r.Name == "320" && r.Live {
					return true
				}
			}
		}
		return false
	})
	// The grid reads the channel list every 1.5 s: after two readings,
	// every frame the tile draws is still the main picture.
	time.Sleep(3500 * time.Millisecond)
	type drawn struct {
		N, Small int
	}
	d := evalAwait[drawn](t, ctx, `(async () => { const ds = (await framehubGrid.timings()).late.draws.filter((x) => performance.now() - x.at < 2000);
		return {N: ds.length, Small: ds.filter((x) => x.rendition !== 0).length}; })()`)
	if d.N == 0 || d.Small != 0 {
		t.Errorf("in the last 2 s the tile, about 630 device pixels wide, drew %d frames, %d of the 320 rendition; want main only", d.N, d.Small)
	}
	if c := tileCentre(t, ctx, "late"); !near(c, red, 40) {
		t.Errorf("tile shows rgb%v; want the main picture's red", c)
	}
}

// TestGridDecodesWithImageDecoder: a tile's JPEG is decoded by WebCodecs'
// ImageDecoder where the page has it (here: Chromium, on a loopback
// origin, which counts as secure), at a reduced scale when the frame is
// several times wider than the tile, and by createImageBitmap where it has
// not (the test-decoder hook takes that path on purpose). ImageDecoder's
// picture is drawn at the size it was decoded at (here 320 wide: the 320
// rendition, or the 1280-wide picture at a quarter scale) and the page
// scales the canvas to the tile; createImageBitmap's at the tile's size in
// device pixels. A full-size
// 720p player decodes with createImageBitmap, which is the cheaper of the
// two for a picture that big.
func TestGridDecodesWithImageDecoder(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	red, green, blue := color.RGBA{220, 30, 30, 255}, color.RGBA{30, 200, 30, 255}, color.RGBA{30, 30, 220, 255}
	small := solidJPEG(t, 320, 180, green)
	small.Rendition = 320
	startRenditionFeed(t, s.url(), "two", 15, solidJPEG(t, 1280, 720, red), small)
	startFeed(t, s.url(), "one", 15, solidJPEG(t, 1280, 720, blue))
	ctx := browser(t)
	for _, c := range []struct{ query, want, in string }{
		{"", "ImageDecoder", "worker"},
		{"?test-decoder=createImageBitmap", "createImageBitmap", "worker"},
		{"?test-grid=page", "ImageDecoder", "page"},
	} {
		navigate(t, ctx, s.url()+"/"+c.query)
		waitJS(t, ctx, "both tiles drawing", `(() => { const s = framehubGrid.stats(); return !!s.two && !!s.one &&
			s.two.rendition === '320' && s.two.drawn > 3 && s.one.drawn > 3; })()`, 15*time.Second)
		for name, colour := range map[string]color.RGBA{"two": green, "one": blue} {
			st := eval[playerStats](t, ctx, `framehubGrid.stats().`+name)
			size := eval[[]int](t, ctx, `(() => { const c = document.querySelector('[data-channel="`+name+`"] canvas'); return [c.width, Math.round(c.clientWidth * devicePixelRatio)]; })()`)
			if st.Decoder != c.want || st.Bad != 0 || st.DrawsIn != c.in {
				t.Errorf("grid%s: tile %s decoded by %q in the %s with %d bad frames (%s); want %s in the %s, none bad",
					c.query, name, st.Decoder, st.DrawsIn, st.Bad, st.Problem, c.want, c.in)
			}
			want := size[1]
			if c.want == "ImageDecoder" {
				want = 320
			}
			if px := tileCentre(t, ctx, name); size[0] != want || !near(px, colour, 40) {
				t.Errorf("grid%s: tile %s %d wide, shown %d device pixels wide, centre rgb%v; want rgb%v drawn %d wide", c.query, name, size[0], size[1], px, colour, want)
			}
		}
	}
	// The rule itself, in the page: what is decoded by which, and at what
	// reduction.
	type rule struct {
		W, H, Max int
		By        string
		K         int
	}
	rules := eval[[]rule](t, ctx, `[[1280, 720, 289], [1280, 720, 320], [1280, 720, 0], [640, 360, 0], [320, 180, 289], [1920, 1080, 700], [1920, 1080, 300]].map(([w, h, m]) => ({
		W: w, H: h, Max: m, K: FH.jpegReduction(w, m), By: FH.decodeWith({ codec: FH.CODEC_JPEG, width: w, height: h, maxWidth: m }) }))`)
	want := []rule{{1280, 720, 289, "ImageDecoder", 4}, {1280, 720, 320, "ImageDecoder", 4}, {1280, 720, 0, "createImageBitmap", 1},
		{640, 360, 0, "ImageDecoder", 1}, {320, 180, 289, "ImageDecoder", 1}, {1920, 1080, 700, "createImageBitmap", 2}, {1920, 1080, 300, "ImageDecoder", 4}}
	for i := range want {
		if i >= len(rules) || rules[i] != want[i] {
			t.Errorf("decode rules %+v; want %+v", rules, want)
			break
		}
	}
	if raw := eval[string](t, ctx, `FH.decodeWith({ codec: FH.CODEC_RAW, width: 32, height: 32, maxWidth: 0 })`); raw != "createImageBitmap" {
		t.Errorf("raw frames decoded by %q; want createImageBitmap (ImageDecoder reads only encoded images)", raw)
	}
	// The channel page's player, full size on 720p: createImageBitmap.
	navigate(t, ctx, s.url()+"/view/one?rendition=main")
	waitJS(t, ctx, "the player drawing", `framehub.player.stats().drawn > 3`, 15*time.Second)
	if st := stats(t, ctx); st.Decoder != "createImageBitmap" || !near(centre(t, ctx), blue, 40) {
		t.Errorf("full-size player decoded by %q, centre rgb%v; want createImageBitmap, blue", st.Decoder, centre(t, ctx))
	}
}

// TestGridTileWorkerFails: a tile worker that fails (here its script
// throws as it loads; one that fails later is ended the same way) is
// ended; its tile draws on the page instead, on a fresh canvas in the
// place of the one handed to the worker, with the reason in its stats; a
// tile added afterwards is drawn by a new worker.
func TestGridTileWorkerFails(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	green, blue := color.RGBA{30, 200, 30, 255}, color.RGBA{30, 30, 220, 255}
	startFeed(t, s.url(), "cam", 15, solidJPEG(t, 320, 180, green))
	ctx := browser(t)
	interceptScript(t, ctx, "/static/tileworker.js", func(n int) (string, bool) {
		return "throw new Error('planted fault');", n == 1
	})
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "the tile drawing on the page", `(() => { const s = framehubGrid.stats().cam;
		return !!s && s.drawsIn === 'page' && s.drawn > 3 && s.problem.startsWith('tile worker failed') && s.problem.includes('planted fault') &&
			document.querySelectorAll('[data-channel="cam"] canvas').length === 1; })()`, 15*time.Second)
	if c := tileCentre(t, ctx, "cam"); !near(c, green, 40) {
		t.Errorf("tile shows rgb%v after its worker failed; want green", c)
	}
	startFeed(t, s.url(), "later", 15, solidJPEG(t, 320, 180, blue))
	waitJS(t, ctx, "the new tile drawn by a worker", `(() => { const s = framehubGrid.stats().later; return !!s && s.drawn > 3 && s.drawsIn === 'worker'; })()`, 15*time.Second)
	if c := tileCentre(t, ctx, "later"); !near(c, blue, 40) {
		t.Errorf("new tile shows rgb%v; want blue", c)
	}
}

// TestGridWithoutTileWorkers: a browser without OffscreenCanvas, and one
// where no worker can be started, draw the tiles on the page, as before
// tile workers; the second decodes on the page too.
func TestGridWithoutTileWorkers(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	green := color.RGBA{30, 200, 30, 255}
	startFeed(t, s.url(), "cam", 15, solidJPEG(t, 320, 180, green))
	for _, c := range []struct {
		name, script string
		worker       bool // decodes in a decoder worker
	}{
		{"no OffscreenCanvas", `delete window.OffscreenCanvas;`, true},
		{"no workers", `window.Worker = function () { throw new Error('no workers here'); };`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := browser(t)
			if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: c.script}); err != nil {
				t.Fatal(err)
			}
			navigate(t, ctx, s.url()+"/")
			waitJS(t, ctx, "the tile drawing on the page", `(() => { const s = framehubGrid.stats().cam; return !!s && s.drawn > 3 && s.drawsIn === 'page'; })()`, 15*time.Second)
			if st := eval[playerStats](t, ctx, `framehubGrid.stats().cam`); st.Worker != c.worker || st.Bad != 0 {
				t.Errorf("stats %+v; want decoding in a worker %v, no bad frames", st, c.worker)
			}
			if px := tileCentre(t, ctx, "cam"); !near(px, green, 40) {
				t.Errorf("tile shows rgb%v; want green", px)
			}
		})
	}
}
