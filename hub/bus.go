package hub

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"framehub/protocol"
)

// Scale-out. Several hubs act as one through a Bus, which package cluster
// implements over NATS; the hub never imports it, and states here what it
// needs of a bus (Bus) and what it offers one (BusNode). A hub without a
// bus (Config.Bus nil) runs none of this: each hook below starts with a
// nil check.
//
// The rules the hub applies:
//   - Interest. The hub tells the bus when a channel gets its first local
//     reader (a WebSocket subscriber, an MJPEG reader, a snapshot waiting
//     for a frame) and when it loses its last (Watch, Unwatch). The bus
//     receives a channel's frames only while it is watched, and sends a
//     local publisher's frames only while another hub watches the channel.
//   - Trust. Nothing from the bus is trusted more than a publisher: a frame
//     from the bus is read into one buffer charged to the memory budget and
//     checked by protocol.ParseMessage with the hub's limits, exactly as a
//     publisher's frame is; a refusal is counted under its reason and
//     logged at a bounded rate, and the channel keeps its last good frame.
//   - One publisher per channel across the cluster. A publisher holds a
//     Claim on its channel; the larger claim wins, and a local publisher
//     whose claim another hub's beats is closed with 4001, as when a newer
//     publisher connects to the same hub.
//   - Order. A frame from the bus is relayed only if it comes from the
//     channel's winning claim and its sequence number is above the last one
//     relayed from that claim: no subscriber gets a frame twice, or an older
//     frame after a newer one. A claim whose numbers went back (a forged
//     frame numbered 2^64−1, a publisher counting anew) is not locked out
//     by its own earlier number: see busorder.go.

// Claim is a publisher's hold on a channel across hubs. Claims are ordered
// by Gen, then by Hub; the larger wins. A hub gives a new publisher
// Gen = max(its clock in Unix milliseconds, 1 + the largest Gen it has seen
// for the channel). So a publisher that connects once its hub has heard of
// the current one always wins, whatever the clocks say; two claims made
// before either hub heard of the other (a race within the bus's delay, or
// during a partition) are ordered by the hubs' clocks, then by hub ID.
// A claim from the bus whose Gen is more than maxClaimAhead ahead of the
// hub's clock is refused, so a forged Gen of 2^64−1 can neither win for
// good nor make the next real claim's Gen wrap.
type Claim struct {
	Hub string // ID of the publisher's hub (Bus.Self), unique per process
	Gen uint64
}

// Compare returns -1, 0 or +1 as c is smaller than, equal to or larger
// than d.
func (c Claim) Compare(d Claim) int {
	if c.Gen != d.Gen {
		return cmp.Compare(c.Gen, d.Gen)
	}
	return strings.Compare(c.Hub, d.Hub)
}

// Announcement is a hub's statement that one of its publishers holds a
// channel (Live) or has left it.
type Announcement struct {
	Channel string
	Claim   Claim
	HubName string // the publishing hub's name, for listings
	Live    bool
	Info    protocol.ChannelInfo // the channel as the publishing hub sees it
	// Expires is when a receiver forgets a live announcement that has not
	// been repeated (the publishing hub died or lost the bus). The bus
	// sets it on receipt, from its own clock.
	Expires time.Time
}

// Bus links hubs so that they act as one. Its methods are called by the
// hub and must never block on the network: a bus does its sending in its
// own goroutines. All methods are safe for concurrent use. The hub calls
// Close from Shutdown.
type Bus interface {
	// Self returns this hub's ID on the bus (unique per process, used in
	// claims) and its name (shown in listings).
	Self() (id, name string)
	// Start hands the bus the hub's side. New calls it once; the bus may
	// call n from then until Close returns.
	Start(n BusNode)
	// Publish offers a frame of a local publisher holding c: msg is the
	// frame exactly as the publisher sent it, immutable, and may be kept
	// until sent. The bus sends it to the hubs that want the channel, or
	// drops it; a newer frame of the channel may replace it unsent.
	Publish(channel string, c Claim, msg []byte)
	// Watch and Unwatch say that channel got its first local reader and
	// lost its last; calls for a channel alternate, Watch first.
	Watch(channel string)
	Unwatch(channel string)
	// Claim announces that a local publisher now holds a channel (calling
	// it again with the same claim repeats the announcement at once, for a
	// hub that announced a smaller one); Release that it has left.
	Claim(a Announcement)
	Release(a Announcement)
	// Status reports the link's state and counters.
	Status() protocol.ClusterStats
	// Close leaves the bus. No BusNode method is called once it returns.
	Close() error
}

