package hub

import (
	"sync"
	"sync/atomic"
)

// A subscriber's writer runs on demand, and ends when idle. An idle
// subscriber (a viewer of a channel with no publisher, a tab left open on a
// camera that is off) has nothing to write but a ping every PingInterval,
// yet a writer goroutine parked on its wake channel would keep a stack
// (4 KiB, as Go sizes new stacks from the average it sees) and its
// descriptor for as long as it is connected: a third of what an idle
// subscriber cost. So the writer
// goroutine is started by the first wake-up that finds none running, and
// ends once the watchdog (slow.go) has seen it idle for a whole tick; the
// next wake-up starts another. A subscriber that receives frames keeps its
// writer: it is woken far more often than the watchdog looks.
//
// Every wake-up is a poke of the connection's wake channel (the mailbox
// shares it) followed by kick (wsConn.poke, mailbox.poke), so work is never
// left in the channel with no writer to take it: kick starts a writer when
// none runs; a writer that ends rechecks the channel after it has said so
// (see idle).
//
// There is at most one writer at a time, so the socket still has one
// writer (conn.go). Only this file knows the writer comes and goes:
// writeLoop calls idle before it waits and busy when it wakes,
// runSubscriber starts the machinery with newIdleWriter and ends it with
// stop, and the watchdog calls look each tick.
type idleWriter struct {
	run  func() // the writer: writeLoop for this subscriber
	wake chan struct{}

	state  atomic.Int32 // writerNone or writerRunning
	woken  atomic.Bool  // the writer has woken since the watchdog last looked
	retire atomic.Bool  // the watchdog asks an idle writer to end

	mu      sync.Mutex     // orders starts with stop
	stopped bool           // guarded by mu: no writer starts any more
	wg      sync.WaitGroup // the writers started
}

const (
	writerNone    int32 = iota // no writer goroutine: the next kick starts one
	writerRunning              // a writer goroutine exists (it may be ending)
)

// newIdleWriter returns the machinery for a writer that waits on wake and
// runs run; the first kick starts it.
func newIdleWriter(wake chan struct{}, run func()) *idleWriter {
	return &idleWriter{run: run, wake: wake}
}

// kick starts a writer if none is running. Call it after every poke of
// the wake channel; it is cheap when a writer runs (one atomic load) and
// does nothing on a nil receiver (publishers, MJPEG readers) or once
// stopped.
func (w *idleWriter) kick() {
	if w == nil || w.state.Load() == writerRunning {
		return
	}
	w.mu.Lock()
	if !w.stopped && w.state.CompareAndSwap(writerNone, writerRunning) {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.run()
		}()
	}
	w.mu.Unlock()
}

// busy records that the writer woke, for the watchdog's idle check.
func (w *idleWriter) busy() {
	if w != nil && !w.woken.Load() {
		w.woken.Store(true)
	}
}

// look is the watchdog's check, once a tick: a writer that has not woken
// since the last look is asked to end. It reports whether it asked: the
// caller then pokes the writer, which ends when it wakes.
func (w *idleWriter) look() bool {
	if w == nil || w.woken.Swap(false) || w.state.Load() != writerRunning {
		return false
	}
	w.retire.Store(true)
	return true
}

// idle is called by the writer before it waits for a wake-up, so with the
// previous one's work done. It reports whether the writer should end: when
// the watchdog asked and no new work came in meanwhile. Once it has said
// so, any poke kicks a new writer; a poke that came in between is served
// by this one, unless a new writer has started already, which then gets it.
func (w *idleWriter) idle() bool {
	// A load first: the writer passes here once per frame, and the
	// watchdog asks only of a writer that has been idle a whole tick.
	if w == nil || !w.retire.Load() || !w.retire.Swap(false) {
		return false
	}
	w.state.Store(writerNone)
	select {
	case <-w.wake:
		if w.state.CompareAndSwap(writerNone, writerRunning) {
			// Still ours: serve the wake-up (put the token back for
			// the writer's next receive).
			w.poke()
			return false
		}
		w.poke() // a new writer has started: the token is its own
		return true
	default:
		return true
	}
}

func (w *idleWriter) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// stop lets no writer start any more, wakes the one running, if any, and
// waits for it to return. The caller has told it to (subscriber.stopped).
func (w *idleWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.poke()
	w.wg.Wait()
}
