package hub

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// fakeBus records what a hub asks of its bus.
type fakeBus struct {
	mu        sync.Mutex
	calls     []string
	published int
	node      BusNode
}

func (b *fakeBus) log(s string) { b.mu.Lock(); b.calls = append(b.calls, s); b.mu.Unlock() }

func (b *fakeBus) Self() (string, string) { return "me", "here" }
func (b *fakeBus) Start(n BusNode)        { b.node = n }
func (b *fakeBus) Publish(string, Claim, []byte) {
	b.mu.Lock()
	b.published++
	b.mu.Unlock()
}
func (b *fakeBus) Watch(ch string)        { b.log("watch " + ch) }
func (b *fakeBus) Unwatch(ch string)      { b.log("unwatch " + ch) }
func (b *fakeBus) Claim(a Announcement)   { b.log("claim " + a.Channel) }
func (b *fakeBus) Release(a Announcement) { b.log("release " + a.Channel) }
func (b *fakeBus) Status() protocol.ClusterStats {
	return protocol.ClusterStats{State: "connected", Hub: "here", HubID: "me"}
}
func (b *fakeBus) Close() error { b.log("close"); return nil }

func (b *fakeBus) saw(call string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.calls {
		if c == call {
			return true
		}
	}
	return false
}

// TestBusOrder: frames from the bus reach subscribers only from the
// channel's winning claim and only newer than the last one relayed; a
// newer claim starts its own sequence.
func TestBusOrder(t *testing.T) {
	bus := &fakeBus{}
	h, base := testHub(t, Config{Bus: bus})
	sub := dial(t, base, protocol.PathSubscribe, "cam")
	testutil.Eventually(t, 5*time.Second, "watch", func() bool { return bus.saw("watch cam") })
	x5, y4, z6 := Claim{"x", 5}, Claim{"y", 4}, Claim{"z", 6}
	msg := func(seq uint64) []byte { return frameMsg(seq, 64, 48, fakeJPEG(64, 48, seq, 500), nil) }
	for _, step := range []struct {
		from  Claim
		seq   uint64
		taken bool
	}{
		{x5, 1, true}, {x5, 2, true}, {x5, 2, false}, {x5, 1, false}, {y4, 9, false}, {z6, 1, true}, {x5, 3, false}, {z6, 2, true},
	} {
		before := h.link.stale.Load()
		m := msg(step.seq)
		bus.node.Receive("cam", step.from, [][]byte{m[:10], m[10:]})
		if taken := h.link.stale.Load() == before; taken != step.taken {
			t.Fatalf("frame %d of %v: taken %v; want %v", step.seq, step.from, taken, step.taken)
		}
		if step.taken {
			f, got := readFrame(t, sub, 5*time.Second)
			if f.Seq != step.seq || !bytes.Equal(got, m) {
				t.Fatalf("subscriber got frame %d; want %d", f.Seq, step.seq)
			}
		}
	}
	sub.Close()
	testutil.Eventually(t, 5*time.Second, "unwatch", func() bool { return bus.saw("unwatch cam") })
	if h.Stats().Cluster.FramesIn != 4 {
		t.Errorf("frames in %d; want 4", h.Stats().Cluster.FramesIn)
	}
}

