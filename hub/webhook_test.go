package hub

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"framehub/internal/ratelimit"
	"framehub/internal/testutil"
)

// receiver is a webhook receiver on loopback that fails the first fail
// attempts at each idempotency key with 500, then answers 200, checking
// every signature.
type receiver struct {
	srv    *httptest.Server
	secret []byte
	fail   int

	mu       sync.Mutex
	attempts map[string]int // by idempotency key
	acked    map[string]int // 200s by key
	badSig   int
	times    map[string][]time.Time
}

func newReceiver(t *testing.T, secret []byte, fail int, handler http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{secret: secret, fail: fail, attempts: map[string]int{}, acked: map[string]int{}, times: map[string][]time.Time{}}
	if handler == nil {
		handler = r.serve
	}
	r.srv = httptest.NewServer(handler)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	key := req.Header.Get(HeaderIdempotencyKey)
	m := hmac.New(sha256.New, r.secret)
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	r.mu.Lock()
	defer r.mu.Unlock()
	if !hmac.Equal([]byte(req.Header.Get(HeaderSignature)), []byte(want)) {
		r.badSig++
	}
	r.attempts[key]++
	r.times[key] = append(r.times[key], time.Now())
	if r.attempts[key] <= r.fail {
		http.Error(w, "not now", http.StatusInternalServerError)
		return
	}
	r.acked[key]++
	w.WriteHeader(http.StatusNoContent)
}

