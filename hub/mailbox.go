package hub

import (
	"sync/atomic"

	"framehub/internal/newest"
)

// mailbox is a reader's one-slot inbox, the step of a frame's path between
// publish (publish.go) and the reader's writer (writer.go for WebSocket
// subscribers, mjpeg.go for MJPEG readers). A publisher puts the newest
// frame in it without ever waiting; a frame not yet taken when the next one
// arrives is overwritten and counted: a newest.Slot, with what the hub
// counts of its reader beside it. Safe for concurrent use by one or more
// publishers and one taker.
type mailbox struct {
	// Static after construction.
	kind readerKind
	wake chan struct{} // capacity 1: "look at the slot"; a WebSocket subscriber's is its connection's

	slot      newest.Slot[frame]
	writer    atomic.Pointer[idleWriter] // a WebSocket subscriber's writer, kicked by each put (idlewriter.go); nil for others
	delivered atomic.Uint64              // frames the taker has sent on
	bytes     atomic.Uint64              // bytes the taker has sent on
	passed    atomic.Uint64              // frames the taker took and did not send: older than the last it sent (rendition.go)
}

// readerKind is what reads a mailbox.
type readerKind uint8

const (
	readerWS    readerKind = iota // a WebSocket subscriber
	readerMJPEG                   // an HTTP MJPEG stream
	readerWait                    // a snapshot waiting for a frame
)

var readerNames = [...]string{"websocket", "mjpeg", "snapshot"}

func (k readerKind) String() string { return readerNames[k] }

// newMailbox returns an empty mailbox that wakes its taker on wake, or on
// a channel of its own if wake is nil.
func newMailbox(kind readerKind, wake chan struct{}) *mailbox {
	if wake == nil {
		wake = make(chan struct{}, 1)
	}
	m := &mailbox{kind: kind, wake: wake}
	m.slot.Init(wake)
	return m
}

// sent records a frame the taker wrote: n bytes, ending now.
func (m *mailbox) sent(n int) {
	m.delivered.Add(1)
	m.bytes.Add(uint64(n))
}

// put stores f as the newest frame and wakes the taker (starting a
// subscriber's writer if none runs). The frame it replaces is still the
// channel's (as its newest or the one before), so nothing is given back
// here.
func (m *mailbox) put(f *frame) {
	m.slot.Put(f)
	m.writer.Load().kick()
}

// waiting reports whether the slot holds a frame not yet taken.
func (m *mailbox) waiting() bool { return m.slot.Waiting() }

// take empties the slot and returns what it held, or nil.
func (m *mailbox) take() *frame { return m.slot.Take() }

// pass records a frame the taker took and did not send because it was not
// newer than the last one sent (after a move to another rendition).
func (m *mailbox) pass() { m.passed.Add(1) }

// overwritten returns how many frames were replaced before the taker took
// them, or taken and passed over: the reader's skipped frames.
func (m *mailbox) overwritten() uint64 { return m.slot.Overwritten() + m.passed.Load() }
