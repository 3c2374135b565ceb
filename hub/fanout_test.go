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

func newFanoutRig(tb testing.TB, n int) *fanoutRig { return newFanoutRigConfig(tb, n, Config{}) }

func newFanoutRigConfig(tb testing.TB, n int, cfg Config) *fanoutRig {
	cfg.WriteTimeout = 30 * time.Second
	r := &fanoutRig{h: New(cfg)}
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
// benchmark reports: a frame costs the same allocations for 2 subscribers
// as for 64, whether it goes out by sendfile from a memory file (which
// costs a few allocations per frame, not per subscriber) or by writes.
func TestFanoutAllocationsDoNotGrowWithSubscribers(t *testing.T) {
	perFrame := func(n int, cfg Config) float64 {
		r := newFanoutRigConfig(t, n, cfg)
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
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"sendfile", Config{}}, {"write", Config{NoZeroCopy: true}}} {
		few, many := perFrame(2, c.cfg), perFrame(64, c.cfg)
		t.Logf("%s: allocations per frame: %.1f with 2 subscribers, %.1f with 64", c.name, few, many)
		if many > few+4 {
			t.Errorf("%s: allocations per frame grow with subscribers: %.1f for 2, %.1f for 64", c.name, few, many)
		}
	}
}
