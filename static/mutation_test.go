package static_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"framehub/hub"
	"framehub/protocol"
)

// mutationsPerVector is how many mutated copies of each golden vector the
// page parses.
const mutationsPerVector = 3000

// mutate returns a deterministic random mutation of b: bit flips, a
// truncation, an edit of a header field (the length fields above all), an
// edit of the body or other metadata with the lengths kept consistent, so
// that the parse gets past the length check to the JPEG and metadata
// checks; sometimes two of these.
func mutate(r *rand.Rand, b []byte) []byte {
	m := mutateOnce(r, append([]byte(nil), b...))
	if r.IntN(4) == 0 {
		m = mutateOnce(r, m)
	}
	return m
}

// metadataEdits are metadata texts that JSON parsers are known to differ
// on, and shapes the page must not trust.
var metadataEdits = []string{
	"\xEF\xBB\xBF{}", " \r\n\t{}", "{}x", "[]", "null", "{\"a\":\"\xff\"}", "{\"a\":\"\x00\"}", "{\"a\":1}\x00",
	`{"a":1,}`, `{"a":01}`, `{"a":1e999}`, `{"__proto__":{"x":1}}`, `{"a":"\ud800"}`, `{"a":[[[[[[[[]]]]]]]]}`,
	`{"boxes":[null]}`, `{"boxes":{"length":3}}`, `{"boxes":[{"x":1,"y":2,"w":3,"h":4,"label":7,"score":2}]}`,
}

// mutateOnce makes one mutation of m, which it may modify.
func mutateOnce(r *rand.Rand, m []byte) []byte {
	fixLen := func() { // make header + metadata + payload add up to len(m)
		if len(m) >= protocol.HeaderLen {
			hl := uint64(binary.BigEndian.Uint16(m[8:]))
			ml := uint64(binary.BigEndian.Uint32(m[36:]))
			if uint64(len(m)) >= hl+ml {
				binary.BigEndian.PutUint32(m[40:], uint32(uint64(len(m))-hl-ml))
			}
		}
	}
	body := func() int { return min(protocol.HeaderLen, len(m)) }
	switch k := r.IntN(8); {
	case len(m) == 0:
		return []byte{byte(r.IntN(256))}
	case k == 1: // truncate
		m = m[:r.IntN(len(m))]
	case k == 2 && len(m) >= protocol.HeaderLen: // set a header field to an edge value
		fields := []struct{ off, size int }{{8, 2}, {36, 4}, {40, 4}, {12, 4}, {16, 4}, {4, 1}, {5, 1}, {6, 1}, {7, 1}, {10, 1}, {11, 1}, {44, 2}, {46, 2}}
		f := fields[r.IntN(len(fields))]
		n := uint64(len(m))
		vals := []uint64{0, 1, 2, 47, 48, 49, n, n - 48, n - 47, n - 49, 0xFF, 0xFFFF, 0x10000, 0xFFFFFFFF, 1 << 31, r.Uint64()}
		v := vals[r.IntN(len(vals))]
		switch f.size {
		case 1:
			m[f.off] = byte(v)
		case 2:
			binary.BigEndian.PutUint16(m[f.off:], uint16(v))
		case 4:
			binary.BigEndian.PutUint32(m[f.off:], uint32(v))
		}
	case k == 3: // cut or grow the body, lengths fixed up
		if r.IntN(2) == 0 && len(m) > body() {
			m = m[:body()+r.IntN(len(m)-body())]
		} else {
			for range 1 + r.IntN(8) {
				m = append(m, byte(r.IntN(256)))
			}
		}
		fixLen()
	case k == 4 && len(m) > body(): // flip bits in the body only
		for range 1 + r.IntN(3) {
			i := body() + r.IntN(len(m)-body())
			m[i] ^= 1 << r.IntN(8)
		}
	case k == 5 && len(m) > body(): // a JPEG marker byte somewhere in the body
		markers := []byte{0xFF, 0xD8, 0xD9, 0xDA, 0xC0, 0xC2, 0xC4, 0x00, 0x01, 0xD0}
		m[body()+r.IntN(len(m)-body())] = markers[r.IntN(len(markers))]
	case k == 6 && len(m) > body(): // insert or delete a body byte, lengths fixed up
		i := body() + r.IntN(len(m)-body())
		if r.IntN(2) == 0 {
			m = append(m[:i], m[i+1:]...)
		} else {
			m = append(m[:i], append([]byte{byte(r.IntN(256))}, m[i:]...)...)
		}
		fixLen()
	case k == 7 && len(m) >= protocol.HeaderLen && binary.BigEndian.Uint32(m[36:]) > 0 &&
		int(binary.BigEndian.Uint16(m[8:])) >= protocol.HeaderLen &&
		int(binary.BigEndian.Uint16(m[8:]))+int(binary.BigEndian.Uint32(m[36:])) <= len(m): // other metadata
		hl := int(binary.BigEndian.Uint16(m[8:]))
		ml := int(binary.BigEndian.Uint32(m[36:]))
		meta := metadataEdits[r.IntN(len(metadataEdits))]
		m = append(append(append([]byte(nil), m[:hl]...), meta...), m[hl+ml:]...)
		binary.BigEndian.PutUint32(m[36:], uint32(len(meta)))
	default: // flip one to four bits anywhere
		for range 1 + r.IntN(4) {
			i := r.IntN(len(m))
			m[i] ^= 1 << r.IntN(8)
		}
	}
	return m
}

