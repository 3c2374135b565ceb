package hub

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

func grantsAuth(t *testing.T, grants ...Grant) *Auth {
	t.Helper()
	a, err := NewAuth(grants, []byte("reload-test-signing-key"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestReloadRevokesOnlyWhatItMust: a reload that drops a view token
// closes that token's subscriber with 4003 and ends its MJPEG stream,
// keeps the publisher and the viewer whose tokens still grant their
// rights, and applies at once to new connections.
func TestReloadRevokesOnlyWhatItMust(t *testing.T) {
	const oldView, keptView, newView, pub = "old-view-token-0123456", "kept-view-token-0123456", "new-view-token-0123456", "publish-token-0123456"
	h, base := testHub(t, Config{DenyDelay: -1, Auth: grantsAuth(t,
		Grant{Token: oldView, Rights: RightView, Channels: []string{"*"}},
		Grant{Token: keptView, Rights: RightView, Channels: []string{"cam"}},
		Grant{Token: pub, Rights: RightPublish, Channels: []string{"*"}})})
	dialAs := func(endpoint, tok string) (*websocket.Conn, int) {
		c, resp, err := websocket.DefaultDialer.Dial(wsURL(base, endpoint, "cam"), http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { c.Close() })
		return c, 101
	}
	publisher, _ := dialAs(protocol.PathPublish, pub)
	revoked, _ := dialAs(protocol.PathSubscribe, oldView)
	kept, _ := dialAs(protocol.PathSubscribe, keptView)
	keptIn := frames(t, kept)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/channels/cam/stream.mjpeg", nil)
	req.Header.Set("Authorization", "Bearer "+oldView)
	mjpeg, err := http.DefaultClient.Do(req)
	if err != nil || mjpeg.StatusCode != 200 {
		t.Fatalf("MJPEG with the old token: %v %v", err, mjpeg)
	}
	defer mjpeg.Body.Close()
	mjpegDone := make(chan struct{})
	go func() { defer close(mjpegDone); io.Copy(io.Discard, mjpeg.Body) }()
	eventually(t, 3*time.Second, "the publisher, two subscribers and a stream registered", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.conns) == 3 && len(h.streams) == 1
	})

	closed := h.Reload(Access{Auth: grantsAuth(t,
		Grant{Token: newView, Rights: RightView, Channels: []string{"*"}},
		Grant{Token: keptView, Rights: RightView, Channels: []string{"cam"}},
		Grant{Token: pub, Rights: RightPublish, Channels: []string{"*"}})})
	if closed != 2 {
		t.Errorf("Reload closed %d connections; want 2 (the old token's subscriber and stream)", closed)
	}
	if code, text := closeCode(t, revoked); code != protocol.CloseRevoked {
		t.Fatalf("revoked subscriber closed with %d %q; want 4003", code, text)
	}
	select {
	case <-mjpegDone:
	case <-time.After(3 * time.Second):
		t.Fatal("the old token's MJPEG stream was not ended")
	}
	// The publisher and the kept viewer go on.
	send(t, publisher, frameMsg(7, 8, 8, fakeJPEG(8, 8, 7, 100), nil))
	select {
	case f := <-keptIn:
		if f.Seq != 7 {
			t.Fatalf("kept viewer got %d; want 7", f.Seq)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the kept viewer got nothing after the reload")
	}
	// New connections see the new tokens.
	if _, st := dialAs(protocol.PathSubscribe, oldView); st != http.StatusUnauthorized {
		t.Errorf("old token after reload: %d; want 401", st)
	}
	if _, st := dialAs(protocol.PathSubscribe, newView); st != 101 {
		t.Errorf("new token after reload: %d; want 101", st)
	}
}

// TestReloadHostsAndOrigins: allowed hosts and origins change for new
// requests at once.
func TestReloadHostsAndOrigins(t *testing.T) {
	h, base := testHub(t, Config{LoopbackOnly: true})
	if got := requestWithHost(t, base, "/healthz", "camhub.lan"); got != http.StatusForbidden {
		t.Fatalf("before reload: %d; want 403", got)
	}
	h.Reload(Access{AllowedHosts: []string{"camhub.lan"}, AllowedOrigins: []string{"https://app.example"}})
	if got := requestWithHost(t, base, "/healthz", "camhub.lan"); got != http.StatusOK {
		t.Fatalf("after reload: %d; want 200", got)
	}
	if got := upgradeStatus(t, base, protocol.PathSubscribe+"cam", http.Header{"Origin": {"https://app.example"}}); got != 101 {
		t.Fatalf("reloaded origin: %d; want 101", got)
	}
}
