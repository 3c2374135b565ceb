package publisher

import (
	"context"
	"sync"

	"framehub/internal/newest"
)

// slot hands the newest frame from a reader (capture, or the MJPEG relay's
// reader) to the sender: a newest.Slot, plus the buffers it recycles. It
// owns three buffers: one being read into, one waiting as the newest, one
// being sent. Putting a frame while another waits returns the waiting one
// to the free list and counts it as skipped; nothing ever queues. (The
// buffers are why this is more than a newest.Slot: a Mat or a JPEG buffer
// is reused, not allocated per frame.)
type slot[T any] struct {
	ready newest.Slot[T] // the newest frame, not yet taken

	mu    sync.Mutex
	all   []*T // every buffer, for whoever must free them
	frees []*T
	done  bool // the reader has ended
}

// newSlot makes a slot of three buffers made by mk.
func newSlot[T any](mk func() *T) *slot[T] {
	s := &slot[T]{}
	s.ready.Init(make(chan struct{}, 1))
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
	if old := s.ready.Put(f); old != nil {
		s.release(old)
	}
}

// finish marks the end of the reader; take returns false once the last
// frame has been taken.
func (s *slot[T]) finish() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.ready.Poke()
}

// take waits for the newest frame. It returns false when ctx ends or the
// reader has finished and no frame is left.
func (s *slot[T]) take(ctx context.Context) (*T, bool) {
	for {
		if f := s.ready.Take(); f != nil {
			return f, true
		}
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		if done {
			// The reader's last put came before its finish: look once more.
			if f := s.ready.Take(); f != nil {
				return f, true
			}
			return nil, false
		}
		select {
		case <-s.ready.Wake():
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (s *slot[T]) skippedCount() uint64 { return s.ready.Overwritten() }
