//go:build cgo

package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"framehub/process"
)

// eventFlags are `framehub process`'s flags for events: which detections
// become events, where, and when they start and end.
func eventFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "event", Usage: "box label that makes events (repeat or comma-separate): person, face, motion, …", EnvVars: []string{"FRAMEHUB_EVENT"}},
		&cli.StringSliceFlag{Name: "zone", Usage: "NAME:x1,y1,x2,y2,x3,y3,…: a zone, a polygon in coordinates from 0 to 1 (repeatable); a box is in it when the middle of its bottom edge is; each label has its own events per zone", EnvVars: []string{"FRAMEHUB_ZONE"}},
		&cli.Float64Flag{Name: "event-min-score", Usage: "least score (0 to 1) of a box that counts for an event (0: any)", EnvVars: []string{"FRAMEHUB_EVENT_MIN_SCORE"}},
		&cli.Float64Flag{Name: "event-min-area", Usage: "least share of the picture (0 to 1) a box must cover to count for an event", EnvVars: []string{"FRAMEHUB_EVENT_MIN_AREA"}},
		&cli.StringFlag{Name: "event-frames", Value: fmt.Sprintf("%d/%d", process.DefaultEventNeed, process.DefaultEventWindow), Usage: "N/M: an event starts when its object is seen in N of the last M processed frames", EnvVars: []string{"FRAMEHUB_EVENT_FRAMES"}},
		&cli.DurationFlag{Name: "event-quiet", Value: process.DefaultEventQuiet, Usage: "an event ends when its object has not been seen for this long", EnvVars: []string{"FRAMEHUB_EVENT_QUIET"}},
	}
}

// eventRules maps the event flags to process.EventRules.
func eventRules(c *cli.Context) (process.EventRules, error) {
	r := process.EventRules{Labels: c.StringSlice("event"), MinScore: c.Float64("event-min-score"),
		MinArea: c.Float64("event-min-area"), Quiet: c.Duration("event-quiet")}
	for _, spec := range zoneSpecs(c.StringSlice("zone")) {
		z, err := process.ParseZone(spec)
		if err != nil {
			return r, fmt.Errorf("--zone: %w", err)
		}
		r.Zones = append(r.Zones, z)
	}
	var err error
	if r.Need, r.Window, err = process.ParseEventFrames(c.String("event-frames")); err != nil {
		return r, fmt.Errorf("--event-frames: %w", err)
	}
	if r.Quiet <= 0 {
		return r, fmt.Errorf("--event-quiet %v: must be positive", r.Quiet)
	}
	return r, nil
}

// zoneSpecs puts zones back together: the command line and the
// environment split a list flag's values at commas, which zones use
// between coordinates. A piece with a ':' starts a zone; the pieces after
// it are its coordinates. (A config file's list keeps each zone whole.)
func zoneSpecs(pieces []string) []string {
	var out []string
	for _, p := range pieces {
		if strings.Contains(p, ":") || len(out) == 0 {
			out = append(out, p)
			continue
		}
		out[len(out)-1] += "," + p
	}
	return out
}
