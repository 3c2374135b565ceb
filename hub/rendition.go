package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"framehub/internal/ratelimit"
	"framehub/protocol"
)

// Renditions (protocol.Rendition): a channel's main picture and up to
// Config.MaxRenditions smaller copies of the same frames, made by
// publishers. The hub relays them and never decodes.
//
// Streams. Each rendition but the main picture has its own newest frames,
// readers and publisher (rstream), kept in the channel's renditions state,
// which exists only while the channel has a rendition or a reader that asked
// for one: a channel without renditions publishes exactly as before. A
// rendition counts (can be chosen) once it has a frame, and goes as soon
// as its publisher leaves: its readers move to what fits them then.
//
// Ownership, per (channel, rendition), the newest claim winning as for the
// main picture:
//   - A connection that publishes the main picture (/ws/publish/cam) may
//     send renditions after each main frame; it holds each from its first
//     frame of it, and all of them go when it leaves or is replaced. Each
//     rendition frame must belong to the main frame just before it (same
//     sequence number and capture time, the set rule), come at most once
//     per main frame (so that copies cannot flood readers past the frame-rate
//     cap), and be narrower than it: otherwise the publisher is closed
//     (1007, bad_rendition). A
//     rendition past the channel's limit is not relayed (counted as
//     too_many_renditions, logged), and the main picture goes on.
//   - A connection or upload that publishes one rendition
//     (/ws/publish/cam?rendition=320, POST …/stream.mjpeg?rendition=320)
//     claims it when it starts, taking it from whoever held it: an older
//     publisher of that rendition alone is ended as replaced (4001, 409); a
//     main publisher that sent it keeps its connection, and its later frames
//     of it are dropped. Past the limit it is refused (1008 or 503,
//     too_many_renditions). Its frames must be narrower than the channel's
//     newest main frame, and no taller (bad_rendition). It goes when the
//     publisher leaves, but for a snapshot POST's: that one's frame stays
//     (keptRendition) until another publisher of it comes or it is older
//     than the channel TTL, as a posted main picture does.
//   - Frames from the bus (bus.go) feed the renditions of a channel
//     published on another hub; they go when that hub's claim does, or
//     when no frame of them came for busClaimTTL.
//
// Choice. A reader names what it wants: the main picture (the default, and
// all a client of before renditions gets), an exact rendition, or a max
// width (protocol.PickRendition: the narrowest at least that wide, else the
// widest). A reader whose want nothing fits waits. The choice is made
// again when a rendition appears or goes, when the main picture appears,
// goes or changes width, and when a subscriber switches
// ({"op":"rendition",…}, at most switchRate a second, bursts of
// switchBurst; past that it is closed, too_many_switches).
//
// Order. A reader moved to another rendition is sent, as its first frame of
// it, only one captured no earlier than the last frame it was sent
// (sendOrder): the same picture in its new size, or a newer one, so it never
// goes back in time. The capture times are the publishers', and may lie, so
// the wait is bounded: after switchWait the newest frame of the new
// rendition goes out whatever its time. Sequence numbers play no part in it
// (a rendition numbered 2^64−1 locks nobody out). A switch can so cost a
// frame sent again in another size, which the switch budget bounds.

// DefaultMaxRenditions is how many renditions besides the main picture a
// channel may carry when Config.MaxRenditions is zero.
const DefaultMaxRenditions = 4

const (
	// switchWait bounds how long a reader that was moved to another
	// rendition waits for a frame of it captured no earlier than the last
	// frame it was sent.
	switchWait = time.Second
	// switchRate and switchBurst bound a subscriber's rendition switches:
	// per second sustained, and at once.
	switchRate  = 10
	switchBurst = 20
)

// Refusals of renditions, mapped to their reasons by refusalOf.
var (
	errBadRendition      = errors.New("bad rendition")
	errTooManyRenditions = errors.New("too many renditions")
	// errNotRelayed: a frame the hub does not relay, while its publisher
	// goes on (a rendition taken by a newer publisher, or past the limit,
	// sent on a connection that also carries the main picture).
	errNotRelayed = errors.New("frame not relayed")
)

