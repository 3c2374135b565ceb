package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// TestMain fails the run if any goroutine outlives the tests.
func TestMain(m *testing.M) { os.Exit(testutil.CheckServer(m.Run())) }

// testHub starts a hub behind a real loopback listener and stops both when
// the test ends.
func testHub(t *testing.T, cfg Config) (*Hub, string) {
	t.Helper()
	h := New(cfg)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
		// The tests' own http.Get calls leave keep-alive connections.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	return h, srv.URL
}

func wsURL(base, endpoint, channel string) string {
	return "ws" + strings.TrimPrefix(base, "http") + endpoint + channel
}

func dial(t *testing.T, base, endpoint, channel string) *websocket.Conn {
	t.Helper()
	return dialWith(t, base, endpoint, channel, nil)
}

// dialWith is dial with request headers (a token: bearer).
func dialWith(t *testing.T, base, endpoint, channel string, hd http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(wsURL(base, endpoint, channel), hd)
	if err != nil {
		t.Fatalf("dial %s%s: %v (response %v)", endpoint, channel, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testJPEG encodes a solid-colour picture.
func testJPEG(t testing.TB, w, h int, c color.RGBA) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeJPEG is a payload of size bytes that passes the hub's checks for a
// w×h JPEG; its bytes encode seq so subscribers can check content.
func fakeJPEG(w, h int, seq uint64, size int) []byte { return testutil.FakeJPEG(w, h, seq, size) }

func frameMsg(seq uint64, w, h uint32, payload []byte, meta []byte) []byte {
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey, Width: w, Height: h,
		Seq: seq, CaptureTime: time.Now().UnixNano()}, Meta: meta, Payload: payload}
	return protocol.AppendFrame(nil, &f)
}

func send(t testing.TB, c *websocket.Conn, msg []byte) {
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func readFrame(t testing.TB, c *websocket.Conn, timeout time.Duration) (protocol.Frame, []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	typ, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if typ != websocket.BinaryMessage {
		t.Fatalf("message type %d; want binary", typ)
	}
	f, err := protocol.ParseMessage(msg, protocol.DefaultLimits)
	if err != nil {
		t.Fatalf("parse frame: %v", err)
	}
	return f, msg
}

// TestFanoutContent: every subscriber gets every frame byte for byte,
// whether the hub sends it by sendfile from a memory file (the default, on
// plain TCP), by writes (configured off), or by writes because the memory
// files' share of the budget is too small for a frame.
func TestFanoutContent(t *testing.T) {
	for _, c := range []struct {
		name     string
		cfg      Config
		zeroCopy bool
	}{
		{"sendfile", Config{}, zeroCopySupported},
		{"write", Config{NoZeroCopy: true}, false},
		{"over the memory files' budget", Config{MaxMemory: 10 << 10}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, base := testHub(t, c.cfg)
			const nsub, nframes = 40, 30
			subs := make([]*websocket.Conn, nsub)
			for i := range subs {
				subs[i] = dial(t, base, protocol.PathSubscribe, "cam")
			}
			pub := dial(t, base, protocol.PathPublish, "cam")
			testutil.Eventually(t, 5*time.Second, "all subscribers registered", func() bool {
				chs := h.Channels()
				return len(chs) == 1 && chs[0].Subscribers == nsub
			})
			// Publish one frame at a time and wait for every subscriber to get it, so
			// each one must see every frame with the right bytes.
			for seq := uint64(1); seq <= nframes; seq++ {
				msg := frameMsg(seq, 64, 48, fakeJPEG(64, 48, seq, 3000+int(seq)), nil)
				send(t, pub, msg)
				for i, s := range subs {
					f, got := readFrame(t, s, 5*time.Second)
					if f.Seq != seq || !bytes.Equal(got, msg) {
						t.Fatalf("subscriber %d got seq %d (%d bytes); want seq %d with the published bytes", i, f.Seq, len(got), seq)
					}
				}
			}
			// A writer counts its frame once sendfile has returned, which
			// can be after the subscriber has read it: wait for the count.
			if c.zeroCopy {
				testutil.Eventually(t, 5*time.Second, "every frame counted as sent by sendfile", func() bool {
					return h.Stats().ZeroCopyFrames == nsub*nframes
				})
			}
			if zc := h.Stats().ZeroCopyFrames; !c.zeroCopy && zc != 0 {
				t.Errorf("%d frames sent by sendfile; want none", zc)
			}
		})
	}
}

func TestNewSubscriberGetsNewestFrameAtOnce(t *testing.T) {
	_, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam")
	probe := dial(t, base, protocol.PathSubscribe, "cam")
	for seq := uint64(1); seq <= 5; seq++ {
		send(t, pub, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 100), nil))
	}
	testutil.Eventually(t, 5*time.Second, "frame 5 on probe", func() bool { f, _ := readFrame(t, probe, 5*time.Second); return f.Seq == 5 })
	late := dial(t, base, protocol.PathSubscribe, "cam")
	if f, _ := readFrame(t, late, 2*time.Second); f.Seq != 5 {
		t.Fatalf("late subscriber's first frame is seq %d; want the newest, 5", f.Seq)
	}
}

