package process

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"framehub/protocol"
)

// hostileMeta are metadata a hostile or broken publisher sends on the input
// channel: each is a JSON object, as the hub lets through.
var hostileMeta = []struct {
	name      string
	meta      string
	wantBoxes int  // valid boxes kept
	wantBad   bool // a problem is reported
}{
	{"valid", `{"boxes":[{"x":1,"y":2,"w":3,"h":4,"label":"face","score":0.5}],"cam":"door"}`, 1, false},
	{"boxes not a list", `{"boxes":"everything"}`, 0, true},
	{"boxes an object", `{"boxes":{"x":1,"y":2,"w":3,"h":4}}`, 0, true},
	{"boxes null", `{"boxes":null}`, 0, true},
	{"box of strings", `{"boxes":[{"x":"1","y":2,"w":3,"h":4},{"x":1,"y":2,"w":3,"h":4}]}`, 1, true},
	{"box not an object", `{"boxes":[1,"a",null,[],{"x":1,"y":2,"w":3,"h":4}]}`, 1, true},
	{"number too big", `{"boxes":[{"x":1e400,"y":2,"w":3,"h":4}]}`, 0, true},
	{"wrong label and score", `{"boxes":[{"x":1,"y":2,"w":3,"h":4,"label":7,"score":2}]}`, 1, true},
	{"keys differ in case", `{"Boxes":[{"X":1,"Y":2,"W":3,"H":4}]}`, 0, false},
	{"steps wrong", `{"steps":5}`, 0, true},
	{"steps half wrong", `{"steps":[{"name":"faces","ms":3},{"name":1,"ms":"x"},7]}`, 0, true},
	{"deep nesting", `{"deep":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `,"ok":1}`, 0, true},
	{"deep in a string", `{"s":"` + strings.Repeat("[", 5000) + `"}`, 0, false},
	{"many keys", manyKeys(500), 0, true},
	{"long label", `{"boxes":[{"x":1,"y":2,"w":3,"h":4,"label":"` + strings.Repeat("é", 1000) + `"}]}`, 1, false},
	{"too many boxes", `{"boxes":[` + strings.TrimSuffix(strings.Repeat(`{"x":1,"y":2,"w":3,"h":4},`, 300), ",") + `]}`, protocol.MaxBoxes, true},
	{"huge string", `{"blob":"` + strings.Repeat("A", 60000) + `"}`, 0, false},
	{"our own keys", `{"gate":{"motion":"yes"},"boxes_dropped":"lots"}`, 0, false},
	{"more than is read", `{"boxes":[{"x":1,"y":2,"w":3,"h":4}],"blob":"` + strings.Repeat("B", maxInputMeta) + `"}`, 0, true},
}

func manyKeys(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%04d":%d`, i, i)
	}
	b.WriteByte('}')
	return b.String()
}

// checkOutput fails unless out is what a viewer may trust: nil, or a JSON
// object within limit whose boxes all pass the page's rules.
func checkOutput(t *testing.T, out []byte, limit int) {
	t.Helper()
	if out == nil {
		return
	}
	if limit > 0 && len(out) > limit {
		t.Fatalf("output metadata of %d bytes; limit %d", len(out), limit)
	}
	if !json.Valid(out) || out[0] != '{' {
		t.Fatalf("output metadata is not a JSON object: %.200s", out)
	}
	if _, p := protocol.ParseBoxes(out); p != nil {
		t.Fatalf("output boxes have a problem: %+v in %.200s", p, out)
	}
	if d := jsonDepth(out); d > maxPassDepth+1 {
		t.Fatalf("output nests %d deep", d)
	}
}

