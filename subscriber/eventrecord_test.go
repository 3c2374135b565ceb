package subscriber

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// taggedJPEG returns jpeg with a comment naming seq after its SOI: a frame
// that decodes as jpeg does, and whose bytes are its own.
func taggedJPEG(jpeg []byte, seq int) []byte {
	text := fmt.Sprintf("framehub test frame %d", seq)
	out := append([]byte{0xFF, 0xD8, 0xFF, 0xFE, byte((len(text) + 2) >> 8), byte(len(text) + 2)}, text...)
	return append(out, jpeg[2:]...)
}

// eventFrames returns n distinct real JPEG frames, captured interval apart
// from t0, with the metadata meta(i) returns.
func eventFrames(n int, t0 time.Time, interval time.Duration, meta func(i int) string) ([]protocol.Frame, map[string]int) {
	base := testutil.JPEG(160, 120, 3)
	frames := make([]protocol.Frame, n)
	bySum := map[string]int{}
	for i := range frames {
		f := hubtest.JPEGFrame(160, 120, taggedJPEG(base, i))
		f.CaptureTime = t0.Add(time.Duration(i) * interval).UnixNano()
		if m := meta(i); m != "" {
			f.Meta = []byte(m)
		}
		frames[i] = f
		sum := md5.Sum(f.Payload)
		bySum[hex.EncodeToString(sum[:])] = i
	}
	return frames, bySum
}

// eventJSON is one event's metadata entry.
func eventJSON(id, label string, start, end time.Time) string {
	s := fmt.Sprintf(`{"id":%q,"label":%q,"start":%.3f`, id, label, float64(start.UnixMilli())/1e3)
	if !end.IsZero() {
		s += fmt.Sprintf(`,"end":%.3f`, float64(end.UnixMilli())/1e3)
	}
	return s + "}"
}

// fileFrames returns the frames a recording holds, as indexes into the
// published frames, in file order (ffprobe reads each packet's bytes).
func fileFrames(t *testing.T, file string, bySum map[string]int) []int {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, "ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_packets",
		"-show_data_hash", "MD5", "-show_entries", "packet=data_hash", "-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var idx []int
	for _, line := range strings.Fields(string(out)) {
		i, ok := bySum[strings.TrimPrefix(line, "MD5:")]
		if !ok {
			t.Fatalf("%s holds a frame nobody published: %s", file, line)
		}
		idx = append(idx, i)
	}
	return idx
}

// runEvents runs RecordEvents until the frames are published (in real
// time, each once the recorder has the one before) and it has them all,
// or until it returns, then stops it, and returns what it did. The hub
// takes metadata of up to 1 MiB.
func runEvents(t *testing.T, cfg EventRecordConfig, frames []protocol.Frame, interval time.Duration) (EventRecordStats, error) {
	t.Helper()
	addr, _ := runHubConfig(t, "127.0.0.1:0", hub.Config{MaxMetaBytes: 1 << 20})
	cfg.Client = Config{Hub: addr, Channel: "door"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		st  EventRecordStats
		err error
	}
	var received atomic.Uint64
	cfg.OnFrame = func(st EventRecordStats) { received.Store(st.Received) }
	done, ended := make(chan result, 1), make(chan struct{})
	go func() {
		st, err := RecordEvents(ctx, cfg)
		close(ended)
		done <- result{st, err}
	}()
	waitSubscribers(t, addr, 1)
	pctx, pcancel := context.WithTimeout(ctx, time.Duration(len(frames))*interval+30*time.Second)
	defer pcancel()
	// Each frame goes once the recorder has the one before, and interval
	// later: a recorder behind would be skipped to the newest frame (the
	// hub's rule), and waiting for it to go quiet instead took a recorder
	// busy with a frame of 10,000 events (a second and more under -race on
	// a loaded machine) for one that had everything. The frames' capture
	// times are the test's, whenever they go.
	hubtest.PublishPaced(t, pctx, addr, "door", frames, func(seq uint64) bool {
		for received.Load() < seq {
			select {
			case <-ended: // it refused to go on: what it says is the test's
				return false
			case <-pctx.Done():
				t.Fatalf("the recorder had %d frames of %d when time ran out", received.Load(), seq)
			case <-time.After(5 * time.Millisecond):
			}
		}
		select {
		case <-time.After(interval):
			return true
		case <-pctx.Done():
			return false
		}
	})
	cancel()
	select {
	case r := <-done:
		return r.st, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("RecordEvents did not return within 10 s of its context ending")
	}
	return EventRecordStats{}, nil
}

