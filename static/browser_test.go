package static_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"framehub/hub"
	"framehub/internal/testutil"
	"framehub/protocol"
	"framehub/static"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// chromedp's connection to the browser winds down asynchronously.
		goleak.IgnoreTopFunction("github.com/chromedp/chromedp.(*Browser).run"),
	)
}

// chromium returns the browser to drive: skipped on a developer machine
// without it, a failure in CI, where scripts/setup.sh installs it.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not installed (scripts/setup.sh installs it)")
	}
	t.Skip("chromium not installed; run scripts/setup.sh")
	return ""
}

// browser starts a headless Chromium with a fresh profile and the flags this
// machine needs, and ends it when the test does.
func browser(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		// chromedp's defaults move shared memory from /dev/shm to /tmp, where
		// every frame passed between Chromium's processes becomes disk I/O.
		chromedp.Flag("disable-dev-shm-usage", false),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// hubServer is a hub on a real loopback listener, restartable on the same
// address. It notes the URI of every request it serves.
type hubServer struct {
	addr string
	h    *hub.Hub
	srv  *http.Server
	done chan struct{}

	mu       sync.Mutex
	requests []string // request URIs, in the order they arrived
}

// requested returns the URIs of the requests served so far whose path is
// path.
func (s *hubServer) requested(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, u := range s.requests {
		if p, _, _ := strings.Cut(u, "?"); p == path {
			out = append(out, u)
		}
	}
	return out
}

func startHub(t testing.TB, addr string, cfg hub.Config) *hubServer {
	t.Helper()
	var ln net.Listener
	var err error
	for range 100 { // a just-closed port may need a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Page == nil {
		cfg.Page = static.Files
	}
	s := &hubServer{addr: ln.Addr().String(), h: hub.New(cfg), done: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.URL.RequestURI())
		s.mu.Unlock()
		s.h.ServeHTTP(w, r)
	})}
	go func() { defer close(s.done); s.srv.Serve(ln) }()
	t.Cleanup(s.stop)
	return s
}

func (s *hubServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.h.Close()
	s.srv.Close()
	<-s.done
}

func (s *hubServer) url() string { return "http://" + s.addr }

// feed publishes frames to a channel at a steady rate until stopped. The
// picture can be changed while it runs.
type feed struct {
	frame  atomic.Pointer[protocol.Frame] // the next frame to send (Seq and time are set per send)
	sent   atomic.Uint64
	query  string // added to the publish URL
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startFeed(t testing.TB, base, channel string, fps int, f *protocol.Frame) *feed {
	t.Helper()
	fd := &feed{}
	fd.frame.Store(f)
	fd.run(t, base, channel, fps, func(uint64) []*protocol.Frame { return []*protocol.Frame{fd.frame.Load()} })
	return fd
}

// startFeedFunc is startFeed with the frame for each sequence number from
// next, which runs on the feed's goroutine.
func startFeedFunc(t testing.TB, base, channel string, fps int, next func(seq uint64) *protocol.Frame) *feed {
	t.Helper()
	fd := &feed{}
	fd.run(t, base, channel, fps, func(seq uint64) []*protocol.Frame { return []*protocol.Frame{next(seq)} })
	return fd
}

// startRenditionFeed publishes, at each tick, the main frame and its
// renditions (frames[1:]), all with the same sequence number and capture
// time, on one connection, as framehub publish --renditions does.
func startRenditionFeed(t testing.TB, base, channel string, fps int, frames ...*protocol.Frame) *feed {
	t.Helper()
	fd := &feed{}
	fd.run(t, base, channel, fps, func(uint64) []*protocol.Frame { return frames })
	return fd
}

// startRenditionOnlyFeed publishes rendition f.Rendition of channel on a
// connection of its own (?rendition=N), beside the channel's main
// publisher, as a second camera output or a processing worker does.
func startRenditionOnlyFeed(t testing.TB, base, channel string, fps int, f *protocol.Frame) *feed {
	t.Helper()
	fd := &feed{query: "?" + protocol.QueryRendition + "=" + f.Rendition.String()}
	fd.run(t, base, channel, fps, func(uint64) []*protocol.Frame { return []*protocol.Frame{f} })
	return fd
}

func (fd *feed) run(t testing.TB, base, channel string, fps int, next func(seq uint64) []*protocol.Frame) {
	t.Helper()
	u, err := protocol.ChannelURL(base, protocol.PathPublish, channel)
	if err != nil {
		t.Fatal(err)
	}
	u += fd.query
	ctx, cancel := context.WithCancel(context.Background())
	fd.cancel = cancel
	fd.wg.Add(1)
	go func() {
		defer fd.wg.Done()
		var c *websocket.Conn
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		tick := time.NewTicker(time.Second / time.Duration(fps))
		defer tick.Stop()
		var buf []byte
		for seq := uint64(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if c == nil { // (re)connect, as a publisher would after a hub restart
				if c, _, err = websocket.DefaultDialer.Dial(u, nil); err != nil {
					c = nil
					continue
				}
			}
			now := time.Now().UnixNano()
			failed := false
			for _, f := range next(seq) {
				fr := *f
				fr.Seq, fr.CaptureTime = seq, now
				buf = protocol.AppendFrame(buf[:0], &fr)
				if failed = c.WriteMessage(websocket.BinaryMessage, buf) != nil; failed {
					break
				}
			}
			if failed {
				c.Close()
				c = nil
				continue
			}
			fd.sent.Add(1)
		}
	}()
	t.Cleanup(fd.stop)
}

func (f *feed) stop() { f.cancel(); f.wg.Wait() }

// solidJPEG is a frame of one colour.
func solidJPEG(t testing.TB, w, h int, c color.RGBA) *protocol.Frame {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
	}
	return jpegFrame(t, img, 90)
}

