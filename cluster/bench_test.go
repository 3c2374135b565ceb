package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// arrivals reads a subscriber's frames and reports each one's sequence
// number and arrival time.
type arrival struct {
	seq uint64
	at  time.Time
}

func arrivals(tb testing.TB, base, channel string) (*websocket.Conn, <-chan arrival) {
	c := dial(tb, base, protocol.PathSubscribe, channel)
	out := make(chan arrival, 64)
	go func() {
		defer close(out)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			h, _ := protocol.ParseHeader(msg)
			select {
			case out <- arrival{h.Seq, time.Now()}:
			default: // a benchmark that stopped reading
			}
		}
	}()
	return c, out
}

func report(b *testing.B, ms []float64) {
	slices.Sort(ms)
	b.ReportMetric(ms[len(ms)/2], "p50-ms")
	b.ReportMetric(ms[(len(ms)*99)/100], "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRawFrameAcross measures how long a raw 720p BGR frame (2.7 MB)
// takes from its publisher on one hub to a subscriber on another: in
// chunks through a server with the default max_payload (1 MB), in one
// message through a server configured for it (4 MB), and, for reference,
// to a subscriber on the publisher's own hub. Frames go one at a time.
//
//	go test ./cluster -run '^$' -bench RawFrameAcross -benchtime 50x
func BenchmarkRawFrameAcross(b *testing.B) {
	for _, tc := range []struct {
		name       string
		maxPayload int32
		local      bool
	}{
		{"chunked-1MB", 0, false},
		{"whole-4MB", 4 << 20, false},
		{"same-hub", 0, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := natsServer(b, 0, tc.maxPayload)
			a := startNode(b, s.ClientURL(), "a", nil)
			other := startNode(b, s.ClientURL(), "b", nil)
			target := other
			if tc.local {
				target = a
			}
			_, in := arrivals(b, target.url, "raw")
			pub := dial(b, a.url, protocol.PathPublish, "raw")
			if !tc.local {
				testutil.Eventually(b, waitLong, "a sending", func() bool { return a.bus.Status().Sending == 1 })
			}
			msgs := [2][]byte{rawMsg(0, 1280, 720), rawMsg(0, 1280, 720)}
			var ms []float64
			for i := range b.N + 3 {
				seq := uint64(i + 1)
				msg := msgs[i%2]
				copy(msg[20:28], []byte{byte(seq >> 56), byte(seq >> 48), byte(seq >> 40), byte(seq >> 32), byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)})
				start := time.Now()
				send(b, pub, msg)
			wait:
				for {
					select {
					case got := <-in:
						if got.seq == seq {
							if i >= 3 { // the first frames set up interest
								ms = append(ms, float64(got.at.Sub(start))/1e6)
							}
							break wait
						}
					case <-time.After(5 * time.Second):
						b.Fatalf("frame %d did not arrive", seq)
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			report(b, ms)
		})
	}
}

// BenchmarkLateJoiner measures how long a reader that joins on another
// hub waits for its first frame of a channel whose publisher has gone
// quiet (the newest frame is a second old and no other is coming): the
// hub subscribes, asks the publishing hub, and relays its answer. For
// reference, the same on the publisher's own hub.
//
//	go test ./cluster -run '^$' -bench LateJoiner -benchtime 50x
func BenchmarkLateJoiner(b *testing.B) {
	for _, local := range []bool{false, true} {
		name := "other-hub"
		if local {
			name = "same-hub"
		}
		b.Run(name, func(b *testing.B) {
			s := natsServer(b, 0, 0)
			a := startNode(b, s.ClientURL(), "a", nil)
			other := startNode(b, s.ClientURL(), "b", nil)
			target := other
			if local {
				target = a
			}
			pub := dial(b, a.url, protocol.PathPublish, "cam")
			send(b, pub, frameMsg(1, 100<<10))
			testutil.Eventually(b, waitLong, "the channel known", func() bool { return len(target.h.Channels()) == 1 })
			var ms []float64
			for range b.N {
				start := time.Now()
				c, in := arrivals(b, target.url, "cam")
				var got arrival
				select {
				case got = <-in:
				case <-time.After(5 * time.Second):
					b.Fatal("no first frame")
				}
				ms = append(ms, float64(got.at.Sub(start))/1e6)
				c.Close()
				testutil.Eventually(b, waitLong, "the reader gone", func() bool { return target.bus.Status().Watching == 0 })
			}
			report(b, ms)
		})
	}
}
