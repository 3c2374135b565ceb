//go:build cgo

package publisher

import (
	"context"
	"fmt"
	"io"

	"gocv.io/x/gocv"

	"framehub/protocol"
)

// stdinSource decodes the JPEGs of a Motion JPEG stream on stdin (bare
// JPEGs, as ffmpeg -f mjpeg and libcamera-vid write them, or multipart),
// so that they can be processed (OpenSource("-")). Without processing, a
// Relay passes them through without decoding.
type stdinSource struct {
	mr        *protocol.MJPEGReader
	interrupt func()
	restore   func()
}

func openStdinSource() (Source, error) {
	in, interrupt, restore, err := openStdin()
	if err != nil {
		return nil, err
	}
	mr := protocol.NewMJPEGReader(in, protocol.MJPEGOptions{MaxJPEG: protocol.DefaultLimits.MaxFrameBytes})
	return &stdinSource{mr: mr, interrupt: interrupt, restore: restore}, nil
}

func (s *stdinSource) String() string { return "stdin" }

// Read decodes the next JPEG of the stream into m. A JPEG whose frame
// header states more than 8K UHD is refused before it is decoded.
func (s *stdinSource) Read(ctx context.Context, m *gocv.Mat) error {
	stop := context.AfterFunc(ctx, s.interrupt) // a blocked read of stdin returns
	defer stop()
	p, err := s.mr.Next()
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("stdin: %w", err)
	}
	w, h, err := protocol.JPEGSize(p.JPEG)
	if err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	if px := uint64(w) * uint64(h); px > protocol.DefaultMaxPixels {
		return fmt.Errorf("stdin: a %dx%d JPEG is larger than 8K UHD", w, h)
	}
	dec, err := gocv.IMDecode(p.JPEG, gocv.IMReadColor)
	if err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	if dec.Empty() {
		dec.Close()
		return fmt.Errorf("stdin: OpenCV cannot decode a %dx%d JPEG of the stream", w, h)
	}
	dec.CopyTo(m)
	return dec.Close()
}

func (s *stdinSource) Close() error {
	s.mr.Close()
	s.restore()
	return nil
}
