package ratelimit

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := NewBucket(10, 3) // 10 a second, bursts of 3
	for i := range 3 {
		if !b.Allow(t0) {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	if b.Allow(t0) {
		t.Fatal("a fourth event in the same instant allowed; want the burst of 3")
	}
	if b.Full(t0) {
		t.Fatal("an empty bucket says it is full")
	}
	if !b.Allow(t0.Add(100 * time.Millisecond)) {
		t.Fatal("no token 100 ms later at 10 a second")
	}
	if b.Allow(t0.Add(150 * time.Millisecond)) {
		t.Fatal("a token 50 ms after the last one at 10 a second")
	}
	// It refills up to the burst, never past it.
	later := t0.Add(time.Hour)
	if !b.Full(later) {
		t.Fatal("not full after an hour")
	}
	n := 0
	for b.Allow(later) {
		n++
		if n > 10 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("%d events allowed after an hour idle; want the burst, 3", n)
	}
}

// lines parses a text handler's output into its messages.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestLoggerFoldsRepeatsAndReportsThem(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute)
	for range 100 {
		l.Log(slog.LevelWarn, "refused:too_big", "refused: too big", slog.String("remote", "a"))
	}
	l.Log(slog.LevelWarn, "refused:bad_jpeg", "refused: bad jpeg")
	got := lines(buf.String())
	if len(got) != 2 {
		t.Fatalf("%d lines for 100 events of one key and 1 of another; want 2:\n%s", len(got), buf.String())
	}
	// Nothing is lost: once the key is quiet, Flush says how many were folded.
	buf.Reset()
	l.Flush(time.Now().Add(2 * time.Minute))
	if !strings.Contains(buf.String(), "refused: too big (repeated)") || !strings.Contains(buf.String(), "repeats_folded=99") {
		t.Fatalf("summary: %q; want the 99 folded lines reported", buf.String())
	}
	if strings.Contains(buf.String(), "bad jpeg") {
		t.Fatalf("a key with nothing folded was summarised: %q", buf.String())
	}
	// Flush forgot the quiet keys: the next line of the key goes out.
	buf.Reset()
	l.Log(slog.LevelWarn, "refused:too_big", "refused: too big")
	if len(lines(buf.String())) != 1 || strings.Contains(buf.String(), "repeats_folded") {
		t.Fatalf("after the summary: %q; want one fresh line", buf.String())
	}
}

func TestLoggerGlobalBudget(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				l.Log(slog.LevelInfo, "key"+string(rune('a'+g))+string(rune(i)), "event")
			}
		}()
	}
	wg.Wait()
	n := len(lines(buf.String()))
	// 1000 distinct keys within well under a second: the burst of 60, plus
	// what 20 a second refills meanwhile.
	if n < globalBurst || n > globalBurst+20 {
		t.Fatalf("%d lines for 1000 distinct keys; want about the burst of %d", n, globalBurst)
	}
	buf.Reset()
	l.Flush(time.Now())
	if !strings.Contains(buf.String(), "held back by the log rate limit") || !strings.Contains(buf.String(), "lines=") {
		t.Fatalf("flush: %q; want the lines held back reported", buf.String())
	}
}

func TestLoggerDisabledLevelCostsNothing(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})), time.Minute)
	if l.Enabled(slog.LevelDebug) {
		t.Fatal("Debug enabled on a Warn handler")
	}
	l.Log(slog.LevelDebug, "k", "debug line")
	if buf.Len() != 0 || len(l.keys) != 0 {
		t.Fatalf("a disabled line was written or kept: %q, %d keys", buf.String(), len(l.keys))
	}
	NewLogger(nil, time.Second).Log(slog.LevelError, "k", "to nowhere") // nil discards
}
