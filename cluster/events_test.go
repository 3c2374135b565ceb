package cluster

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// TestEventsOnTheBus: the hub whose publisher carries a channel's events
// publishes each start and end on P.event.C, once (another hub that relays
// the channel's frames to its readers keeps the events for its own API, and
// publishes nothing).
func TestEventsOnTheBus(t *testing.T) {
	s, nodes := cluster(t, 2)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(DefaultPrefix+".event.>", got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()
	r := subscribe(t, nodes[1].url, "door") // hub1 relays door's frames
	testutil.Eventually(t, waitLong, "hub1 watching door", func() bool { return nodes[1].bus.Status().Watching == 1 })
	pub := dial(t, nodes[0].url, protocol.PathPublish, "door")
	testutil.Eventually(t, waitLong, "hub0 sending door", func() bool { return nodes[0].bus.Status().Sending == 1 })
	t0 := float64(time.Now().Unix())
	msg := func(seq uint64, end string) []byte {
		f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey, Width: 64, Height: 48,
			Seq: seq, CaptureTime: time.Now().UnixNano()}, Payload: testutil.FakeJPEG(64, 48, seq, 2000),
			Meta: []byte(fmt.Sprintf(`{"events":[{"id":"e1","label":"person","start":%.3f%s}]}`, t0, end))}
		return protocol.AppendFrame(nil, &f)
	}
	send(t, pub, msg(1, ""))
	send(t, pub, msg(2, fmt.Sprintf(`,"end":%.3f`, t0+2)))
	r.waitSeq(t, 2, "hub1's reader to get both frames")
	var kinds []string
	for len(kinds) < 2 {
		select {
		case m := <-got:
			var info protocol.EventInfo
			if err := json.Unmarshal(m.Data, &info); err != nil || m.Subject != DefaultPrefix+".event.door" || info.ID != "e1" || info.Hub != "hub0" {
				t.Fatalf("on %s: %s (%v)", m.Subject, m.Data, err)
			}
			kinds = append(kinds, info.Type)
		case <-time.After(waitLong):
			t.Fatalf("event notices on the bus: %v; want a start and an end", kinds)
		}
	}
	if kinds[0] != protocol.EventStart || kinds[1] != protocol.EventEnd {
		t.Fatalf("notices %v", kinds)
	}
	select {
	case m := <-got:
		t.Fatalf("a third notice: %s (hub1 must not publish what it relays)", m.Data)
	case <-time.After(300 * time.Millisecond):
	}
	var list []protocol.EventInfo
	getJSON(t, nodes[1].url+protocol.PathEvents, &list)
	if len(list) != 1 || list[0].End == nil {
		t.Fatalf("hub1's events: %+v; want door's, ended", list)
	}
	testutil.Eventually(t, waitLong, "hub0's counts", func() bool {
		st := stats(t, nodes[0].url)
		return st.Events.BusPublished == 2 && st.Cluster.EventsOut == 2 && st.Cluster.EventsDropped == 0
	})
}
