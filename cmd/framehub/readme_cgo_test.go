//go:build cgo

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
)

// readmeCommands are the README's framehub command lines, each with what
// running it must do here. A line missing from this table fails the test,
// so a new README line comes with its check.
//
//   - "run": starts and keeps running (a server), or ends with status 0
//     within its (shortened) duration;
//   - anything else: fails with status 1 and this text in its output (the
//     lines that need a camera, on a machine without one).
var readmeCommands = map[string]string{
	"framehub hub": "run",
	"framehub hub --metrics-listen 127.0.0.1:9090 --tokens-file tokens":                                               "run",
	"framehub hub --config hub.yaml":                                                                                  "run",
	"framehub hub --listen 0.0.0.0:8080 --view-token-file view.token --publish-token-file publish.token":              "run",
	"framehub hub --listen 0.0.0.0:8080 --insecure":                                                                   "run",
	"framehub publish --hub http://HUB:8080 --channel front-door --source 0":                                          "no camera 0",
	"framehub publish --channel lab --source clip.mp4 --loop --width 640 --filter overlay":                            "run",
	"framehub publish --channel relay --source http://other-hub:8080/channels/cam/stream.mjpeg":                       "run",
	"framehub publish --channel pattern --source test:1280x720 --fps 15 --quality 70":                                 "run",
	"framehub publish --hub http://127.0.0.1:8080 --channel porch --source test --on-demand":                          "run",
	"framehub watch --hub http://127.0.0.1:8080 --channel cam1":                                                       "run",
	"framehub watch --channel cam1 --duration 10s --json":                                                             "run",
	"framehub watch --channel cam1 --count 100 --save frames/":                                                        "run",
	"framehub view --hub http://HUB:8080 --channel front-door --channel lab":                                          "run",
	"framehub record --hub http://HUB:8080 --channel lab --out lab.mkv --duration 1h --segment 10m":                   "run",
	"framehub record --hub http://HUB:8080 --channel lab --segment 10m --keep 7d --max-size 50GiB":                    "run",
	"framehub record --hub http://HUB:8080 --channel door-people --on-event person --pre 5s --post 10s --dir events/": "run",
	"framehub record --channel door-people --on-event '*' --dir events/ --keep 30d --max-size 20GiB":                  "run",
	"framehub hub --webhook https://alerts.example/framehub --webhook-secret-file hook.secret":                        "run",
	"framehub demo": "run",
	"framehub demo --source clip.mp4 --loop --listen 0.0.0.0:8080 --insecure":                                                                                                 "run",
	"framehub bench --subscribers 300 --duration 10s --baseline --pin":                                                                                                        "run",
	"framehub bench --subscribers 100 --slow 10 --slow-fps 10 --credit 1 --compare-default --pin":                                                                             "run",
	"framehub bench --subscribers 20 --stalled 1000 --json":                                                                                                                   "run",
	"framehub bench --hub http://127.0.0.1:8080 --hub-pid 1234 --subscribers 50":                                                                                              "run",
	"framehub bench --cluster 3 --nats-server bin/nats-server --subscribers 5":                                                                                                "run",
	"framehub hub --listen 0.0.0.0:8443 --tls-cert hub.crt --tls-key hub.key --publish-token-file publish.token --view-token-file view.token --token-secret-file signing.key": "run",
	"framehub publish --hub https://hub:8443 --channel cam1 --source 0 --token-file publish.token --ca ca.pem":                                                                "no camera 0",
	"framehub watch --hub https://hub:8443 --channel cam1 --token-file view.token --ca ca.pem":                                                                                "run",
	"framehub process --hub http://HUB:8080 --in door --out door-faces --step faces":                                                                                          "run",
	"framehub process --in street --out street-people --step people,draw":                                                                                                     "run",
	"framehub process --in lobby --out lobby-private --step blur-faces,resize=640":                                                                                            "run",
	"framehub process --in yard --out yard-watch --step motion,people,draw --gate motion":                                                                                     "run",
	"framehub watch --channel cam1 --max-width 320":                                                                                                                           "run",
	"framehub watch --channel door-faces --print-meta --quiet":                                                                                                                "run",
	"framehub process --in door --out door-people --step people --event person --zone porch:0,0.5,1,0.5,1,1,0,1":                                                              "run",
	"framehub watch --channel door-people --json":                                                                                                                             "run",
	"framehub token --token-secret-file signing.key --channel cam1 --ttl 60s":                                                                                                 "run",
	"framehub token --token-secret-file signing.key --channel door --right publish --ttl 24h":                                                                                 "run",

	"framehub publish --hub http://HUB:8080 --channel hall --source test --renditions 640,320":          "run",
	"framehub process --hub http://HUB:8080 --in dock --out dock --out-rendition 320 --step resize=320": "run",
	"framehub watch --hub http://HUB:8080 --channel gate --max-width 320 --duration 10s":                "run",

	// Cut short by the FRAMEHUB_BENCH_PUBLISHER_ variables the test sets.
	"framehub bench --publisher": "run",
}

