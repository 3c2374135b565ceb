package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
)

// PatternFrames JPEG-encodes n distinct pictures of the built-in pattern
// once, up front, so that publishing costs the load generator nothing but
// the send. Gradients plus a little noise give files about the size of a
// camera's (about 90 KB at 1280x720, quality 80).
func PatternFrames(w, h, quality, n int) ([][]byte, error) {
	if w < 16 || h < 16 || w > 7680 || h > 4320 {
		return nil, fmt.Errorf("frame size %dx%d: use 16x16 to 7680x4320", w, h)
	}
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("quality %d: use 1 to 100", quality)
	}
	out := make([][]byte, n)
	for k := range n {
		r := rand.New(rand.NewPCG(uint64(k), 7))
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				i := img.PixOffset(x, y)
				noise := uint8(r.IntN(10))
				img.Pix[i] = uint8((x+k*8)*255/w) + noise
				img.Pix[i+1] = uint8(y*255/h) + noise
				img.Pix[i+2] = uint8((x+y)*255/(w+h)) + noise
				img.Pix[i+3] = 255
			}
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
			return nil, err
		}
		out[k] = b.Bytes()
	}
	return out, nil
}