// BusNode is the hub as its bus sees it. Its methods are safe for
// concurrent use and do not block on the network.
type BusNode interface {
	// Receive checks a frame that came from the bus (parts are its bytes
	// in order: one part, or its chunks) from claim from, and relays it to
	// local readers if it is valid, from the channel's winning claim and
	// newer than what they were sent. It copies parts and keeps none.
	Receive(channel string, from Claim, parts [][]byte)
	// Announced records another hub's announcement.
	Announced(a Announcement)
	// Latest returns the newest frame of a channel that a local publisher
	// holds (immutable; for a hub that has just become interested), or
	// false.
	Latest(channel string) (Claim, []byte, bool)
	// Local returns an announcement for every channel a local publisher
	// holds.
	Local() []Announcement
	// MaxFrameBytes is the largest frame the hub accepts.
	MaxFrameBytes() int
	// Reserve charges n bytes that the bus holds for a frame (chunks being
	// reassembled) to the hub's memory budget, or reports that they would
	// pass it; Release gives them back.
	Reserve(n int64) bool
	Release(n int64)
	// Refused counts and logs, at a bounded rate, a message from the bus
	// refused before it became a frame.
	Refused(channel string, why BusRefusal, detail string)
	// RemoteInterest says how many other hubs want a channel that a local
	// publisher holds, when that changes: they count as its viewers (a
	// publisher started on demand captures while it has any).
	RemoteInterest(channel string, hubs int)
}

// BusRefusal is why a bus refused a message before it became a frame.
type BusRefusal int

// Refusals a bus reports through BusNode.Refused.
const (
	// BusBadEnvelope: the message's headers are missing or malformed, or
	// name another channel than its subject, or this hub as the sender.
	BusBadEnvelope BusRefusal = iota
	// BusBadChunk: a chunk whose fields do not fit the frame it belongs to
	// (index, count, sizes).
	BusBadChunk
	// BusIncomplete: a frame sent in chunks that was dropped before all its
	// chunks arrived (a gap, a timeout, a newer frame, or the budget).
	BusIncomplete
	// BusBadAnnouncement: an announcement that does not parse or check.
	BusBadAnnouncement
	// BusOverBudget: chunks that would pass the hub's memory budget.
	BusOverBudget
	// BusFutureClaim: a frame or announcement whose claim's generation is
	// further ahead of this hub's clock than maxClaimAhead.
	BusFutureClaim
	numBusRefusals
)

// A complete frame from the bus is refused by the hub for the reasons it
// refuses a publisher's (refuse.go), counted under the same names.
var busFrameReasons = [...]reason{reasonBadFrame, reasonTooBig, reasonBadJPEG, reasonTooManyPixels, reasonTooManyChannels, reasonMemory,
	reasonBadRendition, reasonTooManyRenditions}

var busRefusalNames = [numBusRefusals]string{
	BusBadEnvelope: "bad_envelope", BusBadChunk: "bad_chunk", BusIncomplete: "incomplete_frame",
	BusBadAnnouncement: "bad_announcement", BusOverBudget: reasonMemory.String(), BusFutureClaim: "future_claim",
}

func (r BusRefusal) String() string {
	if r < 0 || r >= numBusRefusals {
		return "unknown"
	}
	return busRefusalNames[r]
}

// busSnapshotWait is how long a snapshot of a channel published on
// another hub waits for its frame to cross the bus.
const busSnapshotWait = 2 * time.Second

// busClaimTTL is how long a claim first seen in a frame (not yet
// announced) counts as live.
const busClaimTTL = 3 * time.Second

// maxClaimAhead bounds how far ahead of this hub's clock a claim from the
// bus may be. A hub makes a claim's generation from its clock in Unix
// milliseconds, or one more than the largest it has heard of for the
// channel, so a real claim is ahead of another hub's clock only by the
// clocks' skew (and a millisecond per takeover faster than one a
// millisecond). A claim further ahead is forged (or from a hub whose clock
// is off by more than this: keep hubs' clocks in step, NTP): it is
// refused (BusFutureClaim), so that no one can take a generation that the
// next real claim's "one more" cannot beat, or make it wrap past 2^64−1.
const maxClaimAhead = time.Minute

