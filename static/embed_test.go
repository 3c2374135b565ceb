package static_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"framehub/hub"
)

// embedPage serves, on its own loopback origin, a page that loads the
// embeddable player from the hub at hubURL and shows channel with it
// (attrs are the element's other attributes, already escaped).
func embedPage(t *testing.T, hubURL, channel, attrs string) *httptest.Server {
	t.Helper()
	page := `<!doctype html><html><head><meta charset="utf-8"><title>dashboard</title>
<script src="` + html.EscapeString(hubURL) + `/static/framehub-player.js"></script></head>
<body><h1>someone else's dashboard</h1>
<framehub-player id="p" hub="` + html.EscapeString(hubURL) + `" channel="` + html.EscapeString(channel) + `" ` + attrs + ` style="width: 480px"></framehub-player>
</body></html>`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// embedCentre returns the RGB of the centre of what the element shows, from
// a screenshot of it: what a person sees, not what a script reports.
func embedCentre(t *testing.T, ctx context.Context) [3]int {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.ID("p")))
	if err != nil {
		t.Fatalf("screenshot of the element: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r := img.Bounds()
	cr, cg, cb, _ := img.At((r.Min.X+r.Max.X)/2, (r.Min.Y+r.Max.Y)/3).RGBA()
	return [3]int{int(cr >> 8), int(cg >> 8), int(cb >> 8)}
}

const embedStatusJS = `document.getElementById('p').shadowRoot.querySelector('.status').textContent`

// TestEmbedOnAllowedAndForeignOrigins: <framehub-player> on a page served
// from another loopback origin draws a live channel when the hub's
// --allowed-origins names that origin: the rendition that fits the
// element, decoded without a worker (a page may not start one from
// another origin); on a page whose origin the hub does not allow it draws
// nothing, says why, and the hub counts the refusals.
func TestEmbedOnAllowedAndForeignOrigins(t *testing.T) {
	ctx := browser(t)
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	// A 720p channel with 640 and 320 renditions, each its own colour.
	red := color.RGBA{220, 30, 30, 255}
	r640, r320 := solidJPEG(t, 640, 360, red), solidJPEG(t, 320, 180, color.RGBA{30, 30, 220, 255})
	r640.Rendition, r320.Rendition = 640, 320
	startRenditionFeed(t, s.url(), "cam", 20, solidJPEG(t, 1280, 720, color.RGBA{30, 200, 30, 255}), r640, r320)

	page := embedPage(t, s.url(), "cam", "")
	s.h.Reload(hub.Access{AllowedOrigins: []string{page.URL}})
	navigate(t, ctx, page.URL)
	waitJS(t, ctx, "the element to draw", `(() => { const s = document.getElementById('p').stats(); return !!s && s.drawn > 5; })()`, 20*time.Second)
	// 480 CSS pixels wide: it draws the 640 rendition (the narrowest at
	// least that wide), decoded on the main thread, and its adaptive
	// player has read the channel's renditions across origins (CORS).
	waitJS(t, ctx, "the adaptive player to know the renditions", `(() => { const a = document.getElementById('p').stats().adapt;
		return !!a && a.rendition === '640'; })()`, 15*time.Second)
	st := eval[playerStats](t, ctx, `document.getElementById('p').stats()`)
	if st.Worker || st.Width != 640 || st.Height != 360 || st.Rendition != "640" {
		t.Errorf("element stats %+v; want the 640 rendition, decoded on the main thread", st)
	}
	if c := embedCentre(t, ctx); !near(c, red, 40) {
		t.Errorf("element shows rgb%v at its centre; want the 640 rendition's red", c)
	}
	if text := eval[string](t, ctx, embedStatusJS); !strings.Contains(text, "cam") || !strings.Contains(text, "fps") {
		t.Errorf("element status %q; want the channel and what it draws", text)
	}
	// The page's own styles do not reach into the element.
	eval[bool](t, ctx, `(() => { const st = document.createElement('style'); st.textContent = 'canvas { display: none !important }'; document.head.append(st); return true; })()`)
	if vis := eval[string](t, ctx, `getComputedStyle(document.getElementById('p').shadowRoot.querySelector('canvas')).display`); vis != "block" {
		t.Errorf("the page's CSS hid the element's canvas (display %s)", vis)
	}
	shot(t, ctx, "embed-allowed")

	// A page on an origin the hub does not allow.
	before := s.h.Stats().Refused["foreign_origin"]
	foreign := embedPage(t, s.url(), "cam", "")
	navigate(t, ctx, foreign.URL)
	waitJS(t, ctx, "the element to say it is not allowed", embedStatusJS+`.includes('does not allow this page')`, 15*time.Second)
	if st := eval[playerStats](t, ctx, `document.getElementById('p').stats()`); st.Drawn != 0 {
		t.Errorf("element on a foreign origin drew %d frames", st.Drawn)
	}
	if got := s.h.Stats().Refused["foreign_origin"]; got <= before {
		t.Errorf("foreign_origin refusals %d, before %d; want the element's attempts counted", got, before)
	}
	shot(t, ctx, "embed-foreign")
}

// TestEmbedTokenAttack: what a page can and cannot do with the element on
// a hub that needs a view token. Given a token, the element plays, and the
// token leaves the DOM; it is sent only to the hub and channel it came
// with: a page (or a script injected into it) that points the element at
// another server gets no token there, and pointing it back does not bring
// the token back. Without a token, the element asks nobody for one (no
// form, nothing stored) and says the channel needs one.
func TestEmbedTokenAttack(t *testing.T) {
	const operator = "dashboard-server-token-5f4e3d2c1b"
	ctx := browser(t)

	// The attacker's server notes every request's credentials.
	var mu sync.Mutex
	var seen []string
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" protocols="+r.Header.Get("Sec-WebSocket-Protocol")+" authorization="+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization")
		http.Error(w, "nothing here", http.StatusNotFound)
	}))
	t.Cleanup(attacker.Close)

	auth, err := hub.NewAuth([]hub.Grant{{Token: operator, Rights: hub.RightView, Channels: []string{"*"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := startHub(t, "127.0.0.1:0", hub.Config{Auth: auth})
	startFeed(t, s.url(), "cam", 15, solidJPEG(t, 320, 180, color.RGBA{30, 30, 220, 255}))
	// The dashboard's server mints the element a short-lived view token
	// for its one channel, as the docs say to.
	req, _ := http.NewRequest(http.MethodPost, s.url()+"/api/token", strings.NewReader(`{"channel":"cam","right":"view","ttl_seconds":600}`))
	req.Header.Set("Authorization", "Bearer "+operator)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var minted struct {
		Token string `json:"token"`
	}
	json.NewDecoder(resp.Body).Decode(&minted)
	resp.Body.Close()
	token := minted.Token
	if resp.StatusCode != http.StatusOK || token == "" {
		t.Fatalf("minting a view token: %d %q", resp.StatusCode, token)
	}

	page := embedPage(t, s.url(), "cam", `token="`+token+`"`)
	s.h.Reload(hub.Access{Auth: auth, AllowedOrigins: []string{page.URL}})
	navigate(t, ctx, page.URL)
	waitJS(t, ctx, "the element to draw with its token", `(() => { const s = document.getElementById('p').stats(); return !!s && s.drawn > 3; })()`, 20*time.Second)
	leak := eval[string](t, ctx, `(() => {
		const p = document.getElementById('p');
		const out = [];
		if (p.getAttribute('token') !== null) out.push('attribute');
		if (document.documentElement.outerHTML.includes(`+strconv.Quote(token)+`)) out.push('markup');
		if (p.shadowRoot.innerHTML.includes(`+strconv.Quote(token)+`)) out.push('shadow tree');
		for (const k of Object.keys(p)) out.push('property ' + k);
		if (sessionStorage.length || localStorage.length) out.push('storage');
		return out.join(', ');
	})()`)
	if leak != "" {
		t.Errorf("the token can be read back from the element: %s", leak)
	}

	// Pointed at another server, the element goes there without the token.
	eval[bool](t, ctx, `(document.getElementById('p').setAttribute('hub', `+strconv.Quote(attacker.URL)+`), true)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if len(got) < 2 {
		t.Fatalf("the element made %d requests to the other server; want its limits fetch and WebSocket", len(got))
	}
	for _, r := range got {
		if strings.Contains(r, token) || strings.Contains(r, "framehub.auth.") || strings.Contains(r, "Bearer") {
			t.Errorf("the other server received a credential: %s", r)
		}
	}
	// Pointed back at the hub, it has no token any more.
	eval[bool](t, ctx, `(document.getElementById('p').setAttribute('hub', `+strconv.Quote(s.url())+`), true)`)
	waitJS(t, ctx, "the element to say it needs a token", embedStatusJS+`.includes('needs a view token')`, 15*time.Second)
	if st := eval[playerStats](t, ctx, `document.getElementById('p').stats()`); st.Drawn != 0 {
		t.Errorf("the element drew %d frames after it was pointed away and back; its token should be gone", st.Drawn)
	}

	// Without a token: nothing asks for one.
	bare := embedPage(t, s.url(), "cam", "")
	s.h.Reload(hub.Access{Auth: auth, AllowedOrigins: []string{page.URL, bare.URL}})
	unauthorized := s.h.Stats().Refused["unauthorized"]
	navigate(t, ctx, bare.URL)
	waitJS(t, ctx, "the element to say it needs a token", embedStatusJS+`.includes('needs a view token')`, 15*time.Second)
	if n := eval[int](t, ctx, `document.querySelectorAll('input, form').length + document.getElementById('p').shadowRoot.querySelectorAll('input, form').length + sessionStorage.length`); n != 0 {
		t.Errorf("the element without a token made %d forms, fields or stored items; it must not ask for one", n)
	}
	if got := s.h.Stats().Refused["unauthorized"]; got <= unauthorized {
		t.Errorf("unauthorized refusals %d, before %d; want the element's attempts counted", got, unauthorized)
	}
	shot(t, ctx, "embed-no-token")

	// Attribute values a page may get wrong, or use to point the element
	// somewhere else than a hub, are refused with a reason, as text.
	for _, c := range []struct{ attr, value, says, was string }{
		{"hub", "javascript:window.pwned=1", "the hub must be an http or https URL", s.url()},
		{"channel", "../<b>x</b>", "invalid channel name", "cam"},
		{"rendition", "99999999", `rendition must be "auto", "main" or a width`, "auto"},
	} {
		eval[bool](t, ctx, `(document.getElementById('p').setAttribute(`+strconv.Quote(c.attr)+`, `+strconv.Quote(c.value)+`), true)`)
		waitJS(t, ctx, c.attr+" refused", embedStatusJS+`.includes(`+strconv.Quote(c.says)+`)`, 10*time.Second)
		if n := eval[int](t, ctx, `document.getElementById('p').shadowRoot.querySelectorAll('.status *').length + (window.pwned ? 100 : 0)`); n != 0 {
			t.Errorf("%s=%q became markup or ran (%d)", c.attr, c.value, n)
		}
		eval[bool](t, ctx, `(document.getElementById('p').setAttribute(`+strconv.Quote(c.attr)+`, `+strconv.Quote(c.was)+`), true)`)
	}
}
