package hub

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// viewerCounts reads a publisher's viewer notices in a goroutine.
func viewerCounts(t *testing.T, pub *websocket.Conn) <-chan int {
	out := make(chan int, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			typ, msg, err := pub.ReadMessage()
			if err != nil {
				return
			}
			var n protocol.ViewersNotice
			if typ == websocket.TextMessage && json.Unmarshal(msg, &n) == nil && n.Op == protocol.OpViewers {
				out <- n.Count
			}
		}
	}()
	t.Cleanup(func() { pub.Close(); <-done })
	return out
}

// nextCount waits for the next notice and checks it says want.
func nextCount(t *testing.T, in <-chan int, want int) {
	t.Helper()
	select {
	case n := <-in:
		if n != want {
			t.Fatalf("viewer notice says %d; want %d", n, want)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("no viewer notice (want %d)", want)
	}
}

func TestOnDemandViewerNotices(t *testing.T) {
	h, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam?on_demand=1")
	counts := viewerCounts(t, pub)
	nextCount(t, counts, 0) // at once, on connecting
	channelInfo := func() protocol.ChannelInfo {
		for _, c := range h.Channels() {
			if c.Name == "cam" {
				return c
			}
		}
		return protocol.ChannelInfo{}
	}
	if in := channelInfo(); !in.OnDemand || !in.Idle {
		t.Fatalf("channel %+v; want on_demand and idle", in)
	}
	sub := dial(t, base, protocol.PathSubscribe, "cam")
	nextCount(t, counts, 1)
	if in := channelInfo(); !in.OnDemand || in.Idle {
		t.Fatalf("channel with a viewer %+v; want on_demand, not idle", in)
	}
	resp, err := http.Get(base + "/channels/cam/stream.mjpeg")
	if err != nil {
		t.Fatal(err)
	}
	nextCount(t, counts, 2)
	resp.Body.Close()
	nextCount(t, counts, 1)
	sub.Close()
	nextCount(t, counts, 0)
	if in := channelInfo(); !in.Idle {
		t.Fatalf("channel %+v; want idle again", in)
	}
	if got := upgradeStatus(t, base, protocol.PathPublish+"cam?on_demand=maybe", nil); got != http.StatusBadRequest {
		t.Fatalf("on_demand=maybe: %d; want 400", got)
	}
}

// TestOnDemandSnapshotWaitsForAFreshFrame: a snapshot of an idle
// on-demand channel wakes its publisher and is answered with the frame it
// sends then, not the stale one from before it went idle.
func TestOnDemandSnapshotWaitsForAFreshFrame(t *testing.T) {
	_, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam?on_demand=1")
	counts := viewerCounts(t, pub)
	nextCount(t, counts, 0)
	send(t, pub, frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 200), nil)) // the stale frame
	// The publisher: on a viewer, one fresh frame.
	go func() {
		for n := range counts {
			if n > 0 {
				pub.WriteMessage(websocket.BinaryMessage, frameMsg(2, 8, 8, fakeJPEG(8, 8, 2, 200), nil))
				return
			}
		}
	}()
	start := time.Now()
	resp, err := http.Get(base + "/channels/cam/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seq := resp.Header.Get("X-Frame-Seq"); seq != "2" {
		t.Fatalf("snapshot of an idle on-demand channel is frame %s; want the fresh frame 2", seq)
	}
	if d := time.Since(start); d > onDemandSnapshotWait {
		t.Fatalf("snapshot took %v", d)
	}
}
