//go:build linux

package hub

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestZeroCopyFilesAreClosed: the memory files frames are sent from are
// closed once the frames are garbage, so a long stream leaves neither file
// descriptors nor their memory behind.
func TestZeroCopyFilesAreClosed(t *testing.T) {
	h, base := testHub(t, Config{MaxFPSPerPublisher: 1e6}) // frames go as fast as the subscribers read
	var subs []*websocket.Conn
	for range 4 {
		subs = append(subs, dial(t, base, protocol.PathSubscribe, "cam"))
	}
	pub := dial(t, base, protocol.PathPublish, "cam")
	eventually(t, 5*time.Second, "subscribers registered", func() bool {
		chs := h.Channels()
		return len(chs) == 1 && chs[0].Subscribers == len(subs)
	})
	before := openFDs(t)
	const frames = 300
	for seq := uint64(1); seq <= frames; seq++ {
		send(t, pub, frameMsg(seq, 64, 48, fakeJPEG(64, 48, seq, 20000), nil))
		for _, s := range subs {
			if f, _ := readFrame(t, s, 5*time.Second); f.Seq != seq {
				t.Fatalf("got seq %d; want %d", f.Seq, seq)
			}
		}
	}
	if zc := h.Stats().ZeroCopyFrames; zc != frames*uint64(len(subs)) {
		t.Fatalf("%d frames sent by sendfile; want %d", zc, frames*len(subs))
	}
	// The channel keeps its newest frame and the one before: their files
	// may stay; the other 298 must go.
	eventually(t, 5*time.Second, "the memory files of old frames closed", func() bool {
		runtime.GC()
		return h.zc.files.Load() <= 2 && openFDs(t) <= before+2
	})
	if b := h.zc.bytes.Load(); b > 2*21000 {
		t.Errorf("memory files still hold %d bytes", b)
	}
}
