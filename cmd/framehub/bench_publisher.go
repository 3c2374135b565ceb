package main

import (
	"errors"
	"strconv"

	"github.com/urfave/cli/v2"

	"framehub/bench"
)

// framehub bench --publisher: the publisher's CPU per sent frame against a
// bare gocv loop on the same clip (package bench runs and reports it; this
// file tells it how to start each side). Both sides need OpenCV, so the
// build without it says so before any load runs.

func benchPublisherFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "publisher", Usage: "also compare the publisher's CPU per sent frame with a bare gocv read+encode loop on the same clip, each alone on one core (needs the OpenCV build, ffmpeg and taskset)", EnvVars: []string{"FRAMEHUB_BENCH_PUBLISHER"}},
		&cli.StringFlag{Name: "publisher-sizes", Value: "1280x720,1920x1080", Usage: "with --publisher: sizes of the generated clips (ffmpeg testsrc2, MJPEG)", EnvVars: []string{"FRAMEHUB_BENCH_PUBLISHER_SIZES"}},
		&cli.StringFlag{Name: "publisher-clip", Usage: "with --publisher: a video file to use instead of generated clips", EnvVars: []string{"FRAMEHUB_BENCH_PUBLISHER_CLIP"}},
		&cli.IntFlag{Name: "publisher-frames", Value: 600, Usage: "with --publisher: frames in each generated clip (30 fps)", EnvVars: []string{"FRAMEHUB_BENCH_PUBLISHER_FRAMES"}},
		&cli.IntFlag{Name: "publisher-runs", Value: 3, Usage: "with --publisher: runs per size, the two sides alternating; the report gives each and the median", EnvVars: []string{"FRAMEHUB_BENCH_PUBLISHER_RUNS"}},
		&cli.StringFlag{Name: "publisher-renditions", Usage: "with --publisher: also run the publisher with --renditions WIDTHS (e.g. 640,320) and report its CPU per frame against the plain publisher's", EnvVars: []string{"FRAMEHUB_BENCH_PUBLISHER_RENDITIONS"}},
		&cli.IntFlag{Name: "publisher-cpu", Value: -1, Usage: "with --publisher: the core both sides run on (-1: the last one; the hub runs on another)", EnvVars: []string{"FRAMEHUB_BENCH_PUBLISHER_CPU"}},
	}
}

// benchPublisherConfig checks the --publisher flags and returns what
// bench.RunPublisher needs, or nil without --publisher.
func benchPublisherConfig(c *cli.Context, exe string) (*bench.PublisherConfig, error) {
	if !c.Bool("publisher") {
		return nil, nil
	}
	if !benchPublisherBuild {
		return nil, errors.New("framehub bench --publisher needs OpenCV (its two sides read and encode video), and this binary was built " +
			"without it (CGO_ENABLED=0): build with cgo and libopencv-dev (bash scripts/setup.sh; go build ./cmd/framehub)")
	}
	if c.Int("cluster") > 0 {
		return nil, errors.New("--publisher runs with the single-hub benchmark, not --cluster")
	}
	if _, err := parseWidths(c.String("publisher-renditions")); err != nil {
		return nil, errors.New("--publisher-renditions: " + err.Error())
	}
	cfg := &bench.PublisherConfig{
		Clip: c.String("publisher-clip"), Frames: c.Int("publisher-frames"), Quality: c.Int("quality"),
		Runs: c.Int("publisher-runs"), CPU: c.Int("publisher-cpu"), Renditions: c.String("publisher-renditions"),
		BareCommand: func(clip string, q int) []string {
			return []string{exe, "--log-format", "json", "--log-level", "info", "bench-encode", "--source", clip, "--quality", strconv.Itoa(q)}
		},
		BareReady: "bench-encode ready",
		PublishCommand: func(hub, channel, clip string, q int) []string {
			return []string{exe, "--log-format", "json", "--log-level", "info", "publish", "--hub", hub, "--channel", channel,
				"--source", clip, "--quality", strconv.Itoa(q), "--connect-timeout", "10s"}
		},
		PublishReady: "publishing",
		HubCommand:   []string{exe, "--log-format", "json", "--log-level", "info", "hub", "--listen", "127.0.0.1:0"},
		HubReady:     "hub listening",
		Progress:     c.App.ErrWriter, Logger: logger(c),
	}
	if cfg.Clip == "" {
		sizes, err := bench.ParseSizes(c.String("publisher-sizes"))
		if err != nil {
			return nil, errors.New("--publisher-sizes: " + err.Error())
		}
		cfg.Sizes = sizes
	}
	return cfg, nil
}
