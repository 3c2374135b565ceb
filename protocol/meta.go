package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Metadata schema: the JSON object a frame may carry (see the package doc,
// "Metadata"). These limits are the web page's, so that every reader draws
// the same boxes.
const (
	MaxBoxes    = 256 // boxes read from one frame; the rest are left out
	MaxLabelLen = 64  // characters of a label kept
)

// Box is one detection in a frame's metadata, in pixels of the frame it
// travels with: {"x":10,"y":20,"w":64,"h":64,"label":"face","score":0.93}.
type Box struct {
	X, Y, W, H float64
	Label      string  // "" for none
	Score      float64 // confidence from 0 to 1; 0 means none and is left out
	// Carried marks a box carried forward from an earlier frame instead of
	// found in this one ("carried":true): a motion-gated detector did not
	// run because nothing moved.
	Carried bool
}

// Rect returns the box rounded to whole pixels: x, y, width and height.
func (b Box) Rect() (x, y, w, h int) {
	return int(math.Round(b.X)), int(math.Round(b.Y)), int(math.Round(b.W)), int(math.Round(b.H))
}

// BoxProblem says what was wrong with a frame's boxes: the first problem
// found, and how many boxes were left out for it or any other.
type BoxProblem struct {
	First   string
	Dropped int
}

func (p *BoxProblem) add(dropped int, format string, args ...any) {
	if p.First == "" {
		p.First = fmt.Sprintf(format, args...)
	}
	p.Dropped += dropped
}

// ParseBoxes reads the boxes of a frame's metadata by the page's rules
// (static/protocol.js frameBoxes), so that every client draws the same:
// "boxes" must be an array; a box must be an object whose x, y, w and h
// are numbers, or it is left out; a label that is not a string and a
// score that is not a number from 0 to 1 are left out; labels are cut to
// MaxLabelLen characters; boxes past MaxBoxes are left out. Keys are
// case-sensitive, as in JavaScript. Metadata that is not a JSON object, or
// has no "boxes", has no boxes. The problem is nil when nothing was left
// out. It never panics, and allocates in proportion to len(meta).
func ParseBoxes(meta []byte) ([]Box, *BoxProblem) {
	if len(meta) == 0 {
		return nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(meta, &top); err != nil {
		return nil, &BoxProblem{First: "metadata is not a JSON object"}
	}
	raw, ok := top["boxes"]
	if !ok {
		return nil, nil
	}
	return ParseBoxList(raw)
}

// ParseBoxList is ParseBoxes for the value of "boxes" alone.
func ParseBoxList(raw json.RawMessage) ([]Box, *BoxProblem) {
	var p BoxProblem
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		p.add(0, `"boxes" is not a list`)
		return nil, &p
	}
	if len(list) > MaxBoxes {
		p.add(len(list)-MaxBoxes, "%d boxes, reading the first %d", len(list), MaxBoxes)
		list = list[:MaxBoxes]
	}
	boxes := make([]Box, 0, len(list))
	for i, r := range list {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(r, &obj); err != nil || obj == nil {
			p.add(1, "box %d is not an object", i)
			continue
		}
		var b Box
		okXYWH := number(obj, "x", &b.X) && number(obj, "y", &b.Y) && number(obj, "w", &b.W) && number(obj, "h", &b.H)
		if !okXYWH {
			p.add(1, "box %d: x, y, w and h must be finite numbers", i)
			continue
		}
		if l, ok := obj["label"]; ok {
			var s string
			if json.Unmarshal(l, &s) == nil && !isNull(l) {
				b.Label = CutLabel(s)
			} else {
				p.add(0, "box %d: label is not a string", i)
			}
		}
		if sc, ok := obj["score"]; ok {
			var v float64
			if json.Unmarshal(sc, &v) == nil && !isNull(sc) && v >= 0 && v <= 1 {
				b.Score = v
			} else {
				p.add(0, "box %d: score is not a number from 0 to 1", i)
			}
		}
		if c, ok := obj["carried"]; ok {
			_ = json.Unmarshal(c, &b.Carried) // an extension: anything but true is false
		}
		boxes = append(boxes, b)
	}
	if p.First == "" {
		return boxes, nil
	}
	return boxes, &p
}

// number reads obj[key] as a finite number into v. JSON has no infinities,
// and a number too large for a float64 fails to decode.
func number(obj map[string]json.RawMessage, key string, v *float64) bool {
	r, ok := obj[key]
	if !ok || isNull(r) {
		return false
	}
	return json.Unmarshal(r, v) == nil && !math.IsInf(*v, 0) && !math.IsNaN(*v)
}

func isNull(r json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(r), []byte("null")) }

// CutLabel returns s cut to MaxLabelLen characters.
func CutLabel(s string) string {
	if utf8.RuneCountInString(s) <= MaxLabelLen {
		return s
	}
	n := 0
	for i := range s {
		if n == MaxLabelLen {
			return s[:i]
		}
		n++
	}
	return s
}

// AppendBox appends b's JSON form to dst: whole pixels, the label escaped
// as JSON (invalid UTF-8 replaced), the score with three decimals when
// there is one, "carried":true when carried.
func AppendBox(dst []byte, b Box) []byte {
	x, y, w, h := b.Rect()
	dst = append(dst, `{"x":`...)
	dst = strconv.AppendInt(dst, int64(x), 10)
	dst = append(dst, `,"y":`...)
	dst = strconv.AppendInt(dst, int64(y), 10)
	dst = append(dst, `,"w":`...)
	dst = strconv.AppendInt(dst, int64(w), 10)
	dst = append(dst, `,"h":`...)
	dst = strconv.AppendInt(dst, int64(h), 10)
	if b.Label != "" {
		dst = append(dst, `,"label":`...)
		l, _ := json.Marshal(CutLabel(b.Label)) // a string always marshals
		dst = append(dst, l...)
	}
	if b.Score > 0 && b.Score <= 1 {
		dst = append(dst, `,"score":`...)
		dst = strconv.AppendFloat(dst, math.Round(b.Score*1000)/1000, 'f', -1, 64)
	}
	if b.Carried {
		dst = append(dst, `,"carried":true`...)
	}
	return append(dst, '}')
}

// ScaleBoxes returns a frame's metadata for a copy of the frame scaled by
// sx and sy (a rendition): the boxes of "boxes", read by ParseBoxes'
// rules (a box that would not be drawn is left out), scaled into the
// copy's pixels and written by AppendBox; every other key as it is.
// Metadata with no "boxes" key comes back unchanged (the same slice), and
// so does metadata that is not a JSON object, for the caller's own checks
// to refuse.
func ScaleBoxes(meta []byte, sx, sy float64) []byte {
	if len(meta) == 0 || !bytes.Contains(meta, []byte(`"boxes"`)) {
		return meta
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(meta, &top); err != nil {
		return meta
	}
	raw, ok := top["boxes"]
	if !ok {
		return meta
	}
	boxes, _ := ParseBoxList(raw)
	list := append(make([]byte, 0, len(raw)), '[')
	for i, b := range boxes {
		if i > 0 {
			list = append(list, ',')
		}
		b.X, b.W, b.Y, b.H = b.X*sx, b.W*sx, b.Y*sy, b.H*sy
		list = AppendBox(list, b)
	}
	top["boxes"] = append(list, ']')
	out, err := json.Marshal(top)
	if err != nil {
		return meta
	}
	return out
}
