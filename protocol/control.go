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

// ackPrefix is how every client writes an ack: the page, the Python client
// and the Go subscriber (which adds a newline).
const ackPrefix = `{"op":"ack","seq":`

// ParseAck reads the sequence number of an ack written the way framehub's
// clients write it, {"op":"ack","seq":N} (then JSON whitespace, if any),
// without encoding/json: the hub reads one ack per frame per subscriber
// in credit mode. It reports false for anything else, which ParseControl
// then decodes or refuses; what it accepts, ParseControl reads the same
// way (FuzzParseAck checks it).
func ParseAck(b []byte) (seq uint64, ok bool) {
	if len(b) > MaxControlBytes || len(b) < len(ackPrefix)+2 || string(b[:len(ackPrefix)]) != ackPrefix {
		return 0, false
	}
	b = b[len(ackPrefix):]
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if seq > (1<<64-1-d)/10 {
			return 0, false // past uint64: ParseControl refuses it
		}
		seq = seq*10 + d
	}
	if i == 0 || (i > 1 && b[0] == '0') || i == len(b) || b[i] != '}' {
		return 0, false // no digits, a leading zero (not JSON), or no end
	}
	for _, c := range b[i+1:] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return 0, false
		}
	}
	return seq, true
}

// isJSONObject reports whether b is a valid JSON document whose top level
// is an object.
func isJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}
