package cluster

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"framehub/hub"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// hostile is a NATS client that anyone with publish rights on the
// cluster's subjects could run.
func hostile(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("hostile"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// forged is a frame message with a well-formed envelope.
func forged(subject, channel, hubID string, gen uint64, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(hdrChannel, channel)
	m.Header.Set(hdrHub, hubID)
	m.Header.Set(hdrGen, strconv.FormatUint(gen, 10))
	m.Data = data
	return m
}

func chunkMsg(subject, channel, hubID string, frame uint64, part, parts, size int, data []byte) *nats.Msg {
	m := forged(subject, channel, hubID, 1, data)
	m.Header.Set(hdrFrame, strconv.FormatUint(frame, 10))
	m.Header.Set(hdrPart, strconv.Itoa(part))
	m.Header.Set(hdrParts, strconv.Itoa(parts))
	m.Header.Set(hdrSize, strconv.Itoa(size))
	return m
}

// frameWith builds a JPEG frame whose header says w×h around a payload.
func frameWith(w, h uint32, payload []byte) []byte {
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: w, Height: h, Seq: 1, CaptureTime: 1}, Payload: payload}
	return protocol.AppendFrame(nil, &f)
}

// TestHostileBusMessages injects what a hostile NATS client could send on
// a watched channel's subject and on the announcements: every message is
// refused and counted under its reason, logged at a bounded rate, the
// memory it took is given back, and another channel carries on unharmed.
func TestHostileBusMessages(t *testing.T) {
	s := natsServer(t, 0, 0)
	tune := func(c *Config, h *hub.Config) { h.MaxFrameBytes = 256 << 10 }
	a := startNode(t, s.ClientURL(), "a", tune)
	b := startNode(t, s.ClientURL(), "b", tune)
	// A healthy channel from a to b, watched throughout.
	healthy := subscribe(t, b.url, "good")
	victim := subscribe(t, b.url, "cam")
	testutil.Eventually(t, waitLong, "b watching both", func() bool { return b.bus.Status().Watching == 2 })
	pub := dial(t, a.url, protocol.PathPublish, "good")
	testutil.Eventually(t, waitLong, "a sending", func() bool { return a.bus.Status().Sending == 1 })
	var seq atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if pub.WriteMessage(2, frameMsg(seq.Add(1), 4000)) != nil {
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	healthy.waitSeq(t, 3, "the healthy channel")
	memBefore := stats(t, b.url).FrameMemoryBytes

	nc := hostile(t, s.ClientURL())
	subj := "framehub.frame.cam"
	good := frameMsg(1, 3000)
	var feedSub *nats.Subscription
	b.bus.mu.Lock()
	feedSub = b.bus.feeds["cam"].sub
	b.bus.mu.Unlock()
	sent := 0
	// pubMsg sends a message and waits until the hub has handled it, so
	// that none is dropped over the pending limits on a busy machine.
	pubMsg := func(m *nats.Msg) {
		t.Helper()
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		sent++
		testutil.Eventually(t, waitLong, "the message handled", func() bool {
			d, _ := feedSub.Delivered()
			p, _, _ := feedSub.Pending()
			return d >= int64(sent) && p == 0
		})
	}
	// Whole messages are checked when relayed, and a newer one overtakes
	// an older one waiting (newest wins), so send them one at a time.
	total := func() uint64 {
		st := stats(t, b.url).Cluster
		n := st.SkippedIn
		for _, k := range st.Refused {
			n += k
		}
		return n
	}
	one := func(m *nats.Msg) {
		t.Helper()
		before := total()
		pubMsg(m)
		testutil.Eventually(t, waitLong, "the hostile message accounted for", func() bool { return total() > before })
	}
	// Envelopes.
	one(&nats.Msg{Subject: subj, Data: good}) // no headers at all
	one(forged(subj, "other", "evil", 1, good))
	one(forged(subj, "cam", "evil", 0, good))
	one(forged(subj, "cam", b.bus.id, 1, good)) // posing as the receiver
	one(forged(subj, "cam", "../../x", 1, good))
	// Frames: bad magic, a JPEG whose own size differs from the header's
	// (SOF bomb), too many pixels, over the hub's frame limit.
	badMagic := append([]byte("EVIL"), good[4:]...)
	one(forged(subj, "cam", "evil", 1, badMagic))
	one(forged(subj, "cam", "evil", 1, frameWith(64, 48, testutil.FakeJPEG(60000, 60000, 1, 500))))
	one(forged(subj, "cam", "evil", 1, frameWith(10000, 10000, testutil.FakeJPEG(10000, 10000, 1, 500))))
	one(forged(subj, "cam", "evil", 1, frameWith(64, 48, testutil.FakeJPEG(64, 48, 1, 300<<10))))
	// Chunk sequences.
	big := frameMsg(9, 100<<10)
	c := 40 << 10
	parts := (len(big) + c - 1) / c
	pubMsg(chunkMsg(subj, "cam", "evil", 1, 0, 99, len(big), big[:c]))                // count does not fit the sizes
	pubMsg(chunkMsg(subj, "cam", "evil", 2, 1, parts, len(big), big[c:2*c]))          // no start
	pubMsg(chunkMsg(subj, "cam", "evil", 3, 0, parts, len(big), big[:c]))             // then a gap
	pubMsg(chunkMsg(subj, "cam", "evil", 3, 2, parts, len(big), big[2*c:]))           //
	pubMsg(chunkMsg(subj, "cam", "evil", 4, 0, parts, len(big), big[:c]))             // then a short last chunk
	pubMsg(chunkMsg(subj, "cam", "evil", 4, 1, parts, len(big), big[c:2*c]))          //
	pubMsg(chunkMsg(subj, "cam", "evil", 4, 2, parts, len(big), big[2*c:len(big)-1])) //
	pubMsg(chunkMsg(subj, "cam", "evil", 5, 0, parts, 200<<20, big[:c]))              // declares 200 MB
	pubMsg(chunkMsg(subj, "cam", "evil", 6, 0, maxParts+1, len(big), big[:c]))        // too many parts
	pubMsg(chunkMsg(subj, "cam", "evil", 7, 0, parts, len(big), big[:c]))             // never finished
	for i := range 50 {                                                               // a flood of starts from many senders
		pubMsg(chunkMsg(subj, "cam", fmt.Sprintf("evil%d", i), 8, 0, parts, len(big), big[:c]))
	}
	// Announcements.
	_ = nc.Publish("framehub.dir.cam", []byte("{not json"))
	_ = nc.Publish("framehub.dir.cam", []byte(`{"hub":"../..","gen":1,"live":true}`))
	_ = nc.Publish("framehub.dir.cam", []byte(strings.Repeat(" ", maxAnnouncement+1)))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	want := map[string]uint64{"bad_envelope": 7, "bad_frame": 1, "bad_jpeg": 1, "too_many_pixels": 1, "too_big": 1,
		"bad_chunk": 2, "incomplete_frame": 3, "bad_announcement": 3}
	var refused map[string]uint64
	defer func() {
		if t.Failed() {
			t.Logf("refused: %v\n%s", refused, b.logs.String())
		}
	}()
	testutil.Eventually(t, waitLong, "every hostile message refused and counted", func() bool {
		refused = stats(t, b.url).Cluster.Refused
		for k, n := range want {
			if refused[k] < n {
				return false
			}
		}
		return true
	})
	// The unfinished frames time out and give their memory back.
	testutil.Eventually(t, waitLong, "memory back to what it was", func() bool {
		return stats(t, b.url).FrameMemoryBytes <= memBefore+64<<10
	})
	if victim.count() != 0 {
		t.Errorf("the attacked channel's reader got %d frames", victim.count())
	}
	n := healthy.count()
	healthy.waitSeq(t, seq.Load()+1, "the healthy channel after the attack")
	if healthy.count() <= n {
		t.Error("the healthy channel stopped")
	}
	// One line per reason per interval, however many messages.
	if lines := strings.Count(b.logs.String(), "refused a message from the bus"); lines > 2*len(want)+2 {
		t.Errorf("%d log lines about refused bus messages; want at most one per reason per 10 s", lines)
	}
}

// fakeNode is a BusNode that records what it is given.
type fakeNode struct {
	mu       sync.Mutex
	got      []uint64 // sequence numbers received
	refused  map[hub.BusRefusal]int
	reserved atomic.Int64
	gate     chan struct{} // if set, Receive waits on it
	entered  chan struct{}
}

func newFakeNode() *fakeNode { return &fakeNode{refused: map[hub.BusRefusal]int{}} }

func (n *fakeNode) Receive(channel string, from hub.Claim, parts [][]byte) {
	var msg []byte
	for _, p := range parts {
		msg = append(msg, p...)
	}
	h, _ := protocol.ParseHeader(msg)
	if n.entered != nil {
		n.entered <- struct{}{}
	}
	if n.gate != nil {
		<-n.gate
	}
	n.mu.Lock()
	n.got = append(n.got, h.Seq)
	n.mu.Unlock()
}
func (n *fakeNode) Announced(hub.Announcement)              {}
func (n *fakeNode) Latest(string) (hub.Claim, []byte, bool) { return hub.Claim{}, nil, false }
func (n *fakeNode) Local() []hub.Announcement               { return nil }
func (n *fakeNode) MaxFrameBytes() int                      { return 1 << 20 }
func (n *fakeNode) Reserve(b int64) bool                    { n.reserved.Add(b); return true }
func (n *fakeNode) Release(b int64)                         { n.reserved.Add(-b) }
func (n *fakeNode) RemoteInterest(string, int)              {}

func (n *fakeNode) Refused(_ string, why hub.BusRefusal, _ string) {
	n.mu.Lock()
	n.refused[why]++
	n.mu.Unlock()
}

func (n *fakeNode) received() []uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]uint64(nil), n.got...)
}

