//go:build cgo

package main

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// cgoBinary builds the full framehub binary (with OpenCV) once.
func cgoBinary(t *testing.T) string { return testutil.Framehub(t, true) }

func makeClip(t *testing.T, frames int) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg: %v (scripts/setup.sh installs it)", err)
	}
	out := filepath.Join(t.TempDir(), "clip.mp4")
	if b, err := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10",
		"-frames:v", strconv.Itoa(frames), "-pix_fmt", "yuv420p", out).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, b)
	}
	return out
}

func TestPublishFileToWatch(t *testing.T) {
	bin := cgoBinary(t)
	_, addr := startHub(t, bin)
	clip := makeClip(t, 20)
	// A publisher slower than its file for a moment (a loaded machine, the
	// first connection) skips a frame rather than fall behind: count 15 of 20.
	w := start(t, bin, nil, "watch", "--hub", addr, "--channel", "clip", "--count", "15", "--duration", "30s", "--json", "--quiet")
	waitSubscribers(t, addr, 1)
	p := start(t, bin, nil, "publish", "--hub", "http://"+addr, "--channel", "clip", "--source", clip, "--quality", "90")
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if err := w.wait(t, 30*time.Second); err != nil {
		t.Fatalf("watch: %v", err)
	}
	sent := 0
	if m := regexp.MustCompile(`captured=20 sent=(\d+)`).FindStringSubmatch(p.errText()); m != nil {
		sent, _ = strconv.Atoi(m[1])
	}
	if sent < 15 || !strings.Contains(w.outText(), `"frames":15`) || !strings.Contains(w.outText(), `"width":320`) {
		t.Fatalf("publish said:\n%s\nwatch printed: %s", p.errText(), w.outText())
	}
	if !regexp.MustCompile(`clip  captured .* fps  sent .* fps .* 320x240`).MatchString(p.errText()) {
		t.Errorf("publish printed no status line:\n%s", p.errText())
	}
}

// TestPublishRenditionsToWatch: publish --renditions sends the smaller
// copies; watch --max-width gets the one that fits, record and view take
// the flag too.
func TestPublishRenditionsToWatch(t *testing.T) {
	bin := cgoBinary(t)
	_, addr := startHub(t, bin)
	small := start(t, bin, nil, "watch", "--hub", addr, "--channel", "cam", "--max-width", "300", "--count", "40", "--duration", "40s", "--json", "--quiet")
	whole := start(t, bin, nil, "watch", "--hub", addr, "--channel", "cam", "--count", "5", "--duration", "40s", "--json", "--quiet")
	waitSubscribers(t, addr, 2)
	p := start(t, bin, nil, "publish", "--hub", "http://"+addr, "--channel", "cam", "--source", "test:1280x720", "--fps", "15",
		"--renditions", "640,320", "--duration", "6s", "--quiet", "--log-format", "json")
	if err := small.wait(t, 40*time.Second); err != nil {
		t.Fatalf("watch --max-width 300: %v\n%s", err, small.errText())
	}
	if err := whole.wait(t, 40*time.Second); err != nil {
		t.Fatalf("watch: %v", err)
	}
	if err := p.wait(t, 40*time.Second); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if !strings.Contains(p.errText(), `"renditions_sent":`) || strings.Contains(p.errText(), `"renditions_sent":0`) {
		t.Errorf("publish logged no renditions sent:\n%s", p.errText())
	}
	// The first frames may be the main picture, before the renditions
	// appeared: the last one is the 320.
	if !strings.Contains(small.outText(), `"width":320`) || !strings.Contains(small.outText(), `"height":180`) {
		t.Fatalf("watch --max-width 300 printed %s; want the 320x180 rendition", small.outText())
	}
	if !strings.Contains(whole.outText(), `"width":1280`) {
		t.Fatalf("watch printed %s; want the main picture, 1280 wide", whole.outText())
	}
}

