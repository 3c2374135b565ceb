package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"

	"framehub/hub"
	"framehub/internal/natstest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

func TestMain(m *testing.M) { os.Exit(testutil.Check(m.Run())) }

// Test timings: hubs announce every 100 ms and forget a silent hub after
// 300 ms; clients reconnect every 100 ms.
const (
	testInterval = 100 * time.Millisecond
	waitLong     = 10 * time.Second
)

// natsServer runs a NATS server in the test process on a loopback port
// (port 0: any) and stops it when the test ends.
func natsServer(t testing.TB, port int, maxPayload int32) *server.Server {
	return natstest.Start(t, natstest.Options{Port: port, MaxPayload: maxPayload})
}

func natsPort(s *server.Server) int { return natstest.Port(s) }

// node is one clustered hub behind a loopback HTTP server.
type node struct {
	name string
	h    *hub.Hub
	bus  *Bus
	url  string
	srv  *httptest.Server
	logs *testutil.LockedBuffer
}

func startNode(t testing.TB, natsURL, name string, tune func(*Config, *hub.Config)) *node {
	t.Helper()
	logs := &testutil.LockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := Config{Servers: []string{natsURL}, Name: name, Logger: log, AnnounceInterval: testInterval,
		ReconnectWait: testInterval, ReassemblyTimeout: 500 * time.Millisecond}
	hcfg := hub.Config{Logger: log, MaxMemory: 256 << 20}
	if tune != nil {
		tune(&cfg, &hcfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hcfg.Bus = b
	h := hub.New(hcfg)
	srv := httptest.NewServer(h)
	n := &node{name: name, h: h, bus: b, url: srv.URL, srv: srv, logs: logs}
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.h.Close()
	n.srv.Close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

// cluster starts a NATS server and n hubs on it, named hub0, hub1, …
func cluster(t testing.TB, n int) (*server.Server, []*node) {
	t.Helper()
	s := natsServer(t, 0, 0)
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, s.ClientURL(), fmt.Sprintf("hub%d", i), nil)
	}
	testutil.Eventually(t, waitLong, "every hub connected", func() bool {
		for _, nd := range nodes {
			if nd.bus.Status().State != "connected" {
				return false
			}
		}
		return true
	})
	return s, nodes
}

func dial(t testing.TB, base, path, channel string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+path+channel, nil)
	if err != nil {
		t.Fatalf("dial %s%s: %v (%v)", path, channel, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// frameMsg is a JPEG frame of seq with a capture time; its payload's bytes
// depend on seq.
func frameMsg(seq uint64, size int) []byte {
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey, Width: 64, Height: 48,
		Seq: seq, CaptureTime: time.Now().UnixNano()}, Payload: testutil.FakeJPEG(64, 48, seq, size)}
	return protocol.AppendFrame(nil, &f)
}

// rawMsg is a raw BGR frame of w×h.
func rawMsg(seq uint64, w, h int) []byte {
	px := make([]byte, w*h*3)
	for i := range px {
		px[i] = byte(uint64(i) + seq)
	}
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecRaw, Flags: protocol.FlagKey, ElemType: protocol.ElemUint8,
		Channels: 3, Width: uint32(w), Height: uint32(h), Seq: seq, CaptureTime: time.Now().UnixNano()}, Payload: px}
	return protocol.AppendFrame(nil, &f)
}

// reader collects a subscriber's messages.
type reader struct {
	conn *websocket.Conn
	mu   sync.Mutex
	msgs [][]byte
	at   []time.Time
	done chan struct{}
	err  error
}

func subscribe(t testing.TB, base, channel string) *reader {
	t.Helper()
	c := dial(t, base, protocol.PathSubscribe, channel)
	r := &reader{conn: c, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
				return
			}
			r.mu.Lock()
			r.msgs = append(r.msgs, msg)
			r.at = append(r.at, time.Now())
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-r.done })
	return r
}

func (r *reader) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.msgs) }

func (r *reader) all() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.msgs...)
}

func (r *reader) last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.msgs) == 0 {
		return nil
	}
	return r.msgs[len(r.msgs)-1]
}

func seqOf(t testing.TB, msg []byte) uint64 {
	t.Helper()
	h, err := protocol.ParseHeader(msg)
	if err != nil {
		t.Fatalf("frame header: %v", err)
	}
	return h.Seq
}

