//go:build cgo

package main

import "github.com/urfave/cli/v2"

// cgoCommands returns the commands that need OpenCV.
func cgoCommands() []*cli.Command {
	return []*cli.Command{publishCommand(), viewCommand(), recordCommand(), demoCommand()}
}
