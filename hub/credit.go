package hub

import (
	"sync"
	"sync/atomic"

	"framehub/protocol"
)

// credit is one subscriber's flow-control state. In credit mode the hub
// keeps at most window frames in flight: sent and not yet acknowledged.
// Every frame sent is recorded, in credit mode or not, so that a frame sent
// before the subscriber asked for credit (the newest frame, which goes out
// as soon as it connects) counts against its window and its ack returns
// exactly one credit, not an extra one.
//
// Safe for concurrent use: the subscriber's reader applies control
// messages while its writer asks for credit.
type credit struct {
	mu       sync.Mutex
	on       atomic.Bool // set under mu, never cleared: available reads it without the lock
	window   int
	inflight []uint64 // sent and not acknowledged, oldest first; at most MaxCreditWindow
}

// enable switches to credit mode with the given window, keeping the frames
// already in flight.
func (c *credit) enable(window int) {
	c.mu.Lock()
	c.on.Store(true)
	c.window = min(max(window, 1), protocol.MaxCreditWindow)
	c.mu.Unlock()
}

// take reports whether a frame may be sent now and, if so, records seq as
// in flight. Outside credit mode it always may; the record then keeps only
// the most recent MaxCreditWindow frames, which are all a later switch to
// credit mode can have in flight.
func (c *credit) take(seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on.Load() && len(c.inflight) >= c.window {
		return false
	}
	if len(c.inflight) == protocol.MaxCreditWindow {
		c.inflight = append(c.inflight[:0], c.inflight[1:]...)
	}
	c.inflight = append(c.inflight, seq)
	return true
}

// available reports whether a frame could be sent now. Outside credit
// mode, the writer's case at every frame, it takes no lock: credit mode,
// once on, stays on, and take checks again under the lock.
func (c *credit) available() bool {
	if !c.on.Load() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight) < c.window
}

// ack acknowledges seq and every frame sent before it (acks are
// cumulative: a viewer that skipped a frame acks only the one it showed),
// and reports whether that returned any credit. An ack for a frame not in
// flight returns nothing: a subscriber gains credit only by consuming
// what it was sent.
func (c *credit) ack(seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.inflight {
		if s == seq {
			c.inflight = append(c.inflight[:0], c.inflight[i+1:]...)
			return true
		}
	}
	return false
}
