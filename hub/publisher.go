package hub

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// publisher is one publishing WebSocket connection: its reader reads and
// publishes frames (receive.go), its writer (controlLoop) sends pings and
// viewer notices.
type publisher struct {
	*wsConn
	h *Hub
	localPart
	onDemand bool // static: it captures only while someone watches

	viewerCount atomic.Int64  // the channel's readers, as last told
	source      sourceNotices // what it says of its camera (source.go)
}

// viewers records the channel's reader count and wakes the writer, which
// sends it. It never blocks.
func (p *publisher) viewers(n int) {
	p.viewerCount.Store(int64(n))
	p.poke()
}

func (p *publisher) isOnDemand() bool { return p.onDemand }

func (p *publisher) local() *localPart  { return &p.localPart }
func (p *publisher) remoteAddr() string { return p.remote }

// replacedOn closes a publisher that a newer one on another hub took over.
func (p *publisher) replacedOn(hubName string) {
	p.closeWith(ending{kind: endReplaced, detail: "on hub " + hubName}, protocol.CloseReplaced, "replaced by a newer publisher on hub "+hubName)
}

// replaced closes a publisher that a newer one took over.
func (p *publisher) replaced() {
	p.h.counters.Replaced.Add(1)
	p.h.logs.Log(slog.LevelInfo, "replaced:"+p.channel, "publisher replaced by a newer one",
		slog.String("channel", p.channel), slog.String("remote", p.remote))
	p.closeWith(ending{kind: endReplaced}, protocol.CloseReplaced, "replaced by a newer publisher")
}

func (h *Hub) servePublish(w http.ResponseWriter, r *http.Request, name string) {
	only, ok := h.renditionFromQuery(w, r)
	if !ok {
		return
	}
	onDemand := false
	if v, ok := r.URL.Query()[protocol.QueryOnDemand]; ok {
		switch v[0] {
		case "1", "true":
			onDemand = true
		case "0", "false":
		default:
			h.refuseRequest(w, r, reasonBadQuery, "on_demand: want 1 or 0", slog.String("on_demand", truncate(v[0], 20)))
			return
		}
	}
	if !h.track(w, r) {
		return
	}
	ch, ok := h.admitPublisher(w, r, name)
	if !ok {
		h.handlers.Done()
		return
	}
	h.serveWebSocket(w, r, name, RightPublish, int64(h.cfg.MaxFrameBytes), func() { h.table.unclaim(ch) }, func(c *wsConn) {
		h.runPublisher(&publisher{wsConn: c, h: h, localPart: localPart{ch: ch, rend: renditionPart{only: only}}, onDemand: onDemand, source: newSourceNotices()})
	})
}

// runPublisher reads and publishes a publisher's frames until it leaves.
func (h *Hub) runPublisher(p *publisher) {
	start := time.Now()
	leave, err := h.takeChannel(p)
	if err == nil {
		h.logs.Log(slog.LevelInfo, "connected:"+p.channel, "publisher connected",
			slog.String("channel", p.channel), slog.String("remote", p.remote), slog.String("rendition", p.rend.only.String()))
	}

	stop := make(chan struct{})
	var writerWG sync.WaitGroup
	writerWG.Add(1)
	go func() {
		defer writerWG.Done()
		h.controlLoop(p, stop)
	}()
	var frames, dropped uint64
	var end ending
	if err != nil {
		end = h.refuseConn(p.wsConn, refusalOf(err, reasonTooManyRenditions), err.Error())
	} else {
		frames, dropped, end = h.readFrames(p)
	}
	close(stop)
	writerWG.Wait()
	leave()
	attrs := append([]slog.Attr{slog.String("channel", p.channel), slog.String("remote", p.remote),
		slog.Uint64("frames", frames), slog.Uint64("dropped", dropped),
		slog.Float64("seconds", round2(time.Since(start).Seconds()))}, end.attrs()...)
	h.logs.Log(slog.LevelInfo, "left:"+p.channel, "publisher left", attrs...)
}

// controlLoop is the publisher's writer, the only goroutine that writes to
// its socket (see wsConn): pings, which keep the read deadline honest on a
// publisher that is alive but between frames; pongs it owes; the viewer
// count when it changes (the newest count: changes in between are folded);
// and the close frame, if the hub closes the connection, after which it
// writes nothing. It stops when stop is closed (the reader has returned), once it
// has written a close frame owed.
func (h *Hub) controlLoop(p *publisher, stop <-chan struct{}) {
	t := time.NewTicker(h.cfg.PingInterval)
	defer t.Stop()
	write := func(msg []byte) bool {
		_ = p.nc.SetWriteDeadline(time.Now().Add(controlWait))
		_, err := p.nc.Write(msg)
		return err == nil
	}
	sent := int64(-1)
	for {
		select {
		case <-stop:
			p.writeOwedClose()
			return
		case <-t.C:
			if !write(wsMessage(websocket.PingMessage, nil)) {
				return
			}
		case <-p.wake:
			if p.writeOwedClose() {
				return
			}
			if data := p.pong.Swap(nil); data != nil && !write(wsMessage(websocket.PongMessage, []byte(*data))) {
				return
			}
			n := p.viewerCount.Load()
			if n == sent {
				continue
			}
			sent = n
			msg, _ := json.Marshal(protocol.ViewersNotice{Op: protocol.OpViewers, Count: int(n)})
			if !write(wsMessage(websocket.TextMessage, msg)) {
				return
			}
		}
	}
}

// takeChannel makes p its channel's publisher, telling the one it
// replaces, counts it, and claims the channel on the bus; leave undoes it
// all (a publisher replaced meanwhile unsets nobody), the renditions p
// sent included. WebSocket publishers and uploads both take their channel
// here. A publisher of one rendition alone takes that rendition instead
// (rendition.go), which fails past the channel's limit of renditions.
func (h *Hub) takeChannel(p localPublisher) (leave func(), err error) {
	if p.local().rend.only != protocol.RenditionMain {
		return h.takeRendition(p)
	}
	h.counters.PublishersConnected.Add(1)
	h.publishers.Add(1)
	ch := p.local().ch
	if old := ch.setPublisher(p); old != nil {
		old.replaced()
	}
	h.busClaim(p)
	return func() {
		if ch.clearPublisher(p) {
			h.book.publisherLeft(ch.name) // its events end with it (not a replaced one's: the new one's go on)
		}
		h.busRelease(p)
		for _, f := range ch.releaseRenditions(p) {
			h.retire(f)
		}
		h.publishers.Add(-1)
	}, nil
}
