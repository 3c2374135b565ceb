package process

import (
	"context"
	"sync"
	"time"

	"framehub/protocol"
)

// input is a received frame a worker may take, with bytes of its own.
type input struct {
	frame  protocol.Frame
	recvNS int64 // when it arrived, Unix ns (the process's clock)
	ticket uint64
}

// inputSlot hands the newest received frame to the next free worker.
// Putting a frame while another waits replaces it (the older one is
// skipped and counted); nothing ever queues. Taking a frame gives it the
// next ticket: tickets number the frames workers take, from 1, and order
// everything after (sequential steps, the output).
//
// It keeps the newest frame as a newest.Slot does, but it is not one: the
// ticket must be given under the same lock as the take, several workers
// take from it, and a take may choose to wait for the next frame (below),
// which needs the arrival times beside the frame.
//
// A worker that becomes free while every other one is busy would often
// take a frame that has waited most of a frame interval. When the waiting
// frame is more than half an interval old, the next one is due in less
// than half an interval: take waits for it instead (until one and a half
// intervals after the old frame arrived, in case the source stalls), so
// the age processing adds is the processing time and a few milliseconds,
// not up to a whole interval more.
type inputSlot struct {
	mu       sync.Mutex
	pending  *input
	next     uint64 // last ticket given
	skipped  uint64
	closed   bool
	lastPut  int64         // Unix ns
	interval int64         // smoothed time between frames, ns; 0 until known
	wake     chan struct{} // capacity 1
}

func newInputSlot() *inputSlot { return &inputSlot{wake: make(chan struct{}, 1)} }

// put makes in the newest frame.
func (s *inputSlot) put(in *input) {
	s.mu.Lock()
	if s.pending != nil {
		s.skipped++
	}
	s.pending = in
	if s.lastPut != 0 {
		gap := in.recvNS - s.lastPut
		switch {
		case gap <= 0:
		case s.interval == 0:
			s.interval = gap
		default:
			s.interval += (gap - s.interval) / 8
		}
	}
	s.lastPut = in.recvNS
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take waits for a frame and gives it the next ticket. It returns nil
// when ctx ends or the slot is closed. Safe for several workers: a wake-up
// that finds no frame (or one worth waiting past) waits again.
func (s *inputSlot) take(ctx context.Context) *input {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		now := time.Now().UnixNano()
		s.mu.Lock()
		in, closed := s.pending, s.closed
		var wait int64 // ns until the frame is taken anyway
		if in != nil && !closed && s.interval > 0 {
			if age := now - in.recvNS; age > s.interval/2 {
				wait = in.recvNS + s.interval*3/2 - now
			}
		}
		if in != nil && wait <= 0 {
			s.pending = nil
			s.next++
			in.ticket = s.next
		}
		s.mu.Unlock()
		switch {
		case in != nil && wait <= 0:
			return in
		case in == nil && closed:
			return nil
		}
		var expire <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(time.Duration(wait))
			} else {
				timer.Reset(time.Duration(wait))
			}
			expire = timer.C
		}
		select {
		case <-s.wake:
		case <-expire:
		case <-ctx.Done():
			return nil
		}
	}
}

// close makes take return nil once no frame is pending.
func (s *inputSlot) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.wake) // every waiting worker wakes; put is never called after close
}

func (s *inputSlot) skippedCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skipped
}

// result is a processed frame ready to publish.
type result struct {
	ticket  uint64
	header  protocol.Header // the input's seq and capture time; size and codec of payload
	meta    Meta
	payload []byte
	recvNS  int64   // when the input arrived
	procMS  float64 // processing time, from take to result
	carried bool    // the motion gate carried detections into it
	// scores are what the frame showed of each kind of event (see
	// eventEngine.observe), nil without events or for a late frame.
	scores []float64
}

