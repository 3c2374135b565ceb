package static_test

import (
	"image/color"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"framehub/hub"
)

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
	if title := eval[string](t, ctx, `document.querySelector('[data-channel="cam"] .info').title`); !regexp.MustCompile(`(29|30|31)\.[0-9] fps at the hub`).MatchString(title) {
		t.Errorf("label title %q; want the channel's own rate there", title)
	}
}

// TestGridFitsTiles: each tile decodes as wide as it is shown in device
// pixels, and fits again when the window is resized or the device pixel
// ratio changes.
func TestGridFitsTiles(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	startFeed(t, s.url(), "a", 15, solidJPEG(t, 1920, 1080, color.RGBA{200, 40, 40, 255}))
	startFeed(t, s.url(), "b", 15, solidJPEG(t, 1920, 1080, color.RGBA{40, 200, 40, 255}))
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	// fitted: every tile decodes its frames as wide as it is shown.
	const fitted = `(() => {
		const st = framehubGrid.stats();
		const cards = document.querySelectorAll('.card');
		if (cards.length !== 2) return false;
		for (const c of cards) {
			const cv = c.querySelector('canvas');
			const want = Math.round(cv.clientWidth * devicePixelRatio);
			const s = st[c.dataset.channel];
			if (!s || s.drawn < 2 || s.maxWidth !== want || cv.width !== want) return false;
		}
		return true;
	})()`
	width := func() int { return eval[int](t, ctx, `document.querySelector('.card canvas').width`) }
	waitJS(t, ctx, "tiles fitted", fitted, 15*time.Second)
	w0 := width()
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(700, 900)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "tiles fitted to a narrower window, one a row", fitted+` && document.querySelector('.card canvas').width > `+strconv.Itoa(w0), 10*time.Second)
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
