package protocol

import (
	"fmt"
	"image"
)

// RawImage returns the picture of a raw 8-bit frame as an image.Image: a
// *image.Gray for one channel, an *image.RGBA (BGR or BGRA swapped to RGB)
// for three or four. A gray image aliases px; a colour one is a copy.
func RawImage(h Header, px []byte) (image.Image, error) {
	if h.Codec != CodecRaw || h.ElemType != ElemUint8 {
		return nil, fmt.Errorf("%w: only raw 8-bit frames convert to an image", ErrCodec)
	}
	w, ht, ch := int(h.Width), int(h.Height), int(h.Channels)
	if len(px) != w*ht*ch {
		return nil, fmt.Errorf("%w: %d bytes for %dx%dx%d", ErrPayload, len(px), w, ht, ch)
	}
	switch ch {
	case 1:
		return &image.Gray{Pix: px, Stride: w, Rect: image.Rect(0, 0, w, ht)}, nil
	case 3, 4:
		rgba := image.NewRGBA(image.Rect(0, 0, w, ht))
		for i, j := 0, 0; i+ch <= len(px); i, j = i+ch, j+4 {
			rgba.Pix[j], rgba.Pix[j+1], rgba.Pix[j+2], rgba.Pix[j+3] = px[i+2], px[i+1], px[i], 255
		}
		return rgba, nil
	}
	return nil, fmt.Errorf("%w: raw frames with %d channels do not convert to an image", ErrCodec, ch)
}
