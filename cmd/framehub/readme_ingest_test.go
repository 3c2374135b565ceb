package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// readmeIngestLines are the shell lines of the README's "Publishing
// without OpenCV" section (```sh blocks; ```text shows what needs a
// camera, GStreamer or a Pi), each with what running it must do here:
//
//   - "stream": keeps publishing to the channel it names until stopped
//     (it is stopped once the channel has 20 frames);
//   - "once": ends with status 0 (and a POST leaves a frame on its channel).
//
// A line missing from this table fails the test.
var readmeIngestLines = map[string]string{
	"ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f mpjpeg http://HUB:8080/channels/cam1/stream.mjpeg":                                                                                              "stream",
	"ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f mjpeg - | framehub publish --hub http://HUB:8080 --channel cam2 --source -":                                                                     "stream",
	"curl -X POST --data-binary @frame.jpg -H 'Content-Type: image/jpeg' http://HUB:8080/channels/cam3/snapshot.jpg":                                                                                          "once",
	"curl -s http://HUB:8080/channels/cam3/snapshot.jpg | cmp - frame.jpg":                                                                                                                                    "once",
	`ffmpeg -re -f lavfi -i testsrc2=size=640x360:rate=30 -headers "Authorization: Bearer $(cat publish.token)" -f mpjpeg http://HUB:8080/channels/cam1/stream.mjpeg`:                                         "stream",
	"framehub token --token-secret-file signing.key --channel door --right publish --ttl 24h":                                                                                                                 "once",
	`curl -X POST --data-binary @frame.jpg -H 'Content-Type: image/jpeg' "http://HUB:8080/channels/door/snapshot.jpg?token=$(framehub token --token-secret-file signing.key --channel door --right publish)"`: "once",
}

// readmeSection returns the lines of the ```sh blocks of the README
// section titled title, in order.
func readmeSection(t *testing.T, title string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	inSection, inBlock := false, false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			inSection = line == "## "+title
		case strings.HasPrefix(line, "```"):
			inBlock = !inBlock && line == "```sh"
		case inSection && inBlock && strings.TrimSpace(line) != "":
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// shellLine is a README shell line running under bash, in a process group
// of its own.
type shellLine struct {
	cmd    *exec.Cmd
	out    testutil.LockedBuffer
	waited chan error // its exit, once; put back by whoever reads it
}

// runShellLine starts line with bash -o pipefail in dir, with binDir first
// on PATH and env added.
func runShellLine(t *testing.T, line, dir, binDir string, env ...string) *shellLine {
	t.Helper()
	r := &shellLine{cmd: exec.Command("bash", "-o", "pipefail", "-c", line), waited: make(chan error, 1)}
	r.cmd.Dir = dir
	r.cmd.Env = append(append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH")), env...)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the pipeline is one group, stopped as one
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.waited <- r.cmd.Wait() }()
	return r
}

// stop ends the line's process group (the one this test started): TERM,
// then KILL after 5 s.
func (r *shellLine) stop() {
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-r.waited:
		r.waited <- err
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		r.waited <- <-r.waited
	}
}

// channelFrames returns how many frames a channel of the hub at addr has.
func channelFrames(addr, name string) uint64 {
	resp, err := http.Get("http://" + addr + "/api/channels")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var list []protocol.ChannelInfo
	_ = json.NewDecoder(resp.Body).Decode(&list)
	for _, c := range list {
		if c.Name == name {
			return c.Frames
		}
	}
	return 0
}

var channelInLine = regexp.MustCompile(`/channels/([A-Za-z0-9_-]+)/(stream\.mjpeg|snapshot\.jpg)|--channel ([A-Za-z0-9_-]+) --source`)

// TestREADMEPublishingWithoutOpenCV runs the section's shell lines as
// written, in order, with bash, in a directory holding the files they name
// (frame.jpg, publish.token, signing.key) and with the static build first
// on PATH as framehub. HUB is a hub of the test's: lines that use a token
// go to one that needs the publish right, the others to an open one.
func TestREADMEPublishingWithoutOpenCV(t *testing.T) {
	testutil.RequireTool(t, "ffmpeg")
	testutil.RequireTool(t, "curl")
	dir, binDir := t.TempDir(), t.TempDir()
	if err := os.Symlink(nocgoBin, filepath.Join(binDir, "framehub")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "frame.jpg"), testutil.JPEG(320, 240, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSecret(t, dir, "publish.token", "publish-token-from-the-readme")
	writeSecret(t, dir, "signing.key", "signing-key-from-the-readme")
	_, open := startHub(t, nocgoBin)
	_, guarded := startHub(t, nocgoBin, "--publish-token-file", filepath.Join(dir, "publish.token"),
		"--token-secret-file", filepath.Join(dir, "signing.key"))

	lines := readmeSection(t, "Publishing without OpenCV")
	seen := map[string]bool{}
	for _, line := range lines {
		seen[line] = true
		want, ok := readmeIngestLines[line]
		if !ok {
			t.Errorf("README line %q is not in readmeIngestLines: add what running it must do", line)
			continue
		}
		addr := open
		if strings.Contains(line, "token") {
			addr = guarded
		}
		channel := ""
		if m := channelInLine.FindStringSubmatch(line); m != nil {
			channel = m[1] + m[3]
		}
		t.Run(line, func(t *testing.T) {
			before := channelFrames(addr, channel)
			run := runShellLine(t, strings.ReplaceAll(line, "HUB:8080", addr), dir, binDir)
			waited, out, stop := run.waited, &run.out, run.stop
			switch want {
			case "stream":
				deadline := time.Now().Add(30 * time.Second)
				for channelFrames(addr, channel) < before+20 {
					select {
					case err := <-waited:
						t.Fatalf("ended (%v) before publishing 20 frames to %s:\n%s", err, channel, out.String())
					case <-time.After(50 * time.Millisecond):
					}
					if time.Now().After(deadline) {
						stop()
						t.Fatalf("channel %s got %d frames in 30 s; want 20:\n%s", channel, channelFrames(addr, channel)-before, out.String())
					}
				}
				stop()
			case "once":
				select {
				case err := <-waited:
					if err != nil {
						t.Fatalf("exit %v; want 0:\n%s", err, out.String())
					}
				case <-time.After(30 * time.Second):
					stop()
					t.Fatalf("did not end within 30 s:\n%s", out.String())
				}
				if strings.Contains(line, "-X POST") && channelFrames(addr, channel) != before+1 {
					t.Fatalf("channel %s has %d new frames; want the one posted:\n%s", channel, channelFrames(addr, channel)-before, out.String())
				}
			}
		})
	}
	for line := range readmeIngestLines {
		if !seen[line] {
			t.Errorf("readmeIngestLines lists %q, which the README section no longer has", line)
		}
	}
}
