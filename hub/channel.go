package hub

import (
	"sync"
	"time"

	"framehub/internal/ratelimit"
	"framehub/protocol"
)

// channel is one camera's stream: its current publisher, its newest frame
// and its subscribers.
type channel struct {
	name string   // static after construction
	age  Observer // frame ages at delivery, or nil; static after construction

	// Guarded by the table's mutex.
	claims int // publishers admitted and not yet gone, handshakes included

	mu     sync.Mutex            // guards everything below
	pub    publisherConn         // current publisher, or nil
	remote int                   // other hubs that want the channel (clustered hubs)
	latest *frame                // newest frame, or nil
	prev   *frame                // the frame latest replaced: slow subscribers may still be sending it
	subs   map[*mailbox]struct{} // WebSocket and MJPEG readers
	wsSubs int                   // how many of subs are WebSocket subscribers

	rv *renditions // renditions and the readers that asked for one, or nil (rendition.go)

	frames, bytes   uint64            // published since the channel was created
	dropped         uint64            // frames over the publisher frame-rate cap
	postCap         *ratelimit.Bucket // the frame-rate cap shared by snapshot POSTs, made on the first
	departedSkipped uint64            // overwritten frames of subscribers that have left
	departedOut     uint64            // frames written to subscribers that have left
	departedBytes   uint64            // bytes written to subscribers that have left
	rateAt          time.Time         // when fps and bitrate were last computed
	rateFrames      uint64            // frames at rateAt
	rateBytes       uint64
	fps, bitrate    float64
}

// publisherConn is what a channel needs of its publisher: a way to close it
// when a newer one takes over.
type publisherConn interface {
	replaced()
}

func newChannel(name string, now time.Time, age Observer) *channel {
	return &channel{name: name, age: age, subs: make(map[*mailbox]struct{}), rateAt: now}
}

// observeAge records the age of f as a write of it to a subscriber ends.
func (c *channel) observeAge(f *frame) {
	if c.age != nil {
		c.age.Observe(float64(time.Now().UnixNano()-f.hdr.CaptureTime) / 1e9)
	}
}

// counters reads the channel's counters for a metrics exporter.
func (c *channel) counters() ChannelCounters {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := ChannelCounters{Name: c.name, FramesIn: c.frames, FramesDropped: c.dropped,
		FramesOut: c.departedOut, FramesSkipped: c.departedSkipped, BytesOut: c.departedBytes}
	cc.Renditions = c.renditionCountersLocked()
	cc.SourceState, _ = c.sourceLocked(time.Now())
	for m := range c.subs {
		cc.FramesOut += m.delivered.Load()
		cc.FramesSkipped += m.overwritten()
		cc.BytesOut += m.bytes.Load()
		switch m.kind {
		case readerWS:
			cc.SubscribersWS++
		case readerMJPEG:
			cc.SubscribersMJPEG++
		}
	}
	return cc
}

// drop counts a frame not relayed because its publisher is over the rate cap.
func (c *channel) drop() {
	c.mu.Lock()
	c.dropped++
	c.mu.Unlock()
}

// addSub registers m, a reader of what w asks for (the zero value: the
// main picture), and hands it the newest frame of that at once, if any.
func (c *channel) addSub(m *mailbox, w protocol.RenditionWant) {
	c.mu.Lock()
	if _, again := c.subs[m]; again {
		c.mu.Unlock()
		return
	}
	if !isMainWant(w) {
		c.ensureRenditionsLocked() // before m joins: it is no reader of the main picture
	}
	if m.kind == readerWS {
		c.wsSubs++
	}
	c.subs[m] = struct{}{}
	c.addReaderLocked(m, w)
	c.viewersChangedLocked()
	c.mu.Unlock()
}

// viewersNotifier is a publisher that wants to know how many read its
// channel (a WebSocket publisher does; an upload has no way back).
type viewersNotifier interface {
	viewers(n int)
}

// viewersChangedLocked tells the publisher the channel's reader count.
// It does not block: the publisher sends the notice from its own
// goroutine.
func (c *channel) viewersChangedLocked() {
	if n, ok := c.pub.(viewersNotifier); ok {
		n.viewers(len(c.subs) + c.remote)
	}
}

// idleOnDemand reports whether the channel's publisher captures on demand
// and nobody reads the channel now.
func (c *channel) idleOnDemand() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	od, ok := c.pub.(interface{ isOnDemand() bool })
	return ok && od.isOnDemand() && len(c.subs)+c.remote == 0
}

