package hub

import (
	"bytes"
	"encoding/json"
	"image/color"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// rendMsg is a frame of rendition r (0: main) of w×h, numbered seq and
// captured at capture.
func rendMsg(seq uint64, capture int64, w, h uint32, r protocol.Rendition) []byte {
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey, Width: w, Height: h,
		Seq: seq, CaptureTime: capture, Rendition: r}, Payload: fakeJPEG(int(w), int(h), seq, 200+int(w))}
	return protocol.AppendFrame(nil, &f)
}

// sendSet publishes a main frame of 1280×720 and its renditions (widest
// first), all numbered seq and captured at capture.
func sendSet(t testing.TB, c *websocket.Conn, seq uint64, capture int64, widths ...uint32) {
	send(t, c, rendMsg(seq, capture, 1280, 720, 0))
	for _, w := range widths {
		send(t, c, rendMsg(seq, capture, w, w*9/16, protocol.Rendition(w)))
	}
}

// prime publishes frame 1 and its renditions and waits until the channel
// lists them all, so that readers joining next are placed at once.
func prime(t *testing.T, h *Hub, pub *websocket.Conn, channel string, widths ...uint32) {
	t.Helper()
	sendSet(t, pub, 1, time.Now().UnixNano(), widths...)
	want := "main"
	for _, w := range widths {
		want += "," + protocol.Rendition(w).String()
	}
	testutil.Eventually(t, 5*time.Second, "renditions "+want, func() bool { return renditionNames(renditionsOf(h, channel)) == want })
}

func dialQuery(t *testing.T, base, endpoint, channel, query string) *websocket.Conn {
	t.Helper()
	u := wsURL(base, endpoint, channel)
	if query != "" {
		u += "?" + query
	}
	c, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s%s?%s: %v (response %v)", endpoint, channel, query, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// renditionsOf returns the renditions /api/channels lists for channel.
func renditionsOf(h *Hub, channel string) []protocol.RenditionInfo {
	for _, c := range h.Channels() {
		if c.Name == channel {
			return c.Renditions
		}
	}
	return nil
}

func renditionNames(rs []protocol.RenditionInfo) string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	return strings.Join(names, ",")
}

