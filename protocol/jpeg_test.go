package protocol

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// encodeJPEG returns a real baseline JPEG of w×h from the standard encoder.
func encodeJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// segment returns a marker segment: FF m, a length, and body.
func segment(m byte, body ...byte) []byte {
	n := len(body) + 2
	return append([]byte{0xFF, m, byte(n >> 8), byte(n)}, body...)
}

// sof returns a frame header body of the given size with one component.
func sof(w, h int) []byte {
	return []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 1, 1, 0x11, 0}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var (
	soi = []byte{0xFF, 0xD8}
	eoi = []byte{0xFF, 0xD9}
	sos = segment(0xDA, 1, 1, 0, 0, 63, 0)
)

func TestJPEGSize(t *testing.T) {
	real := encodeJPEG(t, 33, 17)
	for _, c := range []struct {
		name string
		in   []byte
		w, h int
		err  error
	}{
		{"encoder_output", real, 33, 17, nil},
		{"baseline_sof0", cat(soi, segment(0xC0, sof(640, 480)...), sos, eoi), 640, 480, nil},
		{"progressive_sof2", cat(soi, segment(0xC2, sof(1920, 1080)...), sos, eoi), 1920, 1080, nil},
		{"arithmetic_sof9", cat(soi, segment(0xC9, sof(7, 9)...), sos), 7, 9, nil},
		{"lossless_sof3", cat(soi, segment(0xC3, sof(100, 1)...), sos), 100, 1, nil},
		{"app_and_com_before", cat(soi, segment(0xE0, []byte("JFIF\x00")...), segment(0xFE, bytes.Repeat([]byte("x"), 3000)...),
			segment(0xC0, sof(2, 3)...), sos), 2, 3, nil},
		{"fill_bytes", cat(soi, []byte{0xFF, 0xFF, 0xFF}, segment(0xC0, sof(5, 6)...), sos), 5, 6, nil},
		{"dht_is_not_sof", cat(soi, segment(0xC4, 0, 0), segment(0xC0, sof(8, 8)...), sos), 8, 8, nil},
		{"dimension_bomb", cat(soi, segment(0xC0, sof(16384, 16384)...), sos), 16384, 16384, nil},

		{"empty", nil, 0, 0, ErrJPEG},
		{"no_soi", cat(segment(0xC0, sof(2, 2)...)), 0, 0, ErrJPEG},
		{"soi_only", soi, 0, 0, ErrJPEG},
		{"no_sof_before_sos", cat(soi, segment(0xDB, 0, 1), sos), 0, 0, ErrJPEG},
		{"no_sof_before_eoi", cat(soi, eoi), 0, 0, ErrJPEG},
		{"two_sofs", cat(soi, segment(0xC0, sof(2, 2)...), segment(0xC2, sof(9000, 9000)...), sos), 0, 0, ErrJPEG},
		{"zero_height_dnl", cat(soi, segment(0xC0, sof(640, 0)...), sos), 0, 0, ErrJPEG},
		{"short_sof", cat(soi, segment(0xC0, 8, 0, 1), sos), 0, 0, ErrJPEG},
		{"length_overrun", cat(soi, []byte{0xFF, 0xC0, 0xFF, 0xF0, 8}), 0, 0, ErrJPEG},
		{"length_below_two", cat(soi, []byte{0xFF, 0xE0, 0x00, 0x01}, segment(0xC0, sof(2, 2)...)), 0, 0, ErrJPEG},
		{"cut_in_length", cat(soi, []byte{0xFF, 0xE0, 0x00}), 0, 0, ErrJPEG},
		{"garbage_between", cat(soi, []byte{0x12}, segment(0xC0, sof(2, 2)...)), 0, 0, ErrJPEG},
		{"second_soi", cat(soi, soi, segment(0xC0, sof(2, 2)...)), 0, 0, ErrJPEG},
		{"cut_after_sof", cat(soi, segment(0xC0, sof(2, 2)...)), 0, 0, ErrJPEG},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, h, err := JPEGSize(c.in)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("JPEGSize = %dx%d, %v; want %v", w, h, err, c.err)
				}
				return
			}
			if err != nil || w != c.w || h != c.h {
				t.Fatalf("JPEGSize = %dx%d, %v; want %dx%d", w, h, err, c.w, c.h)
			}
		})
	}
}

func TestJPEGSizeAllocatesNothing(t *testing.T) {
	b := encodeJPEG(t, 64, 48)
	if n := testing.AllocsPerRun(100, func() { JPEGSize(b) }); n != 0 {
		t.Fatalf("JPEGSize allocates %.0f times; want 0", n)
	}
}

func TestDimensionBombRefused(t *testing.T) {
	// A 600-byte JPEG whose frame header says 16x16 but whose SOF says
	// 16384x16384: the attack the hub once relayed.
	bomb := cat(soi, segment(0xFE, bytes.Repeat([]byte{0}, 560)...), segment(0xC0, sof(16384, 16384)...), sos, eoi)
	f := Frame{Header: Header{Codec: CodecJPEG, Width: 16, Height: 16}, Payload: bomb}
	_, err := ParseMessage(AppendFrame(nil, &f), DefaultLimits)
	if !errors.Is(err, ErrJPEG) {
		t.Fatalf("mismatched SOF: err = %v; want ErrJPEG", err)
	}
	// Consistent but huge: refused by the pixel limit.
	f.Width, f.Height = 16384, 16384
	_, err = ParseMessage(AppendFrame(nil, &f), DefaultLimits)
	if !errors.Is(err, ErrPixels) {
		t.Fatalf("16384x16384: err = %v; want ErrPixels", err)
	}
	// 8K UHD is allowed by default.
	f.Payload = cat(soi, segment(0xC0, sof(7680, 4320)...), sos, eoi)
	f.Width, f.Height = 7680, 4320
	if _, err = ParseMessage(AppendFrame(nil, &f), DefaultLimits); err != nil {
		t.Fatalf("8K UHD: %v", err)
	}
}

// FuzzJPEGSize checks that the SOF parser never panics, and that a size it
// returns is what the standard library's decoder reads from the same
// bytes whenever that decoder accepts them.
func FuzzJPEGSize(f *testing.F) {
	f.Add(encodeJPEG(f, 33, 17))
	f.Add(cat(soi, segment(0xC2, sof(1920, 1080)...), sos, eoi))
	f.Add(cat(soi, segment(0xC0, sof(2, 2)...), segment(0xC2, sof(9000, 9000)...), sos))
	f.Add(cat(soi, []byte{0xFF, 0xFF, 0xD0}, segment(0xC0, sof(5, 6)...), sos))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, h, err := JPEGSize(b)
		if err != nil {
			return
		}
		if w <= 0 || h <= 0 || w > 65535 || h > 65535 {
			t.Fatalf("JPEGSize returned %dx%d", w, h)
		}
		if cfg, err := jpeg.DecodeConfig(bytes.NewReader(b)); err == nil && (cfg.Width != w || cfg.Height != h) {
			t.Fatalf("JPEGSize = %dx%d; image/jpeg reads %dx%d", w, h, cfg.Width, cfg.Height)
		}
	})
}
