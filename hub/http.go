package hub

import (
	"io/fs"
	"net/http"
	"slices"

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
	// Events: the list, the stream and the snapshots (events.go).
	mux.HandleFunc("GET "+protocol.PathEvents, h.serveEvents)
	mux.HandleFunc("GET "+protocol.PathEventStream, h.serveEventStream)
	mux.HandleFunc("GET "+protocol.PathEventSnapshots+"{channel}/{id}/snapshot.jpg", h.serveEventSnapshot)
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
