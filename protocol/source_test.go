package protocol

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseSourceNotice(t *testing.T) {
	long := strings.Repeat("x", MaxSourceErrorBytes+1)
	for _, c := range []struct {
		name, msg string
		want      SourceNotice
		err       string // substring; "" for none
		tooBig    bool
	}{
		{name: "live", msg: `{"op":"source","state":"live"}`, want: SourceNotice{Op: OpSource, State: SourceLive}},
		{name: "with error", msg: `{"op":"source","state":"reconnecting","error":"connection refused"}`,
			want: SourceNotice{Op: OpSource, State: SourceReconnecting, Error: "connection refused"}},
		{name: "stalled", msg: `{"op":"source","state":"stalled","error":"no frame for 1s"}`,
			want: SourceNotice{Op: OpSource, State: SourceStalled, Error: "no frame for 1s"}},
		{name: "ended", msg: `{"op":"source","state":"ended"}`, want: SourceNotice{Op: OpSource, State: SourceEnded}},
		{name: "unknown state", msg: `{"op":"source","state":"on fire"}`, err: `unknown state "on fire"`},
		{name: "no state", msg: `{"op":"source"}`, err: "unknown state"},
		{name: "unknown op", msg: `{"op":"credit","window":1}`, err: `unknown op "credit"`},
		{name: "not JSON", msg: `state=live`, err: "publisher message"},
		{name: "not an object", msg: `["source","live"]`, err: "publisher message"},
		{name: "error too long", msg: `{"op":"source","state":"stalled","error":"` + long + `"}`, err: "an error of 201 bytes"},
		{name: "message too long", msg: `{"op":"source","state":"live","pad":"` + strings.Repeat(" ", MaxControlBytes) + `"}`, err: "limit 512", tooBig: true},
		{name: "not UTF-8", msg: "{\"op\":\"source\",\"state\":\"live\",\"error\":\"\xff\"}", err: "not UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSourceNotice([]byte(c.msg))
			if c.err == "" {
				if err != nil || got != c.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("got error %v; want one containing %q", err, c.err)
			}
			if errors.Is(err, ErrTooBig) != c.tooBig {
				t.Fatalf("errors.Is(err, ErrTooBig) = %v; want %v", !c.tooBig, c.tooBig)
			}
		})
	}
}

// TestNewSourceNotice: what a publisher sends always parses, however long
// or foreign its error text: it is cut at a character boundary.
func TestNewSourceNotice(t *testing.T) {
	for _, e := range []string{"", "refused", strings.Repeat("é", 150), strings.Repeat("ab\n\"", 100),
		strings.Repeat("<&>", 100), strings.Repeat("\x01\\", 200), "bad \xff\xfe bytes"} {
		n := NewSourceNotice(SourceReconnecting, e)
		if len(n.Error) > MaxSourceErrorBytes || !utf8.ValidString(n.Error) || strings.ContainsAny(n.Error, "\x01\n") {
			t.Fatalf("error %q made %q", e, n.Error)
		}
		b := n.Encode()
		if len(b) > MaxControlBytes {
			t.Fatalf("error %q: the notice is %d bytes, over %d", e, len(b), MaxControlBytes)
		}
		got, err := ParseSourceNotice(b)
		if err != nil || got != n {
			t.Fatalf("%s parses as %+v, %v; want %+v", b, got, err, n)
		}
	}
	if got := NewSourceNotice(SourceStalled, "cut here: "+strings.Repeat("é", 200)).Error; !strings.HasPrefix(got, "cut here: é") {
		t.Fatalf("cut to %q", got)
	}
}
