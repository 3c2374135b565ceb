package cluster

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"framehub/hub"
	"framehub/protocol"
)

// envelope is what a frame message's NATS headers say about it.
type envelope struct {
	channel string
	claim   hub.Claim
	chunked bool
	frame   uint64 // chunked only: the sender's frame ID
	part    int    // 0-based
	parts   int
	size    int // the whole frame's bytes
}

// parseEnvelope reads and checks a frame message's headers. maxFrame is
// the largest frame the hub accepts.
func parseEnvelope(h nats.Header, maxFrame int) (envelope, error) {
	var e envelope
	e.channel = h.Get(hdrChannel)
	if !protocol.ValidChannelName(e.channel) {
		return e, fmt.Errorf("bad %s %q", hdrChannel, trunc(e.channel, 80))
	}
	e.claim.Hub = h.Get(hdrHub)
	if !idRe.MatchString(e.claim.Hub) {
		return e, fmt.Errorf("bad %s %q", hdrHub, trunc(e.claim.Hub, 80))
	}
	var err error
	if e.claim.Gen, err = strconv.ParseUint(h.Get(hdrGen), 10, 64); err != nil || e.claim.Gen == 0 {
		return e, fmt.Errorf("bad %s %q", hdrGen, trunc(h.Get(hdrGen), 30))
	}
	if h.Get(hdrParts) == "" {
		return e, nil
	}
	e.chunked = true
	num := func(key string, lo, hi int) (int, error) {
		v, err := strconv.Atoi(h.Get(key))
		if err != nil || v < lo || v > hi {
			return 0, fmt.Errorf("bad %s %q: want %d to %d", key, trunc(h.Get(key), 30), lo, hi)
		}
		return v, nil
	}
	if e.frame, err = strconv.ParseUint(h.Get(hdrFrame), 10, 64); err != nil {
		return e, fmt.Errorf("bad %s %q", hdrFrame, trunc(h.Get(hdrFrame), 30))
	}
	if e.parts, err = num(hdrParts, 2, maxParts); err != nil {
		return e, err
	}
	if e.part, err = num(hdrPart, 0, e.parts-1); err != nil {
		return e, err
	}
	if e.size, err = num(hdrSize, protocol.HeaderLen, maxFrame); err != nil {
		return e, err
	}
	return e, nil
}

// errBadChunk marks a chunk that does not fit its frame.
var errBadChunk = errors.New("chunk does not fit its frame")

// partial is a frame whose chunks are arriving.
type partial struct {
	channel string
	claim   hub.Claim
	frame   uint64
	parts   int
	size    int
	chunk   int // size of every chunk but the last
	next    int // index of the chunk expected next
	got     int // bytes arrived
	data    [][]byte
	charged int64 // bytes reserved from the hub's budget
	started time.Time
}

// complete is a whole frame ready for the hub, and the budget it holds.
type complete struct {
	claim   hub.Claim
	parts   [][]byte
	charged int64
}

// rendition is the frame's rendition, read from its header in its first
// part (the main picture's for a part too short: the hub refuses it).
func (c *complete) rendition() protocol.Rendition {
	if len(c.parts) == 0 {
		return protocol.RenditionMain
	}
	return protocol.PeekRendition(c.parts[0])
}

// maxHeld bounds the renditions a feed holds a frame of at once: the main
// picture and more renditions than a hub lets a channel have.
const maxHeld = 8

// assembler reassembles chunked frames with bounded memory and time: at
// most max frames at once (one per sender, keyed by the caller), each
// charged to the hub's budget as its chunks arrive, never by what a header
// declares. Chunks of one frame arrive in order (NATS keeps a publisher's
// order), so a gap means a lost chunk. Not safe for concurrent use.
type assembler struct {
	max     int
	timeout time.Duration
	parts   map[string]*partial
	orphan  map[string]uint64 // last frame whose chunks came without their start, per key
}

func newAssembler(max int, timeout time.Duration) *assembler {
	return &assembler{max: max, timeout: timeout, parts: make(map[string]*partial), orphan: make(map[string]uint64)}
}