// rstream is one rendition of a channel other than the main picture.
// Guarded by its channel's mu.
type rstream struct {
	r      protocol.Rendition
	pub    publisherConn              // its publisher: a local one, fromBus, or keptRendition
	losers map[publisherConn]struct{} // main publishers it was taken from: their frames of it are dropped
	latest *frame
	prev   *frame // the frame latest replaced: a slow reader may still be sending it
	subs   map[*mailbox]struct{}
	wsSubs int

	frames, bytes uint64
	rateAt        time.Time
	rateFrames    uint64
	rateBytes     uint64
	fps, bitrate  float64
}

// renditions is a channel's rendition state: made when the channel first
// gets a rendition or a reader that asks for one, dropped when it has
// neither. Guarded by the channel's mu.
type renditions struct {
	streams map[protocol.Rendition]*rstream
	main    map[*mailbox]struct{} // readers of the main picture (a subset of channel.subs)
	mainWS  int
	wanting map[*mailbox]*placement // readers that asked for anything but the main picture
	width   uint32                  // of the newest main frame, to see it change
}

// placement is where a reader that asked for a rendition is.
type placement struct {
	want   protocol.RenditionWant
	at     protocol.Rendition
	placed bool // false: nothing the channel has fits, and it waits
}

// busHolder is the publisher of renditions that frames from the bus feed.
type busHolder struct{}

func (busHolder) replaced() {}

var fromBus publisherConn = busHolder{}

// keptHolder holds a rendition whose publisher was a snapshot POST that
// has ended: its frame stays, as a main snapshot's does, until another
// publisher of it comes or it is older than the channel TTL.
type keptHolder struct{}

func (keptHolder) replaced() {}

var keptRendition publisherConn = keptHolder{}

// renditionPart is what a local publisher knows of the renditions it
// sends. only is static; the rest is its reader goroutine's.
type renditionPart struct {
	only protocol.Rendition // publishes this one rendition (?rendition=N), or the main picture and any renditions
	// The set rule: the last main frame the connection sent, and whether
	// the frame-rate cap dropped it (its renditions are dropped with it).
	mainSeq     uint64
	mainAt      int64
	haveMain    bool
	mainDropped bool
	// The renditions relayed since that main frame (at most the channel's
	// limit of them): each may follow it once, so that copies cannot flood
	// readers past the frame-rate cap, which counts a set once.
	inSet []protocol.Rendition
}

// allowRate applies the frame-rate cap to the message in buf: main frames
// (and every frame of a one-rendition publisher) take a token; a main
// frame's renditions go or are dropped with it, so a set counts once.
func (rp *renditionPart) allowRate(b *ratelimit.Bucket, buf []byte, now time.Time) bool {
	if rp.only != protocol.RenditionMain || protocol.PeekRendition(buf[wsRoom:]) == protocol.RenditionMain {
		ok := b.Allow(now)
		rp.mainDropped = !ok
		return ok
	}
	return !rp.mainDropped
}

// isMainWant reports whether w asks for the main picture alone.
func isMainWant(w protocol.RenditionWant) bool {
	return w.MaxWidth == 0 && w.Rendition == protocol.RenditionMain
}

// wantFromQuery reads a reader's ?rendition= or ?max-width= (each at most
// once, not both, not empty).
func wantFromQuery(r *http.Request) (protocol.RenditionWant, error) {
	q := r.URL.Query()
	var vals [2]string
	for i, key := range []string{protocol.QueryRendition, protocol.QueryMaxWidth} {
		v, ok := q[key]
		switch {
		case !ok:
			continue
		case len(v) != 1:
			return protocol.RenditionWant{}, fmt.Errorf("%s given %d times", key, len(v))
		case v[0] == "":
			return protocol.RenditionWant{}, fmt.Errorf("%s is empty", key)
		}
		vals[i] = v[0]
	}
	return protocol.ParseRenditionWant(vals[0], vals[1])
}

