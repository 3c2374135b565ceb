package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// TestHealthTimeout: without a configured timeout, a source is stalled
// after ten of its frame intervals, within 1 s to 3 s; 3 s before its
// frame rate is known.
func TestHealthTimeout(t *testing.T) {
	for _, c := range []struct {
		name     string
		fixed    time.Duration
		interval time.Duration // 0: no frames yet
		want     time.Duration
	}{
		{"unknown rate", 0, 0, 3 * time.Second},
		{"30 fps", 0, 33 * time.Millisecond, time.Second},
		{"5 fps", 0, 200 * time.Millisecond, 2 * time.Second},
		{"1 fps", 0, time.Second, 3 * time.Second},
		{"configured", 400 * time.Millisecond, time.Second, 400 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHealth(slog.New(slog.DiscardHandler), nil, c.fixed)
			now := time.Now()
			if c.interval > 0 {
				for i := range 50 {
					h.frame(now.Add(time.Duration(i) * c.interval))
				}
			}
			if got := h.timeout(); got < c.want*95/100 || got > c.want*105/100 {
				t.Fatalf("timeout %v; want %v", got, c.want)
			}
		})
	}
}

// TestHealthStates: live, stalled after the timeout, back, lost, back,
// ended: each change logged once, and the losses counted.
func TestHealthStates(t *testing.T) {
	var logs testutil.LockedBuffer
	h := newHealth(slog.New(slog.NewTextHandler(&logs, nil)), nil, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.watch(ctx) }()
	defer func() { cancel(); <-done }()
	state := func(want string) {
		t.Helper()
		testutil.Eventually(t, 5*time.Second, "state "+want, func() bool { s, _, _ := h.snapshot(); return s == want })
	}
	h.frame(time.Now())
	state(protocol.SourceLive)
	state(protocol.SourceStalled) // no frames now
	if _, why, _ := h.snapshot(); !strings.HasPrefix(why, "no frame for") {
		t.Errorf("stalled because %q", why)
	}
	h.frame(time.Now())
	state(protocol.SourceLive)
	h.lost(errors.New("connection refused"))
	state(protocol.SourceReconnecting)
	h.lost(errors.New("connection refused")) // again: not logged again
	h.opened(time.Now())
	h.frame(time.Now())
	state(protocol.SourceLive)
	h.ended("publisher stopped")
	if _, _, losses := h.snapshot(); losses != 2 {
		t.Errorf("%d losses; want 2", losses)
	}
	text := logs.String()
	for msg, want := range map[string]int{"source live": 1, "source stalled": 1, "source back": 2, "source lost; reconnecting": 1, "source ended": 1} {
		if got := strings.Count(text, `msg="`+msg+`"`); got != want {
			t.Errorf("%q logged %d times; want %d:\n%s", msg, got, want, text)
		}
	}
}

// TestHealthLibErrorsBounded: a library that prints a thousand lines a
// second is logged once per 10 s, with the count of the lines folded.
func TestHealthLibErrorsBounded(t *testing.T) {
	var logs testutil.LockedBuffer
	h := newHealth(slog.New(slog.NewTextHandler(&logs, nil)), nil, 0)
	for i := range 1000 {
		h.libError(fmt.Sprintf("[tcp @ 0x%x] Connection refused", i))
	}
	if n := strings.Count(logs.String(), `msg="source error"`); n != 1 {
		t.Fatalf("%d lines logged; want 1", n)
	}
	h.mu.Lock()
	h.libLast = time.Now().Add(-sourceErrorEvery)
	h.mu.Unlock()
	h.libError(strings.Repeat("x", 10000))
	text := logs.String()
	if !strings.Contains(text, "folded=999") || strings.Count(text, `msg="source error"`) != 2 || len(text) > 2000 {
		t.Fatalf("want a second line with folded=999 and the error cut short:\n%.3000s", text)
	}
}