// add files one chunk under key and returns the frame it completes, if
// any. Refusals are reported to n; memory is charged to n.
func (a *assembler) add(n hub.BusNode, ch, key string, e envelope, data []byte, now time.Time) *complete {
	p := a.parts[key]
	if e.part == 0 {
		if p != nil {
			a.drop(n, ch, key, hub.BusIncomplete, "a newer frame started before it was complete")
		}
		chunk := len(data)
		if chunk == 0 || chunk >= e.size || (e.size+chunk-1)/chunk != e.parts {
			n.Refused(ch, hub.BusBadChunk, fmt.Sprintf("first chunk of %d bytes for %d parts of a %d-byte frame", chunk, e.parts, e.size))
			return nil
		}
		if len(a.parts) >= a.max {
			a.dropOldest(n, ch)
		}
		if !n.Reserve(int64(chunk)) {
			n.Refused(ch, hub.BusOverBudget, "chunk of "+strconv.Itoa(chunk)+" bytes")
			return nil
		}
		delete(a.orphan, key)
		a.parts[key] = &partial{channel: ch, claim: e.claim, frame: e.frame, parts: e.parts, size: e.size, chunk: chunk,
			next: 1, got: chunk, data: [][]byte{data}, charged: int64(chunk), started: now}
		return nil
	}
	if p == nil || p.frame != e.frame || p.claim != e.claim {
		if p != nil {
			a.drop(n, ch, key, hub.BusIncomplete, "chunks of another frame arrived before it was complete")
		}
		if last, seen := a.orphan[key]; !seen || last != e.frame {
			a.orphan[key] = e.frame // counted once per frame, not per chunk
			if len(a.orphan) > 4*a.max {
				clear(a.orphan)
			}
			n.Refused(ch, hub.BusIncomplete, "chunk "+strconv.Itoa(e.part)+" of a frame whose start was not received")
		}
		return nil
	}
	last := e.part == p.parts-1
	switch {
	case e.parts != p.parts || e.size != p.size:
		a.drop(n, ch, key, hub.BusBadChunk, fmt.Sprintf("chunk says %d parts of %d bytes; the frame's first said %d of %d", e.parts, e.size, p.parts, p.size))
		return nil
	case e.part != p.next:
		a.drop(n, ch, key, hub.BusIncomplete, fmt.Sprintf("chunk %d arrived after chunk %d", e.part, p.next-1))
		return nil
	case !last && len(data) != p.chunk, last && p.got+len(data) != p.size:
		a.drop(n, ch, key, hub.BusBadChunk, fmt.Sprintf("chunk %d of %d has %d bytes", e.part, p.parts, len(data)))
		return nil
	case now.Sub(p.started) > a.timeout:
		a.drop(n, ch, key, hub.BusIncomplete, "chunks arrived too slowly")
		return nil
	}
	if !n.Reserve(int64(len(data))) {
		a.drop(n, ch, key, hub.BusOverBudget, "chunk of "+strconv.Itoa(len(data))+" bytes")
		return nil
	}
	p.charged += int64(len(data))
	p.got += len(data)
	p.data = append(p.data, data)
	p.next++
	if !last {
		return nil
	}
	delete(a.parts, key)
	return &complete{claim: p.claim, parts: p.data, charged: p.charged}
}

// drop forgets the frame under key, counting why.
func (a *assembler) drop(n hub.BusNode, ch, key string, why hub.BusRefusal, detail string) {
	if p := a.parts[key]; p != nil {
		delete(a.parts, key)
		n.Release(p.charged)
		n.Refused(ch, why, detail)
	}
}

func (a *assembler) dropOldest(n hub.BusNode, ch string) {
	var oldest string
	var at time.Time
	for k, p := range a.parts {
		if oldest == "" || p.started.Before(at) {
			oldest, at = k, p.started
		}
	}
	a.drop(n, ch, oldest, hub.BusIncomplete, "too many frames being reassembled at once")
}

// expire drops frames not complete within the timeout.
func (a *assembler) expire(n hub.BusNode, now time.Time) {
	for k, p := range a.parts {
		if now.Sub(p.started) > a.timeout {
			delete(a.parts, k)
			n.Release(p.charged)
			n.Refused(p.channel, hub.BusIncomplete, fmt.Sprintf("frame not complete within %v (%d of %d chunks)", a.timeout, p.next, p.parts))
		}
	}
}

// dropAll forgets every frame, uncounted (the channel is no longer read).
func (a *assembler) dropAll(n hub.BusNode) {
	for k, p := range a.parts {
		delete(a.parts, k)
		n.Release(p.charged)
	}
}

// feed receives one watched channel's frames.
type feed struct {
	b       *Bus
	channel string
	sub     *nats.Subscription // guarded by b.mu; set by the control loop

	mu  sync.Mutex
	asm *assembler // by sender
	// held is the newest complete frame of each rendition, waiting for the
	// messages behind it, in the order they became held.
	held   []*complete
	seen   hub.Claim // the newest claim heard of for the channel
	closed bool
}

func newFeed(b *Bus, ch string) *feed {
	return &feed{b: b, channel: ch, asm: newAssembler(2, b.cfg.ReassemblyTimeout)}
}

