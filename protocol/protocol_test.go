package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden and the fuzz seed corpus")

// captureTime is a fixed instant (2026-01-02T03:04:05.000000006Z) so the
// golden vectors do not change between runs.
const captureTime int64 = 1767323045000000006

// tcase is one row of the table that drives encoding, decoding, the golden
// vectors (which the browser decoder's test reads too) and the fuzz seeds.
type tcase struct {
	name  string
	frame Frame  // for valid cases: what the bytes decode to
	bytes []byte // the message
	err   error  // for invalid cases: the sentinel ParseMessage returns
}

// jpegStub returns the smallest stream JPEGSize reads as w×h: SOI, a
// baseline frame header (SOF0) with one component, EOI. It is not
// decodable; the hub and the parsers never decode.
func jpegStub(w, h int) []byte {
	return []byte{0xFF, 0xD8,
		0xFF, 0xC0, 0x00, 0x0B, 0x08, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 0x01, 0x01, 0x11, 0x00,
		0xFF, 0xD9}
}

func frameCases() []tcase {
	valid := []struct {
		name string
		f    Frame
	}{
		{"jpeg_minimal", Frame{Header: Header{Codec: CodecJPEG, Flags: FlagKey, Width: 4, Height: 2, Seq: 1, CaptureTime: captureTime}, Payload: jpegStub(4, 2)}},
		{"jpeg_metadata", Frame{Header: Header{Codec: CodecJPEG, Flags: FlagKey, Width: 1280, Height: 720, Seq: 0x0102030405060708, CaptureTime: captureTime},
			Meta: []byte(`{"boxes":[{"x":10,"y":20,"w":30,"h":40,"label":"cat"}]}`), Payload: jpegStub(1280, 720)}},
		{"raw_bgr_2x2", Frame{Header: Header{Codec: CodecRaw, Flags: FlagKey, ElemType: ElemUint8, Channels: 3, Width: 2, Height: 2, Seq: 7, CaptureTime: captureTime},
			Payload: []byte{0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255}}},
		{"raw_gray_u16", Frame{Header: Header{Codec: CodecRaw, ElemType: ElemUint16, Channels: 1, Width: 2, Height: 1, Seq: 9, CaptureTime: -1},
			Payload: []byte{0x34, 0x12, 0xff, 0xff}}},
		// A rendition: a 320-wide copy of a frame, with its boxes in its
		// own pixels. 0x0140 in bytes 44-45.
		{"jpeg_rendition", Frame{Header: Header{Codec: CodecJPEG, Flags: FlagKey, Width: 320, Height: 180, Seq: 0x0102030405060708,
			CaptureTime: captureTime, Rendition: 320},
			Meta: []byte(`{"boxes":[{"x":3,"y":5,"w":8,"h":10,"label":"cat"}]}`), Payload: jpegStub(320, 180)}},
		// Raw pixels may be a rendition too: rendition 6, a 6x1 gray strip.
		{"raw_rendition", Frame{Header: Header{Codec: CodecRaw, Flags: FlagKey, ElemType: ElemUint8, Channels: 1, Width: 6, Height: 1,
			Seq: 3, CaptureTime: captureTime, Rendition: 6}, Payload: []byte{0, 50, 100, 150, 200, 250}}},
	}
	var cs []tcase
	for _, v := range valid {
		b := AppendFrame(nil, &v.f)
		f := v.f
		f.Version, f.Kind, f.HeaderLen = Version, KindFrame, HeaderLen
		f.MetaLen, f.PayloadLen = uint32(len(f.Meta)), uint32(len(f.Payload))
		cs = append(cs, tcase{name: v.name, frame: f, bytes: b})
	}
	base := cs[0].bytes
	mut := func(name string, err error, edit func(b []byte) []byte) {
		b := edit(bytes.Clone(base))
		cs = append(cs, tcase{name: name, bytes: b, err: err})
	}
	mut("bad_magic", ErrMagic, func(b []byte) []byte { b[0] = 'X'; return b })
	mut("bad_version", ErrVersion, func(b []byte) []byte { b[4] = 2; return b })
	mut("bad_kind", ErrKind, func(b []byte) []byte { b[5] = 9; return b })
	mut("bad_codec", ErrCodec, func(b []byte) []byte { b[6] = 77; return b })
	mut("reserved_flags", ErrFlags, func(b []byte) []byte { b[7] = 0x81; return b })
	mut("reserved_bytes", ErrFlags, func(b []byte) []byte { b[46] = 1; return b })
	mut("reserved_byte_47", ErrFlags, func(b []byte) []byte { b[47] = 0x80; return b })
	// jpeg_minimal is 4 pixels wide: as rendition 320 (0x0140) it lies.
	mut("rendition_width_mismatch", ErrRendition, func(b []byte) []byte { b[44], b[45] = 0x01, 0x40; return b })
	// Rendition 4 is exactly 4 wide; rendition 2 is not.
	mut("rendition_narrower_than_name", ErrRendition, func(b []byte) []byte { b[45] = 8; return b })
	mut("header_len_small", ErrHeaderLen, func(b []byte) []byte { b[8], b[9] = 0, 20; return b })
	mut("short", ErrShort, func(b []byte) []byte { return b[:HeaderLen-1] })
	mut("truncated_payload", ErrLength, func(b []byte) []byte { return b[:len(b)-1] })
	mut("trailing_bytes", ErrLength, func(b []byte) []byte { return append(b, 0) })
	mut("jpeg_without_soi", ErrPayload, func(b []byte) []byte { b[HeaderLen] = 0; return b })
	mut("zero_width", ErrSize, func(b []byte) []byte { copy(b[12:16], []byte{0, 0, 0, 0}); return b })
	mut("huge_declared_payload", ErrTooBig, func(b []byte) []byte { copy(b[40:44], []byte{0xff, 0xff, 0xff, 0xf0}); return b })
	mut("metadata_not_object", ErrMetadata, func(b []byte) []byte {
		f := cs[0].frame
		f.Meta = []byte(`[1,2]`)
		return AppendFrame(nil, &f)
	})
	mut("metadata_not_utf8", ErrMetadata, func(b []byte) []byte {
		f := cs[0].frame
		f.Meta = []byte("{\"label\":\"caf\xe9\"}") // Latin-1, not UTF-8
		return AppendFrame(nil, &f)
	})
	jpegCase := func(name string, err error, w, h uint32, payload []byte) {
		f := cs[0].frame
		f.Width, f.Height, f.Payload = w, h, payload
		cs = append(cs, tcase{name: name, bytes: AppendFrame(nil, &f), err: err})
	}
	// The dimension bomb: a small JPEG whose own frame header is far larger
	// than the frame header says.
	jpegCase("jpeg_sof_mismatch", ErrJPEG, 16, 16, jpegStub(8000, 8000))
	jpegCase("jpeg_no_sof", ErrJPEG, 4, 2, []byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9})
	jpegCase("jpeg_truncated_segment", ErrJPEG, 4, 2, jpegStub(4, 2)[:8])
	jpegCase("too_many_pixels", ErrPixels, 4096, 2048, jpegStub(4096, 2048))
	mut("raw_size_mismatch", ErrPayload, func(b []byte) []byte {
		f := cs[2].frame
		f.Payload = f.Payload[:11]
		return AppendFrame(nil, &f)
	})
	return cs
}

