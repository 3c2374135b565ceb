package hub

import (
	"sync"
	"time"
)

// channel is one camera's stream: its current publisher, its newest frame
// and its subscribers. All fields after name are guarded by mu.
type channel struct {
	name string // static after construction

	mu     sync.Mutex
	pub    *wsConn               // current publisher, or nil
	latest *frame                // newest frame, or nil
	subs   map[*mailbox]struct{} // WebSocket and MJPEG readers

	frames, bytes   uint64    // published since the channel was created
	departedSkipped uint64    // overwritten frames of subscribers that have left
	rateAt          time.Time // when fps and bitrate were last computed
	rateFrames      uint64    // frames at rateAt
	rateBytes       uint64
	fps, bitrate    float64
}

func newChannel(name string, now time.Time) *channel {
	return &channel{name: name, subs: make(map[*mailbox]struct{}), rateAt: now}
}

// publish makes f the newest frame and offers it to every subscriber. It
// never waits for a subscriber: each offer is an atomic swap and a
// non-blocking wake-up, and allocates nothing.
func (c *channel) publish(f *frame) {
	c.mu.Lock()
	c.latest = f
	c.frames++
	c.bytes += uint64(len(f.msg))
	for m := range c.subs {
		m.put(f)
	}
	c.mu.Unlock()
}

// addSub registers m and hands it the newest frame at once, if any.
func (c *channel) addSub(m *mailbox) {
	c.mu.Lock()
	c.subs[m] = struct{}{}
	if c.latest != nil {
		m.put(c.latest)
	}
	c.mu.Unlock()
}

// removeSub unregisters m and keeps its skip count in the channel's total.
func (c *channel) removeSub(m *mailbox) {
	c.mu.Lock()
	if _, ok := c.subs[m]; ok {
		delete(c.subs, m)
		c.departedSkipped += m.overwritten.Load()
	}
	c.mu.Unlock()
}

// setPublisher makes p the publisher and returns the one it replaces.
func (c *channel) setPublisher(p *wsConn) (old *wsConn) {
	c.mu.Lock()
	old, c.pub = c.pub, p
	c.mu.Unlock()
	return old
}

// clearPublisher removes p if it is still the publisher (a publisher that
// was replaced must not unset its successor).
func (c *channel) clearPublisher(p *wsConn) {
	c.mu.Lock()
	if c.pub == p {
		c.pub = nil
	}
	c.mu.Unlock()
}

// newest returns the newest frame, or nil.
func (c *channel) newest() *frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest
}

// ChannelInfo describes a channel in GET /api/channels.
type ChannelInfo struct {
	Name           string  `json:"name"`
	Live           bool    `json:"live"` // a publisher is connected
	Width          uint32  `json:"width"`
	Height         uint32  `json:"height"`
	Codec          string  `json:"codec"`
	FPS            float64 `json:"fps"`
	BitrateBPS     float64 `json:"bitrate_bps"`
	Subscribers    int     `json:"subscribers"`
	Frames         uint64  `json:"frames"`
	Bytes          uint64  `json:"bytes"`
	Skipped        uint64  `json:"skipped"` // frames overwritten in subscribers' mailboxes
	Seq            uint64  `json:"seq"`
	LastFrameAgeMS float64 `json:"last_frame_age_ms"` // since the hub received the newest frame; -1 if none
}

// info reports the channel's state and whether it should be listed: it has
// a publisher, or a frame younger than ttl.
func (c *channel) info(now time.Time, ttl time.Duration) (ChannelInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := ChannelInfo{
		Name: c.name, Live: c.pub != nil, FPS: round2(c.fps), BitrateBPS: round2(c.bitrate),
		Subscribers: len(c.subs), Frames: c.frames, Bytes: c.bytes, Skipped: c.departedSkipped,
		LastFrameAgeMS: -1,
	}
	for m := range c.subs {
		in.Skipped += m.overwritten.Load()
	}
	recent := false
	if f := c.latest; f != nil {
		in.Width, in.Height, in.Codec, in.Seq = f.hdr.Width, f.hdr.Height, f.hdr.Codec.String(), f.hdr.Seq
		age := now.Sub(f.received)
		in.LastFrameAgeMS = round2(float64(age) / float64(time.Millisecond))
		recent = age < ttl
	}
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
}

// expired reports whether the channel can be forgotten: no publisher, no
// subscribers, and no frame younger than ttl. It also drops a stale frame
// so that a channel kept only by waiting subscribers is not listed with it.
func (c *channel) expired(now time.Time, ttl time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub != nil {
		return false
	}
	if c.latest != nil && now.Sub(c.latest.received) >= ttl {
		c.latest = nil
	}
	return c.latest == nil && len(c.subs) == 0
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
