//go:build cgo

package main

import "github.com/urfave/cli/v2"

// cgoCommands returns the commands that need OpenCV.
func cgoCommands() []*cli.Command {
	return []*cli.Command{publishCommand(), viewCommand(), demoCommand(), processCommand(), benchEncodeCommand()}
}

// quietOpenCVLogs silences OpenCV's console warnings for a command that
// may use OpenCV (record does for .avi and .mp4).
func quietOpenCVLogs(c *cli.Context) { quietOpenCV(c) }
