package subscriber

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// writeFile creates dir/name with n bytes and returns its path.
func writeFile(t *testing.T, dir, name string, n int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func openRetention(t *testing.T, cfg RetentionConfig) *Retention {
	t.Helper()
	r, err := OpenRetention(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestRetentionDeletesOldestNeverOpen: past the size, the oldest closed
// files go first; the open one stays whatever its size; past the age,
// old files go.
func TestRetentionDeletesOldestNeverOpen(t *testing.T) {
	dir := t.TempDir()
	r := openRetention(t, RetentionConfig{Dir: dir, Name: "cam", MaxSize: 2500})
	for _, n := range []string{"a.mkv", "b.mkv", "c.mkv"} {
		writeFile(t, dir, n, 1000)
		if err := r.Created(n); err != nil {
			t.Fatal(err)
		}
		r.Closed(n)
	}
	writeFile(t, dir, "d.mkv", 3000) // open, and over the size on its own
	if err := r.Created("d.mkv"); err != nil {
		t.Fatal(err)
	}
	r.Enforce(time.Now())
	for n, want := range map[string]bool{"a.mkv": false, "b.mkv": false, "c.mkv": false, "d.mkv": true} {
		if exists(filepath.Join(dir, n)) != want {
			t.Errorf("%s exists: %v; want %v", n, !want, want)
		}
	}
	if st := r.Stats(); st.Deleted != 3 || st.Files != 1 || st.Bytes != 3000 {
		t.Errorf("stats %+v; want 3 deleted, the open one kept", st)
	}
	r.Closed("d.mkv")
	writeFile(t, dir, "e.mkv", 10)
	r.Created("e.mkv")
	r.Enforce(time.Now())
	if exists(filepath.Join(dir, "d.mkv")) || !exists(filepath.Join(dir, "e.mkv")) {
		t.Errorf("once closed, the big file goes; the new open one stays")
	}

	// Age: a file last written 2 h ago goes with --keep 1h; a fresh one stays.
	dir2 := t.TempDir()
	k := openRetention(t, RetentionConfig{Dir: dir2, Name: "cam", Keep: time.Hour})
	old, fresh := writeFile(t, dir2, "old.mkv", 10), writeFile(t, dir2, "fresh.mkv", 10)
	k.Created("old.mkv")
	long := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, long, long); err != nil { // its last write, before it is complete
		t.Fatal(err)
	}
	k.Closed("old.mkv")
	k.Created("fresh.mkv")
	k.Closed("fresh.mkv")
	k.Enforce(time.Now())
	if exists(old) || !exists(fresh) {
		t.Errorf("--keep 1h: old exists %v, fresh exists %v; want only the fresh one", exists(old), exists(fresh))
	}
}

// TestRetentionNeverDeletesForeignFiles: files the recorder did not write,
// a file put in place of one it wrote, a symlink put in place of one (and
// its target outside the directory), and a hostile ledger are all left
// alone, and a second retention on the same ledger is refused.
func TestRetentionNeverDeletesForeignFiles(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	foreign := writeFile(t, dir, "foreign.mkv", 5000)
	target := writeFile(t, outside, "precious.mkv", 5000)
	// A ledger that names files the recorder never wrote: paths out of
	// the directory, another file's name with made-up numbers, garbage.
	hostile := "../" + filepath.Base(outside) + "/precious.mkv\t1\t2\n/etc/passwd\t1\t2\nforeign.mkv\t1\t2\n" +
		"foreign.mkv\n\t\t\n" + strings.Repeat("x", 5000) + "\n.\t1\t2\n"
	if err := os.WriteFile(filepath.Join(dir, LedgerPrefix+"cam.ledger"), []byte(hostile), 0o644); err != nil {
		t.Fatal(err)
	}
	r := openRetention(t, RetentionConfig{Dir: dir, Name: "cam", MaxSize: 1})
	if _, err := OpenRetention(RetentionConfig{Dir: dir, Name: "cam", MaxSize: 1}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second retention on the same ledger: %v; want refused as in use", err)
	}
	for _, n := range []string{"mine1.mkv", "mine2.mkv", "mine3.mkv"} {
		writeFile(t, dir, n, 100)
		if err := r.Created(n); err != nil {
			t.Fatal(err)
		}
		r.Closed(n)
	}
	// mine1 is replaced by another file of the same name; mine2 by a
	// symlink to the precious file outside.
	os.Remove(filepath.Join(dir, "mine1.mkv"))
	writeFile(t, dir, "mine1.mkv", 100)
	os.Remove(filepath.Join(dir, "mine2.mkv"))
	if err := os.Symlink(target, filepath.Join(dir, "mine2.mkv")); err != nil {
		t.Fatal(err)
	}
	r.Enforce(time.Now())
	for _, p := range []string{foreign, target, filepath.Join(dir, "mine1.mkv"), filepath.Join(dir, "mine2.mkv")} {
		if !exists(p) {
			t.Errorf("%s was deleted; framehub did not write it", p)
		}
	}
	if fi, err := os.Stat(target); err != nil || fi.Size() != 5000 {
		t.Errorf("the symlink's target changed: %v", err)
	}
	if exists(filepath.Join(dir, "mine3.mkv")) {
		t.Error("mine3.mkv, the recorder's own and over the size, is still there")
	}
	if st := r.Stats(); st.Refused != 2 || st.Deleted != 1 || st.Files != 0 {
		t.Errorf("stats %+v; want 2 left alone, 1 deleted, none kept", st)
	}
	// A symlink as the ledger is refused rather than written through.
	dir3 := t.TempDir()
	if err := os.Symlink(target, filepath.Join(dir3, LedgerPrefix+"cam.ledger")); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRetention(RetentionConfig{Dir: dir3, Name: "cam", MaxSize: 1}); err == nil {
		t.Error("a symlink as the ledger was accepted")
	}
	for _, bad := range []string{"", "../x", "a/b", "a\nb"} {
		if _, err := OpenRetention(RetentionConfig{Dir: dir3, Name: bad, MaxSize: 1}); err == nil {
			t.Errorf("ledger name %q accepted", bad)
		}
	}
}

// TestRetentionTakesUpFileOfKilledRun: a recorder killed after creating a
// file and before listing its inode (the window between Creating and
// Created) left the name as the ledger's last line; the next start takes
// that file as its own and deletes it in turn. A name announced and then
// lost to another file (the next line announces another name), a name
// that is now a symlink, and one never created are left alone.
func TestRetentionTakesUpFileOfKilledRun(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	r, err := OpenRetention(RetentionConfig{Dir: dir, Name: "cam", MaxSize: 1500})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "a.mkv", 1000)
	r.Created("a.mkv")
	r.Closed("a.mkv")
	// b.mkv is taken by someone else before the recorder creates it: the
	// recorder announces it, fails, and goes on to c.mkv, where it dies.
	if err := r.Creating("b.mkv"); err != nil {
		t.Fatal(err)
	}
	foreign := writeFile(t, dir, "b.mkv", 1000)
	if err := r.Creating("c.mkv"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "c.mkv", 1000)
	r.Close() // killed: no Created("c.mkv")

	r2 := openRetention(t, RetentionConfig{Dir: dir, Name: "cam", MaxSize: 500})
	if st := r2.Stats(); st.Files != 2 || st.Bytes != 2000 {
		t.Fatalf("after the restart the ledger holds %+v; want a.mkv and the killed run's c.mkv", st)
	}
	writeFile(t, dir, "d.mkv", 100)
	r2.Created("d.mkv")
	r2.Enforce(time.Now())
	if exists(filepath.Join(dir, "a.mkv")) || exists(filepath.Join(dir, "c.mkv")) {
		t.Error("the killed run's files stay: the restart did not take them up")
	}
	if !exists(foreign) || !exists(filepath.Join(dir, "d.mkv")) {
		t.Error("deleted a file announced but made by someone else, or the open one")
	}
	r2.Close()

	// Killed after announcing e.mkv; before the restart, e.mkv is a
	// symlink to a file outside: not taken up, its target untouched.
	r3 := openRetention(t, RetentionConfig{Dir: dir, Name: "cam", MaxSize: 1})
	if err := r3.Creating("e.mkv"); err != nil {
		t.Fatal(err)
	}
	r3.Close()
	target := writeFile(t, outside, "precious.mkv", 100)
	if err := os.Symlink(target, filepath.Join(dir, "e.mkv")); err != nil {
		t.Fatal(err)
	}
	r4 := openRetention(t, RetentionConfig{Dir: dir, Name: "cam", MaxSize: 1})
	r4.Enforce(time.Now())
	if !exists(filepath.Join(dir, "e.mkv")) || !exists(target) || !exists(foreign) {
		t.Error("a symlink at an announced name, or its target, was deleted")
	}
	for _, bad := range []string{LedgerPrefix + "cam.ledger", "", ".."} {
		if err := r4.Creating(bad); err == nil {
			t.Errorf("Creating(%q) accepted", bad)
		}
	}
}

// dirFiles returns the sizes of the recording files (*.mkv) in dir.
func dirFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && strings.HasSuffix(e.Name(), ".mkv") {
			out[e.Name()] = fi.Size()
		}
	}
	return out
}

