//go:build !cgo

package main

import "github.com/urfave/cli/v2"

// cgoCommands returns the commands that need OpenCV: none in a build
// without cgo, which serves hub and watch only.
func cgoCommands() []*cli.Command { return nil }

// quietOpenCVLogs has nothing to silence in a build without OpenCV.
func quietOpenCVLogs(*cli.Context) {}
