package process

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"framehub/hub"
	"framehub/internal/testutil"
	"framehub/protocol"
	"framehub/publisher"
	"framehub/subscriber"
)

// testHub serves a real hub on loopback for the test and returns its
// address (host:port).
func testHub(t testing.TB, cfg hub.Config) string {
	t.Helper()
	h := hub.New(cfg)
	srv := httptest.NewServer(h) // 127.0.0.1, a free port
	t.Cleanup(func() { h.Close(); srv.Close() })
	return strings.TrimPrefix(srv.URL, "http://")
}

// picture is an encoded frame to publish: a JPEG and its size.
type picture struct {
	jpeg []byte
	w, h int
	meta []byte // optional metadata
}

// push publishes pics in order, one per interval, numbered from first and
// stamped with the time of sending, until all are sent or ctx ends. It
// returns the capture time of each frame sent, by sequence number.
func push(t testing.TB, ctx context.Context, addr, channel string, first uint64, interval time.Duration, pics []picture) map[uint64]int64 {
	t.Helper()
	s, err := publisher.NewSender(publisher.SenderConfig{Hub: addr, Channel: channel})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sent := map[uint64]int64{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i, p := range pics {
		f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey,
			Width: uint32(p.w), Height: uint32(p.h), Seq: first + uint64(i), CaptureTime: time.Now().UnixNano()},
			Meta: p.meta, Payload: p.jpeg}
		if err := s.Send(ctx, protocol.AppendFrame(nil, &f)); err != nil {
			if ctx.Err() != nil {
				return sent
			}
			t.Fatalf("publish frame %d: %v", f.Seq, err)
		}
		sent[f.Seq] = f.CaptureTime
		select {
		case <-tick.C:
		case <-ctx.Done():
			return sent
		}
	}
	return sent
}

// received is a frame a collector got.
type received struct {
	seq      uint64
	capture  int64
	at       time.Time
	w, h     int
	meta     []byte
	payload  []byte
	boxes    []protocol.Box
	boxesBad *protocol.BoxProblem
}

// collector subscribes to a channel and keeps every frame that arrives.
type collector struct {
	mu     sync.Mutex
	frames []received
	wake   chan struct{}
}

// collect subscribes to channel until the test ends.
func collect(t testing.TB, addr, channel string) *collector {
	t.Helper()
	cl, err := subscriber.New(subscriber.Config{Hub: addr, Channel: channel, Credit: 4})
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl.Run(ctx, func(f *subscriber.Frame) error {
			r := received{seq: f.Seq, capture: f.CaptureTime, at: f.Received, w: int(f.Width), h: int(f.Height),
				meta: append([]byte(nil), f.Meta...), payload: append([]byte(nil), f.Payload...)}
			r.boxes, r.boxesBad = protocol.ParseBoxes(f.Meta)
			c.mu.Lock()
			c.frames = append(c.frames, r)
			c.mu.Unlock()
			select {
			case c.wake <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	testutil.Eventually(t, 10*time.Second, "the collector connected", cl.Connected) // so that no frame is missed
	return c
}

// all returns the frames so far.
func (c *collector) all() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.frames...)
}

// waitFor waits until ok holds for the frames so far (checked as frames
// arrive, and every 10 ms), or fails the test after timeout.
func (c *collector) waitFor(t testing.TB, timeout time.Duration, what string, ok func([]received) bool) []received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond) // ok may look at more than the frames
	defer poll.Stop()
	for {
		if fs := c.all(); ok(fs) {
			return fs
		}
		select {
		case <-c.wake:
		case <-poll.C:
		case <-deadline.C:
			fs := c.all()
			t.Fatalf("after %v: %s; got %d frames", timeout, what, len(fs))
			return nil
		}
	}
}

// lastSeq returns a condition: a frame numbered at least seq arrived.
func lastSeq(seq uint64) func([]received) bool {
	return func(fs []received) bool { return len(fs) > 0 && fs[len(fs)-1].seq >= seq }
}

// hubConfig is the hub the tests run: the defaults, with a quiet log.
func hubConfig() hub.Config { return hub.Config{} }

// stoppableHub serves a hub on addr ("127.0.0.1:0" for a free port) until
// stop is called or the test ends, so that a test can restart a hub on
// the same address.
func stoppableHub(t testing.TB, addr string) (string, func()) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port of a hub just stopped may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hubConfig())
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			h.Close()
			srv.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}