// claimTooNew reports whether c's generation is further ahead of now
// than maxClaimAhead.
func claimTooNew(c Claim, now time.Time) bool {
	return c.Gen > uint64(now.Add(maxClaimAhead).UnixMilli())
}

// nextGen returns g+1, or g if that would wrap.
func nextGen(g uint64) uint64 { return max(g, g+1) }

// busLink is the hub's side of its bus.
type busLink struct {
	// Static after construction.
	h    *Hub
	bus  Bus
	id   string
	name string

	// mu guards chans and every busChan; frames from the bus are relayed
	// under it, so that the order check and the relay are one step.
	// Lock order: mu, then table.mu, then channel.mu.
	mu    sync.Mutex
	chans map[string]*busChan

	framesIn, bytesIn, stale, seqRestarts atomic.Uint64
	refused                               [numBusRefusals]atomic.Uint64 // by the bus, before a message became a frame
	refusedFrames                         [numReasons]atomic.Uint64     // by the hub, of complete frames
}

// busChan is what the hub knows of one channel across the cluster.
type busChan struct {
	interest int            // local readers: subscribers, MJPEG readers, waiting snapshots
	best     Claim          // the winning claim (zero: none)
	maxGen   uint64         // the largest Gen seen for the channel
	bestName string         // name of best's hub
	local    localPublisher // the local publisher holding best, or nil
	remote   bool           // best is another hub's publisher…
	expires  time.Time      // …until then, unless announced again
	info     protocol.ChannelInfo
	order    seqOrder                         // the order of best's main frames relayed…
	rorder   map[protocol.Rendition]*seqOrder // …and of each of its renditions' (they share main's numbers)
	fed      *channel                         // channel claimed in the table while frames from the bus feed it
}

func (b *busChan) live(now time.Time) bool {
	return b.local != nil || (b.remote && now.Before(b.expires))
}

func (b *busChan) idle(now time.Time) bool {
	return b.interest == 0 && b.local == nil && !b.live(now) && b.fed == nil
}

func newBusLink(h *Hub, bus Bus) *busLink {
	l := &busLink{h: h, bus: bus, chans: make(map[string]*busChan)}
	l.id, l.name = bus.Self()
	return l
}

func (l *busLink) chanLocked(name string) *busChan {
	bc := l.chans[name]
	if bc == nil {
		bc = &busChan{}
		l.chans[name] = bc
	}
	return bc
}

// adoptLocked makes c, another hub's claim, the channel's winner, and
// returns the local publisher it beats, which the caller closes once mu
// is released.
func (l *busLink) adoptLocked(bc *busChan, c Claim, hubName string, expires time.Time) (beaten localPublisher) {
	if c != bc.best {
		bc.order, bc.bestName = seqOrder{}, c.Hub // the ID until an announcement names it
		l.releaseBusRenditionsLocked(bc)
	}
	bc.best, bc.remote, bc.expires = c, true, expires
	bc.maxGen = max(bc.maxGen, c.Gen)
	if hubName != "" {
		bc.bestName = hubName
	}
	beaten, bc.local = bc.local, nil
	if beaten != nil {
		// At once, under l.mu (Receive publishes the new claim's frame
		// under it next): the beaten publisher's next frame is refused by
		// publishFrom, so none of its frames follows the new claim's.
		// replacedRemotely closes it after l.mu is released.
		beaten.local().ch.clearPublisher(beaten)
	}
	return beaten
}

// replacedRemotely closes a local publisher that a newer one on another
// hub took over.
func (h *Hub) replacedRemotely(p localPublisher, hubName string) {
	lp := p.local()
	lp.ch.clearPublisher(p)
	lp.ch.setRemoteInterest(0) // that interest was in its claim, which is gone
	h.counters.Replaced.Add(1)
	h.logs.Log(slog.LevelInfo, "replaced:"+lp.ch.name, "publisher replaced by a newer one on another hub",
		slog.String("channel", lp.ch.name), slog.String("remote", p.remoteAddr()), slog.String("hub", hubName))
	p.replacedOn(hubName)
}

