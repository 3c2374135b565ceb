//go:build cgo

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// renditionsOn returns the renditions the hub at addr lists for channel,
// and how many frames each has, by name.
func renditionsOn(addr, channel string) map[string]protocol.RenditionInfo {
	resp, err := http.Get("http://" + addr + "/api/channels")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var list []protocol.ChannelInfo
	_ = json.NewDecoder(resp.Body).Decode(&list)
	out := map[string]protocol.RenditionInfo{}
	for _, c := range list {
		if c.Name == channel {
			for _, r := range c.Renditions {
				out[r.Name] = r
			}
		}
	}
	return out
}

// TestREADMEManyCameras runs the shell lines of the README's "Many
// cameras on one screen" section as written, in order, with bash and the
// OpenCV build first on PATH as framehub, against a hub of the test's: the
// publisher's, ffmpeg's and the processing worker's renditions appear
// (each line keeps running until its channel lists them, 10 frames of
// each), and the viewers' lines get the rendition they ask for.
func TestREADMEManyCameras(t *testing.T) {
	testutil.RequireTool(t, "ffmpeg")
	testutil.RequireTool(t, "curl")
	bin := cgoBinary(t)
	dir, binDir := t.TempDir(), t.TempDir()
	if err := os.Symlink(bin, filepath.Join(binDir, "framehub")); err != nil {
		t.Fatal(err)
	}
	_, addr := startHub(t, bin)
	// dock arrives with its main picture alone, from a camera of its own.
	ctx, cancel := context.WithCancel(context.Background())
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		hubtest.Publish(t, ctx, addr, "dock", 50*time.Millisecond, cameraFrames(640, 360, 2000))
	}()
	defer func() { cancel(); <-fed }()

	// What each line must do: renditions its channel must list with 10
	// frames each while it runs, or a check once it has ended well.
	checks := map[string]struct {
		channel string
		want    []string
		after   func(t *testing.T, out string)
	}{
		"framehub publish --hub http://HUB:8080 --channel hall --source test --renditions 640,320": {channel: "hall", want: []string{"main", "640", "320"}},
		`ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -filter_complex "split=2[main][small];[small]scale=320:-2[thumb]" -map "[main]" -flush_packets 1 -f mpjpeg http://HUB:8080/channels/gate/stream.mjpeg -map "[thumb]" -flush_packets 1 -f mpjpeg "http://HUB:8080/channels/gate/stream.mjpeg?rendition=320"`: {
			channel: "gate", want: []string{"main", "320"}},
		"framehub process --hub http://HUB:8080 --in dock --out dock --out-rendition 320 --step resize=320": {channel: "dock", want: []string{"main", "320"}},
		"framehub watch --hub http://HUB:8080 --channel gate --max-width 320 --duration 10s": {after: func(t *testing.T, out string) {
			if !strings.Contains(out, "320x180") {
				t.Fatalf("watch --max-width 320 said:\n%s\nwant frames of 320x180", out)
			}
		}},
		`curl -o thumb.jpg "http://HUB:8080/channels/gate/snapshot.jpg?max-width=320"`: {after: func(t *testing.T, _ string) {
			b, err := os.ReadFile(filepath.Join(dir, "thumb.jpg"))
			if w, h, jerr := protocol.JPEGSize(b); err != nil || jerr != nil || w != 320 || h != 180 {
				t.Fatalf("thumb.jpg: %dx%d (%v %v); want 320x180", w, h, err, jerr)
			}
		}},
	}
	outer := t
	lines := readmeSection(t, "Many cameras on one screen")
	seen := map[string]bool{}
	for _, line := range lines {
		seen[line] = true
		c, ok := checks[line]
		if !ok {
			t.Errorf("README line %q has no check here: add what running it must do", line)
			continue
		}
		t.Run(line, func(t *testing.T) {
			run := runShellLine(t, strings.ReplaceAll(line, "HUB:8080", addr), dir, binDir, "QT_QPA_PLATFORM=offscreen")
			waited, out := run.waited, &run.out
			outer.Cleanup(run.stop) // streams keep running, for the viewers' lines after them
			if c.after != nil {
				select {
				case err := <-waited:
					waited <- err
					if err != nil {
						t.Fatalf("exit %v; want 0:\n%s", err, out.String())
					}
					c.after(t, out.String())
				case <-time.After(60 * time.Second):
					t.Fatalf("did not end within 60 s:\n%s", out.String())
				}
				return
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				have := renditionsOn(addr, c.channel)
				all := true
				for _, name := range c.want {
					all = all && have[name].Frames >= 10
				}
				if all && len(have) == len(c.want) {
					break
				}
				select {
				case err := <-waited:
					waited <- err
					t.Fatalf("ended (%v) before %s listed %v:\n%s", err, c.channel, c.want, out.String())
				case <-time.After(100 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s lists %v after 60 s; want %v with 10 frames each:\n%s", c.channel, have, c.want, out.String())
				}
			}
		})
	}
	for line := range checks {
		if !seen[line] {
			t.Errorf("the check of %q has no README line any more", line)
		}
	}
}