func jpegFrame(t testing.TB, img image.Image, q int) *protocol.Frame {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	r := img.Bounds()
	return &protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey,
		Width: uint32(r.Dx()), Height: uint32(r.Dy())}, Payload: b.Bytes()}
}

// evalTimeout bounds one evaluation: a page too busy to answer (a
// benchmark on an overloaded machine) fails its test instead of hanging it.
const evalTimeout = time.Minute

// eval runs JavaScript in the page.
func eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", js, err)
	}
	return v
}

// evalAwait evaluates JavaScript that gives a promise, and returns what
// the promise resolves to.
func evalAwait[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", js, err)
	}
	return v
}

// waitJS polls a JavaScript condition until it is true.
func waitJS(t testing.TB, ctx context.Context, what, js string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		tctx, cancel := context.WithTimeout(ctx, d)
		ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			shot(t, ctx, "timeout")
			t.Fatalf("timed out after %v waiting for %s (%s; last error %v)", d, what, js, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func navigate(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
}

// shot saves a screenshot in the test's temp dir (never committed) and
// logs where, for a developer to look at.
func shot(t testing.TB, ctx context.Context, name string) {
	b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return
	}
	p := filepath.Join(t.TempDir(), name+".png")
	if os.WriteFile(p, b, 0o644) == nil {
		t.Logf("screenshot: %s", p)
		if dir := os.Getenv("FRAMEHUB_SCREENSHOTS"); dir != "" {
			os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644)
		}
	}
}

type playerStats struct {
	State      string   `json:"state"`
	Received   int      `json:"received"`
	Drawn      int      `json:"drawn"`
	FPS        int      `json:"fps"`
	AgeP50     float64  `json:"ageP50"`
	AgeP99     float64  `json:"ageP99"`
	Skipped    int      `json:"skipped"`
	Dropped    int      `json:"dropped"`
	Bad        int      `json:"bad"`     // frames skipped: refused by the parser, or their decode failed
	BadMeta    int      `json:"badMeta"` // frames drawn without the metadata the page could not use
	Problem    string   `json:"problem"` // the last reason for either
	LastSeq    string   `json:"lastSeq"`
	Width      int      `json:"width"`
	Height     int      `json:"height"`
	Codec      string   `json:"codec"`
	Rendition  string   `json:"rendition"` // of the frame drawn last: "main" or its width
	Reconnects int      `json:"reconnects"`
	Stale      bool     `json:"stale"`
	Labels     []string `json:"labels"`
	Worker     bool     `json:"worker"`
	Decoder    string   `json:"decoder"` // how the last frame was decoded: "ImageDecoder" or "createImageBitmap"
	DrawsIn    string   `json:"drawsIn"` // the thread that receives, decodes and draws: "worker" or "page"
}