// TestRenditionsByWant: one connection sends each main frame and its 640
// and 320 copies; each reader gets what it asked for and only that: the
// main picture by default (as a client of before renditions), the exact
// rendition it named, or the narrowest at least max-width wide, else the
// widest.
func TestRenditionsByWant(t *testing.T) {
	h, base := testHub(t, Config{})
	cases := []struct {
		query string
		want  protocol.Rendition
	}{
		{"", protocol.RenditionMain},
		{"rendition=main", protocol.RenditionMain},
		{"rendition=640", 640},
		{"max-width=320", 320},
		{"max-width=1", 320},
		{"max-width=321", 640},
		{"max-width=641", protocol.RenditionMain},
		{"max-width=65535", protocol.RenditionMain},
		{"window=1&max-width=320", 320},
	}
	pub := dial(t, base, protocol.PathPublish, "cam")
	prime(t, h, pub, "cam", 640, 320)
	subs := make([]*websocket.Conn, len(cases))
	for i, c := range cases {
		subs[i] = dialQuery(t, base, protocol.PathSubscribe, "cam", c.query)
	}
	waiting := dialQuery(t, base, protocol.PathSubscribe, "cam", "rendition=480") // no such rendition: waits
	testutil.Eventually(t, 5*time.Second, "readers joined", func() bool { return h.Readers("cam") == len(cases)+1 })
	for seq := uint64(1); seq <= 5; seq++ {
		if seq > 1 { // frame 1 is there when they join: each gets its own at once
			sendSet(t, pub, seq, time.Now().UnixNano(), 640, 320)
		}
		for i, c := range cases {
			f, _ := readFrame(t, subs[i], 5*time.Second)
			if f.Rendition != c.want || (c.want != 0 && f.Width != uint32(c.want)) || f.Seq != seq {
				t.Fatalf("?%s: got seq %d rendition %v (%dx%d); want seq %d rendition %v", c.query, f.Seq, f.Rendition,
					f.Width, f.Height, seq, c.want)
			}
			if strings.Contains(c.query, "window") {
				if err := subs[i].WriteJSON(protocol.Control{Op: protocol.OpAck, Seq: f.Seq}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	waiting.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, msg, err := waiting.ReadMessage(); err == nil {
		f, _ := protocol.ParseMessage(msg, protocol.DefaultLimits)
		t.Fatalf("a reader of rendition 480, which the channel lacks, got rendition %v", f.Rendition)
	}
	rs := renditionsOf(h, "cam")
	if got := renditionNames(rs); got != "main,640,320" {
		t.Fatalf("/api/channels renditions %q; want main,640,320", got)
	}
	for _, r := range rs {
		if r.Name == "320" && (r.Width != 320 || r.Height != 180 || r.Frames != 5 || r.Seq != 5 || !r.Live || r.Subscribers != 3) {
			t.Errorf("rendition 320 listed as %+v; want 320x180, 5 frames, seq 5, live, 3 readers", r)
		}
	}
}

// TestMaxWidthFollowsRenditions: a max-width reader moves when a rendition
// that fits appears (from a publisher of that rendition alone, as a
// processing worker or an ffmpeg scale would be) and back when it goes;
// across each move it never gets a frame captured before one it had.
func TestMaxWidthFollowsRenditions(t *testing.T) {
	h, base := testHub(t, Config{})
	sub := dialQuery(t, base, protocol.PathSubscribe, "cam", "max-width=320")
	pub := dial(t, base, protocol.PathPublish, "cam")
	at := time.Now().UnixNano()
	var seq uint64
	step := func() { seq++; at += int64(33 * time.Millisecond) }
	step()
	send(t, pub, rendMsg(seq, at, 1280, 720, 0))
	if f, _ := readFrame(t, sub, 5*time.Second); f.Rendition != 0 {
		t.Fatalf("with no rendition, max-width=320 got rendition %v; want the main picture", f.Rendition)
	}
	thumb := dialQuery(t, base, protocol.PathPublish, "cam", "rendition=320")
	testutil.Eventually(t, 5*time.Second, "the publisher of 320", func() bool { return h.Stats().Publishers == 2 })
	var last int64
	sawThumb := false
	for range 10 {
		step()
		send(t, pub, rendMsg(seq, at, 1280, 720, 0))
		send(t, thumb, rendMsg(seq, at, 320, 180, 320))
		for {
			f, _ := readFrame(t, sub, 5*time.Second)
			if f.CaptureTime < last {
				t.Fatalf("frame captured at %d after one captured at %d", f.CaptureTime, last)
			}
			last = f.CaptureTime
			sawThumb = sawThumb || f.Rendition == 320
			if f.Seq == seq {
				break
			}
		}
	}
	if !sawThumb {
		t.Fatal("the reader never moved to rendition 320")
	}
	thumb.Close()
	testutil.Eventually(t, 5*time.Second, "rendition 320 gone", func() bool { return renditionNames(renditionsOf(h, "cam")) == "main" })
	step()
	send(t, pub, rendMsg(seq, at, 1280, 720, 0))
	// Moved back, it may first get the main frame it had at 320 (the same
	// picture, not an older one), then the new one.
	for {
		f, _ := readFrame(t, sub, 5*time.Second)
		if f.Rendition != 0 || f.CaptureTime < last {
			t.Fatalf("after rendition 320 went: got rendition %v seq %d captured %d; want main, not older than %d",
				f.Rendition, f.Seq, f.CaptureTime, last)
		}
		last = f.CaptureTime
		if f.Seq == seq {
			break
		}
	}
}

// TestSwitchOnTheConnection: a control message moves a subscriber to
// another rendition from the next frame on, never to an older frame, and
// back again.
func TestSwitchOnTheConnection(t *testing.T) {
	h, base := testHub(t, Config{})
	sub := dialQuery(t, base, protocol.PathSubscribe, "cam", "")
	pub := dial(t, base, protocol.PathPublish, "cam")
	testutil.Eventually(t, 5*time.Second, "the reader joined", func() bool { return h.Readers("cam") == 1 })
	at := time.Now().UnixNano()
	var last int64
	seq := uint64(0)
	var lastRend protocol.Rendition
	round := func(want protocol.Rendition) {
		t.Helper()
		// After a switch the reader may first get the frame it had in its
		// new size (the same picture, not an older one); then each set's
		// frame comes in the new rendition.
		for range 3 {
			seq++
			at += int64(33 * time.Millisecond)
			sendSet(t, pub, seq, at, 640, 320)
			for {
				f, _ := readFrame(t, sub, 5*time.Second)
				if f.CaptureTime < last || (f.CaptureTime == last && f.Rendition == lastRend) {
					t.Fatalf("frame %d (%v) captured at %d after frame captured at %d (%v)", f.Seq, f.Rendition, f.CaptureTime, last, lastRend)
				}
				last, lastRend = f.CaptureTime, f.Rendition
				if f.Seq == seq {
					if f.Rendition != want {
						t.Fatalf("frame %d is rendition %v; want %v", f.Seq, f.Rendition, want)
					}
					break
				}
			}
		}
	}
	round(protocol.RenditionMain)
	for _, c := range []struct {
		ctl  protocol.Control
		want protocol.Rendition
	}{
		{protocol.Control{Op: protocol.OpRendition, MaxWidth: 300}, 320},
		{protocol.Control{Op: protocol.OpRendition, Rendition: "640"}, 640},
		{protocol.Control{Op: protocol.OpRendition, Rendition: "main"}, protocol.RenditionMain},
	} {
		if err := sub.WriteJSON(c.ctl); err != nil {
			t.Fatal(err)
		}
		// Let the switch land before the next set is sent.
		testutil.Eventually(t, 5*time.Second, "the switch", func() bool {
			for _, r := range renditionsOf(h, "cam") {
				if r.Name == c.want.String() {
					return r.Subscribers == 1
				}
			}
			return false
		})
		round(c.want)
	}
}

// TestSwitchWaitsForANewerFrameBounded: moved to a rendition whose frames
// are older than what it was sent, a reader waits for a newer one, but at
// most switchWait: a rendition numbered 2^64−1 and captured far in the
// future does not lock it out of the main picture afterwards.
func TestSwitchWaitsForANewerFrameBounded(t *testing.T) {
	h, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam")
	liar := dialQuery(t, base, protocol.PathPublish, "cam", "rendition=320")
	sub := dialQuery(t, base, protocol.PathSubscribe, "cam", "rendition=320")
	testutil.Eventually(t, 5*time.Second, "the reader joined", func() bool { return h.Readers("cam") == 1 })
	now := time.Now().UnixNano()
	send(t, pub, rendMsg(1, now, 1280, 720, 0))
	future := now + int64(24*time.Hour)
	send(t, liar, rendMsg(math.MaxUint64, future, 320, 180, 320))
	if f, _ := readFrame(t, sub, 5*time.Second); f.Rendition != 320 || f.Seq != math.MaxUint64 {
		t.Fatalf("got rendition %v seq %d; want the liar's frame", f.Rendition, f.Seq)
	}
	if err := sub.WriteJSON(protocol.Control{Op: protocol.OpRendition, Rendition: "main"}); err != nil {
		t.Fatal(err)
	}
	// Main frames, all captured "before" the liar's: held back at first,
	// then sent within switchWait.
	start := time.Now()
	got := make(chan protocol.Frame, 1)
	go func() {
		sub.SetReadDeadline(time.Now().Add(5 * switchWait))
		_, msg, err := sub.ReadMessage()
		if err == nil {
			f, _ := protocol.ParseMessage(msg, protocol.DefaultLimits)
			got <- f
		}
		close(got)
	}()
	var f protocol.Frame
	for seq := uint64(2); ; seq++ {
		send(t, pub, rendMsg(seq, time.Now().UnixNano(), 1280, 720, 0))
		select {
		case g, ok := <-got:
			if !ok {
				t.Fatal("no main frame after the switch")
			}
			f = g
		case <-time.After(30 * time.Millisecond):
			continue
		}
		break
	}
	waited := time.Since(start)
	if f.Rendition != 0 {
		t.Fatalf("after switching to main got rendition %v", f.Rendition)
	}
	if waited < switchWait/2 || waited > 3*switchWait {
		t.Fatalf("the first main frame came after %v; want about switchWait (%v): held back, then sent", waited, switchWait)
	}
	// From then on the main picture flows as before.
	send(t, pub, rendMsg(1000, time.Now().UnixNano(), 1280, 720, 0))
	if f, _ := readFrame(t, sub, 2*time.Second); f.Seq != 1000 {
		t.Fatalf("next main frame seq %d; want 1000", f.Seq)
	}
}

// TestSwitchFlood: a subscriber that switches renditions a thousand times
// a second is closed (1008, too_many_switches, counted); another reader of
// the channel goes on.
func TestSwitchFlood(t *testing.T) {
	h, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam")
	prime(t, h, pub, "cam", 640, 320)
	calm := dialQuery(t, base, protocol.PathSubscribe, "cam", "max-width=320")
	readFrame(t, calm, 5*time.Second) // frame 1, at once
	flood := dialQuery(t, base, protocol.PathSubscribe, "cam", "")
	testutil.Eventually(t, 5*time.Second, "readers joined", func() bool { return h.Readers("cam") == 2 })
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			w := 320
			if i%2 == 1 {
				w = 1280
			}
			if flood.WriteJSON(protocol.Control{Op: protocol.OpRendition, MaxWidth: w}) != nil {
				return
			}
		}
	}()
	for seq := uint64(2); seq <= 30; seq++ {
		sendSet(t, pub, seq, time.Now().UnixNano(), 640, 320)
		if f, _ := readFrame(t, calm, 5*time.Second); f.Seq != seq || f.Rendition != 320 {
			t.Fatalf("the calm reader got seq %d rendition %v; want %d, 320", f.Seq, f.Rendition, seq)
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, text := closeCode(t, flood)
	close(stop)
	<-done
	if code != websocket.ClosePolicyViolation || !strings.Contains(text, "switches") {
		t.Fatalf("the flooding subscriber ended with %d %q; want 1008 about switches", code, text)
	}
	if n := h.Stats().Refused["too_many_switches"]; n != 1 {
		t.Fatalf("too_many_switches counted %d; want 1", n)
	}
}

// TestRenditionAttacks: a publisher's renditions that lie are refused with
// a clear code and counted, and the channel's readers are not harmed.
func TestRenditionAttacks(t *testing.T) {
	now := time.Now().UnixNano
	for _, c := range []struct {
		name   string
		query  string // of the hostile publisher
		frames func() [][]byte
		code   int
		reason string
	}{
		{"wider than the main picture", "", func() [][]byte {
			at := now()
			return [][]byte{rendMsg(7, at, 640, 360, 0), rendMsg(7, at, 1280, 720, 1280)}
		}, websocket.CloseInvalidFramePayloadData, "bad_rendition"},
		{"taller than the main picture", "", func() [][]byte {
			at := now()
			return [][]byte{rendMsg(7, at, 640, 360, 0), rendMsg(7, at, 320, 720, 320)}
		}, websocket.CloseInvalidFramePayloadData, "bad_rendition"},
		{"not the main frame's number", "", func() [][]byte {
			at := now()
			return [][]byte{rendMsg(7, at, 1280, 720, 0), rendMsg(math.MaxUint64, at, 320, 180, 320)}
		}, websocket.CloseInvalidFramePayloadData, "bad_rendition"},
		{"not the main frame's capture time", "", func() [][]byte {
			at := now()
			return [][]byte{rendMsg(7, at, 1280, 720, 0), rendMsg(7, at+int64(time.Hour), 320, 180, 320)}
		}, websocket.CloseInvalidFramePayloadData, "bad_rendition"},
		{"a flood of one rendition after one main frame", "", func() [][]byte {
			at := now()
			out := [][]byte{rendMsg(7, at, 1280, 720, 0)}
			for range 1000 {
				out = append(out, rendMsg(7, at, 320, 180, 320))
			}
			return out
		}, websocket.CloseInvalidFramePayloadData, "bad_rendition"},
		{"before any main frame", "", func() [][]byte {
			return [][]byte{rendMsg(1, now(), 320, 180, 320)}
		}, websocket.CloseInvalidFramePayloadData, "bad_rendition"},
		{"a bomb in a rendition", "", func() [][]byte {
			at := now()
			f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey, Width: 320, Height: 180,
				Seq: 7, CaptureTime: at, Rendition: 320}, Payload: fakeJPEG(16000, 16000, 7, 400)}
			return [][]byte{rendMsg(7, at, 1280, 720, 0), protocol.AppendFrame(nil, &f)}
		}, websocket.CloseInvalidFramePayloadData, "bad_jpeg"},
		{"a main frame from a publisher of one rendition", "rendition=320", func() [][]byte {
			return [][]byte{rendMsg(1, now(), 1280, 720, 0)}
		}, websocket.CloseInvalidFramePayloadData, "bad_rendition"},
		{"another rendition from a publisher of one", "rendition=320", func() [][]byte {
			return [][]byte{rendMsg(1, now(), 640, 360, 640)}
		}, websocket.CloseInvalidFramePayloadData, "bad_rendition"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, base := testHub(t, Config{})
			good := dial(t, base, protocol.PathPublish, "good")
			prime(t, h, good, "good", 640, 320)
			reader := dialQuery(t, base, protocol.PathSubscribe, "good", "max-width=320")
			readFrame(t, reader, 5*time.Second) // frame 1, at once
			if c.query != "" {
				// Something for the one-rendition publisher to be narrower than.
				main := dial(t, base, protocol.PathPublish, "bad")
				send(t, main, rendMsg(1, now(), 1280, 720, 0))
				testutil.Eventually(t, 5*time.Second, "the main picture", func() bool { return renditionNames(renditionsOf(h, "bad")) == "main" })
			}
			bad := dialQuery(t, base, protocol.PathPublish, "bad", c.query)
			for _, msg := range c.frames() {
				if bad.WriteMessage(websocket.BinaryMessage, msg) != nil {
					break
				}
			}
			code, text := closeCode(t, bad)
			if code != c.code {
				t.Fatalf("hostile publisher closed with %d %q; want %d", code, text, c.code)
			}
			if n := h.Stats().Refused[c.reason]; n != 1 {
				t.Fatalf("%s counted %d times; want 1 (%q)", c.reason, n, text)
			}
			for seq := uint64(2); seq <= 4; seq++ {
				sendSet(t, good, seq, now(), 640, 320)
				if f, _ := readFrame(t, reader, 5*time.Second); f.Rendition != 320 || f.Seq != seq {
					t.Fatalf("the other channel's reader got seq %d rendition %v; want %d, 320", f.Seq, f.Rendition, seq)
				}
			}
		})
	}
}

// TestRenditionWidthIsItsName: a frame whose width is not its rendition's
// name does not parse (protocol.ErrRendition): 1007, bad_rendition.
func TestRenditionWidthIsItsName(t *testing.T) {
	h, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam")
	at := time.Now().UnixNano()
	send(t, pub, rendMsg(1, at, 1280, 720, 0))
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey, Width: 300, Height: 180,
		Seq: 1, CaptureTime: at, Rendition: 320}, Payload: fakeJPEG(300, 180, 1, 300)}
	send(t, pub, protocol.AppendFrame(nil, &f))
	if code, text := closeCode(t, pub); code != websocket.CloseInvalidFramePayloadData || !strings.Contains(text, "rendition") {
		t.Fatalf("closed with %d %q; want 1007 about the rendition", code, text)
	}
	if n := h.Stats().Refused["bad_rendition"]; n != 1 {
		t.Fatalf("bad_rendition counted %d; want 1", n)
	}
}

