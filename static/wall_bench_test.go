package static_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"framehub/hub"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// The wall of cameras benchmark (docs/BENCHMARKS.md, "A wall of cameras"):
// channels fed by ffmpeg, each an upload of a pre-made Motion JPEG clip
// copied as it is (-c copy) at its frame rate, with its smaller renditions
// uploaded beside it; the hub in this process; headless Chromium showing
// the grid or a player; everything on this machine's cores. The figures are
// the page's own: per tile, the frames drawn per second and their age when
// drawn (from when the hub received the frame), collected from the players'
// timing over a measured window after a warm-up.
//
// wallClips are the clips of one run: one file per rendition name
// ("main", "640", "320"), the same frames at each size.
type wallClips struct {
	fps   int
	files map[string]string // rendition name -> file
	bytes map[string]int    // rendition name -> mean bytes per frame
}

// makeWallClips encodes seconds of ffmpeg's testsrc2 at w×h and fps, with
// temporal noise (a camera's grain, so frames are as big as a camera's:
// noise 10 gives ~90 KB at 720p), and the same frames scaled to each of
// widths, as Motion JPEG.
func makeWallClips(t testing.TB, w, h, fps, seconds, noise int, widths []int) wallClips {
	t.Helper()
	ffmpeg := needFFmpeg(t)
	dir := t.TempDir()
	c := wallClips{fps: fps, files: map[string]string{"main": filepath.Join(dir, "main.mjpeg")}, bytes: map[string]int{}}
	graph := fmt.Sprintf("[0]noise=alls=%d:allf=t,split=%d[main]", noise, len(widths)+1)
	for _, rw := range widths {
		graph += fmt.Sprintf("[s%d]", rw)
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d:duration=%d", w, h, fps, seconds)}
	for _, rw := range widths {
		rh := (h*rw/w + 1) &^ 1
		graph += fmt.Sprintf(";[s%d]scale=%d:%d[r%d]", rw, rw, rh, rw)
	}
	args = append(args, "-filter_complex", graph, "-map", "[main]", "-c:v", "mjpeg", "-q:v", "6", "-f", "mjpeg", c.files["main"])
	for _, rw := range widths {
		name := strconv.Itoa(rw)
		c.files[name] = filepath.Join(dir, "r"+name+".mjpeg")
		args = append(args, "-map", fmt.Sprintf("[r%d]", rw), "-c:v", "mjpeg", "-q:v", "6", "-f", "mjpeg", c.files[name])
	}
	if out, err := exec.Command(ffmpeg, args...).CombinedOutput(); err != nil {
		t.Fatalf("make clips: %v\n%s", err, out)
	}
	for name, f := range c.files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		c.bytes[name] = int(st.Size()) / (fps * seconds)
	}
	return c
}

func needFFmpeg(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg not installed (scripts/setup.sh installs it)")
		}
		t.Skip("ffmpeg not installed; run scripts/setup.sh")
	}
	return p
}

