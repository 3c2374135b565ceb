package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBenchPublisherFlags: bad --publisher flags and the build without
// OpenCV fail at once, in one line, before any load runs.
func TestBenchPublisherFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--publisher"}, "needs OpenCV"},
		{[]string{"bench", "--publisher-runs", "0"}, "--publisher-runs 0: must be 1 to 99"},
		{[]string{"bench", "--publisher-cpu", "-2"}, "--publisher-cpu -2"},
	} {
		out, err := exec.Command(nocgoBin, c.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) || strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
			t.Errorf("%v: %v %q; want one line with %q", c.args, err, out, c.want)
		}
	}
}
