package protocol

import (
	"fmt"
	"strconv"
	"strings"
)

// Rendition names one picture size of a channel (header bytes 44–45).
// RenditionMain (0) is the main picture, the one a publisher captured; a
// rendition N > 0 is a smaller copy of the same frames, made where the
// pixels already are (the publisher, or a processing worker), never by the
// hub. Its rules:
//
//   - Its picture is exactly N pixels wide (ParseMessage refuses another
//     width with ErrRendition); its height keeps the main picture's aspect
//     as its maker sees fit (framehub's publisher rounds it to even).
//   - It is narrower than the main picture and no taller: the hub refuses
//     one that is not, compared with the channel's newest main frame.
//   - A copy made from a main frame has that frame's sequence number and
//     capture time, so "newer" means the same for every rendition.
//
// Its name in the API and in queries is "main" or the decimal N. A client
// that never asks for a rendition only ever receives main frames.
type Rendition uint16

// RenditionMain is the main picture.
const RenditionMain Rendition = 0

// RenditionMainName is the main picture's name in the API and in queries.
const RenditionMainName = "main"

// String returns the rendition's name: "main" or its width in decimal.
func (r Rendition) String() string {
	if r == RenditionMain {
		return RenditionMainName
	}
	return strconv.Itoa(int(r))
}

// ErrRenditionName is the error for a rendition name or width that is not
// one; errors.Is finds it in what ParseRendition and ParseMaxWidth return.
var ErrRenditionName = fmt.Errorf("bad rendition")

// ParseRendition reads a rendition's name: "main", or a width from 1 to
// 65535 in plain decimal (no sign, no leading zero, no spaces).
func ParseRendition(s string) (Rendition, error) {
	if s == RenditionMainName {
		return RenditionMain, nil
	}
	n, err := parseWidth(s)
	if err != nil {
		return 0, fmt.Errorf("%w %q: want %q or a width in pixels from 1 to %d", ErrRenditionName, truncName(s), RenditionMainName, MaxRenditionWidth)
	}
	return Rendition(n), nil
}

// MaxRenditionWidth is the largest rendition name, and the largest
// max-width a viewer may ask for: what the header's 16 bits hold.
const MaxRenditionWidth = 65535

// ParseMaxWidth reads a viewer's max-width: a width in pixels from 1 to
// MaxRenditionWidth in plain decimal. 0, negative, fractional, huge and
// non-numeric values are errors.
func ParseMaxWidth(s string) (int, error) {
	n, err := parseWidth(s)
	if err != nil {
		return 0, fmt.Errorf("%w: max-width %q: want a width in pixels from 1 to %d", ErrRenditionName, truncName(s), MaxRenditionWidth)
	}
	return n, nil
}

func parseWidth(s string) (int, error) {
	if s == "" || len(s) > 5 || s[0] == '0' || strings.Trim(s, "0123456789") != "" {
		return 0, ErrRenditionName
	}
	n, _ := strconv.Atoi(s) // at most five digits: always parses
	if n < 1 || n > MaxRenditionWidth {
		return 0, ErrRenditionName
	}
	return n, nil
}

func truncName(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// RenditionSize is a rendition a channel has now, for PickRendition: its
// name and its width (a main picture whose width is not known yet has
// width 0 and counts as the widest).
type RenditionSize struct {
	Rendition Rendition
	Width     int
}

// PickRendition returns what a viewer that asked for maxWidth gets from a
// channel that has the renditions in have: the narrowest at least maxWidth
// wide, or else the widest. ok is false when have is empty. The main
// picture counts with its width (0: unknown, so the widest).
func PickRendition(have []RenditionSize, maxWidth int) (r Rendition, ok bool) {
	width := func(s RenditionSize) int {
		if s.Rendition == RenditionMain && s.Width == 0 {
			return MaxRenditionWidth + 1
		}
		return s.Width
	}
	var best, widest RenditionSize
	haveBest := false
	for i, s := range have {
		if i == 0 || width(s) > width(widest) {
			widest = s
		}
		if width(s) >= maxWidth && (!haveBest || width(s) < width(best)) {
			best, haveBest = s, true
		}
	}
	switch {
	case haveBest:
		return best.Rendition, true
	case len(have) > 0:
		return widest.Rendition, true
	}
	return 0, false
}

// RenditionWant is what a viewer asked for: an exact rendition, or the
// rendition that fits a width (MaxWidth > 0). The zero value asks for the
// main picture, as a viewer that names nothing does.
type RenditionWant struct {
	Rendition Rendition // when MaxWidth is 0
	MaxWidth  int
}

// String describes the want as its query does: "main", "320", "max-width=320".
func (w RenditionWant) String() string {
	if w.MaxWidth > 0 {
		return QueryMaxWidth + "=" + strconv.Itoa(w.MaxWidth)
	}
	return w.Rendition.String()
}

// Pick returns the rendition w selects from have: the exact one if it is
// there, or by PickRendition for a max-width. ok is false when nothing in
// have fits (the viewer waits).
func (w RenditionWant) Pick(have []RenditionSize) (Rendition, bool) {
	if w.MaxWidth > 0 {
		return PickRendition(have, w.MaxWidth)
	}
	for _, s := range have {
		if s.Rendition == w.Rendition {
			return s.Rendition, true
		}
	}
	return 0, false
}

// ParseRenditionWant reads a viewer's choice from the values of the
// rendition and max-width query parameters (empty: not given). Giving both
// is an error.
func ParseRenditionWant(rendition, maxWidth string) (RenditionWant, error) {
	switch {
	case rendition != "" && maxWidth != "":
		return RenditionWant{}, fmt.Errorf("%w: ask for %s or %s, not both", ErrRenditionName, QueryRendition, QueryMaxWidth)
	case maxWidth != "":
		n, err := ParseMaxWidth(maxWidth)
		return RenditionWant{MaxWidth: n}, err
	case rendition != "":
		r, err := ParseRendition(rendition)
		return RenditionWant{Rendition: r}, err
	}
	return RenditionWant{}, nil
}
