package hub

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"framehub/protocol"
)

// serveSnapshot answers GET /channels/{channel}/snapshot.jpg with the
// channel's newest frame as a JPEG, waking an idle on-demand publisher or
// waiting for a frame from the bus when the hub holds none.
// ?rendition=NAME or ?max-width=W asks for the newest frame of a
// rendition (rendition.go).
func (h *Hub) serveSnapshot(w http.ResponseWriter, r *http.Request, name string) {
	want, err := wantFromQuery(r)
	if err != nil {
		h.refuseRequest(w, r, reasonBadQuery, err.Error(), slog.String("error", truncate(err.Error(), 100)))
		return
	}
	// A HEAD (the page checks its token with one) is answered from what
	// the hub holds now: it wakes no on-demand camera and asks no other
	// hub for the channel, which would open a camera to answer nobody.
	head := r.Method == http.MethodHead
	var f *frame
	if c := h.table.lookup(name); c != nil {
		f = c.newestFor(want)
		if c.idleOnDemand() && !head {
			// An on-demand camera that nobody watches has stopped: wake it
			// and wait a moment for a fresh frame rather than answer with
			// the last one it sent before it went idle.
			if fresh := h.awaitFresh(r.Context(), name, want); fresh != nil {
				f = fresh
			}
		}
	}
	if f == nil && !head {
		f = h.awaitBusFrame(r.Context(), name, want)
	}
	if f == nil {
		what := "no frame on channel " + name
		if !isMainWant(want) {
			what = "no frame of " + want.String() + " on channel " + name
		}
		http.Error(w, what, http.StatusNotFound)
		return
	}
	jpg, _, err := f.jpegBytes()
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "image/jpeg")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(len(jpg)))
	hd.Set("X-Frame-Seq", strconv.FormatUint(f.hdr.Seq, 10))
	hd.Set("X-Capture-Time", strconv.FormatInt(f.hdr.CaptureTime, 10))
	hd.Set("X-Timestamp", unixSeconds(f.hdr.CaptureTime))
	_, _ = w.Write(jpg)
}

// onDemandSnapshotWait is how long a snapshot of an idle on-demand channel
// waits for its publisher to wake and send a fresh frame.
const onDemandSnapshotWait = 2 * time.Second

// awaitFresh joins a channel as a reader, which wakes an on-demand
// publisher, and returns the first frame published after it joined, or
// nil after onDemandSnapshotWait.
func (h *Hub) awaitFresh(ctx context.Context, name string, want protocol.RenditionWant) *frame {
	return h.awaitFrame(ctx, name, want, onDemandSnapshotWait, time.Now())
}

// awaitFrame joins a channel as a reader of what want asks for, for at
// most wait, and returns the first frame it is handed that the hub
// received after since, or nil.
func (h *Hub) awaitFrame(ctx context.Context, name string, want protocol.RenditionWant, wait time.Duration, since time.Time) *frame {
	mb := newMailbox(readerWait, nil)
	c := h.join(name, mb, want)
	defer h.leave(c, mb)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-mb.wake:
			if f := mb.take(); f != nil && f.received.After(since) {
				return f
			}
		case <-t.C:
			return nil
		case <-ctx.Done():
			return nil
		case <-h.done:
			return nil
		}
	}
}
