package hub

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// The attacks of the hostile-input issue, each driven as the attacker
// would, each checking the refusal, its counter, and that the victims
// (other channels, other subscribers, the channel's last good frame) are
// unharmed.

// snapshotBody fetches a channel's snapshot.
func snapshotBody(t *testing.T, base, channel string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(base + "/channels/" + channel + "/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestDimensionBombIsRefused(t *testing.T) {
	good := fakeJPEG(16, 16, 1, 600)
	for _, c := range []struct {
		name    string
		w, h    uint32 // the frame header's size
		sof     int    // the JPEG's own size (square)
		counter string
	}{
		{"sof_differs_from_header", 16, 16, 16384, "bad_jpeg"},
		{"consistent_but_huge", 16384, 16384, 16384, "too_many_pixels"},
		{"just_past_8k", 7681, 4320, 0, "too_many_pixels"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, base := testHub(t, Config{})
			sub := dial(t, base, protocol.PathSubscribe, "cam")
			in := frames(t, sub)
			pub := dial(t, base, protocol.PathPublish, "cam")
			send(t, pub, frameMsg(1, 16, 16, good, nil))
			if f := <-in; f.Seq != 1 {
				t.Fatalf("first frame %d", f.Seq)
			}
			bomb := fakeJPEG(c.sof, c.sof, 2, 600)
			if c.sof == 0 {
				bomb = fakeJPEG(int(c.w), int(c.h), 2, 600)
			}
			send(t, pub, frameMsg(2, c.w, c.h, bomb, nil))
			code, text := closeCode(t, pub)
			if code != websocket.CloseInvalidFramePayloadData || !strings.Contains(text, "invalid frame") {
				t.Fatalf("publisher closed with %d %q; want 1007 and the reason", code, text)
			}
			testutil.Eventually(t, 3*time.Second, c.counter+" counted", func() bool { return h.Stats().Refused[c.counter] == 1 })
			if st, body := snapshotBody(t, base, "cam"); st != 200 || !bytes.Equal(body, good) {
				t.Fatalf("snapshot after the bomb: %d, %d bytes; want the last good frame", st, len(body))
			}
			// Subscribers never saw it: the next frame they get is a new
			// publisher's.
			pub2 := dial(t, base, protocol.PathPublish, "cam")
			send(t, pub2, frameMsg(3, 16, 16, fakeJPEG(16, 16, 3, 600), nil))
			if f := <-in; f.Seq != 3 {
				t.Fatalf("subscriber got seq %d after the bomb; want 3", f.Seq)
			}
		})
	}
}

func TestMaxPixelsIsTheHubsToSet(t *testing.T) {
	_, base := testHub(t, Config{MaxPixels: 1 << 28})
	sub := dial(t, base, protocol.PathSubscribe, "big")
	pub := dial(t, base, protocol.PathPublish, "big")
	send(t, pub, frameMsg(1, 16384, 16384, fakeJPEG(16384, 16384, 1, 600), nil))
	sub.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, msg, err := sub.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	// A client with the default guard refuses it; one that follows this
	// hub's announced limits accepts it.
	if _, err := protocol.ParseMessage(msg, protocol.DefaultLimits); err == nil {
		t.Fatal("default limits accepted a 16384x16384 frame")
	}
	var lim protocol.HubLimits
	getJSON(t, base+protocol.PathLimits, &lim)
	if lim.MaxPixels != 1<<28 || lim.MaxFrameBytes != DefaultMaxFrameBytes || lim.MaxMetaBytes != DefaultMaxMetaBytes {
		t.Fatalf("/api/limits = %+v", lim)
	}
}