func TestInputMetadataHostile(t *testing.T) {
	for _, c := range hostileMeta {
		t.Run(c.name, func(t *testing.T) {
			if !json.Valid([]byte(c.meta)) {
				t.Fatalf("test case is not valid JSON")
			}
			m, p := parseInput([]byte(c.meta))
			if got := len(m.Boxes); got != c.wantBoxes {
				t.Errorf("kept %d boxes; want %d", got, c.wantBoxes)
			}
			if (p != nil) != c.wantBad {
				t.Errorf("problem %+v; want one: %v", p, c.wantBad)
			}
			m.Steps = append(m.Steps, StepTime{Name: "faces", MS: 12.3})
			for _, limit := range []int{0, 65536, 1024, 100, 20} {
				out, _ := m.encode(limit)
				checkOutput(t, out, limit)
			}
		})
	}
}

func TestOutputMetadataFitsTheLimit(t *testing.T) {
	m := Meta{Gate: &GateInfo{Motion: true, Regions: 2}}
	for i := range 300 {
		m.Boxes = append(m.Boxes, protocol.Box{X: float64(i), Y: 2, W: 30, H: 40, Label: "person", Score: 0.81234})
	}
	m.Steps = []StepTime{{Name: "motion", MS: 3}, {Name: "people", MS: 120.456}}
	m.pass = map[string]json.RawMessage{"cam": json.RawMessage(`"door"`), "zone": json.RawMessage(`[1,2,3]`)}

	out, res := m.encode(0)
	checkOutput(t, out, 0)
	var all struct {
		Boxes   []json.RawMessage `json:"boxes"`
		Dropped int               `json:"boxes_dropped"`
		Cam     string            `json:"cam"`
	}
	if err := json.Unmarshal(out, &all); err != nil || len(all.Boxes) != protocol.MaxBoxes || all.Dropped != 300-protocol.MaxBoxes ||
		res.boxesCut != 300-protocol.MaxBoxes || all.Cam != "door" {
		t.Fatalf("no limit: %d boxes, %d dropped (%+v), cam %q: %v; want %d boxes and the rest counted", len(all.Boxes), all.Dropped, res, all.Cam, err, protocol.MaxBoxes)
	}

	out, res = m.encode(2048)
	checkOutput(t, out, 2048)
	all.Boxes, all.Dropped = nil, 0
	if err := json.Unmarshal(out, &all); err != nil || len(all.Boxes)+all.Dropped != 300 || res.keysCut != 2 || len(out) < 1900 {
		t.Fatalf("2048 bytes: %d bytes, %d boxes + %d dropped, %+v: %v; want every box kept or counted, input keys left out first, the limit used", len(out), len(all.Boxes), all.Dropped, res, err)
	}
	if !bytes.Contains(out, []byte(`"gate":{"motion":true`)) {
		t.Errorf("the gate's verdict was left out: %s", out)
	}

	if out, res = m.encode(10); out != nil || !res.overBudget {
		t.Fatalf("10 bytes: %q, %+v; want nothing, reported", out, res)
	}
}

// FuzzInputMetadata: whatever JSON object arrives as metadata, the output
// metadata is a JSON object within the limit, with boxes a viewer draws.
func FuzzInputMetadata(f *testing.F) {
	for _, c := range hostileMeta {
		f.Add([]byte(c.meta), 1024)
	}
	f.Fuzz(func(t *testing.T, meta []byte, limit int) {
		if !json.Valid(meta) || !bytes.HasPrefix(bytes.TrimLeft(meta, " \t\r\n"), []byte("{")) {
			return // the hub refuses it
		}
		m, _ := parseInput(meta)
		m.Boxes = append(m.Boxes, protocol.Box{X: 1, Y: 1, W: 5, H: 5, Label: "face"})
		m.Steps = append(m.Steps, StepTime{Name: "faces", MS: 1})
		out, _ := m.encode(limit)
		checkOutput(t, out, limit)
	})
}

func TestJSONDepth(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{`1`, 0}, {`"[[["`, 0}, {`[]`, 1}, {`{"a":[{"b":"]]]"}]}`, 3}, {`["\"[",[[]]]`, 3},
	} {
		if got := jsonDepth([]byte(c.in)); got != c.want {
			t.Errorf("jsonDepth(%s) = %d; want %d", c.in, got, c.want)
		}
	}
}