func TestSubscriberWaitsForPublisher(t *testing.T) {
	h, base := testHub(t, Config{})
	sub := dial(t, base, protocol.PathSubscribe, "later")
	testutil.Eventually(t, 5*time.Second, "the subscriber waiting on a channel nobody publishes", func() bool { return h.Readers("later") == 1 })
	pub := dial(t, base, protocol.PathPublish, "later")
	send(t, pub, frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 50), nil))
	if f, _ := readFrame(t, sub, 3*time.Second); f.Seq != 1 {
		t.Fatalf("got seq %d; want 1", f.Seq)
	}
	// The publisher leaves and a new one appears: the same subscriber goes on.
	pub.Close()
	pub2 := dial(t, base, protocol.PathPublish, "later")
	send(t, pub2, frameMsg(100, 8, 8, fakeJPEG(8, 8, 100, 50), nil))
	if f, _ := readFrame(t, sub, 3*time.Second); f.Seq != 100 {
		t.Fatalf("after the publisher came back got seq %d; want 100", f.Seq)
	}
}

// stalledSubscriber does the WebSocket handshake by hand on a socket with a
// tiny receive buffer, then never reads again.
func stalledSubscriber(t *testing.T, base, channel string) net.Conn {
	t.Helper()
	c, _, _ := rawClient(t, base, protocol.PathSubscribe+channel, "")
	c.(*net.TCPConn).SetReadBuffer(4096)
	return c
}

func TestStalledSubscriberIsEvictedAndDelaysNoOne(t *testing.T) {
	h, base := testHub(t, Config{WriteTimeout: 500 * time.Millisecond})
	stalled := stalledSubscriber(t, base, "cam")
	_ = stalled
	healthy := dial(t, base, protocol.PathSubscribe, "cam")
	pub := dial(t, base, protocol.PathPublish, "cam")

	var received atomic.Uint64
	var lastSeq atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			healthy.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, msg, err := healthy.ReadMessage()
			if err != nil {
				return
			}
			f, err := protocol.ParseMessage(msg, protocol.DefaultLimits)
			if err == nil {
				received.Add(1)
				lastSeq.Store(f.Seq)
			}
		}
	}()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// 150 frames of 200 KB at ~100 fps: 30 MB through the hub while one
	// subscriber reads nothing.
	const n = 150
	for seq := uint64(1); seq <= n; seq++ {
		send(t, pub, frameMsg(seq, 640, 480, fakeJPEG(640, 480, seq, 200_000), nil))
		time.Sleep(10 * time.Millisecond)
	}
	testutil.Eventually(t, 5*time.Second, "healthy subscriber to get the last frame", func() bool { return lastSeq.Load() == n })
	testutil.Eventually(t, 5*time.Second, "the stalled subscriber to be evicted", func() bool { return h.Stats().Evicted == 1 })
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	healthy.Close()
	<-done

	if got := received.Load(); got < n*9/10 {
		t.Errorf("healthy subscriber received %d of %d frames; a stalled neighbour must not slow it down", got, n)
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Errorf("heap grew by %d bytes over 30 MB of frames; want bounded (one frame per mailbox)", grew)
	}
	// The evicted socket was reset: the stalled peer reads an error, not a close.
	stalled.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := io.Copy(io.Discard, stalled)
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("stalled peer's read ended with %v; want a connection reset", err)
	}
	testutil.Eventually(t, 3*time.Second, "the evicted subscriber to leave the channel", func() bool {
		chs := h.Channels()
		return len(chs) == 1 && chs[0].Subscribers == 0
	})
}

