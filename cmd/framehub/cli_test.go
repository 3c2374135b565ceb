package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/urfave/cli/v2"

	"framehub/internal/testutil"
	"framehub/protocol"
	"framehub/subscriber"
)

// nocgoBin is a framehub binary built with CGO_ENABLED=0, the static build
// servers without OpenCV run (testutil.BuildFramehub, once per test run).
var nocgoBin string

func TestMain(m *testing.M) {
	if limit := os.Getenv(envFileSizeLimit); limit != "" {
		execWithFileSizeLimit(limit) // a child started by startLimited
	}
	bin, err := testutil.BuildFramehub(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nocgoBin = bin
	os.Exit(testutil.Check(m.Run()))
}

// Environment of a test binary re-executed by startLimited.
const (
	envFileSizeLimit = "FRAMEHUB_TEST_FILE_SIZE_LIMIT" // bytes
	envExec          = "FRAMEHUB_TEST_EXEC"            // the binary to run under it
)

// startLimited starts bin as start does, but with a file size limit of
// limit bytes (RLIMIT_FSIZE, what ulimit -f sets): past it, a write fails
// with EFBIG, as on a full disk. The test binary re-executes itself, sets
// the limit, and replaces itself with bin (see TestMain).
func startLimited(t *testing.T, limit int64, bin string, args ...string) *proc {
	t.Helper()
	return start(t, os.Args[0], []string{fmt.Sprintf("%s=%d", envFileSizeLimit, limit), envExec + "=" + bin}, args...)
}

// execWithFileSizeLimit is the re-executed test binary of startLimited:
// it limits the size of the files it may write, then becomes the binary
// named by envExec with its own arguments. It does not return.
func execWithFileSizeLimit(limit string) {
	n, err := strconv.ParseUint(limit, 10, 64)
	if err == nil {
		err = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n})
	}
	if err == nil {
		bin := os.Getenv(envExec)
		var env []string
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, envFileSizeLimit+"=") && !strings.HasPrefix(e, envExec+"=") {
				env = append(env, e)
			}
		}
		err = syscall.Exec(bin, append([]string{bin}, os.Args[1:]...), env)
	}
	fmt.Fprintln(os.Stderr, "file size limit:", err)
	os.Exit(2)
}

// proc is a framehub child process whose stderr the test can search.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	stdout bytes.Buffer
	done   chan struct{}
	err    error
}

func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return startCmd(t, cmd)
}

// startCmd starts cmd, collecting its output, and kills it (by PID) when
// the test ends, showing its stderr if the test failed.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	bin, args := cmd.Path, cmd.Args[1:]
	se, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = &lockedWriter{p: p, b: &p.stdout}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(se)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill() // by PID: only what this test started
		<-p.done
		if t.Failed() {
			t.Logf("%s %v stderr:\n%s", filepath.Base(bin), args, p.errText())
		}
	})
	return p
}

type lockedWriter struct {
	p *proc
	b *bytes.Buffer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.b.Write(b)
}

func (p *proc) errText() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stderr.String() }
func (p *proc) outText() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stdout.String() }

// waitLog waits for a stderr line matching re and returns its submatches.
func (p *proc) waitLog(t *testing.T, re *regexp.Regexp, d time.Duration) []string {
	t.Helper()
	return waitMatch(t, p.errText, "a log line matching "+re.String(), re, d)
}

// waitOut waits for stdout to match re and returns its submatches.
func (p *proc) waitOut(t *testing.T, re *regexp.Regexp, d time.Duration) []string {
	t.Helper()
	return waitMatch(t, p.outText, "output matching "+re.String(), re, d)
}

func waitMatch(t *testing.T, text func() string, what string, re *regexp.Regexp, d time.Duration) []string {
	t.Helper()
	var m []string
	testutil.Eventually(t, d, what, func() bool {
		m = re.FindStringSubmatch(text())
		return m != nil
	})
	return m
}

func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("process did not exit within %v", d)
	}
	return nil
}

var listenRE = regexp.MustCompile(`msg="hub listening" addr=(127\.0\.0\.1:\d+)`)

func startHub(t *testing.T, bin string, args ...string) (*proc, string) {
	t.Helper()
	p := start(t, bin, nil, append([]string{"hub", "--listen", "127.0.0.1:0"}, args...)...)
	return p, p.waitLog(t, listenRE, 10*time.Second)[1]
}