// onMsg handles a message on the channel's frame subject, in the NATS
// client's goroutine for this subscription. A complete frame goes to the
// hub only if no message waits behind it; otherwise it is held, and a
// newer complete frame of the same rendition replaces it (the older is
// counted as skipped). The frames held go to the hub, oldest first, once
// nothing waits.
func (f *feed) onMsg(m *nats.Msg) {
	b := f.b
	if !b.enter() {
		return
	}
	defer b.exit()
	e, err := parseEnvelope(m.Header, b.node.MaxFrameBytes())
	switch {
	case err != nil:
	case e.channel != f.channel:
		err = fmt.Errorf("%s %q on the subject of channel %q", hdrChannel, e.channel, f.channel)
	case e.claim.Hub == b.id:
		err = errors.New("a frame that says it comes from this hub")
	}
	if err != nil {
		b.node.Refused(f.channel, hub.BusBadEnvelope, err.Error())
		return
	}
	now := time.Now()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	var done *complete
	if e.chunked {
		done = f.asm.add(b.node, f.channel, e.claim.Hub, e, m.Data, now)
	} else if b.node.Reserve(int64(len(m.Data))) {
		done = &complete{claim: e.claim, parts: [][]byte{m.Data}, charged: int64(len(m.Data))}
	} else {
		b.node.Refused(f.channel, hub.BusOverBudget, "frame of "+strconv.Itoa(len(m.Data))+" bytes")
	}
	if done != nil {
		f.hold(done)
		if f.seen.Compare(done.claim) < 0 {
			f.seen = done.claim
		}
	}
	var deliver []*complete
	if len(f.held) > 0 {
		// Pending counts the message being handled too.
		if n, _, err := m.Sub.Pending(); err != nil || n <= 1 {
			deliver, f.held = f.held, nil
		}
	}
	f.mu.Unlock()
	for _, d := range deliver {
		b.node.Receive(f.channel, d.claim, d.parts)
		b.node.Release(d.charged)
	}
}

// hold keeps done as the newest frame of its rendition, replacing (and
// counting as skipped) one held before; past maxHeld renditions the
// oldest held frame goes. Called with f.mu held.
func (f *feed) hold(done *complete) {
	b, r := f.b, done.rendition()
	for i, h := range f.held {
		if h.rendition() == r {
			b.counters.skippedIn.Add(1)
			b.node.Release(h.charged)
			f.held = append(f.held[:i], f.held[i+1:]...)
			break
		}
	}
	if len(f.held) == maxHeld {
		b.counters.skippedIn.Add(1)
		b.node.Release(f.held[0].charged)
		f.held = append(f.held[:0], f.held[1:]...)
	}
	f.held = append(f.held, done)
}

// expire drops frames that did not arrive whole in time.
func (f *feed) expire(n hub.BusNode, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asm.expire(n, now)
}

// close releases what the feed holds; it receives nothing more.
func (f *feed) close(n hub.BusNode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	f.asm.dropAll(n)
	for _, h := range f.held {
		n.Release(h.charged)
	}
	f.held = nil
}

// noteDropped keeps the count of messages a subscription dropped once it
// is gone.
func (b *Bus) noteDropped(sub *nats.Subscription) {
	if n, err := sub.Dropped(); err == nil && n > 0 {
		b.counters.droppedGone.Add(uint64(n))
	}
}

// inboxState reassembles what arrives on this hub's inbox: newest frames
// of channels it has just joined.
type inboxState struct {
	mu    sync.Mutex
	parts *assembler // by channel and sender
}

// onInbox handles a message on this hub's inbox and relays a complete
// frame at once (the hub drops it if a newer one came first).
func (b *Bus) onInbox(m *nats.Msg) {
	if len(m.Data) == 0 && m.Header.Get("Status") != "" {
		return // the server's "no responders" to a join nobody holds the channel for
	}
	if !b.enter() {
		return
	}
	defer b.exit()
	e, err := parseEnvelope(m.Header, b.node.MaxFrameBytes())
	if err == nil && e.claim.Hub == b.id {
		err = errors.New("a frame that says it comes from this hub")
	}
	if err != nil {
		b.node.Refused(e.channel, hub.BusBadEnvelope, "inbox: "+err.Error())
		return
	}
	var done *complete
	if e.chunked {
		b.inbox.mu.Lock()
		done = b.inbox.parts.add(b.node, e.channel, e.channel+"/"+e.claim.Hub, e, m.Data, time.Now())
		b.inbox.mu.Unlock()
	} else {
		done = &complete{claim: e.claim, parts: [][]byte{m.Data}}
	}
	if done == nil {
		return
	}
	b.mu.Lock()
	if f := b.feeds[e.channel]; f != nil {
		f.mu.Lock()
		if f.seen.Compare(done.claim) < 0 {
			f.seen = done.claim
		}
		f.mu.Unlock()
	}
	b.mu.Unlock()
	b.node.Receive(e.channel, done.claim, done.parts)
	b.node.Release(done.charged)
}
