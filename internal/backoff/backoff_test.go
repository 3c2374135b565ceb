package backoff

import (
	"testing"
	"time"
)

func TestBackoffGrowsJittersAndCaps(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 800 * time.Millisecond}
	ceilings := []time.Duration{100, 200, 400, 800, 800, 800}
	for i, c := range ceilings {
		c *= time.Millisecond
		d := b.Next()
		if d < c/2 || d > c {
			t.Fatalf("delay %d = %v; want within [%v, %v]", i, d, c/2, c)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("after Reset delay = %v; want <= 100ms", d)
	}
	// Jitter: many draws at the cap are not all equal.
	seen := map[time.Duration]bool{}
	for range 50 {
		b.ceil = b.Max
		seen[b.Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("%d distinct delays in 50 draws; want jitter", len(seen))
	}
}
