// Package protocol is framehub's wire format: one frame per WebSocket binary
// message, or a sequence of frames on a raw TCP byte stream. It uses only the
// standard library, so the hub, the clients and the tests share one decoder
// (the browser page and the Python client in clients/python have their own,
// checked against the same golden vectors in testdata/golden).
//
// # Frame layout
//
// Every frame starts with a fixed-size header in network byte order
// (big-endian), followed by optional JSON metadata and the payload:
//
//	offset size field
//	     0    4 magic         "FHUB" (0x46 0x48 0x55 0x42)
//	     4    1 version       1
//	     5    1 kind          1 = frame (other values are reserved)
//	     6    1 codec         1 = JPEG, 2 = raw pixels
//	     7    1 flags         bit 0 = key frame; others reserved, must be 0
//	     8    2 header length bytes from offset 0 to the metadata (48 in v1;
//	                          a later version may grow it, and a v1 reader
//	                          skips the bytes it does not know)
//	    10    1 element type  raw only: 1 uint8, 2 int8, 3 uint16, 4 int16,
//	                          5 int32, 6 float32, 7 float64; 0 for JPEG
//	    11    1 channels      raw only: values per pixel (1 gray, 3 BGR,
//	                          4 BGRA); 0 for JPEG
//	    12    4 width         pixels
//	    16    4 height        pixels
//	    20    8 sequence      publisher's frame counter, +1 per captured frame
//	    28    8 capture time  Unix nanoseconds, stamped at capture (int64)
//	    36    4 metadata len  bytes of JSON side data after the header
//	    40    4 payload len   bytes of JPEG or raw pixels after the metadata
//	    44    2 rendition     0 = the main picture; N > 0 = a smaller copy
//	                          of the same frame, exactly N pixels wide
//	                          (uint16; see Renditions below)
//	    46    2 reserved      0
//	    48      metadata      (metadata len bytes, UTF-8 JSON object)
//	     …      payload       (payload len bytes)
//
// A WebSocket message holds exactly one frame: header length + metadata
// length + payload length must equal the message length. On a TCP stream,
// frames follow each other with nothing in between; [Reader] reads the
// fixed header, checks every declared length against its limits, and only
// then allocates and reads the body in full (a single read may return part
// of it).
//
// A raw payload holds height rows of width × channels elements of the
// element type, packed with no row padding. Multi-byte elements are
// little-endian (the in-memory order of an OpenCV Mat on every platform
// framehub supports); only the header is big-endian. Colour order is BGR, as
// OpenCV delivers it, so viewers that want RGB swap channels 0 and 2.
//
// # Renditions
//
// A channel may carry its frames in several sizes: the main picture
// (rendition 0, named "main") and smaller copies of the same frames, made
// where the pixels already are (`framehub publish --renditions 640,320`,
// or a processing step), never by the hub. Rendition N is exactly N
// pixels wide (any other width is ErrRendition, for every decoder), its
// height keeps the main picture's aspect (framehub's publisher keeps both
// sides even), and it is narrower than the main picture and no taller (the
// hub checks that against the channel's newest main frame). A copy carries
// the sequence number and capture time of the main frame it was made
// from, and metadata whose boxes are in its own pixels.
//
// One publisher connection may carry all of a channel's renditions: each
// main frame, then its copies, with the same sequence number and capture
// time. A connection may also publish one rendition only
// (/ws/publish/cam?rendition=320, or an HTTP upload with ?rendition=320),
// for a source that makes the small copy elsewhere (ffmpeg, a processing
// worker).
//
// The version stays 1: these bytes were reserved and 0, which is the main
// picture, and the hub sends a viewer renditions only when it asks for one
// (?rendition=NAME or ?max-width=W, or a rendition control message), so a
// client that never asks only ever receives main frames.
//
// # Sequence numbers
//
// The sequence number is the publisher's to set, and readers must not
// trust it to only grow: a publisher that starts again counts from 1, a
// processing worker keeps its input's numbers (which restart with the
// input's publisher), and a broken or forged frame may say 2^64−1. So no
// reader lets one number shut out later frames or inflate its counts: a
// gap counts as skipped frames only as far as [SkippedFrames] allows, and a
// hub relaying frames from other hubs drops at most two in a row that are
// not newer than the last it relayed before it starts the order anew from
// the third (hub/busorder.go).
//
// # Metadata
//
// Metadata is side data about the picture, a UTF-8 JSON object of at most
// the hub's Framehub-Max-Metadata-Bytes. Keys are free, but these have a
// meaning every framehub client shares (the web page draws boxes, `watch
// --json` counts them, `view` and `record --draw-boxes` draw them, and
// `framehub process` writes them):
//
//	{
//	  "boxes": [                     detections, in pixels of this frame
//	    {"x": 227, "y": 94,          top-left corner (may lie outside the picture)
//	     "w": 37, "h": 37,           size
//	     "label": "face",            optional; readers keep the first 64 characters
//	     "score": 0.877,             optional confidence, 0 to 1; left out when unknown
//	     "carried": true}            optional: carried forward from an earlier frame
//	  ],                             (a motion-gated detector did not run on this one)
//	  "boxes_dropped": 12,           boxes left out to fit the hub's limit
//	  "steps": [                     processing steps that made this frame, in order
//	    {"name": "motion", "ms": 3.1},
//	    {"name": "faces", "ms": 0, "gated": true}   skipped by the motion gate
//	  ],
//	  "gate": {"motion": false,      the motion gate's verdict: did anything move,
//	           "refresh": true,      did the detectors run on the whole picture anyway,
//	           "regions": 0},        in how many moving regions
//	  "events": [                    events going on (or just ended) on this channel
//	    {"id": "5f3a9c0e1b2d4e6f",   1 to 64 of A-Z a-z 0-9 _ -, unique to the event
//	     "label": "person",          what was seen; readers keep the first 64 characters
//	     "zone": "door",             optional: the zone it was seen in (a name like an id);
//	                                 absent, null or "": the whole picture
//	     "start": 1712345678.125,    Unix seconds (the frames' capture clock): first seen
//	     "end": 1712345690.5,        absent or null while it lasts; Unix seconds: last seen
//	     "score": 0.91,              optional: the best score of the frames flagged best
//	     "best": true}               optional: this frame is the event's best so far
//	  ]                              (its snapshot)
//	}
//
// Metadata is not trusted (see [ParseBoxes]): a box whose x, y, w or h is
// not a number is left out, as is a label that is not a string, a score
// that is not a number from 0 to 1, and boxes past [MaxBoxes]; keys are
// case-sensitive. Labels are text: every reader draws them as text, never
// as markup.
//
// Events are read the same way by every reader (see [ParseEvents], the
// page's frameEvents and the Python client's frame_events, checked
// against the shared cases in testdata/events.json): at most [MaxEvents]
// from one frame; an entry without a valid id, a non-empty string label, a
// zone that is a name (or none), a start above 0 and at most
// [MaxEventTime], or an end (when present) from start to MaxEventTime, is
// left out, as is an entry whose id an earlier one has; a score that is
// not a number from 0 to 1 is left out of its event. A frame lists every
// event of its channel going on at that frame, and an ended event for a
// few frames after it ends, so that a reader that missed a frame still
// sees every start and end: an event is identified by its id, and a reader
// that no longer finds an event it saw going on may take it as ended.
// Events are only as trustworthy as the channel's publisher, which writes
// them.
//
// # Control messages
//
// A subscriber may send small JSON text messages to the hub (see
// [Control]): {"op":"credit","window":N} switches the connection to
// acknowledged delivery, in which the hub keeps at most N frames in flight,
// {"op":"ack","seq":S} reports that frame S has been consumed, and
// {"op":"rendition","max_width":W} or {"op":"rendition","rendition":"320"}
// switches to another rendition between two frames: the first frame of
// the new rendition is one captured no earlier than the last frame sent
// (the same picture in its new size, or a newer one; waiting at most a
// second for one, see hub/rendition.go), so a viewer never goes back in
// time.
//
// The hub sends a publisher one kind of JSON text message, a
// [ViewersNotice]: {"op":"viewers","count":N}, when the publisher connects
// and whenever the number of the channel's readers changes. A publisher
// that connected with ?on_demand=1 captures and encodes only while N is
// above zero. Publishers ignore text messages they do not know.
//
// A publisher tells the hub its source's state with a [SourceNotice]:
// {"op":"source","state":"reconnecting","error":"connection refused"}, with
// a state of [SourceLive], [SourceStalled], [SourceReconnecting] or
// [SourceEnded] and an error of at most [MaxSourceErrorBytes], when the
// state changes and again on each new connection, but only to a hub that
// answered its handshake with [HeaderSourceNotices]. A hub refuses any
// other text from a publisher (1003), a notice over [MaxControlBytes]
// (1009), one it cannot read (1007), and notices faster than it takes them
// (1008).
package protocol
