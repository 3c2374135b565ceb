//go:build cgo

package publisher_test

import (
	"context"
	"image"
	"image/color"

	"gocv.io/x/gocv"

	"framehub/publisher"
)

// leftHalfBlank is the filter the README shows: it blanks the left half of
// every frame, drawing in place.
type leftHalfBlank struct{}

func (leftHalfBlank) Apply(f *publisher.Frame) error {
	r := image.Rect(0, 0, f.Mat.Cols()/2, f.Mat.Rows())
	gocv.Rectangle(f.Mat, r, color.RGBA{0, 0, 0, 0}, -1)
	return nil
}

// A user-defined filter runs after the built-in processing steps.
func ExampleFilter() {
	run := func(ctx context.Context) error {
		p, err := publisher.New(publisher.Config{
			Source: "0",
			Filter: []publisher.Filter{leftHalfBlank{}},
			Sender: publisher.SenderConfig{Hub: "http://127.0.0.1:8080", Channel: "cam"},
		})
		if err != nil {
			return err
		}
		defer p.Close()
		return p.Run(ctx)
	}
	_ = run
}