// TestHundredRenditions: a publisher that sends 100 renditions gets the
// channel's limit of them relayed; the rest are refused (counted, not
// relayed) while its main picture and first renditions go on; a
// publisher of one rendition past the limit is closed (1008). Their frames'
// memory goes back to the budget when they leave.
func TestHundredRenditions(t *testing.T) {
	h, base := testHub(t, Config{MaxRenditions: 4})
	idle := h.Stats().FrameMemoryBytes
	pub := dial(t, base, protocol.PathPublish, "cam")
	var reader *websocket.Conn
	for seq := uint64(1); seq <= 3; seq++ {
		at := time.Now().UnixNano()
		send(t, pub, rendMsg(seq, at, 1280, 720, 0))
		for w := uint32(1000); w > 1000-2*100; w -= 2 {
			send(t, pub, rendMsg(seq, at, w, w*9/16, protocol.Rendition(w)))
		}
		if seq == 1 {
			testutil.Eventually(t, 5*time.Second, "the first set", func() bool { return len(renditionsOf(h, "cam")) == 5 })
			reader = dialQuery(t, base, protocol.PathSubscribe, "cam", "max-width=100")
		}
		// The reader asked for 100 wide: the narrowest it gets is the
		// fourth rendition sent, 994.
		if f, _ := readFrame(t, reader, 5*time.Second); f.Rendition != 994 || f.Seq != seq {
			t.Fatalf("reader got rendition %v seq %d; want 994, %d", f.Rendition, f.Seq, seq)
		}
	}
	if got := renditionNames(renditionsOf(h, "cam")); got != "main,1000,998,996,994" {
		t.Fatalf("renditions listed %q; want main and the first 4", got)
	}
	testutil.Eventually(t, 5*time.Second, "3×96 renditions refused", func() bool { return h.Stats().Refused["too_many_renditions"] == 3*96 })
	one := dialQuery(t, base, protocol.PathPublish, "cam", "rendition=320")
	if code, text := closeCode(t, one); code != websocket.ClosePolicyViolation || !strings.Contains(text, "renditions") {
		t.Fatalf("a fifth rendition's publisher closed with %d %q; want 1008", code, text)
	}
	pub.Close()
	testutil.Eventually(t, 5*time.Second, "the renditions gone and their memory back", func() bool {
		return renditionNames(renditionsOf(h, "cam")) == "main" && h.Stats().FrameMemoryBytes <= idle+2*(1<<20)
	})
}