func stats(t testing.TB, ctx context.Context) playerStats {
	return eval[playerStats](t, ctx, `framehub.player.stats()`)
}

// centre returns the RGB of the canvas's centre pixel.
func centre(t testing.TB, ctx context.Context) [3]int {
	return eval[[3]int](t, ctx, `(() => {
		const c = document.getElementById('canvas');
		const d = c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
		return [d[0], d[1], d[2]];
	})()`)
}

func near(a [3]int, b color.RGBA, tol int) bool {
	d := func(x int, y uint8) int {
		if x > int(y) {
			return x - int(y)
		}
		return int(y) - x
	}
	return d(a[0], b.R) <= tol && d(a[1], b.G) <= tol && d(a[2], b.B) <= tol
}

func TestGridListsChannelsLive(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{ChannelTTL: time.Second})
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "the empty state", `!document.getElementById('empty').hidden && document.getElementById('publish-hint').textContent.includes('framehub publish --hub `+s.url()+`')`, 10*time.Second)

	startFeed(t, s.url(), "alpha", 15, solidJPEG(t, 320, 180, color.RGBA{220, 20, 20, 255}))
	beta := startFeed(t, s.url(), "beta", 15, solidJPEG(t, 320, 180, color.RGBA{20, 200, 20, 255}))
	// Both appear without a reload, and both thumbnails draw live frames.
	waitJS(t, ctx, "two live cards", `(() => {
		const st = framehubGrid.stats();
		return framehubGrid.channels().sort().join() === 'alpha,beta' && st.alpha.drawn > 3 && st.beta.drawn > 3 &&
			document.getElementById('empty').hidden;
	})()`, 15*time.Second)
	// The label is rewritten twice a second with what the tile draws.
	waitJS(t, ctx, "alpha's label", `/^320×180 .* fps .*age .* 1 viewer$/.test(document.querySelector('[data-channel="alpha"] .info').textContent)`, 5*time.Second)
	shot(t, ctx, "grid")
	// A channel that stops publishing leaves the grid once its TTL passes.
	beta.stop()
	waitJS(t, ctx, "beta to leave", `framehubGrid.channels().join() === 'alpha'`, 15*time.Second)
}

func TestPlayerDrawsFramesAndColours(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	red, blue := color.RGBA{230, 20, 20, 255}, color.RGBA{20, 20, 230, 255}
	fd := startFeed(t, s.url(), "cam", 20, solidJPEG(t, 640, 360, red))
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "frames drawn", `framehub.player.stats().drawn >= 5`, 15*time.Second)
	first := stats(t, ctx)
	if first.Width != 640 || first.Height != 360 || first.Codec != "jpeg" || first.State != "live" || !first.Worker {
		t.Fatalf("player stats %+v; want 640x360 jpeg, live, decoding in a worker", first)
	}
	if c := centre(t, ctx); !near(c, red, 30) {
		t.Fatalf("centre pixel %v; want red %v", c, red)
	}
	fd.frame.Store(solidJPEG(t, 640, 360, blue))
	waitJS(t, ctx, "the picture to turn blue", `(() => {
		const c = document.getElementById('canvas');
		const d = c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
		return d[2] > 200 && d[0] < 50;
	})()`, 10*time.Second)
	later := stats(t, ctx)
	if later.Drawn <= first.Drawn {
		t.Fatalf("frame counter did not rise: %d then %d", first.Drawn, later.Drawn)
	}
	text := eval[string](t, ctx, `document.getElementById('stats').textContent`)
	if !strings.Contains(text, "640×360") || !strings.Contains(text, "fps") || !strings.Contains(text, "skipped") {
		t.Errorf("stats line %q", text)
	}
	shot(t, ctx, "player")

	// The save button produces a JPEG of the canvas.
	saved, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`new Promise((resolve) => {
		const orig = URL.createObjectURL;
		URL.createObjectURL = (b) => { URL.createObjectURL = orig; resolve({type: b.type, size: b.size}); return orig(b); };
		document.getElementById('save').click();
	})`, chromedp.EvalAwaitPromise))
	if err != nil || saved["type"] != "image/jpeg" || saved["size"].(float64) < 100 {
		t.Fatalf("save produced %v (%v); want a JPEG", saved, err)
	}
}