func TestSlowSubscriberSkipsAndStaysFresh(t *testing.T) {
	h, base := testHub(t, Config{SendBuffer: 16 << 10})
	sub, _, err := (&websocket.Dialer{ReadBufferSize: 4096}).Dial(wsURL(base, protocol.PathSubscribe, "cam"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sub.NetConn().(*net.TCPConn).SetReadBuffer(16 << 10)
	pub := dial(t, base, protocol.PathPublish, "cam")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // publish at ~100 fps for as long as the test reads
		defer wg.Done()
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			if pub.WriteMessage(websocket.BinaryMessage, frameMsg(seq, 320, 240, fakeJPEG(320, 240, seq, 60_000), nil)) != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// Read at 10 fps for 2.5 s: without dropping, age would grow by 0.9 s per second.
	var prev uint64
	var maxAge time.Duration
	gaps := 0
	for range 25 {
		f, _ := readFrame(t, sub, 3*time.Second)
		if f.Seq <= prev {
			t.Fatalf("sequence went from %d to %d; want strictly increasing", prev, f.Seq)
		}
		if prev != 0 && f.Seq > prev+1 {
			gaps++
		}
		prev = f.Seq
		maxAge = max(maxAge, time.Since(time.Unix(0, f.CaptureTime)))
		time.Sleep(100 * time.Millisecond)
	}
	if gaps < 20 {
		t.Errorf("only %d of 25 reads skipped frames; a 10 fps reader of a 100 fps channel must skip", gaps)
	}
	// Bounded: what the socket buffers can hold plus one read interval, far
	// below the 2+ s a queue would have built up.
	if maxAge > 600*time.Millisecond {
		t.Errorf("frame age reached %v; want bounded (< 600ms)", maxAge)
	}
	if chs := h.Channels(); len(chs) != 1 || chs[0].Skipped == 0 {
		t.Errorf("hub counted no skipped frames: %+v", chs)
	}
}

// frames reads frames from c in a goroutine until c is closed, since a
// gorilla connection cannot be read again after a read deadline passes.
func frames(t *testing.T, c *websocket.Conn) <-chan protocol.Frame {
	ch := make(chan protocol.Frame, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ch)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if f, err := protocol.ParseMessage(msg, protocol.DefaultLimits); err == nil {
				ch <- f
			}
		}
	}()
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return ch
}

func TestCreditModeBoundsInFlight(t *testing.T) {
	for _, window := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("window", window), func(t *testing.T) {
			_, base := testHub(t, Config{})
			// Credit mode from the first frame, asked in the URL.
			sub := dial(t, base, protocol.PathSubscribe, fmt.Sprintf("cam?window=%d", window))
			in := frames(t, sub)
			pub := dial(t, base, protocol.PathPublish, "cam")
			// Paced, so that each frame could be sent on its own if credit allowed.
			for seq := uint64(1); seq <= 30; seq++ {
				send(t, pub, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 100), nil))
				time.Sleep(10 * time.Millisecond)
			}
			next := func(when string) uint64 { return nextSeq(t, in, when) }
			noMore := func(when string) { noFrameBeyond(t, in, window, when) }
			var got []uint64
			for range window {
				got = append(got, next("within the window"))
			}
			noMore("before any ack")
			// One ack returns one credit, spent on the newest frame, which waited
			// in the mailbox.
			if err := sub.WriteJSON(protocol.Control{Op: protocol.OpAck, Seq: got[0]}); err != nil {
				t.Fatal(err)
			}
			if seq := next("after one ack"); seq != 30 {
				t.Fatalf("after one ack got seq %d; want the newest, 30", seq)
			}
			noMore("after one ack")
			// An ack is cumulative: acknowledging 30 returns every credit.
			send(t, pub, frameMsg(31, 8, 8, fakeJPEG(8, 8, 31, 100), nil))
			noMore("frame 31 without credit")
			sub.WriteJSON(protocol.Control{Op: protocol.OpAck, Seq: 30})
			if seq := next("after acking 30"); seq != 31 {
				t.Fatalf("after acking 30 got seq %d; want 31", seq)
			}
		})
	}
}

// nextSeq returns the sequence number of the next frame from in, failing
// the test if none comes within 3 s.
func nextSeq(t *testing.T, in <-chan protocol.Frame, when string) uint64 {
	t.Helper()
	select {
	case f := <-in:
		return f.Seq
	case <-time.After(3 * time.Second):
		t.Fatalf("%s: no frame", when)
	}
	return 0
}