// startWallFeeder starts one ffmpeg that uploads the clips of names
// ("main" and renditions) to channel, each in a loop at the clip's frame
// rate, copied as they are. It is killed (by its PID) when the test ends.
func startWallFeeder(t testing.TB, hubURL, channel string, c wallClips, names []string) {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin"}
	for _, n := range names {
		args = append(args, "-re", "-framerate", strconv.Itoa(c.fps), "-stream_loop", "-1", "-f", "mjpeg", "-i", c.files[n])
	}
	for i, n := range names {
		u := hubURL + "/channels/" + channel + "/stream.mjpeg"
		if n != "main" {
			u += "?" + protocol.QueryRendition + "=" + n
		}
		// -flush_packets 1: each frame goes out whole as soon as it is read,
		// not when ffmpeg's output buffer next fills.
		args = append(args, "-map", strconv.Itoa(i)+":v", "-c", "copy", "-flush_packets", "1", "-f", "mpjpeg", u)
	}
	cmd := exec.Command(needFFmpeg(t), args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// wallSamplerJS starts collecting, in the page, every draw and arrival of
// the players that src (a JavaScript expression giving {name: timing})
// names; wallStopJS ends it and returns what was collected since.
const wallSamplerJS = `(() => {
	const src = () => (%s);
	const w = window.__wall = { t0: performance.now(), tiles: {} };
	w.take = async () => {
		for (const [n, tm] of Object.entries(await src())) {
			const tile = w.tiles[n] || (w.tiles[n] = { draws: [], arrivals: [], lastD: w.t0, lastA: w.t0 });
			for (const d of tm.draws) if (d.at > tile.lastD) { tile.draws.push([d.at, d.age, d.rendition]); tile.lastD = d.at; }
			for (const a of tm.arrivals) if (a.at > tile.lastA) { tile.arrivals.push([a.at, a.bytes]); tile.lastA = a.at; }
		}
	};
	w.timer = setInterval(w.take, 400);
	return true;
})()`

const wallStopJS = `(async () => {
	const w = window.__wall;
	clearInterval(w.timer);
	await w.take();
	const tiles = {};
	for (const [n, t] of Object.entries(w.tiles)) tiles[n] = { draws: t.draws, arrivals: t.arrivals };
	return { t0: w.t0, t1: performance.now(), tiles };
})()`

type wallSample struct {
	T0    float64 `json:"t0"`
	T1    float64 `json:"t1"`
	Tiles map[string]struct {
		Draws    [][3]float64 `json:"draws"`    // at, age, rendition
		Arrivals [][2]float64 `json:"arrivals"` // at, bytes
	} `json:"tiles"`
}

// tileFigures are one tile's figures over a window.
type tileFigures struct {
	name                  string
	fps, recvFPS, recvBPS float64
	ageP50, ageP99        float64
	renditions            []int
}

func (s wallSample) figures() []tileFigures {
	secs := (s.T1 - s.T0) / 1000
	var out []tileFigures
	for name, t := range s.Tiles {
		f := tileFigures{name: name, fps: float64(len(t.Draws)) / secs, recvFPS: float64(len(t.Arrivals)) / secs}
		var ages []float64
		for _, d := range t.Draws {
			ages = append(ages, d[1])
			if r := int(d[2]); !slices.Contains(f.renditions, r) {
				f.renditions = append(f.renditions, r)
			}
		}
		for _, a := range t.Arrivals {
			f.recvBPS += a[1] * 8 / secs
		}
		slices.Sort(ages)
		f.ageP50, f.ageP99 = pct(ages, 50), pct(ages, 99)
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b tileFigures) int { return strings.Compare(a.name, b.name) })
	return out
}

func pct(sorted []float64, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return pct(s, 50)
}

// pollJS polls a JavaScript condition until it holds (true) or d has
// passed (false). A page too busy to answer within d counts as false.
func pollJS(t testing.TB, ctx context.Context, js string, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		tctx, cancel := context.WithDeadline(ctx, deadline)
		ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// measure collects the page's figures over d, after the page has had
// warm to settle.
func measure(t testing.TB, ctx context.Context, src string, warm, d time.Duration) []tileFigures {
	t.Helper()
	time.Sleep(warm)
	eval[bool](t, ctx, fmt.Sprintf(wallSamplerJS, src))
	time.Sleep(d)
	return evalAwait[wallSample](t, ctx, wallStopJS).figures()
}

// loadavg is the machine's load (the first three fields of /proc/loadavg).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// channelFrames returns how many main frames the hub has received on each
// channel.
func channelFrames(t testing.TB, hubURL string) map[string]uint64 {
	t.Helper()
	resp, err := http.Get(hubURL + "/api/channels")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []protocol.ChannelInfo
	json.NewDecoder(resp.Body).Decode(&list)
	out := map[string]uint64{}
	for _, c := range list {
		out[c.Name] = c.Frames
	}
	return out
}

// publishedFPS is the median rate at which the hub received the channels'
// main frames between two channelFrames.
func publishedFPS(before, after map[string]uint64, d time.Duration) float64 {
	var fps []float64
	for name, n := range after {
		fps = append(fps, float64(n-before[name])/d.Seconds())
	}
	return median(fps)
}

// gridRow is one line of the grid table.
type gridRow struct {
	scenario   string
	tiles      []tileFigures
	published  float64 // median rate at which the hub received the channels' main frames
	extra      string
	loadBefore string
	loadAfter  string
	// Chromium's CPU time (every process of the browser) over the
	// measured window: per frame drawn, it is a figure of the page's work
	// that the machine's load changes less than the frame rates.
	browserCPU time.Duration
	window     time.Duration
}

func (r gridRow) markdown() string {
	var fps, recv, p50 []float64
	worst := 0.0
	var rends []int
	for _, f := range r.tiles {
		fps = append(fps, f.fps)
		recv = append(recv, f.recvFPS)
		p50 = append(p50, f.ageP50)
		worst = max(worst, f.ageP99)
		for _, x := range f.renditions {
			if !slices.Contains(rends, x) {
				rends = append(rends, x)
			}
		}
	}
	names := make([]string, len(rends))
	for i, x := range rends {
		names[i] = protocol.Rendition(x).String()
	}
	if len(fps) == 0 {
		fps = []float64{0}
	}
	drawn := 0.0
	for _, f := range fps {
		drawn += f * r.window.Seconds()
	}
	cpu := "–"
	if drawn > 0 && r.window > 0 {
		cpu = fmt.Sprintf("%.1f ms (%.0f %%)", float64(r.browserCPU.Microseconds())/1000/drawn,
			100*r.browserCPU.Seconds()/r.window.Seconds())
	}
	return fmt.Sprintf("| %s | %d | %.1f | %.1f (%.1f) | %.1f | %.0f ms | %.0f ms | %s | %s | %s | %s → %s |",
		r.scenario, len(r.tiles), r.published, median(fps), slices.Min(fps), median(recv), median(p50), worst,
		strings.Join(names, ", "), cpu, r.extra, r.loadBefore, r.loadAfter)
}

// processTree returns the CPU ticks (user and system, in USER_HZ) that
// process pid and each of its descendants have used so far, from /proc.
func processTree(t testing.TB, pid int) map[int]int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	type proc struct{ ppid, ticks int }
	procs := map[int]proc{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid … utime stime: comm may hold spaces and
		// parentheses, so the fields are counted from the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if i < 0 || len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		procs[p] = proc{ppid, ut + st}
	}
	in := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for p, pr := range procs {
			if !in[p] && in[pr.ppid] {
				in[p], changed = true, true
			}
		}
	}
	out := map[int]int{}
	for p := range in {
		out[p] = procs[p].ticks
	}
	return out
}

