package hub

import (
	"net/http"
	"time"
)

// DefaultReadHeaderTimeout is Config.ReadHeaderTimeout's default: how long
// a client may take to send its request headers (slowloris).
const DefaultReadHeaderTimeout = 10 * time.Second

// Server returns an http.Server for the hub with its header and idle
// timeouts. Serve it on h.Listener(ln) for the per-IP limits, and stop it
// with its Shutdown as well as the hub's (http.Server.Shutdown does not
// close the hijacked WebSocket connections: Hub.Shutdown does).
func (h *Hub) Server() *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: h.cfg.ReadHeaderTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}
