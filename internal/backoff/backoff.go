// Package backoff computes capped, jittered reconnect delays, so that many
// clients cut off by one hub restart do not all come back in the same
// instant.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields growing delays: each call to Next doubles the ceiling from
// Min up to Max and returns a random delay between half the ceiling and the
// ceiling. Reset starts over after a success. The zero value uses 250 ms and
// 2.5 s: after a hub restart every client is back within about 2.5 s,
// however long the hub was down. Not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	ceil     time.Duration
}

// Next returns the next delay.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi < lo {
		hi = max(lo, 2500*time.Millisecond)
	}
	if b.ceil < lo {
		b.ceil = lo
	} else {
		b.ceil = min(2*b.ceil, hi)
	}
	half := b.ceil / 2
	return half + rand.N(half+1)
}

// Reset makes the next delay short again.
func (b *Backoff) Reset() { b.ceil = 0 }

// Sleep waits for the next delay or until ctx is done, and reports whether
// the full delay passed.
func (b *Backoff) Sleep(ctx context.Context) bool { return Wait(ctx, b.Next()) }

// Wait waits for d or until ctx is done, and reports whether d passed.
func Wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
