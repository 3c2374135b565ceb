package hub

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// eventLog writes the hub's per-connection log lines (refusals,
// publishers coming, going and being replaced, evictions) at a bounded
// rate whatever clients do: at most one line per key per interval, and at
// most globalRate lines per second over all keys. Lines held back are
// counted, and the count is written with the key's next line, or by flush
// once the key has been quiet for an interval, so nothing is lost but the
// repetition. Safe for concurrent use.
type eventLog struct {
	log      *slog.Logger
	interval time.Duration

	mu     sync.Mutex
	keys   map[string]*eventKey
	tokens float64 // global bucket
	last   time.Time
	over   uint64 // lines held back by the global bucket since the last flush
}

type eventKey struct {
	last   time.Time
	folded uint64
	level  slog.Level
	msg    string
	attrs  []slog.Attr // of the last line held back, for the summary
}

// Global bucket: sustained lines per second, and the burst allowed.
const (
	eventGlobalRate  = 20
	eventGlobalBurst = 60
)

func newEventLog(log *slog.Logger, interval time.Duration) *eventLog {
	return &eventLog{log: log, interval: interval, keys: make(map[string]*eventKey), tokens: eventGlobalBurst}
}

// enabled reports whether lines at level are written at all, so that a
// caller on a hot path can skip building them.
func (l *eventLog) enabled(level slog.Level) bool {
	return l.log.Enabled(context.Background(), level)
}

// logf writes msg at level unless a line with the same key was written
// less than an interval ago, or the global rate is spent; either way the
// event is counted.
func (l *eventLog) logf(level slog.Level, key, msg string, attrs ...slog.Attr) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	now := time.Now()
	l.mu.Lock()
	k := l.keys[key]
	if k == nil {
		k = &eventKey{}
		l.keys[key] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < l.interval {
		k.folded++
		k.level, k.msg, k.attrs = level, msg, attrs
		l.mu.Unlock()
		return
	}
	l.tokens = min(eventGlobalBurst, l.tokens+now.Sub(l.last).Seconds()*eventGlobalRate)
	l.last = now
	if l.tokens < 1 {
		l.over++
		l.mu.Unlock()
		return
	}
	l.tokens--
	k.last = now
	folded := k.folded
	k.folded = 0
	l.mu.Unlock()
	if folded > 0 {
		attrs = append(attrs, slog.Uint64("repeats_folded", folded))
	}
	l.log.LogAttrs(context.Background(), level, msg, attrs...)
}

// flush writes a summary for keys whose held-back lines would otherwise
// never be reported, forgets quiet keys (so the map stays as small as the
// set of recently busy ones), and reports lines the global rate held back.
// The hub's janitor calls it once a second.
func (l *eventLog) flush(now time.Time) {
	type summary struct {
		level slog.Level
		msg   string
		attrs []slog.Attr
	}
	var out []summary
	l.mu.Lock()
	for key, k := range l.keys {
		if now.Sub(k.last) < l.interval {
			continue
		}
		if k.folded > 0 {
			l.tokens = min(eventGlobalBurst, l.tokens+now.Sub(l.last).Seconds()*eventGlobalRate)
			l.last = now
			if l.tokens >= 1 {
				l.tokens--
				out = append(out, summary{k.level, k.msg + " (repeated)", append(k.attrs, slog.Uint64("repeats_folded", k.folded))})
			} else {
				l.over += k.folded
			}
		}
		delete(l.keys, key)
	}
	over := l.over
	l.over = 0
	l.mu.Unlock()
	for _, s := range out {
		l.log.LogAttrs(context.Background(), s.level, s.msg, s.attrs...)
	}
	if over > 0 {
		l.log.LogAttrs(context.Background(), slog.LevelWarn, "log lines held back by the hub's log rate limit", slog.Uint64("lines", over))
	}
}