// testLimits are small so that the too-big cases stay small.
var testLimits = Limits{MaxFrameBytes: 1 << 20, MaxMetaBytes: 4096, MaxDimension: 8192, MaxPixels: 4 << 20}

func TestParseMessage(t *testing.T) {
	for _, c := range frameCases() {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseMessage(c.bytes, testLimits)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("ParseMessage error = %v; want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if got.Header != c.frame.Header {
				t.Errorf("header = %+v; want %+v", got.Header, c.frame.Header)
			}
			if !bytes.Equal(got.Meta, c.frame.Meta) || !bytes.Equal(got.Payload, c.frame.Payload) {
				t.Errorf("body = %q, %x; want %q, %x", got.Meta, got.Payload, c.frame.Meta, c.frame.Payload)
			}
			if re := AppendFrame(nil, &got); !bytes.Equal(re, c.bytes) {
				t.Errorf("re-encoding differs:\n got %x\nwant %x", re, c.bytes)
			}
		})
	}
}

func TestHeaderExtensionSkipped(t *testing.T) {
	// A later version may send a longer header; v1 readers skip the extra bytes.
	f := frameCases()[1].frame
	b := AppendFrame(nil, &f)
	ext := append(bytes.Clone(b[:HeaderLen]), 0xAA, 0xBB, 0xCC, 0xDD)
	ext = append(ext, b[HeaderLen:]...)
	ext[8], ext[9] = 0, HeaderLen+4
	got, err := ParseMessage(ext, testLimits)
	if err != nil {
		t.Fatalf("ParseMessage: %v", err)
	}
	if !bytes.Equal(got.Payload, f.Payload) || !bytes.Equal(got.Meta, f.Meta) {
		t.Fatalf("got meta %q payload %x; want %q %x", got.Meta, got.Payload, f.Meta, f.Payload)
	}
	rf, err := NewReader(bytes.NewReader(ext), testLimits).ReadFrame()
	if err != nil || !bytes.Equal(rf.Payload, f.Payload) {
		t.Fatalf("Reader: %v, payload %x", err, rf.Payload)
	}
}

func TestStreamRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	w := NewWriter(&stream)
	var want []Frame
	for _, c := range frameCases() {
		if c.err == nil {
			if err := w.WriteFrame(&c.frame); err != nil {
				t.Fatal(err)
			}
			want = append(want, c.frame)
		}
	}
	// One byte per Read: the reader must loop until each body is complete
	// (a single recv(n) per body, the classic bug, breaks on any frame
	// bigger than what one read returns).
	r := NewReader(iotest.OneByteReader(bytes.NewReader(stream.Bytes())), testLimits)
	for i, wf := range want {
		got, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.Header != wf.Header || !bytes.Equal(got.Payload, wf.Payload) || !bytes.Equal(got.Meta, wf.Meta) {
			t.Fatalf("frame %d = %+v; want %+v", i, got, wf)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after last frame: err = %v; want io.EOF", err)
	}
}

func TestStreamErrors(t *testing.T) {
	good := frameCases()[0].bytes
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"cut_in_header", good[:10], io.ErrUnexpectedEOF},
		{"cut_in_body", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"bad_magic", append([]byte("XXXX"), good[4:]...), ErrMagic},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(c.in), testLimits).ReadFrame()
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v; want %v", err, c.want)
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestStreamRejectsBeforeReadingBody(t *testing.T) {
	// A header that declares a 4 GiB payload, followed by an endless body: the
	// reader must refuse after the header without allocating or reading on.
	h := Header{Codec: CodecJPEG, Width: 4, Height: 4, PayloadLen: 0xFFFFFFF0}
	hdr := make([]byte, HeaderLen)
	PutHeader(hdr, h)
	src := &countingReader{r: io.MultiReader(bytes.NewReader(hdr), iotest.OneByteReader(zeros{}))}
	_, err := NewReader(iotest.OneByteReader(src), testLimits).ReadFrame()
	if !errors.Is(err, ErrTooBig) {
		t.Fatalf("err = %v; want ErrTooBig", err)
	}
	if src.n > HeaderLen+64<<10 {
		t.Fatalf("read %d bytes before refusing; want at most the header plus one buffer", src.n)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	NewReader(bytes.NewReader(hdr), testLimits).ReadFrame()
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("allocated %d bytes to refuse an oversized frame; want only the reader's own buffer", n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestWriterAllocatesNothing(t *testing.T) {
	f := frameCases()[1].frame
	w := NewWriter(io.Discard)
	if n := testing.AllocsPerRun(100, func() { w.WriteFrame(&f) }); n != 0 {
		t.Fatalf("WriteFrame allocates %.0f times; want 0", n)
	}
}

func TestParseControl(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Control
		ok   bool
	}{
		{`{"op":"credit","window":2}`, Control{Op: OpCredit, Window: 2}, true},
		{`{"op":"ack","seq":42}`, Control{Op: OpAck, Seq: 42}, true},
		{`{"op":"credit","window":-1}`, Control{}, false},
		{`{"op":"exec"}`, Control{}, false},
		{`not json`, Control{}, false},
		{`{"op":"ack","pad":"` + strings.Repeat("x", MaxControlBytes) + `"}`, Control{}, false},
		{`{"op":"rendition","max_width":320}`, Control{Op: OpRendition, MaxWidth: 320}, true},
		{`{"op":"rendition","rendition":"main"}`, Control{Op: OpRendition, Rendition: "main"}, true},
		{`{"op":"rendition","rendition":"640"}`, Control{Op: OpRendition, Rendition: "640"}, true},
		{`{"op":"rendition"}`, Control{}, false},
		{`{"op":"rendition","max_width":0,"rendition":""}`, Control{}, false},
		{`{"op":"rendition","max_width":-1}`, Control{}, false},
		{`{"op":"rendition","max_width":65536}`, Control{}, false},
		{`{"op":"rendition","max_width":1e300}`, Control{}, false},
		{`{"op":"rendition","max_width":320.5}`, Control{}, false},
		{`{"op":"rendition","max_width":"320"}`, Control{}, false},
		{`{"op":"rendition","rendition":"0"}`, Control{}, false},
		{`{"op":"rendition","rendition":320}`, Control{}, false},
		{`{"op":"rendition","rendition":"320","max_width":320}`, Control{}, false},
	} {
		got, err := ParseControl([]byte(c.in))
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("ParseControl(%.40q) = %+v, %v; want %+v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestParseAck(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{`{"op":"ack","seq":42}`, 42, true},
		{`{"op":"ack","seq":0}`, 0, true},
		{"{\"op\":\"ack\",\"seq\":7}\n", 7, true}, // gorilla's WriteJSON
		{`{"op":"ack","seq":18446744073709551615}`, 1<<64 - 1, true},
		{`{"op":"ack","seq":18446744073709551616}`, 0, false}, // past uint64
		{`{"op":"ack","seq":042}`, 0, false},                  // not JSON
		{`{"op":"ack","seq":}`, 0, false},
		{`{"op":"ack","seq":4`, 0, false},
		{`{"op":"ack","seq":4}x`, 0, false},
		{`{"op":"ack","seq":-4}`, 0, false},
		{`{"op":"ack","seq":4.0}`, 0, false},
		{`{"op":"ack","seq":4,"seq":5}`, 0, false}, // ParseControl's business
		{`{"seq":4,"op":"ack"}`, 0, false},
		{`{"op":"ack","seq":1}` + strings.Repeat(" ", MaxControlBytes), 0, false},
	} {
		got, ok := ParseAck([]byte(c.in))
		if ok != c.ok || got != c.want {
			t.Errorf("ParseAck(%.40q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// FuzzParseAck: whatever ParseAck accepts, ParseControl reads as the same
// ack, so the hub's fast path never accepts what the full parser would
// refuse or read differently.
func FuzzParseAck(f *testing.F) {
	for _, s := range []string{`{"op":"ack","seq":42}`, "{\"op\":\"ack\",\"seq\":7}\n", `{"op":"ack","seq":18446744073709551616}`,
		`{"op":"ack","seq":042}`, `{"op":"credit","window":2}`, `{"op":"ack","seq":1} ` + "\t\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, ok := ParseAck(b)
		if !ok {
			return
		}
		c, err := ParseControl(b)
		if err != nil || c.Op != OpAck || c.Seq != seq {
			t.Fatalf("ParseAck(%q) = %d; ParseControl = %+v, %v", b, seq, c, err)
		}
	})
}

// goldenVector is one entry of testdata/golden/vectors.json, the index the
// browser decoder's test reads as well.
type goldenVector struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Error string `json:"error,omitempty"` // sentinel name, e.g. "ErrMagic"
	// Expected decoded fields, for valid vectors.
	Codec       string  `json:"codec,omitempty"`
	Width       uint32  `json:"width,omitempty"`
	Height      uint32  `json:"height,omitempty"`
	Seq         string  `json:"seq,omitempty"`          // decimal: exceeds JavaScript's safe integers
	CaptureTime string  `json:"capture_time,omitempty"` // decimal Unix ns
	Flags       uint8   `json:"flags,omitempty"`
	ElemType    uint8   `json:"elem_type,omitempty"`
	Channels    uint8   `json:"channels,omitempty"`
	Meta        string  `json:"meta,omitempty"`
	PayloadHex  string  `json:"payload_hex,omitempty"`
	Rendition   *uint16 `json:"rendition,omitempty"` // set for every valid vector, 0 included
}

// sentinelName maps the sentinels to stable names shared with the browser.
var sentinelNames = map[error]string{
	ErrShort: "ErrShort", ErrMagic: "ErrMagic", ErrVersion: "ErrVersion", ErrKind: "ErrKind",
	ErrCodec: "ErrCodec", ErrFlags: "ErrFlags", ErrHeaderLen: "ErrHeaderLen", ErrLength: "ErrLength",
	ErrTooBig: "ErrTooBig", ErrSize: "ErrSize", ErrPayload: "ErrPayload", ErrMetadata: "ErrMetadata",
	ErrJPEG: "ErrJPEG", ErrPixels: "ErrPixels", ErrRendition: "ErrRendition",
}

func vectorsFor(cs []tcase) []goldenVector {
	var vs []goldenVector
	for _, c := range cs {
		v := goldenVector{Name: c.name, File: c.name + ".bin"}
		if c.err != nil {
			v.Error = sentinelNames[c.err]
		} else {
			f := c.frame
			v.Codec, v.Width, v.Height = f.Codec.String(), f.Width, f.Height
			v.Seq, v.CaptureTime = fmt.Sprint(f.Seq), fmt.Sprint(f.CaptureTime)
			v.Flags, v.ElemType, v.Channels = uint8(f.Flags), uint8(f.ElemType), f.Channels
			v.Meta, v.PayloadHex = string(f.Meta), fmt.Sprintf("%x", f.Payload)
			r := uint16(f.Rendition)
			v.Rendition = &r
		}
		vs = append(vs, v)
	}
	return vs
}

// TestGolden checks the committed byte vectors against the case table, and
// with -update rewrites them and the fuzz seed corpus.
func TestGolden(t *testing.T) {
	cs := frameCases()
	dir := filepath.Join("testdata", "golden")
	idx, err := json.MarshalIndent(map[string]any{
		"limits": map[string]any{"max_frame_bytes": testLimits.MaxFrameBytes, "max_meta_bytes": testLimits.MaxMetaBytes,
			"max_dimension": testLimits.MaxDimension, "max_pixels": testLimits.MaxPixels},
		"vectors": vectorsFor(cs),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	idx = append(idx, '\n')
	if *update {
		os.RemoveAll(dir)
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "vectors.json"), idx, 0o644))
		for _, c := range cs {
			must(t, os.WriteFile(filepath.Join(dir, c.name+".bin"), c.bytes, 0o644))
		}
		writeCorpus(t, "FuzzParseMessage", cs, func(c tcase) []byte { return c.bytes })
		writeCorpus(t, "FuzzReader", cs, func(c tcase) []byte { return append(bytes.Clone(c.bytes), c.bytes...) })
	}
	got, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		t.Fatalf("%v (run go test ./protocol -run TestGolden -update)", err)
	}
	if !bytes.Equal(got, idx) {
		t.Errorf("vectors.json is stale; run go test ./protocol -run TestGolden -update")
	}
	for _, c := range cs {
		b, err := os.ReadFile(filepath.Join(dir, c.name+".bin"))
		if err != nil || !bytes.Equal(b, c.bytes) {
			t.Errorf("%s.bin differs from the case table (err %v)", c.name, err)
		}
	}
}

func writeCorpus(t *testing.T, fuzz string, cs []tcase, data func(tcase) []byte) {
	dir := filepath.Join("testdata", "fuzz", fuzz)
	os.RemoveAll(dir)
	must(t, os.MkdirAll(dir, 0o755))
	for _, c := range cs {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data(c))
		must(t, os.WriteFile(filepath.Join(dir, c.name), []byte(body), 0o644))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzParseMessage checks that the message parser never panics and that
// whatever it accepts re-encodes to the same bytes.
func FuzzParseMessage(f *testing.F) {
	for _, c := range frameCases() {
		f.Add(c.bytes)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseMessage(b, testLimits)
		if err != nil {
			return
		}
		if fr.HeaderLen == HeaderLen {
			if re := AppendFrame(nil, &fr); !bytes.Equal(re, b) {
				t.Fatalf("accepted %x but re-encodes to %x", b, re)
			}
		}
	})
}

// FuzzReader checks that the stream reader never panics, never returns a
// frame larger than its limit, and stops at the first error.
func FuzzReader(f *testing.F) {
	for _, c := range frameCases() {
		f.Add(append(bytes.Clone(c.bytes), c.bytes...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), testLimits)
		for i := 0; i <= len(b)/HeaderLen; i++ {
			fr, err := r.ReadFrame()
			if err != nil {
				return
			}
			if FrameLen(&fr) > testLimits.MaxFrameBytes {
				t.Fatalf("frame of %d bytes passed a %d limit", FrameLen(&fr), testLimits.MaxFrameBytes)
			}
		}
	})
}

func TestChannelNames(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"cam1", true}, {"Front_door-2", true}, {strings.Repeat("a", 64), true},
		{"", false}, {strings.Repeat("a", 65), false}, {"..", false}, {"%2e%2e", false},
		{"a/b", false}, {"a\x00b", false}, {"<b>x</b>", false}, {"caméra", false}, {"a b", false},
	} {
		if got := ValidChannelName(c.name); got != c.ok {
			t.Errorf("ValidChannelName(%q) = %v; want %v", c.name, got, c.ok)
		}
	}
}

