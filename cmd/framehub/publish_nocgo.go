//go:build !cgo

package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// openCVBuild says this binary has no OpenCV: publish relays MJPEG only.
const openCVBuild = false

// runOpenCVPublish is never reached without OpenCV: publishAction refuses
// what would need it first.
func runOpenCVPublish(*cli.Context) error {
	return errors.New("this framehub was built without OpenCV")
}
