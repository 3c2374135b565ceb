package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"testing/iotest"

	"framehub/internal/testutil"
)

// Tricky but valid JPEGs for the splitter.
func exifJPEG(t testing.TB) []byte {
	// A JPEG whose APP1 (EXIF) segment holds a whole thumbnail JPEG, with
	// its own SOI and EOI: a splitter that searches for FF D9 cuts here.
	main, thumb := encodeJPEG(t, 40, 30), encodeJPEG(t, 8, 8)
	return cat(soi, segment(0xE1, append([]byte("Exif\x00\x00"), thumb...)...), main[2:])
}

var (
	// Restart markers, stuffed FF 00 and fill bytes in the scan data.
	restartJPEG = cat(soi, segment(0xC0, sof(16, 16)...), segment(0xDD, 0, 4), sos,
		[]byte{0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0xD1, 0x78, 0xFF, 0x00}, []byte{0xFF, 0xFF}, eoi)
	// Two scans with a table between them, as progressive JPEGs have.
	progressiveJPEG = cat(soi, segment(0xC2, sof(32, 8)...), sos, []byte{1, 2, 3, 0xFF, 0x00},
		segment(0xC4, 0, 1, 2), sos, []byte{4, 5, 6}, eoi)
)

// mpjpeg writes parts as ffmpeg's -f mpjpeg does: a boundary line, part
// headers, the data, CR LF, and the next boundary line after every part.
func mpjpeg(parts ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("--ffmpeg\r\n")
	for _, p := range parts {
		fmt.Fprintf(&b, "Content-type: image/jpeg\r\nContent-length: %d\r\n\r\n", len(p))
		b.Write(p)
		b.WriteString("\r\n--ffmpeg\r\n")
	}
	return b.Bytes()
}

// framehubStream writes parts as the hub's stream.mjpeg does, closing it.
func framehubStream(parts ...[]byte) []byte {
	var b bytes.Buffer
	for i, p := range parts {
		fmt.Fprintf(&b, "--framehub-frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\nX-Frame-Seq: %d\r\nX-Capture-Time: %d\r\n\r\n",
			len(p), i+7, 1700000000000000000+i)
		b.Write(p)
		b.WriteString("\r\n")
	}
	b.WriteString("--framehub-frame--\r\n")
	return b.Bytes()
}

// splitAll reads every part of a stream, copying each JPEG.
func splitAll(r io.Reader, opt MJPEGOptions) ([]MJPEGPart, error) {
	m := NewMJPEGReader(r, opt)
	defer m.Close()
	var out []MJPEGPart
	for {
		p, err := m.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		p.JPEG = bytes.Clone(p.JPEG)
		out = append(out, p)
	}
}