// noFrameBeyond fails the test if a frame comes from in within 300 ms:
// the subscriber has no credit left in its window.
func noFrameBeyond(t *testing.T, in <-chan protocol.Frame, window int, when string) {
	t.Helper()
	select {
	case f := <-in:
		t.Fatalf("%s: received seq %d beyond a credit window of %d", when, f.Seq, window)
	case <-time.After(300 * time.Millisecond):
	}
}

func closeCode(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		t.Fatalf("read ended with %v; want a close frame", err)
	}
}

func TestPublisherTakeover(t *testing.T) {
	h, base := testHub(t, Config{})
	sub := dial(t, base, protocol.PathSubscribe, "cam")
	old := dial(t, base, protocol.PathPublish, "cam")
	send(t, old, frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 50), nil))
	readFrame(t, sub, 3*time.Second)
	newer := dial(t, base, protocol.PathPublish, "cam")
	if code, text := closeCode(t, old); code != protocol.CloseReplaced || !strings.Contains(text, "replaced") {
		t.Fatalf("old publisher closed with %d %q; want %d replaced", code, text, protocol.CloseReplaced)
	}
	send(t, newer, frameMsg(500, 8, 8, fakeJPEG(8, 8, 500, 50), nil))
	if f, _ := readFrame(t, sub, 3*time.Second); f.Seq != 500 {
		t.Fatalf("subscriber got %d; want the new publisher's 500", f.Seq)
	}
	if h.Stats().Replaced != 1 {
		t.Fatalf("replaced = %d; want 1", h.Stats().Replaced)
	}
	if chs := h.Channels(); len(chs) != 1 || !chs[0].Live {
		t.Fatalf("channel not live after takeover: %+v", chs)
	}
}

// TestReplacedPublisherThatNeverReads: a replaced publisher that never
// reads (so never sees its 4001) and keeps sending publishes nothing after
// the takeover: subscribers get the new publisher's frames only, and the
// old one's connection is ended.
func TestReplacedPublisherThatNeverReads(t *testing.T) {
	h, base := testHub(t, Config{})
	sub := dial(t, base, protocol.PathSubscribe, "cam")
	old := dial(t, base, protocol.PathPublish, "cam")
	send(t, old, frameMsg(1000, 8, 8, fakeJPEG(8, 8, 1000, 50), nil))
	readFrame(t, sub, 3*time.Second)
	oldDone := make(chan error, 1)
	stop := make(chan struct{})
	go func() { // 100 fps, never reading
		for seq := uint64(1001); ; seq++ {
			select {
			case <-stop:
				oldDone <- nil
				return
			case <-time.After(10 * time.Millisecond):
			}
			old.SetWriteDeadline(time.Now().Add(time.Second))
			if err := old.WriteMessage(websocket.BinaryMessage, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 50), nil)); err != nil {
				oldDone <- err
				return
			}
		}
	}()
	defer close(stop)
	newer := dial(t, base, protocol.PathPublish, "cam")
	testutil.Eventually(t, 3*time.Second, "the takeover", func() bool { return h.Stats().Replaced == 1 })
	var seen []uint64
	for seq := uint64(1); seq <= 30; seq++ {
		send(t, newer, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 50), nil))
		f, _ := readFrame(t, sub, 3*time.Second)
		for f.Seq != seq { // frames the old publisher slipped in before the takeover
			if f.Seq < 1000 || len(seen) > 0 {
				t.Fatalf("after the new publisher's frames %v the subscriber got %d", seen, f.Seq)
			}
			f, _ = readFrame(t, sub, 3*time.Second)
		}
		seen = append(seen, f.Seq)
	}
	select {
	case err := <-oldDone:
		if err == nil {
			t.Fatal("the old publisher's writes never failed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the old publisher's connection is still open 5 s after the takeover")
	}
	// The old publisher is gone, having sent until the end: had the hub
	// relayed any of its frames after the takeover, they would come
	// before this one.
	send(t, newer, frameMsg(31, 8, 8, fakeJPEG(8, 8, 31, 50), nil))
	if f, _ := readFrame(t, sub, 3*time.Second); f.Seq != 31 {
		t.Fatalf("after the new publisher's frames %v and the old one's end, the subscriber got %d; want 31", seen, f.Seq)
	}
}

