package protocol

import (
	"fmt"
	"net/http"
	"strconv"
)

// WebSocket close codes the hub sends besides the standard ones (RFC 6455:
// 1001 going away on shutdown, 1003 wrong message type, 1007 invalid frame,
// 1008 policy, 1009 too big, 1013 try again later).
const (
	CloseReplaced      = 4001 // a newer publisher took over the channel
	CloseRevoked       = 4003 // the connection's token no longer grants its right
	CloseTryAgainLater = 1013 // the hub is over its memory budget; retry later
)

// WebSocket subprotocols. A browser, which cannot set headers on a
// WebSocket, offers SubprotocolAuthPrefix followed by its token
// (base64url, no padding) alongside Subprotocol; the hub selects the plain
// Subprotocol and never echoes the token.
const (
	Subprotocol           = "framehub"
	SubprotocolAuthPrefix = "framehub.auth."
)

// Query parameters.
const (
	// QueryWindow on a subscribe URL asks for credit mode from the first
	// frame: /ws/subscribe/cam?window=1. It has the same meaning as a
	// {"op":"credit"} control message, without the race of sending one
	// after the connection opens.
	QueryWindow = "window"
	// QueryToken carries a signed, short-lived token on the HTTP endpoints
	// that a URL alone must reach (snapshot, MJPEG). Never on a WebSocket.
	QueryToken = "token"
	// QueryOnDemand on a publish URL (/ws/publish/cam?on_demand=1) says
	// the publisher captures only while someone watches: the hub tells it
	// how many do (see ViewersNotice) and lists the channel as on demand.
	QueryOnDemand = "on_demand"
	// QueryRendition names one rendition exactly ("main" or a width):
	// on a subscribe, snapshot or MJPEG URL, the viewer gets only that
	// rendition (and waits while the channel has none); on a publish URL
	// or an HTTP upload, the publisher publishes only that rendition.
	QueryRendition = "rendition"
	// QueryMaxWidth on a subscribe, snapshot or MJPEG URL asks for the
	// rendition that fits a width: the narrowest at least that wide, or
	// else the widest (see PickRendition). The choice follows the
	// renditions the channel has as they come and go.
	QueryMaxWidth = "max-width"
)

// OpViewers is the op of the hub's notice to a publisher.
const OpViewers = "viewers"

// ViewersNotice is the JSON text message a hub sends a publisher, at once
// when it connects and whenever the count changes:
//
//	{"op":"viewers","count":3}
//
// Count is the channel's readers: WebSocket subscribers, MJPEG readers,
// snapshots waiting for a fresh frame, and other hubs that want the
// channel. A publisher started on demand captures while it is above zero.
type ViewersNotice struct {
	Op    string `json:"op"`
	Count int    `json:"count"`
}

// MaxCreditWindow is the largest credit window a subscriber may ask for.
const MaxCreditWindow = 8

// HTTP response headers on a WebSocket handshake (and on GET /api/limits
// as JSON, see HubLimits) that state the hub's limits, so that a client
// accepts what its hub accepts.
const (
	HeaderMaxFrameBytes = "Framehub-Max-Frame-Bytes"
	HeaderMaxMetaBytes  = "Framehub-Max-Metadata-Bytes"
	HeaderMaxPixels     = "Framehub-Max-Pixels"
	HeaderMaxRenditions = "Framehub-Max-Renditions"
)

// PathLimits is the hub endpoint that serves HubLimits.
const PathLimits = "/api/limits"

// HubLimits are the limits a hub enforces on frames, served at GET
// /api/limits. A client follows them, capped by its own memory guard.
type HubLimits struct {
	MaxFrameBytes   int    `json:"max_frame_bytes"`
	MaxMetaBytes    int    `json:"max_metadata_bytes"`
	MaxPixels       uint64 `json:"max_pixels"`
	MaxDimension    uint32 `json:"max_dimension"`
	MaxControlBytes int    `json:"max_control_bytes"`
	MaxCreditWindow int    `json:"max_credit_window"`
	// MaxRenditions is how many renditions besides the main picture a
	// channel may carry.
	MaxRenditions int `json:"max_renditions"`
}

// SetHeaders writes the limits as handshake response headers.
func (l HubLimits) SetHeaders(h http.Header) {
	h.Set(HeaderMaxFrameBytes, strconv.Itoa(l.MaxFrameBytes))
	h.Set(HeaderMaxMetaBytes, strconv.Itoa(l.MaxMetaBytes))
	h.Set(HeaderMaxPixels, strconv.FormatUint(l.MaxPixels, 10))
	if l.MaxRenditions > 0 {
		h.Set(HeaderMaxRenditions, strconv.Itoa(l.MaxRenditions))
	}
}