func TestRawFramesAreDrawn(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	w, h := 64, 48
	px := make([]byte, w*h*3)
	for i := 0; i < len(px); i += 3 {
		px[i], px[i+1], px[i+2] = 10, 200, 30 // BGR: green
	}
	startFeed(t, s.url(), "raw", 10, &protocol.Frame{Header: protocol.Header{Codec: protocol.CodecRaw,
		ElemType: protocol.ElemUint8, Channels: 3, Width: uint32(w), Height: uint32(h)}, Payload: px})
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/raw")
	waitJS(t, ctx, "a raw frame", `framehub.player.stats().drawn > 0`, 15*time.Second)
	if c := centre(t, ctx); c != [3]int{30, 200, 10} {
		t.Fatalf("centre of raw BGR(10,200,30) frame is rgb%v; want exactly rgb(30,200,10)", c)
	}
}

// TestSlowPageStaysFresh: a page that needs 250 ms per frame on a 30 fps
// channel skips frames instead of queueing them. Checked on what the page
// draws, relative to the run (a loaded machine slows every decode): each
// draw is a newer frame, several frames newer than the one before (a queue
// draws them all, one after another), and the age of what it draws stays
// where it started, while a queue would be seconds behind after these
// draws.
func TestSlowPageStaysFresh(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	fd := startFeed(t, s.url(), "cam", 30, solidJPEG(t, 640, 360, color.RGBA{90, 90, 90, 255}))
	ctx := browser(t)
	// Each decode takes an extra 250 ms: the page can draw at most 4 fps of
	// a 30 fps channel.
	const decodeDelayMS = 250
	navigate(t, ctx, s.url()+fmt.Sprintf("/view/cam?test-delay-ms=%d", decodeDelayMS))
	waitJS(t, ctx, "frames drawn", `framehub.player.stats().drawn >= 3`, 15*time.Second)
	var seqs []uint64
	drawn := stats(t, ctx).Drawn
	for range 10 {
		waitJS(t, ctx, "the next frame drawn", fmt.Sprintf(`framehub.player.stats().drawn > %d`, drawn), 10*time.Second)
		st := stats(t, ctx)
		drawn = st.Drawn
		var seq uint64
		fmt.Sscan(st.LastSeq, &seq)
		if len(seqs) > 0 && seq <= seqs[len(seqs)-1] {
			t.Fatalf("sequence numbers did not increase: %v then %d", seqs, seq)
		}
		seqs = append(seqs, seq)
	}
	ages := eval[[]float64](t, ctx, `framehub.player.s.ages`) // of every frame drawn, in order
	st := stats(t, ctx)
	t.Logf("drawn %v; ages %.0f; %+v", seqs, ages, st)
	// Each draw is the newest frame when the decoder came free: at 30 fps,
	// a 250 ms decode leaves several frames between draws.
	gaps := make([]float64, len(seqs)-1)
	for i := range gaps {
		gaps[i] = float64(seqs[i+1] - seqs[i])
	}
	if gap := testutil.Median(gaps); gap < 2 {
		t.Errorf("the page drew frames %v, %.0f apart (median); want the newest each time (several apart), not each in turn", seqs, gap)
	}
	// The age is the decode and the one frame that waits for it, however
	// long the page runs: the last quarter of the draws are no older than
	// the first quarter by more than two decodes.
	k := max(len(ages)/4, 2)
	if first, last := testutil.Median(ages[:k]), testutil.Median(ages[len(ages)-k:]); last > first+2*decodeDelayMS {
		t.Errorf("the last frames drawn were %.0f ms old (median of %d), the first ones %.0f ms; want no growth beyond two decodes (%d ms): frames queue", last, k, first, 2*decodeDelayMS)
	}
	// Credit mode: the hub held back what the page could not take, so the
	// page received about what it drew, not all 30 fps.
	sent := fd.sent.Load()
	if float64(st.Received) > 0.5*float64(sent) {
		t.Errorf("page received %d of %d frames sent; credit mode should have held most back in the hub", st.Received, sent)
	}
	var chans []protocol.ChannelInfo
	resp, err := http.Get(s.url() + "/api/channels")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&chans)
	resp.Body.Close()
	if len(chans) != 1 || chans[0].Skipped == 0 {
		t.Errorf("hub counted no skipped frames for the slow page: %+v", chans)
	}
}

