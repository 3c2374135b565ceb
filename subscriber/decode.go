package subscriber

import (
	"fmt"
	"time"

	"framehub/protocol"
)

// refusalLogEvery is the least time between two log lines about frames a
// viewer or recorder refuses; the ones in between are counted.
const refusalLogEvery = 10 * time.Second

// PictureSize returns the size of the picture a decoder of f allocates,
// read without decoding anything: from a JPEG's own frame header (its SOF
// segment), which must state the size f's header does, or from a raw
// frame's header, whose payload must hold exactly that shape. It refuses,
// with an error wrapping protocol.ErrPixels, a picture of more than
// maxPixels pixels (0 means protocol.DefaultMaxPixels), and a malformed
// frame with the protocol package's error for it. Every decoder calls it
// before it allocates, whatever the client that received f checked: a
// hub may allow larger frames than this decoder, and a Frame may come
// from elsewhere. It allocates nothing.
func PictureSize(f *protocol.Frame, maxPixels uint64) (width, height int, err error) {
	if maxPixels == 0 {
		maxPixels = protocol.DefaultMaxPixels
	}
	switch f.Codec {
	case protocol.CodecJPEG:
		width, height, err = protocol.JPEGSize(f.Payload)
		if err != nil {
			return 0, 0, fmt.Errorf("frame %d: %w", f.Seq, err)
		}
		if uint64(width) != uint64(f.Width) || uint64(height) != uint64(f.Height) {
			return 0, 0, fmt.Errorf("frame %d: %w: the JPEG is %dx%d but the header says %dx%d",
				f.Seq, protocol.ErrJPEG, width, height, f.Width, f.Height)
		}
	case protocol.CodecRaw:
		width, height = int(f.Width), int(f.Height)
		n, err := protocol.RawSize(width, height, int(f.Channels), f.ElemType)
		if err != nil {
			return 0, 0, fmt.Errorf("frame %d: %w", f.Seq, err)
		}
		if n != len(f.Payload) {
			return 0, 0, fmt.Errorf("frame %d: %w: raw %dx%dx%d needs %d bytes, got %d",
				f.Seq, protocol.ErrPayload, width, height, f.Channels, n, len(f.Payload))
		}
	default:
		return 0, 0, fmt.Errorf("frame %d: %w: %v", f.Seq, protocol.ErrCodec, f.Codec)
	}
	if px := uint64(width) * uint64(height); px > maxPixels {
		return 0, 0, fmt.Errorf("frame %d: %w: %dx%d is %d pixels, this decoder's limit is %d",
			f.Seq, protocol.ErrPixels, width, height, px, maxPixels)
	}
	return width, height, nil
}
