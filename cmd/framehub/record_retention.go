package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/subscriber"
)

// retentionFlags are `record`'s flags for deleting old recordings.
func retentionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "keep", Usage: "delete recordings (segments, or event files) whose last write is older than this: 7d, 36h, 1d12h (needs --segment for a continuous recording)", EnvVars: []string{"FRAMEHUB_KEEP"}},
		&cli.StringFlag{Name: "max-size", Usage: "delete the oldest recordings while they take more than this, the one being written included: 50GiB, 500MB (needs --segment for a continuous recording)", EnvVars: []string{"FRAMEHUB_MAX_SIZE"}},
	}
}

// retentionConfig maps --keep and --max-size to a RetentionConfig: off
// when neither is set. name names its ledger ("" for the default).
func retentionConfig(c *cli.Context, name string) (subscriber.RetentionConfig, error) {
	rc := subscriber.RetentionConfig{Name: name, Logger: logger(c)}
	if s := c.String("keep"); s != "" {
		d, err := parseLongDuration(s)
		if err != nil || d < time.Minute {
			return rc, fmt.Errorf("--keep %s: want a duration of a minute or more, such as 7d, 36h or 1d12h", s)
		}
		rc.Keep = d
	}
	if s := c.String("max-size"); s != "" {
		v, err := parseByteSize(s, 1<<20)
		if err != nil {
			return rc, fmt.Errorf("--max-size %s: %w", s, err)
		}
		rc.MaxSize = v
	}
	return rc, nil
}

// retentionSummary describes what retention did, for the summary line: ""
// without retention.
func retentionSummary(st subscriber.RetentionStats, on bool) string {
	if !on {
		return ""
	}
	s := fmt.Sprintf("; retention keeps %d files (%.1f MB), deleted %d (%.1f MB)", st.Files, float64(st.Bytes)/1e6, st.Deleted, float64(st.DeletedBytes)/1e6)
	if st.Refused > 0 {
		s += fmt.Sprintf(", left %d alone", st.Refused)
	}
	return s
}