func TestPublishErrorsAreOneLine(t *testing.T) {
	bin := cgoBinary(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"publish", "--channel", "x", "--source", "9"}, "no camera 9"},
		{[]string{"publish", "--channel", "x", "--source", "/no/such.mp4"}, "no such file"},
		{[]string{"publish", "--channel", "x", "--source", "test", "--filter", "sepia"}, "unknown filter"},
		{[]string{"publish", "--channel", "x", "--source", "test", "--codec", "h264"}, "--codec"},
		{[]string{"publish", "--channel", "x/y", "--source", "test"}, "invalid channel name"},
		{[]string{"record", "--channel", "x", "--out", "a.gif"}, ".avi"},
		{[]string{"publish", "--channel", "x", "--source", "test", "--renditions", "321"}, "even widths"},
		{[]string{"publish", "--channel", "x", "--source", "test", "--renditions", "640,abc"}, "--renditions"},
		{[]string{"publish", "--channel", "x", "--source", "test", "--renditions", "640", "--rendition", "320"}, "makes no others"},
		{[]string{"publish", "--channel", "x", "--source", "test", "--rendition", "320", "--width", "640"}, "--rendition 320"},
	} {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err == nil || !strings.Contains(lines[len(lines)-1], c.want) {
			t.Errorf("framehub %v: err %v, output %q; want a failure whose last line mentions %q", c.args, err, out, c.want)
		}
	}
}

func TestViewOffscreen(t *testing.T) {
	bin := cgoBinary(t)
	_, addr := startHub(t, bin)
	pub := start(t, bin, nil, "publish", "--hub", addr, "--channel", "v", "--source", "test:320x240", "--quiet")
	_ = pub
	v := start(t, bin, []string{"QT_QPA_PLATFORM=offscreen"}, "view", "--hub", addr, "--channel", "v", "--channel", "w", "--duration", "3s")
	if err := v.wait(t, 20*time.Second); err != nil {
		t.Fatalf("view exited with %v", err)
	}
	m := regexp.MustCompile(`v: (\d+) frames received, (\d+) shown`).FindStringSubmatch(v.errText())
	if m == nil || m[2] == "0" {
		t.Fatalf("view showed no frames:\n%s", v.errText())
	}
	if !strings.Contains(v.errText(), "w: 0 frames received, 0 shown") {
		t.Errorf("second window (no publisher) not reported:\n%s", v.errText())
	}
}

func TestViewWithoutDisplayFailsClearly(t *testing.T) {
	bin := cgoBinary(t)
	cmd := exec.Command(bin, "view", "--hub", "127.0.0.1:1", "--channel", "x")
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DISPLAY=") && !strings.HasPrefix(e, "WAYLAND_DISPLAY=") && !strings.HasPrefix(e, "QT_QPA_PLATFORM=") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "no display") {
		t.Fatalf("view without a display: %v, %q; want exit 1 with 'no display' (not a Qt abort)", err, out)
	}
}

