//go:build cgo

package publisher_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"net/http/httptest"
	"time"

	"gocv.io/x/gocv"

	"framehub/hub"
	"framehub/publisher"
	"framehub/subscriber"
)

// leftHalfBlank is the filter the README shows: it blanks the left half of
// every frame, drawing in place.
type leftHalfBlank struct{}

func (leftHalfBlank) Apply(f *publisher.Frame) error {
	r := image.Rect(0, 0, f.Mat.Cols()/2, f.Mat.Rows())
	gocv.Rectangle(f.Mat, r, color.RGBA{0, 0, 0, 0}, -1)
	return nil
}

// A user-defined filter runs after the built-in processing steps. Here the
// test pattern is published through it to a hub, and a subscriber decodes
// what arrived: the left half is black, the right half is the pattern.
func ExampleFilter() {
	h := hub.New(hub.Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	p, err := publisher.New(publisher.Config{
		Source: "test:320x240",
		Filter: []publisher.Filter{leftHalfBlank{}},
		Sender: publisher.SenderConfig{Hub: srv.URL, Channel: "cam"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	cl, _ := subscriber.New(subscriber.Config{Hub: srv.URL, Channel: "cam"})
	_ = cl.Run(ctx, func(f *subscriber.Frame) error {
		img, err := gocv.IMDecode(f.Payload, gocv.IMReadGrayScale)
		if err != nil {
			return err
		}
		defer img.Close()
		left := img.Region(image.Rect(0, 0, 160, 240))
		defer left.Close()
		right := img.Region(image.Rect(160, 0, 320, 240))
		defer right.Close()
		fmt.Printf("left half black: %v, right half drawn: %v\n", left.Mean().Val1 < 8, right.Mean().Val1 > 30)
		return subscriber.ErrStop
	})
	cancel()
	<-done
	// Output: left half black: true, right half drawn: true
}
