package hub

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
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
	testutil.Eventually(t, stalledN*controlWait/2, "the stalled subscribers to go together", func() bool {
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
	testutil.Eventually(t, 5*time.Second, "both readers joined", func() bool { return h.Readers("cam") == 2 })

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
	testutil.Eventually(t, 5*time.Second, "the evicted reader to leave the channel", func() bool { return h.Readers("cam") == 1 })
	if ev := h.Stats().Evicted; ev != 1 {
		t.Fatalf("%d evicted; want 1", ev)
	}
	if out := logs.String(); !strings.Contains(out, "reader evicted") || !strings.Contains(out, "reader=mjpeg") {
		t.Fatalf("no eviction line for the MJPEG reader:\n%s", out)
	}
}

// frameCounter counts the frames a reader receives, and the newest one's
// sequence number.
type frameCounter struct{ n, last atomic.Uint64 }

// count reads c's messages until it ends, reading only their headers.
func (fc *frameCounter) count(wg *sync.WaitGroup, c *websocket.Conn) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		var hdr [protocol.HeaderLen]byte
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, r, err := c.NextReader()
			if err == nil {
				_, err = io.ReadFull(r, hdr[:])
			}
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
			if err != nil {
				return
			}
			seq, _ := protocol.PeekSeq(hdr[:])
			fc.last.Store(seq)
			fc.n.Add(1)
		}
	}()
}

