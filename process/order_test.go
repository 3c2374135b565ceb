package process

import (
	"context"
	"image"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"framehub/protocol"
)

// TestTurnstileOrder: workers take tickets in any order and reach a
// sequential section at random times; some frames drop out before it. The
// section still sees the tickets that reach it in increasing order, and
// nobody deadlocks.
func TestTurnstileOrder(t *testing.T) {
	const n = 400
	ts := newTurnstile()
	var mu sync.Mutex
	var order []uint64
	tickets := make(chan uint64, n)
	for i := uint64(1); i <= n; i++ {
		tickets <- i
	}
	close(tickets)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tk := range tickets {
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				if tk%7 == 0 { // failed before the section
					ts.skip(tk)
					continue
				}
				ts.wait(tk)
				mu.Lock()
				order = append(order, tk)
				mu.Unlock()
				ts.done(tk)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("turnstile deadlocked")
	}
	if len(order) != n-n/7 {
		t.Fatalf("%d tickets passed; want %d", len(order), n-n/7)
	}
	for i := 1; i < len(order); i++ {
		if order[i] <= order[i-1] {
			t.Fatalf("ticket %d passed after %d", order[i], order[i-1])
		}
	}
}

// TestOutputSlotNeverGoesBack: results finish out of order; what is taken
// for publishing only ever goes forward, and every result is either taken,
// late, or overwritten.
func TestOutputSlotNeverGoesBack(t *testing.T) {
	s := newOutputSlot()
	ctx := context.Background()
	put := func(tickets ...uint64) {
		for _, tk := range tickets {
			s.put(&result{ticket: tk})
		}
	}
	put(3, 1) // 1 is late behind 3 waiting
	if r := s.take(ctx); r.ticket != 3 {
		t.Fatalf("took %d; want 3", r.ticket)
	}
	put(2, 5, 4, 6) // 2 late (3 taken); 5 waits, 4 late behind it, 6 replaces 5
	if r := s.take(ctx); r.ticket != 6 {
		t.Fatalf("took %d; want 6", r.ticket)
	}
	if late, over := s.counts(); late != 3 || over != 1 {
		t.Fatalf("late %d, overwritten %d; want 3 and 1", late, over)
	}
	s.close()
	if r := s.take(ctx); r != nil {
		t.Fatalf("took %d from a closed, empty slot", r.ticket)
	}
}

// TestInputSlotNewestWins: frames put while no worker is free replace each
// other; a worker gets the newest, with the next ticket.
func TestInputSlotNewestWins(t *testing.T) {
	s := newInputSlot()
	for seq := uint64(1); seq <= 5; seq++ {
		s.put(&input{frame: protocol.Frame{Header: protocol.Header{Seq: seq}}})
	}
	in := s.take(context.Background())
	if in.frame.Seq != 5 || in.ticket != 1 || s.skippedCount() != 4 {
		t.Fatalf("took seq %d ticket %d, %d skipped; want seq 5, ticket 1, 4 skipped", in.frame.Seq, in.ticket, s.skippedCount())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if in := s.take(ctx); in != nil {
		t.Fatalf("took seq %d from an empty slot", in.frame.Seq)
	}
}

func TestPadRegions(t *testing.T) {
	bounds := image.Rect(0, 0, 640, 480)
	got := padRegions([]image.Rectangle{image.Rect(100, 100, 140, 200), image.Rect(150, 120, 170, 180), image.Rect(600, 400, 640, 480)}, 0.5, 16, bounds)
	want := map[image.Rectangle]bool{
		image.Rect(80, 50, 186, 250):   true, // the first two, padded, overlap: merged
		image.Rect(580, 360, 640, 480): true, // cut at the edge
	}
	if len(got) != len(want) {
		t.Fatalf("padRegions = %v; want %v", got, want)
	}
	for _, r := range got {
		if !want[r] {
			t.Fatalf("padRegions = %v; want %v", got, want)
		}
	}
	if s := regionScale(image.Rect(0, 0, 40, 64), 80, 144); s != 2.25 {
		t.Errorf("regionScale = %v; want 2.25", s)
	}
	if s := regionScale(image.Rect(0, 0, 10, 10), 80, 144); s != maxRegionUpscale {
		t.Errorf("regionScale of a tiny region = %v; want the cap %v", s, maxRegionUpscale)
	}
}

// TestInputSlotWaitsForFresher: frames come every 100 ms. A worker free
// when the waiting frame is young takes it at once; one free when it is
// more than half an interval old waits for the next, which is fresher;
// and if no next frame comes, it takes the old one after an interval and
// a half.
func TestInputSlotWaitsForFresher(t *testing.T) {
	const interval = 100 * time.Millisecond // long enough for a loaded machine's timer slop
	s := newInputSlot()
	ctx := context.Background()
	seq := uint64(0)
	put := func() {
		seq++
		s.put(&input{frame: protocol.Frame{Header: protocol.Header{Seq: seq}}, recvNS: time.Now().UnixNano()})
	}
	for range 10 { // the camera's rhythm
		put()
		time.Sleep(interval)
	}
	s.take(ctx) // frame 10, with no frame after it: the slot is empty again

	put() // 11
	young := time.Now()
	if in := s.take(ctx); in.frame.Seq != 11 || time.Since(young) > interval/3 {
		t.Fatalf("took frame %d after %v; want the young frame 11 at once", in.frame.Seq, time.Since(young))
	}

	put() // 12
	time.Sleep(interval * 3 / 4)
	got := make(chan *input, 1)
	go func() { got <- s.take(ctx) }()
	time.Sleep(interval / 4)
	put() // 13
	if in := <-got; in.frame.Seq != 13 {
		t.Fatalf("took frame %d; want 13: frame 12 was 3/4 of an interval old with 13 due soon", in.frame.Seq)
	}

	put() // 14, and the camera stops
	time.Sleep(interval * 3 / 4)
	began := time.Now()
	in := s.take(ctx)
	if in.frame.Seq != 14 || time.Since(began) > interval {
		t.Fatalf("took frame %d after %v; want 14 within an interval when no newer frame comes", in.frame.Seq, time.Since(began))
	}
}
