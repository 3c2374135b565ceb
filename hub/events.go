package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"framehub/internal/ratelimit"
	"framehub/protocol"
)

// Events. A processing worker writes the events going on into the metadata
// of the frames it publishes (protocol.ParseEvents); the hub reads them
// from every frame it accepts and keeps the recent ones per channel: for
// GET /api/events, for a Server-Sent Event stream, for the page, and for
// the webhooks and the cluster bus, which it tells of each start and end.
// It keeps each event's best frame (the one its metadata flags best) as
// its snapshot, charged to the memory budget.
//
// Events are as trusted as the publisher of their channel, who writes
// them: the hub checks their form (ParseEvents: at most MaxEvents a
// frame), keys them by channel and id (a publisher cannot touch another
// channel's events), limits how many a channel may start a second
// (eventRate, eventBurst; the rest are refused and counted), and bounds
// everything it keeps: events per channel and in all, snapshots by count
// and bytes, and each stream reader's queue. None of it ever makes a frame
// wait: a frame's events are read, and its notices queued, on the
// publisher's goroutine, without blocking; the book's lock is held for the
// book's own work only: the notices reach the stream readers (each
// filtering by channel and view right) from one fan-out goroutine
// (fanOut), so the cost of many readers falls on it, never on a
// publisher, and a flood of notices overflows its bounded outbox (the
// readers told, as when their own queue overflows) instead of holding up
// frames.

// Event book limits.
const (
	// eventRate and eventBurst: a channel may start eventRate new events a
	// second, eventBurst at once; more are refused and counted.
	eventRate  = 2.0
	eventBurst = 20.0
	// maxEventsPerChannel and maxEventsKept bound the events kept (going
	// on and ended), per channel and in all; the oldest ended go first,
	// and when all are going on, the channel holding the most gives way.
	maxEventsPerChannel = 64
	maxEventsKept       = 4096
	// forgetAfter is how long after its last frame with events a channel
	// the book holds no event of is forgotten: by then its rate is whole
	// again (eventBurst at eventRate), so forgetting it changes nothing.
	forgetAfter = time.Duration(eventBurst / eventRate * float64(time.Second))
	// maxRefusedIDs bounds the ids a channel's rate limit remembers
	// having refused, so a refused event is counted once, not per frame.
	maxRefusedIDs = 256
	// maxSnapshots bounds the best frames kept; their bytes are bounded by
	// a share of the memory budget (snapshotShare) as well as charged to it.
	maxSnapshots  = 256
	snapshotShare = 8
	// streamQueue bounds the notices waiting for one stream reader: past
	// it the oldest is dropped (counted), and the reader is told.
	streamQueue = 256
	// maxOutbox bounds the notices waiting for the fan-out goroutine: past
	// it the oldest is dropped and every reader told.
	maxOutbox = 4096
	// maxEventStreams bounds the stream readers of a hub.
	maxEventStreams = 1024
	// maxSnapshotBytes bounds the snapshots' bytes when the memory budget
	// does not bound them lower (a share of it, snapshotShare).
	maxSnapshotBytes = 64 << 20
	// snapshotEvery bounds how often an event's snapshot is replaced, and
	// updateEvery how often an update notice goes out (a change in between
	// goes out with the next notice, or the janitor's next round): a
	// publisher flagging every frame best costs a few copies and one notice
	// a second per event, not one of each per frame.
	snapshotEvery = 250 * time.Millisecond
	updateEvery   = time.Second
	// eventsStaleAfter ends the events going on of a channel that has sent
	// no frame for this long (a publisher on another hub that went away, a
	// worker that stalled): nothing says they go on.
	eventsStaleAfter = 10 * time.Second
	// streamKeepAlive is how often an idle stream gets a comment, so that
	// proxies and the reader know it is alive.
	streamKeepAlive = 15 * time.Second
)

// eventBus is what a bus that carries events offers (package cluster's
// does): the hub publishes a local channel's event notices on it. It must
// not block.
type eventBus interface {
	PublishEvent(channel string, notice []byte)
}