// ensureRenditionsLocked returns the channel's rendition state, making it
// (with every reader so far on the main picture) if need be.
func (c *channel) ensureRenditionsLocked() *renditions {
	if c.rv == nil {
		rv := &renditions{streams: map[protocol.Rendition]*rstream{}, main: make(map[*mailbox]struct{}, len(c.subs)),
			mainWS: c.wsSubs, wanting: map[*mailbox]*placement{}}
		for m := range c.subs {
			rv.main[m] = struct{}{}
		}
		if c.latest != nil {
			rv.width = c.latest.hdr.Width
		}
		c.rv = rv
	}
	return c.rv
}

// dropRenditionsIfUnusedLocked lets go of the rendition state once the
// channel has no rendition and no reader that asked for one: publishing is
// then exactly as it was without renditions.
func (c *channel) dropRenditionsIfUnusedLocked() {
	if c.rv != nil && len(c.rv.streams) == 0 && len(c.rv.wanting) == 0 {
		c.rv = nil
	}
}

// addReaderLocked places a new reader (already in c.subs) by what it
// wants and hands it the newest frame of that, if any.
func (c *channel) addReaderLocked(m *mailbox, w protocol.RenditionWant) {
	if isMainWant(w) {
		if c.rv != nil {
			c.rv.addMainLocked(m)
		}
		if c.latest != nil {
			m.put(c.latest)
		}
		return
	}
	rv := c.rv // made before m joined c.subs
	p := &placement{want: w}
	rv.wanting[m] = p
	c.placeLocked(m, p, nil)
}

func (rv *renditions) addMainLocked(m *mailbox) {
	rv.main[m] = struct{}{}
	if m.kind == readerWS {
		rv.mainWS++
	}
}

// removeReaderLocked takes a leaving reader (still in c.subs) out of the
// rendition state.
func (c *channel) removeReaderLocked(m *mailbox) {
	rv := c.rv
	if rv == nil {
		return
	}
	if p := rv.wanting[m]; p != nil {
		c.unplaceLocked(m, p)
		delete(rv.wanting, m)
	} else if _, ok := rv.main[m]; ok {
		delete(rv.main, m)
		if m.kind == readerWS {
			rv.mainWS--
		}
	}
	c.dropRenditionsIfUnusedLocked()
}

// haveLocked returns what a reader may be given now: the main picture and
// each rendition, once it has a frame.
func (c *channel) haveLocked() []protocol.RenditionSize {
	var have []protocol.RenditionSize
	if c.latest != nil {
		have = append(have, protocol.RenditionSize{Rendition: protocol.RenditionMain, Width: int(c.latest.hdr.Width)})
	}
	if c.rv != nil {
		for r, s := range c.rv.streams {
			if s.latest != nil {
				have = append(have, protocol.RenditionSize{Rendition: r, Width: int(r)})
			}
		}
	}
	return have
}

// placeLocked puts reader m where what it wants is now, if that changed,
// and hands it the newest frame there (unless that is skip: a frame about
// to be put in every mailbox of its rendition anyway).
func (c *channel) placeLocked(m *mailbox, p *placement, skip *frame) {
	r, ok := p.want.Pick(c.haveLocked())
	if ok == p.placed && r == p.at {
		return
	}
	c.unplaceLocked(m, p)
	p.at, p.placed = r, ok
	if !ok {
		return
	}
	var f *frame
	if r == protocol.RenditionMain {
		c.rv.addMainLocked(m)
		f = c.latest
	} else {
		s := c.rv.streams[r]
		s.subs[m] = struct{}{}
		if m.kind == readerWS {
			s.wsSubs++
		}
		f = s.latest
	}
	if f != nil && f != skip {
		m.put(f)
	}
}

// unplaceLocked takes reader m out of the readers of where it is.
func (c *channel) unplaceLocked(m *mailbox, p *placement) {
	if !p.placed {
		return
	}
	p.placed = false
	if p.at == protocol.RenditionMain {
		if _, ok := c.rv.main[m]; ok {
			delete(c.rv.main, m)
			if m.kind == readerWS {
				c.rv.mainWS--
			}
		}
		return
	}
	if s := c.rv.streams[p.at]; s != nil {
		if _, ok := s.subs[m]; ok {
			delete(s.subs, m)
			if m.kind == readerWS {
				s.wsSubs--
			}
		}
	}
}

