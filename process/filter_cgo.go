//go:build cgo

package process

import (
	"fmt"
	"io"
	"strings"

	"framehub/publisher"
)

// filterStep runs one of the publisher's filters (gray, blur=K,
// edges[=LO:HI], overlay) as a step. They change the picture, not its
// geometry, so the boxes stay where they are.
type filterStep struct {
	spec string
	name string
	f    publisher.Filter
}

func newFilterStep(spec string) (Step, error) {
	f, err := publisher.ParseFilter(spec)
	if err != nil {
		return nil, fmt.Errorf("step %w", err)
	}
	name, _, _ := strings.Cut(spec, "=")
	return &filterStep{spec: spec, name: name, f: f}, nil
}

func (s *filterStep) Name() string { return s.name }

func (s *filterStep) Clone() (Step, error) { return newFilterStep(s.spec) }

func (s *filterStep) Apply(f *Frame) error {
	pf := publisher.Frame{Mat: f.Mat, Seq: f.Seq, Captured: f.Captured, Channel: f.Channel}
	if err := s.f.Apply(&pf); err != nil {
		return err
	}
	f.Mat = pf.Mat
	f.Changed = true
	return nil
}

func (s *filterStep) Close() error {
	if c, ok := s.f.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
