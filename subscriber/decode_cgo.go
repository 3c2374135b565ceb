//go:build cgo

package subscriber

import (
	"fmt"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// DecodeMat decodes a frame's picture into dst as 8-bit BGR or gray: JPEG
// through OpenCV's decoder, raw pixels by copying them into a Mat of the
// frame's shape. dst is replaced; the caller owns it and must Close it.
func DecodeMat(f *protocol.Frame, dst *gocv.Mat) error {
	switch f.Codec {
	case protocol.CodecJPEG:
		m, err := gocv.IMDecode(f.Payload, gocv.IMReadUnchanged)
		if err != nil || m.Empty() {
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