// TestRenditionTakeover: the newest claim of a (channel, rendition) wins.
// A publisher of one rendition replaces an older one (4001), and takes the
// rendition from the main publisher, which keeps its connection and its
// main picture while its frames of that rendition are dropped.
func TestRenditionTakeover(t *testing.T) {
	h, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam")
	reader := dialQuery(t, base, protocol.PathSubscribe, "cam", "rendition=320")
	mainReader := dialQuery(t, base, protocol.PathSubscribe, "cam", "")
	testutil.Eventually(t, 5*time.Second, "readers joined", func() bool { return h.Readers("cam") == 2 })
	at := time.Now().UnixNano()
	sendSet(t, pub, 1, at, 320)
	if f, _ := readFrame(t, reader, 5*time.Second); f.Seq != 1 {
		t.Fatalf("got seq %d; want the main publisher's 320 of frame 1", f.Seq)
	}
	readFrame(t, mainReader, 5*time.Second)
	a := dialQuery(t, base, protocol.PathPublish, "cam", "rendition=320")
	testutil.Eventually(t, 5*time.Second, "the takeover", func() bool { return h.Stats().Publishers == 2 })
	sendSet(t, pub, 2, at+1, 320) // its 320 goes nowhere now
	send(t, a, rendMsg(500, at+2, 320, 180, 320))
	if f, _ := readFrame(t, reader, 5*time.Second); f.Seq != 500 {
		t.Fatalf("reader of 320 got seq %d; want the new publisher's 500", f.Seq)
	}
	if f, _ := readFrame(t, mainReader, 5*time.Second); f.Seq != 2 {
		t.Fatalf("the main picture's reader got seq %d; want 2 (the main publisher goes on)", f.Seq)
	}
	b := dialQuery(t, base, protocol.PathPublish, "cam", "rendition=320")
	if code, _ := closeCode(t, a); code != protocol.CloseReplaced {
		t.Fatalf("the older publisher of 320 closed with %d; want 4001", code)
	}
	send(t, b, rendMsg(600, at+3, 320, 180, 320))
	if f, _ := readFrame(t, reader, 5*time.Second); f.Seq != 600 {
		t.Fatalf("reader of 320 got seq %d; want the newest publisher's 600", f.Seq)
	}
}