// TestRecordEventsPrePost: with --pre 5s --post 10s, a person event makes
// one file whose first frame was captured at least 4.5 s before the event
// started and whose last at least 9.5 s after it ended; the frames in
// between are in it, in order; ffprobe reads it whole; the ring stays
// within its byte budget.
func TestRecordEventsPrePost(t *testing.T) {
	const interval = 100 * time.Millisecond
	t0 := time.Now().Add(500 * time.Millisecond)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * interval) }
	const start, end, n = 60, 79, 185
	frames, bySum := eventFrames(n, t0, interval, func(i int) string {
		switch {
		case i >= 30 && i < 35:
			return `{"events":[` + eventJSON("car1", "car", at(30), time.Time{}) + `]}` // not recorded
		case i >= start && i <= end:
			return `{"events":[` + eventJSON("p1", "person", at(start), time.Time{}) + `]}`
		case i > end && i <= end+10:
			return `{"events":[` + eventJSON("p1", "person", at(start), at(end)) + `]}`
		}
		return ""
	})
	for i := range frames { // real JPEGs, to be sure of the frame size the ring holds
		frames[i].Meta = append([]byte(nil), frames[i].Meta...)
	}
	budget := int64(4 << 20)
	dir := t.TempDir()
	st, err := runEvents(t, EventRecordConfig{Dir: dir, Labels: []string{"person"}, Pre: 5 * time.Second, Post: 10 * time.Second,
		PreMaxBytes: budget, FPS: 10}, frames, interval)
	if err != nil {
		t.Fatalf("RecordEvents: %v", err)
	}
	if len(st.Files) != 1 || st.Events != 1 {
		t.Fatalf("stats %+v; want one event in one file", st)
	}
	if want := fmt.Sprintf("door-%s-person-p1.mkv", at(start).Local().Format("20060102-150405")); filepath.Base(st.Files[0]) != want {
		t.Errorf("file %s; want %s (channel, start time, label, id)", filepath.Base(st.Files[0]), want)
	}
	idx := fileFrames(t, st.Files[0], bySum)
	if len(idx) == 0 {
		t.Fatal("the file holds no frames")
	}
	// In order; a frame may be missing where the recorder fell behind (the
	// hub then sends it the newest) or two came within one interval.
	for k := 1; k < len(idx); k++ {
		if idx[k] <= idx[k-1] {
			t.Fatalf("the file goes from frame %d to %d", idx[k-1], idx[k])
		}
	}
	first, last := idx[0], idx[len(idx)-1]
	if missing := last - first + 1 - len(idx); missing > (last-first)/20 {
		t.Errorf("%d of the frames from %d to %d are missing from the file", missing, first, last)
	}
	pre := at(start).Sub(at(first))
	post := at(last).Sub(at(end))
	frameSize := int64(len(frames[0].Payload) + protocol.HeaderLen)
	t.Logf("event from frame %d to %d; file holds frames %d to %d: %.1f s before the start, %.1f s after the end; ring at most %d bytes (%d frames of %d) of a %d-byte budget",
		start, end, first, last, pre.Seconds(), post.Seconds(), st.RingPeak, st.RingPeak/frameSize, frameSize, budget)
	if pre < 4500*time.Millisecond || post < 9500*time.Millisecond {
		t.Errorf("the file starts %.2f s before the event and ends %.2f s after it; want at least 4.5 s and 9.5 s", pre.Seconds(), post.Seconds())
	}
	if pre > 5*time.Second+interval || post > 10*time.Second+2*interval {
		t.Errorf("the file starts %.2f s before the event and ends %.2f s after it; want no more than --pre and --post", pre.Seconds(), post.Seconds())
	}
	if st.RingPeak > budget || st.RingPeak > (8*10+2)*(frameSize+64) || st.RingCut != 0 {
		t.Errorf("ring peak %d bytes, %d cut; want within the budget and (--pre + 3 s) of frames", st.RingPeak, st.RingCut)
	}
	if n, _, _, _ := probeCount(t, st.Files[0]); n != len(idx) {
		t.Errorf("ffprobe decodes %d frames of %d", n, len(idx))
	}
}

