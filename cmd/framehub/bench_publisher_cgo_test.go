//go:build cgo

package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBenchPublisher runs framehub bench --publisher as a user would, on
// small clips, twice: --json (two runs, so each side goes first once) and
// the text report. It checks that both sides have plausible, non-zero
// figures and that every sent frame reached the hub; not how fast
// anything is.
func TestBenchPublisher(t *testing.T) {
	bin := cgoBinary(t)
	args := []string{"--log-level", "warn", "bench", "--subscribers", "1", "--duration", "1s", "--warmup", "200ms",
		"--width", "320", "--height", "240", "--publisher", "--publisher-sizes", "320x240", "--publisher-frames", "20", "--quality", "70"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--publisher-runs", "2", "--json")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench --publisher --json: %v\n%s", err, stderr.String())
	}
	var rep struct {
		// The load run beside the publisher comparison: the hub alone,
		// its figures under "median" (and "min", "max") by target.
		Targets   []string
		Median    map[string]struct{ Target string }
		Runs      []json.RawMessage
		Publisher []struct {
			Width, Height, Quality, Frames, CPU int
			BareMS                              float64 `json:"bare_cpu_ms_per_frame"`
			PublishMS                           float64 `json:"publish_cpu_ms_per_frame"`
			Ratio                               float64
			Runs                                []struct {
				BareFirst       bool `json:"bare_first"`
				BareFrames      int  `json:"bare_frames"`
				PublishCaptured int  `json:"publish_captured"`
				PublishSent     int  `json:"publish_sent"`
				HubFrames       int  `json:"hub_frames"`
				BareCPU         float64
				BareMS          float64 `json:"bare_cpu_ms_per_frame"`
				PublishMS       float64 `json:"publish_cpu_ms_per_frame"`
				Ratio           float64
				BareStartup     float64 `json:"bare_startup_cpu_ms"`
				PublishStartup  float64 `json:"publish_startup_cpu_ms"`
				BareBytes       int     `json:"bare_bytes_per_frame"`
				PublishBytes    int     `json:"publish_bytes_per_frame"`
			}
		}
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench --publisher --json printed %q: %v", out, err)
	}
	if len(rep.Targets) != 1 || rep.Targets[0] != "hub" || rep.Median["hub"].Target != "hub" || len(rep.Runs) != 1 || len(rep.Publisher) != 1 {
		t.Fatalf("report %s", out)
	}
	p := rep.Publisher[0]
	if p.Width != 320 || p.Height != 240 || p.Quality != 70 || p.Frames != 20 || p.BareMS <= 0 || p.PublishMS <= 0 ||
		p.Ratio <= 0 || len(p.Runs) != 2 || !p.Runs[0].BareFirst || p.Runs[1].BareFirst {
		t.Fatalf("publisher result %s", out)
	}
	for _, r := range p.Runs {
		if r.BareFrames != 20 || r.PublishCaptured != 20 || r.HubFrames < 15 || r.HubFrames > r.PublishSent ||
			r.BareMS <= 0 || r.PublishMS <= 0 || r.Ratio <= 0 || r.BareStartup <= 0 || r.PublishStartup <= 0 ||
			r.BareBytes <= 0 || r.PublishBytes < r.BareBytes {
			t.Errorf("run %+v", r)
		}
	}
	if !strings.Contains(stderr.String(), "bench publisher 320x240 run 2/2") {
		t.Errorf("no progress lines:\n%s", stderr.String())
	}

	text, err := exec.CommandContext(ctx, bin, append(args, "--publisher-runs", "1")...).Output()
	if err != nil {
		t.Fatalf("bench --publisher: %v", err)
	}
	for _, want := range []string{"server CPU s per GB", "publisher CPU per sent frame vs a bare gocv loop", "publish ÷ bare", "median",
		"clip 320x240: ffmpeg testsrc2=size=320x240"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
}
