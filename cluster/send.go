package cluster

import (
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"framehub/hub"
	"framehub/protocol"
)

// outItem is a frame waiting to be sent to one subject.
type outItem struct {
	subject   string // P.frame.C, or a hub's inbox
	channel   string
	rendition protocol.Rendition // the frame's, from its header
	claim     hub.Claim
	msg       []byte // the frame's bytes, immutable
}

// outbox holds at most one frame per subject, channel and rendition (a
// newest.Slot each, in effect, but keyed, with the keys in the order they
// became pending so that one sender serves every channel in turn): a newer
// frame replaces one of the same rendition not yet sent, so the sender
// always sends the newest, and a frame's renditions, which follow it at
// once, do not replace it. Safe for concurrent use.
type outbox struct {
	mu    sync.Mutex
	items map[string]*outItem
	order []string // keys in the order they became pending
}

// put files it and reports whether it replaced a frame not yet sent.
func (o *outbox) put(it *outItem) (replaced bool) {
	key := it.subject + " " + it.channel + " " + it.rendition.String()
	o.mu.Lock()
	defer o.mu.Unlock()
	_, replaced = o.items[key]
	if !replaced {
		o.order = append(o.order, key)
	}
	o.items[key] = it
	return replaced
}

// pop takes the frame pending longest, or nil.
func (o *outbox) pop() *outItem {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.order) == 0 {
		return nil
	}
	key := o.order[0]
	o.order = o.order[1:]
	if len(o.order) == 0 {
		o.order = nil // let the backing array go
	}
	it := o.items[key]
	delete(o.items, key)
	return it
}

// Publish offers a local publisher's frame to the hubs that want its
// channel. It never blocks: the frame waits in the channel's slot for the
// sender, replacing one not yet sent.
func (b *Bus) Publish(channel string, c hub.Claim, msg []byte) {
	now := time.Now()
	b.mu.Lock()
	cl := b.claims[channel]
	send := cl != nil && cl.a.Claim == c && !b.closed && cl.wanted(now)
	b.mu.Unlock()
	if send {
		b.queue(&outItem{subject: b.subj.frame(channel), channel: channel, rendition: protocol.PeekRendition(msg), claim: c, msg: msg})
	}
}

// queue files an item for the sender and wakes it.
func (b *Bus) queue(it *outItem) {
	if b.out.put(it) {
		b.counters.skippedOut.Add(1)
	}
	select {
	case b.sendKick <- struct{}{}:
	default:
	}
}

// sender sends pending frames, oldest pending first, until Close. It is
// the only goroutine that sends frames, so a slow link to the server holds
// up the bus alone, never a publisher.
func (b *Bus) sender() {
	for {
		select {
		case <-b.stop:
			return
		case <-b.sendKick:
		}
		for {
			select {
			case <-b.stop:
				return
			default:
			}
			it := b.out.pop()
			if it == nil {
				break
			}
			b.send(it)
		}
	}
}

// send publishes one frame: whole if it fits in a message, else in chunks
// of the largest message the server takes, less headroom for headers.
func (b *Bus) send(it *outItem) {
	if !b.nc.IsConnected() {
		b.counters.failedOut.Add(1)
		return
	}
	room := b.maxMessage() - headroom
	if len(it.msg) <= room {
		if b.nc.PublishMsg(b.frameMsg(it, it.msg)) != nil {
			b.counters.failedOut.Add(1)
			return
		}
	} else {
		parts := (len(it.msg) + room - 1) / room
		if parts > maxParts {
			b.counters.failedOut.Add(1)
			return
		}
		id := strconv.FormatUint(b.frameID.Add(1), 10)
		size, nparts := strconv.Itoa(len(it.msg)), strconv.Itoa(parts)
		for i := range parts {
			m := b.frameMsg(it, it.msg[i*room:min((i+1)*room, len(it.msg))])
			m.Header.Set(hdrFrame, id)
			m.Header.Set(hdrPart, strconv.Itoa(i))
			m.Header.Set(hdrParts, nparts)
			m.Header.Set(hdrSize, size)
			if b.nc.PublishMsg(m) != nil {
				b.counters.failedOut.Add(1)
				return
			}
		}
		b.counters.chunkedOut.Add(1)
	}
	b.counters.framesOut.Add(1)
	b.counters.bytesOut.Add(uint64(len(it.msg)))
}

func (b *Bus) frameMsg(it *outItem, data []byte) *nats.Msg {
	m := nats.NewMsg(it.subject)
	m.Header.Set(hdrChannel, it.channel)
	m.Header.Set(hdrHub, it.claim.Hub)
	m.Header.Set(hdrGen, strconv.FormatUint(it.claim.Gen, 10))
	m.Data = data
	return m
}