func TestMJPEGReader(t *testing.T) {
	a, b, x := encodeJPEG(t, 33, 17), encodeJPEG(t, 64, 48), exifJPEG(t)
	for _, c := range []struct {
		name string
		in   []byte
		opt  MJPEGOptions
		want [][]byte
		err  error
	}{
		{"bare", cat(a, b, a), MJPEGOptions{}, [][]byte{a, b, a}, nil},
		{"bare_declared", cat(a, b), MJPEGOptions{Bare: true}, [][]byte{a, b}, nil},
		{"bare_with_newlines", cat(a, []byte("\r\n"), b, []byte("\n")), MJPEGOptions{}, [][]byte{a, b}, nil},
		{"exif_thumbnail_is_not_the_end", cat(x, a, x), MJPEGOptions{}, [][]byte{x, a, x}, nil},
		{"restarts_stuffing_fill", cat(restartJPEG, restartJPEG), MJPEGOptions{}, [][]byte{restartJPEG, restartJPEG}, nil},
		{"progressive_scans", cat(progressiveJPEG, a), MJPEGOptions{}, [][]byte{progressiveJPEG, a}, nil},
		{"ffmpeg_mpjpeg_sniffed", mpjpeg(a, x, b), MJPEGOptions{}, [][]byte{a, x, b}, nil},
		{"ffmpeg_mpjpeg_boundary_given", mpjpeg(a, b), MJPEGOptions{Boundary: "ffmpeg"}, [][]byte{a, b}, nil},
		{"framehub_stream", framehubStream(a, b), MJPEGOptions{Boundary: "framehub-frame"}, [][]byte{a, b}, nil},
		{"no_content_length", []byte("--B\r\n\r\n" + string(a) + "\r\n--B\r\nContent-Type: image/jpeg\r\n\r\n" + string(b) + "\r\n--B--"),
			MJPEGOptions{Boundary: "B"}, [][]byte{a, b}, nil},
		{"preamble_and_epilogue", []byte("hello\r\n--B\r\n\r\n" + string(a) + "\r\n--B--\r\nbye"), MJPEGOptions{Boundary: "B"}, [][]byte{a}, nil},
		{"dashes_in_content_type_boundary", []byte("--myb\r\n\r\n" + string(a) + "\r\n--myb\r\n"), MJPEGOptions{Boundary: "--myb"}, [][]byte{a}, nil},
		{"length_counts_trailing_crlf", []byte("--B\r\nContent-Length: " + strconv.Itoa(len(a)+2) + "\r\n\r\n" + string(a) + "\r\n\r\n--B\r\n"),
			MJPEGOptions{Boundary: "B"}, [][]byte{a}, nil},
		{"single", a, MJPEGOptions{Bare: true, Single: true}, [][]byte{a}, nil},
		{"single_trailing_newline", cat(a, []byte("\n")), MJPEGOptions{Bare: true, Single: true}, [][]byte{a}, nil},

		{"empty", nil, MJPEGOptions{}, nil, ErrMJPEG},
		{"png", []byte("\x89PNG\r\n\x1a\n...."), MJPEGOptions{}, nil, ErrNotJPEG},
		{"text", []byte("hello, world"), MJPEGOptions{Bare: true}, nil, ErrNotJPEG},
		{"single_two_jpegs", cat(a, b), MJPEGOptions{Bare: true, Single: true}, nil, ErrMJPEG},
		{"single_garbage_after", cat(a, []byte("junk")), MJPEGOptions{Bare: true, Single: true}, nil, ErrMJPEG},
		{"truncated", a[:len(a)-10], MJPEGOptions{}, nil, ErrMJPEG},
		{"no_eoi_then_next_jpeg", cat(a[:len(a)-2], b), MJPEGOptions{}, [][]byte{}, ErrMJPEG},
		{"junk_between", cat(a, []byte("junk"), b), MJPEGOptions{}, [][]byte{a}, ErrMJPEG},
		{"too_big", cat(a, b), MJPEGOptions{MaxJPEG: len(a)}, [][]byte{a}, ErrTooBig},
		{"huge_segment_declared", cat(soi, []byte{0xFF, 0xE1, 0xFF, 0xFF}), MJPEGOptions{MaxJPEG: 1000}, nil, ErrTooBig},
		{"bad_segment_length", cat(soi, []byte{0xFF, 0xE1, 0x00, 0x01}, a), MJPEGOptions{}, nil, ErrJPEG},
		{"part_not_jpeg", []byte("--B\r\nContent-Length: 5\r\n\r\nhello\r\n--B\r\n"), MJPEGOptions{Boundary: "B"}, nil, ErrNotJPEG},
		{"part_text_type", []byte("--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B\r\n"), MJPEGOptions{Boundary: "B"}, nil, ErrNotJPEG},
		{"part_length_over_limit", []byte("--B\r\nContent-Length: 99999\r\n\r\n"), MJPEGOptions{Boundary: "B", MaxJPEG: 1000}, nil, ErrTooBig},
		{"part_without_eoi", []byte("--B\r\nContent-Length: " + strconv.Itoa(len(a)-2) + "\r\n\r\n" + string(a[:len(a)-2]) + "\r\n--B\r\n"),
			MJPEGOptions{Boundary: "B"}, nil, ErrMJPEG},
		{"part_bytes_after_eoi", []byte("--B\r\nContent-Length: " + strconv.Itoa(len(a)+3) + "\r\n\r\n" + string(a) + "abc\r\n--B\r\n"),
			MJPEGOptions{Boundary: "B"}, nil, ErrMJPEG},
		{"wrong_boundary", []byte("--X\r\n\r\n" + string(a)), MJPEGOptions{Boundary: "B"}, nil, ErrMJPEG},
		{"bad_capture_time", []byte("--B\r\nX-Capture-Time: yesterday\r\n\r\n" + string(a)), MJPEGOptions{Boundary: "B"}, nil, ErrMJPEG},
		{"header_without_colon", []byte("--B\r\nnonsense\r\n\r\n" + string(a)), MJPEGOptions{Boundary: "B"}, nil, ErrMJPEG},
		{"endless_header_line", append([]byte("--B\r\nX: "), bytes.Repeat([]byte("x"), 5000)...), MJPEGOptions{Boundary: "B"}, nil, ErrMJPEG},
		{"headers_then_eof", []byte("--B\r\nContent-Type: image/jpeg\r\n"), MJPEGOptions{Boundary: "B"}, nil, ErrMJPEG},
		{"no_boundary_line", []byte(string(a)), MJPEGOptions{Boundary: "B"}, nil, ErrMJPEG},
	} {
		t.Run(c.name, func(t *testing.T) {
			readers := map[string]func() io.Reader{
				"whole":    func() io.Reader { return bytes.NewReader(c.in) },
				"one_byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(c.in)) },
				"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(c.in)) },
				"data_err": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(c.in)) },
			}
			for rn, r := range readers {
				var charged int64
				opt := c.opt
				opt.Charge = func(d int64) error { charged += d; return nil }
				got, err := splitAll(r(), opt)
				if c.err != nil {
					if !errors.Is(err, c.err) {
						t.Fatalf("%s: err = %v; want %v", rn, err, c.err)
					}
				} else if err != nil {
					t.Fatalf("%s: %v", rn, err)
				}
				if c.want != nil || c.err == nil {
					if len(got) != len(c.want) {
						t.Fatalf("%s: %d JPEGs; want %d", rn, len(got), len(c.want))
					}
					for i := range got {
						if !bytes.Equal(got[i].JPEG, c.want[i]) {
							t.Fatalf("%s: JPEG %d is %d bytes; want the %d bytes sent", rn, i, len(got[i].JPEG), len(c.want[i]))
						}
					}
				}
				if charged != 0 {
					t.Fatalf("%s: %d bytes left charged after Close", rn, charged)
				}
			}
		})
	}
}

