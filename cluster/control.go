package cluster

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"framehub/hub"
	"framehub/protocol"
)

// NATS header names.
const (
	hdrChannel = "Framehub-Channel"
	hdrHub     = "Framehub-Hub"
	hdrGen     = "Framehub-Gen"
	hdrFrame   = "Framehub-Frame"
	hdrPart    = "Framehub-Part"
	hdrParts   = "Framehub-Parts"
	hdrSize    = "Framehub-Size"
	hdrWant    = "Framehub-Want"
)

// Want kinds (Framehub-Want).
const (
	wantJoin  = "join"
	wantKeep  = "keep"
	wantLeave = "leave"
)

// claimState is a channel a local publisher holds: its announcement and
// the hubs that want its frames.
type claimState struct {
	a        hub.Announcement
	sub      *nats.Subscription   // on P.want.C; set by the control loop
	wanters  map[string]time.Time // hub ID → wanted until
	announce bool                 // announce at once
}

// wanted reports whether some hub wants the channel now.
func (c *claimState) wanted(now time.Time) bool {
	for _, until := range c.wanters {
		if now.Before(until) {
			return true
		}
	}
	return false
}

// wireAnnouncement is the JSON of an announcement on P.dir.C.
type wireAnnouncement struct {
	Hub       string               `json:"hub"`  // ID
	Name      string               `json:"name"` // for listings
	Gen       uint64               `json:"gen"`
	Live      bool                 `json:"live"`
	RefreshMS int64                `json:"refresh_ms"` // the sender announces this often
	Info      protocol.ChannelInfo `json:"info"`
}

// Watch starts receiving a channel: the control loop subscribes to its
// frames and asks the hub holding it for them.
func (b *Bus) Watch(channel string) {
	b.mu.Lock()
	if b.closed || b.feeds[channel] != nil {
		b.mu.Unlock()
		return
	}
	b.feeds[channel] = newFeed(b, channel)
	b.mu.Unlock()
	b.wake()
}

// Unwatch stops receiving a channel.
func (b *Bus) Unwatch(channel string) {
	b.mu.Lock()
	if f := b.feeds[channel]; f != nil {
		delete(b.feeds, channel)
		b.retired = append(b.retired, f)
	}
	b.mu.Unlock()
	b.wake()
}

// Claim announces that a local publisher holds a channel, at once.
func (b *Bus) Claim(a hub.Announcement) {
	b.mu.Lock()
	cl := b.claims[a.Channel]
	if cl == nil {
		cl = &claimState{wanters: make(map[string]time.Time)}
		b.claims[a.Channel] = cl
	}
	// A newer local publisher keeps the wanters of the one it replaced.
	cl.a, cl.announce = a, true
	b.mu.Unlock()
	b.wake()
}

// Release announces that a local publisher has left its channel.
func (b *Bus) Release(a hub.Announcement) {
	b.mu.Lock()
	if cl := b.claims[a.Channel]; cl != nil && cl.a.Claim == a.Claim {
		delete(b.claims, a.Channel)
		cl.a.Live = false
		b.released = append(b.released, cl)
	}
	b.mu.Unlock()
	b.wake()
}

// control runs the bus's housekeeping: subscriptions as interest and
// claims change, announcements and wants now and every interval, expiry
// of wants and of frames half reassembled. It is the only goroutine that
// subscribes and unsubscribes. It stops when Close closes b.stop.
func (b *Bus) control() {
	t := time.NewTicker(b.cfg.AnnounceInterval)
	defer t.Stop()
	for {
		tick := false
		select {
		case <-b.stop:
			return
		case <-b.kick:
		case <-t.C:
			tick = true
		}
		b.reconcile(tick)
	}
}

