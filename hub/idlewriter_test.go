package hub

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// runningWriters counts the subscribers whose writer goroutine exists.
func runningWriters(h *Hub) (subs, running int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		if s := c.sub.Load(); s != nil {
			subs++
			if w := s.writer.Load(); w != nil && w.state.Load() == writerRunning {
				running++
			}
		}
	}
	return subs, running
}

// TestIdleSubscribersHaveNoWriter: a subscriber with nothing to receive
// costs one goroutine, its reader; a frame starts its writer, which
// delivers it and ends once the watchdog has seen it idle; the next frame
// starts another.
func TestIdleSubscribersHaveNoWriter(t *testing.T) {
	// A 400 ms write timeout makes the watchdog look every 50 ms.
	h, base := testHub(t, Config{WriteTimeout: 400 * time.Millisecond})
	const n = 20
	before := runtime.NumGoroutine()
	subs := make([]*websocket.Conn, n)
	for i := range subs {
		subs[i] = dial(t, base, protocol.PathSubscribe, "quiet")
	}
	testutil.Eventually(t, 5*time.Second, "the subscribers registered", func() bool {
		s, _ := runningWriters(h)
		return s == n
	})
	if _, running := runningWriters(h); running != 0 {
		t.Fatalf("%d writers run for %d subscribers of a channel without frames; want 0", running, n)
	}
	// The test's own clients run a reader goroutine each; the hub one.
	if d := runtime.NumGoroutine() - before; d > 2*n+5 {
		t.Errorf("%d goroutines for %d idle subscribers (client and hub); want about %d", d, n, 2*n)
	}
	pub := dial(t, base, protocol.PathPublish, "quiet")
	for round := uint64(1); round <= 3; round++ {
		send(t, pub, frameMsg(round, 16, 16, fakeJPEG(16, 16, round, 500), nil))
		for i, s := range subs {
			if f, _ := readFrame(t, s, 5*time.Second); f.Seq != round {
				t.Fatalf("round %d: subscriber %d got seq %d", round, i, f.Seq)
			}
		}
		testutil.Eventually(t, 5*time.Second, "the writers to end once idle", func() bool {
			_, running := runningWriters(h)
			return running == 0
		})
	}
}