func TestMJPEGReaderPartHeaders(t *testing.T) {
	a := encodeJPEG(t, 8, 8)
	got, err := splitAll(bytes.NewReader(framehubStream(a, a)), MJPEGOptions{Boundary: "framehub-frame"})
	if err != nil || len(got) != 2 {
		t.Fatalf("%d parts, %v", len(got), err)
	}
	if got[0].Seq != 7 || got[1].Seq != 8 || got[0].CaptureTime != 1700000000000000000 || got[1].CaptureTime != 1700000000000000001 {
		t.Fatalf("parts say seq %d, %d, capture %d, %d; want 7, 8 and the X-Capture-Time sent",
			got[0].Seq, got[1].Seq, got[0].CaptureTime, got[1].CaptureTime)
	}
	got, _ = splitAll(bytes.NewReader(mpjpeg(a)), MJPEGOptions{})
	if got[0].Seq != 0 || got[0].CaptureTime != 0 {
		t.Fatalf("a part without those headers: seq %d, capture %d; want 0, 0", got[0].Seq, got[0].CaptureTime)
	}
}

// TestMJPEGReaderBoundsItsBuffer streams 64 MiB of 2 MiB JPEGs and checks
// that the buffer follows the JPEG size, not the stream's length, that a
// refused growth stops the reader, and that a buffer one big JPEG grew
// is given back once smaller ones follow.
func TestMJPEGReaderBoundsItsBuffer(t *testing.T) {
	big := cat(soi, segment(0xC0, sof(8, 8)...), sos, bytes.Repeat([]byte{0x11}, 2<<20), eoi)
	small := encodeJPEG(t, 8, 8)
	const n = 32
	var charged, peak int64
	r := io.MultiReader(iotest.HalfReader(testutil.Repeat(big, n)), bytes.NewReader(bytes.Repeat(small, 40)))
	m := NewMJPEGReader(r, MJPEGOptions{MaxJPEG: 4 << 20, Charge: func(d int64) error {
		charged += d
		peak = max(peak, charged)
		return nil
	}})
	for i := range n + 40 {
		p, err := m.Next()
		if err != nil {
			t.Fatalf("JPEG %d: %v", i, err)
		}
		if want := map[bool]int{true: len(big), false: len(small)}[i < n]; len(p.JPEG) != want {
			t.Fatalf("JPEG %d: %d bytes; want %d", i, len(p.JPEG), want)
		}
	}
	if peak > 2*int64(len(big))+2*mjpegSlack {
		t.Fatalf("peak buffer %d bytes for %d-byte JPEGs; want at most about twice one JPEG", peak, len(big))
	}
	if charged > 4*mjpegFirstBuf {
		t.Fatalf("buffer still %d bytes after 40 small JPEGs; want it shrunk", charged)
	}
	m.Close()
	if charged != 0 {
		t.Fatalf("%d bytes charged after Close", charged)
	}
	t.Logf("%d MiB of %d-byte JPEGs: peak buffer %.1f MiB", n*len(big)>>20, len(big), float64(peak)/(1<<20))

	refuse := errors.New("over budget")
	m = NewMJPEGReader(bytes.NewReader(big), MJPEGOptions{Charge: func(d int64) error {
		if d > 0 && charged+d > 1<<20 {
			return refuse
		}
		charged += d
		return nil
	}})
	if _, err := m.Next(); !errors.Is(err, refuse) {
		t.Fatalf("over the charge limit: %v; want the Charge error", err)
	}
	m.Close()
	if charged != 0 {
		t.Fatalf("%d bytes charged after Close", charged)
	}
}

