package hub

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
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
	testutil.Eventually(t, 3*time.Second, "the publisher, two subscribers and a stream registered", func() bool {
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

// TestReloadKeepsSignedTokens: a hub with no configured signing secret
// makes its own; a reload (which builds its tokens anew, with no secret
// either) keeps signing and verifying with it, so URLs minted before the
// reload still open, and a stream opened with a signed token whose expiry
// has passed meanwhile is not ended by the reload.
func TestReloadKeepsSignedTokens(t *testing.T) {
	const view, pub = "view-token-0123456789", "publish-token-0123456"
	grants := []Grant{{Token: view, Rights: RightView, Channels: []string{"*"}}, {Token: pub, Rights: RightPublish, Channels: []string{"*"}}}
	auth, err := NewAuth(grants, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, base := testHub(t, Config{DenyDelay: -1, Auth: auth})
	publisher, _, err := websocket.DefaultDialer.Dial(wsURL(base, protocol.PathPublish, "cam"), http.Header{"Authorization": {"Bearer " + pub}})
	if err != nil {
		t.Fatal(err)
	}
	defer publisher.Close()
	send(t, publisher, frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 100), nil))
	longTok, err := auth.Sign("cam", RightView, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Second)
	shortTok, err := auth.Sign("cam", RightView, exp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/channels/cam/stream.mjpeg?token="+shortTok, nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("MJPEG with a signed token: %v %v", err, stream)
	}
	defer stream.Body.Close()
	parts := make(chan struct{}, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := stream.Body.Read(buf)
			if n > 0 {
				select {
				case parts <- struct{}{}:
				default:
				}
			}
			if err != nil {
				close(parts)
				return
			}
		}
	}()
	time.Sleep(time.Until(exp.Truncate(time.Second).Add(time.Second))) // the short token has expired
	again, err := NewAuth(grants, nil)
	if err != nil {
		t.Fatal(err)
	}
	if closed := h.Reload(Access{Auth: again}); closed != 0 {
		t.Fatalf("Reload closed %d connections; want none (no token changed)", closed)
	}
	for range len(parts) { // what arrived before the reload
		<-parts
	}
	send(t, publisher, frameMsg(2, 8, 8, fakeJPEG(8, 8, 2, 100), nil))
	select {
	case _, ok := <-parts:
		if !ok {
			t.Fatal("the stream opened with a since-expired signed token was ended by the reload")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the stream got nothing after the reload")
	}
	resp, err := http.Get(base + "/channels/cam/snapshot.jpg?token=" + longTok)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("snapshot with a token minted before the reload: %d; want 200", resp.StatusCode)
	}
}

// TestReloadEndsRevokedUploads: an HTTP upload publishes for as long as
// its request lasts; a reload that takes its token's right away ends it
// with 403, and leaves an upload whose token still grants publishing.
func TestReloadEndsRevokedUploads(t *testing.T) {
	const dropped, kept = "dropped-publish-token-01", "kept-publish-token-0123"
	h, base := testHub(t, Config{DenyDelay: -1, Auth: grantsAuth(t,
		Grant{Token: dropped, Rights: RightPublish, Channels: []string{"*"}},
		Grant{Token: kept, Rights: RightPublish, Channels: []string{"*"}})})
	revoked := startUpload(t, base, "/channels/a/stream.mjpeg", "Authorization: Bearer "+dropped)
	stays := startUpload(t, base, "/channels/b/stream.mjpeg", "Authorization: Bearer "+kept)
	for _, u := range []*rawUpload{revoked, stays} {
		if err := u.send(part(fakeJPEG(8, 8, 1, 200))); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 3*time.Second, "both uploads publishing", func() bool { return h.Stats().FramesIn == 2 })
	if closed := h.Reload(Access{Auth: grantsAuth(t, Grant{Token: kept, Rights: RightPublish, Channels: []string{"*"}})}); closed != 1 {
		t.Fatalf("Reload closed %d; want 1 (the upload whose token went)", closed)
	}
	a := revoked.wait(t, 3*time.Second)
	if a.status != http.StatusForbidden || !strings.Contains(a.body, "no longer grants publishing") {
		t.Fatalf("revoked upload answered %d %q (%v); want 403", a.status, a.body, a.err)
	}
	if err := stays.send(part(fakeJPEG(8, 8, 2, 200))); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 3*time.Second, "the kept upload's next frame", func() bool { return h.Stats().FramesIn == 3 })
	if err := stays.end(); err != nil {
		t.Fatal(err)
	}
	if a := stays.wait(t, 3*time.Second); a.status != http.StatusOK {
		t.Fatalf("kept upload answered %d %q; want 200", a.status, a.body)
	}
}
