package hub

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// Refusals. Whatever the hub refuses (a request, a connection, a frame
// from a publisher, an upload or the bus) has a reason, and each reason has
// one row in the refusals table: the name it is counted under (Stats.Refused,
// and Stats.Cluster.Refused for frames from the bus), the WebSocket close
// code a connection gets, the HTTP status a request gets, and the words the
// peer and the log are told. A refusal is counted, logged at a bounded rate
// (one line per reason per refusalLogInterval, the rest folded into a
// count) and answered; the log line and the answer never carry a token.

// reason is why the hub refused something.
type reason int

const (
	reasonBadName            reason = iota // a channel name outside [A-Za-z0-9_-]{1,64}
	reasonBadFrame                         // a frame that does not parse
	reasonTooBig                           // a message over the read limit, a frame or JPEG over MaxFrameBytes
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
	reasonTooManyPixels                    // a picture past MaxPixels or the largest side
	reasonForeignHost                      // a Host header the hub does not answer to (DNS rebinding)
	reasonMemory                           // a frame past the memory budget
	reasonBadQuery                         // a bad query parameter, such as ?window=
	reasonBadUpload                        // an HTTP upload whose framing is broken: no boundary, a JPEG without its EOI, …
	reasonMediaType                        // an HTTP upload that is not JPEG (its Content-Type, or its bytes)
	reasonStalledUpload                    // an HTTP upload that sent nothing for PongWait
	reasonBadWebSocket                     // a WebSocket frame that breaks RFC 6455 (unmasked, reserved bits, bad opcode…)
	reasonBadRendition                     // a rendition not narrower than the main picture, not as wide as its name, or not of its main frame (rendition.go)
	reasonTooManyRenditions                // a rendition past MaxRenditions
	reasonTooManySwitches                  // a subscriber switching renditions faster than switchRate
	reasonBadSourceNotice                  // a publisher's source notice with an unknown state or too long an error
	reasonSourceFlood                      // a publisher sending source notices faster than the hub takes them
	reasonEventRate                        // an event of a channel that starts events faster than eventRate (events.go); its frame goes on
	numReasons
)

// refusal is one row of the refusals table.
type refusal struct {
	name   string // counter and log name
	code   int    // WebSocket close code; 0: never refused on an open WebSocket
	status int    // HTTP status; 0: never refused with an HTTP answer
	text   string // what the peer and the log are told, before any detail
}

var refusals = [numReasons]refusal{
	reasonBadName:            {"bad_channel_name", 0, 400, "invalid channel name: use 1 to 64 letters, digits, '_' or '-'"},
	reasonBadFrame:           {"bad_frame", websocket.CloseInvalidFramePayloadData, 400, "invalid frame"},
	reasonTooBig:             {"too_big", websocket.CloseMessageTooBig, 413, "frame too big"},
	reasonMessageType:        {"wrong_message_type", websocket.CloseUnsupportedData, 0, "wrong message type"},
	reasonBadControl:         {"bad_control", websocket.CloseInvalidFramePayloadData, 0, "bad control message"},
	reasonUpgrade:            {"bad_handshake", 0, 400, "websocket handshake failed"},
	reasonShuttingDown:       {"shutting_down", websocket.CloseGoingAway, 503, "hub shutting down"},
	reasonOrigin:             {"foreign_origin", 0, 403, "forbidden: origin not allowed"},
	reasonTooManyChannels:    {"too_many_channels", 0, 503, "too many channels on this hub"},
	reasonTooManySubscribers: {"too_many_subscribers", 0, 503, "too many subscribers"},
	reasonUnauthorized:       {"unauthorized", 0, 401, "unauthorized"},
	reasonForbidden:          {"forbidden", 0, 403, "forbidden"},
	reasonTooManyConnsPerIP:  {"too_many_connections_per_ip", 0, 429, "too many connections"},
	reasonConnRatePerIP:      {"connection_rate_per_ip", 0, 429, "too many connections"},
	reasonBadJPEG:            {"bad_jpeg", websocket.CloseInvalidFramePayloadData, 422, "bad JPEG"},
	reasonTooManyPixels:      {"too_many_pixels", websocket.CloseInvalidFramePayloadData, 422, "picture too big"},
	reasonForeignHost:        {"foreign_host", 0, 403, "forbidden: this hub does not answer to that host"},
	reasonMemory:             {"over_memory_budget", protocol.CloseTryAgainLater, 503, "over the hub's memory budget"},
	reasonBadQuery:           {"bad_query", 0, 400, "bad query parameter"},
	reasonBadUpload:          {"bad_upload", 0, 400, "malformed upload"},
	reasonMediaType:          {"unsupported_media_type", 0, 415, "not JPEG"},
	reasonStalledUpload:      {"stalled_upload", 0, 408, "upload stalled"},
	reasonBadRendition:       {"bad_rendition", websocket.CloseInvalidFramePayloadData, 422, "bad rendition"},
	reasonTooManyRenditions:  {"too_many_renditions", websocket.ClosePolicyViolation, 503, "too many renditions"},
	reasonTooManySwitches:    {"too_many_switches", websocket.ClosePolicyViolation, 0, "too many rendition switches"},
	reasonBadWebSocket:       {"bad_websocket", websocket.CloseProtocolError, 0, "frame breaks the WebSocket protocol"},
	reasonBadSourceNotice:    {"bad_source_notice", websocket.CloseInvalidFramePayloadData, 0, "bad source notice"},
	reasonSourceFlood:        {"source_notice_flood", websocket.ClosePolicyViolation, 0, "too many source notices"},
	reasonEventRate:          {"event_rate", 0, 0, "events started faster than a channel may"},
}