func (r *reader) waitSeq(t testing.TB, seq uint64, what string) {
	t.Helper()
	testutil.Eventually(t, waitLong, what, func() bool {
		m := r.last()
		return m != nil && seqOf(t, m) >= seq
	})
}

func send(t testing.TB, c *websocket.Conn, msg []byte) {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func stats(t testing.TB, base string) protocol.Stats {
	t.Helper()
	var s protocol.Stats
	getJSON(t, base+"/api/stats", &s)
	return s
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

func getText(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// connByName returns the NATS server's view of a hub's connection.
func connByName(t testing.TB, s *server.Server, hubName string) *server.ConnInfo {
	t.Helper()
	cz, err := s.Connz(&server.ConnzOptions{Subscriptions: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cz.Conns {
		if c.Name == "framehub hub "+hubName {
			return c
		}
	}
	t.Fatalf("no NATS connection of %s", hubName)
	return nil
}

func hasSub(c *server.ConnInfo, subject string) bool {
	for _, s := range c.Subs {
		if s == subject {
			return true
		}
	}
	return false
}

// TestCrossHubDelivery: frames published on hub0 reach subscribers on
// every hub with their bytes (so sequence number and capture time) intact,
// in order, never twice; frames cross in chunks when they are bigger than
// the largest message, reassembled exactly.
func TestCrossHubDelivery(t *testing.T) {
	_, nodes := cluster(t, 3)
	var readers []*reader
	for _, n := range nodes {
		readers = append(readers, subscribe(t, n.url, "cam"))
	}
	testutil.Eventually(t, waitLong, "hub1 and hub2 watching cam", func() bool {
		return nodes[1].bus.Status().Watching == 1 && nodes[2].bus.Status().Watching == 1
	})
	pub := dial(t, nodes[0].url, protocol.PathPublish, "cam")
	testutil.Eventually(t, waitLong, "hub0 sending cam to both", func() bool { return nodes[0].bus.Status().Sending == 1 })
	sent := map[uint64][]byte{}
	const frames = 60
	for seq := uint64(1); seq <= frames; seq++ {
		msg := frameMsg(seq, 2000+int(seq)*50)
		sent[seq] = msg
		send(t, pub, msg)
		time.Sleep(5 * time.Millisecond) // pacing: about 200 fps
	}
	for i, r := range readers {
		r.waitSeq(t, frames, fmt.Sprintf("hub%d's subscriber to get the last frame", i))
		var prev uint64
		got := r.all()
		for _, m := range got {
			seq := seqOf(t, m)
			if seq <= prev {
				t.Fatalf("hub%d: frame %d after %d: older after newer, or twice", i, seq, prev)
			}
			if !bytes.Equal(m, sent[seq]) {
				t.Fatalf("hub%d: frame %d differs from what was published (sequence, capture time or payload)", i, seq)
			}
			prev = seq
		}
		// Hubs may skip frames for freshness on a busy machine, but not
		// lose them wholesale.
		if len(got) < frames/4 {
			t.Errorf("hub%d got %d of %d frames", i, len(got), frames)
		}
	}
	st := stats(t, nodes[1].url).Cluster
	if st == nil || st.FramesIn == 0 || st.State != "connected" || st.Hub != "hub1" {
		t.Fatalf("hub1 cluster stats %+v", st)
	}
}

// TestBigFrames: a raw 720p BGR frame (2.7 MB) crosses a server with the
// default max_payload (1 MB) in chunks, and a server configured for it in
// one message; both arrive exactly.
func TestBigFrames(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxPayload int32
		chunked    bool
	}{
		{"default max_payload: chunks", 0, true},
		{"max_payload 4 MB: one message", 4 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := natsServer(t, 0, tc.maxPayload)
			a := startNode(t, s.ClientURL(), "a", nil)
			b := startNode(t, s.ClientURL(), "b", nil)
			r := subscribe(t, b.url, "raw")
			testutil.Eventually(t, waitLong, "b watching", func() bool { return b.bus.Status().Watching == 1 })
			pub := dial(t, a.url, protocol.PathPublish, "raw")
			testutil.Eventually(t, waitLong, "a sending", func() bool { return a.bus.Status().Sending == 1 })
			msgs := map[uint64][]byte{}
			for seq := uint64(1); seq <= 3; seq++ {
				msgs[seq] = rawMsg(seq, 1280, 720)
				send(t, pub, msgs[seq])
				r.waitSeq(t, seq, "the raw frame on hub b")
			}
			for _, m := range r.all() {
				if !bytes.Equal(m, msgs[seqOf(t, m)]) {
					t.Fatalf("frame %d arrived changed", seqOf(t, m))
				}
			}
			st := a.bus.Status()
			if chunked := st.ChunkedOut > 0; chunked != tc.chunked {
				t.Fatalf("chunked out %d with max_payload %d", st.ChunkedOut, st.MaxPayload)
			}
			if inc := stats(t, b.url).Cluster.Refused["incomplete_frame"]; inc != 0 {
				t.Errorf("%d incomplete frames", inc)
			}
		})
	}
}

// TestInterest: a hub subscribes to a channel's frames only while it has
// local readers, and the publishing hub sends them only while some hub
// does; each interested hub gets one copy of each frame.
func TestInterest(t *testing.T) {
	s, nodes := cluster(t, 3)
	pub := dial(t, nodes[0].url, protocol.PathPublish, "cam")
	const size = 20000
	publish := func(from, to uint64) {
		for seq := from; seq <= to; seq++ {
			send(t, pub, frameMsg(seq, size))
			time.Sleep(5 * time.Millisecond)
		}
	}
	// published waits until hub0 has taken frame to and then sent NATS a
	// message after it (an announcement, every testInterval): NATS keeps a
	// connection's order, so anything hub0 sent for those frames has
	// reached the server by then.
	published := func(to uint64) {
		t.Helper()
		testutil.Eventually(t, waitLong, fmt.Sprintf("hub0 to take frame %d", to), func() bool { return stats(t, nodes[0].url).FramesIn >= to })
		msgs := connByName(t, s, "hub0").InMsgs
		testutil.Eventually(t, waitLong, "hub0's next message to NATS", func() bool { return connByName(t, s, "hub0").InMsgs > msgs })
	}
	publish(1, 20)
	testutil.Eventually(t, waitLong, "the other hubs to hear of cam", func() bool {
		return stats(t, nodes[1].url).Cluster.RemoteChannels == 1 && stats(t, nodes[2].url).Cluster.RemoteChannels == 1
	})
	published(20)
	in0 := connByName(t, s, "hub0").InBytes
	out2 := connByName(t, s, "hub2").OutBytes
	publish(21, 60)
	published(60)
	// Nobody reads cam elsewhere: hub0 sends no frame to the server,
	// which sends none to anyone (announcements are a few hundred bytes).
	if n := nodes[0].bus.Status().FramesOut; n != 0 {
		t.Fatalf("hub0 sent %d frames to NATS for a channel nobody else reads", n)
	}
	if d := connByName(t, s, "hub0").InBytes - in0; d > 20*size/10 {
		t.Fatalf("hub0 sent %d bytes to NATS for a channel nobody else reads", d)
	}
	if c := connByName(t, s, "hub2"); hasSub(c, "framehub.frame.cam") {
		t.Fatalf("hub2 subscribes to cam with no reader: %v", c.Subs)
	}

	// A reader on hub1: hub1 subscribes, hub0 sends, hub2 still gets nothing.
	r := subscribe(t, nodes[1].url, "cam")
	testutil.Eventually(t, waitLong, "hub0 sending", func() bool { return nodes[0].bus.Status().Sending == 1 })
	out1 := connByName(t, s, "hub1").OutBytes
	out2 = connByName(t, s, "hub2").OutBytes
	publish(61, 100)
	r.waitSeq(t, 100, "hub1's reader")
	got1 := connByName(t, s, "hub1").OutBytes - out1
	got2 := connByName(t, s, "hub2").OutBytes - out2
	perFrame := float64(got1) / 40 / float64(len(frameMsg(1, size)))
	if perFrame < 0.9 || perFrame > 1.1 {
		t.Errorf("hub1 received %.2f copies of each frame; want 1", perFrame)
	}
	if got2 > 20*size/10 {
		t.Errorf("hub2, with no reader, received %d bytes", got2)
	}
	if !hasSub(connByName(t, s, "hub1"), "framehub.frame.cam") {
		t.Error("hub1 does not subscribe to cam's frames")
	}

	// The reader leaves: hub1 unsubscribes and hub0 stops sending.
	r.conn.Close()
	testutil.Eventually(t, waitLong, "hub1 to unsubscribe", func() bool { return !hasSub(connByName(t, s, "hub1"), "framehub.frame.cam") })
	testutil.Eventually(t, waitLong, "hub0 to stop sending", func() bool { return nodes[0].bus.Status().Sending == 0 })
}

// TestLateJoiner: a reader that joins on another hub gets the channel's
// newest frame at once, not when the publisher sends the next one.
func TestLateJoiner(t *testing.T) {
	_, nodes := cluster(t, 2)
	pub := dial(t, nodes[0].url, protocol.PathPublish, "slow")
	msg := frameMsg(7, 5000)
	send(t, pub, msg)
	testutil.Eventually(t, waitLong, "hub1 to hear of the channel", func() bool {
		var list []protocol.ChannelInfo
		getJSON(t, nodes[1].url+"/api/channels", &list)
		return len(list) == 1
	})
	start := time.Now()
	r := subscribe(t, nodes[1].url, "slow")
	r.waitSeq(t, 7, "the newest frame on the late joiner")
	took := time.Since(start)
	if !bytes.Equal(r.last(), msg) {
		t.Fatal("the late joiner got other bytes")
	}
	t.Logf("late joiner's first frame after %v", took)
	if took > time.Second {
		t.Errorf("late joiner waited %v", took)
	}
	// A snapshot on a third hub waits for the frame to cross.
	third := startNode(t, nodes[0].bus.cfg.Servers[0], "hub2", nil)
	testutil.Eventually(t, waitLong, "hub2 to hear of the channel", func() bool {
		var list []protocol.ChannelInfo
		getJSON(t, third.url+"/api/channels", &list)
		return len(list) == 1
	})
	resp, err := http.Get(third.url + "/channels/slow/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Frame-Seq") != "7" || len(body) != 5000 {
		t.Fatalf("snapshot on hub2: %d seq %q %d bytes", resp.StatusCode, resp.Header.Get("X-Frame-Seq"), len(body))
	}
}

// TestListing: /api/channels on any hub lists every live channel of the
// cluster with the hub that has its publisher.
func TestListing(t *testing.T) {
	_, nodes := cluster(t, 3)
	for i, ch := range []string{"a", "b"} {
		pub := dial(t, nodes[i].url, protocol.PathPublish, ch)
		send(t, pub, frameMsg(1, 3000))
	}
	for _, n := range nodes {
		testutil.Eventually(t, waitLong, n.name+" to list both channels", func() bool {
			var list []protocol.ChannelInfo
			getJSON(t, n.url+"/api/channels", &list)
			return len(list) == 2 && list[0].Name == "a" && list[0].Hub == "hub0" && list[0].Live &&
				list[1].Name == "b" && list[1].Hub == "hub1" && list[1].Live && list[0].Width == 64
		})
	}
	if st := stats(t, nodes[2].url).Cluster; st.RemoteChannels != 2 {
		t.Errorf("hub2 sees %d remote channels; want 2", st.RemoteChannels)
	}
}

// TestListingSourceState: what a publisher says of its camera on one hub
// shows on every hub, in the listing a page there reads, whether that hub
// has readers of the channel or not.
func TestListingSourceState(t *testing.T) {
	_, nodes := cluster(t, 2)
	pub := dial(t, nodes[0].url, protocol.PathPublish, "door")
	send(t, pub, frameMsg(1, 3000))
	if err := pub.WriteMessage(websocket.TextMessage, protocol.NewSourceNotice(protocol.SourceReconnecting, "connection refused").Encode()); err != nil {
		t.Fatal(err)
	}
	listed := func(what string) {
		t.Helper()
		testutil.Eventually(t, waitLong, "hub1 to list the camera as reconnecting "+what, func() bool {
			var list []protocol.ChannelInfo
			getJSON(t, nodes[1].url+"/api/channels", &list)
			return len(list) == 1 && list[0].Hub == "hub0" && list[0].SourceState == protocol.SourceReconnecting &&
				list[0].SourceError == "connection refused"
		})
	}
	listed("with no reader there")
	sub := dial(t, nodes[1].url, protocol.PathSubscribe, "door")
	defer sub.Close()
	listed("with a reader there")
}

// closeCode reads until the connection closes and returns its close code.
func closeCode(t testing.TB, c *websocket.Conn) (int, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLong))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text
			}
			return 0, err.Error()
		}
	}
}

