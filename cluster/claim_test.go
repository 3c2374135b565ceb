package cluster

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// TestForgedFutureClaimRefused: a NATS client announces, over and over, a
// claim on framehub.dir.cam with generation 2^64−1, and sends frames under
// it. Before, every hub adopted it, and the next real publisher's claim
// ("one more than the largest heard of") wrapped to a small number and
// lost to the next repetition: 4001, for as long as the attacker kept at
// it. Now a claim further ahead of the hub's clock than maxClaimAhead is
// refused on every hub (counted future_claim, logged at a bounded rate),
// and the real publisher keeps its channel, its frames crossing the bus.
func TestForgedFutureClaimRefused(t *testing.T) {
	s := natsServer(t, 0, 0)
	a := startNode(t, s.ClientURL(), "a", nil)
	b := startNode(t, s.ClientURL(), "b", nil)
	viewer := subscribe(t, b.url, "cam")
	testutil.Eventually(t, waitLong, "b watching", func() bool { return b.bus.Status().Watching == 1 })

	nc := hostile(t, s.ClientURL())
	ann, err := json.Marshal(wireAnnouncement{Hub: "evil", Name: "evil", Gen: math.MaxUint64, Live: true, RefreshMS: 100})
	if err != nil {
		t.Fatal(err)
	}
	future := uint64(time.Now().Add(time.Hour).UnixMilli())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the attacker keeps at it until the test ends
		defer close(done)
		for seq := uint64(1); ; seq++ {
			_ = nc.Publish("framehub.dir.cam", ann)
			_ = nc.PublishMsg(forged("framehub.frame.cam", "cam", "evil", math.MaxUint64, frameMsg(math.MaxUint64, 500)))
			_ = nc.PublishMsg(forged("framehub.frame.cam", "cam", "later", future, frameMsg(seq, 500)))
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	testutil.Eventually(t, waitLong, "both hubs refusing the forged claim", func() bool {
		return stats(t, a.url).Cluster.Refused["future_claim"] > 0 && stats(t, b.url).Cluster.Refused["future_claim"] > 0
	})

	pub := dial(t, a.url, protocol.PathPublish, "cam")
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := pub.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	var seq atomic.Uint64
	pacedPublisher(t, pub, func() uint64 { return 1000 + seq.Add(1) })
	viewer.waitSeq(t, 1050, "b relaying the real publisher's frames")
	select {
	case err := <-closed:
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			t.Fatalf("the real publisher was closed %d %q while the forged claim was announced", ce.Code, ce.Text)
		}
		t.Fatalf("the real publisher's connection ended: %v", err)
	default:
	}
	for _, m := range viewer.all() {
		if s := seqOf(t, m); s == math.MaxUint64 || s < 1000 {
			t.Fatalf("b showed a frame of a forged claim (seq %d)", s)
		}
	}
	for _, n := range []*node{a, b} {
		st := stats(t, n.url).Cluster
		if in := channelByName(t, n.url, "cam"); in.Hub != "a" {
			t.Errorf("hub %s lists cam as published on %q; want a", n.name, in.Hub)
		}
		t.Logf("hub %s: refused future_claim %d", n.name, st.Refused["future_claim"])
	}
	if n := strings.Count(b.logs.String(), "future_claim"); n > 3 {
		t.Errorf("%d log lines about the forged claim on b; want them at a bounded rate", n)
	}
}
