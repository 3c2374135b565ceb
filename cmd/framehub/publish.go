//go:build cgo

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/protocol"
	"framehub/publisher"
)

func publishFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "channel", Required: true, Usage: "channel to publish to", EnvVars: []string{"FRAMEHUB_CHANNEL"}},
		&cli.StringFlag{Name: "source", Value: "0", Usage: "camera index (0), video file, rtsp/http(s) URL, gst:PIPELINE, or test[:WxH]", EnvVars: []string{"FRAMEHUB_SOURCE"}},
		&cli.BoolFlag{Name: "loop", Usage: "repeat a video file", EnvVars: []string{"FRAMEHUB_LOOP"}},
		&cli.Float64Flag{Name: "fps", Usage: "cap frames sent per second (0: the source's rate; test pattern: 30)", EnvVars: []string{"FRAMEHUB_FPS"}},
		&cli.IntFlag{Name: "width", Usage: "resize to this width (alone: keep aspect)", EnvVars: []string{"FRAMEHUB_WIDTH"}},
		&cli.IntFlag{Name: "height", Usage: "resize to this height (alone: keep aspect)", EnvVars: []string{"FRAMEHUB_HEIGHT"}},
		&cli.StringFlag{Name: "flip", Usage: "h, v or both", EnvVars: []string{"FRAMEHUB_FLIP"}},
		&cli.IntFlag{Name: "rotate", Usage: "0, 90, 180 or 270 degrees clockwise", EnvVars: []string{"FRAMEHUB_ROTATE"}},
		&cli.StringSliceFlag{Name: "filter", Usage: "processing steps in order: gray, blur=K, edges[=LO:HI], overlay (repeat or comma-separate)", EnvVars: []string{"FRAMEHUB_FILTER"}},
		&cli.IntFlag{Name: "quality", Value: 80, Usage: "JPEG quality, 1 to 100", EnvVars: []string{"FRAMEHUB_QUALITY"}},
		&cli.StringFlag{Name: "codec", Value: "jpeg", Usage: "jpeg, or raw (uncompressed BGR/gray pixels)", EnvVars: []string{"FRAMEHUB_CODEC"}},
		&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: until Ctrl-C or the end of a file)", EnvVars: []string{"FRAMEHUB_DURATION"}},
		&cli.BoolFlag{Name: "quiet", Usage: "no status line each second", EnvVars: []string{"FRAMEHUB_QUIET"}},
	}
}

func publishCommand() *cli.Command {
	return &cli.Command{
		Name:      "publish",
		Usage:     "capture a camera, file, stream or test pattern, process it and publish it to a hub channel",
		UsageText: "framehub publish --hub URL --channel NAME --source S [--width W] [--filter gray,overlay] [--quality 80]",
		Flags:     append(clientFlags(), publishFlags()...),
		Action: func(c *cli.Context) error {
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
		},
	}
}

// publisherConfig maps the publish flags to publisher.Config.
func publisherConfig(c *cli.Context, hubURL string) (publisher.Config, error) {
	hd, tlsConf, err := clientAuth(c)
	if err != nil {
		return publisher.Config{}, err
	}
	cfg := publisher.Config{
		Source: c.String("source"), Loop: c.Bool("loop"), FPS: c.Float64("fps"),
		Width: c.Int("width"), Height: c.Int("height"), Flip: c.String("flip"), Rotate: c.Int("rotate"),
		Quality: c.Int("quality"), Logger: logger(c),
		Sender: publisher.SenderConfig{Hub: hubURL, Channel: c.String("channel"), Header: hd, TLS: tlsConf,
			ConnectTimeout: connectTimeout(c)},
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
	cfg.Logger.Info("publishing", "source", protocol.RedactURL(p.Source()), "channel", cfg.Sender.Channel, "hub", cfg.Sender.Hub)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	status := newStatusLine(c.App.ErrWriter)
	if !c.Bool("quiet") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			prev, at := p.Stats(), time.Now()
			for {
				select {
				case <-stop:
					return
				case now := <-t.C:
					cur := p.Stats()
					status.show(cfg.Sender.Channel + "  " + publisher.Status(prev, cur, now.Sub(at), p.Connected()))
					prev, at = cur, now
				}
			}
		}()
	}
	err = p.Run(ctx)
	close(stop)
	wg.Wait()
	status.done()
	s := p.Stats()
	cfg.Logger.Info("publisher stopped", "captured", s.Captured, "sent", s.Sent, "skipped", s.Skipped,
		"bytes", s.Bytes, "reconnects", s.Reconnects)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // --duration ran out
	}
	return err
}

// quietOpenCV silences OpenCV's own console warnings (a missing camera
// would print several lines before our one-line error), unless the user
// set OPENCV_LOG_LEVEL or asked for debug logs.
func quietOpenCV(c *cli.Context) {
	if os.Getenv("OPENCV_LOG_LEVEL") == "" && !strings.EqualFold(global(c, "log-level"), "debug") {
		os.Setenv("OPENCV_LOG_LEVEL", "SILENT")
	}
}
