//go:build cgo

package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// TestEventsEndToEnd runs events as a user would: a hub with a webhook
// to a real HTTP receiver (which fails each notice's first try), the face
// detector with face events, an event recorder and the event API, on
// frames of OpenCV's sample still with a face, then of an empty picture.
// The receiver gets the start and the end once each, signed; the API lists
// the event ended, with a snapshot that is a JPEG of the frame; the
// recorder's file starts before the event and plays.
func TestEventsEndToEnd(t *testing.T) {
	bin := cgoBinary(t)
	dir := t.TempDir()
	secret := "end-to-end-webhook-secret-0123456789"
	secretFile := writeSecret(t, dir, "hook.secret", secret)
	var mu sync.Mutex
	tries := map[string]int{}
	var notices []protocol.EventInfo
	badSig := 0
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("X-Framehub-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) {
			badSig++
		}
		key := r.Header.Get("Idempotency-Key")
		if tries[key]++; tries[key] == 1 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		var n protocol.EventInfo
		json.Unmarshal(body, &n)
		notices = append(notices, n)
	}))
	defer rc.Close()
	_, addr := startHub(t, nocgoBin, "--webhook", rc.URL, "--webhook-secret-file", secretFile)
	p := start(t, bin, nil, "process", "--hub", addr, "--in", "door", "--out", "door-faces", "--step", "faces",
		"--event", "face", "--event-frames", "2/3", "--event-quiet", "1s", "--quiet")
	events := filepath.Join(dir, "events")
	rec := start(t, nocgoBin, nil, "record", "--hub", addr, "--channel", "door-faces", "--on-event", "face",
		"--pre", "1s", "--post", "1s", "--dir", events, "--fps", "10")
	waitSubscribers(t, addr, 2)
	face := messiFrames(t, 1)[0]
	grey := hubtest.JPEGFrame(548, 342, testutil.JPEG(548, 342, 1))
	var frames []protocol.Frame
	for i := range 60 {
		if i >= 20 && i < 40 {
			frames = append(frames, face)
		} else {
			frames = append(frames, grey)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pushFrames(t, ctx, addr, "door", 100*time.Millisecond, frames)
	testutil.Eventually(t, 20*time.Second, "the start and the end delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(notices) == 2
	})
	mu.Lock()
	if notices[0].Type != protocol.EventStart || notices[1].Type != protocol.EventEnd || notices[0].ID != notices[1].ID ||
		notices[0].Label != "face" || notices[0].Channel != "door-faces" || notices[0].End != nil || notices[1].End == nil || badSig != 0 {
		t.Errorf("notices %+v (%d bad signatures); want the face event's start and end, signed", notices, badSig)
	}
	for k, n := range tries {
		if n != 2 {
			t.Errorf("%s tried %d times; want twice (the first failed)", k, n)
		}
	}
	id := notices[0].ID
	mu.Unlock()

	var list []protocol.EventInfo
	resp, err := http.Get("http://" + addr + protocol.PathEvents + "?channel=door-faces")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list) != 1 || list[0].ID != id || list[0].End == nil || list[0].Snapshot == "" || list[0].Score <= 0 {
		t.Fatalf("/api/events: %+v; want the ended face event with a snapshot", list)
	}
	resp, err = http.Get("http://" + addr + list[0].Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(snap)); err != nil || cfg.Width != 548 || !bytes.Equal(snap, face.Payload) {
		t.Errorf("snapshot: %v, %d bytes; want the face frame's JPEG", err, len(snap))
	}

	p.cmd.Process.Signal(os.Interrupt)
	rec.cmd.Process.Signal(os.Interrupt)
	if err := rec.wait(t, 10*time.Second); err != nil {
		t.Fatalf("record: %v", err)
	}
	p.wait(t, 10*time.Second)
	files, _ := filepath.Glob(filepath.Join(events, "door-faces-*-face-"+id+".mkv"))
	if len(files) != 1 {
		t.Fatalf("event files %v; want one named after the event", files)
	}
	// Every frame the recorder wrote plays (how many depends on how fast
	// the detector kept up on this machine).
	m := regexp.MustCompile(`(\d+) frames written`).FindStringSubmatch(rec.errText())
	if m == nil {
		t.Fatalf("no summary from record:\n%s", rec.errText())
	}
	written, _ := strconv.Atoi(m[1])
	if n, size := probeFrames(t, files[0]); n != written || n < 3 || size != "548x342" {
		t.Errorf("the event file decodes to %d frames of %s; the recorder wrote %d", n, size, written)
	}
	t.Logf("webhook tries %v; event %s: %+v; file %s", tries, id, list[0], filepath.Base(files[0]))
}
