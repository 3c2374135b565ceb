package publisher

import (
	"context"
	"sync"
)

// slot hands the newest frame from a reader (capture, or the MJPEG relay's
// reader) to the sender. It owns three buffers: one being read into, one
// waiting as the newest, one being sent. Putting a frame while another
// waits returns the waiting one to the free list and counts it as skipped;
// nothing ever queues.
type slot[T any] struct {
	mu      sync.Mutex
	all     []*T // every buffer, for whoever must free them
	frees   []*T
	ready   *T
	done    bool // the reader has ended
	skipped uint64
	wake    chan struct{} // capacity 1
}

// newSlot makes a slot of three buffers made by mk.
func newSlot[T any](mk func() *T) *slot[T] {
	s := &slot[T]{wake: make(chan struct{}, 1)}
	for range 3 {
		f := mk()
		s.all = append(s.all, f)
		s.frees = append(s.frees, f)
	}
	return s
}

// free returns a buffer to read into. There is always one: the reader
// holds at most one, the slot one, the sender one.
func (s *slot[T]) free() *T {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.frees[len(s.frees)-1]
	s.frees = s.frees[:len(s.frees)-1]
	return f
}

func (s *slot[T]) release(f *T) {
	s.mu.Lock()
	s.frees = append(s.frees, f)
	s.mu.Unlock()
}

// put makes f the newest frame.
func (s *slot[T]) put(f *T) {
	s.mu.Lock()
	if s.ready != nil {
		s.skipped++
		s.frees = append(s.frees, s.ready)
	}
	s.ready = f
	s.mu.Unlock()
	s.poke()
}

func (s *slot[T]) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// finish marks the end of the reader; take returns false once the last
// frame has been taken.
func (s *slot[T]) finish() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.poke()
}

// take waits for the newest frame. It returns false when ctx ends or the
// reader has finished and no frame is left.
func (s *slot[T]) take(ctx context.Context) (*T, bool) {
	for {
		s.mu.Lock()
		f, done := s.ready, s.done
		s.ready = nil
		s.mu.Unlock()
		if f != nil {
			return f, true
		}
		if done {
			return nil, false
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (s *slot[T]) skippedCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skipped
}
