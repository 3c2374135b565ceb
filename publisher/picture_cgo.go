//go:build cgo

package publisher

import (
	"errors"
	"fmt"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// Pictures that leave a client. gocv v0.31.0 does not catch OpenCV's C++
// exceptions: one thrown from a resize, a colour conversion or the JPEG
// encoder aborts the whole process (SIGABRT). And a picture the hub
// refuses (a side past its limit, too many pixels) closes the connection
// (1007), so a source that keeps making such pictures would make its
// client reconnect forever. So a client that makes a picture (a resize, a
// filter, a processing step) checks it before OpenCV allocates or encodes
// it: what fails costs that frame, counted and logged, never the process
// or the connection.

// JPEGMaxSide is the longest side OpenCV's JPEG encoder takes; past it
// the encoder throws.
const JPEGMaxSide = 65500

// ErrPicture means a picture cannot be encoded and sent: it is empty, not
// 8-bit gray, BGR or BGRA, or larger than the hub takes.
var ErrPicture = errors.New("picture cannot be sent")

// CheckSize reports whether a w×h picture may be made for a hub with
// limits lim (as Sender.HubLimits returns them) and JPEG-encoded: each side
// within lim.MaxDimension and JPEGMaxSide, at most lim.MaxPixels. Call it
// before resizing to w×h, so that OpenCV never allocates a picture that
// could not be sent.
func CheckSize(w, h int, lim protocol.Limits) error {
	lim.MaxDimension = min(lim.MaxDimension, JPEGMaxSide)
	if err := lim.CheckSize(int64(w), int64(h)); err != nil {
		return fmt.Errorf("%w: %w", ErrPicture, err)
	}
	return nil
}

// CheckPicture reports whether m may be encoded and sent to a hub with
// limits lim: not empty, 8-bit with 1, 3 or 4 channels (what the encoders
// and the viewers take), and within CheckSize.
func CheckPicture(m *gocv.Mat, lim protocol.Limits) error {
	if m == nil || m.Empty() {
		return fmt.Errorf("%w: the picture is empty", ErrPicture)
	}
	if m.Type()&7 != gocv.MatTypeCV8U&7 {
		return fmt.Errorf("%w: the picture is not 8-bit (OpenCV type %v)", ErrPicture, m.Type())
	}
	if ch := m.Channels(); ch != 1 && ch != 3 && ch != 4 {
		return fmt.Errorf("%w: the picture has %d channels, not 1, 3 or 4", ErrPicture, ch)
	}
	return CheckSize(m.Cols(), m.Rows(), lim)
}