// readmeLines returns the framehub command lines of the README's ```sh
// code blocks, continuation lines joined and comments dropped.
func readmeLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in, pending := false, ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			// Only shell blocks are commands to run; ```text shows what
			// cannot run here (other programs, other machines).
			lang := strings.TrimPrefix(line, "```")
			in = !in && (lang == "sh" || lang == "bash")
			continue
		}
		if !in {
			continue
		}
		line = strings.TrimSpace(line)
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending = strings.TrimSpace(cont)
			continue
		}
		if i := strings.Index(line, " # "); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if strings.HasPrefix(line, "framehub ") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return out
}

// TestREADMECommandsRun runs every framehub command line of the README as
// written, in a directory holding the files the lines name (clip.mp4,
// token files, a certificate), with a hub and publishers running for the
// clients to use. What the lines leave to the reader is filled in: HUB
// (and hub, other-hub) is this machine, port 8080 is the test's hub (a
// server line gets a port of its own), 1234 is that hub's PID, durations
// are cut to 3 s, and windows open offscreen.
func TestREADMECommandsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every README command")
	}
	bin := cgoBinary(t)
	dir := t.TempDir()
	// Files the lines name.
	clip := makeClip(t, 20)
	if b, err := os.ReadFile(clip); err == nil {
		os.WriteFile(filepath.Join(dir, "clip.mp4"), b, 0o644)
	}
	testCA(t, dir)
	os.Rename(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "hub.crt"))
	os.Rename(filepath.Join(dir, "key.pem"), filepath.Join(dir, "hub.key"))
	pubTok, viewTok := "publish-token-from-the-readme", "view-token-from-the-readme"
	writeSecret(t, dir, "publish.token", pubTok)
	writeSecret(t, dir, "view.token", viewTok)
	writeSecret(t, dir, "signing.key", "signing-key-from-the-readme")
	writeSecret(t, dir, "tokens", pubTok+" publish *\n"+viewTok+" view *\n")
	writeSecret(t, dir, "hook.secret", "webhook-secret-from-the-readme")
	if err := os.WriteFile(filepath.Join(dir, "hub.yaml"), []byte("listen: 127.0.0.1:8080\nmax-channels: 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// bin/nats-server, as scripts/bench-cluster.sh builds it (from the
	// module go.mod pins; its packages are in the build cache already).
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "nats-server"), "github.com/nats-io/nats-server/v2")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, out)
	}

	// The hub the clients use, and one with TLS and tokens, each with
	// publishers on the channels the lines watch.
	port, tlsPort := freeLoopbackPort(t), freeLoopbackPort(t)
	hp := start(t, bin, nil, "hub", "--listen", "127.0.0.1:"+port)
	hp.waitLog(t, listenRE, 10*time.Second)
	tp := start(t, bin, nil, "hub", "--listen", "127.0.0.1:"+tlsPort, "--tls-cert", filepath.Join(dir, "hub.crt"),
		"--tls-key", filepath.Join(dir, "hub.key"), "--publish-token-file", filepath.Join(dir, "publish.token"),
		"--view-token-file", filepath.Join(dir, "view.token"))
	tp.waitLog(t, regexp.MustCompile(`msg="hub listening"`), 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	frames := cameraFrames(320, 240, 5000)
	done := make(chan struct{})
	channels := []string{"cam", "cam1", "front-door", "lab", "door", "street", "lobby", "yard", "gate", "dock"}
	for _, ch := range channels {
		go func() {
			hubtest.Publish(t, ctx, "127.0.0.1:"+port, ch, 20*time.Millisecond, frames)
			done <- struct{}{}
		}()
	}
	defer func() {
		cancel()
		for range channels {
			<-done
		}
	}()
	tlsPub := start(t, bin, nil, "publish", "--hub", "https://127.0.0.1:"+tlsPort, "--channel", "cam1", "--source", "test:320x240",
		"--token-file", filepath.Join(dir, "publish.token"), "--ca", filepath.Join(dir, "ca.pem"), "--quiet")
	tlsPub.waitLog(t, regexp.MustCompile(`connected to hub`), 20*time.Second)

	lines := readmeLines(t)
	seen := map[string]bool{}
	durRE := regexp.MustCompile(`--duration \S+`)
	for _, line := range lines {
		seen[line] = true
		want, ok := readmeCommands[line]
		if !ok {
			t.Errorf("README line %q is not in readmeCommands: add what running it must do", line)
			continue
		}
		t.Run(line, func(t *testing.T) {
			server := strings.HasPrefix(line, "framehub hub") || strings.HasPrefix(line, "framehub demo")
			cmdline := line
			for _, r := range [][2]string{{"HUB:8080", "127.0.0.1:8080"}, {"other-hub:8080", "127.0.0.1:8080"}, {"hub:8443", "127.0.0.1:" + tlsPort}} {
				cmdline = strings.ReplaceAll(cmdline, r[0], r[1])
			}
			own := port
			if server {
				own = freeLoopbackPort(t)
				cmdline = strings.ReplaceAll(cmdline, ":8443", ":"+own)
				cmdline = strings.ReplaceAll(cmdline, ":9090", ":"+freeLoopbackPort(t))
			}
			cmdline = strings.ReplaceAll(cmdline, ":8080", ":"+own)
			cmdline = strings.ReplaceAll(cmdline, "--hub-pid 1234", "--hub-pid "+strconv.Itoa(hp.cmd.Process.Pid))
			cmdline = durRE.ReplaceAllString(cmdline, "--duration 3s")
			args := strings.Fields(cmdline)[1:]
			env := []string{"FRAMEHUB_LISTEN=127.0.0.1:" + own, "FRAMEHUB_DURATION=3s", "QT_QPA_PLATFORM=offscreen", "FRAMEHUB_BENCH_WARMUP=500ms"}
			// bench --publisher: one short run on small clips.
			env = append(env, "FRAMEHUB_BENCH_PUBLISHER_SIZES=320x240", "FRAMEHUB_BENCH_PUBLISHER_FRAMES=30", "FRAMEHUB_BENCH_PUBLISHER_RUNS=1")
			if args[0] != "bench" {
				// The hub the clients use when a line names none (bench would
				// take it for a running hub to load).
				env = append(env, "FRAMEHUB_HUB=http://127.0.0.1:"+port)
			}
			cmd := exec.Command(bin, args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), env...)
			var out testutil.LockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			limit := 60 * time.Second
			if server {
				// A server runs until it is told to stop; it must be up and
				// still running after a moment, then stop cleanly.
				select {
				case err := <-waited:
					t.Fatalf("%s ended early: %v\n%s", cmdline, err, out.String())
				case <-time.After(3 * time.Second):
				}
				if !strings.Contains(out.String(), "listening") {
					t.Fatalf("%s: no 'listening' line after 3 s:\n%s", cmdline, out.String())
				}
				cmd.Process.Signal(syscall.SIGTERM) // by PID: the process this test started
				limit = 15 * time.Second
			}
			select {
			case err := <-waited:
				code := exitCode(err)
				switch {
				case want == "run" && code != 0:
					t.Fatalf("%s: exit %d; want 0\n%s", cmdline, code, out.String())
				case want != "run" && (code != 1 || !strings.Contains(out.String(), want)):
					t.Fatalf("%s: exit %d; want 1 and %q\n%s", cmdline, code, want, out.String())
				}
			case <-time.After(limit):
				cmd.Process.Kill()
				<-waited
				t.Fatalf("%s did not end within %v\n%s", cmdline, limit, out.String())
			}
		})
	}
	for line := range readmeCommands {
		if !seen[line] {
			t.Errorf("readmeCommands lists %q, which the README no longer has", line)
		}
	}
	if len(lines) < 10 {
		t.Fatalf("found only %d command lines in the README", len(lines))
	}
}
