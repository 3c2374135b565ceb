package subscriber

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"framehub/internal/testutil"
)

// ffprobeFrames returns the presentation times, in ms, of the frames
// ffprobe decodes from a video file, and whatever it printed on stderr.
func ffprobeFrames(t *testing.T, file string) ([]int, string) {
	t.Helper()
	cmd := exec.Command(testutil.RequireTool(t, "ffprobe"), "-v", "error", "-select_streams", "v:0",
		"-show_entries", "frame=pts_time", "-of", "csv=p=0", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	var pts []int
	for _, l := range strings.Fields(string(out)) {
		l = strings.TrimSuffix(l, ",")
		s, err := strconv.ParseFloat(l, 64)
		if err != nil {
			t.Fatalf("ffprobe %s printed %q", file, l)
		}
		pts = append(pts, int(math.Round(s*1000)))
	}
	return pts, stderr.String()
}

// ffmpegDecode decodes every frame of a file with ffmpeg and returns what
// it reported at level error (nothing, for a sound file).
func ffmpegDecode(t *testing.T, file string) string {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, "ffmpeg"), "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, out)
	}
	return string(out)
}

// ebmlElement is a top-level element found by walkEBML.
type ebmlElement struct {
	id      uint32
	unknown bool // size unknown
}

// walkEBML lists the elements of a Matroska file at the Segment's level,
// reading sizes the way a demuxer does, and fails on anything malformed.
func walkEBML(t *testing.T, b []byte) []ebmlElement {
	t.Helper()
	readID := func(i int) (uint32, int) {
		n := 1
		for n <= 4 && b[i]&(0x80>>(n-1)) == 0 {
			n++
		}
		var id uint32
		for k := 0; k < n; k++ {
			id = id<<8 | uint32(b[i+k])
		}
		return id, i + n
	}
	readSize := func(i int) (uint64, bool, int) {
		n := 1
		for n <= 8 && b[i]&(0x80>>(n-1)) == 0 {
			n++
		}
		v := uint64(b[i]) & (0xFF >> n)
		all := v == 0xFF>>n
		for k := 1; k < n; k++ {
			v = v<<8 | uint64(b[i+k])
			all = all && b[i+k] == 0xFF
		}
		return v, all, i + n
	}
	id, i := readID(0)
	size, _, i := readSize(i)
	if id != idEBML {
		t.Fatalf("file starts with %#x, not an EBML header", id)
	}
	i += int(size)
	if id, i = readID(i); id != idSegment {
		t.Fatalf("no Segment after the EBML header: %#x", id)
	}
	segSize, segUnknown, i := readSize(i)
	if !segUnknown && i+int(segSize) != len(b) {
		t.Fatalf("Segment states %d bytes; %d follow it", segSize, len(b)-i)
	}
	var out []ebmlElement
	for i < len(b) {
		var id uint32
		var size uint64
		var unknown bool
		id, i = readID(i)
		size, unknown, i = readSize(i)
		out = append(out, ebmlElement{id, unknown})
		if unknown {
			t.Fatalf("element %#x of unknown size in a closed file", id)
		}
		i += int(size)
	}
	if i != len(b) {
		t.Fatalf("elements overrun the file by %d bytes", i-len(b))
	}
	return out
}