// localPublisher is a publisher on this hub as the bus hooks see it: a
// WebSocket publisher or an HTTP upload.
type localPublisher interface {
	publisherConn
	// local returns what the hooks share: its channel and its claim.
	local() *localPart
	// remoteAddr is its client's address, for logs.
	remoteAddr() string
	// replacedOn ends it: a newer publisher on another hub took over.
	replacedOn(hubName string)
}

// localPart is what every local publisher carries for the bus hooks.
type localPart struct {
	ch    *channel
	claim Claim         // its hold on the channel across hubs (clustered hubs only)
	rend  renditionPart // the renditions it sends (rendition.go)
}

// watch counts a new local reader of a channel; the channel's first makes
// the bus receive it.
func (l *busLink) watch(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bc := l.chanLocked(name)
	bc.interest++
	if bc.interest == 1 {
		l.bus.Watch(name)
	}
}

// unwatch undoes watch. When a channel loses its last local reader, the bus
// stops receiving it, and the table claim that frames from the bus held is
// given back (the channel stays listed with its last frame for the TTL).
func (l *busLink) unwatch(c *channel) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bc := l.chanLocked(c.name)
	bc.interest--
	if bc.interest == 0 {
		l.bus.Unwatch(c.name)
		l.releaseBusRenditionsLocked(bc)
		if bc.fed != nil {
			l.h.table.unclaim(bc.fed)
			bc.fed = nil
		}
	}
}

// busClaim gives a publisher that has just taken its channel on this hub
// a claim that beats every claim the hub knows, and announces it.
func (h *Hub) busClaim(p localPublisher) {
	l := h.link
	if l == nil {
		return
	}
	lp := p.local()
	l.mu.Lock()
	bc := l.chanLocked(lp.ch.name)
	// No wrap: maxGen is at most maxClaimAhead past some hub's clock (the
	// bus's claims are checked on arrival), and nextGen saturates anyway.
	gen := max(uint64(time.Now().UnixMilli()), nextGen(bc.maxGen), nextGen(bc.best.Gen))
	lp.claim = Claim{Hub: l.id, Gen: gen}
	bc.best, bc.maxGen, bc.bestName = lp.claim, gen, l.name
	bc.local, bc.remote, bc.order = p, false, seqOrder{}
	l.releaseBusRenditionsLocked(bc)
	a := Announcement{Channel: lp.ch.name, Claim: lp.claim, HubName: l.name, Live: true}
	l.mu.Unlock()
	l.bus.Claim(a)
}

// busRelease tells the bus that a publisher has left (or was replaced):
// the bus stops offering its frames and announces that its claim is over.
func (h *Hub) busRelease(p localPublisher) {
	l := h.link
	lp := p.local()
	if l == nil || lp.claim == (Claim{}) {
		return
	}
	l.mu.Lock()
	current := false
	if bc := l.chans[lp.ch.name]; bc != nil && bc.local == p {
		bc.local, current = nil, true
	}
	l.mu.Unlock()
	l.bus.Release(Announcement{Channel: lp.ch.name, Claim: lp.claim, HubName: l.name})
	if current {
		// The other hubs' interest was in this claim and goes with it; a
		// next publisher's claim hears it anew. Left standing, an old count
		// would keep an on-demand camera on for viewers long gone.
		lp.ch.setRemoteInterest(0)
	}
}

// offer hands the bus a frame that local publisher p is about to publish,
// unless p no longer holds its channel (a newer publisher, here or on
// another hub, took it): then it returns false and the frame goes nowhere.
// The bus comes first: its path is the longer one, and its sender should
// not queue behind every local subscriber's writer that publish wakes.
func (l *busLink) offer(p localPublisher, f *frame) bool {
	lp := p.local()
	lp.ch.mu.Lock()
	current := lp.ch.pub == publisherConn(p)
	lp.ch.mu.Unlock()
	if !current {
		return false
	}
	l.bus.Publish(lp.ch.name, lp.claim, f.msg)
	return true
}

