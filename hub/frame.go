package hub

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// frame is one published frame. It is immutable once built: every
// subscriber shares the same value, and the WebSocket framing is done once,
// in prepared, whatever the number of subscribers.
type frame struct {
	hdr      protocol.Header
	meta     []byte // aliases msg
	payload  []byte // aliases msg
	msg      []byte // the whole message as the publisher sent it
	prepared *websocket.PreparedMessage
	received time.Time // hub clock

	// Built on first use by an HTTP reader, then shared.
	jpegOnce sync.Once
	jpeg     []byte // payload for JPEG frames, encoded once for raw frames
	part     []byte // multipart headers of the MJPEG part holding jpeg
	jpegErr  error
}

func newFrame(msg []byte, f protocol.Frame, now time.Time) (*frame, error) {
	pm, err := websocket.NewPreparedMessage(websocket.BinaryMessage, msg)
	if err != nil {
		return nil, fmt.Errorf("prepare message: %w", err)
	}
	return &frame{hdr: f.Header, meta: f.Meta, payload: f.Payload, msg: msg, prepared: pm, received: now}, nil
}

// mjpegBoundary separates the parts of the MJPEG stream.
const mjpegBoundary = "framehub-frame"

// jpegBytes returns the frame as a JPEG file and the multipart part header
// for it, building them once. Raw 8-bit gray, BGR and BGRA frames are
// encoded here, once for all HTTP readers, so that snapshots and MJPEG work
// for raw channels too.
func (f *frame) jpegBytes() (jpg, part []byte, err error) {
	f.jpegOnce.Do(func() {
		f.jpeg = f.payload
		if f.hdr.Codec == protocol.CodecRaw {
			f.jpeg, f.jpegErr = encodeRaw(f.hdr, f.payload)
		}
		if f.jpegErr == nil {
			f.part = []byte("--" + mjpegBoundary + "\r\nContent-Type: image/jpeg\r\nContent-Length: " +
				strconv.Itoa(len(f.jpeg)) + "\r\nX-Frame-Seq: " + strconv.FormatUint(f.hdr.Seq, 10) +
				"\r\nX-Capture-Time: " + strconv.FormatInt(f.hdr.CaptureTime, 10) + "\r\n\r\n")
		}
	})
	return f.jpeg, f.part, f.jpegErr
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

// mailbox is a subscriber's one-slot inbox. A publisher puts the newest
// frame in it without ever waiting; a frame not yet taken when the next one
// arrives is overwritten and counted. Safe for concurrent use by one or more
// publishers and one taker.
type mailbox struct {
	slot        atomic.Pointer[frame]
	wake        chan struct{} // capacity 1: "look at the slot"
	overwritten atomic.Uint64
	delivered   atomic.Uint64 // frames the taker has sent on
}

func newMailbox() *mailbox { return &mailbox{wake: make(chan struct{}, 1)} }

// put stores f as the newest frame and wakes the taker.
func (m *mailbox) put(f *frame) {
	if old := m.slot.Swap(f); old != nil {
		m.overwritten.Add(1)
	}
	m.poke()
}

// poke wakes the taker without changing the slot.
func (m *mailbox) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// take empties the slot and returns what it held, or nil.
func (m *mailbox) take() *frame { return m.slot.Swap(nil) }