// TestTakeover: a newer publisher on another hub replaces the older one,
// which is closed with 4001; readers everywhere then get only the newer
// publisher's frames.
func TestTakeover(t *testing.T) {
	_, nodes := cluster(t, 3)
	r := subscribe(t, nodes[2].url, "cam")
	old := dial(t, nodes[0].url, protocol.PathPublish, "cam")
	send(t, old, frameMsg(1000, 3000))
	r.waitSeq(t, 1000, "the old publisher's frame on hub2")
	testutil.Eventually(t, waitLong, "hub1 to know of hub0's publisher", func() bool {
		var list []protocol.ChannelInfo
		getJSON(t, nodes[1].url+"/api/channels", &list)
		return len(list) == 1 && list[0].Hub == "hub0"
	})
	newer := dial(t, nodes[1].url, protocol.PathPublish, "cam")
	code, reason := closeCode(t, old)
	if code != protocol.CloseReplaced || !strings.Contains(reason, "hub1") {
		t.Fatalf("old publisher closed with %d %q; want 4001 naming hub1", code, reason)
	}
	n := r.count()
	// The newer publisher starts its sequence over: readers must take it.
	for seq := uint64(1); seq <= 5; seq++ {
		send(t, newer, frameMsg(seq, 3000))
		time.Sleep(5 * time.Millisecond)
	}
	testutil.Eventually(t, waitLong, "the newer publisher's frames on hub2", func() bool {
		m := r.last()
		return m != nil && r.count() > n && seqOf(t, m) == 5
	})
	if got := stats(t, nodes[0].url).Replaced; got != 1 {
		t.Errorf("hub0 counts %d replaced publishers; want 1", got)
	}
	testutil.Eventually(t, waitLong, "every hub to list hub1 as the publisher", func() bool {
		for _, nd := range nodes {
			var list []protocol.ChannelInfo
			getJSON(t, nd.url+"/api/channels", &list)
			if len(list) != 1 || list[0].Hub != "hub1" || !list[0].Live {
				return false
			}
		}
		return true
	})
}