// TestSlowHubSkipsOldFrames: while a hub is busy relaying one frame, the
// frames that arrive meanwhile are not queued for it: when it is free, it
// gets the newest, and the ones it skipped are counted.
func TestSlowHubSkipsOldFrames(t *testing.T) {
	s := natsServer(t, 0, 0)
	b, err := New(Config{Servers: []string{s.ClientURL()}, Name: "slow", AnnounceInterval: testInterval})
	if err != nil {
		t.Fatal(err)
	}
	n := newFakeNode()
	n.gate, n.entered = make(chan struct{}), make(chan struct{}, 10)
	b.Start(n)
	defer b.Close()
	b.Watch("cam")
	var f *feed
	testutil.Eventually(t, waitLong, "the feed subscribed", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		f = b.feeds["cam"]
		return f != nil && f.sub != nil
	})
	nc := hostile(t, s.ClientURL())
	send := func(seq uint64) {
		if err := nc.PublishMsg(forged("framehub.frame.cam", "cam", "other", 1, frameMsg(seq, 1000))); err != nil {
			t.Fatal(err)
		}
	}
	send(1)
	<-n.entered // the hub is now busy with frame 1
	for seq := uint64(2); seq <= 5; seq++ {
		send(seq)
	}
	testutil.Eventually(t, waitLong, "frames 2 to 5 pending", func() bool {
		p, _, _ := f.sub.Pending() // frame 1 counts until its handler returns
		return p >= 5
	})
	close(n.gate)
	testutil.Eventually(t, waitLong, "the newest frame relayed", func() bool { return len(n.received()) == 2 })
	if got := n.received(); got[0] != 1 || got[1] != 5 {
		t.Fatalf("relayed %v; want [1 5]", got)
	}
	if sk := b.Status().SkippedIn; sk != 3 {
		t.Fatalf("skipped %d; want 3 (frames 2, 3 and 4)", sk)
	}
	if r := n.reserved.Load(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// TestAssembler drives the reassembler with chunk sequences, good and
// garbage, and checks what it completes, what it refuses, and that every
// byte it charged is given back.
func TestAssembler(t *testing.T) {
	frame := frameMsg(3, 9000)
	size := len(frame)
	const c = 4000
	parts := (size + c - 1) / c
	chunk := func(i int) []byte { return frame[i*c : min((i+1)*c, size)] }
	env := func(id uint64, part, n, sz int) envelope {
		return envelope{channel: "cam", claim: hub.Claim{Hub: "x", Gen: 1}, chunked: true, frame: id, part: part, parts: n, size: sz}
	}
	type step struct {
		e    envelope
		data []byte
	}
	for _, tc := range []struct {
		name     string
		steps    []step
		complete int
		refused  map[hub.BusRefusal]int
	}{
		{"whole frame", []step{{env(1, 0, parts, size), chunk(0)}, {env(1, 1, parts, size), chunk(1)}, {env(1, 2, parts, size), chunk(2)}}, 1, nil},
		{"gap", []step{{env(1, 0, parts, size), chunk(0)}, {env(1, 2, parts, size), chunk(2)}}, 0,
			map[hub.BusRefusal]int{hub.BusIncomplete: 1}},
		{"orphans counted once per frame", []step{{env(1, 1, parts, size), chunk(1)}, {env(1, 2, parts, size), chunk(2)}}, 0,
			map[hub.BusRefusal]int{hub.BusIncomplete: 1}},
		{"count that does not fit", []step{{env(1, 0, 9, size), chunk(0)}}, 0, map[hub.BusRefusal]int{hub.BusBadChunk: 1}},
		{"count changes", []step{{env(1, 0, parts, size), chunk(0)}, {env(1, 1, parts+1, size), chunk(1)}}, 0,
			map[hub.BusRefusal]int{hub.BusBadChunk: 1}},
		{"short middle chunk", []step{{env(1, 0, parts, size), chunk(0)}, {env(1, 1, parts, size), chunk(1)[1:]}}, 0,
			map[hub.BusRefusal]int{hub.BusBadChunk: 1}},
		{"last chunk too long", []step{{env(1, 0, parts, size), chunk(0)}, {env(1, 1, parts, size), chunk(1)},
			{env(1, 2, parts, size), append(chunk(2), 0)}}, 0, map[hub.BusRefusal]int{hub.BusBadChunk: 1}},
		{"newer frame supersedes", []step{{env(1, 0, parts, size), chunk(0)}, {env(2, 0, parts, size), chunk(0)},
			{env(2, 1, parts, size), chunk(1)}, {env(2, 2, parts, size), chunk(2)}}, 1, map[hub.BusRefusal]int{hub.BusIncomplete: 1}},
		{"one chunk as big as the frame", []step{{env(1, 0, 2, size), frame}}, 0, map[hub.BusRefusal]int{hub.BusBadChunk: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newFakeNode()
			a := newAssembler(2, time.Second)
			done := 0
			for _, s := range tc.steps {
				if cp := a.add(n, "cam", "x", s.e, s.data, time.Now()); cp != nil {
					done++
					var got []byte
					for _, p := range cp.parts {
						got = append(got, p...)
					}
					if string(got) != string(frame) {
						t.Fatal("reassembled frame differs")
					}
					n.Release(cp.charged)
				}
			}
			a.expire(n, time.Now().Add(time.Hour)) // whatever is left times out
			if done != tc.complete {
				t.Errorf("completed %d frames; want %d", done, tc.complete)
			}
			for why, k := range tc.refused {
				if n.refused[why] != k {
					t.Errorf("refused %v: %d; want %d (all: %v)", why, n.refused[why], k, n.refused)
				}
			}
			if r := n.reserved.Load(); r != 0 {
				t.Errorf("%d bytes still charged", r)
			}
		})
	}
	t.Run("at most two frames at once", func(t *testing.T) {
		n := newFakeNode()
		a := newAssembler(2, time.Second)
		for i := range 10 {
			a.add(n, "cam", fmt.Sprint("sender", i), env(1, 0, parts, size), chunk(0), time.Now())
		}
		if len(a.parts) != 2 || n.reserved.Load() != 2*c || n.refused[hub.BusIncomplete] != 8 {
			t.Fatalf("%d frames held, %d bytes charged, %d dropped", len(a.parts), n.reserved.Load(), n.refused[hub.BusIncomplete])
		}
		a.dropAll(n)
		if n.reserved.Load() != 0 {
			t.Fatal("memory still charged")
		}
	})
}

// TestJoinsAnsweredOnlyToTheAskingHub: a join is answered with a whole
// frame, so a hostile client that sends joins naming other reply subjects
// (one small message each) must not get a frame queued per subject; a join
// whose reply is the asking hub's own inbox is answered.
func TestJoinsAnsweredOnlyToTheAskingHub(t *testing.T) {
	s := natsServer(t, 0, 0)
	a := startNode(t, s.ClientURL(), "a", nil)
	testutil.Eventually(t, waitLong, "a connected", func() bool { return a.bus.Status().State == "connected" })
	pub := dial(t, a.url, protocol.PathPublish, "cam")
	if err := pub.WriteMessage(2, frameMsg(1, 4000)); err != nil {
		t.Fatal(err)
	}
	nc := hostile(t, s.ClientURL())
	answers := make(chan string, 1000)
	sub, err := nc.Subscribe(DefaultPrefix+".hub.>", func(m *nats.Msg) { answers <- m.Subject })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	join := func(hubID, reply string) {
		m := nats.NewMsg(DefaultPrefix + ".want.cam")
		m.Header.Set(hdrHub, hubID)
		m.Header.Set(hdrWant, wantJoin)
		m.Reply = reply
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	own := DefaultPrefix + ".hub.asker"
	quiet := func() { // drain until nothing comes for 300 ms
		for {
			select {
			case <-answers:
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}
	// Until a's claim listens for wants: a join from the asker's inbox.
	testutil.Eventually(t, waitLong, "a answering joins for cam", func() bool {
		join("asker", own)
		select {
		case <-answers:
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
	quiet()
	for i := range 200 {
		join("asker", fmt.Sprintf("%s.hub.victim%d", DefaultPrefix, i))
	}
	join("asker", own)
	select {
	case subj := <-answers:
		if subj != own {
			t.Fatalf("a join was answered on %s, a subject its sender does not own", subj)
		}
	case <-time.After(waitLong):
		t.Fatal("the join from the asking hub's own inbox got no frame")
	}
	// The queue is first in, first out: an answer to a forged subject
	// would have come before the real one, or right behind it.
	select {
	case subj := <-answers:
		t.Fatalf("another answer, on %s", subj)
	case <-time.After(300 * time.Millisecond):
	}
}
