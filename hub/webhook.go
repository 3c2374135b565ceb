package hub

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"framehub/internal/ratelimit"
	"framehub/protocol"
)

// Webhooks: the hub POSTs a JSON document for each event start and end to
// one URL (--webhook), signed with HMAC-SHA256 (--webhook-secret-file), at
// least once, with an Idempotency-Key the receiver deduplicates by. One
// goroutine sends them in order; a failed delivery (an error, a timeout, a
// status other than 2xx) is retried with exponential backoff, up to
// MaxAttempts. The queue is bounded: when it is full, the oldest waiting
// delivery is dropped (counted) to make room, so a receiver that hangs or
// fails forever costs a bounded queue and one goroutine, and enqueueing
// never waits: no frame ever waits for a webhook.

// Webhook defaults.
const (
	DefaultWebhookQueue       = 1024
	DefaultWebhookTimeout     = 5 * time.Second
	DefaultWebhookAttempts    = 8
	DefaultWebhookBackoff     = time.Second
	DefaultWebhookMaxBackoff  = time.Minute
	maxWebhookResponseDrained = 64 << 10 // bytes of a response body read, so the connection can be reused
)

// Webhook request headers.
const (
	HeaderSignature      = "X-Framehub-Signature" // sha256=HEX: HMAC-SHA256 of the body with the secret
	HeaderIdempotencyKey = "Idempotency-Key"      // the same for every attempt at one notification
	HeaderWebhookEvent   = "X-Framehub-Event"     // start or end
	HeaderAttempt        = "X-Framehub-Attempt"   // 1 for the first attempt
)

// WebhookConfig configures event webhooks. The zero value sends none.
type WebhookConfig struct {
	URL    string // http:// or https://
	Secret []byte // signs every body; required with a URL
	// Queue bounds the notifications waiting (default 1024): past it the
	// oldest is dropped.
	Queue int
	// Timeout bounds one attempt, response included (default 5 s).
	Timeout time.Duration
	// MaxAttempts is how many times a notification is tried before it is
	// given up (default 8).
	MaxAttempts int
	// Backoff is the wait before the first retry, doubled for each next one
	// up to MaxBackoff, with jitter (defaults 1 s and 1 min).
	Backoff, MaxBackoff time.Duration
	// Transport, if set, replaces the HTTP transport (tests, proxies).
	Transport http.RoundTripper
}

// enabled reports whether webhooks are configured.
func (c WebhookConfig) enabled() bool { return c.URL != "" }

// Check validates a configuration with a URL and fills in the defaults.
func (c WebhookConfig) Check() (WebhookConfig, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("webhook URL %q: want http:// or https://", c.URL)
	}
	if len(c.Secret) == 0 {
		return c, errors.New("a webhook needs a secret to sign its bodies with (--webhook-secret-file)")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Timeout, DefaultWebhookTimeout)
	def(&c.Backoff, DefaultWebhookBackoff)
	def(&c.MaxBackoff, DefaultWebhookMaxBackoff)
	if c.Queue <= 0 {
		c.Queue = DefaultWebhookQueue
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultWebhookAttempts
	}
	return c, nil
}

// webhookJob is one notification: its body is signed once and sent the
// same on every attempt.
type webhookJob struct {
	key, kind string
	body      []byte
	signature string
	attempts  int
}

// webhooks sends notifications. enqueue and stats are safe for concurrent
// use; run is its one goroutine, started by the hub and stopped by
// cancelling its context.
type webhooks struct {
	cfg    WebhookConfig
	client *http.Client
	log    *ratelimit.Logger

	mu    sync.Mutex
	queue []*webhookJob // oldest first
	st    protocol.WebhookStats
	wake  chan struct{} // capacity 1
}

func newWebhooks(cfg WebhookConfig, log *ratelimit.Logger) *webhooks {
	client := &http.Client{Transport: cfg.Transport, Timeout: cfg.Timeout,
		// A redirect would take the signed body elsewhere: it is a failure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &webhooks{cfg: cfg, client: client, log: log, wake: make(chan struct{}, 1)}
}

// sign returns the signature header value of body.
func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// enqueue adds a notification; when the queue is full the oldest waiting
// one (never the one being sent) is dropped to make room. It never waits.
func (w *webhooks) enqueue(key, kind string, body []byte) {
	job := &webhookJob{key: key, kind: kind, body: body, signature: sign(w.cfg.Secret, body)}
	w.mu.Lock()
	w.st.Queued++
	if len(w.queue) >= w.cfg.Queue {
		w.st.Dropped++
		w.log.Log(slog.LevelWarn, "webhook:dropped", "webhook queue full: oldest notification dropped",
			slog.Uint64("dropped_total", w.st.Dropped), slog.Int("queue", w.cfg.Queue))
		drop := 0
		if w.queue[0].attempts > 0 {
			drop = 1 // the head is being tried (or waits to be again): only run removes it
		}
		if drop == len(w.queue) {
			w.mu.Unlock()
			return // nothing older to drop: this one goes
		}
		w.queue = append(w.queue[:drop], w.queue[drop+1:]...)
	}
	w.queue = append(w.queue, job)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// stats returns the counters.
func (w *webhooks) stats() protocol.WebhookStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.st
	st.Waiting = len(w.queue)
	return st
}

// run sends notifications in order until ctx ends.
func (w *webhooks) run(ctx context.Context) {
	for {
		w.mu.Lock()
		var job *webhookJob
		attempt := 0
		if len(w.queue) > 0 {
			job = w.queue[0]
			if job.attempts > 0 {
				w.st.Retries++
			}
			job.attempts++ // under mu: enqueue never drops a job being tried
			attempt = job.attempts
		}
		w.mu.Unlock()
		if job == nil {
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		err := w.deliver(ctx, job, attempt)
		if ctx.Err() != nil {
			return
		}
		done := err == nil || attempt >= w.cfg.MaxAttempts
		w.mu.Lock()
		switch {
		case err == nil:
			w.st.Delivered++
		case done:
			w.st.Failed++
		}
		if done {
			w.queue[0] = nil // the head: only run removes it
			w.queue = w.queue[1:]
		}
		w.mu.Unlock()
		switch {
		case err == nil:
			continue
		case done:
			w.log.Log(slog.LevelWarn, "webhook:failed", "webhook notification given up",
				slog.String("key", job.key), slog.Int("attempts", attempt), slog.String("error", err.Error()))
			continue
		}
		w.log.Log(slog.LevelWarn, "webhook:retry", "webhook delivery failed; retrying",
			slog.String("key", job.key), slog.Int("attempt", attempt), slog.String("error", err.Error()))
		t := time.NewTimer(w.backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// backoff returns the wait after the given number of failed attempts:
// Backoff doubled each time up to MaxBackoff, less up to a quarter at
// random so that hubs do not retry in step.
func (w *webhooks) backoff(failed int) time.Duration {
	d := w.cfg.Backoff
	for i := 1; i < failed && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxBackoff)
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// deliver makes attempt number attempt (from 1) at job.
func (w *webhooks) deliver(ctx context.Context, job *webhookJob, attempt int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(job.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "framehub")
	req.Header.Set(HeaderSignature, job.signature)
	req.Header.Set(HeaderIdempotencyKey, job.key)
	req.Header.Set(HeaderWebhookEvent, job.kind)
	req.Header.Set(HeaderAttempt, fmt.Sprint(attempt))
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// Logged without the URL: a receiver's URL often holds its own
			// credential (in the path or query), which url.Error keeps.
			return fmt.Errorf("POST to the webhook: %w", ue.Err)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookResponseDrained))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