// publishFrames publishes JPEG-like frames seq from..to at ~100 fps.
func publishFrames(t *testing.T, addr, channel string, from, to uint64, size int) {
	t.Helper()
	if err := sendFrames(addr, channel, from, to, size); err != nil {
		t.Fatal(err)
	}
}

func sendFrames(addr, channel string, from, to uint64, size int) error {
	return sendFramesAs(addr, channel, from, to, size, nil, nil)
}

// sendFramesAs publishes with handshake headers (a token) and TLS settings.
func sendFramesAs(addr, channel string, from, to uint64, size int, hd http.Header, tlsConf *tls.Config) error {
	u, err := protocol.ChannelURL(addr, protocol.PathPublish, channel)
	if err != nil {
		return err
	}
	d := websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(u, hd)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return err
	}
	defer c.Close()
	payload := testutil.FakeJPEG(160, 120, from, size)
	for seq := from; seq <= to; seq++ {
		f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 160, Height: 120, Seq: seq,
			CaptureTime: time.Now().UnixNano()}, Payload: payload}
		if err := c.WriteMessage(websocket.BinaryMessage, protocol.AppendFrame(nil, &f)); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return closeCleanly(c)
}

// closeCleanly ends a publisher's connection with the closing handshake,
// reading what the hub sent meanwhile, so that the hub has read every frame
// before the socket closes (closing with unread notices in the receive
// buffer resets the connection, and the hub may lose the last frames).
func closeCleanly(c *websocket.Conn) error {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				return nil
			}
			return fmt.Errorf("closing: %w", err)
		}
	}
}

func TestHubAndWatch(t *testing.T) {
	hubProc, addr := startHub(t, nocgoBin)
	dir := t.TempDir()
	w := start(t, nocgoBin, nil, "watch", "--hub", "http://"+addr, "--channel", "cam1", "--count", "20",
		"--duration", "20s", "--json", "--save", dir)
	waitSubscribers(t, addr, 1)
	publishFrames(t, addr, "cam1", 1, 40, 5000)
	if err := w.wait(t, 20*time.Second); err != nil {
		t.Fatalf("watch: %v", err)
	}
	var sum subscriber.Summary
	if err := json.Unmarshal([]byte(w.outText()), &sum); err != nil {
		t.Fatalf("watch --json printed %q: %v", w.outText(), err)
	}
	if sum.Frames != 20 || sum.Width != 160 || sum.Height != 120 || sum.Codec != "jpeg" || sum.Bytes != 20*uint64(5000+protocol.HeaderLen) {
		t.Fatalf("summary = %+v", sum)
	}
	if sum.AgeP50MS < 0 || sum.AgeP99MS < sum.AgeP50MS || sum.FirstFrameMS <= 0 {
		t.Fatalf("summary ages = %+v", sum)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "cam1-*.jpg"))
	if len(files) != 20 {
		t.Fatalf("--save wrote %d files; want 20", len(files))
	}
	// Every field the docs promise is in the JSON.
	var raw map[string]any
	json.Unmarshal([]byte(w.outText()), &raw)
	for _, k := range []string{"frames", "fps", "bytes", "width", "height", "codec", "age_ms_p50", "age_ms_p99", "age_ms_max", "skipped", "reconnects", "first_frame_ms"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("watch --json lacks %q", k)
		}
	}
	// SIGINT: the hub stops cleanly with status 0.
	hubProc.cmd.Process.Signal(syscall.SIGINT)
	if err := hubProc.wait(t, 10*time.Second); err != nil {
		t.Fatalf("hub exit after SIGINT: %v", err)
	}
	if !strings.Contains(hubProc.errText(), "hub stopped") {
		t.Fatalf("hub did not log a clean stop")
	}
}

