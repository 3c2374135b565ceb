package hub

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// serveMJPEG streams the channel as multipart/x-mixed-replace JPEG parts
// (GET /channels/{channel}/stream.mjpeg), with the same newest-frame rule
// and slow-consumer policy as WebSocket subscribers (slow.go): one
// mailbox, and a write deadline of WriteTimeout per frame, past which the
// reader is evicted. ?rendition=NAME or ?max-width=W asks for a rendition
// (rendition.go).
func (h *Hub) serveMJPEG(w http.ResponseWriter, r *http.Request, name string) {
	want, err := wantFromQuery(r)
	if err != nil {
		h.refuseRequest(w, r, reasonBadQuery, err.Error(), slog.String("error", truncate(err.Error(), 100)))
		return
	}
	if !h.track(w, r) {
		return
	}
	defer h.handlers.Done()
	release, ok := h.admitSubscriber(w, r, name)
	if !ok {
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "multipart/x-mixed-replace;boundary="+mjpegBoundary)
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil || r.Method == http.MethodHead {
		return // a HEAD joins nothing: it would wake an on-demand camera for no one
	}
	mb := newMailbox(readerMJPEG, nil)
	ch := h.join(name, mb, want)
	var order sendOrder
	defer h.leave(ch, mb)
	log := h.log.With("channel", name, "remote", r.RemoteAddr)
	log.Debug("mjpeg reader connected")
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer h.registerStream(&stream{channel: name, token: requestToken(r, true), right: RightView, cancel: cancel})()
	crlf := []byte("\r\n")
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-mb.wake:
		}
		f := mb.take()
		if f == nil {
			continue
		}
		if !order.admit(f) {
			mb.pass() // not newer than the last part, after a move to another rendition
			continue
		}
		jpg, part, err := f.jpegBytes()
		if err != nil {
			continue // a raw frame of a type JPEG cannot show
		}
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
		_, err = w.Write(part)
		if err == nil {
			_, err = w.Write(jpg)
		}
		if err == nil {
			_, err = w.Write(crlf)
		}
		if err == nil {
			err = rc.Flush()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			h.evicted(mb, name, r.RemoteAddr)
			return
		}
		if err != nil {
			log.Debug("mjpeg reader left", "sent", mb.delivered.Load(), "skipped", mb.overwritten(), "error", err.Error())
			return
		}
		mb.sent(len(part) + len(jpg) + len(crlf))
		ch.observeAge(f)
	}
}