// eventBook keeps the events. Safe for concurrent use. Its goroutines
// (the fan-out to the stream readers, and the webhook sender with
// webhooks) run from start to close.
type eventBook struct {
	// Static after construction.
	h       *Hub
	hooks   *webhooks // nil without webhooks
	bus     eventBus  // nil without a bus that carries events
	hub     string    // this hub's name on the bus, or ""
	snapMax int64     // bytes of snapshots kept at most
	stop    context.CancelFunc
	wg      sync.WaitGroup

	// active counts the events going on, and activeIn holds the names of
	// the channels with one going on (both changed under mu), so that a
	// frame without events of a channel with none going on costs no lock,
	// however busy the book is with other channels'.
	active   atomic.Int64
	activeIn sync.Map // channel name → struct{}

	mu       sync.Mutex
	channels map[string]*channelEvents
	kept     int
	snaps    int
	snapB    int64
	// lastStamp is the last Updated given (Unix milliseconds): stamp.
	lastStamp int64
	streams   map[*eventStream]struct{}
	st        protocol.EventStats
	// ended holds the ended events kept, in the order they ended (so by
	// Updated, which an ended event never changes again), and removed
	// ones not yet let go of: evicting the oldest ended event, or its
	// snapshot, takes no look through the whole book.
	ended []*keptEvent
	// outbox holds the notices for the stream readers, oldest first, until
	// fanOut takes them; outLost counts those dropped from it since.
	outbox  []outNotice
	outLost uint64
	outSeq  uint64        // the last notice's number (they count up from 1)
	outWake chan struct{} // capacity 1
}

// outNotice is a notice on its way to the stream readers: an sseMessage,
// shared by all of them and never written to.
type outNotice struct {
	channel string
	msg     []byte
	seq     uint64 // a reader gets only the notices made after it joined
}

// channelEvents is one channel's events, oldest first.
type channelEvents struct {
	events    []*keptEvent
	byID      map[string]*keptEvent
	rate      ratelimit.Bucket // new events
	refused   map[string]struct{}
	lastFrame time.Time // when a frame of it with events, or while one went on, last came (hub clock)
	active    int       // its events going on
}

// keptEvent is an event the hub keeps.
type keptEvent struct {
	info      protocol.EventInfo
	end       float64   // info.End's value
	lastSeen  float64   // capture time (Unix seconds) of the last frame that listed it
	snap      []byte    // its best frame's JPEG, charged to the budget
	snapAt    time.Time // when a snapshot was last taken or refused
	snapN     int       // how many it has had: the version in its path
	noticeAt  time.Time // when a notice of it last went out
	pending   bool      // changed since that notice
	fromLocal bool      // its frames came from a local publisher
	removed   bool      // no longer kept (book.ended drops it lazily)
}

// newEventBook returns the hub's book: with webhooks when cfg.Webhook has
// a URL (checked by WebhookConfig.Check), and publishing on the bus when
// it carries events.
func newEventBook(h *Hub) *eventBook {
	b := &eventBook{h: h, snapMax: maxSnapshotBytes, channels: map[string]*channelEvents{}, streams: map[*eventStream]struct{}{},
		outWake: make(chan struct{}, 1)}
	if m := h.cfg.MaxMemory; m > 0 {
		b.snapMax = min(b.snapMax, m/snapshotShare)
	}
	if h.cfg.Webhook.enabled() {
		if cfg, err := h.cfg.Webhook.Check(); err != nil {
			h.log.Error("webhooks off", "error", err.Error())
		} else {
			b.hooks = newWebhooks(cfg, h.logs)
		}
	}
	if bus, ok := h.cfg.Bus.(eventBus); ok {
		b.bus = bus
		_, b.hub = h.cfg.Bus.Self()
	}
	return b
}

// start starts the fan-out to the stream readers and the webhook sender,
// if any.
func (b *eventBook) start() {
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.fanOut(ctx)
	}()
	if b.hooks == nil {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.hooks.run(ctx)
	}()
}

