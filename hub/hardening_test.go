package hub

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

func upgradeStatus(t *testing.T, base, path string, header http.Header) int {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(wsURL(base, path, ""), header)
	if err == nil {
		c.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return resp.StatusCode
}

func TestOrigins(t *testing.T) {
	h, base := testHub(t, Config{AllowedOrigins: []string{"https://viewer.example:8443"}})
	host := strings.TrimPrefix(base, "http://")
	port := host[strings.LastIndexByte(host, ':')+1:]
	for _, c := range []struct {
		origin string
		want   int
	}{
		{"", 101},               // not a browser
		{"http://" + host, 101}, // the hub's own page
		{"HTTP://" + strings.ToUpper(host), 101},
		{"https://viewer.example:8443", 101}, // listed
		{"https://" + host, 403},             // other scheme
		{"http://evil.example:" + port, 403}, // other host
		{"http://127.0.0.1:1", 403},          // other port
		{"https://viewer.example", 403},      // listed host, other port
		{"null", 403},
	} {
		hd := http.Header{}
		if c.origin != "" {
			hd.Set("Origin", c.origin)
		}
		if got := upgradeStatus(t, base, protocol.PathSubscribe+"cam", hd); got != c.want {
			t.Errorf("Origin %q: status %d; want %d", c.origin, got, c.want)
		}
	}
	testutil.Eventually(t, 3*time.Second, "refusals counted", func() bool { return h.Stats().Refused["foreign_origin"] == 5 })
}

func TestCapacityLimits(t *testing.T) {
	h, base := testHub(t, Config{MaxChannels: 2, MaxSubscribers: 3, MaxSubscribersPerChannel: 2})
	dial(t, base, protocol.PathPublish, "a")
	dial(t, base, protocol.PathPublish, "b")
	testutil.Eventually(t, 3*time.Second, "two channels", func() bool { return h.table.lookup("a") != nil && h.table.lookup("b") != nil })
	if got := upgradeStatus(t, base, protocol.PathPublish+"c", nil); got != http.StatusServiceUnavailable {
		t.Errorf("third channel: %d; want 503", got)
	}
	dial(t, base, protocol.PathSubscribe, "a")
	dial(t, base, protocol.PathSubscribe, "a")
	testutil.Eventually(t, 3*time.Second, "two subscribers on a", func() bool {
		c := h.table.lookup("a")
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.subs) == 2
	})
	if got := upgradeStatus(t, base, protocol.PathSubscribe+"a", nil); got != http.StatusServiceUnavailable {
		t.Errorf("third subscriber on one channel: %d; want 503", got)
	}
	dial(t, base, protocol.PathSubscribe, "b")
	if got := upgradeStatus(t, base, protocol.PathSubscribe+"b", nil); got != http.StatusServiceUnavailable {
		t.Errorf("fourth subscriber in all: %d; want 503", got)
	}
	resp, err := http.Get(base + "/channels/b/stream.mjpeg")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("MJPEG reader past the limit: %d; want 503", resp.StatusCode)
	}
	st := h.Stats()
	if st.Refused["too_many_channels"] != 1 || st.Refused["too_many_subscribers"] != 3 {
		t.Errorf("refusals %v", st.Refused)
	}
}

// rawClient does the WebSocket handshake by hand, so that the test can
// send frames a well-behaved library never would.
func rawClient(t *testing.T, base, path string, extra string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", path, addr, extra)
	br := bufio.NewReader(c)
	var head strings.Builder
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	if !strings.HasPrefix(head.String(), "HTTP/1.1 101") {
		t.Fatalf("handshake: %s", head.String())
	}
	return c, br, head.String()
}

// clientFrame encodes a masked client frame (mask key 0, so the payload is
// unchanged on the wire).
func clientFrame(fin, rsv1 bool, opcode byte, payload []byte) []byte {
	return append(clientFrameHeader(fin, rsv1, opcode, len(payload)), payload...)
}

// clientFrameHeader is the header of a masked client frame of n payload
// bytes (mask key 0): what a client sends before the payload.
func clientFrameHeader(fin, rsv1 bool, opcode byte, n int) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	out := []byte{b0}
	switch {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 65536:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	return append(out, 0, 0, 0, 0)
}

// readClose reads server frames until a close frame and returns its code.
func readClose(t *testing.T, c net.Conn, br *bufio.Reader) int {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var hdr [2]byte
		if _, err := br.Read(hdr[:1]); err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if _, err := br.Read(hdr[1:]); err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		n := int(hdr[1] & 0x7f)
		if n == 126 {
			var l [2]byte
			br.Read(l[:])
			n = int(binary.BigEndian.Uint16(l[:]))
		}
		body := make([]byte, n)
		for got := 0; got < n; {
			k, err := br.Read(body[got:])
			if err != nil {
				t.Fatalf("frame body: %v", err)
			}
			got += k
		}
		if hdr[0]&0x0f == 8 {
			if n < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(body))
		}
	}
}

