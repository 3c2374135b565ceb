package hub

// Publishing: the middle of a frame's path. A frame accepted from a
// publisher (receive.go), an upload (ingest.go) or the bus (bus.go)
// becomes the newest of its channel, and is put in the mailbox of each of
// the channel's readers (mailbox.go), whose writers send it on (writer.go,
// mjpeg.go). A channel holds its newest frame and the one before it (which
// a slow reader may still be sending); when it lets go of a frame, the
// frame is retired: its memory goes back to the budget and its memory file
// (sendfile.go) is closed once no send uses it.

import "framehub/protocol"

// publishFrame makes f the newest frame of p's channel (of its rendition:
// see rendition.go) and, on a clustered hub, offers it to the bus. A
// publisher that a newer one (here or on another hub) has replaced
// publishes nothing more: f comes back to be retired, ok is false, and the
// caller stops reading it. err is errNotRelayed for a frame not relayed
// while the publisher goes on, or a refusal that ends it (refusalOf names
// its reason). The caller retires released.
func (h *Hub) publishFrame(p localPublisher, f *frame) (released *frame, ok bool, err error) {
	lp := p.local()
	if f.hdr.Rendition != protocol.RenditionMain || lp.rend.only != protocol.RenditionMain {
		return h.publishRendition(p, f)
	}
	if h.link != nil && !h.link.offer(p, f) {
		return f, false, nil
	}
	released, ok = lp.ch.publishFrom(publisherConn(p), f)
	if ok {
		lp.rend.noteMain(f)
		h.book.observe(lp.ch.name, f, true) // after its readers have it
	}
	return released, ok, nil
}

// publish makes f the newest frame and offers it to every reader. It
// never waits for a reader: each offer is an atomic swap and a
// non-blocking wake-up, and allocates nothing. It returns the frame that
// is no longer held (the one before the previous newest), for the caller
// to retire.
func (c *channel) publish(f *frame) (released *frame) {
	c.mu.Lock()
	released = c.publishLocked(f)
	c.mu.Unlock()
	return released
}

// publishFrom is publish for a frame from publisher p, which must still be
// the channel's: a replaced publisher's frames (those it sends before it
// sees its close, or never reading, keeps sending) are not published; f
// is returned, for the caller to retire, and ok is false. Checked under
// the lock that a takeover takes, so no frame of the old publisher
// follows one of the new.
func (c *channel) publishFrom(p publisherConn, f *frame) (released *frame, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub != p {
		return f, false
	}
	return c.publishLocked(f), true
}

func (c *channel) publishLocked(f *frame) (released *frame) {
	released, c.prev, c.latest = c.prev, c.latest, f
	c.frames++
	c.bytes += uint64(len(f.msg))
	readers, ws := c.subs, c.wsSubs
	if c.rv != nil {
		// Some readers get another rendition (rendition.go).
		readers, ws = c.mainReadersLocked(f)
	}
	f.fanout = ws // before any writer sees f
	for m := range readers {
		m.put(f)
	}
	return released
}

// retirePrev lets go of the frame before the newest, as its publisher
// starts reading the next frame (which will replace it), and returns it
// for the caller to retire, or nil. A publisher streaming frames of one
// size so needs no more budget than its channel already holds.
func (c *channel) retirePrev() *frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.prev
	c.prev = nil
	return f
}

// retire gives back what a frame the hub no longer holds was charged: its
// bytes to the memory budget, its reference to its memory file. Readers
// that took it from their mailbox may still send it (from memory, or from
// a file they hold a reference to). f may be nil.
func (h *Hub) retire(f *frame) {
	if f == nil {
		return
	}
	h.mem.release(f.size)
	h.zc.retire(f)
}

// join adds a reader's mailbox to the named channel, as a reader of what
// w asks for (the zero value: the main picture), and, on a clustered hub,
// tells the bus the hub has a reader for it.
func (h *Hub) join(name string, m *mailbox, w protocol.RenditionWant) *channel {
	c := h.table.join(name, m, w)
	if h.link != nil {
		h.link.watch(name)
	}
	return c
}

// leave undoes join.
func (h *Hub) leave(c *channel, m *mailbox) {
	h.table.leave(c, m)
	if h.link != nil {
		h.link.unwatch(c)
	}
}