func TestParseMJPEGContentType(t *testing.T) {
	for _, c := range []struct {
		ct   string
		want MJPEGOptions
		err  error
	}{
		{"", MJPEGOptions{}, nil},
		{"application/octet-stream", MJPEGOptions{}, nil},
		{"multipart/x-mixed-replace; boundary=ffmpeg", MJPEGOptions{Boundary: "ffmpeg"}, nil},
		{`multipart/x-mixed-replace;boundary="a b"`, MJPEGOptions{Boundary: "a b"}, nil},
		{"image/jpeg", MJPEGOptions{Bare: true}, nil},
		{"video/x-motion-jpeg", MJPEGOptions{Bare: true}, nil},
		{"multipart/x-mixed-replace", MJPEGOptions{}, ErrMJPEG},
		{"image/png", MJPEGOptions{}, ErrNotJPEG},
		{"application/x-www-form-urlencoded", MJPEGOptions{}, ErrNotJPEG},
		{"image/jpeg; ;;", MJPEGOptions{}, ErrNotJPEG},
	} {
		got, err := ParseMJPEGContentType(c.ct)
		if !errors.Is(err, c.err) || (err == nil && (got.Boundary != c.want.Boundary || got.Bare != c.want.Bare)) {
			t.Errorf("ParseMJPEGContentType(%q) = %+v, %v; want %+v, %v", c.ct, got, err, c.want, c.err)
		}
	}
}

// FuzzMJPEGReader splits arbitrary streams. It must never panic; what it
// returns must be whole JPEGs (SOI to EOI) within the limit; the result
// must not depend on how the bytes arrive; every byte charged must be
// released; and splitting the JPEGs it returned, put back together, must
// give the same JPEGs.
func FuzzMJPEGReader(f *testing.F) {
	a, x := encodeJPEG(f, 9, 7), exifJPEG(f)
	f.Add(cat(a, x), uint8(0), uint16(0))
	f.Add(mpjpeg(a, restartJPEG), uint8(0), uint16(0))
	f.Add(framehubStream(progressiveJPEG, a), uint8(3), uint16(0))
	f.Add(cat(restartJPEG, progressiveJPEG), uint8(1), uint16(200))
	f.Add(a, uint8(2), uint16(0))
	f.Add([]byte("--B\r\nContent-Length: 3\r\n\r\n\xff\xd8\xff\r\n--B--"), uint8(3), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, mode uint8, limit uint16) {
		opt := MJPEGOptions{MaxJPEG: 1 << 16}
		if limit > 0 {
			opt.MaxJPEG = int(limit)
		}
		switch mode % 4 {
		case 1:
			opt.Bare = true
		case 2:
			opt.Bare, opt.Single = true, true
		case 3:
			opt.Boundary = "B"
			if bytes.HasPrefix(in, []byte("--ffmpeg")) || bytes.HasPrefix(in, []byte("--framehub")) {
				opt.Boundary = string(bytes.TrimPrefix(bytes.Fields(in)[0], []byte("--")))
			}
		}
		var charged int64
		opt.Charge = func(d int64) error { charged += d; return nil }
		got, err := splitAll(bytes.NewReader(in), opt)
		if charged != 0 {
			t.Fatalf("%d bytes left charged", charged)
		}
		for i, p := range got {
			j := p.JPEG
			if len(j) < 4 || len(j) > opt.MaxJPEG || j[0] != 0xFF || j[1] != 0xD8 || j[len(j)-2] != 0xFF || j[len(j)-1] != 0xD9 {
				t.Fatalf("part %d is not a whole JPEG within %d bytes: % x…", i, opt.MaxJPEG, j[:min(len(j), 8)])
			}
		}
		slow, serr := splitAll(iotest.OneByteReader(bytes.NewReader(in)), opt)
		if (err == nil) != (serr == nil) || len(slow) != len(got) {
			t.Fatalf("byte by byte: %d parts, %v; at once: %d parts, %v", len(slow), serr, len(got), err)
		}
		for i := range got {
			if !bytes.Equal(slow[i].JPEG, got[i].JPEG) {
				t.Fatalf("part %d differs when read byte by byte", i)
			}
		}
		if len(got) == 0 {
			return
		}
		var joined []byte
		for _, p := range got {
			joined = append(joined, p.JPEG...)
		}
		again, err := splitAll(bytes.NewReader(joined), MJPEGOptions{Bare: true, MaxJPEG: opt.MaxJPEG})
		if err != nil || len(again) != len(got) {
			t.Fatalf("re-splitting %d JPEGs: %d, %v", len(got), len(again), err)
		}
		for i := range got {
			if !bytes.Equal(again[i].JPEG, got[i].JPEG) {
				t.Fatalf("re-split part %d differs", i)
			}
		}
	})
}