func TestRawFrameAttacks(t *testing.T) {
	limit := 64 << 10
	t.Run("fragments_past_the_limit", func(t *testing.T) {
		h, base := testHub(t, Config{MaxFrameBytes: limit})
		c, br, _ := rawClient(t, base, protocol.PathPublish+"cam", "")
		// A frame that declares 80 KB, sent in 16 KB fragments.
		msg := frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 80<<10), nil)
		for i := 0; i < len(msg); i += 16 << 10 {
			end := min(i+16<<10, len(msg))
			op := byte(0) // continuation
			if i == 0 {
				op = 2
			}
			if _, err := c.Write(clientFrame(end == len(msg), false, op, msg[i:end])); err != nil {
				break // the hub may cut us off before the last fragment
			}
		}
		if code := readClose(t, c, br); code != websocket.CloseMessageTooBig {
			t.Fatalf("close code %d; want 1009", code)
		}
		testutil.Eventually(t, 3*time.Second, "too_big counted", func() bool { return h.Stats().Refused["too_big"] == 1 })
	})
	t.Run("compression_bit_without_negotiation", func(t *testing.T) {
		_, base := testHub(t, Config{})
		c, br, _ := rawClient(t, base, protocol.PathPublish+"cam", "")
		c.Write(clientFrame(true, true, 2, frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 100), nil)))
		if code := readClose(t, c, br); code != websocket.CloseProtocolError {
			t.Fatalf("close code %d; want 1002 (protocol error)", code)
		}
	})
	t.Run("permessage_deflate_offer_is_declined", func(t *testing.T) {
		_, base := testHub(t, Config{})
		_, _, head := rawClient(t, base, protocol.PathSubscribe+"cam", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
		if strings.Contains(strings.ToLower(head), "sec-websocket-extensions") {
			t.Fatalf("the hub accepted an extension:\n%s", head)
		}
	})
	t.Run("oversized_single_frame", func(t *testing.T) {
		h, base := testHub(t, Config{MaxFrameBytes: limit})
		c, br, _ := rawClient(t, base, protocol.PathPublish+"cam", "")
		c.Write(clientFrame(true, false, 2, bytes.Repeat([]byte{0xFF}, limit+1)))
		if code := readClose(t, c, br); code != websocket.CloseMessageTooBig {
			t.Fatalf("close code %d; want 1009", code)
		}
		testutil.Eventually(t, 3*time.Second, "too_big counted", func() bool { return h.Stats().Refused["too_big"] == 1 })
	})
}

// FuzzPublisherMessage feeds arbitrary bytes through the hub's publisher
// message path (header-first read, full check, framing once for everyone):
// it must never panic, and whatever it accepts must be a valid frame.
func FuzzPublisherMessage(f *testing.F) {
	f.Add(frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 64), nil))
	f.Add(frameMsg(2, 8, 8, fakeJPEG(8, 8, 2, 64), []byte(`{"boxes":[]}`)))
	f.Add([]byte("FHUB"))
	f.Add(append(frameMsg(1, 8, 8, fakeJPEG(8, 8, 1, 64), nil), 0))
	h := New(Config{MaxFrameBytes: 1 << 16})
	defer h.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		buf, err := h.readMessage(bytes.NewReader(b))
		if err != nil {
			if n := h.mem.used.Load(); n != 0 {
				t.Fatalf("refused message left %d bytes charged to the budget", n)
			}
			return
		}
		defer h.mem.release(int64(cap(buf)))
		pf, err := protocol.ParseMessage(buf[wsRoom:], h.limits)
		if err != nil {
			return
		}
		fr := newFrame(buf, pf, time.Now())
		if !bytes.Equal(fr.msg, b) {
			t.Fatalf("accepted %d bytes but kept %d", len(b), len(fr.msg))
		}
		// The WebSocket framing in front states the message's length.
		n := int(fr.wire[1] & 0x7F)
		switch n {
		case 126:
			n = int(fr.wire[2])<<8 | int(fr.wire[3])
		case 127:
			n = 0
			for _, c := range fr.wire[2:10] {
				n = n<<8 | int(c)
			}
		}
		if fr.wire[0] != 0x82 || n != len(b) || len(fr.wire)-len(b) > wsRoom {
			t.Fatalf("websocket header %x does not frame %d bytes", fr.wire[:len(fr.wire)-len(b)], len(b))
		}
	})
}
