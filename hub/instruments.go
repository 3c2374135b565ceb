package hub

// What the hub offers a metrics exporter: counters read when it asks
// (ChannelCounters, Stats), so the hot path pays nothing for them, and one
// observation per frame written for the frame-age histogram.

// Observer records one measurement. A Prometheus histogram is one.
type Observer interface{ Observe(float64) }

// Instruments receive what the hub measures on its hot path. Their methods
// are called from many goroutines at once.
type Instruments interface {
	// FrameAge returns where to record, in seconds, the age of each frame
	// of channel as its write to a subscriber ends (capture time to then).
	// It is called when the channel is created.
	FrameAge(channel string) Observer
	// Forget is called when the channel goes away.
	Forget(channel string)
}

// ChannelCounters are one channel's figures since it was created.
type ChannelCounters struct {
	Name             string
	FramesIn         uint64 // published
	FramesDropped    uint64 // over the publisher frame-rate cap
	FramesOut        uint64 // written to subscribers (WebSocket and MJPEG)
	FramesSkipped    uint64 // replaced in a subscriber's mailbox before it was written
	BytesOut         uint64
	SubscribersWS    int // connected now
	SubscribersMJPEG int
	// Renditions has each rendition's figures, the main picture first,
	// when the channel carries renditions or a reader asked for one (nil
	// otherwise: everything above is the main picture's).
	Renditions []RenditionCounters
	// SourceState is the source state /api/channels shows (protocol.SourceLive,
	// …), "" when the channel has none.
	SourceState string
}

// ChannelCounters returns every channel's counters, in no order. Safe for
// concurrent use.
func (h *Hub) ChannelCounters() []ChannelCounters {
	chans := h.table.all()
	out := make([]ChannelCounters, 0, len(chans))
	for _, c := range chans {
		out = append(out, c.counters())
	}
	return out
}
