package hub

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"framehub/internal/ratelimit"
	"framehub/protocol"
)

// Source state: what a channel's publisher says of its camera or stream
// (live, stalled, reconnecting, ended), as a JSON text message
// (protocol.SourceNotice) among its binary frames. The hub keeps the
// newest for /api/channels (source_state, source_error), the metrics and
// the page. A publisher that says nothing (an upload, an older publisher)
// gets a state the hub derives from its frames: live while they come,
// stalled when none came for ten of the channel's frame intervals (at
// least 1 s, at most 3 s).
//
// A notice is small and rare, so the hub bounds it hard: at most
// protocol.MaxControlBytes (a larger text message closes the publisher
// with 1009), a valid state and an error of at most
// protocol.MaxSourceErrorBytes (1007 otherwise), and at most
// sourceNoticeRate a second after a burst of sourceNoticeBurst (1008
// otherwise). Each refusal is counted and logged like any other; the
// channel keeps its frames and its subscribers. A text message that is not
// a source notice is still wrong_message_type (1003).

// The notices a publisher may send: a publisher sends at most four a
// second (publisher.notifySpacing), so twenty at once and five a second
// is room enough for one and too little to keep the hub busy.
const (
	sourceNoticeRate  = 5
	sourceNoticeBurst = 20
)

// Hub-derived staleness: a publisher that says nothing is stalled when no
// frame came for ten frame intervals, within these bounds.
const (
	minStaleAfter = time.Second
	maxStaleAfter = 3 * time.Second
)

// sourceNotices is a publisher's side of source state.
type sourceNotices struct {
	bucket ratelimit.Bucket // owned by the publisher's reader

	mu     sync.Mutex
	notice protocol.SourceNotice // Op "" until the first notice
}

func newSourceNotices() sourceNotices {
	return sourceNotices{bucket: ratelimit.NewBucket(sourceNoticeRate, sourceNoticeBurst)}
}

// sourceReporter is a publisher that may say its source's state.
type sourceReporter interface {
	// sourceNotice returns the publisher's last notice, and false if it
	// has sent none.
	sourceNotice() (protocol.SourceNotice, bool)
}

func (p *publisher) sourceNotice() (protocol.SourceNotice, bool) {
	p.source.mu.Lock()
	defer p.source.mu.Unlock()
	return p.source.notice, p.source.notice.Op != ""
}

// receiveText handles a text message from publisher p: a source notice,
// kept, or a refusal, which closes p. It reads at most one byte past
// protocol.MaxControlBytes, whatever the message's length.
func (h *Hub) receiveText(p *publisher, r io.Reader) (ending, bool) {
	b, err := io.ReadAll(io.LimitReader(r, protocol.MaxControlBytes+1))
	if err != nil {
		h.readFailure(p.wsConn, err)
		return p.endedBy(err), false
	}
	if !p.source.bucket.Allow(time.Now()) {
		return h.refuseConn(p.wsConn, reasonSourceFlood,
			fmt.Sprintf("more than %d source notices a second", sourceNoticeRate)), false
	}
	n, err := protocol.ParseSourceNotice(b)
	switch {
	case errors.Is(err, protocol.ErrTooBig) && len(b) > protocol.MaxControlBytes:
		return h.refuseConn(p.wsConn, reasonTooBig, fmt.Sprintf("text message over %d bytes", protocol.MaxControlBytes)), false
	case err != nil && n.Op != protocol.OpSource:
		return h.refuseConn(p.wsConn, reasonMessageType, "publishers send binary frames and source notices",
			slog.String("error", err.Error())), false
	case err != nil:
		return h.refuseConn(p.wsConn, reasonBadSourceNotice, err.Error()), false
	}
	p.source.mu.Lock()
	was := p.source.notice
	p.source.notice = n
	p.source.mu.Unlock()
	if was.State != n.State {
		h.logs.Log(slog.LevelInfo, "source:"+p.channel, "source state", slog.String("channel", p.channel),
			slog.String("state", n.State), slog.String("error", n.Error), slog.String("was", was.State))
	}
	return ending{}, true
}

// sourceLocked returns the channel's source state and its reason: what its
// publisher said last, or what the hub derives from its frames. It
// returns "" when the channel has no publisher, or one that has neither
// said anything nor sent a frame, or that captures on demand and is idle
// (nobody watches, so no frames are due). c.mu is held.
func (c *channel) sourceLocked(now time.Time) (state, why string) {
	if c.pub == nil {
		return "", ""
	}
	if r, ok := c.pub.(sourceReporter); ok {
		if n, said := r.sourceNotice(); said {
			return n.State, n.Error
		}
	}
	if od, ok := c.pub.(interface{ isOnDemand() bool }); ok && od.isOnDemand() && len(c.subs)+c.remote == 0 {
		return "", ""
	}
	if c.latest == nil {
		return "", ""
	}
	stale := maxStaleAfter
	if c.fps > 0 {
		stale = min(max(time.Duration(10*float64(time.Second)/c.fps), minStaleAfter), maxStaleAfter)
	}
	if quiet := now.Sub(c.latest.received); quiet >= stale {
		return protocol.SourceStalled, fmt.Sprintf("no frame reached the hub for %v", quiet.Round(100*time.Millisecond))
	}
	return protocol.SourceLive, ""
}

// sourceHeader tells publishers, in every WebSocket handshake, that this
// hub takes source notices (older hubs close a publisher that sends text).
func sourceHeader(h interface{ Set(k, v string) }) { h.Set(protocol.HeaderSourceNotices, "1") }