// reconcile brings subscriptions in line with what the hub asked for and
// sends what is due. It decides under b.mu and talks to NATS without it,
// so that a hub calling Watch or Publish never waits on the network.
func (b *Bus) reconcile(tick bool) {
	now := time.Now()
	b.mu.Lock()
	resync := b.resync
	b.resync = false
	retired, released := b.retired, b.released
	b.retired, b.released = nil, nil
	var newFeeds []*feed
	var keep []string
	for ch, f := range b.feeds {
		switch {
		case f.sub == nil:
			newFeeds = append(newFeeds, f)
		case resync:
			b.joinNow = appendOnce(b.joinNow, ch)
		case tick:
			keep = append(keep, ch)
		}
	}
	joins := b.joinNow
	b.joinNow = nil
	var newClaims []*claimState
	var announce []hub.Announcement
	interest := map[string]int{} // channels whose wanters expired
	for ch, cl := range b.claims {
		if cl.sub == nil {
			newClaims = append(newClaims, cl)
		}
		if cl.announce && !tick && !resync {
			announce = append(announce, cl.a)
		}
		cl.announce = false
		if tick {
			before := len(cl.wanters)
			for id, until := range cl.wanters {
				if !now.Before(until) {
					delete(cl.wanters, id)
				}
			}
			if len(cl.wanters) != before {
				interest[ch] = len(cl.wanters)
			}
		}
	}
	b.mu.Unlock()
	for ch, n := range interest {
		b.node.RemoteInterest(ch, n)
	}

	for _, f := range retired {
		if f.sub != nil {
			b.noteDropped(f.sub) // before Unsubscribe, after which Dropped is an error
			_ = f.sub.Unsubscribe()
		}
		f.close(b.node)
		b.want(f.channel, wantLeave)
	}
	for _, cl := range released {
		if cl.sub != nil {
			_ = cl.sub.Unsubscribe()
		}
		b.announce(cl.a)
	}
	for _, cl := range newClaims {
		b.subscribeWants(cl)
	}
	for _, f := range newFeeds {
		b.subscribeFeed(f)
	}
	for _, a := range announce {
		b.announce(a)
	}
	if tick || resync {
		for _, a := range b.node.Local() {
			b.announce(a)
		}
	}
	for _, ch := range joins {
		b.want(ch, wantJoin)
	}
	for _, ch := range keep {
		b.want(ch, wantKeep)
	}
	if tick {
		b.mu.Lock()
		feeds := make([]*feed, 0, len(b.feeds))
		for _, f := range b.feeds {
			feeds = append(feeds, f)
		}
		b.mu.Unlock()
		for _, f := range feeds {
			f.expire(b.node, now)
		}
		b.inbox.mu.Lock()
		b.inbox.parts.expire(b.node, now)
		b.inbox.mu.Unlock()
	}
}

// subscribeFeed subscribes to a channel's frames and asks for them.
func (b *Bus) subscribeFeed(f *feed) {
	sub, err := b.nc.Subscribe(b.subj.frame(f.channel), f.onMsg)
	if err != nil {
		b.log.Warn("nats subscribe failed", "channel", f.channel, "error", err.Error())
		return
	}
	b.setPendingLimits(sub)
	b.mu.Lock()
	current := b.feeds[f.channel] == f
	if current {
		f.sub = sub
	}
	b.mu.Unlock()
	if !current { // unwatched meanwhile
		_ = sub.Unsubscribe()
		return
	}
	b.want(f.channel, wantJoin)
}

// subscribeWants subscribes a claim to the wants of its channel.
func (b *Bus) subscribeWants(cl *claimState) {
	b.mu.Lock()
	ch := cl.a.Channel
	b.mu.Unlock()
	sub, err := b.nc.Subscribe(b.subj.want(ch), func(m *nats.Msg) { b.onWant(cl, ch, m) })
	if err != nil {
		b.log.Warn("nats subscribe failed", "channel", ch, "error", err.Error())
		return
	}
	b.mu.Lock()
	current := b.claims[ch] == cl
	if current {
		cl.sub = sub
	}
	b.mu.Unlock()
	if !current {
		_ = sub.Unsubscribe()
	}
}

// want sends a want of the given kind for a channel; a join carries this
// hub's inbox as its reply subject.
func (b *Bus) want(ch, kind string) {
	if !b.nc.IsConnected() {
		return
	}
	m := nats.NewMsg(b.subj.want(ch))
	m.Header.Set(hdrHub, b.id)
	m.Header.Set(hdrWant, kind)
	if kind == wantJoin {
		m.Reply = b.subj.inbox(b.id)
	}
	_ = b.nc.PublishMsg(m)
}

// announce sends an announcement.
func (b *Bus) announce(a hub.Announcement) {
	if !b.nc.IsConnected() {
		return
	}
	data, err := json.Marshal(wireAnnouncement{Hub: a.Claim.Hub, Name: b.cfg.Name, Gen: a.Claim.Gen, Live: a.Live,
		RefreshMS: b.cfg.AnnounceInterval.Milliseconds(), Info: a.Info})
	if err != nil {
		return
	}
	_ = b.nc.Publish(b.subj.dir(a.Channel), data)
}