// TestTakeoverRace: two publishers of one channel connect to two hubs at
// the same moment; exactly one survives, the one with the larger claim.
func TestTakeoverRace(t *testing.T) {
	_, nodes := cluster(t, 2)
	var a, b *websocket.Conn
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = dialNoCleanup(nodes[0].url, "race") }()
	go func() { defer wg.Done(); b = dialNoCleanup(nodes[1].url, "race") }()
	wg.Wait()
	if a == nil || b == nil {
		t.Fatal("dial failed")
	}
	closed := make(chan int, 2)
	for _, c := range []*websocket.Conn{a, b} {
		go func() {
			c.SetReadDeadline(time.Now().Add(waitLong))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						closed <- ce.Code
					} else {
						closed <- 0 // closed by this test: it survived
					}
					return
				}
			}
		}()
	}
	// One is replaced; the other must still be open a second later.
	select {
	case code := <-closed:
		if code != protocol.CloseReplaced {
			t.Fatalf("first close code %d; want 4001", code)
		}
	case <-time.After(waitLong):
		t.Fatal("neither publisher was replaced")
	}
	select {
	case code := <-closed:
		t.Fatalf("the other publisher was closed too (%d): both lost", code)
	case <-time.After(time.Second):
	}
	a.Close()
	b.Close()
	<-closed
}

