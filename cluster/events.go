package cluster

import (
	"sync"
)

// Events. The hub whose publisher holds a channel publishes that channel's
// event notices (protocol.EventInfo JSON: each start and end) on
// P.event.C, for whoever wants to act on them: another service subscribes
// to P.event.> with any NATS client. Hubs do not subscribe: each one reads
// events from the frames it relays. Notices are sent by their own
// goroutine from a bounded queue (oldest dropped, counted), so the hub
// never waits on the network for them, and one that cannot be sent (no
// connection: the client buffers nothing) is dropped and counted.

// eventQueue bounds the notices waiting to be sent.
const eventQueue = 256

// eventOutbox holds notices waiting to be sent.
type eventOutbox struct {
	mu      sync.Mutex
	queue   []eventNotice
	dropped uint64 // from a full queue, or failed to send
	sent    uint64
	wake    chan struct{} // capacity 1
}

type eventNotice struct {
	channel string
	body    []byte
}

// event returns the subject of channel's event notices.
func (s subjects) event(ch string) string { return s.prefix + ".event." + ch }

// PublishEvent queues an event notice of a channel a local publisher
// holds; it never blocks. It implements the hub's eventBus.
func (b *Bus) PublishEvent(channel string, notice []byte) {
	o := &b.events
	o.mu.Lock()
	if len(o.queue) >= eventQueue {
		o.queue = o.queue[1:]
		o.dropped++
	}
	o.queue = append(o.queue, eventNotice{channel, notice})
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// eventSender sends queued notices until Close.
func (b *Bus) eventSender() {
	o := &b.events
	for {
		select {
		case <-b.stop:
			return
		case <-o.wake:
		}
		o.mu.Lock()
		q := o.queue
		o.queue = nil
		o.mu.Unlock()
		for _, n := range q {
			err := b.nc.Publish(b.subj.event(n.channel), n.body)
			o.mu.Lock()
			if err != nil {
				o.dropped++
			} else {
				o.sent++
			}
			o.mu.Unlock()
		}
	}
}

// eventCounts returns the notices sent and dropped.
func (b *Bus) eventCounts() (sent, dropped uint64) {
	b.events.mu.Lock()
	defer b.events.mu.Unlock()
	return b.events.sent, b.events.dropped
}
