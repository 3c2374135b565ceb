package publisher

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"framehub/hub"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// TestSenderRetriesRateLimits: a hub that answers 429 (too many
// connections from this address) is retried with backoff, and the sender
// gets in once a place frees; a refusal retrying cannot fix is returned
// at once as a *protocol.RefusedError.
func TestSenderRetriesRateLimits(t *testing.T) {
	h := hub.New(hub.Config{MaxConnsPerIP: 2, LimitLoopback: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := h.Server()
	go srv.Serve(h.Listener(ln))
	t.Cleanup(func() { h.Close(); srv.Close() })
	base := "http://" + ln.Addr().String()

	// Two idle connections take this address's places.
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	s, err := NewSender(SenderConfig{Hub: base, Channel: "cam", MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Connect(ctx) }()
	testutil.Eventually(t, 5*time.Second, "the sender to keep trying (3 refusals)", func() bool {
		return h.Stats().Refused["too_many_connections_per_ip"] >= 3
	})
	select {
	case err := <-done:
		t.Fatalf("Connect gave up on 429: %v", err)
	default:
	}
	held[0].Close()
	if err := <-done; err != nil {
		t.Fatalf("Connect after a place freed: %v", err)
	}
	held[1].Close()

	// A bad token is permanent: no retry.
	auth, err := hub.NewAuth([]hub.Grant{{Token: "publish-token-0123456789", Rights: hub.RightPublish, Channels: []string{"*"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h2 := hub.New(hub.Config{Auth: auth, DenyDelay: -1})
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	srv2 := &http.Server{Handler: h2}
	go srv2.Serve(ln2)
	t.Cleanup(func() { h2.Close(); srv2.Close() })
	s2, _ := NewSender(SenderConfig{Hub: ln2.Addr().String(), Channel: "cam",
		Header: http.Header{"Authorization": {"Bearer wrong-token-0123456789"}}})
	var rerr *protocol.RefusedError
	if err := s2.Connect(ctx); !errors.As(err, &rerr) || rerr.Status != http.StatusUnauthorized || !rerr.Permanent() {
		t.Fatalf("Connect with a wrong token = %v; want a permanent 401 refusal", err)
	}
}
