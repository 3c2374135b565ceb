package hub

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// subscriberOf returns the hub's state of the subscriber whose client
// side is c, or nil.
func subscriberOf(h *Hub, c net.Conn) *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	for wc := range h.conns {
		if s := wc.sub.Load(); s != nil && wc.remote == c.LocalAddr().String() {
			return s
		}
	}
	return nil
}

// TestReloadClosesStalledConnectionsTogether: a reload that revokes the
// token of several subscribers whose writes are stalled does not wait for
// them one after another: it returns at once, and they all go within
// about one controlWait, not one each. The viewer whose token still
// grants its right goes on.
func TestReloadClosesStalledConnectionsTogether(t *testing.T) {
	const stalledN = 8
	const oldView, keptView, pubTok = "old-view-token-0123456", "kept-view-token-0123456", "publish-token-0123456"
	grants := func(view string) *Auth {
		return grantsAuth(t, Grant{Token: view, Rights: RightView, Channels: []string{"*"}},
			Grant{Token: keptView, Rights: RightView, Channels: []string{"cam"}},
			Grant{Token: pubTok, Rights: RightPublish, Channels: []string{"*"}})
	}
	// A write timeout far away: the watchdog must not be what ends them.
	h, base := testHub(t, Config{DenyDelay: -1, Auth: grants(oldView), SendBuffer: 8 << 10, WriteTimeout: time.Minute})
	bearer := func(tok string) string { return "Authorization: Bearer " + tok + "\r\n" }
	var stalled []net.Conn
	for range stalledN {
		c, _, _ := rawClient(t, base, protocol.PathSubscribe+"cam", bearer(oldView))
		c.(*net.TCPConn).SetReadBuffer(4096)
		stalled = append(stalled, c)
	}
	dialAs := func(endpoint, tok string) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(base, endpoint, "cam"), http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	keptIn := frames(t, dialAs(protocol.PathSubscribe, keptView))
	pub := dialAs(protocol.PathPublish, pubTok)

	// Publish until every stalled subscriber's writer is blocked in a write.
	blocked := func() bool {
		for _, c := range stalled {
			if s := subscriberOf(h, c); s == nil || s.writeStart.Load() == 0 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(20 * time.Second)
	for seq := uint64(1); !blocked(); seq++ {
		if time.Now().After(deadline) {
			t.Fatal("the stalled subscribers' writers never blocked")
		}
		send(t, pub, frameMsg(seq, 64, 48, fakeJPEG(64, 48, seq, 256<<10), nil))
		<-keptIn // at the kept viewer's pace
	}

	start := time.Now()
	closed := h.Reload(Access{Auth: grants("new-view-token-0123456")})
	returned := time.Since(start)
	if closed != stalledN {
		t.Fatalf("Reload closed %d; want the %d stalled subscribers", closed, stalledN)
	}
	// It did not wait for them: they are all still there, writes blocked.
	if n := h.Stats().Connections; n != stalledN+2 {
		t.Fatalf("%d connections right after Reload returned; want all %d still closing", n, stalledN+2)
	}
	// All of them go in about one controlWait (each write in progress gets
	// that long), not stalledN of them.
	eventually(t, stalledN*controlWait/2, "the stalled subscribers to go together", func() bool {
		return h.Stats().Connections == 2
	})
	t.Logf("Reload returned in %v; %d stalled subscribers gone in %v", returned, stalledN, time.Since(start))
	if ev := h.Stats().Evicted; ev != 0 {
		t.Errorf("%d evicted; want 0 (revoked, not stalled past the write timeout)", ev)
	}
	// The kept viewer still gets frames.
	send(t, pub, frameMsg(1000, 64, 48, fakeJPEG(64, 48, 1000, 100), nil))
	for {
		select {
		case f := <-keptIn:
			if f.Seq == 1000 {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the kept viewer got nothing after the reload")
		}
	}
}

// TestStalledMJPEGReaderIsEvictedAndCounted: an MJPEG reader that stops
// reading is evicted at the write timeout like a WebSocket subscriber:
// counted in Stats.Evicted, logged, and no longer a reader of the channel,
// while a WebSocket subscriber of the same channel goes on.
func TestStalledMJPEGReaderIsEvictedAndCounted(t *testing.T) {
	var logs testutil.LockedBuffer
	h, base := testHub(t, Config{WriteTimeout: 300 * time.Millisecond, MaxFPSPerPublisher: 1e6,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	addr := strings.TrimPrefix(base, "http://")
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	stalled, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stalled.Close() })
	fmt.Fprintf(stalled, "GET /channels/cam/stream.mjpeg HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	healthy := dial(t, base, protocol.PathSubscribe, "cam")
	healthyIn := frames(t, healthy)
	pub := dial(t, base, protocol.PathPublish, "cam")
	eventually(t, 5*time.Second, "both readers joined", func() bool { return h.Readers("cam") == 2 })

	deadline := time.Now().Add(20 * time.Second)
	for seq := uint64(1); h.Stats().Evicted == 0; seq++ {
		if time.Now().After(deadline) {
			t.Fatal("the stalled MJPEG reader was never evicted")
		}
		send(t, pub, frameMsg(seq, 64, 48, fakeJPEG(64, 48, seq, 512<<10), nil))
		select {
		case <-healthyIn:
		case <-time.After(5 * time.Second):
			t.Fatalf("the WebSocket subscriber did not get frame %d", seq)
		}
	}
	eventually(t, 5*time.Second, "the evicted reader to leave the channel", func() bool { return h.Readers("cam") == 1 })
	if ev := h.Stats().Evicted; ev != 1 {
		t.Fatalf("%d evicted; want 1", ev)
	}
	if out := logs.String(); !strings.Contains(out, "reader evicted") || !strings.Contains(out, "reader=mjpeg") {
		t.Fatalf("no eviction line for the MJPEG reader:\n%s", out)
	}
}