// replaceAllLocked places again every reader that asked for a rendition:
// what the channel has changed.
func (c *channel) replaceAllLocked(skip *frame) {
	if c.rv == nil {
		return
	}
	for m, p := range c.rv.wanting {
		c.placeLocked(m, p, skip)
	}
}

// mainReadersLocked returns who gets main frame f (already the channel's
// newest): the readers of the main picture, after placing again the
// readers that asked for a rendition if f makes the main picture appear or
// change width.
func (c *channel) mainReadersLocked(f *frame) (map[*mailbox]struct{}, int) {
	rv := c.rv
	if w := f.hdr.Width; w != rv.width {
		rv.width = w
		c.replaceAllLocked(f)
	}
	return rv.main, rv.mainWS
}

// mainGoneLocked: the channel let go of its main frames.
func (c *channel) mainGoneLocked() {
	if c.rv != nil {
		c.rv.width = 0
		c.replaceAllLocked(nil)
	}
}

// setWant switches reader m (which has joined) to what w asks for, from
// the next frame on.
func (c *channel) setWant(m *mailbox, w protocol.RenditionWant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.subs[m]; !ok {
		return
	}
	rv := c.ensureRenditionsLocked()
	p := rv.wanting[m]
	if p == nil {
		// On the main picture until now.
		if isMainWant(w) {
			return
		}
		if _, ok := rv.main[m]; ok {
			delete(rv.main, m)
			if m.kind == readerWS {
				rv.mainWS--
			}
		}
		p = &placement{}
		rv.wanting[m] = p
	}
	p.want = w
	c.placeLocked(m, p, nil)
	if isMainWant(w) && p.placed {
		// Back with the readers of the main picture, as one that never
		// asked for anything else (it stays there).
		delete(rv.wanting, m)
		c.dropRenditionsIfUnusedLocked()
	}
}

// newestFor returns the newest frame of what w asks for, or nil.
func (c *channel) newestFor(w protocol.RenditionWant) *frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := w.Pick(c.haveLocked())
	if !ok {
		return nil
	}
	return c.newestOfLocked(r)
}

func (c *channel) newestOfLocked(r protocol.Rendition) *frame {
	if r == protocol.RenditionMain {
		return c.latest
	}
	if c.rv != nil {
		if s := c.rv.streams[r]; s != nil {
			return s.latest
		}
	}
	return nil
}

// newestOf returns the newest frame of rendition r, or nil.
func (c *channel) newestOf(r protocol.Rendition) *frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newestOfLocked(r)
}

// newStreamLocked adds rendition r, published by p, or fails past max.
func (c *channel) newStreamLocked(r protocol.Rendition, p publisherConn, max int) (*rstream, error) {
	rv := c.ensureRenditionsLocked()
	if len(rv.streams) >= max {
		c.dropRenditionsIfUnusedLocked()
		return nil, fmt.Errorf("%w: channel %s has %d renditions besides the main picture, the hub's limit (--max-renditions)",
			errTooManyRenditions, c.name, len(rv.streams))
	}
	s := &rstream{r: r, pub: p, losers: map[publisherConn]struct{}{}, subs: map[*mailbox]struct{}{}, rateAt: time.Now()}
	rv.streams[r] = s
	return s, nil
}

// claimRendition makes p, a publisher of rendition r alone, its publisher,
// and returns the publisher it takes r from (nil if none), for the caller
// to tell, or errTooManyRenditions.
func (c *channel) claimRendition(p publisherConn, r protocol.Rendition, max int) (old publisherConn, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s *rstream
	if c.rv != nil {
		s = c.rv.streams[r]
	}
	if s == nil {
		_, err = c.newStreamLocked(r, p, max)
		return nil, err
	}
	old, s.pub = s.pub, p
	if old == fromBus || old == keptRendition || old == p {
		return nil, nil
	}
	// A main publisher that sent it keeps its connection; its frames of
	// it are dropped from now on (a publisher of it alone is ended).
	s.losers[old] = struct{}{}
	return old, nil
}