// close stops the book's goroutines (notices not yet delivered are
// dropped) and gives back the snapshots' memory.
func (b *eventBook) close() {
	if b.stop != nil {
		b.stop()
		b.wg.Wait()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ce := range b.channels {
		for _, ke := range ce.events {
			b.dropSnapshot(ke)
		}
	}
}

// sweep sends the update notices held back by updateEvery, ends the
// events going on of channels that have sent no frame for
// eventsStaleAfter, and forgets the channels it holds nothing of after
// forgetAfter (so channels that come and go leave nothing behind). The
// janitor calls it once a second.
func (b *eventBook) sweep(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, ce := range b.channels {
		if len(ce.events) == 0 && now.Sub(ce.lastFrame) > forgetAfter {
			delete(b.channels, name)
			continue
		}
		if b.active.Load() == 0 {
			continue
		}
		if now.Sub(ce.lastFrame) > eventsStaleAfter {
			b.endMissing(name, ce, nil, now, protocol.EndPublisherLeft)
			continue
		}
		for _, ke := range ce.events {
			if ke.end == 0 && ke.pending && now.Sub(ke.noticeAt) >= updateEvery {
				b.notify(ke, protocol.EventUpdate, now)
			}
		}
	}
}

// observe reads the events of a frame the hub has accepted on channel
// (local: from a publisher of this hub, not from the bus) and updates the
// book. It never blocks.
func (b *eventBook) observe(channel string, f *frame, local bool) {
	if !protocol.HasEvents(f.meta) {
		if b.active.Load() == 0 {
			return
		}
		if _, ok := b.activeIn.Load(channel); !ok {
			return // nothing of it to end
		}
		b.mu.Lock()
		if ce := b.channels[channel]; ce != nil {
			ce.lastFrame = time.Now()
			b.endMissing(channel, ce, nil, ce.lastFrame, protocol.EndGone)
		}
		b.mu.Unlock()
		return
	}
	events, problem := protocol.ParseEvents(f.meta)
	now := time.Now()
	var snap []byte
	for _, e := range events {
		if e.Best && e.Active() && b.wantsSnapshot(channel, e.ID, now) {
			snap = b.snapshotOf(f) // copied before the lock is taken
			break
		}
	}
	at := float64(f.hdr.CaptureTime) / 1e9
	b.mu.Lock()
	defer b.mu.Unlock()
	if problem != nil {
		b.st.BadMeta++
		b.h.logs.Log(slog.LevelWarn, "events:bad:"+channel, "frame events partly left out",
			slog.String("channel", channel), slog.String("reason", problem.First), slog.Int("left_out", problem.Dropped))
	}
	ce := b.channels[channel]
	if ce == nil {
		if len(events) == 0 {
			return
		}
		ce = &channelEvents{byID: map[string]*keptEvent{}, rate: ratelimit.NewBucket(eventRate, eventBurst), refused: map[string]struct{}{}}
		b.channels[channel] = ce
	}
	ce.lastFrame = now
	listed := make(map[string]bool, len(events))
	for _, e := range events {
		listed[e.ID] = true
		ke := ce.byID[e.ID]
		started := false
		if ke == nil {
			if ke = b.add(channel, ce, e, now, local); ke == nil {
				continue
			}
			started = true
		}
		if ke.end != 0 {
			continue // ended: a frame cannot bring it back
		}
		ke.lastSeen = at
		if e.Score > ke.info.Score {
			ke.info.Score, ke.pending = e.Score, true
		}
		if e.Best && snap != nil && now.Sub(ke.snapAt) >= snapshotEvery && b.keepSnapshot(ke, snap, now) {
			ke.pending = true
		}
		if started {
			b.notify(ke, protocol.EventStart, now)
		}
		switch {
		case !e.Active():
			b.end(channel, ke, e.End, protocol.EndEnded, now)
		case ke.pending && now.Sub(ke.noticeAt) >= updateEvery:
			b.notify(ke, protocol.EventUpdate, now)
		}
	}
	b.endMissing(channel, ce, listed, now, protocol.EndGone)
}

// add adds a new event of channel, unless the channel's rate refuses it.
// Called with mu held.
func (b *eventBook) add(channel string, ce *channelEvents, e protocol.Event, now time.Time, local bool) *keptEvent {
	if _, refused := ce.refused[e.ID]; refused {
		return nil
	}
	if !ce.rate.Allow(now) {
		if len(ce.refused) >= maxRefusedIDs {
			clear(ce.refused)
		}
		ce.refused[e.ID] = struct{}{}
		b.st.RateLimited++
		b.h.refuse(reasonEventRate, "", "a channel starts events faster than the hub allows",
			slog.String("channel", channel), slog.Float64("per_second", eventRate))
		return nil
	}
	ke := &keptEvent{fromLocal: local, info: protocol.EventInfo{ID: e.ID, Channel: channel, Label: e.Label, Zone: e.Zone,
		Start: e.Start, Score: e.Score, Updated: b.stamp()}}
	if local {
		ke.info.Hub = b.hub
	}
	// Room for it: in the channel, then in all, the oldest ended first.
	if len(ce.events) >= maxEventsPerChannel {
		b.evict(channel, ce, now)
	}
	for b.kept >= maxEventsKept && b.evictAnywhere(now) {
	}
	if b.kept >= maxEventsKept {
		b.evictFromLargest(now) // every event kept is going on
	}
	ce.events = append(ce.events, ke)
	ce.byID[e.ID] = ke
	b.kept++
	b.active.Add(1)
	if ce.active++; ce.active == 1 {
		b.activeIn.Store(channel, struct{}{})
	}
	b.st.Started++
	return ke
}

// evict removes a channel's oldest ended event, or ends and removes its
// oldest one. Called with mu held.
func (b *eventBook) evict(channel string, ce *channelEvents, now time.Time) {
	i := slices.IndexFunc(ce.events, func(k *keptEvent) bool { return k.end != 0 })
	if i < 0 {
		i = 0
		b.end(channel, ce.events[0], ce.events[0].lastSeen, protocol.EndEvicted, now)
	}
	b.remove(ce, i)
}

// evictAnywhere removes the oldest ended event of any channel (by when the
// hub last changed it); false if none has ended. Called with mu held.
func (b *eventBook) evictAnywhere(now time.Time) bool {
	for len(b.ended) > 0 && b.ended[0].removed {
		b.ended[0] = nil
		b.ended = b.ended[1:]
	}
	if len(b.ended) == 0 {
		return false
	}
	ke := b.ended[0]
	ce := b.channels[ke.info.Channel]
	b.remove(ce, slices.Index(ce.events, ke))
	return true
}

// evictFromLargest makes room when no event kept has ended: the channel
// holding the most events gives way (evict), so that the publisher
// filling the book pays for it before any other. Called with mu held.
func (b *eventBook) evictFromLargest(now time.Time) {
	var largest *channelEvents
	name := ""
	for n, ce := range b.channels {
		if largest == nil || len(ce.events) > len(largest.events) {
			largest, name = ce, n
		}
	}
	if largest != nil && len(largest.events) > 0 {
		b.evict(name, largest, now)
	}
}

func (b *eventBook) remove(ce *channelEvents, i int) {
	ke := ce.events[i]
	ce.events = slices.Delete(ce.events, i, i+1)
	delete(ce.byID, ke.info.ID)
	b.dropSnapshot(ke)
	b.kept--
	ke.removed = true
	if len(b.ended) > 2*b.kept+64 { // mostly removed ones: let them go
		b.ended = slices.DeleteFunc(b.ended, func(k *keptEvent) bool { return k.removed })
	}
}

// end ends an event. Called with mu held.
func (b *eventBook) end(channel string, ke *keptEvent, at float64, reason string, now time.Time) {
	if ke.end != 0 {
		return
	}
	ke.end = max(at, ke.info.Start)
	end := ke.end
	ke.info.End, ke.info.EndReason = &end, reason
	b.ended = append(b.ended, ke)
	b.active.Add(-1)
	if ce := b.channels[channel]; ce != nil {
		if ce.active--; ce.active == 0 {
			b.activeIn.Delete(channel)
		}
	}
	b.st.Ended++
	b.notify(ke, protocol.EventEnd, now)
}

// endMissing ends the events of a channel going on that listed (nil: none)
// does not hold: a frame that no longer lists an event says it has ended.
// Called with mu held.
func (b *eventBook) endMissing(channel string, ce *channelEvents, listed map[string]bool, now time.Time, reason string) {
	for _, ke := range ce.events {
		if ke.end == 0 && !listed[ke.info.ID] {
			b.end(channel, ke, ke.lastSeen, reason, now)
		}
	}
}

// publisherLeft ends the events going on of a channel whose publisher went
// away.
func (b *eventBook) publisherLeft(channel string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ce := b.channels[channel]; ce != nil {
		b.endMissing(channel, ce, nil, time.Now(), protocol.EndPublisherLeft)
	}
}

// wantsSnapshot reports whether a frame flagged best of event id would
// become its snapshot: it is new, or its last snapshot (or refused try)
// is older than snapshotEvery. observe decides again under the lock.
func (b *eventBook) wantsSnapshot(channel, id string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ce := b.channels[channel]
	if ce == nil {
		return true
	}
	ke := ce.byID[id]
	return ke == nil || (ke.end == 0 && now.Sub(ke.snapAt) >= snapshotEvery)
}

// snapshotOf returns a copy of a frame's JPEG for a snapshot, or nil (a
// raw frame JPEG cannot hold).
func (b *eventBook) snapshotOf(f *frame) []byte {
	jpg, _, err := f.jpegBytes()
	if err != nil {
		return nil
	}
	return bytes.Clone(jpg)
}

// keepSnapshot makes snap ke's snapshot if the count, the share of the
// budget and the budget allow; to keep within the first two, the
// snapshots of the events that ended longest ago give way (makeRoom). A
// refused try counts as one for snapshotEvery, so that an event going
// without costs a copy and a try four times a second, not every frame.
// Called with mu held.
func (b *eventBook) keepSnapshot(ke *keptEvent, snap []byte, now time.Time) bool {
	n := int64(len(snap))
	old := int64(len(ke.snap))
	full := func() bool { return (ke.snap == nil && b.snaps >= maxSnapshots) || b.snapB-old+n > b.snapMax }
	if full() && n <= b.snapMax {
		b.makeRoom(full)
	}
	if full() || !b.h.mem.reserve(n) {
		b.st.SnapshotsRefused++
		ke.snapAt = now
		return false
	}
	b.dropSnapshot(ke)
	ke.snap, ke.snapAt = snap, now
	ke.snapN++
	b.snaps++
	b.snapB += n
	// The version changes with the picture, so a reader may cache by path.
	ke.info.Snapshot = protocol.PathEventSnapshots + ke.info.Channel + "/" + ke.info.ID + "/snapshot.jpg?v=" + strconv.Itoa(ke.snapN)
	return true
}

// makeRoom drops the snapshots of ended events, the one that ended
// longest ago (by when the hub last changed it) first, until full says
// there is room or none is left: a store full of past events' pictures
// does not refuse every later event's. Called with mu held.
func (b *eventBook) makeRoom(full func() bool) {
	for _, ke := range b.ended {
		if !full() {
			return
		}
		if !ke.removed {
			b.dropSnapshot(ke)
		}
	}
}

// dropSnapshot releases ke's snapshot. Called with mu held.
func (b *eventBook) dropSnapshot(ke *keptEvent) {
	if ke.snap == nil {
		return
	}
	b.h.mem.release(int64(len(ke.snap)))
	b.snaps--
	b.snapB -= int64(len(ke.snap))
	ke.snap = nil
	ke.info.Snapshot = ""
}

// stamp returns the time of a change made now, for Updated: Unix seconds
// (hub clock) truncated to the millisecond, so never later than the
// change, and never earlier than the stamp of a change made before it
// (taken under mu: if the clock steps back, it holds at the last stamp).
// A reader that passes the largest Updated it has seen as ?since= (at or
// after) misses no change: every change it has not seen yet was made
// after, so is stamped at least that. Called with mu held.
func (b *eventBook) stamp() float64 {
	ms := max(time.Now().UnixMilli(), b.lastStamp)
	b.lastStamp = ms
	return float64(ms) / 1e3
}

// notify tells the stream readers, the webhooks and the bus of a change.
// Called with mu held; none of it blocks.
func (b *eventBook) notify(ke *keptEvent, kind string, now time.Time) {
	ke.info.Updated, ke.noticeAt, ke.pending = b.stamp(), now, false
	info := ke.info
	info.Type = kind
	body, err := json.Marshal(info)
	if err != nil {
		return // an EventInfo always marshals
	}
	if len(b.streams) > 0 {
		if len(b.outbox) >= maxOutbox {
			b.outbox[0] = outNotice{}
			b.outbox = b.outbox[1:]
			b.outLost++
		}
		b.outSeq++
		b.outbox = append(b.outbox, outNotice{ke.info.Channel, sseMessage(kind, body), b.outSeq}) // one for every reader
		select {
		case b.outWake <- struct{}{}:
		default:
		}
	}
	if kind == protocol.EventUpdate || !ke.fromLocal {
		return // the hub whose publisher carried it tells the outside
	}
	if b.hooks != nil {
		b.hooks.enqueue(ke.info.Channel+"/"+ke.info.ID+"/"+kind, kind, body)
	}
	if b.bus != nil {
		b.bus.PublishEvent(ke.info.Channel, body)
		b.st.BusPublished++
	}
}

// list returns the kept events that may pass, changed at or after since
// (hub seconds, compared with Updated: stamp), oldest change first.
func (b *eventBook) list(channel string, since float64, may func(string) bool) []protocol.EventInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []protocol.EventInfo{}
	for name, ce := range b.channels {
		if (channel != "" && name != channel) || !may(name) {
			continue
		}
		for _, ke := range ce.events {
			if ke.info.Updated >= since {
				out = append(out, ke.info)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b protocol.EventInfo) int {
		switch {
		case a.Updated < b.Updated:
			return -1
		case a.Updated > b.Updated:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// snapshot returns an event's best frame.
func (b *eventBook) snapshot(channel, id string) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ce := b.channels[channel]; ce != nil {
		if ke := ce.byID[id]; ke != nil {
			return ke.snap
		}
	}
	return nil
}

// fanOut hands the outbox's notices to the stream readers, in order,
// until ctx ends: the one goroutine that calls the readers' filters (their
// may funcs), so none of it holds the book's lock.
func (b *eventBook) fanOut(ctx context.Context) {
	var streams []*eventStream
	for {
		select {
		case <-b.outWake:
		case <-ctx.Done():
			return
		}
		b.mu.Lock()
		batch, lost := b.outbox, b.outLost
		b.outbox, b.outLost = nil, 0
		streams = streams[:0]
		for s := range b.streams {
			streams = append(streams, s)
		}
		b.mu.Unlock()
		for _, s := range streams {
			s.offer(batch, lost)
		}
		clear(streams) // keep no reader that leaves alive
	}
}

// stats returns the book's counts.
func (b *eventBook) stats() protocol.EventStats {
	b.mu.Lock()
	st := b.st
	st.Kept, st.Snapshots, st.SnapBytes, st.Streams = b.kept, b.snaps, b.snapB, len(b.streams)
	for _, ce := range b.channels {
		for _, ke := range ce.events {
			if ke.end == 0 {
				st.Active++
			}
		}
	}
	b.mu.Unlock()
	if b.hooks != nil {
		ws := b.hooks.stats()
		st.Webhook = &ws
	}
	return st
}

// eventStream is one Server-Sent Event reader: a bounded queue of notices
// and what it may see.
type eventStream struct {
	channel string            // "" for every channel it may view
	may     func(string) bool // whether it may view a channel now (liveViewFilter); called by fanOut only
	from    uint64            // the first notice it gets (outNotice.seq); set as it joins

	mu      sync.Mutex
	queue   [][]byte      // oldest first, each a whole SSE message
	dropped uint64        // since the reader was last told
	wake    chan struct{} // capacity 1
}

// sseMessage returns a notice as one Server-Sent Event.
func sseMessage(kind string, body []byte) []byte {
	msg := make([]byte, 0, len(body)+len(kind)+16)
	msg = append(msg, "event: "...)
	msg = append(msg, kind...)
	msg = append(msg, "\ndata: "...)
	msg = append(msg, body...)
	return append(msg, "\n\n"...)
}

// offer queues the notices of batch the reader may see, dropping the
// oldest when its queue is full, and counts lost notices (dropped before
// they reached the readers) as dropped for it. It never blocks. Only the
// fan-out goroutine calls it (may is not safe for concurrent use).
func (s *eventStream) offer(batch []outNotice, lost uint64) {
	s.mu.Lock()
	if len(batch) > 0 && batch[0].seq < s.from {
		lost = 0 // lost before it joined: nothing it missed
	}
	s.dropped += lost
	queued := lost > 0
	for _, n := range batch {
		if n.seq < s.from || (s.channel != "" && n.channel != s.channel) || !s.may(n.channel) {
			continue
		}
		if len(s.queue) >= streamQueue {
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.dropped++
		}
		s.queue = append(s.queue, n.msg)
		queued = true
	}
	s.mu.Unlock()
	if !queued {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns the notices waiting (with one saying how many were dropped
// first, if any), and empties the queue.
func (s *eventStream) take() ([]byte, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []byte
	dropped := s.dropped
	if dropped > 0 {
		out = append(out, "event: "+protocol.EventDropped+"\ndata: {\"dropped\":"+strconv.FormatUint(dropped, 10)+"}\n\n"...)
		s.dropped = 0
	}
	for i, m := range s.queue {
		out = append(out, m...)
		s.queue[i] = nil
	}
	s.queue = s.queue[:0]
	return out, dropped
}

// serveEvents answers GET /api/events: the kept events of the channels
// the request may view.
func (h *Hub) serveEvents(w http.ResponseWriter, r *http.Request) {
	channel, since, may, ok := h.eventRequest(w, r)
	if ok {
		writeJSON(w, h.book.list(channel, since, may))
	}
}

// eventRequest reads ?channel= and ?since= (400 for bad ones) and which
// channels the request may view (viewFilter).
func (h *Hub) eventRequest(w http.ResponseWriter, r *http.Request) (channel string, since float64, may func(string) bool, ok bool) {
	q := r.URL.Query()
	channel = q.Get(protocol.QueryChannel)
	if channel != "" && !protocol.ValidChannelName(channel) {
		h.refuseRequest(w, r, reasonBadQuery, "channel: use 1 to 64 letters, digits, '_' or '-'")
		return "", 0, nil, false
	}
	if s := q.Get(protocol.QuerySince); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			h.refuseRequest(w, r, reasonBadQuery, "since: want Unix seconds")
			return "", 0, nil, false
		}
		since = v
	}
	may, ok = h.viewFilter(w, r, channel)
	return channel, since, may, ok
}

// viewFilter returns which channels the request may view: with a channel
// named, that one or a refusal; without, a filter by its token's view
// right.
func (h *Hub) viewFilter(w http.ResponseWriter, r *http.Request, channel string) (func(string) bool, bool) {
	auth := h.access().auth
	if auth == nil || auth.open&RightView != 0 {
		return func(string) bool { return true }, true
	}
	p := auth.identify(r, true)
	if channel != "" {
		if !p.allows(auth.open, channel, RightView) {
			h.deny(w, r, p, channel, RightView)
			return nil, false
		}
		return func(string) bool { return true }, true
	}
	if !p.valid || p.rights&RightView == 0 {
		h.deny(w, r, p, "", RightView)
		return nil, false
	}
	open := auth.open
	return func(c string) bool { return p.allows(open, c, RightView) }, true
}

// liveViewFilter is viewFilter for a stream that outlives its request: it
// reports whether tok may view a channel by the access in force now, so
// that a reload that narrows the token narrows what the stream gets. The
// returned func is not safe for concurrent use: the book's fan-out
// goroutine alone calls it. It identifies tok once per access, not per
// call.
func (h *Hub) liveViewFilter(tok string) func(string) bool {
	var last *access
	var p principal
	return func(c string) bool {
		acc := h.access()
		if acc.auth == nil || acc.auth.open&RightView != 0 {
			return true
		}
		if acc != last {
			last, p = acc, acc.auth.identifyAt(tok, false)
		}
		return p.allows(acc.auth.open, c, RightView)
	}
}

// serveEventSnapshot answers GET /api/events/{channel}/{id}/snapshot.jpg.
func (h *Hub) serveEventSnapshot(w http.ResponseWriter, r *http.Request) {
	channel, id := r.PathValue("channel"), r.PathValue("id")
	if !protocol.ValidChannelName(channel) || !protocol.ValidEventID(id) {
		h.refuseRequest(w, r, reasonBadQuery, "invalid channel or event id")
		return
	}
	if !h.authorize(w, r, channel, RightView, true) {
		return
	}
	jpg := h.book.snapshot(channel, id)
	if jpg == nil {
		http.Error(w, "no snapshot of event "+id+" on channel "+channel, http.StatusNotFound)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "image/jpeg")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(len(jpg)))
	_, _ = w.Write(jpg)
}

// serveEventStream answers GET /api/events/stream: Server-Sent Events,
// each "event: start|update|end" with an EventInfo as data, "event:
// dropped" when the reader was too slow to get them all, and a comment
// every streamKeepAlive. A reader that does not take a message within the
// write timeout is dropped.
func (h *Hub) serveEventStream(w http.ResponseWriter, r *http.Request) {
	channel, _, _, ok := h.eventRequest(w, r)
	if !ok {
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // tell proxies not to hold it back
	if r.Method == http.MethodHead {
		return // its headers: a HEAD takes no reader's place (its writes would go nowhere, never evicted)
	}
	if !h.track(w, r) {
		return
	}
	defer h.handlers.Done()
	tok := requestToken(r, true)
	s := &eventStream{channel: channel, may: h.liveViewFilter(tok), wake: make(chan struct{}, 1)}
	b := h.book
	b.mu.Lock()
	full := len(b.streams) >= maxEventStreams
	if !full {
		b.streams[s] = struct{}{}
		s.from = b.outSeq + 1 // what changed before it joined is for /api/events
	}
	b.mu.Unlock()
	if full {
		h.refuseRequest(w, r, reasonTooManySubscribers, "too many event streams")
		return
	}
	defer func() {
		b.mu.Lock()
		delete(b.streams, s)
		b.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// A reload that takes the token's view right away ends the stream
	// (for a stream of every channel: on all of them); one that narrows
	// it narrows what the stream gets (s.may follows the reload).
	//
	// A write blocked on a reader that takes nothing ends when the hub
	// ends the stream (shutting down, or that reload), not at the write
	// timeout: its deadline moves to now. write looks at ended after
	// setting its own deadline, so neither hides the other.
	var ended atomic.Bool
	end := func() { ended.Store(true); cancel() }
	defer h.registerStream(&stream{channel: channel, token: tok, right: RightView, cancel: end})()
	rc := http.NewResponseController(w)
	go func() {
		select {
		case <-h.done:
			end()
		case <-ctx.Done():
		}
	}()
	defer context.AfterFunc(ctx, func() {
		if ended.Load() {
			_ = rc.SetWriteDeadline(time.Now())
		}
	})()
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
		if ended.Load() {
			return context.Canceled
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if write([]byte(": framehub events\n\n")) != nil {
		return
	}
	keep := time.NewTicker(streamKeepAlive)
	defer keep.Stop()
	for {
		var msg []byte
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-keep.C:
			msg = []byte(": keep-alive\n\n")
		case <-s.wake:
			var dropped uint64
			msg, dropped = s.take()
			if dropped > 0 {
				b.mu.Lock()
				b.st.StreamDropped += dropped
				b.mu.Unlock()
				h.logs.Log(slog.LevelWarn, "events:stream:slow", "event stream reader too slow: oldest notices dropped",
					slog.String("remote", r.RemoteAddr), slog.Uint64("dropped", dropped))
			}
		}
		if len(msg) == 0 {
			continue
		}
		if err := write(msg); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !ended.Load() {
				b.mu.Lock()
				b.st.StreamsEvicted++
				b.mu.Unlock()
				h.logs.Log(slog.LevelWarn, "events:stream:stalled", "event stream reader took no message within the write timeout: dropped",
					slog.String("remote", r.RemoteAddr))
			}
			return
		}
	}
}