const clockTicks = 100 // USER_HZ, 100 on Linux

// processTreeCPU returns the CPU time (user and system) that process pid
// and its descendants have used so far, from /proc.
func processTreeCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	ticks := 0
	for _, n := range processTree(t, pid) {
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// threadCPU returns the CPU time each thread of process pid and its
// descendants has used so far, from /proc, keyed by the process's
// Chromium role (its --type, "network" for the network service, "browser"
// for the root) and the thread's name with trailing digits dropped
// ("renderer/DedicatedWorker thread"): where a page's CPU goes.
func threadCPU(t testing.TB, pid int) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	for p := range processTree(t, pid) {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if err != nil {
			continue
		}
		role := "browser"
		// Chromium rewrites its children's command lines, arguments joined
		// by spaces instead of NULs.
		for _, a := range strings.FieldsFunc(string(cmd), func(r rune) bool { return r == 0 || r == ' ' }) {
			if v, ok := strings.CutPrefix(a, "--type="); ok && role == "browser" {
				role = v
			}
			if a == "--utility-sub-type=network.mojom.NetworkService" {
				role = "network"
			}
		}
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, tk := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", p, tk.Name()))
			if err != nil {
				continue
			}
			i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
			if i < 0 || j < i {
				continue
			}
			f := strings.Fields(string(b[j+1:]))
			if len(f) < 13 {
				continue
			}
			ut, _ := strconv.Atoi(f[11])
			st, _ := strconv.Atoi(f[12])
			name := strings.TrimRight(string(b[i+1:j]), "0123456789")
			out[role+"/"+name] += time.Duration(ut+st) * time.Second / clockTicks
		}
	}
	return out
}

