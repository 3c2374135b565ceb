package dial

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

func TestMain(m *testing.M) { os.Exit(testutil.Check(m.Run())) }

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func dialOnce(t *testing.T, cfg Config, channel string) (time.Duration, error) {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	ws, _, err := d.Dial(ctx, protocol.PathSubscribe, channel, Query{})
	if ws != nil {
		ws.Close()
	}
	return time.Since(start), err
}

func authHub(t *testing.T) string {
	auth, err := hub.NewAuth([]hub.Grant{
		{Token: "view-cams-token-0123456789", Rights: hub.RightView, Channels: []string{"cam-*"}},
		{Token: "publish-token-0123456789", Rights: hub.RightPublish, Channels: []string{"*"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return hubtest.Start(t, hub.Config{Auth: auth, DenyDelay: -1}).URL
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestRefusalPolicy(t *testing.T) {
	authURL := authHub(t)
	tlsHub := hub.New(hub.Config{})
	tlsSrv := httptest.NewTLSServer(tlsHub)
	notHub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }))
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(func() { tlsHub.Close(); tlsSrv.Close(); notHub.Close(); notFound.Close() })
	plainSrv := hubtest.Start(t, hub.Config{})

	for _, c := range []struct {
		name    string
		cfg     Config
		channel string
		status  int    // the RefusedError's, 0 for none
		hint    string // in the error text
		atOnce  bool   // fails without retrying
	}{
		{"no_token", Config{Hub: authURL}, "cam-1", 401, "--token-file", true},
		{"wrong_token", Config{Hub: authURL, Header: bearer("not-a-token-at-all-xx")}, "cam-1", 401, "--token", true},
		{"token_without_channel", Config{Hub: authURL, Header: bearer("view-cams-token-0123456789")}, "lobby", 403, "right on channel lobby", true},
		{"token_without_right", Config{Hub: authURL, Header: bearer("publish-token-0123456789")}, "cam-1", 403, "right", true},
		{"not_a_hub", Config{Hub: notHub.URL}, "cam", 200, "framehub hub", true},
		{"not_found", Config{Hub: notFound.URL}, "cam", 404, "framehub hub", true},
		{"unknown_authority", Config{Hub: tlsSrv.URL}, "cam", 0, "--ca FILE", true},
		{"tls_to_plain", Config{Hub: strings.Replace(plainSrv.URL, "http:", "https:", 1)}, "cam", 0, "does not speak TLS", true},
		{"unknown_host", Config{Hub: "http://no-such-host.invalid:8080"}, "cam", 0, "host name", true},
		{"nothing_listening", Config{Hub: freeAddr(t), ConnectTimeout: 400 * time.Millisecond, MinBackoff: 50 * time.Millisecond}, "cam", 0, "is the hub running", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			took, err := dialOnce(t, c.cfg, c.channel)
			var derr *Error
			if !errors.As(err, &derr) || !strings.Contains(err.Error(), c.hint) {
				t.Fatalf("Dial = %v; want a *dial.Error whose text names %q", err, c.hint)
			}
			var rerr *protocol.RefusedError
			if c.status != 0 && (!errors.As(err, &rerr) || rerr.Status != c.status) {
				t.Fatalf("Dial = %v; want a refusal with status %d", err, c.status)
			}
			if c.atOnce && took > time.Second {
				t.Fatalf("took %v; a refusal retrying cannot fix must end at once", took)
			}
			if !c.atOnce && took < c.cfg.ConnectTimeout {
				t.Fatalf("gave up after %v; want retries for the connect timeout %v", took, c.cfg.ConnectTimeout)
			}
		})
	}
	// The right token gets in.
	if _, err := dialOnce(t, Config{Hub: authURL, Header: bearer("view-cams-token-0123456789")}, "cam-1"); err != nil {
		t.Fatalf("with the right token: %v", err)
	}
}

// TestRetriesForeverOnceReached: after a first connection, a hub that
// goes away is retried for as long as the context lasts, and one that
// comes back is reconnected to.
func TestRetriesForeverOnceReached(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener) func() {
		h := hub.New(hub.Config{})
		srv := &http.Server{Handler: h}
		done := make(chan struct{})
		go func() { defer close(done); srv.Serve(ln) }()
		return func() { h.Close(); srv.Close(); <-done }
	}
	stop := serve(ln)
	d, err := New(Config{Hub: addr, ConnectTimeout: 200 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ws, _, err := d.Dial(ctx, protocol.PathSubscribe, "cam", Query{})
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()
	stop()
	// Down for longer than the connect timeout, then back on the same port.
	back := make(chan func(), 1)
	go func() {
		time.Sleep(600 * time.Millisecond)
		var ln2 net.Listener
		for range 100 {
			if ln2, err = net.Listen("tcp", addr); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		back <- serve(ln2)
	}()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err = d.Dial(dctx, protocol.PathSubscribe, "cam", Query{})
	stop2 := <-back
	defer stop2()
	if err != nil {
		t.Fatalf("redial after the hub came back: %v", err)
	}
	ws.Close()
}

func TestQueryEncode(t *testing.T) {
	for _, c := range []struct {
		q    Query
		want string
	}{
		{Query{}, ""},
		{Query{Window: 1}, "window=1"},
		{Query{Window: 2, Want: protocol.RenditionWant{MaxWidth: 320}}, "window=2&max-width=320"},
		{Query{Want: protocol.RenditionWant{Rendition: 640}}, "rendition=640"},
		{Query{Want: protocol.RenditionWant{Rendition: protocol.RenditionMain}}, ""},
		{Query{Rendition: 320}, "rendition=320"},
		{Query{OnDemand: true}, "on_demand=1"},
	} {
		if got := c.q.Encode(); got != c.want {
			t.Errorf("%+v.Encode() = %q; want %q", c.q, got, c.want)
		}
	}
	d, err := New(Config{Hub: "https://hub.example/base"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.URL(protocol.PathSubscribe, "cam", Query{Window: 1, Want: protocol.RenditionWant{MaxWidth: 320}})
	if want := "wss://hub.example/base/ws/subscribe/cam?window=1&max-width=320"; err != nil || u != want {
		t.Errorf("URL = %q, %v; want %q", u, err, want)
	}
}