func dialNoCleanup(base, channel string) *websocket.Conn {
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+protocol.PathPublish+channel, nil)
	if err != nil {
		return nil
	}
	return c
}

// TestNATSRestart: with NATS gone, each hub keeps serving its own
// publishers and says it is degraded (still 200); when NATS is back they
// rejoin by themselves and frames cross again.
func TestNATSRestart(t *testing.T) {
	s, nodes := cluster(t, 2)
	port := natsPort(s)
	local := subscribe(t, nodes[0].url, "cam")
	remote := subscribe(t, nodes[1].url, "cam")
	pub := dial(t, nodes[0].url, protocol.PathPublish, "cam")
	testutil.Eventually(t, waitLong, "hub0 sending", func() bool { return nodes[0].bus.Status().Sending == 1 })
	send(t, pub, frameMsg(1, 3000))
	remote.waitSeq(t, 1, "the frame across")

	s.Shutdown()
	s.WaitForShutdown()
	for _, n := range nodes {
		testutil.Eventually(t, waitLong, n.name+" degraded", func() bool {
			code, body := getText(t, n.url+"/healthz")
			return code == 200 && strings.HasPrefix(body, "degraded") && stats(t, n.url).Cluster.State == "reconnecting"
		})
	}
	for seq := uint64(2); seq <= 4; seq++ {
		send(t, pub, frameMsg(seq, 3000))
		local.waitSeq(t, seq, "the frame on the publisher's own hub without NATS")
	}
	if !strings.Contains(nodes[0].logs.String(), "nats disconnected") {
		t.Error("no log line about the lost NATS connection")
	}

	natsServer(t, port, 0)
	for _, n := range nodes {
		testutil.Eventually(t, waitLong, n.name+" healthy again", func() bool {
			_, body := getText(t, n.url+"/healthz")
			return body == "ok\n"
		})
	}
	testutil.Eventually(t, waitLong, "hub0 sending again", func() bool { return nodes[0].bus.Status().Sending == 1 })
	send(t, pub, frameMsg(5, 3000))
	remote.waitSeq(t, 5, "frames across again after NATS returned")
	if !strings.Contains(nodes[1].logs.String(), "nats reconnected") {
		t.Error("no log line about rejoining")
	}
	// Frames published during the outage were not kept for later: at
	// most the newest (4) crossed, as the channel's newest for a hub
	// rejoining.
	for _, m := range remote.all() {
		if seq := seqOf(t, m); seq == 2 || seq == 3 {
			t.Errorf("frame %d, published while NATS was down, crossed later: stale", seq)
		}
	}
}

