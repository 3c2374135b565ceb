package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRecordRetentionCLI: record --segment --max-size --keep, with the
// default file names, deletes the oldest segments of its channel, picks up
// those of an earlier run when restarted, and says so in its summary; a
// foreign file named like a segment stays.
func TestRecordRetentionCLI(t *testing.T) {
	frames := cameraFrames(1280, 720, 1000)
	_, addr := startHub(t, nocgoBin)
	dir := t.TempDir()
	foreign := filepath.Join(dir, "r-20000101-000000-0001.mkv") // named like one, written by someone else
	if err := os.WriteFile(foreign, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		pushFrames(t, ctx, addr, "r", 50*time.Millisecond, frames)
	}()
	defer func() { cancel(); <-pushed }()
	summary := regexp.MustCompile(`retention keeps (\d+) files \(([\d.]+) MB\), deleted (\d+)`)
	var segment float64 // MB
	for run, maxSize := range []string{"100MB", "2MB"} {
		cmd := exec.Command(nocgoBin, "record", "--hub", addr, "--channel", "r", "--segment", "1s", "--fps", "20",
			"--max-size", maxSize, "--keep", "7d", "--duration", "4s")
		cmd.Dir = dir // the default --out is in the current directory
		p := startCmd(t, cmd)
		if err := p.wait(t, 30*time.Second); err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
		m := summary.FindStringSubmatch(p.errText())
		if m == nil {
			t.Fatalf("run %d: no retention summary:\n%s", run+1, p.errText())
		}
		kept, _ := strconv.Atoi(m[1])
		mb, _ := strconv.ParseFloat(m[2], 64)
		deleted, _ := strconv.Atoi(m[3])
		t.Logf("run %d (--max-size %s): %s", run+1, maxSize, m[0])
		switch {
		case run == 0 && (deleted != 0 || kept < 3):
			t.Fatalf("first run: %s; want 3 or more segments, none deleted", m[0])
		case run == 0:
			segment = mb / float64(kept)
		case run == 1 && (deleted < 3 || mb > 2+1.5*segment): // the size, and at most one segment more
			t.Fatalf("second run: %s; want the first run's segments deleted, and at most 2 MB and a segment (%.1f MB) kept", m[0], segment)
		}
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("the foreign file is gone: %v", err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "r-*.mkv"))
	t.Logf("left: %v", names)
}

// TestRecordRetentionDiskFull: a recorder with retention whose disk fills
// (the file size limit, as in TestRecordDiskFull) ends with exit status 1
// and the write error; it deletes nothing it did not write to make room.
func TestRecordRetentionDiskFull(t *testing.T) {
	frames := cameraFrames(640, 480, 400)
	_, addr := startHub(t, nocgoBin)
	dir := t.TempDir()
	foreign := filepath.Join(dir, "holiday.mkv")
	if err := os.WriteFile(foreign, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "full.mkv")
	r := startLimited(t, 256<<10, nocgoBin, "record", "--hub", addr, "--channel", "f", "--out", out, "--fps", "20",
		"--segment", "10s", "--max-size", "1MiB")
	waitSubscribers(t, addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		pushFrames(t, ctx, addr, "f", 50*time.Millisecond, frames)
	}()
	err := r.wait(t, 20*time.Second)
	cancel()
	<-pushed
	lines := strings.Split(strings.TrimSpace(r.errText()), "\n")
	last := lines[len(lines)-1]
	if exitCode(err) != 1 || !strings.Contains(last, "file too large") {
		t.Fatalf("record with retention on a full disk: %v, last line %q; want exit 1 naming the write error", err, last)
	}
	if fi, err := os.Stat(foreign); err != nil || fi.Size() != 4<<20 {
		t.Fatalf("the foreign file changed: %v", err)
	}
	if n, _ := probeFrames(t, filepath.Join(dir, "full-0001.mkv")); n < 5 {
		t.Fatalf("the cut segment decodes to %d frames; want the ones that fit", n)
	}
}

// TestRecordRetentionFlags: bad retention flags end with one line that
// says what is wrong.
func TestRecordRetentionFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--keep", "30s", "--segment", "1m"}, "--keep 30s"},
		{[]string{"--keep", "soon", "--segment", "1m"}, "--keep soon"},
		{[]string{"--max-size", "10", "--segment", "1m"}, "--max-size 10"},
		{[]string{"--max-size", "1GB"}, "--segment"},
	} {
		args := append([]string{"record", "--hub", "127.0.0.1:1", "--channel", "a", "--out", filepath.Join(dir, "a.mkv")}, c.args...)
		out, err := exec.Command(nocgoBin, args...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err == nil || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("framehub %v: %v, %q; want one line mentioning %q", c.args, err, out, c.want)
		}
	}
}