// probeCount returns how many frames ffprobe decodes from a file.
func probeCount(t *testing.T, file string) (int, string, int, int) {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, "ffprobe"), "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var n int
	fmt.Sscan(strings.TrimSpace(string(out)), &n)
	return n, "", 0, 0
}

// TestRecordEventsFiles: events that overlap, or start within --post of
// the end of another, extend one file; a later one starts another; an
// event that the frames stop listing ends; "*" records every label;
// metadata claiming 10,000 events costs nothing more.
func TestRecordEventsFiles(t *testing.T) {
	const interval = 50 * time.Millisecond
	t0 := time.Now().Add(500 * time.Millisecond)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * interval) }
	var flood strings.Builder
	for k := range 10000 {
		if k > 0 {
			flood.WriteByte(',')
		}
		flood.WriteString(eventJSON(fmt.Sprintf("f%d", k), "flood", at(150), time.Time{}))
	}
	frames, bySum := eventFrames(220, t0, interval, func(i int) string {
		var evs []string
		if i >= 30 && i < 40 { // a person, 0.5 s
			end := time.Time{}
			if i >= 38 {
				end = at(37)
			}
			evs = append(evs, eventJSON("a", "person", at(30), end))
		}
		if i >= 45 && i < 55 { // a car within --post of it: the same file; then no longer listed
			evs = append(evs, eventJSON("b", "car", at(45), time.Time{}))
		}
		if i >= 150 && i < 152 { // later: a file of its own, from a flood
			return `{"events":[` + flood.String() + `]}`
		}
		if len(evs) == 0 {
			return ""
		}
		return `{"events":[` + strings.Join(evs, ",") + `]}`
	})
	dir := t.TempDir()
	st, err := runEvents(t, EventRecordConfig{Dir: dir, Labels: []string{"*"}, Pre: time.Second, Post: time.Second, FPS: 20}, frames, interval)
	if err != nil {
		t.Fatalf("RecordEvents: %v", err)
	}
	t.Logf("files %v, events %d", st.Files, st.Events)
	if len(st.Files) != 2 || st.Events != 2+protocol.MaxEvents {
		t.Fatalf("stats %+v; want 2 files, for a, b and the flood's first %d", st, protocol.MaxEvents)
	}
	one := fileFrames(t, st.Files[0], bySum)
	// From 1 s before a's start to 1 s after b stopped being listed.
	if one[0] != 10 || one[len(one)-1] < 54+20 || one[len(one)-1] > 54+22 {
		t.Errorf("first file holds frames %d to %d; want 10 to about 74", one[0], one[len(one)-1])
	}
	two := fileFrames(t, st.Files[1], bySum)
	if two[0] != 130 || two[len(two)-1] < 171 {
		t.Errorf("second file holds frames %d to %d; want 130 to 172 or so", two[0], two[len(two)-1])
	}
	if !strings.Contains(filepath.Base(st.Files[0]), "-person-a.mkv") || !strings.Contains(filepath.Base(st.Files[1]), "-flood-f0.mkv") {
		t.Errorf("files named %v", st.Files)
	}
}

