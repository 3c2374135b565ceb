package hub

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// TestControlMessagesOfAnyShape: the reader's fast path for acks written
// the usual way does not narrow what a subscriber may send. A control
// message longer than the reader's small buffer (here a credit request
// with padding) and acks written another valid way (keys swapped, spaces)
// are understood all the same.
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

// TestTalkingSubscriberOutlivesThePongWait: messages count as signs of
// life as pongs do, now that the watchdog rather than each message pushes
// the read deadline back: a subscriber that ignores pings but keeps
// acking stays connected many pong waits long, and is dropped about a
// pong wait after it falls silent.
func TestTalkingSubscriberOutlivesThePongWait(t *testing.T) {
	h, base := testHub(t, Config{PingInterval: 100 * time.Millisecond, PongWait: 300 * time.Millisecond})
	c := dial(t, base, protocol.PathSubscribe, "quiet")
	c.SetPingHandler(func(string) error { return nil }) // no pongs
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	var silent time.Time // when its last message had been sent
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"op":"ack","seq":1}`)); err != nil {
			t.Fatalf("the talking subscriber was cut off: %v", err)
		}
		silent = time.Now()
		if n := h.Stats().Subscribers; n != 1 {
			t.Fatalf("%d subscribers while it talks; want 1", n)
		}
	}
	testutil.Eventually(t, 3*time.Second, "the silent subscriber to be dropped", func() bool { return h.Stats().Subscribers == 0 })
	if d := time.Since(silent); d < 250*time.Millisecond {
		t.Errorf("dropped %v after its last message; want about the 300 ms pong wait", d)
	}
}