// publishRendition makes f, a frame of a rendition other than the main
// picture from publisher p, the newest of its rendition. only is p's
// (renditionPart.only). It returns the frame no longer held, for the caller
// to retire; ok is false when p may publish nothing more (a newer publisher
// replaced it); err is errNotRelayed for a frame dropped while p goes on,
// or a refusal (errBadRendition, errTooManyRenditions) that ends p. Taking a
// rendition from a publisher of it alone, it returns that publisher as
// taken, for the caller to tell once the lock is released.
func (c *channel) publishRendition(p publisherConn, only protocol.Rendition, f *frame, max int) (released *frame, taken publisherConn, ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := f.hdr.Rendition
	if only == protocol.RenditionMain && p != fromBus && c.pub != p {
		return f, nil, false, nil // a main publisher that was replaced
	}
	if m := c.latest; m != nil && (f.hdr.Width >= m.hdr.Width || f.hdr.Height > m.hdr.Height) {
		return f, nil, true, fmt.Errorf("%w: rendition %v is %dx%d, not narrower (and no taller) than the main picture's %dx%d",
			errBadRendition, r, f.hdr.Width, f.hdr.Height, m.hdr.Width, m.hdr.Height)
	}
	var s *rstream
	if c.rv != nil {
		s = c.rv.streams[r]
	}
	switch {
	case s != nil && s.pub == p:
	case only != protocol.RenditionMain:
		// A publisher of this rendition alone claimed it when it started;
		// now another holds it (or nobody, after that one left): a newer
		// publisher replaced it.
		return f, nil, false, nil
	case s == nil:
		if s, err = c.newStreamLocked(r, p, max); err != nil {
			// The main picture goes on; this rendition is not relayed.
			return f, nil, true, errors.Join(errNotRelayed, err)
		}
	case p == fromBus:
		// The bus feeds only what no local publisher holds.
		if s.pub != fromBus {
			return f, nil, true, errNotRelayed
		}
	default:
		if _, lost := s.losers[p]; lost {
			return f, nil, true, errNotRelayed // a newer publisher took it from p
		}
		// The main publisher sends a rendition another publisher holds:
		// the newest claim wins.
		taken = s.pub
		if taken == fromBus || taken == keptRendition {
			taken = nil
		} else {
			s.losers[taken] = struct{}{}
		}
		s.pub = p
	}
	first := s.latest == nil
	released, s.prev, s.latest = s.prev, s.latest, f
	s.frames++
	s.bytes += uint64(len(f.msg))
	if first {
		// It appears: readers it fits better move to it, and get f below.
		c.replaceAllLocked(f)
	}
	f.fanout = s.wsSubs // before any writer sees f
	for m := range s.subs {
		m.put(f)
	}
	return released, taken, true, nil
}

// releaseRenditions lets go of the renditions p publishes (p left, or
// was replaced) and forgets that it lost any, and returns their frames for
// the caller to retire. Readers of them are placed again.
func (c *channel) releaseRenditions(p publisherConn) []*frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rv == nil {
		return nil
	}
	var out []*frame
	gone := false
	for r, s := range c.rv.streams {
		delete(s.losers, p)
		if s.pub != p {
			continue
		}
		out = c.removeStreamLocked(r, s, out)
		gone = true
	}
	if gone {
		c.replaceAllLocked(nil)
	}
	c.dropRenditionsIfUnusedLocked()
	return out
}

// keepRenditions hands the renditions p publishes, a snapshot POST that
// has ended, to keptRendition: their frames stay for readers and snapshots
// until another publisher of them comes or sweepRenditions finds them
// older than the channel TTL.
func (c *channel) keepRenditions(p publisherConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rv == nil {
		return
	}
	for _, s := range c.rv.streams {
		delete(s.losers, p)
		if s.pub == p {
			s.pub = keptRendition
		}
	}
}