// TestThousandStalledSubscribers: 1000 subscribers that never read and 10
// that do, on one channel fed 90 KB frames. The stalled ones are evicted at
// the write deadline and their sockets reset, so the kernel's TCP memory
// they held is freed, and once the eviction window has passed the
// healthy ones receive as many frames as the readers of a control channel
// on the same hub, fed the same frames at the same time by a publisher of
// its own, with no stalled subscriber: they lose nothing to the stalled.
//
// The comparison is with the control channel, measured in the same run,
// rather than with the frames sent: the healthy readers live in this
// process, and when the machine (or the race detector) makes them slower
// than the frame rate they skip frames, as any slow reader must; the
// control readers skip as many.
func TestThousandStalledSubscribers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const stalledN, healthyN = 1000, 10
	fps := 30
	if raceEnabled {
		fps = 10 // the readers live in this process, slowed by the detector
	}
	const writeTimeout = 2 * time.Second
	h, base := testHub(t, Config{WriteTimeout: writeTimeout})
	port := base[strings.LastIndexByte(base, ':')+1:]
	memBefore := sockstatTCPMem(t)
	heapBefore := h.Stats().HeapBytes
	stalled := make([]net.Conn, stalledN)
	for i := range stalled {
		stalled[i] = stalledSubscriber(t, base, "cam")
	}
	var got, control [healthyN]frameCounter
	var wg sync.WaitGroup
	for i := range healthyN {
		got[i].count(&wg, dial(t, base, protocol.PathSubscribe, "cam"))
		control[i].count(&wg, dial(t, base, protocol.PathSubscribe, "calm"))
	}
	pub := dial(t, base, protocol.PathPublish, "cam")
	calm := dial(t, base, protocol.PathPublish, "calm")
	testutil.Eventually(t, 10*time.Second, "every subscriber joined", func() bool {
		return h.Readers("cam") == stalledN+healthyN && h.Readers("calm") == healthyN
	})
	memPeak, heapPeak, queuedPeak := memBefore, heapBefore, 0
	var sentAfterWindow uint64
	var gotAtWindow, controlAtWindow [healthyN]uint64
	start := time.Now()
	window := writeTimeout + time.Second // the deadline, then a second for the resets
	tick := time.NewTicker(time.Second / time.Duration(fps))
	seq := uint64(0)
	for time.Since(start) < window+4*time.Second {
		seq++
		<-tick.C
		msg := frameMsg(seq, 1280, 720, fakeJPEG(1280, 720, seq, 90_000), nil)
		send(t, pub, msg)
		send(t, calm, msg)
		if time.Since(start) >= window {
			if sentAfterWindow == 0 {
				for i := range healthyN {
					gotAtWindow[i], controlAtWindow[i] = got[i].n.Load(), control[i].n.Load()
				}
			}
			sentAfterWindow++
		}
		if seq%5 == 0 {
			memPeak = max(memPeak, sockstatTCPMem(t))
			heapPeak = max(heapPeak, h.Stats().HeapBytes)
			_, _, q := portSockets(t, port)
			queuedPeak = max(queuedPeak, q)
		}
	}
	tick.Stop()
	testutil.Eventually(t, 10*time.Second, "every stalled subscriber evicted", func() bool { return h.Stats().Evicted >= stalledN })
	if ev := h.Stats().Evicted; ev != stalledN {
		t.Errorf("%d evicted, want %d", ev, stalledN)
	}
	// What is in flight arrives: a reader is always sent the newest frame
	// in the end, so each has its count once it has the last frame.
	testutil.Eventually(t, 10*time.Second, "every reader to get the last frame", func() bool {
		for i := range healthyN {
			if got[i].last.Load() != seq || control[i].last.Load() != seq {
				return false
			}
		}
		return true
	})
	afterWindow := func(fc *[healthyN]frameCounter, at *[healthyN]uint64) (sum uint64, least uint64) {
		least = sentAfterWindow
		for i := range healthyN {
			d := fc[i].n.Load() - at[i]
			sum += d
			least = min(least, d)
		}
		return sum, least
	}
	healthy, healthyLeast := afterWindow(&got, &gotAtWindow)
	calmSum, calmLeast := afterWindow(&control, &controlAtWindow)
	t.Logf("after the eviction window: %d frames sent to each channel; healthy readers got %d in all (the least %d), control readers %d (the least %d)",
		sentAfterWindow, healthy, healthyLeast, calmSum, calmLeast)
	if healthy*10 < calmSum*9 {
		t.Errorf("the healthy readers got %d frames after the eviction window, the control channel's %d: the stalled subscribers cost them more than a tenth", healthy, calmSum)
	}
	// No healthy reader is left behind either: the least served gets about
	// what the least served control reader gets (a fifth less at most: one
	// reader's share of the cores varies more than ten readers' sum).
	if healthyLeast*10 < calmLeast*8 {
		t.Errorf("a healthy subscriber got %d of the %d frames sent after the eviction window; the least served control reader got %d", healthyLeast, sentAfterWindow, calmLeast)
	}
	// The hub's side: its sockets to the stalled peers are gone (reset),
	// and with them the frames queued for them: the sockets on the hub's
	// port (both ends, this test's only, whatever other processes on the
	// machine hold) keep less than a tenth of their peak.
	var socks, hubQueued, queued int
	testutil.Eventually(t, 10*time.Second, "the hub's sockets to stalled peers to be gone, with their queues", func() bool {
		socks, hubQueued, queued = portSockets(t, port)
		return socks <= 2*healthyN+2 && queued <= queuedPeak/10
	})
	// What is left is the reset peers' receive queues, in this process only
	// because the test plays them (on a real network that memory is on
	// their machines), and not listed in /proc/net/tcp: the kernel's TCP
	// memory shows them. It is the whole machine's figure, other processes'
	// sockets included, so it is logged, not checked.
	memEvicted := sockstatTCPMem(t)
	for _, c := range stalled {
		c.Close()
	}
	memAfter := sockstatTCPMem(t)
	pg := os.Getpagesize()
	t.Logf("queued on the hub's port: peak %d KiB, after eviction %d KiB (hub: %d sockets, %d bytes queued)",
		queuedPeak>>10, queued>>10, socks, hubQueued)
	t.Logf("kernel TCP memory (the whole machine): before %d KiB, peak %d KiB, after eviction %d KiB, after the peers close %d KiB; hub heap before %d KiB, peak %d KiB",
		memBefore*pg>>10, memPeak*pg>>10, memEvicted*pg>>10, memAfter*pg>>10, heapBefore>>10, heapPeak>>10)
	pub.Close()
	calm.Close()
	h.Close()
	wg.Wait()
}
