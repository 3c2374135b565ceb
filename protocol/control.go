package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Control operations a subscriber may send as a WebSocket text message.
const (
	OpCredit = "credit" // switch to acknowledged delivery with Window frames in flight
	OpAck    = "ack"    // frame Seq has been consumed; its credit returns
)

// MaxControlBytes is the largest control message a hub needs to accept.
const MaxControlBytes = 512

// Control is a subscriber-to-hub control message, sent as JSON text:
//
//	{"op":"credit","window":2}
//	{"op":"ack","seq":1234}
type Control struct {
	Op     string `json:"op"`
	Window int    `json:"window,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
}

// ParseControl decodes and checks a control message.
func ParseControl(b []byte) (Control, error) {
	var c Control
	if len(b) > MaxControlBytes {
		return c, fmt.Errorf("%w: control message of %d bytes, limit %d", ErrTooBig, len(b), MaxControlBytes)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("control message: %w", err)
	}
	switch c.Op {
	case OpCredit:
		if c.Window < 0 {
			return c, fmt.Errorf("control message: negative credit window %d", c.Window)
		}
	case OpAck:
	default:
		return c, fmt.Errorf("control message: unknown op %q", c.Op)
	}
	return c, nil
}

// isJSONObject reports whether b is a valid JSON document whose top level
// is an object.
func isJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}
