package subscriber

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/matleak"
	"framehub/internal/testutil"
	"framehub/protocol"
)

func TestMain(m *testing.M) {
	// The viewer's GUI thread lives as long as the process (view_cgo.go).
	os.Exit(testutil.CheckIgnoring(m.Run(), []string{"framehub/subscriber.onGUIThread.func1.1"}, matleak.Check))
}

// runHub serves a hub on addr ("127.0.0.1:0" for any port) and returns the
// address and a stop function that shuts it down.
func runHub(t *testing.T, addr string) (string, func()) {
	t.Helper()
	return runHubConfig(t, addr, hub.Config{})
}

// runHubConfig is runHub with a hub configuration.
func runHubConfig(t *testing.T, addr string, cfg hub.Config) (string, func()) {
	t.Helper()
	h := hubtest.StartAt(t, addr, cfg)
	return h.Addr, h.Stop
}

// publish sends frames seq from..to at about 100 fps.
func publish(t *testing.T, addr, channel string, from, to uint64) {
	t.Helper()
	u, _ := protocol.ChannelURL(addr, protocol.PathPublish, channel)
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for seq := from; seq <= to; seq++ {
		f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 4, Height: 4, Seq: seq,
			CaptureTime: time.Now().UnixNano()}, Payload: testutil.FakeJPEG(4, 4, seq, 40)}
		if err := c.WriteMessage(websocket.BinaryMessage, protocol.AppendFrame(nil, &f)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReconnectsAfterHubRestart(t *testing.T) {
	addr, stop := runHub(t, "127.0.0.1:0")
	cl, err := New(Config{Hub: "http://" + addr, Channel: "cam", MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan uint64, 1000)
	runErr := make(chan error, 1)
	go func() {
		runErr <- cl.Run(ctx, func(f *Frame) error {
			got <- f.Seq
			if f.Seq == 2000 {
				return ErrStop
			}
			return nil
		})
	}()
	waitFor := func(want uint64) {
		t.Helper()
		for {
			select {
			case s := <-got:
				if s == want {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no frame %d before the deadline", want)
			}
		}
	}
	testutil.Eventually(t, 10*time.Second, "the client connected", cl.Connected)
	publish(t, addr, "cam", 1, 5)
	waitFor(5)
	stop()
	addr2, _ := runHub(t, addr) // the same address, as a restarted hub would have
	testutil.Eventually(t, 10*time.Second, "the client to reconnect", cl.Connected)
	publish(t, addr2, "cam", 1996, 2000)
	waitFor(2000)
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if cl.Reconnects() != 1 {
		t.Fatalf("reconnects = %d; want 1", cl.Reconnects())
	}
}

func TestPermanentRefusal(t *testing.T) {
	auth, err := hub.NewAuth([]hub.Grant{{Token: "view-token-0123456789", Rights: hub.RightView, Channels: []string{"*"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Auth: auth, DenyDelay: -1})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	cl, err := New(Config{Hub: srv.URL, Channel: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	err = cl.Run(context.Background(), func(*Frame) error { return nil })
	var rerr *protocol.RefusedError
	if !errors.As(err, &rerr) || rerr.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "--token-file") {
		t.Fatalf("Run = %v; want a 401 refusal with a hint naming --token-file", err)
	}
	if _, err := New(Config{Hub: srv.URL, Channel: "a/b"}); err == nil {
		t.Fatal("New accepted an invalid channel name")
	}
}

func TestCreditClientAcks(t *testing.T) {
	addr, _ := runHub(t, "127.0.0.1:0")
	cl, _ := New(Config{Hub: addr, Channel: "cam", Credit: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	done := make(chan error, 1)
	go func() {
		done <- cl.Run(ctx, func(f *Frame) error {
			n++
			if n == 10 {
				return ErrStop
			}
			return nil
		})
	}()
	hubtest.WaitSubscribers(t, addr, 1, 5*time.Second)
	// With a window of one, the client only gets more than one frame if it
	// acknowledges each.
	publish(t, addr, "cam", 1, 60)
	if err := <-done; err != nil || n != 10 {
		t.Fatalf("Run = %v after %d frames; want 10 frames with acks", err, n)
	}
}

// TestSilentHubIsDropped: a hub that accepts the connection and then says
// nothing at all (no frames, no pings: it vanished, or the network was
// cut) is given up after IdleTimeout, and the client dials again.
func TestSilentHubIsDropped(t *testing.T) {
	var mu sync.Mutex
	var accepted []time.Time
	var conns []*websocket.Conn
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		accepted = append(accepted, time.Now())
		conns = append(conns, ws) // held open and silent
		mu.Unlock()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	cl, err := New(Config{Hub: "http://" + ln.Addr().String(), Channel: "cam", IdleTimeout: 400 * time.Millisecond,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	cl.Run(ctx, func(*Frame) error { return nil })
	mu.Lock()
	defer mu.Unlock()
	if len(accepted) < 2 {
		t.Fatalf("connected %d times in %v; a silent hub must be dropped after the idle timeout and dialled again", len(accepted), time.Since(start))
	}
	if gap := accepted[1].Sub(accepted[0]); gap < 400*time.Millisecond || gap > 1200*time.Millisecond {
		t.Fatalf("redialled %v after the first connection; want the idle timeout (400 ms) plus a short backoff", gap)
	}
}

// TestClientFollowsHubLimits: a hub run with larger limits than the
// defaults relays a frame with 100 KB of metadata and an 8K
// picture; the client accepts what its hub accepts (announced in the
// handshake), and a client whose own guard is smaller skips such a frame,
// counts it, acks it, and goes on with the next.
func TestClientFollowsHubLimits(t *testing.T) {
	h := hub.New(hub.Config{MaxMetaBytes: 200_000})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	meta := []byte(`{"note":"` + strings.Repeat("x", 100_000) + `"}`)
	big := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 7680, Height: 4320, Seq: 1,
		CaptureTime: time.Now().UnixNano()}, Meta: meta, Payload: testutil.FakeJPEG(7680, 4320, 1, 500)}
	small := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 8, Height: 8, Seq: 2,
		CaptureTime: time.Now().UnixNano()}, Payload: testutil.FakeJPEG(8, 8, 2, 100)}

	run := func(channel string, guard protocol.Limits) (seqs []uint64, invalid uint64) {
		cl, err := New(Config{Hub: srv.URL, Channel: channel, Credit: 1, Guard: guard})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := make(chan error, 1)
		var shown atomic.Int32
		go func() {
			done <- cl.Run(ctx, func(f *Frame) error {
				seqs = append(seqs, f.Seq)
				shown.Add(1)
				if f.Seq == 2 {
					return ErrStop
				}
				return nil
			})
		}()
		u, _ := protocol.ChannelURL(srv.URL, protocol.PathPublish, channel)
		pub, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		testutil.Eventually(t, 5*time.Second, "the client connected", func() bool {
			select {
			case err := <-done:
				t.Fatalf("Run ended before connecting: %v", err)
			default:
			}
			return cl.Connected()
		})
		pub.WriteMessage(websocket.BinaryMessage, protocol.AppendFrame(nil, &big))
		// With a window of one, frame 2 reaches the client only if frame 1
		// was acknowledged, whether shown or skipped.
		testutil.Eventually(t, 5*time.Second, "frame 1 shown or skipped", func() bool { return cl.Invalid() != 0 || shown.Load() != 0 })
		pub.WriteMessage(websocket.BinaryMessage, protocol.AppendFrame(nil, &small))
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		return seqs, cl.Invalid()
	}
	if seqs, inv := run("a", protocol.Limits{}); len(seqs) != 2 || seqs[0] != 1 || inv != 0 {
		t.Fatalf("default guard: frames %v, %d refused; want both frames", seqs, inv)
	}
	if seqs, inv := run("b", protocol.Limits{MaxMetaBytes: 64 << 10}); len(seqs) != 1 || seqs[0] != 2 || inv != 1 {
		t.Fatalf("64 KiB metadata guard: frames %v, %d refused; want frame 1 skipped, frame 2 shown", seqs, inv)
	}
	if seqs, inv := run("c", protocol.Limits{MaxPixels: 1920 * 1080}); len(seqs) != 1 || seqs[0] != 2 || inv != 1 {
		t.Fatalf("1080p pixel guard: frames %v, %d refused; want frame 1 skipped, frame 2 shown", seqs, inv)
	}
}

// TestCreditAcksFramesItCannotParse: in credit mode the hub sends the next
// frame only once the last is acknowledged, so a frame whose header this
// client refuses outright (a later protocol version) must be acked all
// the same, from the sequence number every header carries at the same
// place; a message too short to carry one ends the connection, and the
// client dials again with fresh credit.
func TestCreditAcksFramesItCannotParse(t *testing.T) {
	frame := func(seq uint64) []byte {
		f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 8, Height: 8, Seq: seq, CaptureTime: time.Now().UnixNano()},
			Payload: testutil.FakeJPEG(8, 8, seq, 100)}
		return protocol.AppendFrame(nil, &f)
	}
	var mu sync.Mutex
	var acked []uint64
	conns := 0
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		mu.Lock()
		conns++
		first := conns == 1
		mu.Unlock()
		ack := func() bool { // what a hub in credit mode waits for
			ws.SetReadDeadline(time.Now().Add(2 * time.Second))
			var c protocol.Control
			if err := ws.ReadJSON(&c); err != nil || c.Op != protocol.OpAck {
				return false
			}
			mu.Lock()
			acked = append(acked, c.Seq)
			mu.Unlock()
			return true
		}
		if first {
			later := frame(1)
			later[4] = protocol.Version + 1 // a header this client cannot parse
			ws.WriteMessage(websocket.BinaryMessage, later)
			if !ack() {
				return
			}
			ws.WriteMessage(websocket.BinaryMessage, frame(2))
			if !ack() {
				return
			}
			ws.WriteMessage(websocket.BinaryMessage, []byte("short")) // no sequence number to ack
			ack()
			return
		}
		ws.WriteMessage(websocket.BinaryMessage, frame(3))
		ack()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()
	cl, err := New(Config{Hub: "http://" + ln.Addr().String(), Channel: "cam", Credit: 1,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []uint64
	err = cl.Run(ctx, func(f *Frame) error {
		got = append(got, f.Seq)
		if f.Seq == 3 {
			return ErrStop
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if err != nil || !slices.Equal(got, []uint64{2, 3}) || !slices.Equal(acked, []uint64{1, 2}) || conns != 2 {
		t.Fatalf("Run = %v, frames %v, acks %v over %d connections; want frames [2 3], acks [1 2] (the last is not acked: Run stops on it) over 2", err, got, acked, conns)
	}
	if cl.Invalid() != 2 {
		t.Fatalf("invalid = %d; want 2 (the later version and the short message)", cl.Invalid())
	}
}
