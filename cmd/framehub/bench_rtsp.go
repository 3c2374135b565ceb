package main

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"framehub/bench"
	"framehub/publisher"
)

// framehub bench --rtsp: the age framehub's RTSP path adds over ffmpeg
// reading the same camera alone (package bench, rtsp.go).

func benchRTSPFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "rtsp", Usage: "instead of the hub load: compare the frame age of framehub publish from an RTSP camera (the test camera, GStreamer) with ffmpeg reading it alone", EnvVars: []string{"FRAMEHUB_BENCH_RTSP"}},
		&cli.StringFlag{Name: "rtsp-size", Value: "1280x720", Usage: "with --rtsp: the camera's picture size", EnvVars: []string{"FRAMEHUB_BENCH_RTSP_SIZE"}},
		&cli.IntFlag{Name: "rtsp-fps", Value: 30, Usage: "with --rtsp: the camera's frame rate", EnvVars: []string{"FRAMEHUB_BENCH_RTSP_FPS"}},
		&cli.StringFlag{Name: "rtsp-decoders", Value: "ffmpeg", Usage: "with --rtsp: the publish --decoder values to compare (comma-separated; opencv needs the OpenCV build)", EnvVars: []string{"FRAMEHUB_BENCH_RTSP_DECODERS"}},
	}
}

// runBenchRTSP runs the RTSP comparison and prints it.
func runBenchRTSP(c *cli.Context, exe string) error {
	log := []string{exe, "--log-format", "json", "--log-level", "info"}
	runs := c.Int("runs")
	if !c.IsSet("runs") {
		runs = 3
	}
	cfg := bench.RTSPConfig{
		Size: c.String("rtsp-size"), FPS: c.Int("rtsp-fps"), Quality: c.Int("quality"), Runs: runs,
		Duration: c.Duration("duration"), Warmup: c.Duration("warmup"),
		FFmpegArgs: func(url string, q int) []string {
			return publisher.FFmpegArgs(url, publisher.FFmpegConfig{Quality: q})
		},
		PublishCommand: func(hub, channel, url, decoder string, q int) []string {
			return slices.Concat(log, []string{"publish", "--hub", hub, "--channel", channel, "--source", url, "--decoder", decoder,
				"--quality", strconv.Itoa(q), "--quiet"})
		},
		HubCommand: slices.Concat(log, []string{"hub", "--listen", "127.0.0.1:0"}),
		HubReady:   "hub listening",
		Progress:   c.App.ErrWriter, Logger: logger(c),
	}
	for _, d := range strings.Split(c.String("rtsp-decoders"), ",") {
		if d = strings.TrimSpace(d); d != "" {
			cfg.Decoders = append(cfg.Decoders, d)
		}
	}
	rep, err := bench.RunRTSP(c.Context, cfg)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(rep)
	}
	return rep.WriteTable(c.App.Writer)
}
