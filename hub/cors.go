package hub

import (
	"net/http"
	"slices"
	"strings"

	"framehub/protocol"
)

// Cross-origin reads. A page on an origin the operator allows
// (Config.AllowedOrigins) may already open WebSockets to the hub; the
// embeddable player (the page's framehub-player.js) running on such a page
// also reads, with fetch, the hub's limits, the channel list (to know a
// channel's renditions) and snapshots (an adaptive player times one before
// it steps up). CORS lets the browser hand those answers to that page:
// the hub names the requesting origin in Access-Control-Allow-Origin when,
// and only when, it is in the allowed list, and answers the preflight a
// request with an Authorization header needs. Nothing else changes: tokens
// are checked as for any request, no cookie is ever accepted as a
// credential (no Access-Control-Allow-Credentials), and a page on any other
// origin gets no such header, so its browser keeps the answer from it (and
// its preflight is refused 403 by the origin check, counted as
// foreign_origin). The hub's own page is same-origin and needs none of it.

// corsMaxAge is how long (seconds) a browser may reuse a preflight answer.
const corsMaxAge = "600"

// corsReadable reports whether a page on an allowed origin may read the
// answer to a request for escaped path p.
func corsReadable(p string) bool {
	if p == protocol.PathLimits || p == "/api/channels" {
		return true
	}
	return strings.HasPrefix(p, "/channels/") && strings.HasSuffix(p, "/snapshot.jpg")
}

// serveCORS adds the CORS headers to a read by a page on an allowed
// origin, and answers its preflight. It reports whether the request has
// been answered. It runs after the Origin check, so a preflight (OPTIONS)
// from a foreign origin never reaches it.
func (h *Hub) serveCORS(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.EscapedPath()
	if !corsReadable(p) {
		return false
	}
	hd := w.Header()
	hd.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !slices.Contains(h.access().origins, strings.ToLower(strings.TrimSuffix(origin, "/"))) {
		return false
	}
	hd.Set("Access-Control-Allow-Origin", origin)
	if r.Method != http.MethodOptions {
		return false
	}
	hd.Set("Access-Control-Allow-Methods", "GET, HEAD")
	hd.Set("Access-Control-Allow-Headers", "Authorization")
	hd.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}