// removeStreamLocked removes rendition r and appends its frames to out.
// Its readers are placed again by the caller (replaceAllLocked).
func (c *channel) removeStreamLocked(r protocol.Rendition, s *rstream, out []*frame) []*frame {
	for m := range s.subs {
		if p := c.rv.wanting[m]; p != nil {
			p.placed = false
		}
	}
	delete(c.rv.streams, r)
	for _, f := range []*frame{s.latest, s.prev} {
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// sweepRenditions lets go of renditions fed by the bus that no frame came
// for in busClaimTTL (the other hub stopped sending them), and of kept
// snapshot renditions older than ttl, and returns their frames to retire.
// The janitor calls it.
func (c *channel) sweepRenditions(now time.Time, ttl time.Duration) []*frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rv == nil {
		return nil
	}
	var out []*frame
	for r, s := range c.rv.streams {
		stale := s.latest == nil || now.Sub(s.latest.received) > busClaimTTL
		if s.pub == keptRendition {
			stale = s.latest == nil || now.Sub(s.latest.received) > ttl
		}
		if (s.pub == fromBus || s.pub == keptRendition) && stale {
			out = c.removeStreamLocked(r, s, out)
		}
	}
	if out != nil {
		c.replaceAllLocked(nil)
		c.dropRenditionsIfUnusedLocked()
	}
	return out
}

// takeRenditionFrames lets go of every rendition's frames (the hub is
// shutting down) and returns them to retire.
func (c *channel) takeRenditionFrames() []*frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rv == nil {
		return nil
	}
	var out []*frame
	for _, s := range c.rv.streams {
		for _, f := range []*frame{s.latest, s.prev} {
			if f != nil {
				out = append(out, f)
			}
		}
		s.latest, s.prev = nil, nil
	}
	return out
}

// tickRenditionsLocked updates each rendition's fps and bitrate.
func (c *channel) tickRenditionsLocked(now time.Time) {
	if c.rv == nil {
		return
	}
	for _, s := range c.rv.streams {
		if dt := now.Sub(s.rateAt).Seconds(); dt > 0 {
			s.fps = float64(s.frames-s.rateFrames) / dt
			s.bitrate = 8 * float64(s.bytes-s.rateBytes) / dt
			s.rateAt, s.rateFrames, s.rateBytes = now, s.frames, s.bytes
		}
	}
}

// renditionInfosLocked lists the channel's renditions for /api/channels:
// the main picture first (when it has a frame), then the others, widest
// first.
func (c *channel) renditionInfosLocked(now time.Time) []protocol.RenditionInfo {
	out := []protocol.RenditionInfo{}
	age := func(f *frame) float64 {
		if f == nil {
			return -1
		}
		return round2(float64(now.Sub(f.received)) / float64(time.Millisecond))
	}
	if f := c.latest; f != nil {
		subs := len(c.subs)
		if c.rv != nil {
			subs = len(c.rv.main)
		}
		out = append(out, protocol.RenditionInfo{Name: protocol.RenditionMainName, Live: c.pub != nil, Width: f.hdr.Width,
			Height: f.hdr.Height, FPS: round2(c.fps), BitrateBPS: round2(c.bitrate), Subscribers: subs, Frames: c.frames,
			Seq: f.hdr.Seq, LastFrameAgeMS: age(f)})
	}
	if c.rv == nil {
		return out
	}
	n := len(out)
	for r, s := range c.rv.streams {
		in := protocol.RenditionInfo{Name: r.String(), Live: s.pub != nil, Width: uint32(r), FPS: round2(s.fps),
			BitrateBPS: round2(s.bitrate), Subscribers: len(s.subs), Frames: s.frames, LastFrameAgeMS: age(s.latest)}
		if f := s.latest; f != nil {
			in.Height, in.Seq = f.hdr.Height, f.hdr.Seq
		}
		out = append(out, in)
	}
	slices.SortFunc(out[n:], func(a, b protocol.RenditionInfo) int { return int(b.Width) - int(a.Width) })
	return out
}

// RenditionCounters are one rendition's figures, in ChannelCounters.
type RenditionCounters struct {
	Name        string // "main" or the width
	FramesIn    uint64
	BytesIn     uint64
	Subscribers int // readers receiving it now
}