// TestMJPEGAcrossHubs: an MJPEG reader is interest like a WebSocket
// subscriber: its hub subscribes, and it gets frames published on
// another hub, with their sequence numbers.
func TestMJPEGAcrossHubs(t *testing.T) {
	_, nodes := cluster(t, 2)
	req, _ := http.NewRequest(http.MethodGet, nodes[1].url+"/channels/cam/stream.mjpeg", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	testutil.Eventually(t, waitLong, "hub1 watching cam for its MJPEG reader", func() bool { return nodes[1].bus.Status().Watching == 1 })
	pub := dial(t, nodes[0].url, protocol.PathPublish, "cam")
	testutil.Eventually(t, waitLong, "hub0 sending", func() bool { return nodes[0].bus.Status().Sending == 1 })
	send(t, pub, frameMsg(42, 3000))
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	part, err := multipart.NewReader(resp.Body, params["boundary"]).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if got := part.Header.Get("X-Frame-Seq"); got != "42" {
		t.Fatalf("MJPEG part has seq %q; want 42", got)
	}
}

// TestUploadsCrossHubs: an MJPEG upload to one hub reaches a subscriber
// on another, and is replaced (409) by a newer WebSocket publisher on
// another hub, like any publisher.
func TestUploadsCrossHubs(t *testing.T) {
	_, nodes := cluster(t, 2)
	r := subscribe(t, nodes[1].url, "cam")
	testutil.Eventually(t, waitLong, "hub1 watching cam", func() bool { return nodes[1].bus.Status().Watching == 1 })
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		resp, err := http.Post(nodes[0].url+"/channels/cam/stream.mjpeg", "image/jpeg", pr)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	go func() {
		for i := range 1000 {
			if _, err := pw.Write(testutil.FakeJPEG(64, 48, uint64(i), 900)); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond) // a 50 fps camera
		}
	}()
	testutil.Eventually(t, waitLong, "uploaded frames on hub1", func() bool { return r.count() >= 3 })
	f, err := protocol.ParseMessage(r.last(), protocol.DefaultLimits)
	if err != nil || f.Width != 64 || len(f.Payload) != 900 {
		t.Fatalf("hub1 got %v, %dx%d, %d bytes; want the uploaded 64x48 JPEGs", err, f.Width, f.Height, len(f.Payload))
	}
	dial(t, nodes[1].url, protocol.PathPublish, "cam")
	select {
	case code := <-done:
		if code != http.StatusConflict {
			t.Fatalf("upload replaced from another hub answered %d; want 409", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upload went on after a newer publisher on another hub took the channel")
	}
	pw.CloseWithError(io.ErrClosedPipe)
}
