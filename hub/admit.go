package hub

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Admission: what the hub checks before it serves a request, in order.
// 1. Host (every request): a hub on loopback answers only loopback names
//    and AllowedHosts, so a web page whose name resolves to 127.0.0.1 (DNS
//    rebinding) gets 403.
// 2. Origin (WebSocket upgrades and every request that is not GET or
//    HEAD): a browser may act on the hub only from the hub's own origin or
//    an allowed one. "Own" means the Host it asked for, and only when that
//    Host is an IP address, a loopback name or an allowed host: a name an
//    attacker's DNS controls never vouches for itself.
// 3. Channel name, token (auth.go), and limits: channels for publishers,
//    subscribers for viewers; per-address limits come earlier, at accept.

// hostName returns the lower-case host of a Host header, without port,
// brackets or a trailing dot.
func hostName(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	return strings.ToLower(host)
}

// isLoopbackName reports whether host is "localhost" or a loopback address.
func isLoopbackName(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func isIPLiteral(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// trustedHost reports whether host names the hub in a way no web page's
// DNS can forge: a loopback name, an IP address, an allowed host, or this
// machine's own name.
func (h *Hub) trustedHost(host string) bool {
	return isLoopbackName(host) || isIPLiteral(host) || slices.Contains(h.access().hosts, host) || slices.Contains(h.ownNames, host)
}

// checkHost answers 403 to a request whose Host the hub does not answer to.
func (h *Hub) checkHost(w http.ResponseWriter, r *http.Request) bool {
	if r.Host == "" {
		return true // HTTP/1.0 without Host: no name a page could have chosen
	}
	host := hostName(r.Host)
	hosts := h.access().hosts
	ok := true
	switch {
	case h.cfg.LoopbackOnly:
		ok = isLoopbackName(host) || slices.Contains(hosts, host)
	case len(hosts) > 0:
		ok = h.trustedHost(host)
	}
	if ok {
		return true
	}
	h.refuse(reasonForeignHost, r.RemoteAddr, "request for a host this hub does not serve",
		slog.String("host", truncate(r.Host, 100)), slog.String("hint", "start the hub with --allowed-hosts NAME to serve NAME"))
	http.Error(w, "forbidden: this hub does not answer to host "+truncate(host, 100)+
		" (its operator can add it with --allowed-hosts)", refusals[reasonForeignHost].status)
	return false
}

// originAllowed reports whether a browser request may act on the hub: it
// has no Origin (not a browser), an allowed origin, or the hub's own
// origin under a trusted host name.
func (h *Hub) originAllowed(r *http.Request) bool {
	origins := r.Header["Origin"]
	if len(origins) == 0 {
		return true
	}
	o := strings.ToLower(strings.TrimSuffix(origins[0], "/"))
	if slices.Contains(h.access().origins, o) {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && u.Host == strings.ToLower(r.Host) && h.trustedHost(hostName(u.Host))
}

// checkOrigin is the upgrader's CheckOrigin, and guards requests that
// change state.
func (h *Hub) checkOrigin(r *http.Request) bool {
	if h.originAllowed(r) {
		return true
	}
	h.refuse(reasonOrigin, r.RemoteAddr, "request from a foreign origin", slog.String("origin", truncate(r.Header.Get("Origin"), 100)),
		slog.String("hint", "serve the page from an allowed host (--allowed-hosts) or allow the origin (--allowed-origins)"))
	return false
}

// admitPublisher claims the channel for a publisher about to be upgraded,
// or answers 503 when it would be one channel too many. The claim is
// undone with h.table.unclaim.
func (h *Hub) admitPublisher(w http.ResponseWriter, r *http.Request, name string) (*channel, bool) {
	c, ok := h.table.claim(name)
	if !ok {
		h.refuseRequest(w, r, reasonTooManyChannels, "", slog.Int("limit", h.cfg.MaxChannels), slog.String("channel", name))
		return nil, false
	}
	return c, true
}

// admitSubscriber reserves a WebSocket or MJPEG subscriber's place, or
// answers 503 past the total or per-channel limit. Subscribers of a name
// nobody publishes take no channel slot. release gives the place back.
func (h *Hub) admitSubscriber(w http.ResponseWriter, r *http.Request, name string) (release func(), ok bool) {
	if n := h.subscribers.Add(1); n > int64(h.cfg.MaxSubscribers) || h.table.subscribers(name) >= h.cfg.MaxSubscribersPerChannel {
		h.subscribers.Add(-1)
		h.refuseRequest(w, r, reasonTooManySubscribers, "", slog.String("channel", name))
		return nil, false
	}
	return func() { h.subscribers.Add(-1) }, true
}

// upgradeError answers a failed WebSocket handshake.
func (h *Hub) upgradeError(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status == http.StatusForbidden {
		// CheckOrigin refused, and has counted it.
		http.Error(w, refusals[reasonOrigin].text, status)
		return
	}
	h.refuse(reasonUpgrade, r.RemoteAddr, "websocket handshake failed", slog.Int("status", status), slog.String("error", err.Error()))
	http.Error(w, http.StatusText(status)+": "+err.Error(), status)
}
