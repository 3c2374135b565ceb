//go:build linux

package hub

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"framehub/internal/testutil"
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
// closed once the channel has let go of the frames and their sends are
// over (no garbage collection needed), so a long stream leaves neither
// file descriptors nor their memory behind.
func TestZeroCopyFilesAreClosed(t *testing.T) {
	h, base := testHub(t, Config{MaxFPSPerPublisher: 1e6}) // frames go as fast as the subscribers read
	var subs []*websocket.Conn
	for range 4 {
		subs = append(subs, dial(t, base, protocol.PathSubscribe, "cam"))
	}
	pub := dial(t, base, protocol.PathPublish, "cam")
	testutil.Eventually(t, 5*time.Second, "subscribers registered", func() bool {
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
	// A writer counts its frame once its send has returned, which may be
	// just after the reader has the frame.
	testutil.Eventually(t, 5*time.Second, "every frame counted as sent by sendfile", func() bool {
		return h.Stats().ZeroCopyFrames == frames*uint64(len(subs))
	})
	// The channel keeps its newest frame and the one before: their files
	// may stay; the other 298 must go.
	testutil.Eventually(t, 5*time.Second, "the memory files of old frames closed", func() bool {
		return h.zc.files.Load() <= 2 && openFDs(t) <= before+2
	})
	if b := h.zc.bytes.Load(); b > 2*21000 {
		t.Errorf("memory files still hold %d bytes", b)
	}
}

// TestZeroCopyForCreditSubscribers: in credit mode (the browser page's),
// frames still go out by sendfile, both a frame sent at once and one that
// waited in the mailbox for an ack; each byte for byte as published.
func TestZeroCopyForCreditSubscribers(t *testing.T) {
	if !zeroCopySupported {
		t.Skip("no sendfile on this platform")
	}
	h, base := testHub(t, Config{MaxFPSPerPublisher: 1e6})
	subs := make([]*websocket.Conn, 4)
	for i := range subs {
		subs[i] = dial(t, base, protocol.PathSubscribe, "cam?window=1")
	}
	pub := dial(t, base, protocol.PathPublish, "cam")
	testutil.Eventually(t, 5*time.Second, "subscribers registered", func() bool {
		chs := h.Channels()
		return len(chs) == 1 && chs[0].Subscribers == len(subs)
	})
	// Each round publishes three frames at once: the first goes out on
	// the credit the subscriber has, the others wait for its ack (and the
	// third overwrites the second if the ack comes later than both). Each
	// subscriber reads and acknowledges, as the page does, until it has the
	// round's last frame.
	const rounds = 20
	published := map[uint64][]byte{}
	var received uint64
	waited := 0
	for r := range uint64(rounds) {
		for seq := 3*r + 1; seq <= 3*r+3; seq++ {
			published[seq] = frameMsg(seq, 64, 48, fakeJPEG(64, 48, seq, 20000), nil)
			send(t, pub, published[seq])
		}
		for i, s := range subs {
			for n := 0; ; n++ {
				if n == 3 {
					t.Fatalf("subscriber %d: more than three frames in round %d", i, r)
				}
				f, got := readFrame(t, s, 5*time.Second)
				if !bytes.Equal(got, published[f.Seq]) {
					t.Fatalf("subscriber %d: seq %d is not as published", i, f.Seq)
				}
				received++
				if n > 0 {
					waited++
				}
				ack := fmt.Sprintf(`{"op":"ack","seq":%d}`, f.Seq)
				if err := s.WriteMessage(websocket.TextMessage, []byte(ack)); err != nil {
					t.Fatal(err)
				}
				if f.Seq == 3*r+3 {
					break
				}
			}
		}
	}
	if waited == 0 {
		t.Fatal("no frame waited for an ack: the test did not exercise credit")
	}
	testutil.Eventually(t, 5*time.Second, "every frame counted as sent by sendfile", func() bool {
		return h.Stats().ZeroCopyFrames == received
	})
}

// TestCloseNeverSplitsAFrame: a frame sent from a memory file in several
// sendfile calls (a slow reader, a small send buffer) is sent under one
// hold of the socket's write lock, as net.Conn.Write holds it, so a close
// frame written meanwhile by another goroutine (here a shutdown's) comes
// after the frame, not inside it.
func TestCloseNeverSplitsAFrame(t *testing.T) {
	const size = 2 << 20
	h, base := testHub(t, Config{SendBuffer: 8 << 10, MaxFPSPerPublisher: 1e6})
	slow, br, _ := rawClient(t, base, protocol.PathSubscribe+"cam", "")
	if tcp, ok := slow.(*net.TCPConn); ok {
		_ = tcp.SetReadBuffer(32 << 10)
	}
	fast := dial(t, base, protocol.PathSubscribe, "cam") // a second reader: the frame goes by sendfile
	pub := dial(t, base, protocol.PathPublish, "cam")
	testutil.Eventually(t, 5*time.Second, "subscribers registered", func() bool {
		chs := h.Channels()
		return len(chs) == 1 && chs[0].Subscribers == 2
	})
	var sender *fileSender
	h.mu.Lock()
	for c := range h.conns {
		if s := c.sub.Load(); s != nil && c.remote == slow.LocalAddr().String() {
			sender = s.files
		}
	}
	h.mu.Unlock()
	if sender == nil {
		t.Fatal("the slow subscriber has no sendfile sender")
	}
	msg := frameMsg(1, 64, 48, fakeJPEG(64, 48, 1, size), nil)
	send(t, pub, msg)
	if f, _ := readFrame(t, fast, 5*time.Second); f.Seq != 1 {
		t.Fatalf("fast reader got seq %d", f.Seq)
	}
	// The slow reader's writer is inside the frame, waiting for room.
	// Shut down (a close frame to every connection) while it reads.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(ctx) }()
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [10]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x82 || hdr[1] != 127 || binary.BigEndian.Uint64(hdr[2:]) != uint64(len(msg)) {
		t.Fatalf("frame header % x; want a binary frame of %d bytes", hdr, len(msg))
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("reading the frame: %v", err)
	}
	if !bytes.Equal(got, msg) {
		i := 0
		for got[i] == msg[i] {
			i++
		}
		t.Fatalf("the frame differs from byte %d of %d (another frame written into it?)", i, len(msg))
	}
	if code := readClose(t, slow, br); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d after the frame; want 1001", code)
	}
	slow.Close()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// Shutdown waited for the writer: its counts are settled.
	if sender.pieces < 2 || sender.calls != 1 {
		t.Fatalf("the frame went in %d sendfile calls under %d holds of the write lock; want several under one", sender.pieces, sender.calls)
	}
}

// fdOpen reports whether fd is an open descriptor of this process.
func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// TestMemoryFileLivesAsLongAsItsSends: a frame's memory file is owned by
// reference, not by the garbage collector. A send in progress keeps it
// open, with the frame's bytes, after the channel has let go of the frame
// and the frame has become garbage; the file closes when that send ends;
// and a send that starts after the frame was retired gets no file (it
// writes the frame from memory).
func TestMemoryFileLivesAsLongAsItsSends(t *testing.T) {
	z := newZeroCopy(&Config{MaxMemory: 1 << 30}, slog.New(slog.DiscardHandler))
	if z.off.Load() {
		t.Skip("zero copy is off on this machine")
	}
	msg := frameMsg(1, 64, 48, fakeJPEG(64, 48, 1, 50_000), nil)
	mk := func() *frame {
		buf := append(make([]byte, wsRoom, wsRoom+len(msg)), msg...)
		pf, err := protocol.ParseMessage(buf[wsRoom:], protocol.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		return newFrame(buf, pf, time.Now())
	}
	f := mk()
	wire := append([]byte(nil), f.wire...)
	ff := z.acquire(f) // a writer starts sending f
	if ff == nil {
		t.Fatal("no memory file for a frame")
	}
	again := z.acquire(f) // a second writer, same file
	if again != ff {
		t.Fatal("a second send of the frame got another file")
	}
	z.unref(again)
	z.retire(f) // the channel lets go of f...
	f = nil     // ...and nothing else holds it
	for range 3 {
		runtime.GC()
	}
	if !fdOpen(ff.fd) || z.files.Load() != 1 {
		t.Fatalf("the memory file of a frame being sent was closed (open %v, files %d)", fdOpen(ff.fd), z.files.Load())
	}
	got := make([]byte, len(wire))
	if n, err := unix.Pread(ff.fd, got, 0); err != nil || n != len(wire) || !bytes.Equal(got, wire) {
		t.Fatalf("the memory file no longer holds the frame: %d bytes, %v", n, err)
	}
	z.unref(ff) // the send ends
	if z.files.Load() != 0 || z.bytes.Load() != 0 {
		t.Fatalf("after the last send: %d files, %d bytes; want none", z.files.Load(), z.bytes.Load())
	}

	// Retired before any send asked for it: no file is made.
	g := mk()
	z.retire(g)
	if z.acquire(g) != nil || z.files.Load() != 0 {
		t.Fatal("a retired frame got a memory file")
	}
	// Retired after its file was made and its sends ended: closed at once.
	g = mk()
	z.unref(z.acquire(g))
	z.retire(g)
	if z.files.Load() != 0 || z.acquire(g) != nil {
		t.Fatalf("a retired frame's file: %d open, or handed out again", z.files.Load())
	}
}

// TestRetiredFrameFinishesItsSendfile: a frame going by sendfile to a slow
// reader, while the publisher moves on so that the channel lets go of it
// and the garbage collector runs, reaches the reader whole; and its memory
// file closes once sent.
func TestRetiredFrameFinishesItsSendfile(t *testing.T) {
	const size = 2 << 20
	h, base := testHub(t, Config{SendBuffer: 8 << 10, MaxFPSPerPublisher: 1e6})
	slow, br, _ := rawClient(t, base, protocol.PathSubscribe+"cam", "")
	if tcp, ok := slow.(*net.TCPConn); ok {
		_ = tcp.SetReadBuffer(32 << 10)
	}
	fast := dial(t, base, protocol.PathSubscribe, "cam") // a second reader: frames go by sendfile
	pub := dial(t, base, protocol.PathPublish, "cam")
	testutil.Eventually(t, 5*time.Second, "subscribers registered", func() bool { return h.Readers("cam") == 2 })
	first := frameMsg(1, 64, 48, fakeJPEG(64, 48, 1, size), nil)
	send(t, pub, first)
	readFrame(t, fast, 5*time.Second)
	s := subscriberOf(h, slow)
	testutil.Eventually(t, 5*time.Second, "the slow reader's send under way", func() bool { return s.writeStart.Load() != 0 })
	// Two more frames: the channel holds 2 and 3 and has retired 1.
	for seq := uint64(2); seq <= 3; seq++ {
		send(t, pub, frameMsg(seq, 64, 48, fakeJPEG(64, 48, seq, 1000), nil))
		readFrame(t, fast, 5*time.Second)
	}
	runtime.GC()
	runtime.GC()
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [10]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, binary.BigEndian.Uint64(hdr[2:]))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("reading the frame: %v", err)
	}
	if !bytes.Equal(got, first) {
		t.Fatal("the slow reader's frame is not the one published")
	}
	// Frame 1's file closes once its send is over, with no help from the
	// garbage collector; 2 and 3, the channel's, keep theirs.
	testutil.Eventually(t, 5*time.Second, "the retired frame's file closed", func() bool { return h.zc.files.Load() <= 2 })
}
