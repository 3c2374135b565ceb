package hub

import (
	"log/slog"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"framehub/protocol"
)

// counters are the hub's totals since it started.
type counters struct {
	PublishersConnected  atomic.Uint64
	SubscribersConnected atomic.Uint64
	FramesIn             atomic.Uint64
	FramesDropped        atomic.Uint64 // over the per-publisher frame-rate cap
	Replaced             atomic.Uint64 // publishers replaced by a newer one
	Evicted              atomic.Uint64 // subscribers evicted for a missed write deadline
	Refused              [numReasons]atomic.Uint64
}

// reason is why the hub refused a connection, request or frame. Each has a
// counter in Stats, under its String name.
type reason int

const (
	reasonBadName            reason = iota // a channel name outside [A-Za-z0-9_-]{1,64}
	reasonBadFrame                         // a publisher frame that does not parse
	reasonTooBig                           // a message over the read limit
	reasonMessageType                      // text from a publisher, binary from a subscriber
	reasonBadControl                       // an unreadable control message
	reasonUpgrade                          // a failed WebSocket handshake (not a WebSocket request)
	reasonShuttingDown                     // a connection attempt during shutdown
	reasonOrigin                           // a browser upgrade from a foreign origin
	reasonTooManyChannels                  // a new channel past MaxChannels
	reasonTooManySubscribers               // a subscriber past MaxSubscribers or MaxSubscribersPerChannel
	reasonUnauthorized                     // no token, or an unknown or expired one
	reasonForbidden                        // a valid token without the right
	reasonTooManyConnsPerIP                // an address past MaxConnsPerIP
	reasonConnRatePerIP                    // an address past ConnRatePerIP
	reasonBadJPEG                          // a JPEG whose own frame header is missing or differs from the frame's
	reasonTooManyPixels                    // a frame past MaxPixels
	reasonForeignHost                      // a Host header the hub does not answer to (DNS rebinding)
	reasonMemory                           // a frame past the memory budget
	reasonBadQuery                         // a bad query parameter, such as ?window=
	reasonBadUpload                        // an HTTP upload whose framing is broken: no boundary, a JPEG without its EOI, …
	reasonMediaType                        // an HTTP upload that is not JPEG (its Content-Type, or its bytes)
	reasonStalledUpload                    // an HTTP upload that sent nothing for PongWait
	reasonBadWebSocket                     // a WebSocket frame that breaks RFC 6455 (unmasked, reserved bits, bad opcode…)
	numReasons
)

var reasonNames = [numReasons]string{
	"bad_channel_name", "bad_frame", "too_big", "wrong_message_type", "bad_control", "bad_handshake", "shutting_down",
	"foreign_origin", "too_many_channels", "too_many_subscribers", "unauthorized", "forbidden",
	"too_many_connections_per_ip", "connection_rate_per_ip", "bad_jpeg", "too_many_pixels", "foreign_host",
	"over_memory_budget", "bad_query", "bad_upload", "unsupported_media_type", "stalled_upload",
	"bad_websocket",
}

func (r reason) String() string { return reasonNames[r] }

// refuse counts a refusal and logs it at Warn, at most once per reason per
// refusalLogInterval, with a count of the ones folded in between.
func (h *Hub) refuse(r reason, remote, msg string, attrs ...slog.Attr) {
	h.counters.Refused[r].Add(1)
	attrs = append(attrs, slog.String("reason", r.String()), slog.String("remote", remote))
	h.events.logf(slog.LevelWarn, "refused:"+r.String(), "refused: "+msg, attrs...)
}

// Stats returns the hub's counters and present state.
func (h *Hub) Stats() protocol.Stats {
	h.mu.Lock()
	nconn := len(h.conns)
	h.mu.Unlock()
	active, waiting := h.table.counts()
	s := protocol.Stats{
		UptimeSeconds:    round2(time.Since(h.started).Seconds()),
		Channels:         active,
		WaitingChannels:  waiting,
		Connections:      nconn,
		Publishers:       int(h.publishers.Load()),
		Subscribers:      int(h.subscribers.Load()),
		PublishersTotal:  h.counters.PublishersConnected.Load(),
		SubscribersTotal: h.counters.SubscribersConnected.Load(),
		FramesIn:         h.counters.FramesIn.Load(),
		FramesDropped:    h.counters.FramesDropped.Load(),
		Replaced:         h.counters.Replaced.Load(),
		Evicted:          h.counters.Evicted.Load(),
		ZeroCopyFrames:   h.zc.sent.Load(),
		FrameMemoryBytes: uint64(max(h.mem.used.Load(), 0)),
		MaxMemoryBytes:   uint64(max(h.mem.max, 0)),
		Refused:          make(map[string]uint64, numReasons),
	}
	for i := range numReasons {
		s.Refused[i.String()] = h.counters.Refused[i].Load()
	}
	s.Cluster = h.busStats()
	// runtime/metrics reads these without stopping the world, unlike
	// runtime.ReadMemStats.
	sample := []metrics.Sample{{Name: "/sched/goroutines:goroutines"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() == metrics.KindUint64 {
		s.Goroutines = sample[0].Value.Uint64()
	}
	if sample[1].Value.Kind() == metrics.KindUint64 {
		s.HeapBytes = sample[1].Value.Uint64()
	}
	return s
}
