//go:build !cgo

package main

import "github.com/urfave/cli/v2"

// cgoCommands returns, in a build without cgo, stand-ins for the commands
// that need OpenCV: asking for one says what to build instead.
func cgoCommands() []*cli.Command {
	return []*cli.Command{
		publishCommand(), // MJPEG from stdin or a URL; the rest says it needs OpenCV
		needsOpenCV("view", "show channels in native windows"),
		needsOpenCV("demo", "run a hub and a publisher in one process"),
		needsOpenCV("process", "run processing steps on a channel and publish the result to another"),
	}
}

// quietOpenCVLogs has nothing to silence in a build without OpenCV.
func quietOpenCVLogs(*cli.Context) {}
