package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Control operations a subscriber may send as a WebSocket text message.
const (
	OpCredit    = "credit"    // switch to acknowledged delivery with Window frames in flight
	OpAck       = "ack"       // frame Seq has been consumed; its credit returns
	OpRendition = "rendition" // receive another rendition from the next frame on
)

// MaxControlBytes is the largest control message a hub needs to accept.
const MaxControlBytes = 512

// Control is a subscriber-to-hub control message, sent as JSON text:
//
//	{"op":"credit","window":2}
//	{"op":"ack","seq":1234}
//	{"op":"rendition","max_width":320}
//	{"op":"rendition","rendition":"main"}
//
// A rendition message switches the connection, as the rendition and
// max-width query parameters choose at the start (exactly one of the two).
type Control struct {
	Op        string `json:"op"`
	Window    int    `json:"window,omitempty"`
	Seq       uint64 `json:"seq,omitempty"`
	Rendition string `json:"rendition,omitempty"`
	MaxWidth  int    `json:"max_width,omitempty"`
}

// Want returns what a rendition message asks for. It is valid only for a
// Control that ParseControl accepted.
func (c Control) Want() RenditionWant {
	if c.MaxWidth > 0 {
		return RenditionWant{MaxWidth: c.MaxWidth}
	}
	r, _ := ParseRendition(c.Rendition)
	return RenditionWant{Rendition: r}
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
	case OpRendition:
		switch {
		case c.MaxWidth != 0 && c.Rendition != "":
			return c, fmt.Errorf("control message: rendition and max_width both given; send one")
		case c.MaxWidth != 0:
			if c.MaxWidth < 1 || c.MaxWidth > MaxRenditionWidth {
				return c, fmt.Errorf("control message: max_width %d: want 1 to %d", c.MaxWidth, MaxRenditionWidth)
			}
		default:
			if _, err := ParseRendition(c.Rendition); err != nil {
				return c, fmt.Errorf("control message: %w", err)
			}
		}
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
