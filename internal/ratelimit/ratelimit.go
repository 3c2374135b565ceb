// Package ratelimit holds framehub's two rate limits, shared by the hub, the
// processing worker, the cluster link and the clients: Bucket, a token
// bucket (a publisher's frame-rate cap, an address's connection rate, a
// log's global budget), and Logger, a log whose lines about the same thing
// are written at most once per interval, the ones in between folded into a
// count, so that nothing a peer does is logged at an unbounded rate.
//
// Standard library only, so that every package may import it.
package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Bucket is a token bucket: it lets Rate events per second through, with
// bursts of up to Burst. Make one with NewBucket; it starts full. Not safe
// for concurrent use: its owner guards it.
type Bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time // when tokens was last brought up to date; zero: never
}

// NewBucket returns a full bucket that refills at rate tokens per second up
// to burst.
func NewBucket(rate, burst float64) Bucket {
	return Bucket{rate: rate, burst: burst, tokens: burst}
}

// refill brings the tokens up to date at now. A clock that goes back
// (callers pass their own now) adds nothing and takes nothing.
func (b *Bucket) refill(now time.Time) {
	if b.last.IsZero() || now.After(b.last) {
		if !b.last.IsZero() {
			b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		}
		b.last = now
	}
}

// Allow takes a token at now and reports whether there was one.
func (b *Bucket) Allow(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Full reports whether the bucket would be full at now (it has not been
// used for long enough): an owner that keeps many buckets may forget a
// full one, as a new one starts full too. It changes nothing.
func (b *Bucket) Full(now time.Time) bool {
	t := b.tokens
	if !b.last.IsZero() && now.After(b.last) {
		t += now.Sub(b.last).Seconds() * b.rate
	}
	return t >= b.burst
}

// Global budget of a Logger: lines per second over all keys, sustained,
// and the burst allowed.
const (
	globalRate  = 20
	globalBurst = 60
)

// Logger writes log lines at a bounded rate whatever peers do: at most one
// line per key per interval, and at most 20 lines per second (bursts of
// 60) over all keys. A line held back is counted; the count goes out with
// the key's next line (attribute repeats_folded), or with a summary that
// Flush writes once the key has been quiet for an interval, so nothing is
// lost but the repetition. A key names one kind of event ("refused:
// too_big", "left:cam1"); the map of keys holds only those seen within an
// interval, once Flush is called now and then (without Flush, one entry
// per key ever used: fine for a fixed set of keys).
//
// The zero value is not usable; make one with NewLogger. Safe for
// concurrent use.
type Logger struct {
	log      *slog.Logger
	interval time.Duration

	mu     sync.Mutex
	keys   map[string]*key
	global Bucket
	over   uint64 // lines the global budget held back since the last Flush
}

type key struct {
	last   time.Time
	folded uint64
	level  slog.Level
	msg    string
	attrs  []slog.Attr // of the last line held back, for the summary
}

// NewLogger returns a Logger writing to log (nil discards) at most once
// per interval per key.
func NewLogger(log *slog.Logger, interval time.Duration) *Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Logger{log: log, interval: interval, keys: make(map[string]*key), global: NewBucket(globalRate, globalBurst)}
}

// Enabled reports whether lines at level are written at all, so that a
// caller on a hot path can skip building them.
func (l *Logger) Enabled(level slog.Level) bool {
	return l.log.Enabled(context.Background(), level)
}

// Log writes msg at level unless a line with the same key was written less
// than an interval ago or the global budget is spent; either way the line
// is counted.
func (l *Logger) Log(level slog.Level, k, msg string, attrs ...slog.Attr) {
	if !l.Enabled(level) {
		return
	}
	now := time.Now()
	l.mu.Lock()
	e := l.keys[k]
	if e == nil {
		e = &key{}
		l.keys[k] = e
	}
	if !e.last.IsZero() && now.Sub(e.last) < l.interval {
		e.folded++
		e.level, e.msg, e.attrs = level, msg, attrs
		l.mu.Unlock()
		return
	}
	if !l.global.Allow(now) {
		l.over++
		l.mu.Unlock()
		return
	}
	e.last = now
	folded := e.folded
	e.folded = 0
	l.mu.Unlock()
	if folded > 0 {
		attrs = append(attrs, slog.Uint64("repeats_folded", folded))
	}
	l.log.LogAttrs(context.Background(), level, msg, attrs...)
}

// LogKV is Log with its attributes given as slog.Logger.Log takes them:
// alternating keys and values, or slog.Attr values.
func (l *Logger) LogKV(level slog.Level, k, msg string, args ...any) {
	if !l.Enabled(level) {
		return
	}
	var r slog.Record
	r.Add(args...)
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	l.Log(level, k, msg, attrs...)
}

// Flush writes a summary ("… (repeated)", with repeats_folded) for each
// key quiet for an interval whose held-back lines would otherwise never be
// reported, forgets quiet keys, and reports the lines the global budget
// held back. Call it now and then (the hub's janitor does, once a second).
func (l *Logger) Flush(now time.Time) {
	type summary struct {
		level slog.Level
		msg   string
		attrs []slog.Attr
	}
	var out []summary
	l.mu.Lock()
	for k, e := range l.keys {
		if now.Sub(e.last) < l.interval {
			continue
		}
		if e.folded > 0 {
			if l.global.Allow(now) {
				out = append(out, summary{e.level, e.msg + " (repeated)", append(e.attrs, slog.Uint64("repeats_folded", e.folded))})
			} else {
				l.over += e.folded
			}
		}
		delete(l.keys, k)
	}
	over := l.over
	l.over = 0
	l.mu.Unlock()
	for _, s := range out {
		l.log.LogAttrs(context.Background(), s.level, s.msg, s.attrs...)
	}
	if over > 0 {
		l.log.LogAttrs(context.Background(), slog.LevelWarn, "log lines held back by the log rate limit", slog.Uint64("lines", over))
	}
}