func TestGhostChannelsTakeNoSlots(t *testing.T) {
	h, base := testHub(t, Config{MaxChannels: 2})
	const ghosts = 60
	for i := range ghosts {
		dial(t, base, protocol.PathSubscribe, fmt.Sprintf("made-up-%d", i))
	}
	testutil.Eventually(t, 3*time.Second, "ghost subscribers waiting", func() bool { return h.Stats().WaitingChannels == ghosts })
	if st := h.Stats(); st.Channels != 0 || st.Subscribers != ghosts {
		t.Fatalf("stats with only ghosts: channels %d, subscribers %d; want 0 and %d", st.Channels, st.Subscribers, ghosts)
	}
	// A real publisher still gets in, twice; the third channel is refused.
	for _, name := range []string{"real-1", "made-up-7"} {
		if got := upgradeStatus(t, base, protocol.PathPublish+name, nil); got != http.StatusSwitchingProtocols {
			t.Fatalf("publisher of %s: %d; want 101", name, got)
		}
	}
	pubA := dial(t, base, protocol.PathPublish, "real-1")
	pubB := dial(t, base, protocol.PathPublish, "made-up-7")
	testutil.Eventually(t, 3*time.Second, "two active channels", func() bool { return h.Stats().Channels == 2 })
	if got := upgradeStatus(t, base, protocol.PathPublish+"real-3", nil); got != http.StatusServiceUnavailable {
		t.Fatalf("third channel: %d; want 503", got)
	}
	if st := h.Stats(); st.Channels != 2 || st.WaitingChannels != ghosts-1 || st.Refused["too_many_channels"] != 1 {
		t.Fatalf("stats: channels %d waiting %d refused %d", st.Channels, st.WaitingChannels, st.Refused["too_many_channels"])
	}
	// The ghost whose name got a publisher is now that channel's viewer.
	send(t, pubB, frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 100), nil))
	_ = pubA
}

func TestWaitingEntriesGoWithTheirSubscribers(t *testing.T) {
	h, base := testHub(t, Config{MaxChannels: 1})
	var conns []*websocket.Conn
	for i := range 20 {
		conns = append(conns, dial(t, base, protocol.PathSubscribe, fmt.Sprintf("ghost-%d", i)))
	}
	testutil.Eventually(t, 3*time.Second, "20 waiting", func() bool { return h.Stats().WaitingChannels == 20 })
	for _, c := range conns {
		c.Close()
	}
	testutil.Eventually(t, 3*time.Second, "waiting entries forgotten", func() bool { return h.Stats().WaitingChannels == 0 })
}

// requestWithHost sends GET path with the given Host header.
func requestWithHost(t *testing.T, base, path, host string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode
}

func TestDNSRebindingIsRefused(t *testing.T) {
	h, base := testHub(t, Config{LoopbackOnly: true, AllowedHosts: []string{"camhub.lan"}})
	port := base[strings.LastIndexByte(base, ':')+1:]
	pub := dial(t, base, protocol.PathPublish, "cam")
	send(t, pub, frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 100), nil))
	testutil.Eventually(t, 3*time.Second, "a frame", func() bool { return len(h.Channels()) == 1 })

	paths := []string{"/", "/healthz", "/api/channels", "/api/stats", "/api/limits", "/view/cam", "/static/app.css", "/channels/cam/snapshot.jpg"}
	refused := 0
	for _, host := range []string{"evil.example:" + port, "attacker.test", "127.0.0.1.evil.example:" + port, "192.168.1.7:" + port} {
		for _, p := range paths {
			if got := requestWithHost(t, base, p, host); got != http.StatusForbidden {
				t.Errorf("GET %s with Host %s: %d; want 403", p, host, got)
			}
			refused++
		}
		// WebSocket upgrades, as the rebinding page would open them.
		hd := http.Header{"Host": {host}, "Origin": {"http://" + host}}
		for _, p := range []string{protocol.PathSubscribe + "cam", protocol.PathPublish + "cam"} {
			if got := upgradeStatus(t, base, p, hd); got != http.StatusForbidden {
				t.Errorf("upgrade %s with Host %s: %d; want 403", p, host, got)
			}
			refused++
		}
	}
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "LOCALHOST:" + port, "camhub.lan:" + port, "127.0.0.1"} {
		if got := requestWithHost(t, base, "/api/channels", host); got != http.StatusOK {
			t.Errorf("Host %s: %d; want 200", host, got)
		}
	}
	if got := h.Stats().Refused["foreign_host"]; got != uint64(refused) {
		t.Errorf("foreign_host refusals = %d; want %d", got, refused)
	}
}

