package hub

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// eventMeta returns metadata listing events, each "ID LABEL [end]" with
// start at t0, ending at t0 + 1 s when "end" is given, flagged best when
// the word "best" is.
func eventMeta(t0 float64, events ...string) []byte {
	var parts []string
	for _, e := range events {
		f := strings.Fields(e)
		s := fmt.Sprintf(`{"id":%q,"label":%q,"zone":"door","start":%.3f,"score":0.5`, f[0], f[1], t0)
		for _, w := range f[2:] {
			switch w {
			case "end":
				s += fmt.Sprintf(`,"end":%.3f`, t0+1)
			case "best":
				s = strings.Replace(s, `"score":0.5`, `"score":0.9,"best":true`, 1)
			}
		}
		parts = append(parts, s+"}")
	}
	return []byte(`{"events":[` + strings.Join(parts, ",") + `]}`)
}

func listEvents(t *testing.T, base, query string) []protocol.EventInfo {
	t.Helper()
	var list []protocol.EventInfo
	getJSON(t, base+protocol.PathEvents+query, &list)
	return list
}

func eventByID(list []protocol.EventInfo, id string) *protocol.EventInfo {
	for i := range list {
		if list[i].ID == id {
			return &list[i]
		}
	}
	return nil
}

// TestEventsFollowFrames: the hub keeps the events its channels' frames
// carry: GET /api/events lists them (by channel, and since a time), a
// frame flagged best becomes the event's snapshot (the JPEG as published,
// charged to the memory budget), an end in the metadata ends it, a frame
// that no longer lists one ends it ("gone"), and a publisher that leaves
// ends its channel's ("publisher_left"), while another channel's events
// are untouched.
func TestEventsFollowFrames(t *testing.T) {
	h, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "door")
	other := dial(t, base, protocol.PathPublish, "yard")
	t0 := float64(time.Now().Unix())
	red, blue := testJPEG(t, 64, 48, color.RGBA{200, 0, 0, 255}), testJPEG(t, 64, 48, color.RGBA{0, 0, 200, 255})
	send(t, pub, frameMsg(1, 64, 48, red, eventMeta(t0, "a person")))
	send(t, pub, frameMsg(2, 64, 48, blue, eventMeta(t0, "a person best", "b car")))
	send(t, other, frameMsg(1, 64, 48, red, eventMeta(t0, "y dog")))
	var listed []protocol.EventInfo
	testutil.Eventually(t, 5*time.Second, "three events", func() bool { listed = listEvents(t, base, ""); return len(listed) == 3 })
	// ?since= is "at or after", to the millisecond: a since taken in the
	// millisecond of y's last change would list y too. So before is taken
	// once the clock is past the millisecond of every change listed.
	last := int64(0)
	for _, e := range listed {
		last = max(last, int64(math.Round(e.Updated*1e3)))
	}
	testutil.Eventually(t, time.Second, "the clock past the last change's millisecond", func() bool { return time.Now().UnixMilli() > last })
	before := time.Now()
	send(t, pub, frameMsg(3, 64, 48, red, eventMeta(t0, "a person end", "b car")))
	send(t, pub, frameMsg(4, 64, 48, red, eventMeta(t0, "a person end")))
	testutil.Eventually(t, 5*time.Second, "a and b ended", func() bool {
		l := listEvents(t, base, "?channel=door")
		return len(l) == 2 && eventByID(l, "a").End != nil && eventByID(l, "b").End != nil
	})
	list := listEvents(t, base, "?channel=door")
	a, b := eventByID(list, "a"), eventByID(list, "b")
	if a.Channel != "door" || a.Label != "person" || a.Zone != "door" || a.Start != t0 || *a.End != t0+1 || a.EndReason != protocol.EndEnded || a.Score != 0.9 {
		t.Errorf("event a: %+v", *a)
	}
	if b.EndReason != protocol.EndGone || *b.End < t0 {
		t.Errorf("event b (no longer listed): %+v", *b)
	}
	if a.Snapshot != protocol.PathEventSnapshots+"door/a/snapshot.jpg?v=1" || b.Snapshot != "" {
		t.Fatalf("snapshots %q, %q", a.Snapshot, b.Snapshot)
	}
	resp, err := http.Get(base + a.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, blue) || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("snapshot: %d, %d bytes; want the best frame's JPEG (%d bytes)", resp.StatusCode, len(got), len(blue))
	}
	if st := h.Stats(); st.Events.Snapshots != 1 || st.Events.SnapBytes != int64(len(blue)) || st.FrameMemoryBytes < uint64(len(blue)) {
		t.Errorf("stats %+v, frame memory %d; want the snapshot counted and charged", st.Events, st.FrameMemoryBytes)
	}
	// since: only what changed from then on (a, b), not y, last changed
	// in an earlier millisecond.
	since := fmt.Sprintf("?since=%.3f", float64(before.UnixMilli())/1e3)
	if l := listEvents(t, base, since); len(l) != 2 || eventByID(l, "y") != nil {
		t.Errorf("since %s: %d events; want a and b, which ended since", since, len(l))
	}
	// The publisher leaves: door has nothing going on; yard's goes on.
	send(t, pub, frameMsg(5, 64, 48, red, eventMeta(t0, "c person")))
	testutil.Eventually(t, 5*time.Second, "c started", func() bool { return eventByID(listEvents(t, base, ""), "c") != nil })
	pub.Close()
	testutil.Eventually(t, 5*time.Second, "c ended as its publisher left", func() bool {
		c := eventByID(listEvents(t, base, ""), "c")
		return c.End != nil && c.EndReason == protocol.EndPublisherLeft
	})
	if y := eventByID(listEvents(t, base, ""), "y"); y.End != nil {
		t.Errorf("yard's event ended with door's publisher: %+v", *y)
	}
	for _, bad := range []string{"?channel=a/b", "?channel=..", "?since=soon", "?since=NaN"} {
		resp, err := http.Get(base + protocol.PathEvents + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d; want 400", bad, resp.StatusCode)
		}
	}
	if resp, _ := http.Get(base + protocol.PathEventSnapshots + "door/nope/snapshot.jpg"); resp.StatusCode != 404 {
		t.Errorf("snapshot of an unknown event: %d; want 404", resp.StatusCode)
	}
}

