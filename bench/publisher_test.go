package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes("1280x720, 1920x1080")
	if err != nil || len(got) != 2 || got[0] != (Size{1280, 720}) || got[1] != (Size{1920, 1080}) {
		t.Fatalf("ParseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1280", "1280x", "x720", "1280x720x3", "1281x720", "8x8", "8000x720", "1280*720", "1280x720junk"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("ParseSizes(%q) accepted", bad)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	got, err := parseCPUList("0-2,5,7-8")
	if err != nil || !slices.Equal(got, []int{0, 1, 2, 5, 7, 8}) {
		t.Fatalf("parseCPUList = %v, %v", got, err)
	}
	for _, bad := range []string{"", "a", "3-1", "1-", ","} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) accepted", bad)
		}
	}
	cpus, err := allowedCPUs()
	if err != nil || len(cpus) == 0 {
		t.Fatalf("allowedCPUs = %v, %v", cpus, err)
	}
}

func TestThreadsCPU(t *testing.T) {
	for i := 0; i < 1e6; i++ { // use some CPU
		_ = strings.Repeat("x", i%7)
	}
	d, err := threadsCPU(os.Getpid())
	if err != nil || d <= 0 {
		t.Fatalf("threadsCPU = %v, %v", d, err)
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3 = %v", m)
	}
	if m := median([]float64{4, 1}); m != 2.5 {
		t.Errorf("median of 2 = %v", m)
	}
	if m := median(nil); m != 0 {
		t.Errorf("median of none = %v", m)
	}
}

func TestPublisherConfigErrors(t *testing.T) {
	cmd := func(string, int) []string { return []string{"x"} }
	pub := func(string, string, string, int) []string { return []string{"x"} }
	for _, c := range []PublisherConfig{
		{},                                      // no commands
		{BareCommand: cmd, PublishCommand: pub}, // no hub
		{BareCommand: cmd, PublishCommand: pub, HubCommand: []string{"h"}, Quality: 101},
		{BareCommand: cmd, PublishCommand: pub, HubCommand: []string{"h"}, Runs: 100},
		{BareCommand: cmd, PublishCommand: pub, HubCommand: []string{"h"}, Frames: -1},
	} {
		if err := c.fill(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	c := PublisherConfig{BareCommand: cmd, PublishCommand: pub, HubCommand: []string{"h"}}
	if err := c.fill(); err != nil || len(c.Sizes) != 2 || c.Frames != 600 || c.Runs != 3 || c.Quality != 80 {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

// TestPublisherReport: the text report prints every run and the median of
// each size; the JSON has the "publisher" field; a report without the
// comparison prints nothing of it.
func TestPublisherReport(t *testing.T) {
	rep := &Report{Publisher: []PublisherResult{{Width: 1280, Height: 720, Quality: 80, Frames: 300, Clip: "clip", CPU: 1,
		BareCPUPerFrameMS: 7.5, PublishCPUPerFrameMS: 7.9, Ratio: 1.053,
		Runs: []PublisherRun{{BareFirst: true, BareFrames: 300, HubFrames: 300, PublishCaptured: 300, BareCPUPerFrameMS: 7.5,
			PublishCPUPerFrameMS: 7.9, Ratio: 1.053, BareStartupCPUMS: 200, PublishStartupCPUMS: 210}}}}}
	var b bytes.Buffer
	if err := rep.writePublisher(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"core 1", "1280x720", "median", "7.500", "7.900", "1.053", "200 / 210", "clip 1280x720: clip"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	j, err := json.Marshal(rep)
	if err != nil || !strings.Contains(string(j), `"publisher":[{"width":1280`) || !strings.Contains(string(j), `"publish_cpu_ms_per_frame":7.9`) {
		t.Errorf("json %s, %v", j, err)
	}
	b.Reset()
	none := &Report{}
	if err := none.writePublisher(&b); err != nil || b.Len() != 0 {
		t.Errorf("a report without the comparison printed %q", b.String())
	}
	if j, _ := json.Marshal(none); strings.Contains(string(j), "publisher") {
		t.Errorf("a report without the comparison has it in JSON: %s", j)
	}
}
