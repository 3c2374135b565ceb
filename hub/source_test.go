package hub

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

func counterState(h *Hub, name string) string {
	for _, cc := range h.ChannelCounters() {
		if cc.Name == name {
			return cc.SourceState
		}
	}
	return "?"
}

// TestSourceNotices: a publisher's notices show in /api/channels and the
// counters the metrics read, the newest winning, among its frames; the
// handshake says the hub takes them.
func TestSourceNotices(t *testing.T) {
	h, base := testHub(t, Config{})
	sub := dial(t, base, protocol.PathSubscribe, "cam")
	pub, resp, err := websocket.DefaultDialer.Dial(wsURL(base, protocol.PathPublish, "cam"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if resp.Header.Get(protocol.HeaderSourceNotices) != "1" {
		t.Fatalf("handshake headers %v lack %s: 1", resp.Header, protocol.HeaderSourceNotices)
	}
	notice := func(state, why string) {
		t.Helper()
		if err := pub.WriteMessage(websocket.TextMessage, protocol.NewSourceNotice(state, why).Encode()); err != nil {
			t.Fatal(err)
		}
	}
	send(t, pub, frameMsg(1, 16, 16, fakeJPEG(16, 16, 1, 100), nil))
	readFrame(t, sub, 3*time.Second)
	notice(protocol.SourceLive, "")
	testutil.Eventually(t, 3*time.Second, "live", func() bool { return channelInfo(h, "cam").SourceState == protocol.SourceLive })

	notice(protocol.SourceStalled, "no frame for 1s")
	notice(protocol.SourceReconnecting, "connection refused")
	testutil.Eventually(t, 3*time.Second, "reconnecting", func() bool {
		in := channelInfo(h, "cam")
		return in.SourceState == protocol.SourceReconnecting && in.SourceError == "connection refused"
	})
	if s := counterState(h, "cam"); s != protocol.SourceReconnecting {
		t.Errorf("counters say %q; want reconnecting", s)
	}
	// Frames go on after notices: the connection is not disturbed.
	send(t, pub, frameMsg(2, 16, 16, fakeJPEG(16, 16, 2, 100), nil))
	if f, _ := readFrame(t, sub, 3*time.Second); f.Seq != 2 {
		t.Fatalf("frame %d after the notices; want 2", f.Seq)
	}
	var infos []map[string]any
	getJSON(t, base+"/api/channels", &infos)
	if infos[0]["source_state"] != "reconnecting" || infos[0]["source_error"] != "connection refused" {
		t.Fatalf("/api/channels: %v", infos[0])
	}
	notice(protocol.SourceEnded, "end of file")
	pub.Close()
	testutil.Eventually(t, 3*time.Second, "no state once the publisher left", func() bool { return channelInfo(h, "cam").SourceState == "" })
}

// TestSourceStateDerived: a publisher that says nothing (an older one)
// is live while its frames come and stalled when none came for 1 to 3 s;
// an upload too.
func TestSourceStateDerived(t *testing.T) {
	h, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "old")
	for i := range 5 {
		send(t, pub, frameMsg(uint64(i+1), 16, 16, fakeJPEG(16, 16, uint64(i), 100), nil))
		time.Sleep(30 * time.Millisecond)
	}
	testutil.Eventually(t, 3*time.Second, "live", func() bool { return channelInfo(h, "old").SourceState == protocol.SourceLive })
	start := time.Now()
	testutil.Eventually(t, 10*time.Second, "stalled", func() bool { return channelInfo(h, "old").SourceState == protocol.SourceStalled })
	if d := time.Since(start); d > maxStaleAfter+time.Second {
		t.Errorf("stalled after %v; want at most %v", d, maxStaleAfter)
	}
	if why := channelInfo(h, "old").SourceError; !strings.HasPrefix(why, "no frame reached the hub for") {
		t.Errorf("stalled because %q", why)
	}
	send(t, pub, frameMsg(9, 16, 16, fakeJPEG(16, 16, 9, 100), nil))
	testutil.Eventually(t, 3*time.Second, "live again", func() bool { return channelInfo(h, "old").SourceState == protocol.SourceLive })

	// An upload that sends one JPEG and waits.
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/channels/up/stream.mjpeg", pr)
	req.Header.Set("Content-Type", "image/jpeg")
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := pw.Write(testutil.JPEG(64, 48, 1)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the upload live", func() bool {
		for _, in := range h.Channels() {
			if in.Name == "up" && in.SourceState == protocol.SourceLive {
				return true
			}
		}
		return false
	})
	testutil.Eventually(t, 10*time.Second, "the upload stalled", func() bool { return channelInfo(h, "up").SourceState == protocol.SourceStalled })
}