// TestRecordRetention records in one-second segments with --max-size and
// --keep, stops and starts again: the directory's recordings never exceed
// the size by more than the segment being written, the oldest segments go
// first, the restarted recorder picks up the files of the first run (and
// numbers its own after them), and foreign files, a symlink named like a
// segment and its target are never touched.
func TestRecordRetention(t *testing.T) {
	addr, _ := runHub(t, "127.0.0.1:0")
	dir, outside := t.TempDir(), t.TempDir()
	foreign := writeFile(t, dir, "holiday.mkv", 300_000)
	target := writeFile(t, outside, "precious.mkv", 300_000)
	planted := filepath.Join(dir, "rec-0004.mkv") // where the first run's fourth segment would go
	if err := os.Symlink(target, planted); err != nil {
		t.Fatal(err)
	}
	frames := make([]protocol.Frame, 400)
	for i := range frames {
		frames[i] = hubtest.JPEGFrame(64, 48, testutil.FakeJPEG(64, 48, uint64(i), 10_000))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pctx, pcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); hubtest.Publish(t, pctx, addr, "rec", 50*time.Millisecond, frames) }()
	defer func() { pcancel(); wg.Wait() }()

	out := filepath.Join(dir, "rec.mkv")
	run := func(d time.Duration, maxSize int64) (RecordStats, int64) {
		t.Helper()
		var worst int64 // the most the recordings took beyond maxSize, less the open file
		rctx, rcancel := context.WithTimeout(ctx, d)
		defer rcancel()
		st, err := Record(rctx, RecordConfig{Client: Config{Hub: addr, Channel: "rec"}, Out: out, FPS: 20, Segment: time.Second,
			Retention: RetentionConfig{MaxSize: maxSize, Keep: time.Hour},
			OnFrame: func(st RecordStats) {
				files := dirFiles(t, dir)
				var total int64
				for n, size := range files {
					if strings.HasPrefix(n, "rec-") {
						total += size
					}
				}
				open := files[filepath.Base(st.Files[len(st.Files)-1])]
				worst = max(worst, total-open-maxSize)
			}})
		if err != nil {
			t.Fatalf("Record: %v", err)
		}
		return st, worst
	}
	st1, worst := run(3500*time.Millisecond, 10<<20) // large: nothing deleted
	if st1.Retention.Deleted != 0 || len(st1.Files) < 3 || slices.Contains(st1.Files, planted) || worst > 0 {
		t.Fatalf("first run: %+v; want 3 or more segments, none deleted, the planted name skipped", st1)
	}
	first := dirFiles(t, dir)
	const maxSize = 450_000 // about two segments of 20 frames of 10 KB
	st2, worst := run(4500*time.Millisecond, maxSize)
	t.Logf("first run %v; second %v, retention %+v; at worst %d bytes over the size besides the open segment",
		st1.Files, st2.Files, st2.Retention, worst)
	if worst > 0 {
		t.Errorf("the closed recordings took %d bytes more than --max-size", worst)
	}
	for _, f := range st2.Files {
		if slices.Contains(st1.Files, f) {
			t.Errorf("the second run wrote %s, a file of the first", f)
		}
	}
	for _, f := range st1.Files {
		if exists(f) {
			t.Errorf("%s of the first run is still there; the second run's newer files are within the size", f)
		}
	}
	now := dirFiles(t, dir)
	var kept int64
	for n, size := range now {
		if strings.HasPrefix(n, "rec-") && first[n] == 0 {
			kept += size
		}
	}
	if kept > maxSize+int64(st2.Retention.Bytes)/int64(max(1, st2.Retention.Files)) || st2.Retention.Deleted < len(st1.Files) {
		t.Errorf("after the second run: %d bytes of recordings, %+v", kept, st2.Retention)
	}
	last := st2.Files[len(st2.Files)-1]
	if !exists(last) {
		t.Errorf("the newest segment %s was deleted", last)
	}
	for _, p := range []string{foreign, target, planted} {
		if !exists(p) {
			t.Errorf("%s was deleted; framehub did not write it", p)
		}
	}
}
