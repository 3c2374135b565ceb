// Package hubtest is the one test harness for hubs: it starts a real hub on
// a loopback port, publishes and subscribes over real WebSockets as the
// clients do, and waits for conditions with deadlines instead of sleeps.
// Only tests import it; the hub's own package tests, which look at its
// insides, have their own helpers.
package hubtest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/hub"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// Hub is a running hub on 127.0.0.1.
type Hub struct {
	*hub.Hub
	Addr string // host:port
	URL  string // http://host:port

	srv  *http.Server
	done chan struct{}
	once sync.Once
}

// Start serves a hub with cfg on a free loopback port ("127.0.0.1:0") and
// stops it when the test ends.
func Start(t testing.TB, cfg hub.Config) *Hub { return StartAt(t, "127.0.0.1:0", cfg) }

// StartAt serves a hub on addr, retrying for a moment if the port of a hub
// just stopped is not free yet, and stops it when the test ends.
func StartAt(t testing.TB, addr string, cfg hub.Config) *Hub {
	t.Helper()
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	h := &Hub{Hub: hub.New(cfg), Addr: ln.Addr().String(), done: make(chan struct{})}
	h.URL = "http://" + h.Addr
	h.srv = &http.Server{Handler: h.Hub}
	go func() { defer close(h.done); _ = h.srv.Serve(ln) }()
	t.Cleanup(h.Stop)
	return h
}

// Stop shuts the hub down and closes its listener; later calls do nothing.
func (h *Hub) Stop() {
	h.once.Do(func() {
		_ = h.Hub.Close()
		_ = h.srv.Close()
		<-h.done
		http.DefaultClient.CloseIdleConnections()
	})
}

// Frame returns a valid frame message: a w×h fake JPEG of size bytes whose
// content depends on seq, captured now, with meta (may be nil).
func Frame(seq uint64, w, h, size int, meta []byte) []byte {
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey,
		Width: uint32(w), Height: uint32(h), Seq: seq, CaptureTime: time.Now().UnixNano()},
		Meta: meta, Payload: testutil.FakeJPEG(w, h, seq, size)}
	return protocol.AppendFrame(nil, &f)
}

// Publish publishes frames to channel on the hub at addr (host:port or a
// URL), one per interval, numbered from 1; frames with no capture time are
// stamped with the time of sending. It returns when all are sent, ctx
// ends, or a newer publisher takes the channel (4001), and fails the test
// if the hub refuses.
func Publish(t testing.TB, ctx context.Context, addr, channel string, interval time.Duration, frames []protocol.Frame) {
	t.Helper()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	PublishPaced(t, ctx, addr, channel, frames, func(uint64) bool {
		select {
		case <-tick.C:
			return true
		case <-ctx.Done():
			return false
		}
	})
}

// PublishPaced publishes frames as Publish does, but paced by next instead
// of a clock: after sending frame seq it calls next(seq), which returns
// when the next frame may go, or false to stop (it may also fail the test).
// A test that needs every frame handled, whatever the machine's load,
// sends the next one when the previous one's result has arrived.
func PublishPaced(t testing.TB, ctx context.Context, addr, channel string, frames []protocol.Frame, next func(seq uint64) bool) {
	t.Helper()
	u, err := protocol.ChannelURL(addr, protocol.PathPublish, channel)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		t.Fatalf("publish to %s: %v", channel, err)
	}
	// Read what the hub sends (pings, viewer notices, its close), so that
	// a close is seen and answered, as a real publisher does.
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	defer func() { c.Close(); <-closed }()
	replaced := func() bool {
		select {
		case err := <-closed:
			closed <- err // for the deferred wait
			return websocket.IsCloseError(err, protocol.CloseReplaced)
		case <-time.After(time.Second): // the close may trail the failed write
			return false
		}
	}
	for i, f := range frames {
		f.Seq = uint64(i + 1)
		if f.CaptureTime == 0 {
			f.CaptureTime = time.Now().UnixNano()
		}
		if err := c.WriteMessage(websocket.BinaryMessage, protocol.AppendFrame(nil, &f)); err != nil {
			if ctx.Err() != nil || replaced() {
				return
			}
			t.Errorf("publish frame %d: %v", i+1, err)
			return
		}
		if !next(f.Seq) {
			return
		}
	}
}

// Stats reads the hub's /api/stats over HTTP.
func Stats(addr string) (protocol.Stats, error) {
	base, _, err := protocol.HubURL(addr)
	if err != nil {
		return protocol.Stats{}, err
	}
	resp, err := http.Get(base.String() + "/api/stats")
	if err != nil {
		return protocol.Stats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return protocol.Stats{}, errors.New("GET /api/stats: " + resp.Status)
	}
	var st protocol.Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// WaitSubscribers waits, at most d, until the hub at addr counts at least
// n subscribers: a test's clients have connected.
func WaitSubscribers(t testing.TB, addr string, n int, d time.Duration) {
	t.Helper()
	testutil.Eventually(t, d, "subscribers to connect", func() bool {
		st, err := Stats(addr)
		return err == nil && st.Subscribers >= n
	})
}

// Subscribe connects a WebSocket subscriber to channel (query, such as
// "window=1", may be empty) and returns the frames it receives, parsed
// with the default limits, in order; the channel closes when the
// connection ends. The subscriber goes when the test ends.
func Subscribe(t testing.TB, addr, channel, query string) (*websocket.Conn, <-chan protocol.Frame) {
	t.Helper()
	u, err := protocol.ChannelURL(addr, protocol.PathSubscribe, channel)
	if err != nil {
		t.Fatal(err)
	}
	if query != "" {
		u += "?" + query
	}
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("subscribe to %s: %v", channel, err)
	}
	out := make(chan protocol.Frame, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if f, err := protocol.ParseMessage(msg, protocol.DefaultLimits); err == nil {
				select {
				case out <- f:
				default: // the test stopped reading: newest-wins here too
				}
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return c, out
}

// Next returns the next frame from in, failing the test if none arrives
// within d or the connection ended.
func Next(t testing.TB, in <-chan protocol.Frame, d time.Duration) protocol.Frame {
	t.Helper()
	select {
	case f, ok := <-in:
		if !ok {
			t.Fatal("the subscription ended")
		}
		return f
	case <-time.After(d):
		t.Fatalf("no frame within %v", d)
	}
	return protocol.Frame{}
}

// JPEGFrame is a frame carrying payload, a JPEG of w×h; Publish numbers and
// stamps it.
func JPEGFrame(w, h int, payload []byte) protocol.Frame {
	return protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: uint32(w), Height: uint32(h)}, Payload: payload}
}

// HugeFrames are what a hostile publisher sends between ordinary frames to
// a hub that allows them: consistent 16384×16384 JPEGs, one that libjpeg
// decodes (to 256 MiB of gray) and one that is only a header.
func HugeFrames() []protocol.Frame {
	return []protocol.Frame{
		JPEGFrame(16384, 16384, testutil.BombJPEG(16384, 16384)),
		JPEGFrame(16384, 16384, testutil.FakeJPEG(16384, 16384, 1, 600)),
	}
}
