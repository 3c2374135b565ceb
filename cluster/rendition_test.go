package cluster

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// setMsg is a frame of rendition r of w×h, numbered seq, captured at at.
func setMsg(seq uint64, at int64, w, h uint32, r protocol.Rendition) []byte {
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey, Width: w, Height: h,
		Seq: seq, CaptureTime: at, Rendition: r}, Payload: testutil.FakeJPEG(int(w), int(h), seq, 300+int(w))}
	return protocol.AppendFrame(nil, &f)
}

// TestRenditionsCrossTheBus: a main picture and its 320 rendition
// published on hub a reach readers on hub b by what they ask for. Each
// rendition is a stream of its own on the bus (its own newest-frame slot
// in the sender, its own order: it shares its main frames' numbers, which
// a per-channel order would drop as not newer).
func TestRenditionsCrossTheBus(t *testing.T) {
	_, nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]
	thumbs := subscribe(t, b.url, "cam?max-width=320")
	mains := subscribe(t, b.url, "cam")
	testutil.Eventually(t, waitLong, "b watching", func() bool { return b.bus.Status().Watching == 1 })
	pub := dial(t, a.url, protocol.PathPublish, "cam")
	const n = 40
	for seq := uint64(1); seq <= n; seq++ {
		at := time.Now().UnixNano()
		for _, m := range [][]byte{setMsg(seq, at, 1280, 720, 0), setMsg(seq, at, 320, 180, 320)} {
			if err := pub.WriteMessage(websocket.BinaryMessage, m); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(15 * time.Millisecond)
	}
	last := func(r *reader) protocol.Header {
		m := r.last()
		if m == nil {
			return protocol.Header{}
		}
		h, _ := protocol.ParseHeader(m)
		return h
	}
	testutil.Eventually(t, waitLong, "both readers at the last frame", func() bool {
		return last(thumbs).Seq == n && last(thumbs).Rendition == 320 && last(mains).Seq == n
	})
	var prev int64
	got320 := 0
	for _, m := range thumbs.all() {
		h, err := protocol.ParseHeader(m)
		if err != nil {
			t.Fatal(err)
		}
		if h.CaptureTime < prev {
			t.Fatalf("the reader of 320 on b got frame %d captured before the one it had", h.Seq)
		}
		prev = h.CaptureTime
		if h.Rendition == 320 {
			got320++
		} else if got320 > 0 {
			t.Fatalf("the reader of 320 got rendition %v after 320 had arrived", h.Rendition)
		}
	}
	if got320 < n/2 {
		t.Fatalf("the reader of 320 on b got %d frames of 320 out of %d sent; want most", got320, n)
	}
	for _, m := range mains.all() {
		if h, _ := protocol.ParseHeader(m); h.Rendition != 0 {
			t.Fatalf("the reader of the main picture on b got rendition %v", h.Rendition)
		}
	}
	var names []string
	for _, c := range b.h.Channels() {
		if c.Name == "cam" {
			for _, r := range c.Renditions {
				names = append(names, r.Name)
			}
		}
	}
	if len(names) != 2 || names[0] != "main" || names[1] != "320" {
		t.Fatalf("hub b lists renditions %v; want main, 320", names)
	}
	if st := b.h.Stats().Cluster; st.Stale > uint64(n/4) {
		t.Fatalf("hub b dropped %d frames from the bus as stale; renditions must not count as older than their main frames", st.Stale)
	}
}
