package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"framehub/subscriber"
)

// metaLine is one line of `watch --print-meta`: a frame's sequence
// number, capture time and metadata (null when it has none).
type metaLine struct {
	Seq         uint64          `json:"seq"`
	CaptureTime int64           `json:"capture_time_ns"`
	Meta        json.RawMessage `json:"meta"`
}

// printMeta writes f's metadata as one JSON line. The client has checked
// it is a JSON object; it is compacted, so that a line is a frame.
func printMeta(w io.Writer, f *subscriber.Frame) error {
	line := metaLine{Seq: f.Seq, CaptureTime: f.CaptureTime, Meta: json.RawMessage("null")}
	if len(f.Meta) > 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, f.Meta); err == nil {
			line.Meta = b.Bytes()
		}
	}
	out, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = w.Write(append(out, '\n'))
	return err
}

// boxesLine describes the boxes a watch saw, for the text summary: ""
// when no frame carried any.
func boxesLine(channel string, b subscriber.BoxSummary) string {
	if b.Frames == 0 {
		return ""
	}
	return fmt.Sprintf("%s: boxes in %d frames: %s\n", channel, b.Frames, labelCounts(b.Labels))
}

// eventsLine describes the events a watch saw, for the text summary: ""
// when no frame carried any.
func eventsLine(channel string, e subscriber.EventSummary) string {
	if e.Events == 0 {
		return ""
	}
	return fmt.Sprintf("%s: %d events (%d seen to end): %s\n", channel, e.Events, e.Ended, labelCounts(e.Labels))
}

// labelCounts lists counts by label, in label order: "face 3, person 12".
func labelCounts(counts map[string]uint64) string {
	labels := make([]string, 0, len(counts))
	for l := range counts {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, fmt.Sprintf("%s %d", l, counts[l]))
	}
	return strings.Join(parts, ", ")
}