// TestBadWantQueries: max-width and rendition must be a width from 1 to
// 65535 (or "main"), once, not both: anything else is 400 bad_query on
// every reader's endpoint, before any upgrade.
func TestBadWantQueries(t *testing.T) {
	h, base := testHub(t, Config{})
	bad := []string{"max-width=0", "max-width=-320", "max-width=65536", "max-width=99999999999999999999", "max-width=abc",
		"max-width=320.5", "max-width=", "max-width=320&max-width=640", "rendition=0", "rendition=Main", "rendition=-1",
		"rendition=320&max-width=320", "rendition="}
	paths := []string{"/channels/cam/stream.mjpeg", "/channels/cam/snapshot.jpg", protocol.PathSubscribe + "cam"}
	n := 0
	for _, q := range bad {
		for _, p := range paths {
			req, _ := http.NewRequest("GET", base+p+"?"+q, nil)
			if strings.HasPrefix(p, "/ws/") {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			n++
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET %s?%s: %d %q; want 400", p, q, resp.StatusCode, body)
			}
		}
	}
	if got := h.Stats().Refused["bad_query"]; got != uint64(n) {
		t.Fatalf("bad_query counted %d; want %d", got, n)
	}
	for _, q := range []string{"rendition=0", "rendition=abc", "rendition=1&rendition=2"} {
		c, resp, err := websocket.DefaultDialer.Dial(wsURL(base, protocol.PathPublish, "cam")+"?"+q, nil)
		if err == nil {
			c.Close()
			t.Fatalf("publish ?%s accepted", q)
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("publish ?%s: %v; want 400", q, resp)
		}
	}
}

