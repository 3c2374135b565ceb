// Package newest holds framehub's freshness rule in one small type: a slot
// that keeps only the newest of a stream of values. A producer puts values
// without ever waiting; a value not yet taken when the next one comes is
// replaced, and counted; the taker takes whatever is newest when it is
// ready. Nothing queues, so a slow taker skips values instead of falling
// behind.
//
// Slot is that rule and nothing more. The hub's mailboxes, the native
// viewer's per-window frame and the publishers' capture slot are Slots
// with their own bookkeeping around; the slots that do more than keep the
// newest value say why in their own doc comments (the processing worker's
// input and output slots number and order frames; the cluster's outbox
// keeps one slot per channel and subject for one sender).
//
// Standard library only.
package newest

import "sync/atomic"

// Slot holds the newest value put in it until it is taken. Put and Take
// never block and allocate nothing; values are handed over by pointer, so
// a value put must not be changed afterwards by its producer. Safe for
// concurrent use by any number of producers and takers (each value is
// taken once). The zero value is an empty slot that wakes nobody; Init
// gives it a channel to wake its taker on.
type Slot[T any] struct {
	v           atomic.Pointer[T]
	overwritten atomic.Uint64
	wake        chan struct{} // capacity 1, or nil; set by Init before use
}

// Init sets the channel that Put and Poke signal (it should have capacity
// 1, so that signals fold). Call it before the slot is used, from the
// goroutine that makes it.
func (s *Slot[T]) Init(wake chan struct{}) { s.wake = wake }

// Wake returns the channel the taker waits on, as given to Init.
func (s *Slot[T]) Wake() <-chan struct{} { return s.wake }

// Put makes v the newest value and wakes the taker. It returns the value
// v replaced, if one was waiting (counted in Overwritten), for the caller
// to recycle or drop.
func (s *Slot[T]) Put(v *T) (replaced *T) {
	replaced = s.v.Swap(v)
	if replaced != nil {
		s.overwritten.Add(1)
	}
	s.Poke()
	return replaced
}

// Take empties the slot and returns what it held, or nil.
func (s *Slot[T]) Take() *T { return s.v.Swap(nil) }

// Waiting reports whether a value waits to be taken (a hint: a producer
// or taker may change that at once).
func (s *Slot[T]) Waiting() bool { return s.v.Load() != nil }

// Poke wakes the taker without changing the slot, so that it looks at
// whatever else concerns it. It never blocks.
func (s *Slot[T]) Poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Overwritten returns how many values were replaced before anyone took
// them.
func (s *Slot[T]) Overwritten() uint64 { return s.overwritten.Load() }
