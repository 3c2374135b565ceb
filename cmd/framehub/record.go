package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/subscriber"
)

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:  "record",
		Usage: "record a channel to a video file (Motion JPEG .mkv, crash-safe; or through OpenCV .avi, .mp4)",
		UsageText: "framehub record --hub URL --channel NAME [--out FILE.mkv] [--duration D] [--segment D]\n" +
			"framehub record --hub URL --channel NAME --on-event LABEL --pre 5s --post 10s --dir DIR\n\n" +
			"--out defaults to CHANNEL-YYYYMMDD-HHMMSS.mkv in the current directory.",
		Flags: append(append(append(clientFlags(), maxWidthFlag(),
			&cli.StringFlag{Name: "channel", Required: true, Usage: "channel to record", EnvVars: []string{"FRAMEHUB_CHANNEL"}},
			&cli.StringFlag{Name: "out", Usage: "file to write: .mkv (default, crash-safe), .avi or .mp4 (OpenCV builds)", EnvVars: []string{"FRAMEHUB_OUT"}},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: until Ctrl-C)", EnvVars: []string{"FRAMEHUB_DURATION"}},
			&cli.DurationFlag{Name: "segment", Usage: "start a new file after this much video (OUT-0001.mkv, …)", EnvVars: []string{"FRAMEHUB_SEGMENT"}},
			&cli.BoolFlag{Name: "draw-boxes", Usage: "burn the boxes of each frame's metadata (detections) into the picture: frames with boxes are decoded and encoded again, which costs CPU (OpenCV build only)", EnvVars: []string{"FRAMEHUB_DRAW_BOXES"}},
			&cli.Float64Flag{Name: "fps", Usage: fmt.Sprintf("file frame rate, at most %d (0: the channel's, from the hub)", subscriber.MaxRecordFPS), EnvVars: []string{"FRAMEHUB_FPS"}},
		), retentionFlags()...), eventRecordFlags()...),
		Action: func(c *cli.Context) error {
			quietOpenCVLogs(c)
			ctx := c.Context
			if d := c.Duration("duration"); d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			ccfg, err := clientConfig(c, c.String("channel"))
			if err != nil {
				return err
			}
			if c.IsSet("on-event") {
				return recordEvents(ctx, c, ccfg)
			}
			out, ledger := c.String("out"), ""
			if out == "" {
				out = fmt.Sprintf("%s-%s.mkv", c.String("channel"), time.Now().Format("20060102-150405"))
				ledger = c.String("channel") // the same across restarts, whose names differ
			}
			ret, err := retentionConfig(c, ledger)
			if err != nil {
				return err
			}
			st, err := subscriber.Record(ctx, subscriber.RecordConfig{
				Client:    ccfg,
				Out:       out,
				Segment:   c.Duration("segment"),
				FPS:       c.Float64("fps"),
				DrawBoxes: c.Bool("draw-boxes"),
				Retention: ret,
				Logger:    logger(c),
			})
			if err != nil && st.Received == 0 && len(st.Files) == 0 {
				return err // refused or misconfigured before anything arrived: the error says it all
			}
			fmt.Fprintf(c.App.ErrWriter, "%s: %d frames received, %d written at %g fps (%dx%d) to %v; %d refused, %d dropped%s\n",
				c.String("channel"), st.Received, st.Written, st.FPS, st.Width, st.Height, st.Files, st.Refused, st.Dropped,
				retentionSummary(st.Retention, ret.Keep > 0 || ret.MaxSize > 0))
			return err
		},
	}
}