func TestBadChannelNames(t *testing.T) {
	h, base := testHub(t, Config{})
	names := []string{"..", "%2e%2e", "a/b", "a%2Fb", "a%00b", strings.Repeat("x", 65), "sp%20ace", "%3Cb%3E"}
	paths := []string{protocol.PathPublish + "%s", protocol.PathSubscribe + "%s", "/channels/%s/snapshot.jpg", "/channels/%s/stream.mjpeg"}
	want := 0
	for _, p := range paths {
		for _, n := range names {
			u := base + fmt.Sprintf(p, n)
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET %s = %d; want 400", u, resp.StatusCode)
			}
			want++
		}
	}
	if got := h.Stats().Refused["bad_channel_name"]; got != uint64(want) {
		t.Errorf("bad_channel_name refusals = %d; want %d", got, want)
	}
	if len(h.Channels()) != 0 {
		t.Errorf("bad names created channels: %+v", h.Channels())
	}
}

func TestBadPublisherInput(t *testing.T) {
	good := frameMsg(1, 16, 16, fakeJPEG(16, 16, 1, 100), nil)
	for _, c := range []struct {
		name    string
		typ     int
		msg     []byte
		code    int
		counter string
	}{
		{"bad_magic", websocket.BinaryMessage, append([]byte("XXXX"), good[4:]...), websocket.CloseInvalidFramePayloadData, "bad_frame"},
		{"truncated", websocket.BinaryMessage, good[:len(good)-3], websocket.CloseInvalidFramePayloadData, "bad_frame"},
		{"not_jpeg", websocket.BinaryMessage, frameMsg(2, 16, 16, []byte{1, 2, 3, 4}, nil), websocket.CloseInvalidFramePayloadData, "bad_frame"},
		{"bad_metadata", websocket.BinaryMessage, frameMsg(2, 16, 16, fakeJPEG(16, 16, 2, 10), []byte("{oops")), websocket.CloseInvalidFramePayloadData, "bad_frame"},
		{"text", websocket.TextMessage, []byte("hello"), websocket.CloseUnsupportedData, "wrong_message_type"},
		{"too_big", websocket.BinaryMessage, frameMsg(2, 16, 16, fakeJPEG(16, 16, 2, 70_000), nil), websocket.CloseMessageTooBig, "too_big"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, base := testHub(t, Config{MaxFrameBytes: 64 << 10})
			sub := dial(t, base, protocol.PathSubscribe, "cam")
			pub := dial(t, base, protocol.PathPublish, "cam")
			send(t, pub, good)
			readFrame(t, sub, 3*time.Second)
			if err := pub.WriteMessage(c.typ, c.msg); err != nil {
				t.Fatal(err)
			}
			if code, text := closeCode(t, pub); code != c.code {
				t.Fatalf("close code %d %q; want %d", code, text, c.code)
			}
			testutil.Eventually(t, 3*time.Second, c.counter+" refusal counted", func() bool { return h.Stats().Refused[c.counter] == 1 })
			// The channel keeps its last good frame.
			resp, err := http.Get(base + "/channels/cam/snapshot.jpg")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(body, good[protocol.HeaderLen:]) {
				t.Fatalf("snapshot after bad input: %d, %d bytes; want the last good frame", resp.StatusCode, len(body))
			}
		})
	}
}

func TestBadSubscriberInput(t *testing.T) {
	for _, c := range []struct {
		name    string
		typ     int
		msg     []byte
		code    int
		counter string
	}{
		{"binary", websocket.BinaryMessage, []byte{1, 2, 3}, websocket.CloseUnsupportedData, "wrong_message_type"},
		{"bad_json", websocket.TextMessage, []byte("{nope"), websocket.CloseInvalidFramePayloadData, "bad_control"},
		{"unknown_op", websocket.TextMessage, []byte(`{"op":"shell"}`), websocket.CloseInvalidFramePayloadData, "bad_control"},
		{"too_big", websocket.TextMessage, bytes.Repeat([]byte("x"), 4096), websocket.CloseMessageTooBig, "too_big"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, base := testHub(t, Config{})
			sub := dial(t, base, protocol.PathSubscribe, "cam")
			if err := sub.WriteMessage(c.typ, c.msg); err != nil {
				t.Fatal(err)
			}
			if code, _ := closeCode(t, sub); code != c.code {
				t.Fatalf("close code %d; want %d", code, c.code)
			}
			testutil.Eventually(t, 3*time.Second, c.counter+" refusal counted", func() bool { return h.Stats().Refused[c.counter] == 1 })
		})
	}
}

