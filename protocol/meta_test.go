package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParseBoxes: boxes are read by the page's rules (static/protocol.js
// frameBoxes): what cannot be drawn is left out and reported, the rest is
// kept.
func TestParseBoxes(t *testing.T) {
	long := strings.Repeat("ab", 50)
	for _, c := range []struct {
		name    string
		meta    string
		want    []Box
		problem bool
	}{
		{"none", ``, nil, false},
		{"no boxes key", `{"other":1}`, nil, false},
		{"full", `{"boxes":[{"x":1.5,"y":2,"w":3,"h":4,"label":"face","score":0.93,"carried":true}]}`,
			[]Box{{X: 1.5, Y: 2, W: 3, H: 4, Label: "face", Score: 0.93, Carried: true}}, false},
		{"bare", `{"boxes":[{"x":-5,"y":2,"w":3,"h":4}]}`, []Box{{X: -5, Y: 2, W: 3, H: 4}}, false},
		{"not a list", `{"boxes":{"x":1}}`, nil, true},
		{"null", `{"boxes":null}`, nil, true},
		{"not an object", `{"boxes":[3,{"x":1,"y":2,"w":3,"h":4}]}`, []Box{{X: 1, Y: 2, W: 3, H: 4}}, true},
		{"string number", `{"boxes":[{"x":"1","y":2,"w":3,"h":4}]}`, []Box{}, true},
		{"missing h", `{"boxes":[{"x":1,"y":2,"w":3}]}`, []Box{}, true},
		{"out of range", `{"boxes":[{"x":1e999,"y":2,"w":3,"h":4}]}`, []Box{}, true},
		{"bad label kept box", `{"boxes":[{"x":1,"y":2,"w":3,"h":4,"label":["x"]}]}`, []Box{{X: 1, Y: 2, W: 3, H: 4}}, true},
		{"score over 1", `{"boxes":[{"x":1,"y":2,"w":3,"h":4,"score":1.5}]}`, []Box{{X: 1, Y: 2, W: 3, H: 4}}, true},
		{"case matters", `{"boxes":[{"X":1,"y":2,"w":3,"h":4}]}`, []Box{}, true},
		{"long label cut", `{"boxes":[{"x":1,"y":2,"w":3,"h":4,"label":"` + long + `"}]}`, []Box{{X: 1, Y: 2, W: 3, H: 4, Label: long[:MaxLabelLen]}}, false},
		{"not json", `{"boxes":[`, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, p := ParseBoxes([]byte(c.meta))
			if (p != nil) != c.problem {
				t.Errorf("problem %+v; want one: %v", p, c.problem)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %+v; want %+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("box %d: got %+v; want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

// TestAppendBox: what a Box writes is what ParseBoxes reads back, in
// whole pixels, with a label that is valid JSON whatever it holds.
func TestAppendBox(t *testing.T) {
	b := Box{X: 10.4, Y: 20.6, W: 30, H: 40, Label: "a \"face\"\n\xff<b>", Score: 0.87654, Carried: true}
	out := append([]byte(`{"boxes":[`), AppendBox(nil, b)...)
	out = append(out, "]}"...)
	if !json.Valid(out) {
		t.Fatalf("not JSON: %s", out)
	}
	got, p := ParseBoxes(out)
	want := Box{X: 10, Y: 21, W: 30, H: 40, Label: "a \"face\"\n\ufffd<b>", Score: 0.877, Carried: true}
	if p != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("read back %+v (%+v) from %s; want %+v", got, p, out, want)
	}
	if s := string(AppendBox(nil, Box{W: 1, H: 1})); s != `{"x":0,"y":0,"w":1,"h":1}` {
		t.Errorf("a bare box is %s", s)
	}
}

func FuzzParseBoxes(f *testing.F) {
	f.Add([]byte(`{"boxes":[{"x":1,"y":2,"w":3,"h":4,"label":"face","score":0.5}]}`))
	f.Add([]byte(`{"boxes":[null,{"x":"1"},[],{"x":1e400}]}`))
	f.Fuzz(func(t *testing.T, meta []byte) {
		boxes, _ := ParseBoxes(meta)
		if len(boxes) > MaxBoxes {
			t.Fatalf("%d boxes", len(boxes))
		}
		for _, b := range boxes {
			if !json.Valid(AppendBox(nil, b)) {
				t.Fatalf("box %+v writes invalid JSON", b)
			}
		}
	})
}

func TestScaleBoxes(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"no metadata", ``, ``},
		{"no boxes", `{"steps":[{"name":"x","ms":1}]}`, `{"steps":[{"name":"x","ms":1}]}`},
		{"halved", `{"boxes":[{"x":10,"y":20,"w":64,"h":32,"label":"face","score":0.9}],"gate":{"motion":true}}`,
			`{"boxes":[{"x":5,"y":10,"w":32,"h":16,"label":"face","score":0.9}],"gate":{"motion":true}}`},
		{"bad boxes left out", `{"boxes":[{"x":"a","y":1,"w":1,"h":1},{"x":4,"y":4,"w":8,"h":8,"carried":true}]}`,
			`{"boxes":[{"x":2,"y":2,"w":4,"h":4,"carried":true}]}`},
		{"boxes not a list", `{"boxes":7}`, `{"boxes":[]}`},
		{"not an object", `[1]`, `[1]`},
	} {
		got := string(ScaleBoxes([]byte(c.in), 0.5, 0.5))
		if got != c.want {
			t.Errorf("%s: ScaleBoxes(%s) = %s; want %s", c.name, c.in, got, c.want)
		}
	}
}