// outputSlot orders results for the one goroutine that publishes them:
// a result whose ticket is not newer than one already taken for
// publishing, or than the one waiting, is late and dropped; a newer one
// replaces the one waiting (which is skipped). So the output never goes
// back in time, and never queues. Unlike a newest.Slot, which takes
// whatever came last, it compares what comes with what it holds: workers
// finish out of order.
type outputSlot struct {
	mu          sync.Mutex
	pending     *result
	lastTaken   uint64
	late        uint64
	overwritten uint64
	closed      bool
	wake        chan struct{} // capacity 1
}

func newOutputSlot() *outputSlot { return &outputSlot{wake: make(chan struct{}, 1)} }

// put offers a result, and reports whether it was kept.
func (s *outputSlot) put(r *result) bool {
	s.mu.Lock()
	switch {
	case r.ticket <= s.lastTaken || (s.pending != nil && r.ticket < s.pending.ticket):
		s.late++
		s.mu.Unlock()
		return false
	case s.pending != nil:
		s.overwritten++
	}
	s.pending = r
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// take waits for the newest result; nil when ctx ends, or the slot is
// closed and empty.
func (s *outputSlot) take(ctx context.Context) *result {
	for {
		s.mu.Lock()
		r, closed := s.pending, s.closed
		if r != nil {
			s.pending = nil
			s.lastTaken = r.ticket
		}
		s.mu.Unlock()
		if r != nil {
			return r
		}
		if closed {
			return nil
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// close makes take return nil once the waiting result is taken.
func (s *outputSlot) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *outputSlot) counts() (late, overwritten uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.late, s.overwritten
}

// turnstile lets frames through a sequential section (a step that keeps
// state from frame to frame, like the motion step's background model) one
// at a time, in ticket order. Every ticket from 1 must pass, by wait then
// done, or by skip for a frame that never reaches the section; a ticket
// waits only for smaller ones, so frames cannot deadlock.
type turnstile struct {
	mu      sync.Mutex
	cond    *sync.Cond
	next    uint64          // the ticket whose turn it is
	skipped map[uint64]bool // tickets past next that will not come
}

func newTurnstile() *turnstile {
	t := &turnstile{next: 1, skipped: map[uint64]bool{}}
	t.cond = sync.NewCond(&t.mu)
	return t
}

// wait blocks until it is ticket's turn.
func (t *turnstile) wait(ticket uint64) {
	t.mu.Lock()
	for t.next != ticket {
		t.cond.Wait()
	}
	t.mu.Unlock()
}

// done ends ticket's turn.
func (t *turnstile) done(ticket uint64) {
	t.mu.Lock()
	if t.next == ticket {
		t.advance()
	}
	t.mu.Unlock()
}

// skip lets ticket pass without taking its turn.
func (t *turnstile) skip(ticket uint64) {
	t.mu.Lock()
	if ticket == t.next {
		t.advance()
	} else if ticket > t.next {
		t.skipped[ticket] = true
	}
	t.mu.Unlock()
}

// advance moves past the current ticket and any skipped after it. Called
// with mu held.
func (t *turnstile) advance() {
	t.next++
	for t.skipped[t.next] {
		delete(t.skipped, t.next)
		t.next++
	}
	t.cond.Broadcast()
}

// carryStore keeps, per gated detector, the boxes it found on the newest
// frame (by ticket) it ran on, for frames on which the gate skips it.
type carryStore struct {
	mu    sync.Mutex
	items map[int]carried
}

type carried struct {
	ticket uint64
	boxes  []protocol.Box
}

func newCarryStore() *carryStore { return &carryStore{items: map[int]carried{}} }

// store records boxes found by detector key on frame ticket, unless a
// newer frame's are already there. It keeps its own copy.
func (c *carryStore) store(key int, ticket uint64, boxes []protocol.Box) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.items[key]; ok && cur.ticket > ticket {
		return
	}
	c.items[key] = carried{ticket: ticket, boxes: append([]protocol.Box(nil), boxes...)}
}

// load returns a copy of detector key's newest boxes, marked carried.
func (c *carryStore) load(key int) []protocol.Box {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.items[key]
	out := make([]protocol.Box, len(cur.boxes))
	for i, b := range cur.boxes {
		b.Carried = true
		out[i] = b
	}
	return out
}
