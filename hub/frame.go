package hub

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image/jpeg"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// frame is one published frame. It is immutable once built, and exists
// once: buf holds, back to back, the WebSocket frame header the hub sends
// it with, then the frame exactly as the publisher sent it (header,
// metadata, payload). Every subscriber writes wire, every HTTP reader
// serves payload, and all of them alias buf.
type frame struct {
	hdr      protocol.Header
	meta     []byte // aliases buf
	payload  []byte // aliases buf
	msg      []byte // the frame as the publisher sent it; aliases buf
	wire     []byte // msg with its WebSocket framing in front; aliases buf
	size     int64  // bytes charged to the memory budget: cap(buf)
	received time.Time

	// Built on first use by an HTTP reader, then shared.
	jpegOnce sync.Once
	jpeg     []byte // payload for JPEG frames, encoded once for raw frames
	part     []byte // multipart headers of the MJPEG part holding jpeg
	jpegErr  error

	// WebSocket subscribers the frame was published to, and its memory
	// file for sendfile, made by the first writer that wants it and owned
	// as sendfile.go says.
	fanout    int
	fileMu    sync.Mutex                // guards fileTried and retired, and orders them with file
	fileTried bool                      // a writer tried to make the file
	retired   bool                      // the channel let go of the frame: no new file, no new sendfile
	file      atomic.Pointer[frameFile] // set once, under fileMu
}

// newFrame builds a frame from buf, whose first wsRoom bytes are free and
// whose rest is the message that f was parsed from. It writes the
// WebSocket header of a final binary frame into the room, right before the
// message.
func newFrame(buf []byte, f protocol.Frame, now time.Time) *frame {
	msg := buf[wsRoom:]
	var room [wsRoom]byte
	hdr := appendWSHeader(room[:0], websocket.BinaryMessage, len(msg))
	start := wsRoom - len(hdr)
	copy(buf[start:], hdr)
	return &frame{hdr: f.Header, meta: f.Meta, payload: f.Payload, msg: msg, wire: buf[start:],
		size: int64(cap(buf)), received: now}
}

// appendWSHeader appends the header of an unmasked, final WebSocket frame
// of the given opcode and payload length (RFC 6455 §5.2): 2 to 10 bytes.
// The hub writes every frame it sends with such a header in front (see
// wsConn): it never masks, and never fragments.
func appendWSHeader(b []byte, opcode, n int) []byte {
	b = append(b, 0x80|byte(opcode)) // FIN
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// wsMessage returns payload as one WebSocket frame of the given opcode: a
// control frame (ping, pong, close) or a text message.
func wsMessage(opcode int, payload []byte) []byte {
	return append(appendWSHeader(make([]byte, 0, 10+len(payload)), opcode, len(payload)), payload...)
}

// mjpegBoundary separates the parts of the MJPEG stream.
const mjpegBoundary = "framehub-frame"

// jpegBytes returns the frame as a JPEG file and the multipart part header
// for it, building them once. Raw 8-bit gray, BGR and BGRA frames are
// encoded here, once for all HTTP readers, so that snapshots and MJPEG work
// for raw channels too. The part carries the frame's sequence number and
// capture time (X-Frame-Seq, X-Capture-Time in Unix ns, and X-Timestamp in
// Unix seconds with a fraction, as several MJPEG clients read it).
func (f *frame) jpegBytes() (jpg, part []byte, err error) {
	f.jpegOnce.Do(func() {
		f.jpeg = f.payload
		if f.hdr.Codec == protocol.CodecRaw {
			f.jpeg, f.jpegErr = encodeRaw(f.hdr, f.payload)
		}
		if f.jpegErr == nil {
			f.part = []byte("--" + mjpegBoundary + "\r\nContent-Type: image/jpeg\r\nContent-Length: " +
				strconv.Itoa(len(f.jpeg)) + "\r\nX-Frame-Seq: " + strconv.FormatUint(f.hdr.Seq, 10) +
				"\r\nX-Capture-Time: " + strconv.FormatInt(f.hdr.CaptureTime, 10) +
				"\r\nX-Timestamp: " + unixSeconds(f.hdr.CaptureTime) + "\r\n\r\n")
		}
	})
	return f.jpeg, f.part, f.jpegErr
}

// unixSeconds formats Unix nanoseconds as seconds with six decimals.
func unixSeconds(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 6, 64)
}

// encodeRaw converts a raw 8-bit frame to JPEG at quality 85.
func encodeRaw(h protocol.Header, px []byte) ([]byte, error) {
	img, err := protocol.RawImage(h, px)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		return nil, fmt.Errorf("encode raw frame as jpeg: %w", err)
	}
	return buf.Bytes(), nil
}