// splitPerFrame formats where Chromium's CPU went between two threadCPU
// readings, per frame drawn, largest first, leaving out threads under
// 0.05 ms a frame.
func splitPerFrame(before, after map[string]time.Duration, frames float64) string {
	type share struct {
		name string
		ms   float64
	}
	var all []share
	for k, v := range after {
		if ms := float64((v - before[k]).Microseconds()) / 1000 / frames; ms >= 0.05 {
			all = append(all, share{k, ms})
		}
	}
	slices.SortFunc(all, func(a, b share) int { return cmp.Compare(b.ms, a.ms) })
	var parts []string
	for _, s := range all {
		parts = append(parts, fmt.Sprintf("%s %.2f", s.name, s.ms))
	}
	return strings.Join(parts, ", ")
}

// browserPID is the PID of the Chromium that ctx drives.
func browserPID(t testing.TB, ctx context.Context) int {
	t.Helper()
	c := chromedp.FromContext(ctx)
	if c == nil || c.Browser == nil || c.Browser.Process() == nil {
		t.Fatal("no browser process")
	}
	return c.Browser.Process().Pid
}

const gridHeader = "| scenario | tiles | published fps | drawn fps median (min) | received fps median | age p50 median | worst tile's age p99 | drawn | Chromium CPU per frame drawn (share of a core) | other | load (1, 5, 15 min) before → after |\n" +
	"|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|"

// wallRun is what one benchmark run measures: its sizes and windows.
type wallRun struct {
	warm, window time.Duration // per grid scenario
	throttledFor time.Duration // the throttle scenario's thin-link phase
	clipSeconds  int
}

// gridScenario feeds n channels of the clips (main and the renditions in
// names), opens the grid (with query, "" or "?…"), and measures every
// tile; with a player query ("" for none, "?" for the adaptive player,
// "?rendition=main" for the main picture held), a second tab shows
// /view/cam00 full size meanwhile, and its figures go in extra.
func gridScenario(t *testing.T, run wallRun, name string, n int, clips wallClips, names []string, query, playerQuery string) gridRow {
	player := playerQuery != ""
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	for i := range n {
		startWallFeeder(t, s.url(), fmt.Sprintf("cam%02d", i), clips, names)
	}
	testutil.Eventually(t, 90*time.Second, "every channel live at the hub", func() bool { return len(channelFrames(t, s.url())) == n })
	ctx := browser(t)
	row := gridRow{scenario: name, loadBefore: loadavg()}
	navigate(t, ctx, s.url()+"/"+query)
	// A machine that cannot draw every tile within a minute is measured
	// anyway: its idle tiles count as drawing nothing.
	if !pollJS(t, ctx, fmt.Sprintf(`(() => { const st = Object.values(framehubGrid.stats());
		return st.length === %d && st.every((s) => s.drawn > 0); })()`, n), 60*time.Second) {
		row.extra = "not every tile drew within 60 s; "
	}
	var pctx context.Context
	if player {
		var cancel context.CancelFunc
		pctx, cancel = chromedp.NewContext(ctx) // another tab of the same browser
		t.Cleanup(cancel)
		navigate(t, pctx, s.url()+"/view/cam00"+strings.TrimSuffix(playerQuery, "?"))
		waitJS(t, pctx, "the player drawing", `framehub.player.stats().drawn > 0`, 30*time.Second)
		if v := eval[string](t, pctx, `document.visibilityState`) + eval[string](t, ctx, `document.visibilityState`); v != "visiblevisible" {
			t.Fatalf("tabs not both visible (%s): the benchmark would measure a paused page", v)
		}
	}
	time.Sleep(run.warm)
	pid := browserPID(t, ctx)
	frames, began, cpu, threads := channelFrames(t, s.url()), time.Now(), processTreeCPU(t, pid), threadCPU(t, pid)
	eval[bool](t, ctx, fmt.Sprintf(wallSamplerJS, `framehubGrid.timings()`))
	if player {
		eval[bool](t, pctx, fmt.Sprintf(wallSamplerJS, `({player: framehub.player.timing})`))
	}
	time.Sleep(run.window)
	sample := evalAwait[wallSample](t, ctx, wallStopJS)
	row.browserCPU, row.window = processTreeCPU(t, pid)-cpu, time.Since(began)
	row.tiles = sample.figures()
	drawn := 0.0
	for _, f := range row.tiles {
		drawn += f.fps * row.window.Seconds()
	}
	if drawn > 0 {
		t.Logf("%s: Chromium CPU per frame drawn, by process/thread (ms): %s", name, splitPerFrame(threads, threadCPU(t, pid), drawn))
	}
	row.published = publishedFPS(frames, channelFrames(t, s.url()), time.Since(began))
	if player {
		p := evalAwait[wallSample](t, pctx, wallStopJS).figures()[0]
		var on []string
		for _, r := range p.renditions {
			on = append(on, protocol.Rendition(r).String())
		}
		row.extra += fmt.Sprintf("full-size player beside it: %.1f fps, age p99 %.0f ms, drawing %s", p.fps, p.ageP99, strings.Join(on, ", "))
	}
	row.loadAfter = loadavg()
	shot(t, ctx, name)
	t.Log(row.markdown())
	return row
}