// TestRecordEventsRefusesLongPre: a --pre whose frames would not fit in the
// ring's budget is refused at the first frame, with what it would need.
func TestRecordEventsRefusesLongPre(t *testing.T) {
	frames, _ := eventFrames(20, time.Now(), 50*time.Millisecond, func(int) string { return "" })
	st, err := runEvents(t, EventRecordConfig{Dir: t.TempDir(), Labels: []string{"person"}, Pre: time.Hour, FPS: 30, PreMaxBytes: 1 << 20},
		frames, 50*time.Millisecond)
	if !errors.Is(err, ErrPreTooLong) || !strings.Contains(err.Error(), "--pre 1h0m0s of 160x120 frames") || !strings.Contains(err.Error(), "--pre-max-bytes 1.0 MiB") {
		t.Fatalf("RecordEvents with --pre 1h: %v; want refused, saying what it needs", err)
	}
	if st.RingPeak > 1<<20 || len(st.Files) != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRecordEventsRetention: event files are kept by the same retention as
// continuous recordings: past --max-size the oldest event file goes, never
// the one being written, and its ledger is the channel's events ledger.
func TestRecordEventsRetention(t *testing.T) {
	const interval = 50 * time.Millisecond
	t0 := time.Now().Add(500 * time.Millisecond)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * interval) }
	frames, _ := eventFrames(130, t0, interval, func(i int) string {
		for _, start := range []int{10, 50, 90} { // three events, each 0.5 s, far enough apart for a file each
			if i >= start && i < start+10 {
				return `{"events":[` + eventJSON(fmt.Sprintf("e%d", start), "person", at(start), time.Time{}) + `]}`
			}
		}
		return ""
	})
	dir := t.TempDir()
	foreign := filepath.Join(dir, "door-19990101-000000-person-x.mkv")
	if err := os.WriteFile(foreign, []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := runEvents(t, EventRecordConfig{Dir: dir, Labels: []string{"person"}, Pre: 500 * time.Millisecond, Post: 500 * time.Millisecond,
		FPS: 20, Retention: RetentionConfig{MaxSize: 120_000}}, frames, interval) // about one file
	if err != nil {
		t.Fatalf("RecordEvents: %v", err)
	}
	if len(st.Files) != 3 || st.Retention.Deleted != 2 || st.Retention.Files != 1 {
		t.Fatalf("files %v, retention %+v; want 3 files, the first two deleted", st.Files, st.Retention)
	}
	for i, f := range st.Files {
		if _, err := os.Stat(f); (err == nil) != (i == 2) {
			t.Errorf("%s exists: %v; want only the newest kept", filepath.Base(f), err == nil)
		}
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("the foreign file went: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, LedgerPrefix+"door-events.ledger")); err != nil {
		t.Errorf("no events ledger: %v", err)
	}
}

// TestRecordEventsNeverWriteOver: an event file's name comes from the
// event (channel, start, label, id), so a recorder restarted while an event
// goes on meets the name of the file it wrote before the restart (the one
// with the pre-roll), and anyone who can write the directory can plant a
// symlink under the next event's name. Neither is written over or
// through: the recording goes to a new name, numbered.
func TestRecordEventsNeverWriteOver(t *testing.T) {
	const interval = 50 * time.Millisecond
	t0 := time.Now().Add(500 * time.Millisecond)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * interval) }
	start := at(10)
	meta := func(i int) string {
		if i < 10 {
			return ""
		}
		return `{"events":[` + eventJSON("a", "person", start, time.Time{}) + `]}` // goes on past the run
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "door-"+start.Local().Format("20060102-150405")+"-person-a.mkv")
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("not the recorder's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, name); err != nil {
		t.Fatal(err)
	}
	cfg := EventRecordConfig{Dir: dir, Labels: []string{"person"}, Pre: 200 * time.Millisecond, Post: time.Second, FPS: 20}
	frames, bySum := eventFrames(30, t0, interval, meta)
	first, err := runEvents(t, cfg, frames, interval)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "not the recorder's" {
		t.Fatalf("the file a symlink under the event's name points to now holds %d bytes (%v)", len(b), err)
	}
	if len(first.Files) != 1 || first.Files[0] == name {
		t.Fatalf("first run wrote %v; want one file, not through the symlink %s", first.Files, filepath.Base(name))
	}
	kept := fileFrames(t, first.Files[0], bySum)

	// The recorder restarts while the event goes on: the same event, the
	// same name.
	frames2, bySum2 := eventFrames(30, at(30), interval, func(i int) string { return meta(i + 30) })
	second, err := runEvents(t, cfg, frames2, interval)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if len(second.Files) != 1 || second.Files[0] == first.Files[0] {
		t.Fatalf("second run wrote %v; want a file of its own, not over %s", second.Files, filepath.Base(first.Files[0]))
	}
	if again := fileFrames(t, first.Files[0], bySum); len(again) != len(kept) || again[0] != kept[0] {
		t.Fatalf("the first run's file held frames %v, now %v", kept, again)
	}
	if got := fileFrames(t, second.Files[0], bySum2); len(got) == 0 {
		t.Fatal("the second run's file holds no frame")
	}
	t.Logf("files %s (%d frames), %s", filepath.Base(first.Files[0]), len(kept), filepath.Base(second.Files[0]))
}
