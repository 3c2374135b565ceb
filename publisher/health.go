package publisher

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"framehub/protocol"
)

// Timeouts of a source's health, when SourceTimeout is not given: ten of
// the source's frame intervals, within these bounds (before the first
// frames, the most).
const (
	minSourceTimeout = time.Second
	maxSourceTimeout = 3 * time.Second
)

// sourceErrorEvery is how often at most a source's own error lines
// (ffmpeg's, OpenCV's) are logged; the ones in between are counted and
// the count goes with the next line.
const sourceErrorEvery = 10 * time.Second

// health follows a source's state: live while frames come, stalled when
// none came for the source timeout, reconnecting while the reader opens
// the source again, ended when it will send no more. Each change is
// logged once (a source lost, a source back after so long) and told to
// the hub through the sender. Every method is safe for concurrent use:
// the reader reports frames and failures, watch runs in a goroutine of its
// own, and the status line reads state.
type health struct {
	log    *slog.Logger
	sender *Sender
	fixed  time.Duration // the configured timeout, or 0: derived from the frame rate

	mu        sync.Mutex
	state     string    // "" before the first frame or failure
	err       string    // why, for stalled and reconnecting
	lastFrame time.Time // the newest frame, or when the source was (re)opened
	interval  time.Duration
	downSince time.Time // when the source stopped delivering (stalled or lost)
	losses    uint64    // times the source went from live to stalled or lost
	opens     int       // times the source was opened again since it was lost
	libLast   time.Time // the last source error line logged
	libFolded uint64    // source error lines not logged since then
	libText   string    // the last source error line
	paused    bool      // on demand, nobody watching: the source is closed on purpose
	wake      chan struct{}
}

// newHealth makes a health that logs to log and tells sender (nil: no
// one). timeout is the configured source timeout (0: derived).
func newHealth(log *slog.Logger, sender *Sender, timeout time.Duration) *health {
	return &health{log: log, sender: sender, fixed: timeout, wake: make(chan struct{}, 1)}
}

// tell sends the hub the state.
func (h *health) tell(state, err string) {
	if h.sender != nil {
		h.sender.SetSource(state, err)
	}
}

// timeout is how long the source may send nothing before it is stalled.
func (h *health) timeout() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.timeoutLocked()
}

func (h *health) timeoutLocked() time.Duration {
	if h.fixed > 0 {
		return h.fixed
	}
	if h.interval <= 0 {
		return maxSourceTimeout
	}
	return min(max(10*h.interval, minSourceTimeout), maxSourceTimeout)
}

// opening says the reader is about to open the source again: the count
// goes with "source back", so that a slow return says whether the source
// refused many opens or one open was slow.
func (h *health) opening() {
	h.mu.Lock()
	h.opens++
	h.mu.Unlock()
}

// openDone logs, at debug level, one attempt to open the source again:
// how long it took and, when it failed, the library's last line.
func (h *health) openDone(took time.Duration, ok bool) {
	if ok {
		h.log.Debug("source open", "took_s", round2(took.Seconds()), "ok", true)
		return
	}
	h.log.Debug("source open", "took_s", round2(took.Seconds()), "ok", false, "error", h.lastError())
}

// opened says the reader (re)opened the source: the stall clock starts
// now, not at the last frame before the source was lost.
func (h *health) opened(now time.Time) {
	h.mu.Lock()
	h.lastFrame = now
	h.mu.Unlock()
	h.poke()
}

// frame records a frame from the source at now.
func (h *health) frame(now time.Time) {
	h.mu.Lock()
	if !h.lastFrame.IsZero() && h.state == protocol.SourceLive {
		gap := now.Sub(h.lastFrame)
		if h.interval == 0 {
			h.interval = gap
		} else {
			h.interval += (gap - h.interval) / 8
		}
	}
	h.lastFrame = now
	if h.state == protocol.SourceLive {
		h.mu.Unlock()
		return
	}
	was, down, opens := h.state, now.Sub(h.downSince), h.opens
	h.state, h.err, h.opens = protocol.SourceLive, "", 0
	h.mu.Unlock()
	h.poke() // live again: the watch sets its timer from this frame
	switch was {
	case "":
		h.log.Info("source live")
	case protocol.SourceStalled, protocol.SourceReconnecting:
		h.log.Info("source back", "down_s", round2(down.Seconds()), "opens", opens)
	}
	h.tell(protocol.SourceLive, "")
}