// TestSourceNoticeAttacks: a publisher that sends text too big, a state
// the hub does not know, an error too long, another op, or notices faster
// than the hub takes them is closed with a code that says why, counted,
// and logged at a bounded rate; its channel keeps its last frame and
// another channel's subscriber goes on receiving.
func TestSourceNoticeAttacks(t *testing.T) {
	good := frameMsg(1, 16, 16, fakeJPEG(16, 16, 1, 100), nil)
	flood := make([][]byte, sourceNoticeBurst+10)
	for i := range flood {
		flood[i] = protocol.NewSourceNotice(protocol.SourceLive, "").Encode()
	}
	for _, c := range []struct {
		name    string
		msgs    [][]byte
		code    int
		counter string
	}{
		{"huge text", [][]byte{bytes.Repeat([]byte("x"), 1<<20)}, websocket.CloseMessageTooBig, "too_big"},
		{"long notice", [][]byte{[]byte(`{"op":"source","state":"live","pad":"` + strings.Repeat(" ", 600) + `"}`)}, websocket.CloseMessageTooBig, "too_big"},
		{"bad state", [][]byte{[]byte(`{"op":"source","state":"on fire"}`)}, websocket.CloseInvalidFramePayloadData, "bad_source_notice"},
		{"error too long", [][]byte{[]byte(`{"op":"source","state":"stalled","error":"` + strings.Repeat("e", 300) + `"}`)},
			websocket.CloseInvalidFramePayloadData, "bad_source_notice"},
		{"other op", [][]byte{[]byte(`{"op":"credit","window":1}`)}, websocket.CloseUnsupportedData, "wrong_message_type"},
		{"flood", flood, websocket.ClosePolicyViolation, "source_notice_flood"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs testutil.LockedBuffer
			h, base := testHub(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			other := dial(t, base, protocol.PathSubscribe, "other")
			otherPub := dial(t, base, protocol.PathPublish, "other")
			sub := dial(t, base, protocol.PathSubscribe, "cam")
			pub := dial(t, base, protocol.PathPublish, "cam")
			send(t, pub, good)
			readFrame(t, sub, 3*time.Second)
			for _, m := range c.msgs {
				if err := pub.WriteMessage(websocket.TextMessage, m); err != nil {
					break // the hub closed it already
				}
			}
			if code, text := closeCode(t, pub); code != c.code {
				t.Fatalf("close code %d %q; want %d", code, text, c.code)
			}
			testutil.Eventually(t, 3*time.Second, c.counter+" counted", func() bool { return h.Stats().Refused[c.counter] == 1 })
			if n := strings.Count(logs.String(), `msg="refused: `); n != 1 {
				t.Errorf("refusal logged %d times; want once:\n%s", n, logs.String())
			}
			resp, err := http.Get(base + "/channels/cam/snapshot.jpg")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(body, good[protocol.HeaderLen:]) {
				t.Fatal("the channel lost its last good frame")
			}
			send(t, otherPub, frameMsg(7, 16, 16, fakeJPEG(16, 16, 7, 100), nil))
			if f, _ := readFrame(t, other, 3*time.Second); f.Seq != 7 {
				t.Fatalf("the other channel's subscriber got %d; want 7", f.Seq)
			}
		})
	}
}

// TestSourceFloodLoggedBounded: many publishers flooding at once are each
// refused and counted; the log grows by a bounded number of lines.
func TestSourceFloodLoggedBounded(t *testing.T) {
	var logs testutil.LockedBuffer
	h, base := testHub(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	notice := protocol.NewSourceNotice(protocol.SourceStalled, "x").Encode()
	const n = 20
	for i := range n {
		pub := dial(t, base, protocol.PathPublish, "flood-"+string(rune('a'+i)))
		for range sourceNoticeBurst + 5 {
			if pub.WriteMessage(websocket.TextMessage, notice) != nil {
				break
			}
		}
		closeCode(t, pub)
	}
	testutil.Eventually(t, 5*time.Second, "every flood refused", func() bool { return h.Stats().Refused["source_notice_flood"] == n })
	if got := strings.Count(logs.String(), `msg="refused: too many source notices"`); got > 2 {
		t.Errorf("%d refusal lines for %d floods; want the rest folded", got, n)
	}
}
