package main

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// segmentWatch follows a recording directory's segments (PATTERN) while a
// recorder runs, and fails the test when retention breaks a promise: a
// file deleted while an older one stays, the file being written deleted
// (a deletion that leaves no newer file), or the files together over
// limit by more than the largest segment seen.
type segmentWatch struct {
	t        *testing.T
	pattern  string
	limit    int64
	prev     map[string]int64
	largest  int64 // the largest segment seen complete
	peak     int64 // the most the files held together
	created  []string
	deleted  []string
	problems int
}

func (w *segmentWatch) poll() {
	w.t.Helper()
	names, err := filepath.Glob(w.pattern)
	if err != nil {
		w.t.Fatal(err)
	}
	cur := map[string]int64{}
	var total int64
	for _, n := range names {
		if fi, err := os.Lstat(n); err == nil {
			cur[n] = fi.Size()
			total += fi.Size()
		}
	}
	sorted := slices.Sorted(maps.Keys(cur)) // the names sort in the order they were made
	for n, size := range w.prev {
		if _, ok := cur[n]; ok {
			continue
		}
		w.deleted = append(w.deleted, filepath.Base(n))
		w.largest = max(w.largest, size)
		if len(sorted) == 0 || sorted[0] < n {
			w.fail("%s deleted while %v stay: not the oldest first, or the one being written", filepath.Base(n), sorted)
		}
	}
	for _, n := range sorted {
		if _, ok := w.prev[n]; !ok {
			w.created = append(w.created, filepath.Base(n))
		}
		if n != sorted[len(sorted)-1] {
			w.largest = max(w.largest, cur[n])
		}
	}
	w.peak = max(w.peak, total)
	if total > w.limit+w.largest {
		w.fail("the files hold %d bytes: over --max-size %d by more than a segment (%d)", total, w.limit, w.largest)
	}
	w.prev = cur
}

func (w *segmentWatch) fail(format string, args ...any) {
	w.t.Helper()
	if w.problems++; w.problems <= 5 {
		w.t.Errorf(format, args...)
	}
}

// follow polls until p exits or ready says so.
func (w *segmentWatch) follow(p *proc, ready func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		w.poll()
		select {
		case <-p.done:
			w.poll()
			return
		default:
		}
		if ready != nil && ready() {
			return
		}
		time.Sleep(15 * time.Millisecond)
	}
	w.t.Fatal("the recorder ran past 60 s")
}

// TestRecordRetentionWatched follows the directory of record --segment
// --max-size as it runs, the way an operator's disk sees it: the oldest
// segments go first, never the one being written, the directory never
// holds more than --max-size and a segment; the recorder is killed
// (SIGKILL, as a crash or the OOM killer would) and restarted, and the
// restarted one picks up the killed one's files, the last one it was
// writing included, and deletes them before its own.
func TestRecordRetentionWatched(t *testing.T) {
	frames := cameraFrames(1280, 720, 1000)
	_, addr := startHub(t, nocgoBin)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		pushFrames(t, ctx, addr, "w", 50*time.Millisecond, frames)
	}()
	defer func() { cancel(); <-pushed }()
	const limit = 2_000_000
	w := &segmentWatch{t: t, pattern: filepath.Join(dir, "w-*.mkv"), limit: limit}
	record := func(extra ...string) *proc {
		cmd := exec.Command(nocgoBin, append([]string{"record", "--hub", addr, "--channel", "w", "--segment", "1s", "--fps", "20",
			"--max-size", "2MB"}, extra...)...)
		cmd.Dir = dir // the default --out: w-DATE-TIME-NNNN.mkv here
		return startCmd(t, cmd)
	}

	first := record()
	w.follow(first, func() bool { return len(w.deleted) >= 2 && len(w.created) >= 5 })
	if len(w.deleted) < 2 {
		t.Fatalf("the first recorder ended before deleting anything:\n%s", first.errText())
	}
	first.cmd.Process.Kill() // by PID: ours
	<-first.done
	w.poll()
	left := slices.Sorted(maps.Keys(w.prev))
	if len(left) < 2 {
		t.Fatalf("the killed recorder left %v; want two segments or more", left)
	}
	t.Logf("killed after making %d segments and deleting %d; it left %d (%d bytes at most together)",
		len(w.created), len(w.deleted), len(left), w.peak)

	deletedBefore := len(w.deleted)
	second := record("--duration", "4s")
	w.follow(second, nil)
	if err := second.wait(t, 10*time.Second); err != nil {
		t.Fatalf("the restarted recorder: %v", err)
	}
	gone := w.deleted[deletedBefore:]
	for _, n := range left {
		if !slices.Contains(gone, filepath.Base(n)) {
			t.Errorf("the restarted recorder kept %s of the killed one (deleted %v): it did not pick up the files it found", filepath.Base(n), gone)
		}
	}
	if !strings.Contains(second.errText(), "retention keeps") {
		t.Errorf("no retention summary:\n%s", second.errText())
	}
	t.Logf("after the restart: %d more deleted, the killed one's %d among them; peak %d bytes for --max-size %d and segments of up to %d",
		len(gone), len(left), w.peak, limit, w.largest)
}
