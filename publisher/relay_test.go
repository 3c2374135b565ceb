package publisher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// TestRelayKeepsTheNewest feeds a relay a stream far faster than any hub
// takes it (2000 JPEGs at once on its stdin): it sends some, skips and
// counts the rest, never queues, and the last one sent is the newest.
func TestRelayKeepsTheNewest(t *testing.T) {
	h := hubtest.Start(t, hub.Config{MaxFPSPerPublisher: 100000})
	_, in := hubtest.Subscribe(t, h.Addr, "cam", "")
	const n = 2000
	var stream bytes.Buffer
	for i := range n {
		stream.Write(testutil.FakeJPEG(64, 48, uint64(i), 20000))
	}
	r, err := NewRelay(context.Background(), RelayConfig{Source: "-", Stdin: &stream, Sender: SenderConfig{Hub: h.URL, Channel: "cam"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := r.Stats()
	if s.Captured != n || s.Sent+s.Skipped != n || s.Skipped == 0 || s.Width != 64 || s.Height != 48 {
		t.Fatalf("stats %+v; want %d captured, each sent or skipped, some skipped", s, n)
	}
	var last protocol.Frame
	for f := hubtest.Next(t, in, 5*time.Second); ; f = hubtest.Next(t, in, 5*time.Second) {
		if last = f; f.Seq == n {
			break
		}
	}
	if !bytes.Equal(last.Payload, testutil.FakeJPEG(64, 48, n-1, 20000)) {
		t.Fatal("the last frame is not the stream's last JPEG")
	}
	t.Logf("%d JPEGs at once: %d sent, %d skipped", n, s.Sent, s.Skipped)
}

// TestRelayRefusesWhatIsNotMJPEG: stdin holding something else ends the
// relay with the reason; a URL that is not an MJPEG stream is refused
// when the relay is made.
func TestRelayRefusesWhatIsNotMJPEG(t *testing.T) {
	h := hubtest.Start(t, hub.Config{})
	r, err := NewRelay(context.Background(), RelayConfig{Source: "-", Stdin: bytes.NewReader([]byte("GIF89a....")),
		Sender: SenderConfig{Hub: h.URL, Channel: "cam"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, protocol.ErrNotJPEG) {
		t.Fatalf("Run on a GIF: %v; want ErrNotJPEG", err)
	}
	_, err = NewRelay(ctx, RelayConfig{Source: h.URL + "/api/stats", Sender: SenderConfig{Hub: h.URL, Channel: "cam"}})
	if !errors.Is(err, protocol.ErrNotJPEG) {
		t.Fatalf("a JSON URL as the source: %v; want ErrNotJPEG", err)
	}
}

// mjpegCamera is an MJPEG-over-HTTP camera that a test takes away and
// brings back: up, it streams a JPEG every 40 ms; down, it ends its
// streams and answers 503; silent, it keeps its streams open and sends
// nothing.
type mjpegCamera struct {
	mode    atomic.Value // "up", "down" or "silent"
	seq     atomic.Uint64
	refused atomic.Int64 // requests answered 503
}

func (c *mjpegCamera) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.mode.Load() == "down" {
		c.refused.Add(1)
		http.Error(w, "camera rebooting", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		switch c.mode.Load() {
		case "down":
			return // the stream ends
		case "silent":
			continue
		}
		j := testutil.FakeJPEG(64, 48, c.seq.Add(1), 2000)
		if _, err := fmt.Fprintf(w, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n", len(j), j); err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

// TestRelayMJPEGURLDropsAndReturns: an MJPEG URL that goes away (its
// stream ends, then it answers 503 for a while) and goes silent: the relay
// logs the loss once however often reopening fails, says it is stalled,
// logs each return once, and the hub lists each state.
func TestRelayMJPEGURLDropsAndReturns(t *testing.T) {
	h := hubtest.Start(t, hub.Config{})
	cam := &mjpegCamera{}
	cam.mode.Store("up")
	srv := httptest.NewServer(cam)
	t.Cleanup(srv.Close)
	var logs testutil.LockedBuffer
	r, err := NewRelay(context.Background(), RelayConfig{Source: srv.URL + "/video.mjpeg", SourceTimeout: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Sender: SenderConfig{Hub: h.URL, Channel: "cam"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		r.Close()
	})
	listed := func(want string) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, "the hub listing the source "+want, func() bool {
			for _, in := range h.Channels() {
				if in.Name == "cam" {
					return in.SourceState == want
				}
			}
			return false
		})
	}
	// sent waits until the camera's frames reach the hub again.
	sent := func(what string) {
		t.Helper()
		before := r.Stats().Sent
		testutil.Eventually(t, 10*time.Second, what, func() bool { return r.Stats().Sent >= before+5 })
	}
	sent("the first frames")
	listed(protocol.SourceLive)

	cam.mode.Store("down")
	listed(protocol.SourceReconnecting)
	before := r.Stats().SourceError
	testutil.Eventually(t, 10*time.Second, "the 503 as the reason", func() bool { return strings.Contains(r.Stats().SourceError, "503") })
	testutil.Eventually(t, 10*time.Second, "three reopens refused", func() bool { return cam.refused.Load() >= 3 })
	cam.mode.Store("up")
	sent("frames after the camera came back")
	listed(protocol.SourceLive)

	cam.mode.Store("silent")
	listed(protocol.SourceStalled)
	cam.mode.Store("up")
	sent("frames after the camera spoke again")
	listed(protocol.SourceLive)

	text := logs.String()
	t.Logf("the relay's log:\n%s", text)
	count := func(msg string) int { return strings.Count(text, `msg="`+msg+`"`) }
	if count("source lost; reconnecting") != 1 || count("source stalled") != 1 || count("source back") != 2 {
		t.Errorf("want the loss, the stall and each return logged once (first reason %q); got\n%s", before, text)
	}
	if n := count("source error"); n > 1 {
		t.Errorf("the failed reopens logged %d times within 10 s; want at most once:\n%s", n, text)
	}
	if s := r.Stats(); s.SourceLosses != 2 {
		t.Errorf("%d losses counted; want 2", s.SourceLosses)
	}
}