// MaxRenditionsFrom returns the renditions besides the main picture that a
// hub announcing h (handshake response headers) accepts per channel, or 0
// when it did not say (a hub older than renditions accepts none).
func MaxRenditionsFrom(h http.Header) int {
	v, err := strconv.Atoi(h.Get(HeaderMaxRenditions))
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// ClientLimits returns the limits a client applies to frames from a hub
// that announced its own in h (handshake response headers): the hub's,
// each capped by guard, the client's own memory guard. Headers that are
// missing or unreadable leave guard's value.
func ClientLimits(h http.Header, guard Limits) Limits {
	lim := guard
	if v, err := strconv.Atoi(h.Get(HeaderMaxFrameBytes)); err == nil && v > 0 {
		lim.MaxFrameBytes = min(v, guard.MaxFrameBytes)
	}
	if v, err := strconv.Atoi(h.Get(HeaderMaxMetaBytes)); err == nil && v > 0 {
		lim.MaxMetaBytes = min(v, guard.MaxMetaBytes)
	}
	if v, err := strconv.ParseUint(h.Get(HeaderMaxPixels), 10, 64); err == nil && v > 0 {
		lim.MaxPixels = min(v, guard.MaxPixels)
	}
	return lim
}

// ClientGuard is the memory guard clients apply whatever their hub says:
// a frame of up to 256 MiB (raw 8K BGR is 100 MB), metadata up to 16 MiB,
// and pictures up to 8K UHD.
var ClientGuard = Limits{
	MaxFrameBytes: 256 << 20,
	MaxMetaBytes:  16 << 20,
	MaxDimension:  DefaultLimits.MaxDimension,
	MaxPixels:     DefaultMaxPixels,
}

// ChannelInfo describes a channel in GET /api/channels.
type ChannelInfo struct {
	Name           string  `json:"name"`
	Live           bool    `json:"live"` // a publisher is connected
	Width          uint32  `json:"width"`
	Height         uint32  `json:"height"`
	Codec          string  `json:"codec"`
	FPS            float64 `json:"fps"`
	BitrateBPS     float64 `json:"bitrate_bps"`
	Subscribers    int     `json:"subscribers"`
	Frames         uint64  `json:"frames"`
	Bytes          uint64  `json:"bytes"`
	Skipped        uint64  `json:"skipped"` // frames overwritten in subscribers' mailboxes
	Dropped        uint64  `json:"dropped"` // frames over the publisher frame-rate cap, not relayed
	Seq            uint64  `json:"seq"`
	LastFrameAgeMS float64 `json:"last_frame_age_ms"` // since the hub received the newest frame; -1 if none
	OnDemand       bool    `json:"on_demand"`         // the publisher captures only while someone watches
	Idle           bool    `json:"idle"`              // on demand, and nobody watches: no frames now
	// SourceState is the state of the publisher's camera or stream
	// (SourceLive, SourceStalled, SourceReconnecting, SourceEnded), as the
	// publisher said it in a SourceNotice, or as the hub derives it from
	// the frames of a publisher that says nothing (live, or stalled after
	// no frame for ten frame intervals, 1 to 3 s). Empty when the channel
	// has no publisher or nothing is known yet. SourceError says why the
	// source is not live.
	SourceState string `json:"source_state,omitempty"`
	SourceError string `json:"source_error,omitempty"`
	// Hub names the hub the channel's publisher is connected to, on a hub
	// that is part of a cluster (--nats); empty otherwise.
	Hub string `json:"hub,omitempty"`
	// Renditions lists the picture sizes the channel has now: "main"
	// first (when it has a main picture), then the smaller renditions,
	// widest first. The fields above describe the main picture.
	Renditions []RenditionInfo `json:"renditions"`
}

// RenditionInfo describes one rendition of a channel in GET /api/channels.
type RenditionInfo struct {
	Name           string  `json:"name"` // "main" or the width
	Live           bool    `json:"live"` // a publisher sends it now
	Width          uint32  `json:"width"`
	Height         uint32  `json:"height"`
	FPS            float64 `json:"fps"`
	BitrateBPS     float64 `json:"bitrate_bps"`
	Subscribers    int     `json:"subscribers"` // viewers receiving this rendition now
	Frames         uint64  `json:"frames"`
	Seq            uint64  `json:"seq"`
	LastFrameAgeMS float64 `json:"last_frame_age_ms"` // since the hub received its newest frame; -1 if none
}

// Stats is the hub-wide picture served at GET /api/stats. Counts named
// "…_total" are totals since the hub started; the others are the present.
type Stats struct {
	UptimeSeconds    float64 `json:"uptime_seconds"`
	Channels         int     `json:"channels"`         // channels with a publisher or a recent frame: what --max-channels counts
	WaitingChannels  int     `json:"waiting_channels"` // names with subscribers waiting and nothing published
	Connections      int     `json:"connections"`      // open WebSocket connections
	Publishers       int     `json:"publishers"`       // connected now
	Subscribers      int     `json:"subscribers"`      // WebSocket and MJPEG, connected now: what --max-subscribers counts
	PublishersTotal  uint64  `json:"publishers_total"`
	SubscribersTotal uint64  `json:"subscribers_total"`
	FramesIn         uint64  `json:"frames_in_total"`
	FramesDropped    uint64  `json:"frames_dropped_total"` // over --max-fps-per-publisher
	Replaced         uint64  `json:"publishers_replaced_total"`
	Evicted          uint64  `json:"subscribers_evicted_total"`
	// ZeroCopyFrames counts frames sent to subscribers by sendfile from a
	// memory file rather than copied by a write (Linux, plain TCP, a frame
	// going to two or more subscribers).
	ZeroCopyFrames uint64 `json:"zero_copy_frames_total"`
	// FrameMemoryBytes is what the memory budget counts now: frames being
	// received, and each channel's newest frame and the one before it.
	FrameMemoryBytes uint64            `json:"frame_memory_bytes"`
	MaxMemoryBytes   uint64            `json:"max_memory_bytes"`
	Refused          map[string]uint64 `json:"refused"`
	Goroutines       uint64            `json:"goroutines"`
	HeapBytes        uint64            `json:"heap_bytes"` // live and unswept heap objects
	// Cluster is the hub's link to the other hubs (--nats), or nil.
	Cluster *ClusterStats `json:"cluster,omitempty"`
	// Events is what the hub's event book keeps and did (eventapi.go).
	Events *EventStats `json:"events,omitempty"`
}

// ClusterStats is a clustered hub's view of its bus (NATS), in GET
// /api/stats. Counts named "…_total" are totals since the hub started.
type ClusterStats struct {
	// State is "connected", "connecting", "reconnecting" or "closed"; a hub
	// that is not connected serves its own publishers only (degraded).
	State      string `json:"state"`
	Server     string `json:"server,omitempty"` // the NATS server connected to, credentials removed
	Hub        string `json:"hub"`              // this hub's name in channel listings
	HubID      string `json:"hub_id"`           // unique per hub process
	MaxPayload int64  `json:"max_payload"`      // the server's largest message; bigger frames cross in chunks
	Reconnects uint64 `json:"reconnects_total"`
	// Channels this hub receives from the bus (it has local subscribers),
	// sends to it (another hub wants them), and sees published elsewhere.
	Watching       int `json:"watching"`
	Sending        int `json:"sending"`
	RemoteChannels int `json:"remote_channels"`
	// Out: frames of local publishers sent to other hubs, those sent in
	// chunks, those a newer frame replaced before the sender got to them,
	// and those that could not be sent (NATS down).
	FramesOut  uint64 `json:"frames_out_total"`
	BytesOut   uint64 `json:"bytes_out_total"`
	ChunkedOut uint64 `json:"chunked_out_total"`
	SkippedOut uint64 `json:"skipped_out_total"`
	FailedOut  uint64 `json:"failed_out_total"`
	// In: frames from the bus relayed to local subscribers; complete frames
	// a newer one overtook before they were relayed (newest wins); messages
	// the NATS client dropped over its pending limits (a slow hub); frames
	// not relayed because a newer publisher holds the channel or a newer
	// frame was already relayed.
	FramesIn  uint64 `json:"frames_in_total"`
	BytesIn   uint64 `json:"bytes_in_total"`
	SkippedIn uint64 `json:"skipped_in_total"`
	DroppedIn uint64 `json:"dropped_in_total"`
	Stale     uint64 `json:"stale_total"`
	// SeqRestarts counts frames relayed although not newer, because the
	// ones before them had gone back in sequence (a publisher counting
	// anew, or a frame numbered ahead of it): its stream starts anew.
	SeqRestarts uint64 `json:"sequence_restarts_total"`
	// EventsOut counts event notices published on P.event.C; EventsDropped
	// those dropped (a full queue, or no connection).
	EventsOut     uint64 `json:"events_out_total"`
	EventsDropped uint64 `json:"events_dropped_total"`
	// Refused counts messages from the bus refused, by reason: the frame
	// checks a publisher's frames get (bad_frame, too_big, bad_jpeg,
	// too_many_pixels, over_memory_budget, too_many_channels) and the bus's
	// own (bad_envelope, bad_chunk, incomplete_frame, bad_announcement,
	// future_claim).
	Refused map[string]uint64 `json:"refused"`
}

// RefusedError is a hub's refusal of a connection or request: the HTTP
// status (or WebSocket close code) and the reason the hub gave.
type RefusedError struct {
	Status int    // HTTP status, or 0 when Code is set
	Code   int    // WebSocket close code, or 0
	Reason string // the hub's text, trimmed
}

func (e *RefusedError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("hub closed the connection: %d %s", e.Code, e.Reason)
	}
	return fmt.Sprintf("hub refused: %d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
}

// Permanent reports whether retrying cannot help: a bad request, a missing
// or refused token, a replaced publisher. Rate limits (429), a full hub
// (503) and a memory budget (1013) are worth retrying with backoff.
func (e *RefusedError) Permanent() bool {
	switch e.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusMisdirectedRequest:
		return true
	}
	switch e.Code {
	case CloseReplaced, CloseRevoked:
		return true
	}
	return false
}
