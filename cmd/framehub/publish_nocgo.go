//go:build !cgo

package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// openCVBuild says this binary has no OpenCV: publish relays MJPEG, and
// camera streams through ffmpeg.
const openCVBuild = false

// autoDecoder says what --decoder auto picks: without OpenCV, ffmpeg is
// the only decoder.
const autoDecoder = "ffmpeg: this build has no OpenCV"

// runOpenCVPublish is never reached without OpenCV: publishAction refuses
// what would need it first.
func runOpenCVPublish(*cli.Context) error {
	return errors.New("this framehub was built without OpenCV")
}
