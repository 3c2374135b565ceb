package hub

import "github.com/gorilla/websocket"

// writeLoop is the subscriber's writer, the only goroutine that writes to
// its socket (see wsConn). Each time it wakes, it sends the close frame if
// one is owed (and stops), a ping or a pong it owes, then the newest frame
// if there is one and the subscriber has credit; frames published while a
// write is in progress overwrite each other in the mailbox. A write that
// takes longer than WriteTimeout gets the subscriber evicted by the
// watchdog (slow.go); a failed write ends the connection.
//
// Everything that concerns the writer arrives as a poke of the connection's
// wake channel with a flag beside it (a frame in the mailbox, an ack, a
// pong owed, the watchdog's ping, a close, the end of the connection), so
// that a wake-up is one channel receive, not a select over several
// channels: at one wake-up per frame per subscriber, that is most of the
// hub's own CPU besides the kernel's write.
//
// The goroutine runs only while there is something to write: it is
// started by the first wake-up that finds none, and returns once the
// watchdog has found it idle (idlewriter.go).
func (h *Hub) writeLoop(s *subscriber, ch *channel) {
	w := s.writer.Load()
	for {
		if w.idle() {
			return
		}
		<-s.wake
		w.busy()
		if s.writeOwedClose() || s.stopped.Load() {
			return
		}
		// Loads before the swaps: a ping or a pong is owed far less often
		// than a frame, and a load costs next to nothing where a swap is
		// a locked instruction.
		if s.pingDue.Load() && s.pingDue.Swap(false) {
			if err := h.writeControl(s, wsMessage(websocket.PingMessage, nil)); err != nil {
				s.reset()
				return
			}
		}
		if p := s.owedPong(); p != nil {
			if err := h.writeControl(s, wsMessage(websocket.PongMessage, []byte(*p))); err != nil {
				s.reset()
				return
			}
		}
		if !s.credit.available() {
			continue // the frame stays in the slot; an ack will wake us
		}
		f := s.mb.take()
		if f == nil {
			continue
		}
		if !s.order.admit(f) {
			// Of a rendition it was just moved to, and not newer than the
			// last frame sent: skipped (rendition.go).
			s.mb.pass()
			continue
		}
		if !s.credit.take(f.hdr.Seq) {
			continue
		}
		s.writeStart.Store(h.sinceStart())
		err := h.writeFrame(s, f)
		s.writeStart.Store(0)
		if err != nil {
			s.reset() // evicted by the watchdog, closed by the hub, or gone
			return
		}
		s.mb.sent(len(f.wire))
		ch.observeAge(f)
	}
}

// writeFrame sends f's wire bytes: by sendfile from its memory file when
// it goes to several plain-TCP subscribers, else with a write. The send
// holds a reference to the memory file throughout (sendfile.go), so the
// file outlives it whatever happens to f meanwhile.
func (h *Hub) writeFrame(s *subscriber, f *frame) error {
	if s.files != nil && f.fanout >= ZeroCopyMinSubscribers {
		if ff := h.zc.acquire(f); ff != nil {
			err := s.files.send(ff)
			if err == nil {
				h.zc.sent.Add(1)
			}
			h.zc.unref(ff)
			return err
		}
	}
	_, err := s.nc.Write(f.wire)
	return err
}

// writeControl writes a ping or a pong, timed by the watchdog like a frame.
func (h *Hub) writeControl(s *subscriber, msg []byte) error {
	s.writeStart.Store(h.sinceStart())
	_, err := s.nc.Write(msg)
	s.writeStart.Store(0)
	return err
}

// owedPong returns the payload of the pong the writer owes, if any, and
// clears it.
func (s *subscriber) owedPong() *string {
	if s.pong.Load() == nil {
		return nil
	}
	return s.pong.Swap(nil)
}