func TestWatchReconnectsAfterHubRestart(t *testing.T) {
	// Pick a port, as a user's fixed --listen would be.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	hub1 := start(t, nocgoBin, nil, "hub", "--listen", addr)
	hub1.waitLog(t, listenRE, 10*time.Second)
	w := start(t, nocgoBin, nil, "watch", "--hub", "ws://"+addr, "--channel", "cam", "--duration", "30s", "--count", "10", "--json")
	waitSubscribers(t, addr, 1)
	publishFrames(t, addr, "cam", 1, 5, 1000)
	hub1.cmd.Process.Signal(syscall.SIGTERM)
	if err := hub1.wait(t, 10*time.Second); err != nil {
		t.Fatalf("hub exit after SIGTERM: %v", err)
	}
	restarted := time.Now()
	hub2 := start(t, nocgoBin, nil, "hub", "--listen", addr)
	hub2.waitLog(t, listenRE, 10*time.Second)
	// Publish until watch has its ten frames.
	ctx, cancel := context.WithCancel(context.Background())
	var pubWG sync.WaitGroup
	pubWG.Add(1)
	go func() {
		defer pubWG.Done()
		for seq := uint64(100); ctx.Err() == nil && seq < 1000; seq += 10 {
			if sendFrames(addr, "cam", seq, seq+9, 1000) != nil {
				return
			}
		}
	}()
	err = w.wait(t, 30*time.Second)
	cancel()
	pubWG.Wait()
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	var sum subscriber.Summary
	if err := json.Unmarshal([]byte(w.outText()), &sum); err != nil {
		t.Fatalf("watch --json printed %q: %v", w.outText(), err)
	}
	if sum.Reconnects < 1 || sum.Frames != 10 {
		t.Fatalf("summary = %+v; want 10 frames across at least one reconnect", sum)
	}
	t.Logf("watch had its frames %.1fs after the hub restarted", time.Since(restarted).Seconds())
}

func TestCLIErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"watch", "--channel", "../etc"}, "invalid channel name"},
		{[]string{"watch", "--channel", "x", "--hub", "ftp://h"}, "scheme must be"},
		{[]string{"--log-level", "loud", "hub"}, "--log-level"},
		{[]string{"hub", "--listen", "127.0.0.1:99999"}, "listen on"},
		{[]string{"hub", "--ping-interval", "10s", "--pong-wait", "5s"}, "must exceed"},
		{[]string{"watch"}, "channel"},
		{[]string{"record", "--channel", "x", "--out", "x.avi"}, "record to .mkv"}, // this binary has no OpenCV
		{[]string{"record", "--channel", "x", "--fps", "5000"}, "--fps 5000: must be 0 to 1000"},
		{[]string{"watch", "--channel", "x", "--credit", "9"}, "--credit 9: must be 0 to 8"},
		{[]string{"watch", "--channel", "x", "--duration", "-1s"}, "--duration -1s: must not be negative"},
		{[]string{"watch", "--channel", "x", "--connect-timeout", "-2s"}, "--connect-timeout -2s"},
		{[]string{"hub", "--max-memory", "12 parsecs"}, "--max-memory"},
		{[]string{"hub", "--max-pixels", "10"}, "--max-pixels 10"},
		{[]string{"hub", "--max-renditions", "99"}, "--max-renditions 99: must be 0 to 16"},
		{[]string{"watch", "--channel", "x", "--max-width", "-320"}, "--max-width -320"},
		{[]string{"watch", "--channel", "x", "--max-width", "70000"}, "--max-width 70000"},
		{[]string{"record", "--channel", "x", "--max-width", "-1"}, "--max-width -1"},
		{[]string{"publish", "--channel", "x", "--source", "-", "--renditions", "640"}, "--renditions needs OpenCV"},
		{[]string{"publish", "--channel", "x", "--source", "-", "--rendition", "abc"}, "--rendition"},
		{[]string{"hub", "--bogus"}, "flag provided but not defined: -bogus (see 'framehub hub --help')"},
		{[]string{"publish", "--channel", "x"}, "needs OpenCV"}, // the static build's stand-in
		{[]string{"nosuch"}, `no command "nosuch"`},
	} {
		cmd := exec.Command(nocgoBin, c.args...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("framehub %v succeeded; want an error", c.args)
			continue
		}
		if !strings.Contains(string(out), c.want) || strings.Contains(string(out), "panic") {
			t.Errorf("framehub %v said %q; want it to mention %q", c.args, out, c.want)
		}
		// One line, not a help dump.
		if lines := strings.Count(strings.TrimSpace(string(out)), "\n"); lines > 0 && !strings.Contains(string(out), "level=") {
			t.Errorf("framehub %v printed %d lines; want the error alone:\n%s", c.args, lines+1, out)
		}
	}
}