// TestBusClaims: a larger claim announced by another hub closes the local
// publisher with 4001; a smaller one makes the hub announce its own again.
func TestBusClaims(t *testing.T) {
	bus := &fakeBus{}
	h, base := testHub(t, Config{Bus: bus})
	pub := dial(t, base, protocol.PathPublish, "cam")
	testutil.Eventually(t, 5*time.Second, "claim", func() bool { return bus.saw("claim cam") })
	send(t, pub, frameMsg(1, 64, 48, fakeJPEG(64, 48, 1, 500), nil))
	testutil.Eventually(t, 5*time.Second, "frame offered to the bus", func() bool { bus.mu.Lock(); defer bus.mu.Unlock(); return bus.published == 1 })
	if c, msg, ok := bus.node.Latest("cam"); !ok || c.Hub != "me" || len(msg) == 0 {
		t.Fatalf("Latest = %v, %d bytes, %v", c, len(msg), ok)
	}
	bus.mu.Lock()
	bus.calls = nil
	bus.mu.Unlock()
	bus.node.Announced(Announcement{Channel: "cam", Claim: Claim{"old", 1}, HubName: "old", Live: true, Expires: time.Now().Add(time.Second)})
	if !bus.saw("claim cam") {
		t.Fatal("a smaller claim did not make the hub announce its own")
	}
	bus.node.Announced(Announcement{Channel: "cam", Claim: Claim{"new", aheadGen()}, HubName: "there", Live: true, Expires: time.Now().Add(time.Minute)})
	code, reason := closeCode(t, pub)
	if code != protocol.CloseReplaced || !strings.Contains(reason, "there") {
		t.Fatalf("closed with %d %q; want 4001 naming the other hub", code, reason)
	}
	testutil.Eventually(t, 5*time.Second, "release", func() bool { return bus.saw("release cam") })
	list := h.Channels()
	if len(list) != 1 || !list[0].Live || list[0].Hub != "there" {
		t.Fatalf("listing %+v; want cam live on hub there", list)
	}
	if h.Stats().Replaced != 1 {
		t.Errorf("replaced %d; want 1", h.Stats().Replaced)
	}
}

// aheadGen is the generation of a claim another hub makes a little after
// this one's publisher connected: its clock, a second on.
func aheadGen() uint64 { return uint64(time.Now().Add(time.Second).UnixMilli()) }

// TestBusRefusesFutureClaims: announcements and frames under a claim more
// than maxClaimAhead ahead of the hub's clock (a forged 2^64−1, or an hour
// on) are refused and counted, and the local publisher keeps its channel;
// a later claim within the bound still takes it over. And the hub's own
// next generation never wraps.
func TestBusRefusesFutureClaims(t *testing.T) {
	bus := &fakeBus{}
	h, base := testHub(t, Config{Bus: bus})
	sub := dial(t, base, protocol.PathSubscribe, "cam")
	pub := dial(t, base, protocol.PathPublish, "cam")
	testutil.Eventually(t, 5*time.Second, "claim", func() bool { return bus.saw("claim cam") })
	send(t, pub, frameMsg(1, 64, 48, fakeJPEG(64, 48, 1, 500), nil))
	if f, _ := readFrame(t, sub, 5*time.Second); f.Seq != 1 {
		t.Fatalf("subscriber got frame %d; want 1", f.Seq)
	}
	hour := uint64(time.Now().Add(time.Hour).UnixMilli())
	for _, c := range []Claim{{"evil", math.MaxUint64}, {"evil", hour}} {
		bus.node.Announced(Announcement{Channel: "cam", Claim: c, HubName: "evil", Live: true, Expires: time.Now().Add(time.Minute)})
		m := frameMsg(2, 64, 48, fakeJPEG(64, 48, 2, 500), nil)
		bus.node.Receive("cam", c, [][]byte{m})
	}
	if got := h.Stats().Cluster.Refused["future_claim"]; got != 4 {
		t.Errorf("refused future_claim = %d; want 4 (two announcements, two frames)", got)
	}
	send(t, pub, frameMsg(3, 64, 48, fakeJPEG(64, 48, 3, 500), nil))
	if f, _ := readFrame(t, sub, 5*time.Second); f.Seq != 3 {
		t.Fatalf("subscriber got frame %d after the forged claims; want the publisher's 3", f.Seq)
	}
	if list := h.Channels(); len(list) != 1 || list[0].Hub != "here" {
		t.Fatalf("listing %+v; want cam on this hub", list)
	}
	bus.node.Announced(Announcement{Channel: "cam", Claim: Claim{"later", aheadGen()}, HubName: "there", Live: true, Expires: time.Now().Add(time.Minute)})
	if code, _ := closeCode(t, pub); code != protocol.CloseReplaced {
		t.Fatalf("a claim within the clock bound: publisher closed with %d; want 4001", code)
	}
	if g := nextGen(math.MaxUint64); g != math.MaxUint64 {
		t.Errorf("nextGen(2^64−1) = %d; want no wrap", g)
	}
}

// TestNoBusNoCluster: a hub without a bus reports no cluster section in
// its stats and answers /healthz "ok".
func TestNoBusNoCluster(t *testing.T) {
	h, base := testHub(t, Config{})
	if h.Stats().Cluster != nil {
		t.Fatal("cluster stats without a bus")
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("healthz %d %q", resp.StatusCode, body)
	}
}

