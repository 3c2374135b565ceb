package publisher

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// noticeHub is a hub stand-in that records the text messages publishers
// send, and says it takes source notices when takes is set.
type noticeHub struct {
	takes bool
	srv   *httptest.Server

	mu    sync.Mutex
	got   []protocol.SourceNotice
	conns []*websocket.Conn
}

func newNoticeHub(t *testing.T, takes bool) *noticeHub {
	n := &noticeHub{takes: takes}
	up := websocket.Upgrader{}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := http.Header{}
		if n.takes {
			h.Set(protocol.HeaderSourceNotices, "1")
		}
		c, err := up.Upgrade(w, r, h)
		if err != nil {
			return
		}
		n.mu.Lock()
		n.conns = append(n.conns, c)
		n.mu.Unlock()
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if typ != websocket.TextMessage {
				continue
			}
			sn, err := protocol.ParseSourceNotice(msg)
			if err != nil {
				t.Errorf("the publisher sent %q: %v", msg, err)
				continue
			}
			n.mu.Lock()
			n.got = append(n.got, sn)
			n.mu.Unlock()
		}
	}))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *noticeHub) notices() []protocol.SourceNotice {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]protocol.SourceNotice(nil), n.got...)
}

// cut closes the hub's side of every connection, as a restart would.
func (n *noticeHub) cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = nil
}

// TestSenderSourceNotices: the state set before the connection goes on
// it first; a flapping source sends its newest state at most four times
// a second; a new connection hears the state again; Close sends the last
// one; a hub that does not take notices gets none.
func TestSenderSourceNotices(t *testing.T) {
	n := newNoticeHub(t, true)
	s, err := NewSender(SenderConfig{Hub: n.srv.URL, Channel: "cam", MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.SetSource(protocol.SourceReconnecting, "connection refused")
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the first notice", func() bool { return len(n.notices()) == 1 })
	if got := n.notices()[0]; got != protocol.NewSourceNotice(protocol.SourceReconnecting, "connection refused") {
		t.Fatalf("first notice %+v", got)
	}

	start := time.Now()
	for i := range 200 {
		if i%2 == 0 {
			s.SetSource(protocol.SourceLive, "")
		} else {
			s.SetSource(protocol.SourceStalled, "no frame for 1s")
		}
		time.Sleep(time.Millisecond)
	}
	s.SetSource(protocol.SourceLive, "")
	testutil.Eventually(t, 5*time.Second, "the newest state", func() bool {
		g := n.notices()
		return g[len(g)-1].State == protocol.SourceLive
	})
	flapped := len(n.notices()) - 1
	if most := int(time.Since(start)/notifySpacing) + 2; flapped > most {
		t.Errorf("%d notices in %v of flapping; want at most %d", flapped, time.Since(start).Round(time.Millisecond), most)
	}

	before := len(n.notices())
	n.cut()
	frame := hubtest.Frame(1, 64, 48, 100, nil)
	testutil.Eventually(t, 5*time.Second, "a send to fail on the cut connection", func() bool { return s.Send(ctx, frame) != nil })
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the state again on the new connection", func() bool { return len(n.notices()) == before+1 })

	s.SetSource(protocol.SourceEnded, "end of stdin")
	s.Close()
	testutil.Eventually(t, 5*time.Second, "ended before the close", func() bool {
		g := n.notices()
		return g[len(g)-1].State == protocol.SourceEnded
	})

	old := newNoticeHub(t, false)
	s2, err := NewSender(SenderConfig{Hub: old.srv.URL, Channel: "cam"})
	if err != nil {
		t.Fatal(err)
	}
	s2.SetSource(protocol.SourceStalled, "x")
	if err := s2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	s2.SetSource(protocol.SourceLive, "")
	time.Sleep(2 * notifySpacing) // a notice would have gone by now
	s2.Close()
	if g := old.notices(); len(g) != 0 {
		t.Fatalf("a hub that does not take notices got %v", g)
	}
}