func TestChannelsAPIAndSnapshot(t *testing.T) {
	_, base := testHub(t, Config{})
	resp, err := http.Get(base + "/channels/none/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("snapshot of empty channel = %d; want 404", resp.StatusCode)
	}
	sub := dial(t, base, protocol.PathSubscribe, "cam")
	pub := dial(t, base, protocol.PathPublish, "cam")
	jpg := testJPEG(t, 320, 240, color.RGBA{200, 30, 40, 255})
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 320, Height: 240, Seq: 9, CaptureTime: time.Now().UnixNano()}, Payload: jpg}
	send(t, pub, protocol.AppendFrame(nil, &f))
	readFrame(t, sub, 3*time.Second)

	resp, err = http.Get(base + "/channels/cam/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "image/jpeg" || cc != "no-store" {
		t.Fatalf("snapshot headers: Content-Type %q, Cache-Control %q", ct, cc)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(body))
	if err != nil || cfg.Width != 320 || cfg.Height != 240 {
		t.Fatalf("snapshot decodes as %dx%d (%v); want 320x240", cfg.Width, cfg.Height, err)
	}

	var infos []map[string]any
	getJSON(t, base+"/api/channels", &infos)
	if len(infos) != 1 {
		t.Fatalf("channels = %v; want one", infos)
	}
	for _, k := range []string{"name", "width", "height", "codec", "fps", "bitrate_bps", "subscribers", "frames", "skipped", "last_frame_age_ms"} {
		if _, ok := infos[0][k]; !ok {
			t.Errorf("channel info lacks %q: %v", k, infos[0])
		}
	}
	if infos[0]["name"] != "cam" || infos[0]["width"] != 320.0 || infos[0]["codec"] != "jpeg" || infos[0]["subscribers"] != 1.0 || infos[0]["frames"] != 1.0 {
		t.Errorf("channel info = %v", infos[0])
	}
	resp, err = http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestRawFrameSnapshot(t *testing.T) {
	_, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "raw")
	w, hgt := 32, 16
	px := make([]byte, w*hgt*3)
	for i := 0; i < len(px); i += 3 {
		px[i], px[i+1], px[i+2] = 255, 0, 0 // BGR blue
	}
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecRaw, ElemType: protocol.ElemUint8, Channels: 3,
		Width: uint32(w), Height: uint32(hgt), Seq: 1, CaptureTime: time.Now().UnixNano()}, Payload: px}
	send(t, pub, protocol.AppendFrame(nil, &f))
	var img image.Image
	testutil.Eventually(t, 3*time.Second, "raw snapshot", func() bool {
		resp, err := http.Get(base + "/channels/raw/snapshot.jpg")
		if err != nil || resp.StatusCode != 200 {
			return false
		}
		defer resp.Body.Close()
		img, err = jpeg.Decode(resp.Body)
		return err == nil
	})
	r, g, b, _ := img.At(w/2, hgt/2).RGBA()
	if b>>8 < 200 || r>>8 > 60 || g>>8 > 60 {
		t.Fatalf("centre of raw BGR blue frame decodes as rgb(%d,%d,%d); want blue", r>>8, g>>8, b>>8)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
}

func TestMJPEGReadByFFmpeg(t *testing.T) {
	ffprobe := testutil.RequireTool(t, "ffprobe")
	ffmpeg := testutil.RequireTool(t, "ffmpeg")
	_, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam")
	jpgs := [][]byte{testJPEG(t, 320, 240, color.RGBA{255, 0, 0, 255}), testJPEG(t, 320, 240, color.RGBA{0, 0, 255, 255})}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(1); ctx.Err() == nil; seq++ {
			f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 320, Height: 240, Seq: seq, CaptureTime: time.Now().UnixNano()}, Payload: jpgs[seq%2]}
			if pub.WriteMessage(websocket.BinaryMessage, protocol.AppendFrame(nil, &f)) != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	url := base + "/channels/cam/stream.mjpeg"
	tctx, tcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer tcancel()
	out, err := exec.CommandContext(tctx, ffprobe, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height", "-of", "json", url).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	if s := probe.Streams[0]; s.Codec != "mjpeg" || s.Width != 320 || s.Height != 240 {
		t.Fatalf("ffprobe sees %+v; want mjpeg 320x240", s)
	}
	// ffmpeg decodes 10 frames of the stream.
	dir := t.TempDir()
	cmd := exec.CommandContext(tctx, ffmpeg, "-v", "error", "-i", url, "-frames:v", "10", dir+"/f%02d.png")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir + "/f10.png"); err != nil {
		t.Fatalf("ffmpeg did not decode 10 frames: %v", err)
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	h := New(Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	sub := dial(t, srv.URL, protocol.PathSubscribe, "cam")
	pub := dial(t, srv.URL, protocol.PathPublish, "cam")
	send(t, pub, frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 40), nil))
	readFrame(t, sub, 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.Shutdown(ctx) }()
	for _, c := range []*websocket.Conn{sub, pub} {
		if code, _ := closeCode(t, c); code != websocket.CloseGoingAway {
			t.Fatalf("close code %d; want 1001", code)
		}
		c.Close()
	}
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	resp, err := http.Get(srv.URL + protocol.PathSubscribe + "cam")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("after shutdown subscribe = %d; want 503", resp.StatusCode)
		}
	}
}