// TestFramesArriveWhileWritersComeAndGo: frames spaced around the
// watchdog's tick, so that writers end and start again between (and
// sometimes during) deliveries, all arrive, in order; and a subscriber
// that answers pings stays connected throughout. The tick is 50 ms (half
// the ping interval); the pong wait (1 s) is well under the run (about
// 2.5 s), so pongs must keep the subscribers, yet long enough, like the
// write timeout, that a test process starved by a loaded machine for a few
// hundred milliseconds is not cut off.
func TestFramesArriveWhileWritersComeAndGo(t *testing.T) {
	h, base := testHub(t, Config{WriteTimeout: 2 * time.Second, PingInterval: 100 * time.Millisecond, PongWait: time.Second})
	var subs []<-chan protocol.Frame
	for range 4 {
		c := dial(t, base, protocol.PathSubscribe, "cam")
		c.SetPingHandler(func(data string) error {
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		subs = append(subs, frames(t, c))
	}
	pub := dial(t, base, protocol.PathPublish, "cam")
	testutil.Eventually(t, 5*time.Second, "the subscribers registered", func() bool {
		s, _ := runningWriters(h)
		return s == 4
	})
	r := rand.New(rand.NewPCG(1, 2))
	for seq := uint64(1); seq <= 40; seq++ {
		send(t, pub, frameMsg(seq, 16, 16, fakeJPEG(16, 16, seq, 500), nil))
		for i, in := range subs {
			select {
			case f, ok := <-in:
				if !ok {
					st := h.Stats()
					t.Fatalf("subscriber %d disconnected before frame %d (hub: %d evicted, refused %v)", i, seq, st.Evicted, st.Refused)
				}
				if f.Seq != seq {
					t.Fatalf("subscriber %d got seq %d; want %d", i, f.Seq, seq)
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("subscriber %d: frame %d never came", i, seq)
			}
		}
		time.Sleep(time.Duration(r.IntN(120)) * time.Millisecond) // 0 to over two 50 ms ticks
	}
	if n := h.Stats().Connections; n != 5 {
		t.Errorf("%d connections; want the 4 subscribers and the publisher", n)
	}
}

// TestIdleWriterServesWorkThatCameWhileItEnded steps the machinery by
// hand: a writer that the watchdog asked to end, but in whose channel a
// wake-up is waiting (its kick found the writer still running), keeps
// running and gets the wake-up; without one it ends, and the next kick
// starts a new writer.
func TestIdleWriterServesWorkThatCameWhileItEnded(t *testing.T) {
	wake := make(chan struct{}, 1)
	started := make(chan struct{}, 10)
	w := newIdleWriter(wake, func() { started <- struct{}{} })
	w.state.Store(writerRunning) // a writer runs (this test plays it)
	if w.idle() {
		t.Fatal("a writer nobody asked to end ended")
	}
	// Asked to end, with a wake-up waiting: it stays, and the wake-up too.
	w.retire.Store(true)
	wake <- struct{}{}
	if w.idle() {
		t.Fatal("the writer ended with a wake-up waiting for it")
	}
	if len(wake) != 1 || w.state.Load() != writerRunning {
		t.Fatalf("wake-ups waiting %d, state %d; want 1 and running", len(wake), w.state.Load())
	}
	<-wake
	// The watchdog sees it idle for a tick: it asks, and the writer ends.
	w.woken.Store(false)
	if !w.look() {
		t.Fatal("the watchdog did not ask an idle writer to end")
	}
	if !w.idle() || w.state.Load() != writerNone {
		t.Fatal("the idle writer did not end")
	}
	// A busy writer is not asked.
	w.state.Store(writerRunning)
	w.busy()
	if w.look() {
		t.Fatal("the watchdog asked a writer that woke this tick to end")
	}
	w.state.Store(writerNone)
	// Now a poke starts one, once; after stop, none.
	wake <- struct{}{}
	w.kick()
	w.kick()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("kick started no writer")
	}
	if len(started) != 0 {
		t.Fatal("two kicks started two writers")
	}
	w.state.Store(writerNone) // that writer has ended
	w.stop()
	w.kick()
	if len(started) != 0 || w.state.Load() != writerNone {
		t.Fatal("a kick after stop started a writer")
	}
}

// TestIdleWriterLosesNoWork races pokes against a watchdog that keeps
// asking the writer to end: every piece of work announced by a poke is
// done, without help from a later poke, and never by two writers at once.
func TestIdleWriterLosesNoWork(t *testing.T) {
	wake := make(chan struct{}, 1)
	var done, inside atomic.Int64
	var stopped atomic.Bool
	var w *idleWriter
	w = newIdleWriter(wake, func() {
		for {
			if w.idle() {
				return
			}
			<-wake
			if stopped.Load() {
				return
			}
			w.busy()
			if inside.Add(1) != 1 {
				t.Error("two writers at once")
			}
			done.Store(done.Load() + 1)
			inside.Add(-1)
		}
	})
	stop := make(chan struct{})
	var watchdog sync.WaitGroup
	watchdog.Add(1)
	go func() {
		defer watchdog.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Harder than the real watchdog, which asks once a tick and
			// only a writer that has not woken, and pokes it: ask all the
			// time, and never poke, so that no piece of work is rescued
			// by the watchdog's own wake-up.
			w.retire.Store(true)
			runtime.Gosched()
		}
	}()
	const total = 5000
	for i := int64(1); i <= total; i++ {
		select {
		case wake <- struct{}{}:
		default:
		}
		w.kick()
		deadline := time.Now().Add(5 * time.Second)
		for done.Load() < i {
			if time.Now().After(deadline) {
				t.Fatalf("piece of work %d was never done: its wake-up was left with no writer", i)
			}
			runtime.Gosched()
		}
	}
	close(stop)
	watchdog.Wait()
	stopped.Store(true)
	w.stop()
}