func (r reason) String() string { return refusals[r].name }

// errMemory means a frame would pass the hub's memory budget.
var errMemory = errors.New("hub memory budget exceeded; try again later")

// refusalOf returns the reason for refusing a frame that failed with err,
// whoever sent it (a WebSocket publisher, an upload, the bus), or
// otherwise when err names none: bad_frame for a frame, bad_upload for an
// upload's broken framing.
func refusalOf(err error, otherwise reason) reason {
	switch {
	case errors.Is(err, errMemory):
		return reasonMemory
	case errors.Is(err, protocol.ErrTooBig):
		return reasonTooBig
	case errors.Is(err, protocol.ErrNotJPEG):
		return reasonMediaType
	case errors.Is(err, protocol.ErrPixels):
		return reasonTooManyPixels
	case errors.Is(err, protocol.ErrJPEG):
		return reasonBadJPEG
	case errors.Is(err, protocol.ErrRendition), errors.Is(err, errBadRendition):
		return reasonBadRendition
	case errors.Is(err, errTooManyRenditions):
		return reasonTooManyRenditions
	}
	return otherwise
}

// refuse counts a refusal and logs it at Warn, at most once per reason per
// refusalLogInterval, with a count of the ones folded in between.
func (h *Hub) refuse(r reason, remote, msg string, attrs ...slog.Attr) {
	h.counters.Refused[r].Add(1)
	attrs = append(attrs, slog.String("reason", r.String()), slog.String("remote", remote))
	h.logs.Log(slog.LevelWarn, "refused:"+r.String(), "refused: "+msg, attrs...)
}

// refuseRequest counts and logs a refused HTTP request and answers it with
// the reason's status and answer, or the reason's text when answer is "".
func (h *Hub) refuseRequest(w http.ResponseWriter, r *http.Request, why reason, answer string, attrs ...slog.Attr) {
	h.refuse(why, r.RemoteAddr, refusals[why].text, attrs...)
	if answer == "" {
		answer = refusals[why].text
	}
	http.Error(w, answer, refusals[why].status)
}

// refuseConn counts and logs something a WebSocket peer sent that the hub
// refuses, and closes the connection with the reason's close code and
// answer (the reason's text when answer is ""). It returns how the
// connection ended.
func (h *Hub) refuseConn(c *wsConn, why reason, answer string, attrs ...slog.Attr) ending {
	if answer == "" {
		answer = refusals[why].text
	}
	attrs = append(attrs, slog.String("channel", c.channel))
	h.refuse(why, c.remote, refusals[why].text, attrs...)
	e := ending{kind: endRefused, refused: why, detail: answer}
	c.closeWith(e, refusals[why].code, answer)
	return c.endedBy(nil)
}