// TestRenditionSnapshotAndMJPEG: snapshot.jpg and stream.mjpeg choose by
// max-width and rendition as WebSocket subscribers do.
func TestRenditionSnapshotAndMJPEG(t *testing.T) {
	h, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam")
	sendSet(t, pub, 1, time.Now().UnixNano(), 640, 320)
	testutil.Eventually(t, 5*time.Second, "the set", func() bool { return renditionNames(renditionsOf(h, "cam")) == "main,640,320" })
	for _, c := range []struct {
		query string
		width int
		code  int
	}{
		{"", 1280, 200}, {"max-width=320", 320, 200}, {"max-width=400", 640, 200}, {"rendition=640", 640, 200},
		{"max-width=2000", 1280, 200}, {"rendition=480", 0, 404},
	} {
		resp, err := http.Get(base + "/channels/cam/snapshot.jpg?" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Fatalf("snapshot ?%s: %d %q; want %d", c.query, resp.StatusCode, body, c.code)
		}
		if c.code != 200 {
			continue
		}
		if w, _, err := protocol.JPEGSize(body); err != nil || w != c.width {
			t.Fatalf("snapshot ?%s is %d wide (%v); want %d", c.query, w, err, c.width)
		}
	}
	resp, err := http.Get(base + "/channels/cam/stream.mjpeg?max-width=320")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mr := multipart.NewReader(resp.Body, params["boundary"])
	parts := make(chan []byte, 4)
	go func() {
		defer close(parts)
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(p)
			parts <- b
		}
	}()
	for seq := uint64(2); seq <= 4; seq++ {
		testutil.Eventually(t, 5*time.Second, "the MJPEG reader", func() bool { return h.Readers("cam") == 1 })
		sendSet(t, pub, seq, time.Now().UnixNano(), 640, 320)
		select {
		case b := <-parts:
			if w, _, err := protocol.JPEGSize(b); err != nil || w != 320 {
				t.Fatalf("MJPEG part %d wide (%v); want 320", w, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no MJPEG part")
		}
	}
}

// TestRenditionUpload: POST …/stream.mjpeg?rendition=320 adds a rendition
// from another source; JPEGs that are not 320 wide are refused 422
// bad_rendition, and the upload is listed as the rendition's publisher.
func TestRenditionUpload(t *testing.T) {
	h, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam")
	send(t, pub, rendMsg(1, time.Now().UnixNano(), 1280, 720, 0))
	testutil.Eventually(t, 5*time.Second, "the main picture", func() bool { return renditionNames(renditionsOf(h, "cam")) == "main" })
	var body bytes.Buffer
	for i := range 3 {
		body.Write(realJPEG(t, 320, 180, i))
	}
	resp, err := http.Post(base+"/channels/cam/stream.mjpeg?rendition=320", "image/jpeg", &body)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var res protocol.UploadResult
	if resp.StatusCode != 200 || json.Unmarshal(got, &res) != nil || res.Frames != 3 || res.Width != 320 {
		t.Fatalf("upload of rendition 320: %d %s; want 200 with 3 frames 320 wide", resp.StatusCode, got)
	}
	// One JPEG as rendition 320: a later GET of rendition 320 returns it
	// exactly, and the main picture's snapshot is still the main frame.
	thumb := realJPEG(t, 320, 180, 7)
	resp, err = http.Post(base+"/channels/cam/snapshot.jpg?rendition=320", "image/jpeg", bytes.NewReader(thumb))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("snapshot POST of rendition 320: %d %s; want 200", resp.StatusCode, got)
	}
	for _, c := range []struct {
		query string
		width int
	}{{"?rendition=320", 320}, {"?max-width=300", 320}, {"", 1280}} {
		resp, err := http.Get(base + "/channels/cam/snapshot.jpg" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		w, _, _ := protocol.JPEGSize(b)
		if resp.StatusCode != 200 || w != c.width || c.width == 320 && !bytes.Equal(b, thumb) {
			t.Fatalf("GET snapshot.jpg%s: %d, %d wide (%d bytes); want 200 and the %d-wide picture", c.query, resp.StatusCode, w, len(b), c.width)
		}
	}
	resp, err = http.Post(base+"/channels/cam/snapshot.jpg?rendition=320", "image/jpeg", bytes.NewReader(realJPEG(t, 640, 360, 1)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(got), "rendition") {
		t.Fatalf("a 640-wide JPEG as rendition 320: %d %q; want 422 about the rendition", resp.StatusCode, got)
	}
	if n := h.Stats().Refused["bad_rendition"]; n != 1 {
		t.Fatalf("bad_rendition counted %d; want 1", n)
	}
}

// realJPEG is a real w×h JPEG that differs with i.
func realJPEG(t *testing.T, w, h, i int) []byte {
	return testJPEG(t, w, h, color.RGBA{R: uint8(40 * i), G: 100, B: 200, A: 255})
}

// TestRenditionCounters: ChannelCounters (what the metrics export) label
// each rendition, main first; a channel without renditions has none.
func TestRenditionCounters(t *testing.T) {
	h, base := testHub(t, Config{})
	plain := dial(t, base, protocol.PathPublish, "plain")
	send(t, plain, rendMsg(1, time.Now().UnixNano(), 64, 48, 0))
	pub := dial(t, base, protocol.PathPublish, "cam")
	dialQuery(t, base, protocol.PathSubscribe, "cam", "max-width=320")
	testutil.Eventually(t, 5*time.Second, "the reader", func() bool { return h.Readers("cam") == 1 })
	for seq := uint64(1); seq <= 4; seq++ {
		sendSet(t, pub, seq, time.Now().UnixNano(), 640, 320)
	}
	testutil.Eventually(t, 5*time.Second, "the frames counted", func() bool {
		for _, cc := range h.ChannelCounters() {
			if cc.Name == "cam" && len(cc.Renditions) == 3 && cc.Renditions[0].FramesIn == 4 {
				got := map[string]RenditionCounters{}
				for _, r := range cc.Renditions {
					got[r.Name] = r
				}
				return cc.Renditions[0].Name == "main" && got["320"].FramesIn == 4 && got["320"].Subscribers == 1 &&
					got["640"].FramesIn == 4 && got["640"].Subscribers == 0 && got["main"].Subscribers == 0
			}
		}
		return false
	})
	for _, cc := range h.ChannelCounters() {
		if cc.Name == "plain" && cc.Renditions != nil {
			t.Fatalf("a channel without renditions has rendition counters %v", cc.Renditions)
		}
	}
}

// TestSnapshotRenditionKept: a rendition posted as one snapshot stays
// after its POST ends, as a main snapshot does: readers and GETs of it get
// it, a later POST replaces it, and it goes once older than the channel
// TTL (while a rendition whose stream upload ended goes at once).
func TestSnapshotRenditionKept(t *testing.T) {
	h, base := testHub(t, Config{ChannelTTL: 2 * time.Second})
	post := func(file string, jpg []byte) {
		t.Helper()
		resp, err := http.Post(base+"/channels/cam/"+file+"?rendition=320", "image/jpeg", bytes.NewReader(jpg))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s?rendition=320: %d %s", file, resp.StatusCode, b)
		}
	}
	pub := dial(t, base, protocol.PathPublish, "cam")
	send(t, pub, rendMsg(1, time.Now().UnixNano(), 1280, 720, 0))
	testutil.Eventually(t, 5*time.Second, "the main picture", func() bool { return renditionNames(renditionsOf(h, "cam")) == "main" })

	post("stream.mjpeg", realJPEG(t, 320, 180, 1))
	testutil.Eventually(t, 5*time.Second, "the streamed rendition gone with its upload", func() bool {
		return renditionNames(renditionsOf(h, "cam")) == "main"
	})
	first, second := realJPEG(t, 320, 180, 2), realJPEG(t, 320, 180, 3)
	post("snapshot.jpg", first)
	post("snapshot.jpg", second)
	if got := renditionNames(renditionsOf(h, "cam")); got != "main,320" {
		t.Fatalf("renditions %q after the snapshot POSTs; want main,320", got)
	}
	resp, err := http.Get(base + "/channels/cam/snapshot.jpg?rendition=320")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(b, second) {
		t.Fatalf("GET snapshot.jpg?rendition=320: %d, %d bytes; want the second JPEG posted", resp.StatusCode, len(b))
	}
	reader := dialQuery(t, base, protocol.PathSubscribe, "cam", "max-width=320")
	if f, _ := readFrame(t, reader, 5*time.Second); f.Rendition != 320 || f.Seq != 2 {
		t.Fatalf("a max-width=320 reader got frame %d of %v; want the kept snapshot, 2 of 320", f.Seq, f.Rendition)
	}
	// The main publisher goes on; the kept rendition ages past the TTL.
	testutil.Eventually(t, 10*time.Second, "the kept rendition swept after the TTL", func() bool {
		send(t, pub, rendMsg(2, time.Now().UnixNano(), 1280, 720, 0))
		return renditionNames(renditionsOf(h, "cam")) == "main"
	})
}