// sseClient reads a hub's event stream.
type sseClient struct {
	resp *http.Response
	msgs chan [2]string // event, data
}

func openStream(t *testing.T, base, query string, header http.Header) *sseClient {
	t.Helper()
	req, _ := http.NewRequest("GET", base+protocol.PathEventStream+query, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{resp: resp, msgs: make(chan [2]string, 1000)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.msgs) // the stream ended
		sc := bufio.NewScanner(resp.Body)
		var ev, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			case line == "" && data != "":
				c.msgs <- [2]string{ev, data}
				ev, data = "", ""
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close(); <-done })
	return c
}

func (c *sseClient) next(t *testing.T) (string, protocol.EventInfo) {
	t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			t.Fatal("the stream ended")
		}
		var info protocol.EventInfo
		if err := json.Unmarshal([]byte(m[1]), &info); err != nil {
			t.Fatalf("stream data %q: %v", m[1], err)
		}
		return m[0], info
	case <-time.After(5 * time.Second):
		t.Fatal("no stream message within 5 s")
	}
	return "", protocol.EventInfo{}
}

// TestEventStream: a stream reader gets each start, update (a better
// frame) and end as it happens, of the channel it asked for only.
func TestEventStream(t *testing.T) {
	_, base := testHub(t, Config{})
	door := openStream(t, base, "?channel=door", nil)
	all := openStream(t, base, "", nil)
	pub := dial(t, base, protocol.PathPublish, "door")
	yard := dial(t, base, protocol.PathPublish, "yard")
	t0 := float64(time.Now().Unix())
	jpg := testJPEG(t, 32, 32, color.RGBA{1, 2, 3, 255})
	send(t, yard, frameMsg(1, 32, 32, jpg, eventMeta(t0, "y dog")))
	send(t, pub, frameMsg(1, 32, 32, jpg, eventMeta(t0, "a person")))
	send(t, pub, frameMsg(2, 32, 32, jpg, eventMeta(t0, "a person best"))) // within updateEvery of the start: told by the janitor
	kind, info := door.next(t)
	if kind != protocol.EventStart || info.ID != "a" || info.Type != kind || info.Channel != "door" || info.End != nil {
		t.Fatalf("door stream: %s %+v; want the start of a", kind, info)
	}
	kind, info = door.next(t)
	if kind != protocol.EventUpdate || info.Score != 0.9 || info.Snapshot == "" {
		t.Fatalf("door stream: %s %+v; want an update of a with its snapshot and better score", kind, info)
	}
	send(t, pub, frameMsg(3, 32, 32, jpg, eventMeta(t0, "a person end")))
	if kind, info = door.next(t); kind != protocol.EventEnd || info.End == nil || *info.End != t0+1 {
		t.Fatalf("door stream: %s %+v; want the end of a", kind, info)
	}
	seen := map[string]bool{}
	for range 4 { // y's start, a's start, update and end
		kind, info := all.next(t)
		seen[info.Channel+":"+kind] = true
	}
	if !seen["yard:start"] || !seen["door:end"] {
		t.Errorf("the all-channels stream saw %v", seen)
	}
}

// TestEventAttacks: a publisher claiming 10,000 events in a frame, and
// one starting new events as fast as it can: the hub reads 32 events a
// frame (the rest counted as left out), starts at most its rate (the rest
// counted under refused event_rate), keeps a bounded number per channel,
// and another channel's events and frames go on.
func TestEventAttacks(t *testing.T) {
	h, base := testHub(t, Config{MaxMetaBytes: 2 << 20})
	flood := dial(t, base, protocol.PathPublish, "flood")
	good := dial(t, base, protocol.PathPublish, "good")
	sub := dial(t, base, protocol.PathSubscribe, "good")
	t0 := float64(time.Now().Unix())
	jpg := testJPEG(t, 32, 32, color.RGBA{9, 9, 9, 255})
	var big []string
	for i := range 10000 {
		big = append(big, fmt.Sprintf("f%d person", i))
	}
	start := time.Now()
	send(t, flood, frameMsg(1, 32, 32, jpg, eventMeta(t0, big...)))
	for seq := uint64(2); seq <= 100; seq++ { // a new event in every frame, as fast as it goes
		send(t, flood, frameMsg(seq, 32, 32, jpg, eventMeta(t0, fmt.Sprintf("n%d person", seq))))
	}
	send(t, good, frameMsg(1, 32, 32, jpg, eventMeta(t0, "g person")))
	if f, _ := readFrame(t, sub, 5*time.Second); f.Seq != 1 {
		t.Fatalf("the good channel's frame: %d", f.Seq)
	}
	// Read, and relayed or dropped by the frame-rate cap.
	testutil.Eventually(t, 10*time.Second, "every frame read", func() bool { st := h.Stats(); return st.FramesIn+st.FramesDropped == 101 })
	elapsed := time.Since(start)
	testutil.Eventually(t, 5*time.Second, "the good channel's event", func() bool { return eventByID(listEvents(t, base, "?channel=good"), "g") != nil })
	st := h.Stats()
	started := int(st.Events.Started) - 1
	allowed := int(eventBurst + eventRate*elapsed.Seconds() + 1)
	t.Logf("flood: %d events started of 10,099 claimed in %v; %d refused (event_rate), %d frames with events left out",
		started, elapsed, st.Refused["event_rate"], st.Events.BadMeta)
	if started > allowed || st.Events.RateLimited == 0 || st.Refused["event_rate"] != st.Events.RateLimited {
		t.Errorf("%d flood events started (at most %d allowed); %d rate-limited", started, allowed, st.Events.RateLimited)
	}
	if kept := len(listEvents(t, base, "?channel=flood")); kept > maxEventsPerChannel {
		t.Errorf("%d flood events kept; at most %d", kept, maxEventsPerChannel)
	}
	if st.Events.BadMeta == 0 {
		t.Error("the frame claiming 10,000 events was not counted as partly left out")
	}
}

