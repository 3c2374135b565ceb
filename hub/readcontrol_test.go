package hub

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// TestControlMessagesOfAnyShape: the reader's fast path for acks written
// the usual way does not narrow what a subscriber may send. A control
// message longer than the reader's small buffer (here a credit request
// with padding) and acks written another valid way (keys swapped, spaces)
// work as before.
func TestControlMessagesOfAnyShape(t *testing.T) {
	_, base := testHub(t, Config{})
	sub := dial(t, base, protocol.PathSubscribe, "cam")
	in := frames(t, sub)
	long := `{"op":"credit","window":1,"note":"` + strings.Repeat("x", 300) + `"}`
	if err := sub.WriteMessage(websocket.TextMessage, []byte(long)); err != nil {
		t.Fatal(err)
	}
	pub := dial(t, base, protocol.PathPublish, "cam")
	next := func(when string) uint64 { return nextSeq(t, in, when) }
	noMore := func(when string) { noFrameBeyond(t, in, 1, when) }
	// The credit request may arrive after the first frame: that one counts
	// against the window too. Publish until one frame is in flight.
	seq := uint64(1)
	send(t, pub, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 100), nil))
	got := next("the first frame")
	for range 5 {
		seq++
		send(t, pub, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 100), nil))
		time.Sleep(10 * time.Millisecond)
	}
	noMore("with a frame in flight")
	for _, form := range []string{` { "seq" : %d , "op" : "ack" } `, "{\"op\":\"ack\",\"seq\":%d}", "{\"op\":\"ack\",\"seq\":%d}\n"} {
		if err := sub.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, form, got)); err != nil {
			t.Fatal(err)
		}
		if got = next(fmt.Sprintf("after the ack %q", form)); got != seq {
			t.Fatalf("after the ack %q got seq %d; want the newest, %d", form, got, seq)
		}
		noMore("after one ack")
		seq++
		send(t, pub, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 100), nil))
		noMore("a new frame, without credit")
	}
}
