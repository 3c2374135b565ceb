package hub

import (
	"context"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"time"

	"framehub/protocol"
)

// routes returns the handler for everything but the WebSocket endpoints.
func (h *Hub) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(h.health()))
	})
	mux.HandleFunc("GET /api/channels", func(w http.ResponseWriter, r *http.Request) {
		list := h.Channels()
		if auth := h.access().auth; auth != nil && auth.open&RightView == 0 {
			p := auth.identify(r, false)
			if !p.valid {
				h.deny(w, r, p, "", RightView)
				return
			}
			list = slices.DeleteFunc(list, func(c protocol.ChannelInfo) bool { return !p.allows(auth.open, c.Name, RightView) })
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, r *http.Request) {
		if auth := h.access().auth; auth != nil && auth.open&RightView == 0 {
			if p := auth.identify(r, false); !p.valid || p.rights&RightView == 0 {
				h.deny(w, r, p, "", RightView)
				return
			}
		}
		writeJSON(w, h.Stats())
	})
	// Limits are not secret: a page needs them before it has a token.
	mux.HandleFunc("GET "+protocol.PathLimits, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, h.Limits()) })
	mux.HandleFunc("POST /api/token", h.serveToken)
	if h.cfg.Page == nil {
		return mux
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { h.servePage(w, "index.html") })
	files := http.FileServerFS(h.cfg.Page)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	// Browsers ask for /favicon.ico whatever the page says.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=86400")
		w.Header().Set("Content-Type", "image/svg+xml")
		h.serveFile(w, r, "favicon.svg")
	})
	return mux
}

func (h *Hub) serveSnapshot(w http.ResponseWriter, r *http.Request, name string) {
	var f *frame
	if c := h.table.lookup(name); c != nil {
		f = c.newest()
		if c.idleOnDemand() {
			// An on-demand camera that nobody watches has stopped: wake it
			// and wait a moment for a fresh frame rather than answer with
			// the last one it sent before it went idle.
			if fresh := h.awaitFresh(r.Context(), name); fresh != nil {
				f = fresh
			}
		}
	}
	if f == nil {
		f = h.awaitBusFrame(r.Context(), name)
	}
	if f == nil {
		http.Error(w, "no frame on channel "+name, http.StatusNotFound)
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
func (h *Hub) awaitFresh(ctx context.Context, name string) *frame {
	start := time.Now()
	mb := newMailbox(readerWait)
	c := h.join(name, mb)
	defer h.leave(c, mb)
	t := time.NewTimer(onDemandSnapshotWait)
	defer t.Stop()
	for {
		select {
		case <-mb.wake:
			if f := mb.take(); f != nil && f.received.After(start) {
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

// serveMJPEG streams the channel as multipart/x-mixed-replace JPEG parts,
// with the same newest-frame rule as WebSocket subscribers: one mailbox,
// and a write deadline per frame.
func (h *Hub) serveMJPEG(w http.ResponseWriter, r *http.Request, name string) {
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
	if err := rc.Flush(); err != nil {
		return
	}
	mb := newMailbox(readerMJPEG)
	ch := h.join(name, mb)
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
		if err != nil {
			log.Debug("mjpeg reader left", "sent", mb.delivered.Load(), "skipped", mb.overwritten.Load(), "error", err.Error())
			return
		}
		mb.sent(len(part) + len(jpg) + len(crlf))
		ch.observeAge(f)
	}
}

// contentSecurityPolicy lets the page run only the hub's own scripts
// (no inline or foreign script), style itself only from its stylesheet,
// draw blob: images, and connect back to the hub (WebSocket included).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; " +
	"img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func setSecurityHeaders(h http.Header) {
	// Assigned by canonical key, with values shared by every response and
	// full to capacity (an Add on one response copies rather than writing
	// into the shared array): every request, WebSocket upgrades included,
	// passes here, and Set's canonicalising and allocating was ~6 % of a
	// subscriber's connect.
	h["Content-Security-Policy"] = cspValue
	h["X-Content-Type-Options"] = nosniffValue
	h["Referrer-Policy"] = noReferrerValue
	h["X-Frame-Options"] = denyValue
}

var (
	cspValue        = []string{contentSecurityPolicy}[:1:1]
	nosniffValue    = []string{"nosniff"}[:1:1]
	noReferrerValue = []string{"no-referrer"}[:1:1]
	denyValue       = []string{"DENY"}[:1:1]
)

// servePage writes one of the page's HTML files.
func (h *Hub) servePage(w http.ResponseWriter, name string) {
	if h.cfg.Page == nil {
		http.Error(w, "this hub serves no web page", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	h.serveFile(w, nil, name)
}

// serveFile writes one of the page's files as it is.
func (h *Hub) serveFile(w http.ResponseWriter, _ *http.Request, name string) {
	b, err := fs.ReadFile(h.cfg.Page, name)
	if err != nil {
		http.Error(w, "page file missing from the build", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b)
}