func TestChannelURL(t *testing.T) {
	for _, c := range []struct{ hub, want string }{
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws/subscribe/cam"},
		{"https://example.org/", "wss://example.org/ws/subscribe/cam"},
		{"ws://h:1", "ws://h:1/ws/subscribe/cam"},
		{"wss://h:1/base", "wss://h:1/base/ws/subscribe/cam"},
		{"127.0.0.1:9000", "ws://127.0.0.1:9000/ws/subscribe/cam"},
	} {
		got, err := ChannelURL(c.hub, PathSubscribe, "cam")
		if err != nil || got != c.want {
			t.Errorf("ChannelURL(%q) = %q, %v; want %q", c.hub, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "ftp://h", "http://", "http://u:p@h", "http://h/?token=x"} {
		if _, err := ChannelURL(bad, PathSubscribe, "cam"); err == nil {
			t.Errorf("ChannelURL(%q) accepted; want an error", bad)
		}
	}
	if _, err := ChannelURL("http://h", PathSubscribe, "../x"); err == nil {
		t.Errorf("ChannelURL accepted a bad channel name")
	}
}

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"http://hub:8080/channels/cam/stream.mjpeg?token=fh1.cam.v.123.abc", "http://hub:8080/channels/cam/stream.mjpeg?token=REDACTED"},
		{"rtsp://admin:hunter2@10.0.0.9:554/stream1", "rtsp://REDACTED@10.0.0.9:554/stream1"},
		{"https://cam.example/x?a=1&key=s3cret&b=2", "https://cam.example/x?a=1&key=REDACTED&b=2"},
		{"clip.mp4", "clip.mp4"},
		{"http://h/path@not-userinfo", "http://h/path@not-userinfo"},
	} {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestRenditionNames(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Rendition
		ok   bool
	}{
		{"main", RenditionMain, true}, {"320", 320, true}, {"1", 1, true}, {"65535", 65535, true},
		{"0", 0, false}, {"65536", 0, false}, {"-320", 0, false}, {"+320", 0, false}, {"0320", 0, false},
		{"320.0", 0, false}, {" 320", 0, false}, {"", 0, false}, {"Main", 0, false}, {"1e3", 0, false},
		{"99999999999999999999", 0, false}, {"３２０", 0, false},
	} {
		got, err := ParseRendition(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseRendition(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
		if c.ok && got.String() != c.in {
			t.Errorf("Rendition(%d).String() = %q; want %q", got, got.String(), c.in)
		}
		if err != nil && !errors.Is(err, ErrRenditionName) {
			t.Errorf("ParseRendition(%q) error %v is not ErrRenditionName", c.in, err)
		}
	}
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"320", 320, true}, {"1", 1, true}, {"65535", 65535, true},
		{"0", 0, false}, {"-1", 0, false}, {"65536", 0, false}, {"1e9", 0, false}, {"abc", 0, false},
		{"", 0, false}, {"320px", 0, false}, {"18446744073709551616", 0, false},
	} {
		got, err := ParseMaxWidth(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseMaxWidth(%q) = %d, %v; want %d ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestPickRendition(t *testing.T) {
	full := []RenditionSize{{RenditionMain, 1280}, {640, 640}, {320, 320}}
	for _, c := range []struct {
		name string
		have []RenditionSize
		want RenditionWant
		got  Rendition
		ok   bool
	}{
		{"fits exactly", full, RenditionWant{MaxWidth: 320}, 320, true},
		{"next wider", full, RenditionWant{MaxWidth: 321}, 640, true},
		{"smaller than all", full, RenditionWant{MaxWidth: 1}, 320, true},
		{"main fits", full, RenditionWant{MaxWidth: 1000}, RenditionMain, true},
		{"wider than all: the widest", full, RenditionWant{MaxWidth: 4000}, RenditionMain, true},
		{"main only", full[:1], RenditionWant{MaxWidth: 320}, RenditionMain, true},
		{"main of unknown width is the widest", []RenditionSize{{320, 320}, {RenditionMain, 0}}, RenditionWant{MaxWidth: 400}, RenditionMain, true},
		{"no main: the widest rendition", full[1:], RenditionWant{MaxWidth: 1000}, 640, true},
		{"nothing", nil, RenditionWant{MaxWidth: 320}, 0, false},
		{"exact", full, RenditionWant{Rendition: 640}, 640, true},
		{"exact main", full, RenditionWant{}, RenditionMain, true},
		{"exact missing: wait", full, RenditionWant{Rendition: 480}, 0, false},
		{"main missing: wait", full[1:], RenditionWant{}, 0, false},
	} {
		got, ok := c.want.Pick(c.have)
		if got != c.got || ok != c.ok {
			t.Errorf("%s: %v.Pick(%v) = %v, %v; want %v, %v", c.name, c.want, c.have, got, ok, c.got, c.ok)
		}
	}
}

func TestParseRenditionWant(t *testing.T) {
	for _, c := range []struct {
		rendition, maxWidth string
		want                RenditionWant
		ok                  bool
	}{
		{"", "", RenditionWant{}, true},
		{"main", "", RenditionWant{}, true},
		{"320", "", RenditionWant{Rendition: 320}, true},
		{"", "640", RenditionWant{MaxWidth: 640}, true},
		{"320", "640", RenditionWant{}, false},
		{"", "0", RenditionWant{}, false},
		{"", "-5", RenditionWant{}, false},
		{"", "100000", RenditionWant{}, false},
		{"", "wide", RenditionWant{}, false},
		{"0", "", RenditionWant{}, false},
	} {
		got, err := ParseRenditionWant(c.rendition, c.maxWidth)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("ParseRenditionWant(%q, %q) = %+v, %v; want %+v ok=%v", c.rendition, c.maxWidth, got, err, c.want, c.ok)
		}
	}
}
