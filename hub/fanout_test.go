package hub

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// fanoutRig is a hub channel with n real WebSocket subscribers over
// loopback. The subscribers read raw bytes into a fixed buffer and discard
// them, so the client side allocates nothing and every allocation measured
// is the hub's.
type fanoutRig struct {
	h    *Hub
	srv  *httptest.Server
	ch   *channel
	subs []*websocket.Conn
	wg   sync.WaitGroup
}

func newFanoutRig(tb testing.TB, n int) *fanoutRig {
	r := &fanoutRig{h: New(Config{WriteTimeout: 30 * time.Second})}
	r.srv = httptest.NewServer(r.h)
	base := r.srv.URL
	for range n {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(base, protocol.PathSubscribe, "bench"), nil)
		if err != nil {
			tb.Fatal(err)
		}
		r.subs = append(r.subs, c)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			buf := make([]byte, 256<<10)
			nc := c.NetConn()
			for {
				if _, err := nc.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	// Dial returns before the hub's handler registers the subscriber.
	for r.ch == nil {
		r.ch = r.h.table.lookup("bench")
		time.Sleep(time.Millisecond)
	}
	for {
		r.ch.mu.Lock()
		k := len(r.ch.subs)
		r.ch.mu.Unlock()
		if k == n {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return r
}

func (r *fanoutRig) close() {
	for _, c := range r.subs {
		c.NetConn().Close()
	}
	r.wg.Wait()
	r.h.Close()
	r.srv.Close()
}

// publishAndWait publishes one frame and waits until every subscriber's
// writer has handed it to the kernel, so each frame is delivered to all,
// none skipped: the full fan-out cost.
func (r *fanoutRig) publishAndWait(msg []byte, want uint64) {
	buf := append(make([]byte, wsRoom, wsRoom+len(msg)), msg...)
	pf, err := protocol.ParseMessage(buf[wsRoom:], protocol.DefaultLimits)
	if err != nil {
		panic(err)
	}
	r.ch.publish(newFrame(buf, pf, time.Now()))
	r.ch.mu.Lock()
	mbs := make([]*mailbox, 0, len(r.ch.subs))
	for m := range r.ch.subs {
		mbs = append(mbs, m)
	}
	r.ch.mu.Unlock()
	for _, m := range mbs {
		for m.delivered.Load() < want {
			runtime.Gosched()
		}
	}
}

// fanoutMsgs are two frames to alternate, so that no subscriber ever
// writes the same frame twice.
func fanoutMsgs(size int) [2][]byte {
	var out [2][]byte
	for i := range out {
		out[i] = frameMsg(uint64(i), 1280, 720, fakeJPEG(1280, 720, uint64(i), size), nil)
	}
	return out
}

// BenchmarkFanout measures the hub's cost to deliver one frame to N
// subscribers over loopback WebSockets. Allocations per frame stay flat as
// N grows: the frame itself, nothing per subscriber.
func BenchmarkFanout(b *testing.B) {
	const size = 16 << 10
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			r := newFanoutRig(b, n)
			defer r.close()
			msgs := fanoutMsgs(size)
			// The first frame of each connection pays one-time costs.
			r.publishAndWait(msgs[0], 1)
			b.SetBytes(int64(size * n))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r.publishAndWait(msgs[i%2], uint64(i+2))
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/frame/sub")
		})
	}
}

// TestFanoutAllocationsDoNotGrowWithSubscribers is the behaviour the
// benchmark reports: a frame costs the same allocations for 1 subscriber as
// for 64.
func TestFanoutAllocationsDoNotGrowWithSubscribers(t *testing.T) {
	perFrame := func(n int) float64 {
		r := newFanoutRig(t, n)
		defer r.close()
		msgs := fanoutMsgs(4096)
		r.publishAndWait(msgs[0], 1)
		const frames = 200
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range frames {
			r.publishAndWait(msgs[i%2], uint64(i+2))
		}
		runtime.ReadMemStats(&after)
		return float64(after.Mallocs-before.Mallocs) / frames
	}
	one, many := perFrame(1), perFrame(64)
	t.Logf("allocations per frame: %.1f with 1 subscriber, %.1f with 64", one, many)
	if many > one+4 {
		t.Fatalf("allocations per frame grow with subscribers: %.1f for 1, %.1f for 64", one, many)
	}
}