// smallBuffers is a listener whose connections have a tiny kernel send
// buffer, so that a reader that stops reading blocks the hub's writes
// within a few kilobytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestEventStreamStalledReader: a stream reader that never reads costs a
// bounded queue, and is dropped within the write timeout once its socket
// is full (counted); a reader that reads goes on getting notices.
func TestEventStreamStalledReader(t *testing.T) {
	h := New(Config{WriteTimeout: 500 * time.Millisecond})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(func() { h.Close(); srv.Close(); http.DefaultTransport.(*http.Transport).CloseIdleConnections() })
	base := srv.URL
	stalled, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	stalled.(*net.TCPConn).SetReadBuffer(4096)
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", protocol.PathEventStream)
	live := openStream(t, base, "", nil)
	testutil.Eventually(t, 5*time.Second, "two readers", func() bool { return h.Stats().Events.Streams == 2 })
	t0 := float64(time.Now().Unix())
	jpg := testJPEG(t, 32, 32, color.RGBA{9, 9, 9, 255})
	got := 0
	for ch := range 10 { // 10 channels × 20 events started and ended: 400 notices
		pub := dial(t, base, protocol.PathPublish, fmt.Sprintf("c%d", ch))
		var evs, ends []string
		for i := range 20 {
			evs = append(evs, fmt.Sprintf("e%d person", i))
			ends = append(ends, fmt.Sprintf("e%d person end", i))
		}
		send(t, pub, frameMsg(1, 32, 32, jpg, eventMeta(t0, evs...)))
		send(t, pub, frameMsg(2, 32, 32, jpg, eventMeta(t0, ends...)))
		for range 40 {
			live.next(t)
			got++
		}
	}
	testutil.Eventually(t, 10*time.Second, "the stalled reader dropped", func() bool {
		st := h.Stats().Events
		return st.StreamsEvicted == 1 && st.Streams == 1
	})
	t.Logf("the reading stream got %d notices; stats %+v", got, *h.Stats().Events)
}

// TestEventStreamSlowReaderIsTold: a reader that falls streamQueue notices
// behind gets an "event: dropped" with how many, and the count.
func TestEventStreamSlowReaderIsTold(t *testing.T) {
	h, _ := testHub(t, Config{})
	s := &eventStream{may: func(string) bool { return true }, wake: make(chan struct{}, 1)}
	for i := range streamQueue + 10 {
		s.offer([]outNotice{{"c", sseMessage(protocol.EventUpdate, []byte(fmt.Sprintf(`{"id":"e%d"}`, i))), uint64(i + 1)}}, 0)
	}
	msg, dropped := s.take()
	if dropped != 10 || !bytes.HasPrefix(msg, []byte("event: dropped\ndata: {\"dropped\":10}\n\n")) ||
		bytes.Count(msg, []byte("event: update")) != streamQueue || !bytes.Contains(msg, []byte(`"e10"`)) || bytes.Contains(msg, []byte(`"e9"}`)) {
		t.Fatalf("after %d notices to a queue of %d: dropped %d, %d bytes", streamQueue+10, streamQueue, dropped, len(msg))
	}
	_ = h
}

