//go:build cgo

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/urfave/cli/v2"
	"gocv.io/x/gocv"
)

// benchPublisherBuild says this binary can run framehub bench --publisher:
// both of its sides (bench-encode and publish from a file) need OpenCV.
const benchPublisherBuild = true

// benchEncodeCommand is the bare side of framehub bench --publisher: it
// reads every frame of a clip with gocv.VideoCapture and JPEG-encodes it
// with gocv.IMEncodeWithParams, and does nothing else, so that its CPU per
// frame is what a publisher cannot avoid. It paces itself to the clip's
// frame rate exactly as the publisher's file source does (a camera
// delivers frames at its rate), unless --no-pace. The benchmark starts it
// as a child process pinned to one core.
func benchEncodeCommand() *cli.Command {
	return &cli.Command{
		Name:   "bench-encode",
		Hidden: true,
		Usage:  "read every frame of a clip and JPEG-encode it, nothing else (the bare side of bench --publisher)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "source", Required: true, Usage: "video file"},
			&cli.IntFlag{Name: "quality", Value: 80, Usage: "JPEG quality"},
			&cli.BoolFlag{Name: "no-pace", Usage: "read as fast as possible instead of at the clip's frame rate"},
		},
		Action: func(c *cli.Context) error {
			quietOpenCV(c)
			path := c.String("source")
			vc, err := gocv.VideoCaptureFileWithAPI(path, gocv.VideoCaptureFFmpeg)
			if err != nil || !vc.IsOpened() {
				if vc != nil {
					vc.Close()
				}
				return fmt.Errorf("cannot read video file %s: OpenCV could not open it as video", path)
			}
			defer vc.Close()
			// The same frame interval as the publisher's file source.
			var every time.Duration
			if !c.Bool("no-pace") {
				fps := vc.Get(gocv.VideoCaptureFPS)
				if fps <= 0 || fps > 1000 || math.IsNaN(fps) {
					fps = 30
				}
				every = time.Duration(float64(time.Second) / fps)
			}
			params := []int{gocv.IMWriteJpegQuality, c.Int("quality")}
			m := gocv.NewMat()
			defer m.Close()
			logger(c).Info("bench-encode ready", "source", path)
			var frames, bytes, w, h int
			var next time.Time
			for {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				if !vc.Read(&m) || m.Empty() {
					break
				}
				if every > 0 {
					now := time.Now()
					if next.IsZero() || now.Sub(next) > time.Second {
						next = now
					}
					next = next.Add(every)
				}
				buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, params)
				if err != nil {
					return fmt.Errorf("jpeg encode: %w", err)
				}
				bytes += buf.Len()
				buf.Close()
				if frames == 0 {
					w, h = m.Cols(), m.Rows()
				}
				frames++
			}
			if frames == 0 {
				return fmt.Errorf("%s: no frame could be read", path)
			}
			return json.NewEncoder(c.App.Writer).Encode(map[string]int{"frames": frames, "bytes": bytes, "width": w, "height": h})
		},
	}
}