// TestWallBenchmark is the wall of cameras benchmark, the whole table of
// docs/BENCHMARKS.md in one run (6 to 10 minutes here):
//
//	FRAMEHUB_BENCH_WALL=1 go test ./static -run '^TestWallBenchmark$' -v -timeout 30m
//
// It runs only with FRAMEHUB_BENCH_WALL=1; TestWallSmoke runs the same
// harness briefly in CI.
func TestWallBenchmark(t *testing.T) {
	if os.Getenv("FRAMEHUB_BENCH_WALL") == "" {
		t.Skip("the wall of cameras benchmark runs with FRAMEHUB_BENCH_WALL=1 (docs/BENCHMARKS.md)")
	}
	start := time.Now()
	run := wallRun{warm: 5 * time.Second, window: 10 * time.Second, throttledFor: 20 * time.Second, clipSeconds: 10}
	t.Logf("load before: %s", loadavg())
	clips := makeWallClips(t, 1280, 720, 30, run.clipSeconds, 10, []int{640, 320})
	t.Logf("clips: main %d, 640 %d, 320 %d bytes a frame on average (%v)", clips.bytes["main"], clips.bytes["640"], clips.bytes["320"], time.Since(start).Round(time.Second))
	var rows []string
	// "createImageBitmap" rows decode every JPEG the way the page did before
	// it used ImageDecoder, as pages without it still do; "on the page"
	// rows draw the tiles on the page's main thread, as the grid did before
	// tile workers, and as browsers without OffscreenCanvas still do.
	const before = "?test-decoder=createImageBitmap"
	const onPage = "?test-grid=page"
	for _, sc := range []struct {
		name   string
		n      int
		names  []string
		query  string
		player string // the player beside the grid: its query, "" for none
	}{
		{"16 channels, main only (no renditions), createImageBitmap", 16, []string{"main"}, before, ""},
		{"16 channels, main only (no renditions)", 16, []string{"main"}, "", ""},
		{"16 channels with 320, createImageBitmap", 16, []string{"main", "320"}, before, ""},
		{"16 channels with 320, on the page", 16, []string{"main", "320"}, onPage, ""},
		{"16 channels with 320", 16, []string{"main", "320"}, "", ""},
		{"16 channels with 320, on the page, and a player", 16, []string{"main", "320"}, onPage, "?"},
		{"16 channels with 320, and a player", 16, []string{"main", "320"}, "", "?"},
		{"16 channels with 320, and a player held on main", 16, []string{"main", "320"}, "", "?" + protocol.QueryRendition + "=main"},
		{"36 channels, main only (no renditions)", 36, []string{"main"}, "", ""},
		{"36 channels with 320, createImageBitmap", 36, []string{"main", "320"}, before, ""},
		{"36 channels with 320, on the page", 36, []string{"main", "320"}, onPage, ""},
		{"36 channels with 320", 36, []string{"main", "320"}, "", ""},
	} {
		if !t.Run(sc.name, func(t *testing.T) {
			rows = append(rows, gridScenario(t, run, sc.name, sc.n, clips, sc.names, sc.query, sc.player).markdown())
		}) {
			rows = append(rows, "| "+sc.name+" | failed: see the log above |")
		}
	}
	var trows []string
	for _, sc := range []struct{ name, query string }{
		{"held on the main picture (before renditions)", "?" + protocol.QueryRendition + "=main"},
		{"adaptive player", ""},
	} {
		if !t.Run(sc.name, func(t *testing.T) {
			trows = append(trows, throttleScenario(t, run, sc.name, clips, []string{"main", "640", "320"}, sc.query).markdown())
		}) {
			trows = append(trows, "| "+sc.name+" | failed: see the log above |")
		}
	}
	t.Logf("\n%s\n%s\n\n%s\n%s\n\ntook %v; load after: %s", gridHeader, strings.Join(rows, "\n"),
		throttleHeader, strings.Join(trows, "\n"), time.Since(start).Round(time.Second), loadavg())
}