// TestEventsNeedTheViewRight: the event endpoints follow the view tokens:
// no token 401, a token for other channels 403 on a channel and a list
// without those channels, the stream and snapshots alike.
func TestEventsNeedTheViewRight(t *testing.T) {
	const pubTok, doorTok = "publish-token-0123456789", "door-view-token-0123456789"
	_, base := testHub(t, Config{DenyDelay: -1, Auth: grantsAuth(t,
		Grant{Token: pubTok, Rights: RightPublish, Channels: []string{"*"}},
		Grant{Token: doorTok, Rights: RightView, Channels: []string{"door"}})})
	publish := func(ch string) *websocket.Conn { return dialWith(t, base, protocol.PathPublish, ch, bearer(pubTok)) }
	t0 := float64(time.Now().Unix())
	jpg := testJPEG(t, 32, 32, color.RGBA{1, 2, 3, 255})
	send(t, publish("door"), frameMsg(1, 32, 32, jpg, eventMeta(t0, "d person best")))
	send(t, publish("vault"), frameMsg(1, 32, 32, jpg, eventMeta(t0, "v person best")))
	get := func(path, tok string) (int, []byte) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if strings.HasPrefix(path, protocol.PathEventStream) {
			return resp.StatusCode, nil
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	var list []protocol.EventInfo
	testutil.Eventually(t, 5*time.Second, "both events", func() bool {
		code, b := get(protocol.PathEvents, doorTok)
		list = nil
		json.Unmarshal(b, &list)
		return code == 200 && len(list) == 1
	})
	if list[0].ID != "d" {
		t.Errorf("the door token lists %+v; want door's event only", list)
	}
	for _, c := range []struct {
		path, tok string
		want      int
	}{
		{protocol.PathEvents, "", 401},
		{protocol.PathEvents + "?channel=vault", doorTok, 403},
		{protocol.PathEvents + "?channel=door", doorTok, 200},
		{protocol.PathEventStream, "", 401},
		{protocol.PathEventStream + "?channel=vault", doorTok, 403},
		{protocol.PathEventSnapshots + "vault/v/snapshot.jpg", doorTok, 403},
		{protocol.PathEventSnapshots + "vault/v/snapshot.jpg", "", 401},
		{protocol.PathEventSnapshots + "door/d/snapshot.jpg", doorTok, 200},
	} {
		if code, _ := get(c.path, c.tok); code != c.want {
			t.Errorf("GET %s with %q: %d; want %d", c.path, c.tok, code, c.want)
		}
	}
}

// TestEventWebhooks: a hub with a webhook sends each start and end of its
// publishers' events, signed, with an idempotency key, to a receiver that
// fails its first three tries of each: each one gets through exactly once;
// the body has the documented fields.
func TestEventWebhooks(t *testing.T) {
	secret := []byte("hook-secret")
	rc := newReceiver(t, secret, 3, nil)
	var mu sync.Mutex
	var bodies [][]byte
	rc.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		rc.serve(w, r)
	})
	h, base := testHub(t, Config{Webhook: WebhookConfig{URL: rc.srv.URL, Secret: secret, Backoff: 20 * time.Millisecond}})
	pub := dial(t, base, protocol.PathPublish, "door")
	t0 := float64(time.Now().Unix())
	jpg := testJPEG(t, 32, 32, color.RGBA{1, 2, 3, 255})
	send(t, pub, frameMsg(1, 32, 32, jpg, eventMeta(t0, "a person", "b car")))
	send(t, pub, frameMsg(2, 32, 32, jpg, eventMeta(t0, "a person end", "b car")))
	send(t, pub, frameMsg(3, 32, 32, jpg, eventMeta(t0, "b car end")))
	testutil.Eventually(t, 20*time.Second, "four deliveries", func() bool { return h.Stats().Events.Webhook.Delivered == 4 })
	rc.mu.Lock()
	for _, k := range []string{"door/a/start", "door/b/start", "door/a/end", "door/b/end"} {
		if rc.acked[k] != 1 || rc.attempts[k] != 4 {
			t.Errorf("%s: delivered %d times in %d attempts; want once, on the fourth", k, rc.acked[k], rc.attempts[k])
		}
	}
	if rc.badSig != 0 {
		t.Errorf("%d bad signatures", rc.badSig)
	}
	rc.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	var start, end map[string]any
	for _, b := range bodies {
		var m map[string]any
		json.Unmarshal(b, &m)
		if m["id"] == "a" && m["type"] == "start" {
			start = m
		}
		if m["id"] == "a" && m["type"] == "end" {
			end = m
		}
	}
	for _, k := range []string{"type", "id", "channel", "label", "zone", "start", "end", "score"} {
		if _, ok := start[k]; !ok {
			t.Errorf("start body %v lacks %q", start, k)
		}
	}
	if start["end"] != nil || end["end"] != t0+1 || start["channel"] != "door" || start["label"] != "person" {
		t.Errorf("bodies: start %v, end %v", start, end)
	}
	_ = context.Background
}

