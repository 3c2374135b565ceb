package protocol

import (
	"bufio"
	"fmt"
	"io"
)

// Reader reads frames from a byte stream such as a TCP connection, where
// frames follow one another with no delimiter. Each frame's header states
// its length; Reader checks that length against its limits before it
// allocates or reads the body, then reads until the whole body has arrived.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	lim Limits
	hdr [HeaderLen]byte
}

// NewReader returns a Reader that reads from r with the given limits.
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), lim: lim}
}

// ReadFrame reads the next frame. The returned frame owns a fresh buffer
// that later calls do not touch. At the end of the stream, before any byte
// of a new frame, it returns io.EOF; a frame cut short returns
// io.ErrUnexpectedEOF. Any other error wraps one of the package's sentinels
// and leaves the stream at an unknown position: stop reading.
func (r *Reader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Frame{}, err
	}
	h, err := ParseHeader(r.hdr[:])
	if err != nil {
		return Frame{}, err
	}
	if err := r.lim.check(&h); err != nil {
		return Frame{}, err
	}
	// A newer sender may have a longer header; skip what v1 does not know.
	if extra := int64(h.HeaderLen) - HeaderLen; extra > 0 {
		if _, err := io.CopyN(io.Discard, r.r, extra); err != nil {
			return Frame{}, unexpected(err)
		}
	}
	body := make([]byte, h.BodyLen())
	if _, err := io.ReadFull(r.r, body); err != nil {
		return Frame{}, unexpected(err)
	}
	f := Frame{Header: h, Payload: body[h.MetaLen:]}
	if h.MetaLen > 0 {
		f.Meta = body[:h.MetaLen:h.MetaLen]
	}
	if err := checkBody(&f); err != nil {
		return Frame{}, err
	}
	return f, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Writer writes frames to a byte stream. It reuses one buffer for the
// header, so writing a frame allocates nothing. Not safe for concurrent use.
type Writer struct {
	w   io.Writer
	hdr [HeaderLen]byte
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteFrame writes f with a version 1 header, setting its length fields
// from Meta and Payload.
func (w *Writer) WriteFrame(f *Frame) error {
	h := f.Header
	h.HeaderLen = HeaderLen
	h.MetaLen = uint32(len(f.Meta))
	h.PayloadLen = uint32(len(f.Payload))
	PutHeader(w.hdr[:], h)
	for _, b := range [][]byte{w.hdr[:], f.Meta, f.Payload} {
		if len(b) == 0 {
			continue
		}
		if _, err := w.w.Write(b); err != nil {
			return fmt.Errorf("write frame: %w", err)
		}
	}
	return nil
}
