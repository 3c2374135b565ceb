//go:build cgo

package main

import (
	"bytes"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
)

// TestPublishStdinWithOpenCV: the OpenCV build reads - too, and with
// processing flags decodes each JPEG and processes it: ffmpeg's 640x360
// becomes 320x180.
func TestPublishStdinWithOpenCV(t *testing.T) {
	ffmpeg := testutil.RequireTool(t, "ffmpeg")
	bin := cgoBinary(t)
	_, addr := startHub(t, nocgoBin)
	_, in := hubtest.Subscribe(t, addr, "cam", "")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ff := exec.Command(ffmpeg, "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "2", "-f", "mjpeg", "-")
	ff.Stdout = pw
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ff.Process.Kill(); ff.Wait() }) // by PID
	pw.Close()
	p := startWithStdin(t, bin, pr, "publish", "--hub", addr, "--channel", "cam", "--source", "-", "--width", "320", "--filter", "gray", "--quiet")
	pr.Close()
	got := collect(in, 60, 20*time.Second)
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("publish did not end well when stdin ended: %v", err)
	}
	if len(got) < 30 {
		t.Fatalf("subscriber got %d processed frames of 60", len(got))
	}
	for _, f := range got {
		if f.Width != 320 || f.Height != 180 {
			t.Fatalf("frame %d is %dx%d; want 320x180 (resized)", f.Seq, f.Width, f.Height)
		}
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(got[len(got)-1].Payload)); err != nil || cfg.Width != 320 {
		t.Fatalf("the last frame does not decode: %v", err)
	}
	t.Logf("stdin through OpenCV: %d frames of 320x180", len(got))
}

// TestPublishHTTPFallsBack: an http(s) URL that is not an MJPEG stream
// (an MP4 file here) is not relayed but decoded: by OpenCV by default
// (--decoder auto), or by ffmpeg when asked.
func TestPublishHTTPFallsBack(t *testing.T) {
	bin := cgoBinary(t)
	clip := makeClip(t, 20)
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(clip))))
	defer srv.Close()
	_, addr := startHub(t, nocgoBin)
	for _, c := range []struct{ decoder, says string }{
		{"auto", "not an MJPEG stream; reading it with OpenCV"},
		{"ffmpeg", "not an MJPEG stream; decoding it with ffmpeg"},
	} {
		t.Run(c.decoder, func(t *testing.T) {
			_, in := hubtest.Subscribe(t, addr, "clip-"+c.decoder, "")
			p := start(t, bin, nil, "publish", "--hub", addr, "--channel", "clip-"+c.decoder, "--source", srv.URL+"/clip.mp4",
				"--decoder", c.decoder, "--duration", "4s", "--quiet")
			f := hubtest.Next(t, in, 15*time.Second)
			if f.Width != 320 || f.Height != 240 {
				t.Fatalf("frame from the MP4 URL is %dx%d; want 320x240", f.Width, f.Height)
			}
			if err := p.wait(t, 15*time.Second); err != nil {
				t.Fatalf("publish: %v", err)
			}
			if !strings.Contains(p.errText(), c.says) {
				t.Errorf("no word of the fallback (%q):\n%s", c.says, p.errText())
			}
		})
	}
}
