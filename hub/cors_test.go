package hub

import (
	"net/http"
	"strings"
	"testing"
)

// TestCORSOnlyForAllowedOrigins: a page on an allowed origin (the
// embeddable player) may read the limits, the channel list and snapshots,
// with a token in an Authorization header (the preflight says so); a page
// on any other origin is told nothing it could read, its preflight is
// refused 403 and counted; nothing else becomes readable; tokens are
// checked as for any other request.
func TestCORSOnlyForAllowedOrigins(t *testing.T) {
	const allowed = "http://dash.example:8443"
	const foreign = "http://evil.example"
	const token = "cors-view-token-0123456789"
	auth, err := NewAuth([]Grant{{Token: token, Rights: RightView, Channels: []string{"*"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, base := testHub(t, Config{AllowedOrigins: []string{allowed}, Auth: auth})
	do := func(method, path, origin string, hd map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for k, v := range hd {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	bearer := map[string]string{"Authorization": "Bearer " + token}
	for _, c := range []struct {
		name, method, path, origin string
		hd                         map[string]string
		status                     int
		acao                       string
	}{
		{"limits, allowed", "GET", "/api/limits", allowed, nil, 200, allowed},
		{"channels with a token, allowed", "GET", "/api/channels", allowed, bearer, 200, allowed},
		// The page may read that it needs a token.
		{"channels without a token, allowed", "GET", "/api/channels", allowed, nil, 401, allowed},
		{"snapshot, allowed (no frame yet)", "GET", "/channels/cam/snapshot.jpg", allowed, bearer, 404, allowed},
		{"limits, foreign", "GET", "/api/limits", foreign, nil, 200, ""},
		{"channels, foreign", "GET", "/api/channels", foreign, bearer, 200, ""},
		{"stats are not readable", "GET", "/api/stats", allowed, bearer, 200, ""},
		{"the page is not", "GET", "/", allowed, nil, 404, ""},
		{"same origin needs none", "GET", "/api/channels", "", bearer, 200, ""},
		{"bad channel name still 400", "GET", "/channels/a%2Fb/snapshot.jpg", allowed, bearer, 400, allowed},
		{"preflight, allowed", "OPTIONS", "/api/channels", allowed,
			map[string]string{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}, 204, allowed},
		{"preflight of something else, allowed", "OPTIONS", "/api/stats", allowed, nil, 405, ""},
		{"preflight, foreign", "OPTIONS", "/api/channels", foreign, nil, 403, ""},
	} {
		resp := do(c.method, c.path, c.origin, c.hd)
		if resp.StatusCode != c.status || resp.Header.Get("Access-Control-Allow-Origin") != c.acao {
			t.Errorf("%s: %d, Access-Control-Allow-Origin %q; want %d, %q", c.name, resp.StatusCode,
				resp.Header.Get("Access-Control-Allow-Origin"), c.status, c.acao)
		}
		if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: Access-Control-Allow-Credentials set; cookies are never credentials", c.name)
		}
		if c.status == 204 {
			if got := resp.Header.Get("Access-Control-Allow-Headers"); !strings.EqualFold(got, "Authorization") {
				t.Errorf("%s: Access-Control-Allow-Headers %q; want Authorization", c.name, got)
			}
			if got := resp.Header.Get("Access-Control-Allow-Methods"); got != "GET, HEAD" {
				t.Errorf("%s: Access-Control-Allow-Methods %q", c.name, got)
			}
		}
		if c.status != 403 && corsReadable(c.path) && !strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Errorf("%s: no Vary: Origin on an answer that depends on it", c.name)
		}
	}
	if got := h.Stats().Refused["foreign_origin"]; got != 1 {
		t.Errorf("foreign_origin refusals = %d; want 1 (the foreign preflight)", got)
	}
}
