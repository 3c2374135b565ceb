package cluster

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// FuzzBusMessages feeds sequences of frame messages, as a hostile NATS
// client could send them on a watched channel's subject, through envelope
// parsing and reassembly: nothing panics, nothing completes that is not
// the sum of its chunks, and every byte charged to the budget is given
// back once the channel is dropped.
//
//	go test ./cluster -run '^$' -fuzz FuzzBusMessages
func FuzzBusMessages(f *testing.F) {
	frame := frameMsg(1, 5000)
	f.Add(frame, uint8(3), uint8(0), uint16(2000), false)
	f.Add(frame, uint8(3), uint8(1), uint16(2000), false)
	f.Add(frame, uint8(9), uint8(0), uint16(100), true)
	f.Add([]byte("garbage"), uint8(2), uint8(0), uint16(1), false)
	f.Fuzz(func(t *testing.T, data []byte, parts, skip uint8, chunk uint16, lie bool) {
		n := newFakeNode()
		a := newAssembler(2, time.Second)
		c := max(int(chunk), 1)
		np := int(parts)
		if np == 0 {
			np = (len(data) + c - 1) / c
		}
		var got []byte
		for i := 0; i < np; i++ {
			if skip > 0 && i == int(skip)%np {
				continue
			}
			lo, hi := min(i*c, len(data)), min((i+1)*c, len(data))
			h := nats.Header{}
			h.Set(hdrChannel, "cam")
			h.Set(hdrHub, "x")
			h.Set(hdrGen, "1")
			h.Set(hdrFrame, "7")
			h.Set(hdrPart, strconv.Itoa(i))
			h.Set(hdrParts, strconv.Itoa(np))
			size := len(data)
			if lie {
				size += i
			}
			h.Set(hdrSize, strconv.Itoa(size))
			e, err := parseEnvelope(h, 1<<20)
			if err != nil {
				continue
			}
			if done := a.add(n, "cam", "x", e, data[lo:hi], time.Now()); done != nil {
				for _, p := range done.parts {
					got = append(got, p...)
				}
				if len(got) != e.size {
					t.Fatalf("completed %d bytes of a %d-byte frame", len(got), e.size)
				}
				n.Release(done.charged)
			}
		}
		if got != nil && string(got) != string(data[:len(got)]) {
			t.Fatal("reassembled bytes differ from what was sent")
		}
		a.dropAll(n)
		if r := n.reserved.Load(); r != 0 {
			t.Fatalf("%d bytes still charged", r)
		}
	})
}