func TestReconnectAfterHubRestart(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	addr := s.addr
	fd := startFeed(t, s.url(), "cam", 15, solidJPEG(t, 320, 180, color.RGBA{200, 200, 0, 255}))
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "frames drawn", `framehub.player.stats().drawn >= 3`, 15*time.Second)
	s.stop()
	waitJS(t, ctx, "the page to say it is reconnecting", `document.getElementById('state').textContent.startsWith('reconnecting in')`, 10*time.Second)
	shot(t, ctx, "reconnecting")
	waitJS(t, ctx, "the no-live-video mark", `!document.getElementById('nolive').hidden`, 10*time.Second)
	before := stats(t, ctx).Drawn
	restarted := time.Now()
	startHub(t, addr, hub.Config{})
	_ = fd // the feed reconnects by itself
	waitJS(t, ctx, "frames after the restart", fmt.Sprintf(`(() => { const s = framehub.player.stats(); return s.drawn > %d + 3 && s.state === 'live' && s.reconnects >= 1 && !s.stale; })()`, before), 20*time.Second)
	t.Logf("page drew frames again %.1fs after the hub restarted", time.Since(restarted).Seconds())
}

func TestHubDataIsShownAsText(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	f := solidJPEG(t, 320, 180, color.RGBA{0, 0, 0, 255})
	f.Meta = []byte(`{"boxes":[{"x":40,"y":40,"w":100,"h":80,"label":"<img src=x id=pwn onerror=\"window.pwned=1\">"}]}`)
	startFeed(t, s.url(), "cam", 10, f)
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "the box label", `document.getElementById('labels').textContent.includes('<img src=x id=pwn')`, 15*time.Second)
	if n := eval[int](t, ctx, `document.querySelectorAll('#pwn, #labels *').length + (window.pwned ? 100 : 0)`); n != 0 {
		t.Fatalf("markup from frame metadata became %d elements; want text only", n)
	}
	// The box is drawn over the picture: its left edge is green on black.
	px := eval[[3]int](t, ctx, `Array.from(document.getElementById('canvas').getContext('2d').getImageData(40, 80, 1, 1).data.slice(0, 3))`)
	if px[1] < 150 || px[0] > 120 {
		t.Errorf("box edge pixel %v; want the box's green", px)
	}
	shot(t, ctx, "boxes")
	// A channel name with markup never reaches the page: the hub refuses it.
	resp, err := http.Get(s.url() + "/view/%3Cb%3Ex%3C%2Fb%3E")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("/view/<b>x</b> = %d; want 400", resp.StatusCode)
	}
}

