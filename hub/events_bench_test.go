package hub

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"framehub/protocol"
)

// BenchmarkEventBookObserve: what the event book costs a frame the hub
// has accepted (observe runs on the publisher's goroutine for each), next
// to the metadata check every frame with metadata already gets
// (protocol.ParseMessage's json.Valid). Metadata: 20 boxes, as a
// processing worker writes them, with no events ("boxes"), with no events
// while another channel has one going on ("boxes, events elsewhere"), and
// with one event going on ("boxes + event").
//
//	go test ./hub -run '^$' -bench EventBookObserve -benchmem
func BenchmarkEventBookObserve(b *testing.B) {
	var boxes []string
	for i := range 20 {
		boxes = append(boxes, fmt.Sprintf(`{"x":%d,"y":%d,"w":40,"h":80,"label":"person","score":0.8%d}`, i*10, i*5, i%10))
	}
	boxMeta := `{"boxes":[` + strings.Join(boxes, ",") + `],"step":"people","proc_ms":12.5}`
	t0 := float64(time.Now().Unix())
	withEvent := strings.TrimSuffix(boxMeta, "}") + fmt.Sprintf(`,"events":[{"id":"5f3a9c0e1b2d4e6f","label":"person","zone":"door","start":%.3f,"score":0.9}]}`, t0)
	for _, c := range []struct {
		name, meta string
		elsewhere  bool
	}{
		{"no metadata", "", false},
		{"boxes", boxMeta, false},
		{"boxes, events elsewhere", boxMeta, true},
		{"boxes + event", withEvent, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := New(Config{})
			b.Cleanup(func() { h.Close() })
			if c.elsewhere {
				msg := frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 100), []byte(withEvent))
				f := benchFrame(b, h, msg)
				h.book.observe("other", f, true)
			}
			msg := frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 100), []byte(c.meta))
			f := benchFrame(b, h, msg)
			b.Run("observe", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					h.book.observe("cam", f, true)
				}
			})
			b.Run("metadata check", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := protocol.ParseMessage(msg, h.limits); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func benchFrame(b *testing.B, h *Hub, msg []byte) *frame {
	buf := make([]byte, wsRoom+len(msg))
	copy(buf[wsRoom:], msg)
	pf, err := protocol.ParseMessage(buf[wsRoom:], h.limits)
	if err != nil {
		b.Fatal(err)
	}
	return newFrame(buf, pf, time.Now())
}