// goCode is what Go's parser says of msg: "" for a frame, else the name of
// the sentinel error, as the page's FrameError codes name them.
func goCode(msg []byte, lim protocol.Limits) string {
	_, err := protocol.ParseMessage(msg, lim)
	if err == nil {
		return ""
	}
	for _, s := range []struct {
		name string
		err  error
	}{
		{"ErrShort", protocol.ErrShort}, {"ErrMagic", protocol.ErrMagic}, {"ErrVersion", protocol.ErrVersion},
		{"ErrKind", protocol.ErrKind}, {"ErrCodec", protocol.ErrCodec}, {"ErrFlags", protocol.ErrFlags},
		{"ErrHeaderLen", protocol.ErrHeaderLen}, {"ErrLength", protocol.ErrLength}, {"ErrTooBig", protocol.ErrTooBig},
		{"ErrSize", protocol.ErrSize}, {"ErrPayload", protocol.ErrPayload}, {"ErrMetadata", protocol.ErrMetadata},
		{"ErrJPEG", protocol.ErrJPEG}, {"ErrPixels", protocol.ErrPixels}, {"ErrRendition", protocol.ErrRendition},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "unknown Go error: " + err.Error()
}

// TestParseFrameMutations runs the page's parser over thousands of
// deterministic random mutations of each golden vector. It must only ever
// return a frame or throw a FrameError (a TypeError, a RangeError or a
// hang is a bug), the metadata of any frame it returns must go through
// FH.frameBoxes without throwing, and it must agree with Go's
// protocol.ParseMessage on every one, the error included.
func TestParseFrameMutations(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/none")
	dir := filepath.Join("..", "protocol", "testdata", "golden")
	raw, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Limits struct {
			MaxFrameBytes int    `json:"max_frame_bytes"`
			MaxMetaBytes  int    `json:"max_meta_bytes"`
			MaxDimension  uint32 `json:"max_dimension"`
			MaxPixels     uint64 `json:"max_pixels"`
		} `json:"limits"`
		Vectors []struct {
			Name string `json:"name"`
			File string `json:"file"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	lim := protocol.Limits{MaxFrameBytes: idx.Limits.MaxFrameBytes, MaxMetaBytes: idx.Limits.MaxMetaBytes,
		MaxDimension: idx.Limits.MaxDimension, MaxPixels: idx.Limits.MaxPixels}
	jsLim := fmt.Sprintf(`{maxFrameBytes: %d, maxMetaBytes: %d, maxDimension: %d, maxPixels: %d}`,
		lim.MaxFrameBytes, lim.MaxMetaBytes, lim.MaxDimension, lim.MaxPixels)
	outcomes := map[string]int{}
	for vi, v := range idx.Vectors {
		b, err := os.ReadFile(filepath.Join(dir, v.File))
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(vi), 0x66687562))
		msgs := make([][]byte, mutationsPerVector)
		enc := make([]string, mutationsPerVector)
		for i := range msgs {
			msgs[i] = mutate(r, b)
			enc[i] = base64.StdEncoding.EncodeToString(msgs[i])
		}
		list, _ := json.Marshal(enc)
		// A parse that hangs fails the test at this deadline.
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		got, err := chromedp.Run(tctx, chromedp.Evaluate[[]string](`(() => {
			const lim = `+jsLim+`;
			return `+string(list)+`.map((s) => {
				const b = Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
				let f;
				try {
					f = FH.parseFrame(b, lim);
				} catch (e) {
					return e instanceof FH.FrameError ? e.code : '! ' + e;
				}
				try {
					FH.frameBoxes(f.meta);
				} catch (e) {
					return '! frameBoxes: ' + e;
				}
				return '';
			});
		})()`))
		cancel()
		if err != nil {
			t.Fatalf("%s: page parser: %v", v.Name, err)
		}
		if len(got) != len(msgs) {
			t.Fatalf("%s: page parsed %d of %d messages", v.Name, len(got), len(msgs))
		}
		bad := 0
		for i, code := range got {
			want := goCode(msgs[i], lim)
			outcomes[want]++
			if code != want {
				if bad++; bad <= 5 {
					t.Errorf("%s mutation %d (%x): page says %q, Go says %q", v.Name, i, msgs[i], code, want)
				}
			}
		}
		if bad > 5 {
			t.Errorf("%s: %d mutations in all where the page and Go disagree", v.Name, bad)
		}
	}
	t.Logf("outcomes of %d mutations (\"\" is a frame): %v", mutationsPerVector*len(idx.Vectors), outcomes)
	// The mutations reach every check: frames come through, and each kind
	// of refusal is met.
	for _, code := range []string{"", "ErrShort", "ErrMagic", "ErrVersion", "ErrKind", "ErrCodec", "ErrFlags", "ErrHeaderLen",
		"ErrLength", "ErrTooBig", "ErrSize", "ErrPayload", "ErrMetadata", "ErrJPEG", "ErrPixels", "ErrRendition"} {
		if outcomes[code] == 0 {
			t.Errorf("no mutation gave %q; the mutations do not reach that check", code)
		}
	}
}