// renditionCountersLocked returns each rendition's counters, main first,
// when the channel has renditions (nil otherwise: its counters say all).
func (c *channel) renditionCountersLocked() []RenditionCounters {
	if c.rv == nil {
		return nil
	}
	out := []RenditionCounters{{Name: protocol.RenditionMainName, FramesIn: c.frames, BytesIn: c.bytes, Subscribers: len(c.rv.main)}}
	for r, s := range c.rv.streams {
		out = append(out, RenditionCounters{Name: r.String(), FramesIn: s.frames, BytesIn: s.bytes, Subscribers: len(s.subs)})
	}
	return out
}

// sendOrder keeps a reader from going back in time when it is moved to
// another rendition: the first frame sent of the new rendition must have
// been captured no earlier than the last frame sent, or switchWait must
// have passed since a frame was first held back. Owned by the reader's
// writer.
type sendOrder struct {
	sent      bool
	rendition protocol.Rendition // of the last frame sent…
	capture   int64              // …and its capture time
	heldSince time.Time          // when a frame of another rendition was first held back; zero: none
}

// admit reports whether f may be sent now, and if so records it. A frame
// of the rendition last sent always may: the cost on the common path is
// one comparison.
func (o *sendOrder) admit(f *frame) bool {
	if o.sent && f.hdr.Rendition != o.rendition && f.hdr.CaptureTime < o.capture {
		now := time.Now()
		if o.heldSince.IsZero() {
			o.heldSince = now
		}
		if now.Sub(o.heldSince) < switchWait {
			return false
		}
	}
	o.sent, o.rendition, o.capture, o.heldSince = true, f.hdr.Rendition, f.hdr.CaptureTime, time.Time{}
	return true
}

// newSwitchCap returns a subscriber's budget of rendition switches.
func newSwitchCap() ratelimit.Bucket { return ratelimit.NewBucket(switchRate, switchBurst) }

// takeRendition makes p, a publisher of one rendition alone, its
// rendition's publisher (telling the one it replaces, if that one publishes
// nothing else), and counts it; leave undoes it. It fails past the
// channel's limit of renditions.
func (h *Hub) takeRendition(p localPublisher) (leave func(), err error) {
	lp := p.local()
	old, err := lp.ch.claimRendition(p, lp.rend.only, h.cfg.MaxRenditions)
	if err != nil {
		return func() {}, err
	}
	h.counters.PublishersConnected.Add(1)
	h.publishers.Add(1)
	h.tellTaken(old, lp.ch, lp.rend.only)
	return func() {
		if u, ok := p.(*upload); ok && u.via == protocol.UploadSnapshot {
			lp.ch.keepRenditions(p) // a snapshot's frame stays, as the main picture's does
		} else {
			for _, f := range lp.ch.releaseRenditions(p) {
				h.retire(f)
			}
		}
		h.publishers.Add(-1)
	}, nil
}

// tellTaken tells a publisher that a newer one took rendition r of ch: a
// publisher of r alone is ended as replaced; one that also publishes the
// main picture goes on without r (logged).
func (h *Hub) tellTaken(old publisherConn, ch *channel, r protocol.Rendition) {
	if old == nil {
		return
	}
	if lp, ok := old.(localPublisher); ok && lp.local().rend.only == protocol.RenditionMain {
		h.logs.Log(slog.LevelInfo, "rendition-taken:"+ch.name, "a newer publisher took a rendition; the older one's frames of it are dropped",
			slog.String("channel", ch.name), slog.String("rendition", r.String()), slog.String("remote", lp.remoteAddr()))
		return
	}
	old.replaced()
}

