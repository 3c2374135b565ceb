package protocol

import "time"

// Readers count gaps in sequence numbers as frames skipped on the way (by
// the publisher, the hub or the network, for freshness). But a sequence
// number is the publisher's to set: one that counts anew goes back, and a
// broken or forged one can jump to 2^64−1, which made every reader report
// some 1.8e19 skipped frames for good. SkippedFrames is the rule every
// reader applies (Go's Stats, the page's player, the Python client's
// Subscriber; the cases in testdata/skipped.json keep them in step).

// MaxCaptureFPS and SkipSlack bound the frames a jump in sequence numbers
// may stand for: as many as a camera of MaxCaptureFPS frames per second
// could have captured since the previous frame arrived, plus SkipSlack.
const (
	MaxCaptureFPS = 1000
	SkipSlack     = 1000
)

// SkippedFrames returns how many frames a reader that received frame prev
// and then, elapsed later, frame seq counts as skipped: the numbers in
// between, unless seq is not above prev or the jump is larger than
// MaxCaptureFPS frames a second of elapsed (whole milliseconds) plus
// SkipSlack. Either means the publisher numbers anew: nothing skipped.
func SkippedFrames(prev, seq uint64, elapsed time.Duration) uint64 {
	if seq <= prev {
		return 0
	}
	gap := seq - prev - 1
	ms := uint64(max(elapsed, 0).Milliseconds())
	if gap > ms*MaxCaptureFPS/1000+SkipSlack {
		return 0
	}
	return gap
}
