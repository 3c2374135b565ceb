package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStaticBuildRefusesOpenCVWork: the build without cgo answers process
// and record --draw-boxes with what to build instead, in one line.
func TestStaticBuildRefusesOpenCVWork(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"process", "--in", "a", "--out", "b", "--step", "faces"}, "needs OpenCV"},
		{[]string{"record", "--hub", "127.0.0.1:1", "--channel", "a", "--out", filepath.Join(t.TempDir(), "a.mkv"), "--draw-boxes"}, "--draw-boxes"},
	} {
		out, err := exec.Command(nocgoBin, c.args...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err == nil || len(lines) != 1 || !strings.Contains(lines[0], c.want) || !strings.Contains(lines[0], "OpenCV") {
			t.Errorf("static framehub %v: %v, %q; want one line about %q and OpenCV", c.args, err, out, c.want)
		}
	}
	if out, _ := exec.Command(nocgoBin, "--help").CombinedOutput(); !strings.Contains(string(out), "process") {
		t.Errorf("static framehub --help does not list process:\n%s", out)
	}
}
