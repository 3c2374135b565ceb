package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/subscriber"
)

// eventRecordFlags are `record`'s flags for recording events.
func eventRecordFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "on-event", Usage: "record a file per event of this label (repeat or comma-separate; * for every event) instead of everything", EnvVars: []string{"FRAMEHUB_ON_EVENT"}},
		&cli.DurationFlag{Name: "pre", Value: 5 * time.Second, Usage: "with --on-event: a file starts this long before its event", EnvVars: []string{"FRAMEHUB_PRE"}},
		&cli.DurationFlag{Name: "post", Value: 10 * time.Second, Usage: "with --on-event: a file ends this long after its last event", EnvVars: []string{"FRAMEHUB_POST"}},
		&cli.StringFlag{Name: "dir", Usage: "with --on-event: the directory for the event files (default: the current one)", EnvVars: []string{"FRAMEHUB_DIR"}},
		&cli.StringFlag{Name: "pre-max-bytes", Value: "256MiB", Usage: "with --on-event: memory the last --pre of frames may take; a --pre that needs more is refused", EnvVars: []string{"FRAMEHUB_PRE_MAX_BYTES"}},
	}
}

// recordEvents is `record --on-event`: a file per event.
func recordEvents(ctx context.Context, c *cli.Context, ccfg subscriber.Config) error {
	for _, f := range []string{"out", "segment"} {
		if c.IsSet(f) {
			return fmt.Errorf("--%s is for continuous recordings; --on-event writes a file per event in --dir", f)
		}
	}
	budget, err := parseByteSize(c.String("pre-max-bytes"), 1<<20)
	if err != nil {
		return fmt.Errorf("--pre-max-bytes %s: %w", c.String("pre-max-bytes"), err)
	}
	ret, err := retentionConfig(c, "")
	if err != nil {
		return err
	}
	dir := c.String("dir")
	if dir == "" {
		dir = "."
	}
	st, err := subscriber.RecordEvents(ctx, subscriber.EventRecordConfig{
		Client: ccfg, Dir: dir, Labels: c.StringSlice("on-event"), Pre: c.Duration("pre"), Post: c.Duration("post"),
		PreMaxBytes: budget, FPS: c.Float64("fps"), DrawBoxes: c.Bool("draw-boxes"), Retention: ret, Logger: logger(c),
	})
	if err != nil && st.Received == 0 && !errors.Is(err, subscriber.ErrPreTooLong) {
		return err // refused or misconfigured before anything arrived: the error says it all
	}
	if !errors.Is(err, subscriber.ErrPreTooLong) {
		names := make([]string, len(st.Files))
		for i, f := range st.Files {
			names[i] = filepath.Base(f)
		}
		fmt.Fprintf(c.App.ErrWriter, "%s: %d frames received, %d events recorded in %d files in %s %v; %d frames written at %g fps, %d refused, %d dropped; pre-roll ring at most %.1f MB%s\n",
			c.String("channel"), st.Received, st.Events, len(st.Files), dir, names, st.Written, st.FPS, st.Refused, st.Dropped,
			float64(st.RingPeak)/1e6, retentionSummary(st.Retention, ret.Keep > 0 || ret.MaxSize > 0))
	}
	return err
}