// lost says the source failed and the reader is opening it again; err
// says why. Repeated failures while it stays lost are not logged again
// (their errors go through libError, at a bounded rate).
func (h *health) lost(err error) {
	text := errText(err)
	h.mu.Lock()
	was := h.state
	if was == protocol.SourceLive || was == "" {
		h.downSince = time.Now()
		if was == protocol.SourceLive {
			h.losses++
		}
	}
	h.state, h.err = protocol.SourceReconnecting, text
	h.mu.Unlock()
	switch was {
	case protocol.SourceReconnecting:
	case protocol.SourceStalled:
		h.log.Warn("stalled source reopened", "error", text)
	default:
		h.log.Warn("source lost; reconnecting", "error", text)
	}
	h.tell(protocol.SourceReconnecting, text)
}

// ended says the source will send no more.
func (h *health) ended(why string) {
	h.mu.Lock()
	was := h.state
	h.state, h.err = protocol.SourceEnded, why
	h.mu.Unlock()
	if was != protocol.SourceEnded {
		h.log.Info("source ended", "reason", why)
	}
	h.tell(protocol.SourceEnded, why)
}

// libError logs a line the source's library wrote (ffmpeg's or OpenCV's
// stderr, an error it returned) as one structured line, at most once per
// sourceErrorEvery, and keeps it as the reason the hub shows while the
// source is down.
func (h *health) libError(line string) {
	line = protocol.CutUTF8(line, 400)
	now := time.Now()
	h.mu.Lock()
	h.libText = line
	if h.state == protocol.SourceReconnecting || h.state == protocol.SourceStalled {
		h.err = line
	}
	if !h.libLast.IsZero() && now.Sub(h.libLast) < sourceErrorEvery {
		h.libFolded++
		h.mu.Unlock()
		// Counted in the next warning's "folded"; every line is there at
		// debug level, for whoever is finding out why a source is slow.
		h.log.Debug("source error", "error", line, "folded", true)
		return
	}
	folded := h.libFolded
	h.libLast, h.libFolded = now, 0
	h.mu.Unlock()
	h.log.Warn("source error", "error", line, "folded", folded)
}

// pause says the source is closed on purpose (on demand, nobody
// watching): it is not stalled meanwhile. resume ends the pause, and the
// stall clock starts again.
func (h *health) pause() {
	h.mu.Lock()
	h.paused = true
	h.mu.Unlock()
}

func (h *health) resume() {
	h.mu.Lock()
	h.paused = false
	h.mu.Unlock()
	h.opened(time.Now())
}

// lastError returns the last error line the source's library wrote.
func (h *health) lastError() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.libText
}

// watch marks the source stalled when it sent nothing for the timeout,
// until ctx ends: its timer is set for the moment the timeout runs out
// after the last frame, so a stall is shown on time, not up to a tick
// late.
func (h *health) watch(ctx context.Context) {
	for {
		h.mu.Lock()
		wait := h.timeoutLocked()
		if h.state == protocol.SourceLive && !h.paused {
			wait = time.Until(h.lastFrame.Add(wait))
		}
		h.mu.Unlock()
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-h.wake:
			t.Stop()
			continue
		case <-t.C:
		}
		now := time.Now()
		h.mu.Lock()
		to := h.timeoutLocked()
		quiet := now.Sub(h.lastFrame)
		if h.state != protocol.SourceLive || quiet < to || h.paused {
			h.mu.Unlock()
			continue
		}
		h.state = protocol.SourceStalled
		h.err = fmt.Sprintf("no frame for %v", quiet.Round(100*time.Millisecond))
		h.downSince = h.lastFrame
		h.losses++
		text := h.err
		h.mu.Unlock()
		h.log.Warn("source stalled", "no_frame_s", round2(quiet.Seconds()), "timeout_s", round2(to.Seconds()))
		h.tell(protocol.SourceStalled, text)
	}
}

func (h *health) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// quiet is how long ago the source last sent a frame (or was opened).
func (h *health) quiet(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return now.Sub(h.lastFrame)
}

// snapshot returns the state, its reason and how many times the source
// was lost.
func (h *health) snapshot() (state, err string, losses uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state, h.err, h.losses
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