// onWant handles a want for a channel a local publisher holds: it records
// the asking hub, and answers a join with the channel's newest frame.
func (b *Bus) onWant(cl *claimState, ch string, m *nats.Msg) {
	if !b.enter() {
		return
	}
	defer b.exit()
	id, kind := m.Header.Get(hdrHub), m.Header.Get(hdrWant)
	if !idRe.MatchString(id) || id == b.id || (kind != wantJoin && kind != wantKeep && kind != wantLeave) {
		b.node.Refused(ch, hub.BusBadEnvelope, "want with hub "+strconv.Quote(trunc(id, 64))+" and kind "+strconv.Quote(trunc(kind, 16)))
		return
	}
	now := time.Now()
	b.mu.Lock()
	if b.claims[ch] != cl {
		b.mu.Unlock()
		return
	}
	before := len(cl.wanters)
	recorded := false
	if kind == wantLeave {
		delete(cl.wanters, id)
	} else if _, known := cl.wanters[id]; known || len(cl.wanters) < maxWanters {
		cl.wanters[id] = now.Add(3 * b.cfg.AnnounceInterval)
		recorded = true
	}
	claim, after := cl.a.Claim, len(cl.wanters)
	b.mu.Unlock()
	if after != before {
		b.node.RemoteInterest(ch, after)
	}
	// A join is answered with a whole frame, so only to the asking hub's
	// own inbox and only for a hub this channel keeps track of: a join
	// naming any other reply subject (or one past maxWanters) would let
	// one small message per subject queue a frame each.
	if kind != wantJoin || !recorded || m.Reply != b.subj.inbox(id) {
		return
	}
	if c, msg, ok := b.node.Latest(ch); ok && c == claim {
		b.queue(&outItem{subject: m.Reply, channel: ch, rendition: protocol.PeekRendition(msg), claim: c, msg: msg})
	}
}

// maxWanters bounds the hubs one channel keeps track of.
const maxWanters = 1024

// onAnnounce handles an announcement from another hub.
func (b *Bus) onAnnounce(m *nats.Msg) {
	if !b.enter() {
		return
	}
	defer b.exit()
	ch := m.Subject[len(b.subj.dir("")):]
	var w wireAnnouncement
	switch {
	case !protocol.ValidChannelName(ch):
		b.node.Refused(ch, hub.BusBadAnnouncement, "bad channel name in subject")
		return
	case len(m.Data) > maxAnnouncement:
		b.node.Refused(ch, hub.BusBadAnnouncement, strconv.Itoa(len(m.Data))+" bytes")
		return
	}
	if err := json.Unmarshal(m.Data, &w); err != nil {
		b.node.Refused(ch, hub.BusBadAnnouncement, err.Error())
		return
	}
	if w.Hub == b.id {
		return
	}
	if !idRe.MatchString(w.Hub) || w.Gen == 0 || len(w.Name) > 256 {
		b.node.Refused(ch, hub.BusBadAnnouncement, "bad hub, name or generation")
		return
	}
	refresh := min(max(time.Duration(w.RefreshMS)*time.Millisecond, 100*time.Millisecond), 10*time.Second)
	a := hub.Announcement{Channel: ch, Claim: hub.Claim{Hub: w.Hub, Gen: w.Gen}, HubName: w.Name, Live: w.Live,
		Info: w.Info, Expires: time.Now().Add(3 * refresh)}
	a.Info.Name = ch
	b.node.Announced(a)
	if !a.Live {
		return
	}
	// A new publisher of a channel this hub reads: ask it for frames now
	// rather than at the next keep.
	// (A frame from the claim, such as the answer to the join sent on
	// subscribing, has already made it known.)
	b.mu.Lock()
	f := b.feeds[ch]
	ask := false
	if f != nil && f.sub != nil {
		f.mu.Lock()
		ask = f.seen != a.Claim
		f.seen = a.Claim
		f.mu.Unlock()
	}
	if ask {
		b.joinNow = appendOnce(b.joinNow, ch)
	}
	b.mu.Unlock()
	if ask {
		b.wake()
	}
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// appendOnce appends ch to list unless it is there already: each watched
// channel needs one join, however many announcements asked for it.
func appendOnce(list []string, ch string) []string {
	if slices.Contains(list, ch) {
		return list
	}
	return append(list, ch)
}
