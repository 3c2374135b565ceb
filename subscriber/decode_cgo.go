//go:build cgo

package subscriber

import (
	"fmt"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// DecodeMat decodes a frame's picture into dst as 8-bit BGR, BGRA or gray:
// JPEG through OpenCV's decoder, raw pixels by copying them into a Mat of
// the frame's shape. It is DecodeMatLimit with the default pixel limit,
// protocol.DefaultMaxPixels.
func DecodeMat(f *protocol.Frame, dst *gocv.Mat) error {
	return DecodeMatLimit(f, dst, 0)
}

// DecodeMatLimit is DecodeMat with a pixel limit. It first checks the size
// the decoder would allocate with PictureSize, and refuses a picture past
// maxPixels (0 means protocol.DefaultMaxPixels) with an error wrapping
// protocol.ErrPixels before anything is allocated. dst is replaced only on
// success; the caller owns it and must Close it.
func DecodeMatLimit(f *protocol.Frame, dst *gocv.Mat, maxPixels uint64) error {
	w, h, err := PictureSize(f, maxPixels)
	if err != nil {
		return err
	}
	switch f.Codec {
	case protocol.CodecJPEG:
		m, err := gocv.IMDecode(f.Payload, gocv.IMReadUnchanged)
		if err != nil || m.Empty() || m.Cols() != w || m.Rows() != h {
			m.Close()
			return fmt.Errorf("frame %d: cannot decode jpeg", f.Seq)
		}
		dst.Close()
		*dst = m
		return nil
	case protocol.CodecRaw:
		if f.ElemType != protocol.ElemUint8 {
			return fmt.Errorf("frame %d: raw element type %d is not shown", f.Seq, f.ElemType)
		}
		var typ gocv.MatType
		switch f.Channels {
		case 1:
			typ = gocv.MatTypeCV8UC1
		case 3:
			typ = gocv.MatTypeCV8UC3
		case 4:
			typ = gocv.MatTypeCV8UC4
		default:
			return fmt.Errorf("frame %d: raw frames with %d channels are not shown", f.Seq, f.Channels)
		}
		m, err := gocv.NewMatFromBytes(int(f.Height), int(f.Width), typ, f.Payload)
		if err != nil {
			return fmt.Errorf("frame %d: %w", f.Seq, err)
		}
		// NewMatFromBytes may alias the payload; the caller may reuse it.
		dst.Close()
		*dst = m.Clone()
		m.Close()
		return nil
	}
	return fmt.Errorf("frame %d: codec %v is not shown", f.Seq, f.Codec)
}