func TestPausesWhenHidden(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	startFeed(t, s.url(), "cam", 10, solidJPEG(t, 160, 90, color.RGBA{1, 2, 3, 255}))
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "frames drawn", `framehub.player.stats().drawn > 0`, 15*time.Second)
	subscribersOf := func(name string) int {
		var chans []protocol.ChannelInfo
		resp, err := http.Get(s.url() + "/api/channels")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&chans)
		for _, c := range chans {
			if c.Name == name {
				return c.Subscribers
			}
		}
		return -1
	}
	subscribers := func() int { return subscribersOf("cam") }
	setHidden := func(hidden bool) {
		eval[bool](t, ctx, fmt.Sprintf(`(() => {
			Object.defineProperty(document, 'hidden', {value: %v, configurable: true});
			document.dispatchEvent(new Event('visibilitychange'));
			return true;
		})()`, hidden))
	}
	setHidden(true)
	deadline := time.Now().Add(5 * time.Second)
	for subscribers() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := subscribers(); n != 0 || stats(t, ctx).State != "paused" {
		t.Fatalf("hidden tab: %d subscribers, state %q; want 0 and paused", n, stats(t, ctx).State)
	}
	setHidden(false)
	waitJS(t, ctx, "the subscription to resume", `framehub.player.stats().state === 'live'`, 10*time.Second)
	if n := subscribers(); n != 1 {
		t.Fatalf("after showing the tab: %d subscribers; want 1", n)
	}

	// The grid too, its tiles drawn by tile workers: a second channel's
	// subscribers are the grid's alone (the player page's socket may
	// outlive the navigation away from it).
	startFeed(t, s.url(), "cam2", 10, solidJPEG(t, 160, 90, color.RGBA{1, 2, 3, 255}))
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "the tile drawing", `(() => { const s = framehubGrid.stats().cam2; return !!s && s.drawn > 0 && s.drawsIn === 'worker'; })()`, 15*time.Second)
	testutil.Eventually(t, 5*time.Second, "the grid's tile subscribed", func() bool { return subscribersOf("cam2") == 1 })
	setHidden(true)
	waitJS(t, ctx, "the tiles paused", `Object.values(framehubGrid.stats()).every((s) => s.state === 'paused')`, 5*time.Second)
	testutil.Eventually(t, 5*time.Second, "no subscriber while the grid is hidden", func() bool { return subscribersOf("cam2") == 0 })
	setHidden(false)
	waitJS(t, ctx, "the tiles live again", `Object.values(framehubGrid.stats()).every((s) => s.state === 'live')`, 10*time.Second)
	if n := subscribersOf("cam2"); n != 1 {
		t.Fatalf("after showing the grid: %d subscribers of cam2; want 1", n)
	}
}