// awaitBusFrame waits, for a snapshot, for the newest frame of a channel
// that a publisher on another hub holds: it joins the channel as a reader
// for at most busSnapshotWait. It returns nil for a channel no hub is known
// to publish.
func (h *Hub) awaitBusFrame(ctx context.Context, name string, want protocol.RenditionWant) *frame {
	l := h.link
	if l == nil {
		return nil
	}
	l.mu.Lock()
	bc := l.chans[name]
	live := bc != nil && bc.live(time.Now())
	l.mu.Unlock()
	if !live {
		return nil
	}
	return h.awaitFrame(ctx, name, want, busSnapshotWait, time.Time{})
}

// busRefuse counts and logs a message the bus refused.
func (l *busLink) busRefuse(channel string, why BusRefusal, detail string) {
	if why < 0 || why >= numBusRefusals {
		return
	}
	l.refused[why].Add(1)
	l.logRefusal(channel, why.String(), detail)
}

// refuse counts and logs a frame or an announcement from the bus that the
// hub refuses, under the reason it would refuse a publisher for.
func (l *busLink) refuse(channel string, why reason, detail string) {
	l.refusedFrames[why].Add(1)
	l.logRefusal(channel, why.String(), detail)
}

func (l *busLink) logRefusal(channel, why, detail string) {
	l.h.logs.Log(slog.LevelWarn, "bus-refused:"+why, "refused a message from the bus",
		slog.String("reason", why), slog.String("channel", truncate(channel, 64)), slog.String("error", truncate(detail, 200)))
}

func futureClaimDetail(c Claim) string {
	return "claim of hub " + strconv.Quote(truncate(c.Hub, 64)) + " with generation " + strconv.FormatUint(c.Gen, 10) +
		", more than " + maxClaimAhead.String() + " ahead of this hub's clock (forged, or clocks out of step)"
}

// busNode is the BusNode of a hub.
type busNode struct{ l *busLink }

func (n busNode) MaxFrameBytes() int    { return n.l.h.limits.MaxFrameBytes }
func (n busNode) Reserve(n2 int64) bool { return n.l.h.mem.reserve(n2) }
func (n busNode) Release(n2 int64)      { n.l.h.mem.release(n2) }

func (n busNode) Refused(channel string, why BusRefusal, detail string) {
	n.l.busRefuse(channel, why, detail)
}

