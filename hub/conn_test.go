package hub

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// TestWriterAnswersPingsAndCloses: what a connection owes its peer (a
// pong with the ping's payload, the reply to its close frame) is written
// by the connection's writer, for publishers and subscribers alike, and
// arrives as the protocol says.
func TestWriterAnswersPingsAndCloses(t *testing.T) {
	_, base := testHub(t, Config{})
	for _, endpoint := range []string{protocol.PathPublish, protocol.PathSubscribe} {
		t.Run(endpoint, func(t *testing.T) {
			c := dial(t, base, endpoint, "cam")
			pong := make(chan string, 1)
			c.SetPongHandler(func(data string) error { pong <- data; return nil })
			closed := make(chan int, 1)
			c.SetCloseHandler(func(code int, _ string) error { closed <- code; return nil })
			read := make(chan error, 1)
			go func() {
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						read <- err
						return
					}
				}
			}()
			if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			select {
			case data := <-pong:
				if data != "are you there" {
					t.Fatalf("pong %q; want the ping's payload", data)
				}
			case err := <-read:
				t.Fatalf("read ended before the pong: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("no pong")
			}
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
			if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			// gorilla calls the close handler, then the read returns.
			select {
			case err := <-read:
				var ce *websocket.CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("read ended with %v; want the hub's close reply", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no close reply")
			}
			if code := <-closed; code != websocket.CloseNormalClosure {
				t.Fatalf("close reply %d; want the peer's code, 1000", code)
			}
		})
	}
}
