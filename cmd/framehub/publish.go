//go:build cgo

package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"framehub/protocol"
	"framehub/publisher"
)

// openCVBuild says this binary has OpenCV: publish can capture cameras,
// files and pipelines, and process frames.
const openCVBuild = true

// autoDecoder says what --decoder auto picks in this build: OpenCV's
// FFmpeg backend, in the process, delivered RTSP frames about one frame
// interval younger than an ffmpeg child and for less CPU, and with the
// capture options setCaptureOptions gives it, it reopens a camera as
// quickly (docs/BENCHMARKS.md#rtsp-cameras).
const autoDecoder = "OpenCV in this build"

// runOpenCVPublish publishes through OpenCV: capture (or decode), process,
// encode.
func runOpenCVPublish(c *cli.Context) error {
	quietOpenCV(c)
	cfg, err := publisherConfig(c, c.String("hub"))
	if err != nil {
		return err
	}
	ctx := c.Context
	if d := c.Duration("duration"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	return runPublisher(ctx, c, cfg)
}

// publisherConfig maps the publish flags to publisher.Config.
func publisherConfig(c *cli.Context, hubURL string) (publisher.Config, error) {
	hd, tlsConf, err := clientAuth(c)
	if err != nil {
		return publisher.Config{}, err
	}
	widths, one, err := renditionFlags(c)
	if err != nil {
		return publisher.Config{}, err
	}
	cfg := publisher.Config{
		Source: c.String("source"), Loop: c.Bool("loop"), FPS: c.Float64("fps"),
		Width: c.Int("width"), Height: c.Int("height"), Flip: c.String("flip"), Rotate: c.Int("rotate"),
		Quality: c.Int("quality"), OnDemand: c.Bool("on-demand"), OnDemandHold: c.Duration("on-demand-hold"), Renditions: widths,
		SourceTimeout: c.Duration("source-timeout"), Logger: logger(c),
		Sender: publisher.SenderConfig{Hub: hubURL, Channel: c.String("channel"), Header: hd, TLS: tlsConf,
			ConnectTimeout: connectTimeout(c), Rendition: one},
	}
	if one != protocol.RenditionMain {
		// Rendition N is exactly N wide.
		switch {
		case cfg.Width == 0 && cfg.Height == 0:
			cfg.Width = int(one)
		case cfg.Width != int(one) || cfg.Height != 0:
			return cfg, fmt.Errorf("--rendition %v publishes frames exactly %v pixels wide: drop --width and --height (or use --width %v alone)", one, one, one)
		}
	}
	switch strings.ToLower(c.String("codec")) {
	case "jpeg", "jpg":
		cfg.Codec = protocol.CodecJPEG
	case "raw":
		cfg.Codec = protocol.CodecRaw
	default:
		return cfg, fmt.Errorf("--codec %q: use jpeg or raw", c.String("codec"))
	}
	for _, spec := range c.StringSlice("filter") {
		f, err := publisher.ParseFilter(spec)
		if err != nil {
			return cfg, fmt.Errorf("--filter: %w", err)
		}
		cfg.Filter = append(cfg.Filter, f)
	}
	return cfg, nil
}

// runPublisher runs a publisher with a status line each second on stderr.
func runPublisher(ctx context.Context, c *cli.Context, cfg publisher.Config) error {
	p, err := publisher.New(cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	return runWithStatus(ctx, c, cfg.Sender, cfg.Logger, p)
}

// quietOpenCV silences OpenCV's own console warnings (a missing camera
// would print several lines before our one-line error), unless the user
// set OPENCV_LOG_LEVEL or asked for debug logs.
func quietOpenCV(c *cli.Context) {
	if os.Getenv("OPENCV_LOG_LEVEL") == "" && !strings.EqualFold(global(c, "log-level"), "debug") {
		os.Setenv("OPENCV_LOG_LEVEL", "SILENT")
	}
}
