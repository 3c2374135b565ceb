package hub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"image/color"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

const (
	pubToken   = "publish-secret-4a7f1c9e2b"
	viewToken  = "view-secret-cams-8d3e6f0a1b"
	adminToken = "admin-secret-all-5c2b9e7d4f"
	wrongToken = "wrong-secret-guess-0e1d2c3b4a"
	signingKey = "signing-key-9f8e7d6c5b4a3928"
)

func TestParseTokens(t *testing.T) {
	good := "# token rights channels\n\n" + pubToken + " publish cam-*\n" + viewToken + " view cam-a,lobby\n" + adminToken + " publish,view *\n"
	g, err := ParseTokens(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 3 || g[0].Rights != RightPublish || g[2].Rights != RightView|RightPublish || len(g[1].Channels) != 2 {
		t.Fatalf("parsed %+v", g)
	}
	for _, bad := range []string{
		"short publish *",
		pubToken + " delete *",
		pubToken + " view",
		pubToken + " view [",
		"fh1.reserved-prefix-token view *",
	} {
		_, err := ParseTokens(strings.NewReader("# ok\n" + bad + "\n"))
		if err == nil || !strings.HasPrefix(err.Error(), "line 2:") {
			t.Errorf("%q: error %v, want one naming line 2", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), pubToken) {
			t.Errorf("%q: error shows the token: %v", bad, err)
		}
	}
}

// authRig is a hub with tokens, two channels with a frame each, and a log
// that the test reads.
type authRig struct {
	h    *Hub
	base string
	logs *testutil.LockedBuffer
	auth *Auth
}

func newAuthRig(t *testing.T) *authRig {
	t.Helper()
	grants, err := ParseTokens(strings.NewReader(
		pubToken + " publish *\n" + viewToken + " view cam-*\n" + adminToken + " publish,view *\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuth(grants, []byte(signingKey))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.LockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, base := testHub(t, Config{Auth: a, Logger: log})
	for i, ch := range []string{"cam-a", "lobby"} {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(base, "/ws/publish/", ch), bearer(pubToken))
		if err != nil {
			t.Fatalf("publish %s: %v", ch, err)
		}
		t.Cleanup(func() { c.Close() })
		send(t, c, frameMsg(uint64(i+1), 16, 16, testJPEG(t, 16, 16, color.RGBA{200, 30, 40, 255}), nil))
	}
	testutil.Eventually(t, 5*time.Second, "both channels have a frame", func() bool {
		a, b := h.table.lookup("cam-a"), h.table.lookup("lobby")
		return a != nil && b != nil && a.newest() != nil && b.newest() != nil
	})
	return &authRig{h: h, base: base, logs: logs, auth: a}
}

func bearer(tok string) http.Header {
	if tok == "" {
		return nil
	}
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// httpStatus does a GET and returns the status and the body (at most 64
// KiB: an MJPEG stream does not end).
func httpStatus(t *testing.T, url string, hd http.Header) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for k, v := range hd {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body []byte
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/") {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestTokensOnEveryEndpoint(t *testing.T) {
	r := newAuthRig(t)
	now := time.Now()
	signedA, _ := r.auth.Sign("cam-a", RightView, now.Add(time.Minute))
	signedOther, _ := r.auth.Sign("cam-b", RightView, now.Add(time.Minute))
	expired, _ := r.auth.Sign("cam-a", RightView, now.Add(-time.Second))
	tampered := strings.Replace(signedA, "cam-a", "lobby", 1)
	other, _ := NewAuth(nil, []byte("some-other-hubs-key-123"))
	foreign, _ := other.Sign("cam-a", RightView, now.Add(time.Minute))

	type try struct {
		name string
		hd   http.Header
		want int
	}
	view := []try{
		{"missing", nil, 401},
		{"wrong", bearer(wrongToken), 401},
		{"expired signed", bearer(expired), 401},
		{"tampered signed", bearer(tampered), 401},
		{"other hub's signed", bearer(foreign), 401},
		{"publish token", bearer(pubToken), 403},
		{"signed for another channel", bearer(signedOther), 403},
		{"view token", bearer(viewToken), 0},
		{"signed", bearer(signedA), 0},
		{"admin", bearer(adminToken), 0},
	}
	for _, tr := range view {
		for _, ep := range []struct {
			path string
			ok   int
		}{
			{"/channels/cam-a/snapshot.jpg", 200},
			{"/channels/cam-a/stream.mjpeg", 200},
			{"/api/channels", 200},
		} {
			want := tr.want
			if want == 0 {
				want = ep.ok
			}
			if ep.path == "/api/channels" && tr.want == 403 {
				want = 200 // a valid token lists the channels it may see, maybe none
			}
			if got, _, _ := httpStatus(t, r.base+ep.path, tr.hd); got != want {
				t.Errorf("%s on %s: %d, want %d", tr.name, ep.path, got, want)
			}
		}
		want := tr.want
		if want == 0 {
			want = 101
		}
		if got := upgradeStatus(t, r.base, "/ws/subscribe/cam-a", tr.hd); got != want {
			t.Errorf("%s on subscribe: %d, want %d", tr.name, got, want)
		}
	}
	// Publishing takes the publish right.
	for _, tr := range []try{{"missing", nil, 401}, {"wrong", bearer(wrongToken), 401}, {"view token", bearer(viewToken), 403},
		{"signed view", bearer(signedA), 403}, {"publish token", bearer(pubToken), 101}} {
		if got := upgradeStatus(t, r.base, "/ws/publish/cam-z", tr.hd); got != tr.want {
			t.Errorf("%s on publish: %d, want %d", tr.name, got, tr.want)
		}
	}
	// The view token covers cam-* only.
	if got, _, _ := httpStatus(t, r.base+"/channels/lobby/snapshot.jpg", bearer(viewToken)); got != 403 {
		t.Errorf("view token on lobby: %d, want 403", got)
	}
	if got := upgradeStatus(t, r.base, "/ws/subscribe/lobby", bearer(viewToken)); got != 403 {
		t.Errorf("view token subscribing to lobby: %d, want 403", got)
	}
	// /healthz stays open; /api/stats needs a view token.
	if got, _, _ := httpStatus(t, r.base+"/healthz", nil); got != 200 {
		t.Errorf("/healthz: %d", got)
	}
	if got, _, _ := httpStatus(t, r.base+"/api/stats", nil); got != 401 {
		t.Errorf("/api/stats without token: %d", got)
	}
	// A signed token may ride in a snapshot or MJPEG URL, a configured one
	// may not, and no token is read from a WebSocket URL.
	for _, c := range []struct {
		url  string
		want int
	}{
		{"/channels/cam-a/snapshot.jpg?token=" + signedA, 200},
		{"/channels/cam-a/stream.mjpeg?token=" + signedA, 200},
		{"/channels/cam-a/snapshot.jpg?token=" + expired, 401},
		{"/channels/lobby/snapshot.jpg?token=" + signedA, 403},
		{"/channels/cam-a/snapshot.jpg?token=" + viewToken, 401},
	} {
		if got, _, _ := httpStatus(t, r.base+c.url, nil); got != c.want {
			t.Errorf("%s: %d, want %d", strings.Replace(c.url, viewToken, "VIEWTOKEN", 1), got, c.want)
		}
	}
	if got := upgradeStatus(t, r.base, "/ws/subscribe/cam-a?token="+signedA, nil); got != 401 {
		t.Errorf("token in a WebSocket URL: %d, want 401", got)
	}
}

func TestBrowserSubprotocolToken(t *testing.T) {
	r := newAuthRig(t)
	d := websocket.Dialer{Subprotocols: []string{"framehub", protocol.SubprotocolAuthPrefix + base64.RawURLEncoding.EncodeToString([]byte(viewToken))}}
	c, resp, err := d.Dial(wsURL(r.base, "/ws/subscribe/", "cam-a"), nil)
	if err != nil {
		t.Fatalf("subscribe with the token as a subprotocol: %v (%v)", err, resp)
	}
	defer c.Close()
	if c.Subprotocol() != "framehub" {
		t.Fatalf("hub selected subprotocol %q, want framehub (never the token)", c.Subprotocol())
	}
	if f, _ := readFrame(t, c, 5*time.Second); f.Header.Width != 16 {
		t.Fatalf("frame %+v", f.Header)
	}
	d.Subprotocols[1] = protocol.SubprotocolAuthPrefix + base64.RawURLEncoding.EncodeToString([]byte(wrongToken))
	if _, resp, err := d.Dial(wsURL(r.base, "/ws/subscribe/", "cam-a"), nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("wrong subprotocol token: %v %v", err, resp)
	}
}

func TestChannelListIsFilteredByToken(t *testing.T) {
	r := newAuthRig(t)
	names := func(tok string) []string {
		var list []protocol.ChannelInfo
		_, body, _ := httpStatus(t, r.base+"/api/channels", bearer(tok))
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		var out []string
		for _, c := range list {
			out = append(out, c.Name)
		}
		return out
	}
	if got := strings.Join(names(viewToken), ","); got != "cam-a" {
		t.Errorf("view token (cam-*) lists %q", got)
	}
	if got := strings.Join(names(adminToken), ","); got != "cam-a,lobby" {
		t.Errorf("admin token lists %q", got)
	}
}

func mint(t *testing.T, base, tok, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/token", strings.NewReader(body))
	for k, v := range bearer(tok) {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, string(b)
	}
	var out struct{ Token string }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return 200, out.Token
}

func TestMintTokenAPI(t *testing.T) {
	r := newAuthRig(t)
	code, tok := mint(t, r.base, viewToken, `{"channel":"cam-a","right":"view","ttl_seconds":30}`)
	if code != 200 || !strings.HasPrefix(tok, signedPrefix) {
		t.Fatalf("mint: %d %s", code, tok)
	}
	if got, _, _ := httpStatus(t, r.base+"/channels/cam-a/snapshot.jpg?token="+tok, nil); got != 200 {
		t.Fatalf("minted token on snapshot: %d", got)
	}
	for _, c := range []struct {
		tok, body string
		want      int
	}{
		{"", `{"channel":"cam-a","right":"view"}`, 401},
		{viewToken, `{"channel":"lobby","right":"view"}`, 403},
		{viewToken, `{"channel":"cam-a","right":"publish"}`, 403},
		{tok, `{"channel":"cam-a","right":"view"}`, 403}, // a signed token cannot extend itself
		{viewToken, `{"channel":"../x","right":"view"}`, 400},
		{viewToken, `{"channel":"cam-a","right":"view","ttl_seconds":1e9}`, 400},
		{viewToken, `not json`, 400},
	} {
		if got, body := mint(t, r.base, c.tok, c.body); got != c.want {
			t.Errorf("mint %s: %d %s, want %d", c.body, got, body, c.want)
		}
	}
}

// TestSecretsNeverShow runs a session with right and wrong tokens on every
// endpoint and then searches everything the hub said (logs at debug, API
// output, response bodies and headers) for any secret.
func TestSecretsNeverShow(t *testing.T) {
	r := newAuthRig(t)
	signed, _ := r.auth.Sign("cam-a", RightView, time.Now().Add(time.Minute))
	secrets := []string{pubToken, viewToken, adminToken, wrongToken, signingKey, signed,
		base64.RawURLEncoding.EncodeToString([]byte(viewToken))}
	var said strings.Builder
	record := func(code int, body string, hd http.Header) {
		said.WriteString(body)
		for k, v := range hd {
			said.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
	}
	for _, tok := range []string{"", viewToken, wrongToken, adminToken, pubToken, signed} {
		for _, p := range []string{"/api/channels", "/api/stats", "/channels/cam-a/snapshot.jpg", "/channels/lobby/stream.mjpeg", "/healthz", "/", "/view/cam-a"} {
			record(httpStatus(t, r.base+p, bearer(tok)))
		}
		for _, ep := range []string{"/ws/subscribe/cam-a", "/ws/publish/cam-a", "/ws/subscribe/lobby"} {
			d := websocket.Dialer{Subprotocols: []string{"framehub", protocol.SubprotocolAuthPrefix + base64.RawURLEncoding.EncodeToString([]byte(tok))}}
			c, resp, err := d.Dial(wsURL(r.base, ep, ""), bearer(tok))
			if resp != nil {
				b, _ := io.ReadAll(resp.Body)
				record(resp.StatusCode, string(b), resp.Header)
			}
			if err == nil {
				c.Close()
			}
		}
	}
	record(httpStatus(t, r.base+"/channels/cam-a/snapshot.jpg?token="+signed+"x", nil))
	_, body := mint(t, r.base, wrongToken, `{"channel":"cam-a","right":"view"}`)
	said.WriteString(body)
	// Every connection this test opened has ended, and so logged its end:
	// what is left is the rig's publisher of lobby (the one of cam-a was
	// replaced by the test's).
	testutil.Eventually(t, 5*time.Second, "the test's connections to end", func() bool { return r.h.Stats().Connections == 1 })
	said.WriteString(r.logs.String())
	if !strings.Contains(said.String(), "unauthorized") || !strings.Contains(said.String(), "forbidden") {
		t.Fatalf("the session logged no refusals; the test is not looking at the right output:\n%s", r.logs.String())
	}
	for _, s := range secrets {
		if strings.Contains(said.String(), s) {
			t.Errorf("a secret (%d chars, starting %q) appears in the hub's output", len(s), s[:4])
		}
	}
	st := r.h.Stats()
	if st.Refused["unauthorized"] == 0 || st.Refused["forbidden"] == 0 {
		t.Errorf("refusals not counted: %v", st.Refused)
	}
}