// silentPeer does the WebSocket handshake on endpoint by hand and then
// neither sends nor reads: a peer that vanished without closing.
func silentPeer(t *testing.T, base, endpoint, channel string) net.Conn {
	t.Helper()
	c, _, _ := rawClient(t, base, endpoint+channel, "")
	return c
}

func TestDeadPeersAreDropped(t *testing.T) {
	h, base := testHub(t, Config{PingInterval: 100 * time.Millisecond, PongWait: 400 * time.Millisecond})
	silentPeer(t, base, protocol.PathPublish, "cam")
	silentPeer(t, base, protocol.PathSubscribe, "cam")
	testutil.Eventually(t, 3*time.Second, "the silent publisher to count as live", func() bool {
		chs := h.Channels()
		return len(chs) == 1 && chs[0].Live
	})
	start := time.Now()
	// Neither answers pings: both are dropped after the pong wait.
	testutil.Eventually(t, 3*time.Second, "the silent peers to be dropped", func() bool {
		return h.Stats().Connections == 0
	})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dead peers lingered %v; want about the 400 ms pong wait", d)
	}
	if chs := h.Channels(); len(chs) != 0 && chs[0].Live {
		t.Errorf("channel still live after its publisher vanished: %+v", chs)
	}
}

// TestLiveSubscribersArePinged: a subscriber on a channel without frames
// gets the hub's pings, answers them, and so outlives the pong wait many
// times over; pings come from the watchdog's walk, not a timer each.
func TestLiveSubscribersArePinged(t *testing.T) {
	h, base := testHub(t, Config{PingInterval: 100 * time.Millisecond, PongWait: 300 * time.Millisecond})
	c := dial(t, base, protocol.PathSubscribe, "quiet")
	var pings atomic.Int32
	c.SetPingHandler(func(data string) error {
		pings.Add(1)
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	testutil.Eventually(t, 5*time.Second, "ten pings", func() bool { return pings.Load() >= 10 })
	if n := h.Stats().Connections; n != 1 {
		t.Fatalf("%d connections after ten pings; the answering subscriber should still be there", n)
	}
}

// TestReplacedWhileStreamingHearsWhy: a publisher sending frames as fast
// as it can is taken over, again and again; each time it must get the
// close frame 4001, never a bare end of its connection (1006), or it
// would take the channel straight back. The hub's reader used to return
// without owing a close frame when the takeover came while a frame was on
// its way through publishFrame.
func TestReplacedWhileStreamingHearsWhy(t *testing.T) {
	_, base := testHub(t, Config{MaxFPSPerPublisher: 100000})
	sub := dial(t, base, protocol.PathSubscribe, "cam")
	for round := range 30 {
		first := uint64(round*100000 + 1)
		old := dial(t, base, protocol.PathPublish, "cam")
		go func() {
			for seq := first; ; seq++ {
				if old.WriteMessage(websocket.BinaryMessage, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 50), nil)) != nil {
					return
				}
			}
		}()
		// The channel is old's (its frames flow) before it is taken over.
		for {
			if f, _ := readFrame(t, sub, 3*time.Second); f.Seq >= first {
				break
			}
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond) // the takeover at varied points of the stream
		newer := dial(t, base, protocol.PathPublish, "cam")
		if code, _ := closeCode(t, old); code != protocol.CloseReplaced {
			t.Fatalf("round %d: the replaced publisher's connection ended with %d; want %d", round, code, protocol.CloseReplaced)
		}
		newer.Close()
	}
}
