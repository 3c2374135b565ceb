package publisher

import (
	"bytes"
	"context"
	"errors"
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