func TestGoldenVectorsInPage(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	dir := filepath.Join("..", "protocol", "testdata", "golden")
	raw, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Limits  map[string]int    `json:"limits"`
		Vectors []json.RawMessage `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	limits := fmt.Sprintf(`{maxFrameBytes: %d, maxMetaBytes: %d, maxDimension: %d, maxPixels: %d}`,
		idx.Limits["max_frame_bytes"], idx.Limits["max_meta_bytes"], idx.Limits["max_dimension"], idx.Limits["max_pixels"])
	for _, rv := range idx.Vectors {
		var want map[string]any
		json.Unmarshal(rv, &want)
		name := want["name"].(string)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, want["file"].(string)))
			if err != nil {
				t.Fatal(err)
			}
			got := eval[map[string]any](t, ctx, fmt.Sprintf(`(() => {
				const b = Uint8Array.from(atob(%q), (c) => c.charCodeAt(0));
				try {
					const f = FH.parseFrame(b, %s);
					return {codec: ['', 'jpeg', 'raw'][f.codec], width: f.width, height: f.height, seq: f.seq.toString(),
						capture_time: f.captureTimeNs.toString(), flags: f.flags, elem_type: f.elemType, channels: f.channels,
						rendition: f.rendition,
						meta: f.metaText, payload_hex: Array.from(f.payload, (x) => x.toString(16).padStart(2, '0')).join('')};
				} catch (e) {
					return {error: e.code || String(e)};
				}
			})()`, base64.StdEncoding.EncodeToString(b), limits))
			for k, v := range want {
				if k == "name" || k == "file" {
					continue
				}
				if fmt.Sprint(got[k]) != fmt.Sprint(v) {
					t.Errorf("%s: page decoded %s = %v; Go's vector says %v (page result %v)", name, k, got[k], v, got)
				}
			}
			if _, isErr := want["error"]; !isErr && got["error"] != nil {
				t.Errorf("%s: page failed with %v; want a frame", name, got["error"])
			}
		})
	}
}

func TestPagesHaveNoInlineScriptAndSendCSP(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	for _, path := range []string{"/", "/view/cam", "/static/player.js"} {
		resp, err := http.Get(s.url() + path)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: %d, CSP %q", path, resp.StatusCode, csp)
		}
		if strings.HasSuffix(path, ".js") {
			continue
		}
		html := body.String()
		if n := strings.Count(html, "<script"); n != strings.Count(html, "<script src=\"/static/") {
			t.Errorf("GET %s has an inline or foreign script", path)
		}
		if strings.Contains(html, "style=") || strings.Contains(html, "<style") || strings.Contains(html, "http://") || strings.Contains(html, "https://") {
			t.Errorf("GET %s has inline style or a foreign URL", path)
		}
	}
	// The browser enforces it: an injected inline script does not run.
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	ran := eval[bool](t, ctx, `(() => {
		const el = document.createElement('script');
		el.textContent = 'window.inlineRan = true';
		document.body.appendChild(el);
		return !!window.inlineRan;
	})()`)
	if ran {
		t.Fatal("an inline script ran despite the Content-Security-Policy")
	}
}

// noisyFrame is a 1280x720 picture with detail, so its JPEG is about the
// size of a camera frame (tens of KB), not a few hundred bytes.
func noisyFrame(t testing.TB, seed uint64) *protocol.Frame { return noisyRendition(t, seed, 0) }

// noisyRendition is noisyFrame's picture at width w (0: the main picture,
// 1280 wide), as rendition w of the channel: the same gradient, and noise
// of its own pixels, so its JPEG shrinks with its area as a camera's does.
func noisyRendition(t testing.TB, seed uint64, w int) *protocol.Frame {
	r := rand.New(rand.NewPCG(seed, 1))
	width := w
	if w == 0 {
		width = 1280
	}
	height := width * 720 / 1280
	k := 1280 / width
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := 0; y < height; y++ {
		for x := 0; x < width; x++ {
			i := img.PixOffset(x, y)
			n := uint8(r.IntN(10))
			X, Y := x*k, y*k
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(X/5)+n, uint8(Y/3)+n, uint8((X+Y)/8)+n, 255
		}
	}
	f := jpegFrame(t, img, 80)
	f.Rendition = protocol.Rendition(w)
	return f
}

// TestPageAsksForViewToken: on a hub that needs a view token the page asks
// for one, says so when it is wrong, keeps a good one in session storage
// (a reload does not ask again), and sends it as a subprotocol, so frames
// are drawn; the grid uses it for /api/channels.
func TestPageAsksForViewToken(t *testing.T) {
	const token = "page-view-token-7e6d5c4b3a"
	auth, err := hub.NewAuth([]hub.Grant{{Token: token, Rights: hub.RightView, Channels: []string{"*"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := startHub(t, "127.0.0.1:0", hub.Config{Auth: auth}) // publishing stays open on loopback
	startFeed(t, s.url(), "cam1", 15, solidJPEG(t, 320, 240, color.RGBA{0, 160, 0, 255}))
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam1")
	submit := func(tok string) {
		waitJS(t, ctx, "the token form", `!!document.getElementById('auth-token')`, 10*time.Second)
		eval[bool](t, ctx, `(() => { document.getElementById('auth-token').value = `+strconv.Quote(tok)+`;
			document.getElementById('auth').requestSubmit(); return true; })()`)
	}
	// The prompt reads well: WCAG AA contrast (4.5:1) for its text, the
	// field and the button.
	waitJS(t, ctx, "the token form", `!!document.getElementById('auth-token')`, 10*time.Second)
	shot(t, ctx, "token-prompt")
	if ratio := eval[float64](t, ctx, contrastJS); ratio < 4.5 {
		t.Fatalf("token prompt contrast %.2f:1; want at least 4.5:1", ratio)
	}
	submit("not-the-token-at-all")
	waitJS(t, ctx, "the form again, saying the token was refused",
		`!!document.getElementById('auth') && document.getElementById('auth').textContent.includes('refused')`, 10*time.Second)
	submit(token)
	waitJS(t, ctx, "frames drawn with the token", `framehub.player.stats().drawn > 3`, 15*time.Second)
	if c := centre(t, ctx); !near(c, color.RGBA{0, 160, 0, 255}, 40) {
		t.Fatalf("centre pixel %v, want green", c)
	}
	if got := eval[string](t, ctx, `sessionStorage.getItem('framehub.token')`); got != token {
		t.Fatalf("session storage holds %q", got)
	}
	navigate(t, ctx, s.url()+"/view/cam1")
	waitJS(t, ctx, "frames after a reload", `framehub.player.stats().drawn > 3`, 15*time.Second)
	if eval[bool](t, ctx, `!!document.getElementById('auth')`) {
		t.Fatal("the page asked again after a reload")
	}
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "the grid lists cam1", `framehubGrid.channels().includes('cam1')`, 10*time.Second)
	shot(t, ctx, "token-grid")
	if n := s.h.Stats().Refused["unauthorized"]; n == 0 {
		t.Fatal("the wrong token was not refused by the hub")
	}
}

// contrastJS is the lowest WCAG contrast ratio, text against the
// background it is shown on, of the token form's message, field and button.
const contrastJS = `(() => {
	const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
	const lum = (c) => {
		const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
		return 0.2126 * r + 0.7152 * g + 0.0722 * b;
	};
	const bg = (el) => {
		for (let e = el; e; e = e.parentElement) {
			const c = getComputedStyle(e).backgroundColor;
			if (c !== 'transparent' && !/^rgba\(.*, 0\)$/.test(c)) return c;
		}
		return 'rgb(255, 255, 255)';
	};
	const ratio = (el) => {
		const [a, b] = [lum(getComputedStyle(el).color), lum(bg(el))].sort((x, y) => y - x);
		return (a + 0.05) / (b + 0.05);
	};
	const form = document.getElementById('auth');
	return Math.min(ratio(form.querySelector('p')), ratio(document.getElementById('auth-token')), ratio(form.querySelector('button')));
})()`

// TestPageAsksForARendition: /view/cam?max-width=320 draws the channel's
// 320 rendition, /view/cam its main picture, and a grid tile the one that
// fits it in device pixels; the player says which it draws.
func TestPageAsksForARendition(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	red, blue := color.RGBA{230, 20, 20, 255}, color.RGBA{20, 20, 230, 255}
	main, small := solidJPEG(t, 640, 360, red), solidJPEG(t, 320, 180, blue)
	small.Rendition = 320
	u, err := protocol.ChannelURL(s.url(), protocol.PathPublish, "cam")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			at := time.Now().UnixNano()
			for _, f := range []protocol.Frame{*main, *small} {
				f.Seq, f.CaptureTime = seq, at
				if pub.WriteMessage(websocket.BinaryMessage, protocol.AppendFrame(nil, &f)) != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait(); pub.Close() })

	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/cam?max-width=320")
	waitJS(t, ctx, "the 320 rendition drawn", `framehub.player.stats().drawn >= 5 && framehub.player.stats().rendition === '320'`, 15*time.Second)
	if st := stats(t, ctx); st.Width != 320 || st.Height != 180 {
		t.Fatalf("player stats %+v; want the 320x180 rendition", st)
	}
	if c := centre(t, ctx); !near(c, blue, 30) {
		t.Fatalf("centre pixel %v; want the rendition's blue", c)
	}
	if text := eval[string](t, ctx, `document.getElementById('stats').textContent`); !strings.Contains(text, "rendition 320") {
		t.Errorf("stats line %q; want it to say it draws rendition 320", text)
	}
	navigate(t, ctx, s.url()+"/view/cam")
	waitJS(t, ctx, "the main picture drawn", `framehub.player.stats().drawn >= 5 && framehub.player.stats().rendition === 'main'`, 15*time.Second)
	if c := centre(t, ctx); !near(c, red, 30) {
		t.Fatalf("centre pixel %v; want the main picture's red", c)
	}
	navigate(t, ctx, s.url()+"/")
	waitJS(t, ctx, "the tile drawing", `(framehubGrid.stats().cam || {}).drawn >= 5`, 15*time.Second)
	got := eval[map[string]any](t, ctx, `(() => {
		const c = document.querySelector('[data-channel="cam"] canvas');
		const w = c.clientWidth * (window.devicePixelRatio || 1);
		return {want: w <= 320 ? '320' : 'main', got: framehubGrid.stats().cam.rendition, w};
	})()`)
	if got["want"] != got["got"] {
		t.Fatalf("a tile %v device pixels wide draws rendition %v; want %v", got["w"], got["got"], got["want"])
	}
}
