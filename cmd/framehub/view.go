//go:build cgo

package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"framehub/subscriber"
)

func viewCommand() *cli.Command {
	return &cli.Command{
		Name:      "view",
		Usage:     "show channels in native windows (q or Esc quits)",
		UsageText: "framehub view --hub URL --channel NAME [--channel NAME…] [--duration D]",
		Flags: append(clientFlags(),
			&cli.StringSliceFlag{Name: "channel", Required: true, Usage: "channel to show (repeat for more windows)", EnvVars: []string{"FRAMEHUB_CHANNEL"}},
			&cli.DurationFlag{Name: "duration", Usage: "close after this long (0: until q, Esc or Ctrl-C)", EnvVars: []string{"FRAMEHUB_DURATION"}},
		),
		Action: func(c *cli.Context) error {
			quietOpenCV(c)
			ctx := c.Context
			if d := c.Duration("duration"); d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			log := logger(c)
			hd, tlsConf, err := clientAuth(c)
			if err != nil {
				return err
			}
			stats, err := subscriber.View(ctx, subscriber.ViewConfig{
				Client:   subscriber.Config{Hub: c.String("hub"), Header: hd, TLS: tlsConf},
				Channels: c.StringSlice("channel"),
				Logger:   log,
			})
			for _, s := range stats {
				fmt.Fprintf(c.App.ErrWriter, "%s: %d frames received, %d shown, %d refused\n", s.Channel, s.Received, s.Shown, s.Refused)
			}
			return err
		},
	}
}

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:      "record",
		Usage:     "record a channel to a video file (Motion JPEG .avi/.mkv, or MPEG-4 .mp4)",
		UsageText: "framehub record --hub URL --channel NAME --out FILE [--duration D] [--segment D]",
		Flags: append(clientFlags(),
			&cli.StringFlag{Name: "channel", Required: true, Usage: "channel to record", EnvVars: []string{"FRAMEHUB_CHANNEL"}},
			&cli.StringFlag{Name: "out", Required: true, Usage: "file to write: .avi, .mkv or .mp4", EnvVars: []string{"FRAMEHUB_OUT"}},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: until Ctrl-C)", EnvVars: []string{"FRAMEHUB_DURATION"}},
			&cli.DurationFlag{Name: "segment", Usage: "start a new file this often (OUT-0001.avi, …)", EnvVars: []string{"FRAMEHUB_SEGMENT"}},
			&cli.Float64Flag{Name: "fps", Usage: "file frame rate (0: the channel's, from the hub)", EnvVars: []string{"FRAMEHUB_FPS"}},
		),
		Action: func(c *cli.Context) error {
			quietOpenCV(c)
			if c.Duration("duration") < 0 || c.Duration("segment") < 0 || c.Float64("fps") < 0 {
				return fmt.Errorf("--duration, --segment and --fps must not be negative")
			}
			ctx := c.Context
			if d := c.Duration("duration"); d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			hd, tlsConf, err := clientAuth(c)
			if err != nil {
				return err
			}
			st, err := subscriber.Record(ctx, subscriber.RecordConfig{
				Client:  subscriber.Config{Hub: c.String("hub"), Channel: c.String("channel"), Header: hd, TLS: tlsConf},
				Out:     c.String("out"),
				Segment: c.Duration("segment"),
				FPS:     c.Float64("fps"),
				Logger:  logger(c),
			})
			fmt.Fprintf(c.App.ErrWriter, "%s: %d frames received, %d written at %.0f fps (%dx%d) to %v\n",
				c.String("channel"), st.Received, st.Written, st.FPS, st.Width, st.Height, st.Files)
			return err
		},
	}
}
