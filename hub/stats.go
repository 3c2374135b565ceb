package hub

import (
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
	Evicted              atomic.Uint64 // readers evicted as stalled (slow.go): WebSocket and MJPEG
	Refused              [numReasons]atomic.Uint64
}

// Stats returns the hub's counters and present state, as served at GET
// /api/stats. Safe for concurrent use.
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
	ev := h.book.stats()
	s.Events = &ev
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