// TestMatroskaFile writes frames with a gap, closes the file, and checks
// that ffmpeg decodes every frame at the time it was written, without a
// complaint, and that the closed file is an ordinary one: known sizes, a
// SeekHead, Cues and a Duration.
func TestMatroskaFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f.mkv")
	w, err := createMatroska(file, mkvTrackInfo{Width: 96, Height: 64, FPS: 10, Title: "framehub test", Start: time.Now()}, false)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for i := range 40 {
		at := time.Duration(i) * 100 * time.Millisecond
		if i >= 20 {
			at += 3 * time.Second // an outage: the previous picture stays on screen
		}
		if err := w.WriteFrame(testutil.JPEG(96, 64, i), at); err != nil {
			t.Fatal(err)
		}
		want = append(want, int(at/time.Millisecond))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pts, stderr := ffprobeFrames(t, file)
	if fmt.Sprint(pts) != fmt.Sprint(want) || stderr != "" {
		t.Fatalf("ffprobe decodes frames at %v ms (stderr %q); want %v", pts, stderr, want)
	}
	if msg := ffmpegDecode(t, file); msg != "" {
		t.Fatalf("ffmpeg -v error: %s", msg)
	}
	out, err := exec.Command(testutil.RequireTool(t, "ffprobe"), "-v", "error", "-show_entries",
		"format=duration:stream=codec_name,width,height:format_tags=title", "-of", "default=nw=1", file).Output()
	if got := string(out); err != nil || !strings.Contains(got, "codec_name=mjpeg\nwidth=96\nheight=64\n") ||
		!strings.Contains(got, "duration=7.000000") || !strings.Contains(got, "TAG:title=framehub test") {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range walkEBML(t, b) {
		ids = append(ids, map[uint32]string{idSeekHead: "SeekHead", idInfo: "Info", idTracks: "Tracks",
			idCluster: "Cluster", idCues: "Cues"}[e.id])
	}
	// One cluster per second of video: 0-1.9 s in two, 5-6.9 s in two.
	if got := strings.Join(ids, " "); got != "SeekHead Info Tracks Cluster Cluster Cluster Cluster Cues" {
		t.Fatalf("top-level elements: %s", got)
	}
}

// TestMatroskaCutAnywhere is what a kill -9, a full disk or a pulled plug
// leaves: a file never closed, cut at any byte. Every frame that is
// complete before the cut must decode; ffmpeg complains only when the cut
// falls inside a frame.
func TestMatroskaCutAnywhere(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.mkv")
	w, err := createMatroska(file, mkvTrackInfo{Width: 64, Height: 48, FPS: 25, Start: time.Now()}, false)
	if err != nil {
		t.Fatal(err)
	}
	headerEnd := w.off
	var ends []int64 // file length after each frame
	for i := range 60 {
		if err := w.WriteFrame(testutil.JPEG(64, 48, i), time.Duration(i)*40*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, w.off)
	}
	w.f.Close() // not w.Close: no Cues, sizes left unknown, as after a crash
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != ends[len(ends)-1] {
		t.Fatalf("file has %d bytes; the writer counted %d", len(b), ends[len(ends)-1])
	}
	type cut struct {
		at     int64
		frames int
	}
	cuts := []cut{{headerEnd, 0}}
	for _, k := range []int{0, 24, 25, 59} { // 25 frames per cluster: frame 25 begins the second
		start := headerEnd
		if k > 0 {
			start = ends[k-1]
		}
		cuts = append(cuts, cut{ends[k], k + 1}, cut{ends[k] - 1, k}, cut{(start + ends[k]) / 2, k}, cut{start + 3, k})
	}
	for _, c := range cuts {
		cf := filepath.Join(dir, fmt.Sprintf("cut-%d.mkv", c.at))
		if err := os.WriteFile(cf, b[:c.at], 0o644); err != nil {
			t.Fatal(err)
		}
		boundary := c.at == headerEnd
		for _, e := range ends {
			boundary = boundary || c.at == e
		}
		// A frame cut short may still be shown, partly: ffmpeg's JPEG
		// decoder is lenient. Whole frames must all be there.
		pts, stderr := ffprobeFrames(t, cf)
		if len(pts) < c.frames || len(pts) > c.frames+1 || (boundary && len(pts) != c.frames) {
			t.Errorf("cut at byte %d: ffprobe decodes %d frames; want the %d complete before the cut (stderr %q)", c.at, len(pts), c.frames, stderr)
		}
		if boundary && c.frames > 0 {
			if msg := ffmpegDecode(t, cf); msg != "" {
				t.Errorf("cut at byte %d, between two frames: ffmpeg -v error says %s", c.at, msg)
			}
		}
	}
}

// TestMatroskaWriteError: the writer sees the errors os.File reports
// (/dev/full is always full).
func TestMatroskaWriteError(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	_, err := createMatroska("/dev/full", mkvTrackInfo{Width: 8, Height: 8, FPS: 10}, false)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("createMatroska on /dev/full: %v; want ENOSPC", err)
	}
}

func TestEBMLEncoding(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want string
	}{
		{0, "80"}, {126, "fe"}, {127, "407f"}, {16382, "7ffe"}, {16383, "203fff"}, {1 << 21, "10200000"},
	} {
		if got := fmt.Sprintf("%x", appendSize(nil, c.n)); got != c.want {
			t.Errorf("appendSize(%d) = %s; want %s", c.n, got, c.want)
		}
	}
	if got := fmt.Sprintf("%x", appendUint(nil, idTimestampScale, 1000000)); got != "2ad7b1830f4240" {
		t.Errorf("TimestampScale element = %s", got)
	}
	if got := binary.BigEndian.Uint64(size8(5)); got != 1<<56|5 {
		t.Errorf("size8(5) = %x", got)
	}
	if got := len(appendVoid(nil, mkvSeekHeadLen)); got != mkvSeekHeadLen {
		t.Errorf("void of %d bytes has %d", mkvSeekHeadLen, got)
	}
}