func (n busNode) Receive(channel string, from Claim, parts [][]byte) {
	l, h := n.l, n.l.h
	if claimTooNew(from, time.Now()) {
		l.busRefuse(channel, BusFutureClaim, futureClaimDetail(from))
		return
	}
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	if total > h.limits.MaxFrameBytes {
		l.refuse(channel, reasonTooBig, "frame of "+itoa(total)+" bytes, limit "+itoa(h.limits.MaxFrameBytes))
		return
	}
	// Check the frame before it touches any state, exactly as a
	// publisher's: one buffer charged to the budget, ParseMessage.
	size := int64(wsRoom + total)
	if !h.mem.reserve(size) {
		l.refuse(channel, reasonMemory, "frame of "+itoa(total)+" bytes")
		return
	}
	buf := make([]byte, wsRoom, size)
	for _, p := range parts {
		buf = append(buf, p...)
	}
	pf, err := protocol.ParseMessage(buf[wsRoom:], h.limits)
	if err != nil {
		h.mem.release(size)
		l.refuse(channel, refusalOf(err, reasonBadFrame), err.Error())
		return
	}
	now := time.Now()
	f := newFrame(buf, pf, now)

	l.mu.Lock()
	bc := l.chans[channel]
	var beaten localPublisher
	restarted := false
	ok := bc != nil && bc.interest > 0 && from.Hub != l.id
	if ok {
		switch c := from.Compare(bc.best); {
		case c > 0:
			beaten = l.adoptLocked(bc, from, "", now.Add(busClaimTTL))
		case c < 0 || bc.local != nil:
			ok = false // a replaced publisher's frame, still on its way
		}
	}
	// Each rendition is a stream of its own: renditions share their main
	// frames' sequence numbers.
	ord := &bc.order
	if r := pf.Rendition; ok && r != protocol.RenditionMain {
		if bc.rorder == nil {
			bc.rorder = map[protocol.Rendition]*seqOrder{}
		}
		if ord = bc.rorder[r]; ord == nil {
			ord = &seqOrder{}
			bc.rorder[r] = ord
		}
	}
	var order seqOrder // as it was, should the frame not be relayed after all
	if ok {
		order = *ord
		ok, restarted = ord.admit(pf.Seq)
	}
	if ok && bc.fed == nil {
		c, claimed := h.table.claim(channel)
		if !claimed {
			*ord = order
			l.mu.Unlock()
			h.mem.release(size)
			l.refuse(channel, reasonTooManyChannels, "channel limit reached")
			return
		}
		bc.fed = c
	}
	var refused error
	if ok && pf.Rendition != protocol.RenditionMain {
		var released *frame
		released, _, _, refused = bc.fed.publishRendition(fromBus, protocol.RenditionMain, f, h.cfg.MaxRenditions)
		if refused != nil {
			*ord = order
			if order == (seqOrder{}) {
				delete(bc.rorder, pf.Rendition) // nothing of it relayed: keep no order for it
			}
			ok = false
		} else {
			h.retire(released)
		}
	} else if ok {
		h.retire(bc.fed.retirePrev())
		h.retire(bc.fed.publish(f))
	}
	l.mu.Unlock()
	if refused != nil {
		h.retire(f)
		if !errors.Is(refused, errNotRelayed) || errors.Is(refused, errTooManyRenditions) {
			l.refuse(channel, refusalOf(refused, reasonBadRendition), refused.Error())
		} else {
			l.stale.Add(1)
		}
		if beaten != nil {
			h.replacedRemotely(beaten, from.Hub)
		}
		return
	}
	if ok && pf.Rendition == protocol.RenditionMain {
		h.book.observe(channel, f, false)
	}
	if beaten != nil {
		h.replacedRemotely(beaten, from.Hub)
	}
	if !ok {
		h.mem.release(size)
		l.stale.Add(1)
		return
	}
	if restarted {
		l.seqRestarts.Add(1)
		h.logs.Log(slog.LevelWarn, "bus-seq-restart:"+channel, "frames from the bus went back in sequence; relaying again from this one",
			slog.String("channel", channel), slog.String("hub", from.Hub), slog.Uint64("seq", pf.Seq),
			slog.Int("dropped_before", seqRestartAfter))
	}
	l.framesIn.Add(1)
	l.bytesIn.Add(uint64(total))
}

func (n busNode) Announced(a Announcement) {
	l := n.l
	if a.Claim.Hub == l.id || !protocol.ValidChannelName(a.Channel) {
		return
	}
	now := time.Now()
	if claimTooNew(a.Claim, now) {
		l.busRefuse(a.Channel, BusFutureClaim, futureClaimDetail(a.Claim))
		return
	}
	var beaten localPublisher
	var reannounce *Announcement
	l.mu.Lock()
	if l.chans[a.Channel] == nil && len(l.chans) >= l.maxEntries() {
		l.mu.Unlock()
		l.refuse(a.Channel, reasonTooManyChannels, "announcement of one channel too many")
		return
	}
	bc := l.chanLocked(a.Channel)
	bc.maxGen = max(bc.maxGen, a.Claim.Gen)
	switch c := a.Claim.Compare(bc.best); {
	case !a.Live:
		if c == 0 {
			bc.remote = false
		}
	case c >= 0 || !bc.live(now):
		// A larger claim, the winner again, or the only live one (a claim
		// made during a partition, once the larger one has gone).
		beaten = l.adoptLocked(bc, a.Claim, a.HubName, a.Expires)
		bc.info = a.Info
	case bc.local != nil:
		// A smaller live claim: its hub has not heard of ours yet.
		reannounce = &Announcement{Channel: a.Channel, Claim: bc.best, HubName: l.name, Live: true}
	}
	l.mu.Unlock()
	if beaten != nil {
		l.h.replacedRemotely(beaten, a.HubName)
	}
	if reannounce != nil {
		l.bus.Claim(*reannounce)
	}
}

func (n busNode) Latest(channel string) (Claim, []byte, bool) {
	l := n.l
	l.mu.Lock()
	bc := l.chans[channel]
	var p localPublisher
	if bc != nil {
		p = bc.local
	}
	l.mu.Unlock()
	if p == nil {
		return Claim{}, nil, false
	}
	lp := p.local()
	f := lp.ch.newest()
	if f == nil {
		return Claim{}, nil, false
	}
	return lp.claim, f.msg, true
}

