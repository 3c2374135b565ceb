package protocol

// The hub's event endpoints and the JSON they, the event stream and the
// webhooks carry.

// Event endpoints and their query parameters.
const (
	// PathEvents lists the recent events the hub keeps:
	// GET /api/events?channel=C&since=T (both optional).
	PathEvents = "/api/events"
	// PathEventStream streams events as they start, change and end, as
	// Server-Sent Events: GET /api/events/stream?channel=C (optional).
	PathEventStream = "/api/events/stream"
	// PathEventSnapshots prefixes an event's best frame:
	// GET /api/events/{channel}/{id}/snapshot.jpg.
	PathEventSnapshots = "/api/events/"
	// QueryChannel names one channel; QuerySince keeps the events the hub
	// changed at or after a time (Unix seconds, the hub's clock; compared
	// with EventInfo.Updated, to the millisecond).
	QueryChannel = "channel"
	QuerySince   = "since"
)

// Kinds of event notice: the "type" of a webhook body, and the "event:"
// of a Server-Sent Event.
const (
	EventStart   = "start"   // the hub saw the event for the first time
	EventUpdate  = "update"  // a better frame of it (a new snapshot, a higher score); stream only
	EventEnd     = "end"     // it ended
	EventDropped = "dropped" // stream only: a slow reader missed this many notices; list again
)

// Why an event ended, in EventInfo.EndReason.
const (
	EndEnded         = "ended"          // its frames said so
	EndGone          = "gone"           // a frame of its channel no longer listed it
	EndPublisherLeft = "publisher_left" // its channel's publisher went away
	EndEvicted       = "evicted"        // the hub had too many events of the channel going on
)

// EventInfo is an event as the hub tells it: an element of GET /api/events,
// the data of a Server-Sent Event, and (with Type) a webhook body:
//
//	{"type":"start","id":"5f3a…","channel":"door","label":"person","zone":"porch",
//	 "start":1712345678.125,"end":null,"score":0.91,…}
//
// Start and End are Unix seconds on the capture clock of the channel's
// frames (its publisher's); Updated is the hub's own clock.
type EventInfo struct {
	Type    string   `json:"type,omitempty"` // in notices: EventStart, EventUpdate, EventEnd
	ID      string   `json:"id"`
	Channel string   `json:"channel"`
	Label   string   `json:"label"`
	Zone    string   `json:"zone"` // "" for the whole picture
	Start   float64  `json:"start"`
	End     *float64 `json:"end"` // null while it goes on
	Score   float64  `json:"score"`
	// EndReason says how it ended: EndEnded, EndGone, EndPublisherLeft,
	// EndEvicted; "" while it goes on.
	EndReason string `json:"end_reason,omitempty"`
	// Updated is when the hub last changed it (Unix seconds, hub clock, to
	// the millisecond, truncated: never later than the change, and never
	// earlier than a change the hub made before it): what ?since= compares,
	// at or after. Passing the largest Updated seen as ?since= gets every
	// change made since, and again those of that same millisecond.
	Updated float64 `json:"updated"`
	// Snapshot is the path of its best frame (a JPEG) while the hub keeps
	// one: PathEventSnapshots + channel + "/" + ID + "/snapshot.jpg?v=N",
	// N changing whenever the picture does.
	Snapshot string `json:"snapshot,omitempty"`
	// Hub is the hub whose publisher carried it (with --nats).
	Hub string `json:"hub,omitempty"`
}

// EventStats is what the hub's event book holds and did, in GET
// /api/stats. Counts named "…_total" are totals since the hub started.
type EventStats struct {
	Kept      int    `json:"kept"`      // events kept now (going on and ended)
	Active    int    `json:"active"`    // going on now
	Snapshots int    `json:"snapshots"` // best frames kept
	SnapBytes int64  `json:"snapshot_bytes"`
	Started   uint64 `json:"started_total"`
	Ended     uint64 `json:"ended_total"`
	// RateLimited counts events refused because their channel started
	// more than its rate allows; BadMeta frames whose events had entries
	// left out (ParseEvents).
	RateLimited uint64 `json:"rate_limited_total"`
	BadMeta     uint64 `json:"bad_metadata_total"`
	// SnapshotsRefused counts best frames not kept: over the snapshot
	// count or bytes, or the memory budget.
	SnapshotsRefused uint64 `json:"snapshots_refused_total"`
	Streams          int    `json:"streams"`               // Server-Sent Event readers now
	StreamDropped    uint64 `json:"stream_dropped_total"`  // notices dropped from slow readers' queues, oldest first
	StreamsEvicted   uint64 `json:"streams_evicted_total"` // readers that did not take one within the write timeout
	// Webhook is the webhook sender's counts, when one is configured.
	Webhook *WebhookStats `json:"webhook,omitempty"`
	// Bus counts events published to the cluster's subject (--nats).
	BusPublished uint64 `json:"bus_published_total,omitempty"`
}

// WebhookStats counts what a hub's webhook sender did.
type WebhookStats struct {
	Queued    uint64 `json:"queued_total"`    // notifications accepted
	Delivered uint64 `json:"delivered_total"` // answered 2xx
	Retries   uint64 `json:"retries_total"`   // attempts after a failed one
	Dropped   uint64 `json:"dropped_total"`   // dropped from a full queue, oldest first
	Failed    uint64 `json:"failed_total"`    // given up after the last attempt
	Waiting   int    `json:"waiting"`         // in the queue now
}