// TestEventStreamFollowsReload: a stream of every channel is held to the
// reload rules as an MJPEG stream is: a reload that drops its token ends
// it, one that narrows its token's channels narrows what it gets from the
// next notice on, and one that closes an open view right ends a stream
// opened without a token.
func TestEventStreamFollowsReload(t *testing.T) {
	const pubTok, allTok, keptTok = "publish-token-0123456789", "all-view-token-0123456789", "kept-view-token-0123456789"
	grants := func(all, kept []string) *Auth {
		g := []Grant{{Token: pubTok, Rights: RightPublish, Channels: []string{"*"}}}
		if all != nil {
			g = append(g, Grant{Token: allTok, Rights: RightView, Channels: all})
		}
		return grantsAuth(t, append(g, Grant{Token: keptTok, Rights: RightView, Channels: kept})...)
	}
	h, base := testHub(t, Config{DenyDelay: -1, Auth: grants([]string{"*"}, []string{"*"})})
	dropped := openStream(t, base, "", bearer(allTok))
	narrowed := openStream(t, base, "", bearer(keptTok))
	testutil.Eventually(t, 5*time.Second, "two readers", func() bool { return h.Stats().Events.Streams == 2 })

	h.Reload(Access{Auth: grants(nil, []string{"door"})})
	select {
	case m, ok := <-dropped.msgs:
		if ok {
			t.Fatalf("the stream of a dropped token got %v after the reload", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream of a token the reload dropped still open after 5 s")
	}
	publish := func(ch string) *websocket.Conn { return dialWith(t, base, protocol.PathPublish, ch, bearer(pubTok)) }
	t0 := float64(time.Now().Unix())
	jpg := testJPEG(t, 32, 32, color.RGBA{1, 2, 3, 255})
	send(t, publish("vault"), frameMsg(1, 32, 32, jpg, eventMeta(t0, "v person")))
	send(t, publish("door"), frameMsg(1, 32, 32, jpg, eventMeta(t0, "d person")))
	if _, info := narrowed.next(t); info.Channel != "door" {
		t.Fatalf("a token narrowed to door by the reload got an event of %s", info.Channel)
	}

	// An open view right, then closed: a stream opened without a token ends.
	h.Reload(Access{Auth: grantsAuth(t, Grant{Token: pubTok, Rights: RightPublish, Channels: []string{"*"}})})
	open := openStream(t, base, "", nil)
	testutil.Eventually(t, 5*time.Second, "the open reader", func() bool { return h.Stats().Events.Streams == 2 })
	h.Reload(Access{Auth: grants(nil, []string{"*"})})
	select {
	case m, ok := <-open.msgs:
		if ok {
			t.Fatalf("the stream got %v after the reload closed viewing", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stream opened while viewing was open still open after the reload closed it")
	}
}

// observeMeta has the book read a frame of channel carrying meta, as the
// hub does for a frame it accepts from a local publisher.
func observeMeta(t *testing.T, h *Hub, channel string, seq uint64, meta []byte) {
	t.Helper()
	observeFrame(t, h, channel, seq, meta, 100)
}

// observeFrame is observeMeta with a JPEG of size bytes.
func observeFrame(t *testing.T, h *Hub, channel string, seq uint64, meta []byte, size int) {
	t.Helper()
	h.book.observe(channel, metaFrame(t, h, seq, meta, size), true)
}

// metaFrame returns a frame as the hub holds it, carrying meta and a JPEG
// of size bytes.
func metaFrame(t *testing.T, h *Hub, seq uint64, meta []byte, size int) *frame {
	t.Helper()
	msg := frameMsg(seq, 8, 8, fakeJPEG(8, 8, seq, size), meta)
	buf := make([]byte, wsRoom+len(msg))
	copy(buf[wsRoom:], msg)
	pf, err := protocol.ParseMessage(buf[wsRoom:], h.limits)
	if err != nil {
		t.Fatal(err)
	}
	return newFrame(buf, pf, time.Now())
}

// TestEventBookBounds: the book keeps at most maxEventsKept events however
// they are spread: 300 channels each with 32 events going on (their
// frames list all they have, the rate letting 20 of each start) make 6000
// events going on, not past the bound; the channel holding the most gives
// way. And a channel the book holds nothing of is forgotten once its
// rate is whole again, so 5000 channel names that came and went (each
// event evicted since) leave nothing behind.
func TestEventBookBounds(t *testing.T) {
	h, _ := testHub(t, Config{MaxMetaBytes: 1 << 20})
	b := h.book
	t0 := float64(time.Now().Unix())
	var ids []string
	for i := range protocol.MaxEvents {
		ids = append(ids, fmt.Sprintf("e%d person", i))
	}
	meta := eventMeta(t0, ids...)
	for c := range 300 {
		observeMeta(t, h, fmt.Sprintf("c%d", c), 1, meta)
	}
	b.mu.Lock()
	kept := b.kept
	b.mu.Unlock()
	if st := b.stats(); kept > maxEventsKept || st.Kept > maxEventsKept || st.Active > maxEventsKept {
		t.Fatalf("300 channels × 20 events going on: %d kept (%d going on); want at most %d", st.Kept, st.Active, maxEventsKept)
	}
	for c := range 5000 {
		ch := fmt.Sprintf("churn%d", c)
		observeMeta(t, h, ch, 1, eventMeta(t0, "x person end"))
	}
	b.sweep(time.Now().Add(time.Minute))
	b.mu.Lock()
	channels, kept := len(b.channels), b.kept
	withEvents := 0
	for _, ce := range b.channels {
		if len(ce.events) > 0 {
			withEvents++
		}
	}
	b.mu.Unlock()
	t.Logf("after 300 full channels and 5000 that came and went: %d channels held, %d with events, %d events kept", channels, withEvents, kept)
	checkActive(t, b)
	if channels != withEvents || kept > maxEventsKept {
		t.Errorf("the book holds %d channels, %d of them with events (%d events); want only those with events", channels, withEvents, kept)
	}
}

// TestEventStreamsShareNotices: a notice is made into an event once for
// all stream readers, whose queues share it. 1000 readers that do not read
// (each queue full: streamQueue notices) cost the notices once and a slice
// each, not a copy each (about 80 MB of copies of 300-byte notices, none
// of it charged to the memory budget); and a notice costs a few
// allocations, not one per reader.
func TestEventStreamsShareNotices(t *testing.T) {
	h, _ := testHub(t, Config{})
	b := h.book
	const readers = 1000
	b.mu.Lock()
	for range readers {
		b.streams[&eventStream{may: func(string) bool { return true }, wake: make(chan struct{}, 1)}] = struct{}{}
	}
	b.mu.Unlock()
	t.Cleanup(func() { b.mu.Lock(); clear(b.streams); b.mu.Unlock() })
	ke := &keptEvent{info: protocol.EventInfo{ID: "e", Channel: "c", Label: "person", Zone: "door", Start: 1, Score: 0.5}}
	notify := func() {
		b.mu.Lock()
		b.notify(ke, protocol.EventUpdate, time.Now())
		b.mu.Unlock()
	}
	for range streamQueue {
		notify()
	}
	allocs := testing.AllocsPerRun(20, notify)
	t.Logf("%d readers with full queues: %.1f allocations per notice", readers, allocs)
	if allocs > readers/10 {
		t.Errorf("%.0f allocations per notice to %d readers; want a few, the notice shared", allocs, readers)
	}
}

// TestEventStreamHead: a HEAD of the event stream is answered with its
// headers and ends: it takes no reader's place and leaves the connection
// free for the next request. Before, it held a place until the client
// hung up (never evicted: a HEAD's writes go nowhere), and a keep-alive
// client's next request on the connection was never answered.
func TestEventStreamHead(t *testing.T) {
	h, base := testHub(t, Config{})
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for _, m := range []string{"HEAD", "GET"} {
		path := protocol.PathEventStream
		if m == "GET" {
			path = protocol.PathLimits
		}
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", m, path)
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("%s %s on the connection: %v", m, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (m == "HEAD" && resp.Header.Get("Content-Type") != "text/event-stream") {
			t.Fatalf("%s %s: %d %s", m, path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if n := h.Stats().Events.Streams; n != 0 {
		t.Errorf("%d stream readers after a HEAD; want 0", n)
	}
}

// TestEventSnapshotsMakeRoom: the snapshots' bound (maxSnapshots) is not
// first come, first served for good: once it is full of ended events'
// snapshots (13 channels × 20 events, each flagged best, then ended), a
// new event on another channel still gets its snapshot, the one of the
// event that ended longest ago making room. Before, every later event of
// every channel went without one until thousands of events had turned
// the book over.
func TestEventSnapshotsMakeRoom(t *testing.T) {
	h, _ := testHub(t, Config{MaxMetaBytes: 1 << 20})
	b := h.book
	t0 := float64(time.Now().Unix())
	fillSnapshots(t, h, t0, true)
	observeMeta(t, h, "door", 1, eventMeta(t0, "d person best"))
	if st := b.stats(); b.snapshot("door", "d") == nil || st.Snapshots > maxSnapshots {
		t.Fatalf("the door event has a snapshot: %v (%d kept, %d refused); want one, within the bound",
			b.snapshot("door", "d") != nil, st.Snapshots, st.SnapshotsRefused)
	}
	// Those that gave way (4 for flood12's last events, 1 for door's)
	// ended no later than any that kept theirs.
	b.mu.Lock()
	gone, lastGone, firstKept := 0, 0.0, math.Inf(1)
	for _, ce := range b.channels {
		for _, ke := range ce.events {
			switch {
			case ke.end == 0:
			case ke.snap == nil:
				gone++
				lastGone = max(lastGone, ke.info.Updated)
			default:
				firstKept = min(firstKept, ke.info.Updated)
			}
		}
	}
	b.mu.Unlock()
	if gone != 5 || lastGone > firstKept {
		t.Errorf("%d ended events lost their snapshots, the last of them ended at %.3f, the first that kept one at %.3f; want 5, the first to end",
			gone, lastGone, firstKept)
	}
}

// fillSnapshots has 13 channels start 20 events each, every one flagged
// best (the 256 snapshots the book keeps at most), and ends each channel's
// before the next starts when ended is true (flood12's last 4 then take
// the snapshots of 4 ended events; without, they are refused).
func fillSnapshots(t *testing.T, h *Hub, t0 float64, ended bool) {
	t.Helper()
	for c := range 13 {
		var live, ends []string
		for i := range 20 {
			live = append(live, fmt.Sprintf("e%d person best", i))
			ends = append(ends, fmt.Sprintf("e%d person end", i))
		}
		ch := fmt.Sprintf("flood%d", c)
		observeMeta(t, h, ch, 1, eventMeta(t0, live...))
		if ended {
			observeMeta(t, h, ch, 2, eventMeta(t0, ends...))
		}
	}
	if st := h.book.stats(); st.Snapshots != maxSnapshots {
		t.Fatalf("%d snapshots after 260 events flagged best; want the bound, %d", st.Snapshots, maxSnapshots)
	}
}

// TestEventSnapshotRefusalsWait: an event refused a snapshot (the store
// full of events going on, which never give way) tries again at most every
// snapshotEvery, as a replacement does, not with every frame flagged best:
// each try copies the frame's JPEG and looks through the store.
func TestEventSnapshotRefusalsWait(t *testing.T) {
	h, _ := testHub(t, Config{MaxMetaBytes: 1 << 20})
	t0 := float64(time.Now().Unix())
	fillSnapshots(t, h, t0, false)
	before := h.book.stats().SnapshotsRefused
	start := time.Now()
	const frames = 50
	for seq := range uint64(frames) {
		observeMeta(t, h, "door", seq+1, eventMeta(t0, "d person best"))
	}
	tries := int(h.book.stats().SnapshotsRefused - before)
	most := 1 + int(time.Since(start)/snapshotEvery)
	t.Logf("%d frames flagged best of an event refused a snapshot: %d tries (at most %d)", frames, tries, most)
	if tries < 1 || tries > most {
		t.Errorf("%d tries in %v; want 1 to %d", tries, time.Since(start), most)
	}
}

// TestEventSnapshotTooBigTakesNothing: a snapshot larger than the whole
// snapshot store is refused without dropping the ended events' snapshots
// first (it could not fit however many gave way).
func TestEventSnapshotTooBigTakesNothing(t *testing.T) {
	h, _ := testHub(t, Config{MaxMetaBytes: 1 << 20})
	b := h.book
	b.snapMax = 64 << 10
	t0 := float64(time.Now().Unix())
	fillSnapshots(t, h, t0, true)
	observeFrame(t, h, "door", 1, eventMeta(t0, "d person best"), 65<<10)
	if st := b.stats(); st.Snapshots != maxSnapshots || b.snapshot("door", "d") != nil {
		t.Errorf("after a snapshot larger than the store: %d kept, door's kept: %v; want the %d ended ones, door's refused",
			st.Snapshots, b.snapshot("door", "d") != nil, maxSnapshots)
	}
}

// TestEventUpdatedNeverLater: an event's updated time never reads later
// than the change (the hub's clock, to the millisecond, truncated): a
// reader that takes the time after a change and asks ?since= that time
// must not get the change back. Before, the time was rounded to the
// nearest millisecond, so a change in the second half of a millisecond
// read as the next one, about every other time.
func TestEventUpdatedNeverLater(t *testing.T) {
	h, _ := testHub(t, Config{})
	b := h.book
	t0 := float64(time.Now().Unix())
	all := func(string) bool { return true }
	for i := range 200 {
		ch := fmt.Sprintf("c%d", i)
		observeMeta(t, h, ch, 1, eventMeta(t0, "e person"))
		after := time.Now()
		l := b.list(ch, 0, all)
		if len(l) != 1 {
			t.Fatalf("%s: %d events", ch, len(l))
		}
		if ms := int64(math.Round(l[0].Updated * 1e3)); ms > after.UnixMilli() {
			t.Fatalf("an event started before %d ms (Unix) reads updated at %d ms", after.UnixMilli(), ms)
		}
	}
	// The clock stepping back does not stamp a change before one made
	// earlier: a reader passing the last updated it saw as since still
	// gets it.
	b.mu.Lock()
	b.lastStamp = time.Now().Add(time.Hour).UnixMilli()
	seen := float64(b.lastStamp) / 1e3
	b.mu.Unlock()
	observeMeta(t, h, "late", 1, eventMeta(t0, "e person"))
	if l := b.list("", seen, all); len(l) != 1 || l[0].Channel != "late" {
		t.Errorf("after a change stamped %.3f, since=%.3f lists %+v; want the later change", seen, seen, l)
	}
}

// TestEventFloodHoldsUpNoFrames: the notices of an events flood across
// 300 channels (12,000 starts and ends) reach the stream readers from the
// book's fan-out goroutine, never from a publisher's under the book's
// lock: with the fan-out stuck (a reader's filter that does not return,
// standing in for a thousand readers that make it slow), another
// channel's publisher, whose own event goes on, still has every frame
// relayed and its event listed; the notices waiting stay within
// maxOutbox (the oldest dropped); and a stream reader, once the fan-out
// goes on, is told how many it missed. Before, the first notice held the
// book's lock until the readers had it, and every frame carrying events,
// on every channel, waited for it.
func TestEventFloodHoldsUpNoFrames(t *testing.T) {
	h, base := testHub(t, Config{})
	b := h.book
	live := openStream(t, base, "", nil)
	testutil.Eventually(t, 5*time.Second, "the reader", func() bool { return h.Stats().Events.Streams == 1 })
	stuck := make(chan struct{})
	release := sync.OnceFunc(func() { close(stuck) })
	t.Cleanup(release) // before the hub's cleanup, which waits for the fan-out
	b.mu.Lock()
	b.streams[&eventStream{may: func(string) bool { <-stuck; return true }, wake: make(chan struct{}, 1)}] = struct{}{}
	b.mu.Unlock()

	t0 := float64(time.Now().Unix())
	var starts, ends []string
	for i := range 20 {
		starts = append(starts, fmt.Sprintf("e%d person", i))
		ends = append(ends, fmt.Sprintf("e%d person end", i))
	}
	type flood struct {
		channel string
		f       *frame
	}
	var frames []flood
	for c := range 300 {
		for seq, meta := range [][]byte{eventMeta(t0, starts...), eventMeta(t0, ends...)} {
			frames = append(frames, flood{fmt.Sprintf("flood%d", c), metaFrame(t, h, uint64(seq+1), meta, 100)})
		}
	}
	flooded := make(chan struct{})
	go func() { // as the flooding publishers' goroutines would
		defer close(flooded)
		for _, fl := range frames {
			b.observe(fl.channel, fl.f, true)
		}
	}()

	pub, sub := dial(t, base, protocol.PathPublish, "cam"), dial(t, base, protocol.PathSubscribe, "cam")
	jpg := testJPEG(t, 32, 32, color.RGBA{1, 2, 3, 255})
	for seq := uint64(1); seq <= 10; seq++ {
		send(t, pub, frameMsg(seq, 32, 32, jpg, eventMeta(t0, "g person")))
		if f, _ := readFrame(t, sub, 5*time.Second); f.Seq != seq {
			t.Fatalf("cam's frame %d relayed as %d", seq, f.Seq)
		}
	}
	select {
	case <-flooded:
	case <-time.After(30 * time.Second):
		t.Fatal("the flood's frames not read within 30 s")
	}
	if eventByID(listEvents(t, base, "?channel=cam"), "g") == nil {
		t.Error("cam's event not listed during the flood")
	}
	b.mu.Lock()
	waiting, lost := len(b.outbox), b.outLost
	b.mu.Unlock()
	t.Logf("with the fan-out stuck: %d notices waiting, %d dropped", waiting, lost)
	if waiting > maxOutbox || lost == 0 {
		t.Errorf("%d notices waiting (at most %d), %d dropped; want the outbox bounded, the rest dropped", waiting, maxOutbox, lost)
	}

	release()
	for range maxOutbox + 100 {
		if kind, _ := live.next(t); kind == protocol.EventDropped {
			if st := h.Stats().Events; st.StreamDropped == 0 {
				t.Errorf("the reader was told of dropped notices, not counted: %+v", st)
			}
			return
		}
	}
	t.Error("the stream reader was not told it missed notices")
}

// TestEventFramesWithoutEventsTakeNoLock: while another channel's events
// go on and the book is busy (its lock held, as a flood's evictions hold
// it), the frames of a channel without events are relayed one after the
// other: a publisher's goroutine reads its next frame only once the book
// has read the last, and a channel with nothing going on does not ask the
// book. Before, every frame of every channel took the book's lock while
// any event went on anywhere.
func TestEventFramesWithoutEventsTakeNoLock(t *testing.T) {
	h, base := testHub(t, Config{})
	b := h.book
	t0 := float64(time.Now().Unix())
	observeMeta(t, h, "door", 1, eventMeta(t0, "d person"))
	observeMeta(t, h, "yard", 1, eventMeta(t0, "y person end"))
	pub, sub := dial(t, base, protocol.PathPublish, "cam"), dial(t, base, protocol.PathSubscribe, "cam")
	jpg := testJPEG(t, 32, 32, color.RGBA{1, 2, 3, 255})
	send(t, pub, frameMsg(1, 32, 32, jpg, nil))
	readFrame(t, sub, 5*time.Second)
	b.mu.Lock()
	unlock := sync.OnceFunc(b.mu.Unlock)
	t.Cleanup(unlock)
	for seq := uint64(2); seq <= 6; seq++ {
		send(t, pub, frameMsg(seq, 32, 32, jpg, nil))
		if f, _ := readFrame(t, sub, 5*time.Second); f.Seq != seq {
			t.Fatalf("cam's frame %d relayed as %d", seq, f.Seq)
		}
	}
	unlock()
	// A frame of door without events still ends door's event: gone.
	observeMeta(t, h, "door", 2, nil)
	if d := eventByID(b.list("door", 0, func(string) bool { return true }), "d"); d == nil || d.EndReason != protocol.EndGone {
		t.Errorf("door's event after a frame without it: %+v; want ended, gone", d)
	}
	checkActive(t, b)
}

// checkActive checks the book's counts of events going on (in all, per
// channel, and the channels listed as having one) against its events.
func checkActive(t *testing.T, b *eventBook) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	all := 0
	for name, ce := range b.channels {
		n := 0
		for _, ke := range ce.events {
			if ke.end == 0 {
				n++
			}
		}
		_, listed := b.activeIn.Load(name)
		if n != ce.active || listed != (n > 0) {
			t.Errorf("channel %s: %d events going on, counted %d, listed as active: %v", name, n, ce.active, listed)
		}
		all += n
	}
	if all != int(b.active.Load()) {
		t.Errorf("%d events going on, counted %d", all, b.active.Load())
	}
	b.activeIn.Range(func(k, _ any) bool {
		if b.channels[k.(string)] == nil {
			t.Errorf("channel %s listed as active, not held", k)
		}
		return true
	})
}

// TestEventStreamStalledReaderLetsGo: a stream reader that never reads,
// with the hub's write to it blocked (its socket full), does not hold up
// the hub's shutdown for the write timeout (a minute here): the blocked
// write ends with the stream. Before, Close waited for the write
// deadline, however long --write-timeout was.
func TestEventStreamStalledReaderLetsGo(t *testing.T) {
	h := New(Config{WriteTimeout: time.Minute})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(func() { h.Close(); srv.Close() })
	stalled, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	stalled.(*net.TCPConn).SetReadBuffer(4096)
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", protocol.PathEventStream)
	testutil.Eventually(t, 5*time.Second, "the reader", func() bool { return h.Stats().Events.Streams == 1 })
	b := h.book
	t0 := float64(time.Now().Unix())
	var evs, ends []string
	for i := range 20 {
		evs = append(evs, fmt.Sprintf("e%d person", i))
		ends = append(ends, fmt.Sprintf("e%d person end", i))
	}
	// Notices (about 300 bytes each) until the reader's queue fills: its
	// handler takes nothing more, blocked in a write of 40 of them.
	full := func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		for s := range b.streams {
			s.mu.Lock()
			n := len(s.queue)
			s.mu.Unlock()
			return n == streamQueue
		}
		return false
	}
	for c := 0; !full(); c++ {
		if c == 200 {
			t.Fatal("the stalled reader's queue not full after 8,000 notices")
		}
		ch := fmt.Sprintf("c%d", c)
		observeMeta(t, h, ch, 1, eventMeta(t0, evs...))
		observeMeta(t, h, ch, 2, eventMeta(t0, ends...))
		time.Sleep(10 * time.Millisecond) // the fan-out and the handler take their turns
	}
	start := time.Now()
	closed := make(chan struct{})
	go func() { h.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close still waiting 20 s on a stalled event stream reader (write timeout 1 min)")
	}
	t.Logf("Close returned in %v with a stalled stream reader", time.Since(start))
	if st := h.Stats().Events; st.StreamsEvicted != 0 {
		t.Errorf("a stream ended by the shutdown counted as evicted: %+v", st)
	}
}

// TestEventBookEvictsOldestEnded: a full book makes room by the event that
// ended longest ago, found without a look through the whole book (the
// ended ones are kept in the order they ended), and the order's own list
// stays bounded while events come and go.
func TestEventBookEvictsOldestEnded(t *testing.T) {
	h, _ := testHub(t, Config{MaxMetaBytes: 1 << 20})
	b := h.book
	t0 := float64(time.Now().Unix())
	var ended []string
	for i := range 20 {
		ended = append(ended, fmt.Sprintf("e%d person end", i))
	}
	meta := eventMeta(t0, ended...)
	for c := range 205 { // 4100 events, each started and ended
		observeMeta(t, h, fmt.Sprintf("c%d", c), 1, meta)
	}
	all := func(string) bool { return true }
	var left []string
	for _, e := range b.list("c0", 0, all) {
		left = append(left, e.ID)
	}
	if len(left) != 16 || slices.Contains(left, "e3") || !slices.Contains(left, "e4") {
		t.Errorf("c0 keeps %v; want its first 4 events, the first to end, gone", left)
	}
	for c := range 2000 { // events coming and going: the order's list stays bounded
		observeMeta(t, h, fmt.Sprintf("churn%d", c), 1, eventMeta(t0, "x person end"))
	}
	b.mu.Lock()
	kept, order := b.kept, len(b.ended)
	b.mu.Unlock()
	if kept != maxEventsKept || order > 2*kept+64 {
		t.Errorf("%d events kept, %d in the order of ending; want %d, at most %d", kept, order, maxEventsKept, 2*kept+64)
	}
	checkActive(t, b)
}

// TestEventStreamGetsOnlyLaterNotices: a reader that joins while notices
// made before it wait for the fan-out (two publishers' events race to the
// outbox) gets none of them, nor a count of those lost before it joined:
// a stream is what changes from when it opens; /api/events is the past.
func TestEventStreamGetsOnlyLaterNotices(t *testing.T) {
	s := &eventStream{may: func(string) bool { return true }, wake: make(chan struct{}, 1), from: 3}
	var batch []outNotice
	for i := range 4 {
		batch = append(batch, outNotice{"c", sseMessage(protocol.EventStart, []byte(fmt.Sprintf(`{"id":"e%d"}`, i+1))), uint64(i + 1)})
	}
	s.offer(batch, 7)
	msg, dropped := s.take()
	if dropped != 0 || bytes.Count(msg, []byte("event: start")) != 2 || bytes.Contains(msg, []byte(`"e2"`)) || !bytes.Contains(msg, []byte(`"e3"`)) {
		t.Fatalf("a reader from notice 3 got %q (dropped %d); want e3 and e4 only", msg, dropped)
	}
}