// TestWallSmoke runs the wall benchmark's harness briefly, as CI can
// afford: four channels fed by ffmpeg uploads of a main picture and a
// 320-wide rendition, the grid measured for two seconds. It checks that
// the harness measures what it says (every tile drew the rendition that
// fits it in the window), not how fast.
func TestWallSmoke(t *testing.T) {
	clips := makeWallClips(t, 1280, 720, 30, 2, 0, []int{320})
	row := gridScenario(t, wallRun{warm: time.Second, window: 2 * time.Second}, "smoke", 4, clips, []string{"main", "320"}, "", "")
	for _, f := range row.tiles {
		if f.fps <= 0 || f.recvFPS <= 0 || f.ageP99 <= 0 || !slices.Equal(f.renditions, []int{320}) {
			t.Errorf("tile %s: %+v; want frames of the 320 rendition drawn and received in the window, with their ages", f.name, f)
		}
	}
	if row.browserCPU <= 0 {
		t.Errorf("Chromium used %v of CPU in the window; want its processes' time counted", row.browserCPU)
	}
	if len(row.tiles) != 4 || row.published <= 0 {
		t.Errorf("%d tiles, channels published at %.1f fps; want 4, publishing", len(row.tiles), row.published)
	}
}

// throttle limits the page's network to bps in each direction with
// Chromium's own network emulation (Network.emulateNetworkConditionsByRule,
// no URL pattern: every request, WebSockets included, which TestWallSmoke
// checks), or lifts the limit (bps 0).
func throttle(t testing.TB, ctx context.Context, bps float64) {
	t.Helper()
	c := &network.Conditions{DownloadThroughput: -1, UploadThroughput: -1}
	if bps > 0 {
		c = &network.Conditions{DownloadThroughput: bps / 8, UploadThroughput: bps / 8}
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule,
		network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: []*network.Conditions{c}}); err != nil {
		t.Fatalf("network emulation: %v", err)
	}
}

// recordRenditionsJS notes, every 100 ms, the rendition the player draws,
// when it changes: window.__rends is [[performance.now(), name], …].
const recordRenditionsJS = `(() => {
	window.__rends = [];
	setInterval(() => {
		const r = framehub.player.stats().rendition;
		const l = __rends[__rends.length - 1];
		if (r && (!l || l[1] !== r)) __rends.push([performance.now(), r]);
	}, 100);
	return true;
})()`