func TestOriginNeverVouchedForByAForgeableHost(t *testing.T) {
	// A hub on all interfaces answers any Host (it may sit behind a proxy),
	// but a page under a DNS name is not the hub's own origin unless that
	// name is allowed: a rebinding page has Host and Origin agree.
	h, base := testHub(t, Config{AllowedOrigins: []string{"https://app.example"}})
	port := base[strings.LastIndexByte(base, ':')+1:]
	for _, c := range []struct {
		host, origin string
		want         int
	}{
		{"evil.example:" + port, "http://evil.example:" + port, 403},
		{"127.0.0.1:" + port, "http://127.0.0.1:" + port, 101},
		{"192.0.2.10:" + port, "http://192.0.2.10:" + port, 101}, // an IP the page was opened by
		{"localhost:" + port, "http://localhost:" + port, 101},
		{"evil.example:" + port, "https://app.example", 101}, // listed
	} {
		hd := http.Header{"Host": {c.host}, "Origin": {c.origin}}
		if got := upgradeStatus(t, base, protocol.PathSubscribe+"cam", hd); got != c.want {
			t.Errorf("Host %s Origin %s: %d; want %d", c.host, c.origin, got, c.want)
		}
	}
	// Requests that change state are checked too (a text/plain POST needs
	// no CORS preflight).
	req, _ := http.NewRequest(http.MethodPost, base+"/api/token", strings.NewReader("{}"))
	req.Host = "evil.example:" + port
	req.Header.Set("Origin", "http://evil.example:"+port)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: %d; want 403", resp.StatusCode)
	}
	if got := h.Stats().Refused["foreign_origin"]; got != 2 {
		t.Errorf("foreign_origin refusals = %d; want 2", got)
	}

	// This machine's own name is the hub's own origin, without making the
	// Host check strict.
	_, base3 := testHub(t, Config{OwnNames: []string{"camhost"}})
	port3 := base3[strings.LastIndexByte(base3, ':')+1:]
	hd3 := http.Header{"Host": {"camhost:" + port3}, "Origin": {"http://camhost:" + port3}}
	if got := upgradeStatus(t, base3, protocol.PathSubscribe+"cam", hd3); got != 101 {
		t.Errorf("page opened under the machine's own name: %d; want 101", got)
	}
	if got := requestWithHost(t, base3, "/healthz", "other.example:"+port3); got != http.StatusOK {
		t.Errorf("another Host on a hub with only its own names: %d; want 200", got)
	}

	// Named hosts the operator allows are the hub's own.
	h2, base2 := testHub(t, Config{AllowedHosts: []string{"camhub.lan"}})
	port2 := base2[strings.LastIndexByte(base2, ':')+1:]
	hd := http.Header{"Host": {"camhub.lan:" + port2}, "Origin": {"http://camhub.lan:" + port2}}
	if got := upgradeStatus(t, base2, protocol.PathSubscribe+"cam", hd); got != 101 {
		t.Errorf("allowed host's own page: %d; want 101", got)
	}
	// With a list, other names get 403 like on loopback.
	if got := requestWithHost(t, base2, "/healthz", "evil.example:"+port2); got != http.StatusForbidden {
		t.Errorf("unlisted host on a hub with --allowed-hosts: %d; want 403", got)
	}
	if h2.Stats().Refused["foreign_host"] != 1 {
		t.Errorf("foreign_host = %d; want 1", h2.Stats().Refused["foreign_host"])
	}
}

