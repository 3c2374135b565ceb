package hub

import (
	"log/slog"
	"time"
)

// Slow consumers: the hub's one policy for a reader that does not keep up,
// WebSocket subscriber and MJPEG reader alike.
//
//  1. Slow is not dead. A reader slower than its channel skips frames: its
//     one-slot mailbox is overwritten (counted as skipped, never logged per
//     frame), and it stays connected. Its own kernel send buffer is kept
//     small (Config.SendBuffer), so that the frames it is sent are fresh.
//  2. Stalled is dead. A frame (or ping) write that takes longer than
//     WriteTimeout gets the reader evicted, once: counted in
//     Stats.Evicted, logged at a bounded rate (one line per channel per
//     interval, the rest folded), and cut off. A WebSocket's TCP connection
//     is reset, so the kernel frees its buffers at once and the writer
//     blocked on it returns; an MJPEG response is ended. WebSocket writes
//     are timed by the watchdog below, which saves a timer per frame per
//     subscriber; MJPEG writes go through net/http, with a write deadline
//     per frame.
//  3. Nobody waits on a stalled reader. A publisher never does (mailboxes
//     do not block); nor does the hub when it closes connections (a
//     shutdown, a reload that revokes tokens, a takeover): closeWith only
//     records the close and wakes the writer, and bounds the write in
//     progress to controlWait, so N stalled readers cost controlWait once,
//     not N times.

// sinceStart is the clock writes are timed by: nanoseconds since the hub
// started (New), plus one, so that it is never 0 (subscriber.writeStart's
// "no write in progress"). It reads only the monotonic clock, where
// time.Now reads the wall clock too, and it is read as every write begins,
// once per frame per subscriber; nor does a change of the wall clock make
// every write in progress look late, or none.
func (h *Hub) sinceStart() int64 { return int64(time.Since(h.started)) + 1 }

// evict drops a stalled WebSocket subscriber, once.
func (h *Hub) evict(s *subscriber) {
	if !s.evicted.CompareAndSwap(false, true) {
		return
	}
	s.ended.CompareAndSwap(nil, &ending{kind: endEvicted})
	h.evicted(s.mb, s.channel, s.remote)
	s.reset()
}

// evicted counts and logs the eviction of a stalled reader of channel.
func (h *Hub) evicted(mb *mailbox, channel, remote string) {
	h.counters.Evicted.Add(1)
	h.logs.Log(slog.LevelInfo, "evicted:"+channel, "reader evicted: write deadline missed",
		slog.String("channel", channel), slog.String("remote", remote), slog.String("reader", mb.kind.String()),
		slog.Duration("write_timeout", h.cfg.WriteTimeout),
		slog.Uint64("sent", mb.delivered.Load()), slog.Uint64("skipped", mb.overwritten()))
}

// watchdog evicts subscribers whose write has taken longer than
// WriteTimeout, asks every subscriber's writer for a ping each
// PingInterval (one walk for all of them, rather than a timer each), ends
// writers that have not woken for a whole tick (idlewriter.go), and pushes
// back the read deadline of subscribers that sent a message since the last
// tick: a subscriber in credit mode sends one per frame, and resetting its
// deadline on each cost a timer update per ack. A tick is well under the
// pong wait (at most half a PingInterval), so a subscriber that keeps
// talking is never cut off, and a silent one goes within PongWait and a
// tick of its last message. It
// looks WriteTimeout/8 apart (at least every 50 ms, at most every second
// or half a PingInterval), so a stalled subscriber goes within about
// 1.125 × WriteTimeout. It stops when shutdown begins.
func (h *Hub) watchdog() {
	defer h.janitorWG.Done()
	every := min(max(h.cfg.WriteTimeout/8, 50*time.Millisecond), time.Second, max(h.cfg.PingInterval/2, 10*time.Millisecond))
	t := time.NewTicker(every)
	defer t.Stop()
	lastPing := time.Now()
	var stalled []*subscriber
	for {
		select {
		case <-h.done:
			return
		case now := <-t.C:
			ping := now.Sub(lastPing) >= h.cfg.PingInterval
			if ping {
				lastPing = now
			}
			stalled = stalled[:0]
			h.mu.Lock()
			// From the clock, not the tick's time: a watchdog that runs
			// late (a loaded machine) would otherwise give a subscriber
			// heard from just now less than a pong wait.
			readDeadline := time.Now().Add(h.cfg.PongWait)
			limit := h.sinceStart() - int64(h.cfg.WriteTimeout) // writes begun before it are late
			for c := range h.conns {
				if s := c.sub.Load(); s != nil {
					// (Not once the hub has closed: closeWith bounded the
					// wait for the peer's reply.)
					if s.heard.Swap(false) && !s.closedByUs.Load() {
						_ = s.ws.SetReadDeadline(readDeadline)
					}
					if st := s.writeStart.Load(); st != 0 && st < limit {
						stalled = append(stalled, s)
					}
					if ping {
						s.pingDue.Store(true)
						s.poke()
					} else if s.writer.Load().look() {
						s.poke()
					}
				}
			}
			h.mu.Unlock()
			for _, s := range stalled {
				h.evict(s)
			}
		}
	}
}