func (n busNode) RemoteInterest(channel string, hubs int) {
	if c := n.l.h.table.lookup(channel); c != nil {
		c.setRemoteInterest(hubs)
	}
}

func (n busNode) Local() []Announcement {
	l := n.l
	type held struct {
		name  string
		claim Claim
		ch    *channel
	}
	var hs []held
	l.mu.Lock()
	for name, bc := range l.chans {
		if bc.local != nil {
			hs = append(hs, held{name, bc.best, bc.local.local().ch})
		}
	}
	l.mu.Unlock()
	now := time.Now()
	out := make([]Announcement, 0, len(hs))
	for _, x := range hs {
		info, _ := x.ch.info(now, l.h.cfg.ChannelTTL)
		info.Hub = l.name
		out = append(out, Announcement{Channel: x.name, Claim: x.claim, HubName: l.name, Live: true, Info: info})
	}
	return out
}

// maxEntries bounds the channels the hub keeps track of for the bus
// (announced by other hubs, read or published here): four times the
// channels it may hold itself, so that announcements of made-up names
// cannot grow it without bound.
func (l *busLink) maxEntries() int { return 4*l.h.cfg.MaxChannels + 64 }

// sweep forgets what the hub knows of channels nobody here reads or
// publishes and no live hub publishes. The janitor calls it.
func (l *busLink) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, bc := range l.chans {
		if bc.idle(now) {
			delete(l.chans, name)
		}
	}
}

// busChannels adds to a listing what the cluster knows: which hub has
// each channel's publisher, and the live channels published elsewhere
// that this hub holds nothing of.
func (h *Hub) busChannels(list []protocol.ChannelInfo) []protocol.ChannelInfo {
	l := h.link
	if l == nil {
		return list
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	listed := make(map[string]bool, len(list))
	for i := range list {
		in := &list[i]
		listed[in.Name] = true
		bc := l.chans[in.Name]
		switch {
		case in.Live || (bc != nil && bc.local != nil):
			in.Hub = l.name
		case bc != nil && bc.live(now):
			in.Live, in.Hub = true, bc.bestName
			in.FPS, in.BitrateBPS = bc.info.FPS, bc.info.BitrateBPS
			in.SourceState, in.SourceError = bc.info.SourceState, bc.info.SourceError
		}
	}
	n := len(list)
	for name, bc := range l.chans {
		if listed[name] || bc.local != nil || !bc.live(now) {
			continue
		}
		in := bc.info
		in.Name, in.Live, in.Hub, in.Subscribers, in.Skipped = name, true, bc.bestName, 0, 0
		list = append(list, in)
	}
	if len(list) > n {
		slices.SortFunc(list, func(a, b protocol.ChannelInfo) int { return strings.Compare(a.Name, b.Name) })
	}
	return list
}

// busStats returns the cluster part of Stats, or nil.
func (h *Hub) busStats() *protocol.ClusterStats {
	l := h.link
	if l == nil {
		return nil
	}
	s := l.bus.Status()
	s.FramesIn, s.BytesIn, s.Stale = l.framesIn.Load(), l.bytesIn.Load(), l.stale.Load()
	s.SeqRestarts = l.seqRestarts.Load()
	s.Refused = make(map[string]uint64, int(numBusRefusals)+len(busFrameReasons))
	for _, r := range busFrameReasons {
		s.Refused[r.String()] = l.refusedFrames[r].Load()
	}
	for i := range numBusRefusals {
		s.Refused[i.String()] += l.refused[i].Load()
	}
	now := time.Now()
	l.mu.Lock()
	for _, bc := range l.chans {
		if bc.local == nil && bc.live(now) {
			s.RemoteChannels++
		}
	}
	l.mu.Unlock()
	return &s
}

// health is the body of GET /healthz: "ok", or "degraded" with why when
// the hub has lost its bus (it still serves its own publishers).
func (h *Hub) health() string {
	if h.link == nil {
		return "ok\n"
	}
	if st := h.link.bus.Status(); st.State != "connected" {
		return "degraded: nats " + st.State + "; serving local publishers only\n"
	}
	return "ok\n"
}

func itoa(n int) string { return strconv.Itoa(n) }