// declareAndStall opens a publisher that sends a header declaring a frame
// of declared bytes, then only part of its body, and never the rest.
func declareAndStall(t *testing.T, base string, channel string, declared, sent int) net.Conn {
	t.Helper()
	c, _, _ := rawClient(t, base, protocol.PathPublish+channel, "")
	hd := make([]byte, protocol.HeaderLen)
	protocol.PutHeader(hd, protocol.Header{Codec: protocol.CodecJPEG, Width: 8, Height: 8, PayloadLen: uint32(declared - protocol.HeaderLen)})
	body := append(hd, make([]byte, sent-protocol.HeaderLen)...)
	// One WebSocket frame that declares the whole message, of which only
	// sent bytes follow.
	head := clientFrameHeader(true, false, 2, declared)
	if _, err := c.Write(append(head, body...)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDeclaredSizeIsNotAllocated(t *testing.T) {
	h, base := testHub(t, Config{MaxFrameBytes: 16 << 20})
	const conns = 40
	for i := range conns {
		declareAndStall(t, base, fmt.Sprintf("s%d", i), 16<<20-1024, 4096)
	}
	// Each stalled read holds what arrived rounded up to the first chunk,
	// not the 16 MiB it declared. Wait until all of them hold that much:
	// then each is reading, and none will take more, since nothing more
	// arrives. (Waiting for what one of them alone could reach, or for a
	// while, would let the check below pass before most had begun.)
	testutil.Eventually(t, 5*time.Second, "every stalled publisher reading", func() bool {
		return h.Stats().Publishers == conns && h.mem.used.Load() >= conns*firstChunk
	})
	if used := h.mem.used.Load(); used > conns*firstChunk {
		t.Fatalf("%d stalled publishers hold %d bytes; want at most %d (the first chunk each), not %d declared",
			conns, used, conns*firstChunk, conns*(16<<20))
	}
	t.Logf("%d publishers declaring 16 MiB each hold %.1f MiB in all", conns, float64(h.mem.used.Load())/(1<<20))
}

func TestMemoryBudgetRefusesWithTryAgainLater(t *testing.T) {
	const frameSize = 1 << 20
	// Room for two channels' newest and previous frames, and a little more.
	h, base := testHub(t, Config{MaxMemory: 4*frameSize + 3*frameSize/2, MaxFrameBytes: 2 * frameSize})
	victim := dial(t, base, protocol.PathSubscribe, "a")
	in := frames(t, victim)
	pubA := dial(t, base, protocol.PathPublish, "a")
	pubB := dial(t, base, protocol.PathPublish, "b")
	// One frame at a time, so that no two are being received at once.
	n := 0
	for seq := uint64(1); seq <= 3; seq++ {
		for _, p := range []*websocket.Conn{pubA, pubB} {
			send(t, p, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, frameSize), nil))
			n++
			testutil.Eventually(t, 3*time.Second, "the frame published", func() bool { return h.Stats().FramesIn == uint64(n) })
		}
	}
	if used := h.Stats().FrameMemoryBytes; used < 4*frameSize || used > 5*frameSize {
		t.Fatalf("two channels hold %d bytes; want their newest and previous frames, about %d", used, 4*frameSize)
	}
	pubC := dial(t, base, protocol.PathPublish, "c")
	send(t, pubC, frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, frameSize), nil))
	testutil.Eventually(t, 3*time.Second, "c's first frame published", func() bool { return h.Stats().FramesIn == uint64(n+1) })
	send(t, pubC, frameMsg(2, 8, 8, fakeJPEG(8, 8, 2, frameSize), nil))
	if code, text := closeCode(t, pubC); code != protocol.CloseTryAgainLater || !strings.Contains(text, "memory") {
		t.Fatalf("publisher past the budget closed with %d %q; want 1013", code, text)
	}
	st := h.Stats()
	if st.Refused["over_memory_budget"] != 1 || st.FrameMemoryBytes > st.MaxMemoryBytes {
		t.Fatalf("refused %d, memory %d of %d", st.Refused["over_memory_budget"], st.FrameMemoryBytes, st.MaxMemoryBytes)
	}
	// Channel a is unharmed: its publisher goes on and its viewer follows.
	for seq := uint64(4); seq <= 6; seq++ {
		send(t, pubA, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, frameSize), nil))
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-in:
			if f.Seq == 6 {
				return
			}
		case <-deadline:
			t.Fatal("channel a's viewer stopped getting frames")
		}
	}
}

