package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// OpSource is the op of a publisher's source notice.
const OpSource = "source"

// A source's states, as a publisher tells its hub and /api/channels shows
// them (source_state).
const (
	// SourceLive: frames arrive from the camera or stream.
	SourceLive = "live"
	// SourceStalled: the source is open but has sent no frame for the
	// publisher's --source-timeout.
	SourceStalled = "stalled"
	// SourceReconnecting: the source failed or went away, and the
	// publisher is opening it again.
	SourceReconnecting = "reconnecting"
	// SourceEnded: the source will send no more (a file or stdin ended,
	// the publisher is stopping).
	SourceEnded = "ended"
)

// MaxSourceErrorBytes bounds the error text of a source notice; a
// publisher cuts a longer one (at a character boundary), and a hub refuses
// a notice that carries more.
const MaxSourceErrorBytes = 200

// HeaderSourceNotices, in a hub's answer to a publisher's WebSocket
// handshake, says the hub takes source notices ("1"). A publisher sends
// them only then: an older hub closes a publisher that sends text (1003).
const HeaderSourceNotices = "Framehub-Source-Notices"

// SourceNotice is the JSON text message a publisher sends its hub when its
// source's state changes, and again on each new connection:
//
//	{"op":"source","state":"reconnecting","error":"connection refused"}
//
// Error says what went wrong, for the stalled and reconnecting states.
type SourceNotice struct {
	Op    string `json:"op"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// ValidSourceState reports whether s is one of the four source states.
func ValidSourceState(s string) bool {
	switch s {
	case SourceLive, SourceStalled, SourceReconnecting, SourceEnded:
		return true
	}
	return false
}

// NewSourceNotice makes the notice for state with err's text (may be
// empty) made fit to send: control characters become spaces, bytes that
// are not UTF-8 become U+FFFD, and it is cut to MaxSourceErrorBytes.
func NewSourceNotice(state, err string) SourceNotice {
	err = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(err, "\uFFFD"))
	return SourceNotice{Op: OpSource, State: state, Error: CutUTF8(strings.TrimSpace(err), MaxSourceErrorBytes)}
}

// Encode returns n as the JSON text message to send. For a notice made by
// NewSourceNotice it is at most MaxControlBytes: only quotes and
// backslashes are escaped, at two bytes each.
func (n SourceNotice) Encode() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(n) // three strings always encode
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// ParseSourceNotice decodes and checks a publisher's text message: at
// most MaxControlBytes, a JSON object with op "source", a known state and
// an error of at most MaxSourceErrorBytes of valid UTF-8. Errors wrap
// ErrTooBig for a message over MaxControlBytes.
func ParseSourceNotice(b []byte) (SourceNotice, error) {
	var n SourceNotice
	if len(b) > MaxControlBytes {
		return n, fmt.Errorf("%w: publisher message of %d bytes, limit %d", ErrTooBig, len(b), MaxControlBytes)
	}
	if !utf8.Valid(b) {
		return n, fmt.Errorf("publisher message: not UTF-8")
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return n, fmt.Errorf("publisher message: %w", err)
	}
	switch {
	case n.Op != OpSource:
		return n, fmt.Errorf("publisher message: unknown op %q", CutUTF8(n.Op, 32))
	case !ValidSourceState(n.State):
		return n, fmt.Errorf("source notice: unknown state %q", CutUTF8(n.State, 32))
	case len(n.Error) > MaxSourceErrorBytes:
		return n, fmt.Errorf("source notice: an error of %d bytes, limit %d", len(n.Error), MaxSourceErrorBytes)
	}
	return n, nil
}

// CutUTF8 returns s cut to at most n bytes without splitting a character.
func CutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
