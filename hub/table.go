package hub

import (
	"slices"
	"strings"
	"sync"
	"time"

	"framehub/protocol"
)

// table is the hub's set of channels. A channel is active while a
// publisher holds a claim on it or it holds a frame; only active channels
// count against the channel limit. A subscriber may wait on a name nobody
// publishes: that creates a waiting entry, bounded by the subscriber
// limits, which takes no channel slot and disappears with its last
// subscriber, so made-up names cannot lock publishers out.
//
// Lock order: table.mu, then channel.mu. Safe for concurrent use.
type table struct {
	max   int         // static: active channels allowed
	instr Instruments // static; nil for none

	mu       sync.Mutex
	channels map[string]*channel
	active   int // channels with a claim or a frame
}

func newTable(max int, instr Instruments) *table {
	return &table{max: max, instr: instr, channels: make(map[string]*channel)}
}

// newChannelLocked creates and adds the named channel.
func (t *table) newChannelLocked(name string) *channel {
	var age Observer
	if t.instr != nil {
		age = t.instr.FrameAge(name)
	}
	c := newChannel(name, time.Now(), age)
	t.channels[name] = c
	return c
}

// activeLocked reports whether c counts against the limit.
func (t *table) activeLocked(c *channel) bool { return c.claims > 0 || c.hasFrame() }

// claim admits a publisher of name, creating the channel if need be. It
// fails, changing nothing, when the channel is not active and the table
// already holds its limit of active channels. Every successful claim must
// be undone with unclaim when the publisher goes.
func (t *table) claim(name string) (*channel, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.channels[name]
	if c == nil || !t.activeLocked(c) {
		if t.active >= t.max {
			return nil, false
		}
		t.active++
		if c == nil {
			c = t.newChannelLocked(name)
		}
	}
	c.claims++
	return c, true
}

// unclaim undoes a claim. The channel stays active while it holds a frame
// (listed until its frame is older than the TTL).
func (t *table) unclaim(c *channel) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c.claims--
	if c.claims == 0 && !c.hasFrame() {
		t.active--
		t.forgetIfUnusedLocked(c)
	}
}

// join adds a subscriber's mailbox to the named channel, as a reader of
// what w asks for, creating a waiting entry if nobody publishes it, and
// hands it the newest frame of that.
func (t *table) join(name string, m *mailbox, w protocol.RenditionWant) *channel {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.channels[name]
	if c == nil {
		c = t.newChannelLocked(name)
	}
	c.addSub(m, w)
	return c
}

// leave removes a subscriber's mailbox and forgets a waiting entry that
// has no one left.
func (t *table) leave(c *channel, m *mailbox) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c.removeSub(m)
	t.forgetIfUnusedLocked(c)
}

func (t *table) forgetIfUnusedLocked(c *channel) {
	if c.claims == 0 && c.idle() && t.channels[c.name] == c {
		delete(t.channels, c.name)
		if t.instr != nil {
			t.instr.Forget(c.name)
		}
	}
}

// lookup returns the named channel or nil.
func (t *table) lookup(name string) *channel {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.channels[name]
}

// subscribers returns the number of subscribers of the named channel.
func (t *table) subscribers(name string) int {
	c := t.lookup(name)
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// sweep updates every channel's rates, lets go of frames older than ttl
// on channels without a publisher (handing each to retire), and forgets
// entries nobody uses.
func (t *table) sweep(now time.Time, ttl time.Duration, retire func(*frame)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.channels {
		c.tick(now)
		for _, f := range c.sweepRenditions(now, ttl) {
			retire(f)
		}
		if latest, prev := c.forgetStale(now, ttl); latest != nil {
			retire(latest)
			retire(prev)
			if c.claims == 0 {
				t.active--
			}
		}
		t.forgetIfUnusedLocked(c)
	}
}

// counts returns the active channels and the waiting entries.
func (t *table) counts() (active, waiting int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active, len(t.channels) - t.active
}

// all returns every channel.
func (t *table) all() []*channel {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*channel, 0, len(t.channels))
	for _, c := range t.channels {
		out = append(out, c)
	}
	return out
}

// infos returns the listed channels (those with a publisher or a recent
// frame), sorted by name.
func (t *table) infos(ttl time.Duration) []protocol.ChannelInfo {
	now := time.Now()
	var out []protocol.ChannelInfo
	for _, c := range t.all() {
		if in, ok := c.info(now, ttl); ok {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b protocol.ChannelInfo) int { return strings.Compare(a.Name, b.Name) })
	if out == nil {
		out = []protocol.ChannelInfo{}
	}
	return out
}
