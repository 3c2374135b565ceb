package hub

// The order rule for frames from the bus.
//
// A frame of the channel's winning claim is relayed if its sequence number
// is above the last one relayed: so no subscriber gets a frame twice, or
// an older one after a newer one, when the bus delivers out of order (a
// join's answer on the hub's inbox racing the live frames). But a
// sequence number is the publisher's to set, and one frame numbered
// 2^64−1 (forged on the bus with a copy of the public claim, or sent by a
// publisher that counts oddly) would make every later frame of the same
// claim "not newer", forever. Nor is it always hostile: a processing
// worker numbers its output by its input's numbers, so when the input's
// publisher restarts from 1, the worker's claim goes on with lower numbers.
//
// So a claim's numbers cannot lock out its own later frames: frames that
// are not newer are dropped (counted stale) only up to seqRestartAfter in a
// row; the next one is relayed and the order starts anew from its number
// (counted as a restart, logged at a bounded rate). Out-of-order delivery
// on the bus puts one frame, at most two, behind a newer one before the
// next newer frame arrives, so a real stream is never restarted by it; a
// stream whose numbers went back recovers within seqRestartAfter frames.

// seqRestartAfter is how many frames in a row, none newer than the last
// relayed, the order rule drops before it relays the next one and starts
// anew from its number.
const seqRestartAfter = 2

// seqOrder is the order state of one stream of frames from the bus: one
// claim's frames of one channel (each rendition of a channel would have its
// own). Its zero value has relayed nothing. Not safe for concurrent use:
// busLink.mu guards it.
type seqOrder struct {
	taken  bool   // a frame has been relayed…
	last   uint64 // …and this was its sequence number
	behind int    // frames dropped in a row since, as not newer
}

// admit decides whether a frame numbered seq is relayed, and records it if
// so. restarted reports that the frame is relayed although it is not
// newer: the stream's numbers went back, and the order starts anew.
func (o *seqOrder) admit(seq uint64) (ok, restarted bool) {
	switch {
	case !o.taken || seq > o.last:
	case o.behind < seqRestartAfter:
		o.behind++
		return false, false
	default:
		restarted = true
	}
	*o = seqOrder{taken: true, last: seq}
	return true, restarted
}
