package protocol

import (
	"encoding/binary"
	"fmt"
)

// JPEG markers the size parser needs (ITU-T T.81, table B.1).
const (
	jpegSOI  = 0xD8 // start of image
	jpegEOI  = 0xD9 // end of image
	jpegSOS  = 0xDA // start of scan: entropy-coded data follows
	jpegTEM  = 0x01 // standalone
	jpegRST0 = 0xD0 // RST0..RST7 are standalone
	jpegRST7 = 0xD7
	jpegDHT  = 0xC4 // in the SOFn range, but not a frame header
	jpegJPG  = 0xC8 // reserved, not a frame header
	jpegDAC  = 0xCC // arithmetic coding conditioning, not a frame header
)

// isSOF reports whether marker m is a start-of-frame marker (SOF0..SOF15:
// baseline, extended, progressive, lossless, hierarchical, arithmetic),
// whose segment states the picture's size.
func isSOF(m byte) bool {
	return m >= 0xC0 && m <= 0xCF && m != jpegDHT && m != jpegJPG && m != jpegDAC
}

// JPEGSize reads the picture size a decoder will use from a JPEG file's
// frame header (its SOFn segment), without decoding anything. It walks the
// marker segments from SOI up to the first scan, so a decoder cannot be made
// to allocate for a size the frame's own header does not state. It returns
// an error wrapping ErrJPEG for a stream with no SOI, a truncated or
// malformed segment, no frame header before the first scan, more than one
// frame header, or a zero width or height (a height set later by a DNL
// marker is not supported). It never panics and allocates nothing.
func JPEGSize(b []byte) (width, height int, err error) {
	if len(b) < 2 || b[0] != 0xFF || b[1] != jpegSOI {
		return 0, 0, fmt.Errorf("%w: no SOI marker", ErrJPEG)
	}
	found := false
	i := 2
	for {
		// A marker is 0xFF followed by a code; any number of 0xFF fill bytes
		// may come first.
		if i >= len(b) {
			break
		}
		if b[i] != 0xFF {
			return 0, 0, fmt.Errorf("%w: expected a marker at byte %d", ErrJPEG, i)
		}
		for i < len(b) && b[i] == 0xFF {
			i++
		}
		if i >= len(b) {
			break
		}
		m := b[i]
		i++
		switch {
		case m == jpegTEM || (m >= jpegRST0 && m <= jpegRST7):
			continue // standalone: no length
		case m == jpegSOI || m == 0x00:
			return 0, 0, fmt.Errorf("%w: unexpected marker %#02x at byte %d", ErrJPEG, m, i-1)
		case m == jpegEOI || m == jpegSOS:
			if !found {
				return 0, 0, fmt.Errorf("%w: no frame header (SOF) before the image data", ErrJPEG)
			}
			return width, height, nil
		}
		if i+2 > len(b) {
			break
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 || i+n > len(b) {
			return 0, 0, fmt.Errorf("%w: segment %#02x of %d bytes at byte %d overruns the file", ErrJPEG, m, n, i-2)
		}
		if isSOF(m) {
			// length(2) precision(1) height(2) width(2) components(1) ...
			if n < 8 {
				return 0, 0, fmt.Errorf("%w: frame header of %d bytes", ErrJPEG, n)
			}
			if found {
				return 0, 0, fmt.Errorf("%w: more than one frame header", ErrJPEG)
			}
			found = true
			height = int(binary.BigEndian.Uint16(b[i+3:]))
			width = int(binary.BigEndian.Uint16(b[i+5:]))
			if width == 0 || height == 0 {
				return 0, 0, fmt.Errorf("%w: frame header says %dx%d", ErrJPEG, width, height)
			}
		}
		i += n
	}
	return 0, 0, fmt.Errorf("%w: file ends before the image data", ErrJPEG)
}

// checkJPEG checks that the frame header inside a JPEG payload states the
// size the frame's own header does, so that a decoder trusting either
// allocates the same.
func checkJPEG(h *Header, payload []byte) error {
	if len(payload) < 2 || payload[0] != 0xFF || payload[1] != jpegSOI {
		return fmt.Errorf("%w: jpeg payload does not start with SOI (FF D8)", ErrPayload)
	}
	w, ht, err := JPEGSize(payload)
	if err != nil {
		return err
	}
	if uint32(w) != h.Width || uint32(ht) != h.Height {
		return fmt.Errorf("%w: the JPEG is %dx%d but the header says %dx%d", ErrJPEG, w, ht, h.Width, h.Height)
	}
	return nil
}
