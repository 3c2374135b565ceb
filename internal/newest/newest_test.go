package newest

import (
	"sync"
	"testing"
)

func TestSlotKeepsTheNewest(t *testing.T) {
	var s Slot[int]
	s.Init(make(chan struct{}, 1))
	if s.Take() != nil {
		t.Fatal("an empty slot gave a value")
	}
	one, two, three := 1, 2, 3
	if r := s.Put(&one); r != nil {
		t.Fatalf("Put into an empty slot replaced %d", *r)
	}
	if r := s.Put(&two); r != &one {
		t.Fatal("Put did not hand back the value it replaced")
	}
	select {
	case <-s.Wake():
	default:
		t.Fatal("Put woke nobody")
	}
	if !s.Waiting() {
		t.Fatal("Waiting is false with a value in the slot")
	}
	if v := s.Take(); v != &two {
		t.Fatalf("took %v; want the newest, 2", v)
	}
	if s.Take() != nil || s.Waiting() {
		t.Fatal("a value was taken twice")
	}
	s.Put(&three)
	if got := s.Overwritten(); got != 1 {
		t.Fatalf("Overwritten = %d; want 1", got)
	}
	var quiet Slot[int] // no Init: nobody to wake, Put still works
	quiet.Put(&one)
	quiet.Poke()
	if quiet.Take() != &one {
		t.Fatal("a slot without a wake channel lost its value")
	}
}

// TestSlotUnderContention: many producers, one taker; every value is
// either taken once or counted as overwritten, never both, never lost.
func TestSlotUnderContention(t *testing.T) {
	const producers, each = 4, 10000
	var s Slot[int]
	s.Init(make(chan struct{}, 1))
	vals := make([]int, producers*each)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s.Put(&vals[p*each+i])
			}
		}()
	}
	produced := make(chan struct{})
	go func() { wg.Wait(); close(produced) }()
	done := make(chan struct{})
	taken := 0
	go func() {
		defer close(done)
		for {
			if s.Take() != nil {
				taken++
				continue
			}
			select {
			case <-s.Wake():
			case <-produced:
				if s.Take() != nil {
					taken++
				}
				return
			}
		}
	}()
	<-done
	if got := uint64(taken) + s.Overwritten(); got != producers*each {
		t.Fatalf("taken %d + overwritten %d = %d; want every one of the %d values accounted for", taken, s.Overwritten(), got, producers*each)
	}
}