// viewerCount returns the channel's readers, other hubs included.
func (c *channel) viewerCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs) + c.remote
}

// setRemoteInterest records how many other hubs want the channel.
func (c *channel) setRemoteInterest(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.remote != n {
		c.remote = n
		c.viewersChangedLocked()
	}
}

// removeSub unregisters m and keeps its skip count in the channel's total.
func (c *channel) removeSub(m *mailbox) {
	c.mu.Lock()
	if _, ok := c.subs[m]; ok {
		c.removeReaderLocked(m)
		delete(c.subs, m)
		if m.kind == readerWS {
			c.wsSubs--
		}
		c.departedSkipped += m.overwritten()
		c.departedOut += m.delivered.Load()
		c.departedBytes += m.bytes.Load()
		c.viewersChangedLocked()
	}
	c.mu.Unlock()
}

// setPublisher makes p the publisher and returns the one it replaces.
func (c *channel) setPublisher(p publisherConn) (old publisherConn) {
	c.mu.Lock()
	old, c.pub = c.pub, p
	c.viewersChangedLocked()
	c.mu.Unlock()
	return old
}

// clearPublisher removes p if it is still the publisher (a publisher that
// was replaced must not unset its successor).
func (c *channel) clearPublisher(p publisherConn) (was bool) {
	c.mu.Lock()
	if was = c.pub == p; was {
		c.pub = nil
	}
	c.mu.Unlock()
	return was
}

// newest returns the newest frame, or nil.
func (c *channel) newest() *frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest
}

// info reports the channel's state and whether it should be listed: it has
// a publisher, or a frame younger than ttl.
func (c *channel) info(now time.Time, ttl time.Duration) (protocol.ChannelInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := protocol.ChannelInfo{
		Name: c.name, Live: c.pub != nil, FPS: round2(c.fps), BitrateBPS: round2(c.bitrate),
		Subscribers: len(c.subs), Frames: c.frames, Bytes: c.bytes, Skipped: c.departedSkipped,
		Dropped: c.dropped, LastFrameAgeMS: -1,
	}
	in.SourceState, in.SourceError = c.sourceLocked(now)
	if od, ok := c.pub.(interface{ isOnDemand() bool }); ok && od.isOnDemand() {
		in.OnDemand = true
		in.Idle = len(c.subs)+c.remote == 0
	}
	for m := range c.subs {
		in.Skipped += m.overwritten()
	}
	recent := false
	if f := c.latest; f != nil {
		in.Width, in.Height, in.Codec, in.Seq = f.hdr.Width, f.hdr.Height, f.hdr.Codec.String(), f.hdr.Seq
		age := now.Sub(f.received)
		in.LastFrameAgeMS = round2(float64(age) / float64(time.Millisecond))
		recent = age < ttl
	}
	in.Renditions = c.renditionInfosLocked(now)
	return in, c.pub != nil || recent
}

// tick updates fps and bitrate from the counters.
func (c *channel) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dt := now.Sub(c.rateAt).Seconds()
	if dt <= 0 {
		return
	}
	c.fps = float64(c.frames-c.rateFrames) / dt
	c.bitrate = 8 * float64(c.bytes-c.rateBytes) / dt
	c.rateAt, c.rateFrames, c.rateBytes = now, c.frames, c.bytes
	c.tickRenditionsLocked(now)
}

// forgetStale lets go of the channel's frames when they are older than
// ttl and it has no publisher, so that a channel kept only by waiting
// subscribers is not listed with them, and returns them for the caller to
// retire (none: nil).
func (c *channel) forgetStale(now time.Time, ttl time.Duration) (latest, prev *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub != nil || c.latest == nil || now.Sub(c.latest.received) < ttl {
		return nil, nil
	}
	return c.takeFramesLocked()
}

// takeFrames lets go of both held frames and returns them for the caller
// to retire.
func (c *channel) takeFrames() (latest, prev *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takeFramesLocked()
}

func (c *channel) takeFramesLocked() (latest, prev *frame) {
	latest, prev = c.latest, c.prev
	c.latest, c.prev = nil, nil
	c.mainGoneLocked()
	return latest, prev
}

// hasFrame reports whether the channel holds a frame.
func (c *channel) hasFrame() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest != nil
}

// idle reports whether nothing but the table holds the channel: no
// subscriber and no frame. Claims are the table's to check.
func (c *channel) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest == nil && len(c.subs) == 0
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