// publishRendition publishes f, a rendition frame of local publisher p, as
// publishFrame does a main frame (see there), after the set rule for a
// publisher that also sends the main picture, and offers it to the bus.
func (h *Hub) publishRendition(p localPublisher, f *frame) (released *frame, ok bool, err error) {
	lp := p.local()
	rp := &lp.rend
	if rp.only != protocol.RenditionMain && f.hdr.Rendition != rp.only {
		return f, true, fmt.Errorf("%w: a publisher of rendition %v sent a frame of %v", errBadRendition, rp.only, f.hdr.Rendition)
	}
	if rp.only == protocol.RenditionMain && (!rp.haveMain || f.hdr.Seq != rp.mainSeq || f.hdr.CaptureTime != rp.mainAt) {
		return f, true, fmt.Errorf("%w: rendition %v frame %d (captured %d) does not follow its main frame (the last main frame sent: %d, captured %d)",
			errBadRendition, f.hdr.Rendition, f.hdr.Seq, f.hdr.CaptureTime, rp.mainSeq, rp.mainAt)
	}
	if rp.only == protocol.RenditionMain && slices.Contains(rp.inSet, f.hdr.Rendition) {
		return f, true, fmt.Errorf("%w: rendition %v sent twice after main frame %d: a frame has one copy of each size",
			errBadRendition, f.hdr.Rendition, f.hdr.Seq)
	}
	released, taken, ok, err := lp.ch.publishRendition(p, rp.only, f, h.cfg.MaxRenditions)
	if ok && err == nil && rp.only == protocol.RenditionMain {
		rp.inSet = append(rp.inSet, f.hdr.Rendition)
	}
	h.tellTaken(taken, lp.ch, f.hdr.Rendition)
	if ok && err == nil && h.link != nil {
		h.link.offerRendition(p, f)
	}
	if errors.Is(err, errTooManyRenditions) && errors.Is(err, errNotRelayed) {
		// The main picture goes on; the rendition past the limit does not.
		h.refuse(reasonTooManyRenditions, p.remoteAddr(), "rendition past the channel's limit not relayed",
			slog.String("channel", lp.ch.name), slog.String("rendition", f.hdr.Rendition.String()))
	}
	return released, ok, err
}

// noteMain records a main frame a publisher sent, for the set rule.
func (rp *renditionPart) noteMain(f *frame) {
	rp.mainSeq, rp.mainAt, rp.haveMain = f.hdr.Seq, f.hdr.CaptureTime, true
	rp.inSet = rp.inSet[:0]
}

// offerRendition hands the bus a rendition frame that local publisher p
// published: under p's claim when p holds the main picture, else under
// the claim of the local publisher that does (a rendition published on a
// hub without its channel's main publisher stays on that hub).
func (l *busLink) offerRendition(p localPublisher, f *frame) {
	lp := p.local()
	var claim Claim
	l.mu.Lock()
	if bc := l.chans[lp.ch.name]; bc != nil && bc.local != nil {
		claim = bc.local.local().claim
	}
	l.mu.Unlock()
	if claim != (Claim{}) {
		l.bus.Publish(lp.ch.name, claim, f.msg)
	}
}

// releaseBusRenditionsLocked lets go of the renditions the bus fed into
// bc's channel (its claim changed or its interest ended). Called with l.mu
// held.
func (l *busLink) releaseBusRenditionsLocked(bc *busChan) {
	if bc.fed == nil {
		return
	}
	for _, f := range bc.fed.releaseRenditions(fromBus) {
		l.h.retire(f)
	}
	bc.rorder = nil
}

// renditionFromQuery reads a publisher's ?rendition= (at most once): the
// one rendition it publishes, or the main picture (and any renditions it
// sends with it) without one. A bad value is answered 400.
func (h *Hub) renditionFromQuery(w http.ResponseWriter, r *http.Request) (protocol.Rendition, bool) {
	v, ok := r.URL.Query()[protocol.QueryRendition]
	if !ok {
		return protocol.RenditionMain, true
	}
	var only protocol.Rendition
	err := fmt.Errorf("%s given %d times", protocol.QueryRendition, len(v))
	if len(v) == 1 {
		only, err = protocol.ParseRendition(v[0])
	}
	if err != nil {
		h.refuseRequest(w, r, reasonBadQuery, err.Error(), slog.String("error", truncate(err.Error(), 100)))
		return 0, false
	}
	return only, true
}
