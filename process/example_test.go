//go:build cgo

package process_test

import (
	"context"

	"framehub/process"
	"framehub/protocol"
)

// tooDark is the step the README shows: it marks frames too dark to be
// useful with a box over the whole picture.
type tooDark struct{}

func (tooDark) Name() string { return "too-dark" }

func (tooDark) Apply(f *process.Frame) error {
	m := f.Mat.Mean() // per channel: B, G, R (or gray)
	if m.Val1 < 40 && (f.Mat.Channels() == 1 || m.Val2 < 40 && m.Val3 < 40) {
		f.Meta.Boxes = append(f.Meta.Boxes, protocol.Box{
			W: float64(f.Mat.Cols()), H: float64(f.Mat.Rows()), Label: "too dark"})
	}
	return nil // detection only: the input's JPEG is published as it came
}

// A step of your own runs like the built-in ones, after them or before.
func ExampleStep() {
	run := func(ctx context.Context) error {
		p, err := process.New(process.Config{
			Hub: "http://127.0.0.1:8080", In: "door", Out: "door-checked",
			Steps: []process.Step{tooDark{}},
		})
		if err != nil {
			return err
		}
		defer p.Close()
		return p.Run(ctx)
	}
	_ = run
}