// TestGlobalFlagsAnywhere: --log-level and --log-format work before and
// after the subcommand, and after wins.
func TestGlobalFlagsAnywhere(t *testing.T) {
	for _, args := range [][]string{
		{"--log-format", "json", "hub", "--listen", "127.0.0.1:0"},
		{"hub", "--log-format", "json", "--listen", "127.0.0.1:0"},
		{"--log-format", "text", "hub", "--log-format", "json", "--listen", "127.0.0.1:0"},
	} {
		p := start(t, nocgoBin, nil, args...)
		p.waitLog(t, regexp.MustCompile(`"msg":"hub listening"`), 10*time.Second)
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.wait(t, 10*time.Second); err != nil {
			t.Fatalf("hub %v: %v", args, err)
		}
	}
	// Debug lines appear with --log-level debug after the subcommand.
	p := start(t, nocgoBin, nil, "watch", "--channel", "x", "--log-level", "debug", "--hub", "127.0.0.1:1", "--connect-timeout", "300ms")
	p.waitLog(t, regexp.MustCompile(`level=DEBUG|cannot reach hub`), 10*time.Second)
	p.wait(t, 10*time.Second)
}

func TestEnvVars(t *testing.T) {
	p := start(t, nocgoBin, []string{"FRAMEHUB_LISTEN=127.0.0.1:0", "FRAMEHUB_LOG_FORMAT=json"}, "hub")
	re := regexp.MustCompile(`"msg":"hub listening","addr":"(127\.0\.0\.1:\d+)"`)
	p.waitLog(t, re, 10*time.Second)
}