// throttleRow is one line of the throttled player's table.
type throttleRow struct {
	scenario        string
	settleS         float64 // the last change of rendition after the throttle began, s
	on              []string
	fps, p99, mbit  float64 // while throttled, after the first 5 s
	backS           float64 // after the throttle is lifted, until the main picture is drawn; -1: never
	mainFPS         float64
	timeline        string
	loadBefore, end string
}

func (r throttleRow) markdown() string {
	back := "never"
	if r.backS >= 0 {
		back = fmt.Sprintf("%.1f s", r.backS)
	}
	return fmt.Sprintf("| %s | %.1f s | %s | %.1f | %.0f ms | %.1f | %s | %.1f | %s | %s → %s |", r.scenario, r.settleS,
		strings.Join(r.on, ", "), r.fps, r.p99, r.mbit, back, r.mainFPS, r.timeline, r.loadBefore, r.end)
}

const throttleHeader = "| player of a 720p30 channel | settled after | drawing | drawn fps | age p99 | received Mbit/s | back on main after | fps on main | renditions drawn (s after the throttle began) | load before → after |\n" +
	"|---|---:|---|---:|---:|---:|---:|---:|---|---|"

// throttleScenario opens /view/cam+query on a channel with the clips of
// names, lets it settle on the fast link, limits the page's network to
// 5 Mbit/s for run.throttledFor, then lifts the limit.
func throttleScenario(t *testing.T, run wallRun, name string, clips wallClips, names []string, query string) throttleRow {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	startWallFeeder(t, s.url(), "cam", clips, names)
	testutil.Eventually(t, 30*time.Second, "the channel live at the hub", func() bool { return len(channelFrames(t, s.url())) == 1 })
	ctx := browser(t)
	row := throttleRow{scenario: name, loadBefore: loadavg(), backS: -1}
	navigate(t, ctx, s.url()+"/view/cam"+query)
	waitJS(t, ctx, "the player drawing", `framehub.player.stats().drawn > 30`, 30*time.Second)
	time.Sleep(run.warm)
	eval[bool](t, ctx, recordRenditionsJS)
	t0 := eval[float64](t, ctx, `performance.now()`)
	throttle(t, ctx, 5e6)
	time.Sleep(5 * time.Second)
	eval[bool](t, ctx, fmt.Sprintf(wallSamplerJS, `({player: framehub.player.timing})`))
	time.Sleep(run.throttledFor - 5*time.Second)
	f := evalAwait[wallSample](t, ctx, wallStopJS).figures()[0]
	row.fps, row.p99, row.mbit = f.fps, f.ageP99, f.recvBPS/1e6
	for _, r := range f.renditions {
		row.on = append(row.on, protocol.Rendition(r).String())
	}
	t1 := eval[float64](t, ctx, `performance.now()`)
	throttle(t, ctx, 0)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st := stats(t, ctx); st.Rendition == "main" {
			row.backS = (eval[float64](t, ctx, `performance.now()`) - t1) / 1000
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if row.backS >= 0 {
		eval[bool](t, ctx, fmt.Sprintf(wallSamplerJS, `({player: framehub.player.timing})`))
		time.Sleep(5 * time.Second)
		row.mainFPS = evalAwait[wallSample](t, ctx, wallStopJS).figures()[0].fps
	}
	var changes [][2]any
	if err := json.Unmarshal([]byte(eval[string](t, ctx, `JSON.stringify(__rends)`)), &changes); err != nil {
		t.Fatal(err)
	}
	var tl []string
	for _, c := range changes {
		at := (c[0].(float64) - t0) / 1000
		tl = append(tl, fmt.Sprintf("%s %.1f", c[1], at))
		if at > 0 && at*1000 < t1-t0 {
			row.settleS = at
		}
	}
	row.timeline = strings.Join(tl, ", ")
	row.end = loadavg()
	shot(t, ctx, "throttle-"+name)
	t.Log(row.markdown())
	return row
}
