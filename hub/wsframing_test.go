package hub

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// TestWebSocketFramingRefused: WebSocket frames that break RFC 6455, written
// raw on a publisher's or a subscriber's socket after a good handshake,
// are a malformed request, not a client that left: the client reads close
// 1002 and the refusal is counted under bad_websocket.
func TestWebSocketFramingRefused(t *testing.T) {
	h, base := testHub(t, Config{})
	mask := []byte{1, 2, 3, 4}
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"unmasked_binary", []byte{0x82, 0x03, 'a', 'b', 'c'}},
		{"reserved_bits", append([]byte{0xC2, 0x83}, append(mask, 'a', 'b', 'c')...)},
		{"bad_opcode", append([]byte{0x83, 0x80}, mask...)},
		{"ping_over_125_bytes", append([]byte{0x89, 0xFE, 0x00, 0xC8}, append(mask, make([]byte, 200)...)...)},
		{"continuation_first", append([]byte{0x80, 0x81}, append(mask, 'x')...)},
	} {
		for _, endpoint := range []string{"/ws/publish/", "/ws/subscribe/"} {
			t.Run(c.name+endpoint[3:len(endpoint)-1], func(t *testing.T) {
				before := h.Stats().Refused["bad_websocket"]
				ws := dial(t, base, endpoint, "framing")
				nc := ws.UnderlyingConn()
				_ = nc.SetWriteDeadline(time.Now().Add(3 * time.Second))
				if _, err := nc.Write(c.frame); err != nil {
					t.Fatal(err)
				}
				_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				var err error
				for err == nil { // a subscriber may be sent a frame or a ping first
					_, _, err = ws.ReadMessage()
				}
				var ce *websocket.CloseError
				var ne net.Error
				if !errors.As(err, &ce) || ce.Code != websocket.CloseProtocolError {
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatal("no close frame within 5 s")
					}
					t.Fatalf("read: %v; want close 1002", err)
				}
				hubWait(t, h, "the refusal counted", func(st protocol.Stats) bool { return st.Refused["bad_websocket"] == before+1 })
			})
		}
	}
}