func TestBenchCommand(t *testing.T) {
	out, err := exec.Command(nocgoBin, "--log-level", "warn", "bench", "--subscribers", "3", "--slow", "1", "--stalled", "1",
		"--duration", "1s", "--warmup", "500ms", "--width", "320", "--height", "240", "--baseline", "--json").Output()
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	type result struct {
		Target  string `json:"target"`
		FastFPS struct {
			Median float64 `json:"median"`
		} `json:"fast_fps"`
		ServerCPUPerGB float64 `json:"server_cpu_s_per_gb"`
	}
	var rep struct {
		Targets []string                                 `json:"targets"`
		Median  map[string]result                        `json:"median"`
		Ratios  map[string]map[string]map[string]float64 `json:"ratios"`
		Runs    []json.RawMessage                        `json:"runs"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	if rep.Median["hub"].FastFPS.Median < 10 || rep.Median["write"].Target != "write" || rep.Median["sendfile"].Target != "sendfile" ||
		len(rep.Runs) != 1 || len(rep.Ratios["hub/write"]) == 0 || len(rep.Ratios["hub/sendfile"]) == 0 {
		t.Fatalf("bench report %s", out)
	}
	if runtime.NumCPU() >= 2 {
		// Pinned: the report says where each side ran, and the load
		// generator had its half of the CPUs.
		out, err := exec.Command(nocgoBin, "--log-level", "warn", "bench", "--subscribers", "3", "--duration", "1s", "--warmup", "500ms",
			"--width", "320", "--height", "240", "--pin", "--json").Output()
		if err != nil {
			t.Fatalf("bench --pin: %v", err)
		}
		var pinned struct {
			Pinned       string `json:"pinned"`
			LoadgenCores int    `json:"loadgen_cores"`
			Median       map[string]struct {
				ConnectS float64 `json:"connect_s"`
			} `json:"median"`
		}
		if err := json.Unmarshal(out, &pinned); err != nil || !strings.Contains(pinned.Pinned, "taskset") ||
			pinned.LoadgenCores != runtime.NumCPU()-max(1, runtime.NumCPU()/2) || pinned.Median["hub"].ConnectS <= 0 {
			t.Fatalf("bench --pin report %s (%v)", out, err)
		}
	}
	if b, err := exec.Command(nocgoBin, "bench", "--slow", "20", "--subscribers", "2").CombinedOutput(); err == nil || !strings.Contains(string(b), "--slow") {
		t.Fatalf("bench with more slow than subscribers: %v %s", err, b)
	}
}

// TestEveryFlagHasAnEnvVar keeps the promise that every flag can also be
// set from a FRAMEHUB_ environment variable (bench's own flags use
// FRAMEHUB_BENCH_, so that they do not collide with the hub's).
func TestEveryFlagHasAnEnvVar(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	check := func(where string, flags []cli.Flag) {
		for _, f := range flags {
			name := f.Names()[0]
			ev, ok := f.(interface{ GetEnvVars() []string })
			if !ok || len(ev.GetEnvVars()) == 0 {
				t.Errorf("%s --%s has no environment variable", where, name)
				continue
			}
			if got := ev.GetEnvVars()[0]; !strings.HasPrefix(got, "FRAMEHUB_") {
				t.Errorf("%s --%s reads %s; want a FRAMEHUB_ variable", where, name, got)
			}
		}
	}
	check("framehub", app.Flags)
	for _, c := range app.Commands {
		if !c.Hidden {
			check(c.Name, c.Flags)
		}
	}
}

// TestConfigFile: a hub's flags read from YAML and TOML files, by flag
// name; the command line wins over the environment, which wins over the
// file; a key no flag has, a value of the wrong kind, or a missing file is
// a one-line error naming it.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	p1, p2, p3 := freeLoopbackPort(t), freeLoopbackPort(t), freeLoopbackPort(t)
	yamlF := filepath.Join(dir, "hub.yaml")
	os.WriteFile(yamlF, []byte("# a hub\nlisten: 127.0.0.1:"+p1+"\nmax-pixels: 4000000\nallowed-hosts: [camhub.lan]\nwrite-timeout: 3s\n"), 0o644)
	tomlF := filepath.Join(dir, "hub.toml")
	os.WriteFile(tomlF, []byte("listen = \"127.0.0.1:"+p1+"\"\nmax-pixels = 5000000\n"), 0o644)
	for _, c := range []struct {
		name       string
		file       string
		env        []string
		args       []string
		wantPort   string
		wantPixels uint64
	}{
		{"yaml", yamlF, nil, nil, p1, 4000000},
		{"toml", tomlF, nil, nil, p1, 5000000},
		{"env over file", yamlF, []string{"FRAMEHUB_LISTEN=127.0.0.1:" + p2}, nil, p2, 4000000},
		{"flag over env", yamlF, []string{"FRAMEHUB_LISTEN=127.0.0.1:" + p2}, []string{"--listen", "127.0.0.1:" + p3, "--max-pixels", "6000000"}, p3, 6000000},
		{"config from the environment", "", []string{"FRAMEHUB_CONFIG=" + yamlF}, nil, p1, 4000000},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"hub"}
			if c.file != "" {
				args = append(args, "--config", c.file)
			}
			p := start(t, nocgoBin, c.env, append(args, c.args...)...)
			addr := p.waitLog(t, listenRE, 10*time.Second)[1]
			if !strings.HasSuffix(addr, ":"+c.wantPort) {
				t.Errorf("listening on %s; want port %s", addr, c.wantPort)
			}
			var lim protocol.HubLimits
			resp, err := http.Get("http://" + addr + protocol.PathLimits)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&lim)
			resp.Body.Close()
			if lim.MaxPixels != c.wantPixels {
				t.Errorf("max pixels %d; want %d", lim.MaxPixels, c.wantPixels)
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.wait(t, 10*time.Second)
		})
	}
	bad := func(name, content string) string {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(content), 0o644)
		return f
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"hub", "--config", bad("typo.yaml", "listne: 127.0.0.1:0\n")}, `unknown key "listne"`},
		{[]string{"hub", "--config", bad("kind.yaml", "write-timeout: banana\n")}, "write-timeout"},
		{[]string{"hub", "--config", bad("syntax.toml", "listen = \n")}, "syntax.toml"},
		{[]string{"hub", "--config", bad("conf.ini", "listen=x\n")}, "use a .yaml, .yml or .toml file"},
		{[]string{"hub", "--config", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{"watch", "--config", bad("watch.yaml", "listen: 127.0.0.1:0\nchannel: cam\n")}, `unknown key "listen"`},
		{[]string{"hub", "--config", "http://example.com/hub.yaml"}, "give a file path"},
	} {
		out, err := exec.Command(nocgoBin, c.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) || strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
			t.Errorf("framehub %v: %v %q; want one line with %q", c.args, err, out, c.want)
		}
	}
}

func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// TestMetricsListen: --metrics-listen serves Prometheus metrics on its own
// listener, never on the hub's port.
func TestMetricsListen(t *testing.T) {
	p, addr := startHub(t, nocgoBin, "--metrics-listen", "127.0.0.1:0")
	maddr := p.waitLog(t, regexp.MustCompile(`msg="metrics listening" addr=(127\.0\.0\.1:\d+)`), 10*time.Second)[1]
	publishFrames(t, addr, "cam1", 1, 5, 500)
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `framehub_frames_in_total{channel="cam1"} 5`) || !strings.Contains(string(body), "process_resident_memory_bytes") {
		t.Fatalf("/metrics lacks the channel's frames or the process collector:\n%.2000s", body)
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the hub's own port answers /metrics with %d; want 404", resp.StatusCode)
	}
}
