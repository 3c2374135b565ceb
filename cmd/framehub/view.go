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
		Flags: append(clientFlags(), maxWidthFlag(),
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
			ccfg, err := clientConfig(c, "")
			if err != nil {
				return err
			}
			stats, err := subscriber.View(ctx, subscriber.ViewConfig{
				Client:   ccfg,
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