func startWebhooks(t *testing.T, cfg WebhookConfig) *webhooks {
	t.Helper()
	cfg, err := cfg.Check()
	if err != nil {
		t.Fatal(err)
	}
	w := newWebhooks(cfg, ratelimit.NewLogger(slog.New(slog.DiscardHandler), time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// TestWebhookRetriesUntilDelivered: a receiver that fails the first three
// tries of every notification gets each exactly once (one 2xx per
// idempotency key), in order, every body signed, after backoff that grows.
func TestWebhookRetriesUntilDelivered(t *testing.T) {
	secret := []byte("s3cret")
	rc := newReceiver(t, secret, 3, nil)
	w := startWebhooks(t, WebhookConfig{URL: rc.srv.URL, Secret: secret, Backoff: 20 * time.Millisecond, MaxBackoff: time.Second})
	keys := []string{"e1:start", "e2:start", "e1:end", "e2:end"}
	for _, k := range keys {
		w.enqueue(k, "start", []byte(fmt.Sprintf(`{"id":%q}`, k)))
	}
	testutil.Eventually(t, 20*time.Second, "every notification delivered", func() bool { return w.stats().Delivered == uint64(len(keys)) })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, k := range keys {
		if rc.acked[k] != 1 || rc.attempts[k] != 4 {
			t.Errorf("%s: acknowledged %d times after %d attempts; want once after 4", k, rc.acked[k], rc.attempts[k])
		}
		ts := rc.times[k]
		if len(ts) == 4 && !(ts[3].Sub(ts[2]) > ts[1].Sub(ts[0])) {
			t.Errorf("%s: retries %v, %v apart; want the backoff to grow", k, ts[1].Sub(ts[0]), ts[3].Sub(ts[2]))
		}
	}
	if rc.badSig != 0 {
		t.Errorf("%d bodies with a bad signature", rc.badSig)
	}
	if st := w.stats(); st.Retries != 12 || st.Failed != 0 || st.Dropped != 0 || st.Waiting != 0 {
		t.Errorf("stats %+v; want 12 retries, nothing failed, dropped or waiting", st)
	}
}

// TestWebhookHangingReceiver: a receiver that never answers costs a
// bounded queue and one goroutine: notifications past the queue drop the
// oldest (counted), enqueueing never waits, and each attempt times out.
func TestWebhookHangingReceiver(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, []byte("k"), 0, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	before := runtime.NumGoroutine()
	w := startWebhooks(t, WebhookConfig{URL: rc.srv.URL, Secret: []byte("k"), Queue: 16, Timeout: 100 * time.Millisecond,
		Backoff: 50 * time.Millisecond, MaxAttempts: 3})
	// The receiver answers nothing until the test ends: were enqueue to
	// wait for it, this loop would not end.
	for i := range 10000 {
		w.enqueue(fmt.Sprintf("e%d:start", i), "start", []byte(`{}`))
	}
	st := w.stats()
	if st.Waiting > 16 || st.Queued != 10000 || st.Dropped+uint64(st.Waiting)+st.Failed < 10000-1 {
		t.Fatalf("stats %+v; want at most 16 waiting, the rest dropped (one may be in flight)", st)
	}
	testutil.Eventually(t, 10*time.Second, "the first notification given up", func() bool { return w.stats().Failed >= 1 })
	if g := runtime.NumGoroutine(); g > before+12 {
		t.Errorf("%d goroutines, %d before: the sender grew", g, before)
	}
	t.Logf("after 10,000 notifications to a hanging receiver: %+v, %d goroutines (%d before)", w.stats(), runtime.NumGoroutine(), before)
}

// TestWebhookGivesUp: a receiver that answers 500 forever gets MaxAttempts
// tries of each notification, then the next; a redirect is a failure
// (it would take the signed body elsewhere).
func TestWebhookGivesUp(t *testing.T) {
	rc := newReceiver(t, []byte("k"), 1<<30, nil)
	w := startWebhooks(t, WebhookConfig{URL: rc.srv.URL, Secret: []byte("k"), Backoff: 5 * time.Millisecond, MaxAttempts: 4})
	w.enqueue("a:start", "start", []byte(`{}`))
	w.enqueue("b:start", "start", []byte(`{}`))
	testutil.Eventually(t, 10*time.Second, "both given up", func() bool { return w.stats().Failed == 2 })
	rc.mu.Lock()
	if rc.attempts["a:start"] != 4 || rc.attempts["b:start"] != 4 {
		t.Errorf("attempts %v; want 4 each", rc.attempts)
	}
	rc.mu.Unlock()

	away := newReceiver(t, []byte("k"), 0, nil)
	redirect := newReceiver(t, []byte("k"), 0, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, away.srv.URL, http.StatusTemporaryRedirect)
	})
	wr := startWebhooks(t, WebhookConfig{URL: redirect.srv.URL, Secret: []byte("k"), Backoff: 5 * time.Millisecond, MaxAttempts: 2})
	wr.enqueue("c:start", "start", []byte(`{}`))
	testutil.Eventually(t, 10*time.Second, "the redirected notification given up", func() bool { return wr.stats().Failed == 1 })
	away.mu.Lock()
	defer away.mu.Unlock()
	if len(away.attempts) != 0 {
		t.Errorf("the redirect was followed: %v", away.attempts)
	}
}

func TestWebhookConfigChecked(t *testing.T) {
	for _, c := range []WebhookConfig{
		{URL: "ftp://x/", Secret: []byte("k")},
		{URL: "http://", Secret: []byte("k")},
		{URL: "http://127.0.0.1:1/hook"},
	} {
		if _, err := c.Check(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestWebhookLogsNoURL: a failed delivery is logged without the URL (a
// receiver's URL often carries its own credential in the path or query,
// as chat webhooks do), and never with the signing secret. Along the way,
// the timeouts a slow receiver meets: one that got a notification but
// answered after the timeout gets the retry under the same idempotency
// key, so it can tell it has it (at least once, never twice as two); one
// that answered 200 in time and then drips its body a byte at a time has
// it delivered, once.
func TestWebhookLogsNoURL(t *testing.T) {
	const credential, secret = "url-credential-5f3a9c0e", "signing-secret-0123456789"
	var mu sync.Mutex
	got := map[string]int{}
	rc := newReceiver(t, []byte(secret), 0, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		key := r.Header.Get(HeaderIdempotencyKey)
		mu.Lock()
		got[key]++
		n := got[key]
		mu.Unlock()
		wait := func(d time.Duration) bool {
			select {
			case <-r.Context().Done():
				return false
			case <-time.After(d):
				return true
			}
		}
		switch {
		case n > 1:
		case key == "cam/late/start": // got it, answers too late
			if !wait(time.Second) {
				return
			}
		case key == "cam/drip/start": // answers at once, then drips
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			for range 1000 {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				if !wait(20 * time.Millisecond) {
					return
				}
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	var logs testutil.LockedBuffer
	cfg, err := WebhookConfig{URL: rc.srv.URL + "/hook/" + credential + "?token=" + credential, Secret: []byte(secret),
		Timeout: 200 * time.Millisecond, Backoff: 10 * time.Millisecond, MaxAttempts: 3}.Check()
	if err != nil {
		t.Fatal(err)
	}
	w := newWebhooks(cfg, ratelimit.NewLogger(slog.New(slog.NewTextHandler(&logs, nil)), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	defer func() { cancel(); <-done }()
	w.enqueue("cam/late/start", "start", []byte(`{"id":"late"}`))
	w.enqueue("cam/drip/start", "start", []byte(`{"id":"drip"}`))
	testutil.Eventually(t, 10*time.Second, "both delivered", func() bool { return w.stats().Delivered == 2 })
	mu.Lock()
	if got["cam/late/start"] != 2 || got["cam/drip/start"] != 1 {
		t.Errorf("receiver got %v; want the late one twice (its retry under the same key), the dripped one once", got)
	}
	mu.Unlock()

	// Now a receiver that is gone: the failures are logged.
	rc.srv.Close()
	w.enqueue("cam/gone/end", "end", []byte(`{"id":"gone"}`))
	testutil.Eventually(t, 10*time.Second, "the failure given up", func() bool { return w.stats().Failed == 1 })
	out := logs.String()
	if !strings.Contains(out, "webhook notification given up") {
		t.Fatalf("no log line of the failure:\n%s", out)
	}
	if strings.Contains(out, credential) || strings.Contains(out, secret) {
		t.Errorf("the log holds the URL's credential or the secret:\n%s", out)
	}
}