func TestRecordStopsCleanlyOnInterrupt(t *testing.T) {
	bin := cgoBinary(t)
	_, addr := startHub(t, bin)
	start(t, bin, nil, "publish", "--hub", addr, "--channel", "r", "--source", "test:320x240", "--quiet")
	out := filepath.Join(t.TempDir(), "r.avi")
	r := start(t, bin, nil, "record", "--hub", addr, "--channel", "r", "--out", out)
	r.waitLog(t, regexp.MustCompile(`msg=recording`), 10*time.Second)
	// Interrupt once frames are being written.
	testutil.Eventually(t, 10*time.Second, "frames in the file", func() bool {
		st, err := os.Stat(out)
		return err == nil && st.Size() > 10_000
	})
	r.cmd.Process.Signal(syscall.SIGINT)
	if err := r.wait(t, 10*time.Second); err != nil {
		t.Fatalf("record after SIGINT: %v", err)
	}
	m := regexp.MustCompile(`(\d+) written`).FindStringSubmatch(r.errText())
	if m == nil || m[1] == "0" {
		t.Fatalf("record wrote nothing:\n%s", r.errText())
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,width", "-of", "csv=p=0", out).Output()
	if err != nil || strings.TrimSpace(string(probe)) != "320,"+m[1] {
		t.Fatalf("ffprobe of the interrupted recording: %q %v; want 320,%s", probe, err, m[1])
	}
}

func TestDemo(t *testing.T) {
	bin := cgoBinary(t)
	d := start(t, bin, nil, "demo", "--listen", "127.0.0.1:0", "--quiet")
	base := d.waitOut(t, regexp.MustCompile(`open in a browser\s+(http://127\.0\.0\.1:\d+)/`), 20*time.Second)[1]
	for _, want := range []string{"framehub watch --hub " + base + " --channel demo", "publishing test"} {
		if !strings.Contains(d.outText(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, d.outText())
		}
	}
	var body []byte
	testutil.Eventually(t, 20*time.Second, "the demo's snapshot", func() bool {
		resp, err := http.Get(base + "/channels/demo/snapshot.jpg")
		if err != nil {
			return false
		}
		body, _ = readAll(resp)
		return resp.StatusCode == 200
	})
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(body))
	if err != nil || cfg.Width != 1280 || cfg.Height != 720 {
		t.Fatalf("demo snapshot: %v %dx%d; want the 1280x720 test pattern", err, cfg.Width, cfg.Height)
	}
	// The demo publishes renditions by default, for the grid's tiles.
	var rends map[string]protocol.RenditionInfo
	testutil.Eventually(t, 20*time.Second, "the demo's renditions 640 and 320", func() bool {
		rends = renditionsOn(strings.TrimPrefix(base, "http://"), "demo")
		return rends["640"].Frames > 0 && rends["320"].Frames > 0
	})
	if r := rends["320"]; r.Width != 320 || r.Height != 180 {
		t.Fatalf("the demo's rendition 320 is %dx%d; want 320x180", r.Width, r.Height)
	}
	resp, err := http.Get(base + "/channels/demo/snapshot.jpg?max-width=320")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = readAll(resp)
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != 320 {
		t.Fatalf("demo snapshot of max-width 320: %v %dx%d; want 320 wide", err, cfg.Width, cfg.Height)
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	if err := d.wait(t, 10*time.Second); err != nil {
		t.Fatalf("demo exit after SIGINT: %v", err)
	}
	if !strings.Contains(d.errText(), "hub stopped") || !strings.Contains(d.errText(), "publisher stopped") {
		t.Fatalf("demo did not stop both parts:\n%s", d.errText())
	}
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(resp.Body)
	return b.Bytes(), err
}

// cpuSeconds reads a process's user+system CPU time from /proc.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// TestPublishOnDemand: `publish --on-demand` uses next to no CPU while
// nobody watches, keeps its connection, and sends fresh frames within a
// second of the first viewer.
func TestPublishOnDemand(t *testing.T) {
	bin := cgoBinary(t)
	_, addr := startHub(t, bin)
	p := start(t, bin, nil, "publish", "--hub", addr, "--channel", "od", "--source", "test:1280x720", "--on-demand", "--quiet")
	p.waitLog(t, regexp.MustCompile(`capture paused`), 20*time.Second)
	pid := p.cmd.Process.Pid
	c0 := cpuSeconds(t, pid)
	time.Sleep(2 * time.Second) // measuring the idle publisher's CPU over a window
	idle := cpuSeconds(t, pid) - c0
	began := time.Now()
	w := start(t, bin, nil, "watch", "--hub", addr, "--channel", "od", "--count", "30", "--duration", "20s", "--json", "--quiet")
	if err := w.wait(t, 30*time.Second); err != nil {
		t.Fatalf("watch: %v", err)
	}
	watched := cpuSeconds(t, pid) - c0 - idle
	var sum struct {
		FirstFrameMS float64 `json:"first_frame_ms"`
		Frames       int     `json:"frames"`
	}
	if err := json.Unmarshal([]byte(w.outText()), &sum); err != nil || sum.Frames != 30 {
		t.Fatalf("watch printed %q: %v", w.outText(), err)
	}
	t.Logf("idle publisher: %.2f CPU s in 2 s; watched: %.2f CPU s for 30 frames in %.1f s; first frame %.0f ms after subscribing",
		idle, watched, time.Since(began).Seconds(), sum.FirstFrameMS)
	if idle > 0.1 {
		t.Errorf("the idle on-demand publisher used %.2f CPU s in 2 s; want next to none", idle)
	}
	if sum.FirstFrameMS > 1000 {
		t.Errorf("first frame %.0f ms after subscribing; want within 1 s", sum.FirstFrameMS)
	}
	if !strings.Contains(p.errText(), "capture resumed") {
		t.Errorf("publisher did not say it resumed:\n%s", p.errText())
	}
}