// TestHubNeverImportsABus: the hub states what it needs of a bus and never
// depends on NATS; package cluster implements it.
func TestHubNeverImportsABus(t *testing.T) {
	out, err := exec.Command(testutil.RequireTool(t, "go"), "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "nats-io/") || dep == "framehub/cluster" {
			t.Fatalf("hub depends on %s", dep)
		}
	}
}

// TestBusAnnouncementsAreBounded: announcements of made-up channels cannot
// grow what the hub keeps without bound; the excess is refused and counted.
func TestBusAnnouncementsAreBounded(t *testing.T) {
	bus := &fakeBus{}
	h, _ := testHub(t, Config{Bus: bus, MaxChannels: 1})
	limit := h.link.maxEntries()
	for i := range limit + 50 {
		bus.node.Announced(Announcement{Channel: "made-up-" + itoa(i), Claim: Claim{"evil", 1}, HubName: "evil", Live: true,
			Expires: time.Now().Add(time.Minute)})
	}
	h.link.mu.Lock()
	n := len(h.link.chans)
	h.link.mu.Unlock()
	if n != limit {
		t.Fatalf("%d channels kept; want the limit, %d", n, limit)
	}
	if got := h.Stats().Cluster.Refused["too_many_channels"]; got != 50 {
		t.Fatalf("refused %d announcements; want 50", got)
	}
}

// TestRemoteInterestEndsWithItsClaim: the other hubs' interest belongs to
// a publisher's claim; when that publisher leaves, the count goes with it,
// so an on-demand publisher that reconnects hears 0 viewers, not the
// count of a claim that no longer exists.
func TestRemoteInterestEndsWithItsClaim(t *testing.T) {
	bus := &fakeBus{}
	_, base := testHub(t, Config{Bus: bus})
	viewers := func(c *websocket.Conn) int {
		t.Helper()
		for {
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			typ, msg, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("no viewers notice: %v", err)
			}
			var n protocol.ViewersNotice
			if typ == websocket.TextMessage && json.Unmarshal(msg, &n) == nil && n.Op == protocol.OpViewers {
				return n.Count
			}
		}
	}
	first := dial(t, base, protocol.PathPublish, "cam?"+protocol.QueryOnDemand+"=1")
	if n := viewers(first); n != 0 {
		t.Fatalf("first notice %d; want 0", n)
	}
	testutil.Eventually(t, 5*time.Second, "claim", func() bool { return bus.saw("claim cam") })
	// A frame: the channel outlives its publisher (for --channel-ttl), and
	// with it whatever it records.
	send(t, first, frameMsg(1, 64, 48, fakeJPEG(64, 48, 1, 500), nil))
	bus.node.RemoteInterest("cam", 1)
	if n := viewers(first); n != 1 {
		t.Fatalf("notice after another hub's interest: %d; want 1", n)
	}
	first.Close()
	testutil.Eventually(t, 5*time.Second, "release", func() bool { return bus.saw("release cam") })
	again := dial(t, base, protocol.PathPublish, "cam?"+protocol.QueryOnDemand+"=1")
	if n := viewers(again); n != 0 {
		t.Fatalf("a reconnected publisher hears %d viewers; want 0 (the interest went with the old claim)", n)
	}

	// The same when the claim ends because a publisher on another hub
	// took the channel over.
	send(t, again, frameMsg(2, 64, 48, fakeJPEG(64, 48, 2, 500), nil))
	bus.node.RemoteInterest("cam", 2)
	if n := viewers(again); n != 2 {
		t.Fatalf("notice after other hubs' interest: %d; want 2", n)
	}
	bus.node.Announced(Announcement{Channel: "cam", Claim: Claim{"other", aheadGen()}, HubName: "there", Live: true, Expires: time.Now().Add(time.Minute)})
	if code, _ := closeCode(t, again); code != protocol.CloseReplaced {
		t.Fatalf("closed with %d; want 4001", code)
	}
	third := dial(t, base, protocol.PathPublish, "cam?"+protocol.QueryOnDemand+"=1")
	if n := viewers(third); n != 0 {
		t.Fatalf("after a takeover from another hub a new publisher hears %d viewers; want 0", n)
	}
}