// creditSubscriber connects a subscriber in credit mode with window 1, by
// URL or by a control message, to a channel whose publisher keeps sending.
// It returns the connection, a channel of the sequence numbers it
// receives, and (by message) the frames that arrived before credit mode
// surely began: those before the hub answered a ping sent after the
// credit message, since the hub reads a connection's messages in order.
func creditSubscriber(t *testing.T, base string, byURL bool) (c *websocket.Conn, in <-chan uint64, before []uint64) {
	t.Helper()
	u := wsURL(base, protocol.PathSubscribe, "cam")
	if byURL {
		u += "?window=1"
	}
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	pong := make(chan struct{}, 1)
	c.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	seqs := make(chan uint64, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(seqs)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			f, _ := protocol.ParseMessage(msg, protocol.DefaultLimits)
			seqs <- f.Seq
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	if byURL {
		return c, seqs, nil
	}
	if err := c.WriteJSON(protocol.Control{Op: protocol.OpCredit, Window: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(3 * time.Second)
	for {
		select {
		case s := <-seqs:
			before = append(before, s)
		case <-pong:
			// Frames the hub wrote before its pong are in the channel now.
			for len(seqs) > 0 {
				before = append(before, <-seqs)
			}
			return c, seqs, before
		case <-deadline:
			t.Fatal("no pong")
		}
	}
}

// readFor returns what arrives on in within d.
func readFor(in <-chan uint64, d time.Duration) []uint64 {
	var got []uint64
	deadline := time.After(d)
	for {
		select {
		case s, ok := <-in:
			if !ok {
				return got
			}
			got = append(got, s)
		case <-deadline:
			return got
		}
	}
}

func TestCreditWindowIsExact(t *testing.T) {
	_, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if pub.WriteMessage(websocket.BinaryMessage, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 200), nil)) != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for _, byURL := range []bool{true, false} {
		bad := 0
		for try := range 20 {
			c, in, before := creditSubscriber(t, base, byURL)
			// Every frame sent counts against the window, including those sent
			// before the credit message arrived: with one or more in flight,
			// nothing more comes until an ack.
			got := readFor(in, 100*time.Millisecond)
			if len(before)+len(got) != max(len(before), 1) {
				bad++
				t.Logf("byURL=%v try %d: %d frames before credit, then %d without an ack", byURL, try, len(before), len(got))
			}
			all := append(before, got...)
			if len(all) == 0 {
				t.Fatalf("byURL=%v: no frame at all", byURL)
			}
			// Acking the newest returns exactly one credit.
			c.WriteJSON(protocol.Control{Op: protocol.OpAck, Seq: all[len(all)-1]})
			if after := readFor(in, 100*time.Millisecond); len(after) != 1 {
				bad++
				t.Logf("byURL=%v try %d: %d frames after one ack", byURL, try, len(after))
			}
			c.Close()
		}
		if bad > 0 {
			t.Errorf("byURL=%v: %d of 20 subscribers got more (or fewer) frames than their credit", byURL, bad)
		}
	}
	if got := upgradeStatus(t, base, protocol.PathSubscribe+"cam?window=9", nil); got != http.StatusBadRequest {
		t.Errorf("?window=9: %d; want 400", got)
	}
}

func TestReplacementFightIsLoggedAtABoundedRate(t *testing.T) {
	var logs testutil.LockedBuffer
	h, base := testHub(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const rounds = 150
	for range rounds {
		for _, d := range []*websocket.Conn{dial(t, base, protocol.PathPublish, "contested"), dial(t, base, protocol.PathPublish, "contested")} {
			d.Close()
		}
	}
	testutil.Eventually(t, 5*time.Second, "every replacement counted", func() bool { return h.Stats().Replaced >= rounds })
	testutil.Eventually(t, 5*time.Second, "every publisher gone", func() bool { return h.Stats().Publishers == 0 })
	lines := strings.Count(logs.String(), "\n")
	// One line per event kind (connected, replaced, left) per interval, not
	// one per event: 900 events.
	if lines > 6 {
		t.Fatalf("%d log lines for %d takeovers; want a handful:\n%s", lines, rounds, logs.String())
	}
	// What was folded is reported, not lost.
	h.logs.Flush(time.Now().Add(refusalLogInterval + time.Second))
	out := logs.String()
	if !strings.Contains(out, "publisher replaced by a newer one (repeated)") || !strings.Contains(out, "repeats_folded=") {
		t.Fatalf("no summary of the folded lines:\n%s", out)
	}
	t.Logf("%d takeovers logged in %d lines", rounds, strings.Count(out, "\n"))
}

func TestFloodingPublisherIsCapped(t *testing.T) {
	h, base := testHub(t, Config{MaxFPSPerPublisher: 50})
	calmSub := dial(t, base, protocol.PathSubscribe, "calm")
	calmIn := frames(t, calmSub)
	floodSub := dial(t, base, protocol.PathSubscribe, "flood")
	floodIn := frames(t, floodSub)
	calm := dial(t, base, protocol.PathPublish, "calm")
	flood := dial(t, base, protocol.PathPublish, "flood")

	const floodFrames = 600
	start := time.Now()
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		for seq := uint64(1); seq <= floodFrames; seq++ {
			if flood.WriteMessage(websocket.BinaryMessage, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 2000), nil)) != nil {
				return
			}
		}
	}()
	// The calm channel's viewer gets every one of its frames meanwhile
	// (sent at 40 fps, under the cap).
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for seq := uint64(1); seq <= 20; seq++ {
		<-tick.C
		send(t, calm, frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, 2000), nil))
		select {
		case f := <-calmIn:
			if f.Seq != seq {
				t.Fatalf("calm viewer got %d; want %d", f.Seq, seq)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("calm viewer starved at frame %d", seq)
		}
	}
	<-floodDone
	elapsed := time.Since(start)
	testutil.Eventually(t, 5*time.Second, "the flood read in full", func() bool {
		var in protocol.ChannelInfo
		for _, c := range h.Channels() {
			if c.Name == "flood" {
				in = c
			}
		}
		return in.Frames+in.Dropped == floodFrames
	})
	var flooded protocol.ChannelInfo
	for _, c := range h.Channels() {
		if c.Name == "flood" {
			flooded = c
		}
	}
	allowed := uint64(50*time.Since(start).Seconds()) + 13 // the rate over the run, plus the burst
	if flooded.Frames > allowed || flooded.Dropped == 0 || h.Stats().FramesDropped != flooded.Dropped {
		t.Fatalf("flood: %d relayed, %d dropped in %v (at most %d may pass); stats dropped %d",
			flooded.Frames, flooded.Dropped, elapsed, allowed, h.Stats().FramesDropped)
	}
	// Its viewer got at most what was relayed, and the newest.
	got := 0
	for len(floodIn) > 0 {
		<-floodIn
		got++
	}
	if uint64(got) > flooded.Frames {
		t.Fatalf("flood viewer got %d frames; only %d were relayed", got, flooded.Frames)
	}
	t.Logf("flood of %d frames in %v: %d relayed, %d dropped", floodFrames, elapsed.Round(time.Millisecond), flooded.Frames, flooded.Dropped)
}
