//go:build cgo

package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
	"framehub/publisher"
)

// Test data from Debian's opencv-doc: a still with one face, and a video of
// people walking (768x576, 10 fps).
const dataDir = "/usr/share/doc/opencv-doc/examples/data"

// messiFace is where the face in messi5.jpg is (checked by eye).
var messiFace = image.Rect(227, 94, 264, 131)

func dataFile(t testing.TB, name string) string {
	t.Helper()
	return testutil.RequireFile(t, filepath.Join(dataDir, name))
}

// still returns a JPEG file as a picture.
func still(t testing.TB, name string) picture {
	t.Helper()
	b, err := os.ReadFile(dataFile(t, name))
	if err != nil {
		t.Fatal(err)
	}
	w, h, err := protocol.JPEGSize(b)
	if err != nil {
		t.Fatal(err)
	}
	return picture{jpeg: b, w: w, h: h}
}

// repeat returns n copies of p.
func repeat(p picture, n int) []picture {
	out := make([]picture, n)
	for i := range out {
		out[i] = p
	}
	return out
}

// videoFrames decodes frames first..first+n-1 of a video and encodes each
// as a JPEG of quality 90, as a camera publisher would send them.
func videoFrames(t testing.TB, name string, first, n int) []picture {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(dataFile(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	var out []picture
	for i := 0; len(out) < n && vc.Read(&m) && !m.Empty(); i++ {
		if i < first {
			continue
		}
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 90})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, picture{jpeg: append([]byte(nil), buf.GetBytes()...), w: m.Cols(), h: m.Rows()})
		buf.Close()
	}
	if len(out) < n {
		t.Fatalf("%s: %d frames from %d; want %d", name, len(out), first, n)
	}
	return out
}

// running is a Processor running until the test ends.
type running struct {
	p    *Processor
	done chan struct{}
	err  error
	stop context.CancelFunc
}

// start makes a Processor of cfg (steps given as specs) and runs it until
// the test ends.
func start(t testing.TB, cfg Config, specs ...string) *running {
	t.Helper()
	if len(specs) > 0 {
		steps, err := ParseSteps(specs, StepOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Steps = append(cfg.Steps, steps...)
	}
	p, err := New(cfg)
	if err != nil {
		closeSteps(cfg.Steps)
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(r.done)
		r.err = p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		p.Close()
	})
	return r
}

// iou returns the intersection over union of a box and a rectangle.
func iou(b protocol.Box, r image.Rectangle) float64 {
	x, y, w, h := b.Rect()
	br := image.Rect(x, y, x+w, y+h)
	in := br.Intersect(r)
	inter := float64(in.Dx() * in.Dy())
	union := float64(br.Dx()*br.Dy()+r.Dx()*r.Dy()) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// decode returns a JPEG's picture.
func decode(t testing.TB, b []byte) *image.RGBA {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, img.Bounds().Min, draw.Src)
	return out
}

// encode returns img as a JPEG picture of quality 90.
func encode(t testing.TB, img image.Image) picture {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return picture{jpeg: b.Bytes(), w: img.Bounds().Dx(), h: img.Bounds().Dy()}
}

// placed returns src on a gray canvas of w×h at offset at.
func placed(src image.Image, w, h int, at image.Point) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(out, out.Bounds(), &image.Uniform{color.RGBA{90, 90, 90, 255}}, image.Point{}, draw.Src)
	draw.Draw(out, src.Bounds().Add(at), src, src.Bounds().Min, draw.Src)
	return out
}

// noisy returns img with sensor-like noise: every channel of every pixel
// moved by up to ±amp, differently in every call.
func noisy(img *image.RGBA, amp int, rng *rand.Rand) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	for i, v := range img.Pix {
		if i%4 == 3 {
			out.Pix[i] = 255
			continue
		}
		out.Pix[i] = uint8(min(255, max(0, int(v)+rng.IntN(2*amp+1)-amp)))
	}
	return out
}

func TestFacesLandWhereTheFaceIs(t *testing.T) {
	addr := testHub(t, hubConfig())
	messi := still(t, "messi5.jpg")
	at := image.Pt(130, 70) // the picture placed on a larger canvas: the box must move with it
	moved := encode(t, placed(decode(t, messi.jpeg), 800, 480, at))
	for _, c := range []struct {
		name  string
		pic   picture
		steps string
		face  image.Rectangle
		w     int
	}{
		{"as it came", messi, "faces", messiFace, messi.w},
		{"moved", moved, "faces", messiFace.Add(at), 800},
		{"then a thumbnail", moved, "faces,resize=400", image.Rectangle{Min: messiFace.Min.Add(at).Div(2), Max: messiFace.Max.Add(at).Div(2)}, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, outCh := "in-"+strings.ReplaceAll(c.name, " ", "-"), "out-"+strings.ReplaceAll(c.name, " ", "-")
			out := collect(t, addr, outCh)
			start(t, Config{Hub: addr, In: in, Out: outCh}, c.steps)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sent := push(t, ctx, addr, in, 1, 50*time.Millisecond, repeat(c.pic, 5))
			fs := out.waitFor(t, 20*time.Second, "frame 5 processed", lastSeq(5))
			for _, f := range fs {
				if f.capture != sent[f.seq] {
					t.Errorf("frame %d: capture time %d; want the input's, %d", f.seq, f.capture, sent[f.seq])
				}
				if f.w != c.w {
					t.Errorf("frame %d: %d pixels wide; want %d", f.seq, f.w, c.w)
				}
				if len(f.boxes) != 1 || f.boxes[0].Label != "face" || f.boxes[0].Score <= 0 || iou(f.boxes[0], c.face) < 0.6 {
					t.Fatalf("frame %d: boxes %+v; want one face over %v (metadata %s)", f.seq, f.boxes, c.face, f.meta)
				}
			}
			if c.name == "as it came" && !bytes.Equal(fs[0].payload, messi.jpeg) {
				t.Errorf("detection alone re-encoded the picture; want the input's JPEG as it came")
			}
		})
	}
}

// TestPeopleInPedestrianVideo: the HOG detector finds the people walking in
// OpenCV's sample video, as boxes of a standing person's shape.
func TestPeopleInPedestrianVideo(t *testing.T) {
	addr := testHub(t, hubConfig())
	pics := videoFrames(t, "vtest.avi", 30, 20)
	out := collect(t, addr, "people")
	r := start(t, Config{Hub: addr, In: "street", Out: "people"}, "people,draw")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lockstep(t, ctx, addr, "street", 1, pics, out, r)
	fs := out.all()
	withPeople, people := 0, 0
	for _, f := range fs {
		n := 0
		for _, b := range f.boxes {
			if b.Label == "person" && b.Score >= 0.5 && b.H > 1.5*b.W && b.H > 100 {
				n++
			}
		}
		if n > 0 {
			withPeople++
		}
		people += n
	}
	t.Logf("%d frames, %d with people, %d people found with a score of 0.5 or more", len(fs), withPeople, people)
	if len(fs) != len(pics) || withPeople < len(fs)*8/10 || people < 2*len(fs) {
		t.Fatalf("%d of %d frames had people (%d in all); want people in at least 80%% of the frames, two or more a frame on average", withPeople, len(fs), people)
	}
	if st := r.p.Stats(); st.Processed != uint64(len(pics)) || st.Failed != 0 {
		t.Fatalf("stats %+v; want every frame processed, none failed", st)
	}
}

// settled returns a condition: every input frame that arrived has been
// skipped, or processed and published or dropped.
func settled(r *running) func([]received) bool {
	return func([]received) bool {
		st := r.p.Stats()
		taken := st.Processed + st.Failed + st.BadInput
		return st.Received == st.Skipped+taken && st.Processed == st.Published+st.Late+st.Overwritten
	}
}

// lockstep publishes pics one at a time, each once the previous one's
// result has arrived (or the processor has dropped it): every frame is
// processed, none skipped, so runs can be compared frame by frame.
func lockstep(t testing.TB, ctx context.Context, addr, channel string, first uint64, pics []picture, out *collector, r *running) {
	t.Helper()
	s, err := publisher.NewSender(publisher.SenderConfig{Hub: addr, Channel: channel})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, p := range pics {
		seq := first + uint64(i)
		before := r.p.Stats()
		f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey, Width: uint32(p.w), Height: uint32(p.h),
			Seq: seq, CaptureTime: time.Now().UnixNano()}, Meta: p.meta, Payload: p.jpeg}
		if err := s.Send(ctx, protocol.AppendFrame(nil, &f)); err != nil {
			t.Fatalf("publish frame %d: %v", seq, err)
		}
		out.waitFor(t, 20*time.Second, fmt.Sprintf("frame %d processed", seq), func(fs []received) bool {
			st := r.p.Stats()
			return lastSeq(seq)(fs) || st.Failed+st.BadInput > before.Failed+before.BadInput
		})
	}
}

// movingSquare returns n frames of a still picture with a 40×40 red square
// on it at square(i), and that function: the square moves 12 pixels a
// frame for the first moving frames, then stands still.
func movingSquare(t testing.TB, bg *image.RGBA, n, moving int) ([]picture, func(i int) image.Rectangle) {
	t.Helper()
	square := func(i int) image.Rectangle {
		x := 20 + 12*min(i, moving-1)
		return image.Rect(x, 250, x+40, 290)
	}
	pics := make([]picture, n)
	for i := range pics {
		img := image.NewRGBA(bg.Bounds())
		copy(img.Pix, bg.Pix)
		draw.Draw(img, square(i), &image.Uniform{color.RGBA{220, 20, 20, 255}}, image.Point{}, draw.Src)
		pics[i] = encode(t, img)
	}
	return pics, square
}

// TestMotionOnlyWhereSomethingMoves: a red square crosses a still picture,
// then stops. Motion boxes cover the square while it moves, appear nowhere
// else, and go away once it stands still.
func TestMotionOnlyWhereSomethingMoves(t *testing.T) {
	addr := testHub(t, hubConfig())
	const n, moving = 40, 25
	pics, square := movingSquare(t, decode(t, still(t, "messi5.jpg").jpeg), n, moving)
	out := collect(t, addr, "moving")
	r := start(t, Config{Hub: addr, In: "scene", Out: "moving"}, "motion")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lockstep(t, ctx, addr, "scene", 1, pics, out, r)
	found := 0
	for _, f := range out.all() {
		i := int(f.seq) - 1
		for _, b := range f.boxes {
			x, y, w, h := b.Rect()
			br := image.Rect(x, y, x+w, y+h)
			// The square now or a frame ago (background subtraction sees
			// where it left too).
			if b.Label != "motion" || !(br.Overlaps(square(i)) || br.Overlaps(square(max(i-1, 0)))) {
				t.Errorf("frame %d: box %v, away from the square at %v", f.seq, br, square(i))
			}
		}
		switch {
		case i >= 3 && i < moving && len(f.boxes) > 0:
			found++
		case i >= moving+10 && len(f.boxes) > 0:
			t.Errorf("frame %d: %d motion boxes, %d frames after the square stopped", f.seq, len(f.boxes), i-moving+1)
		}
	}
	if found < moving-3-2 {
		t.Errorf("motion boxes in %d of the %d frames the square moved in (after the model's warm-up)", found, moving-3)
	}
}

// TestOrderWithFourWorkers: four workers detect faces in a video faster
// than they can, each frame taking its own time; results that finish
// after a newer one are dropped, so the output's sequence numbers only go
// up, and each keeps its input's capture time.
func TestOrderWithFourWorkers(t *testing.T) {
	addr := testHub(t, hubConfig())
	pics := videoFrames(t, "Megamind.avi", 0, 90)
	out := collect(t, addr, "faces4")
	r := start(t, Config{Hub: addr, In: "film", Out: "faces4", Workers: 4}, "faces,draw")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := push(t, ctx, addr, "film", 1, time.Second/40, pics) // 40 fps for 2.25 s: more than four workers keep up with
	out.waitFor(t, 10*time.Second, "every frame taken processed", settled(r))
	fs := out.all()
	for i, f := range fs {
		if i > 0 && f.seq <= fs[i-1].seq {
			t.Fatalf("frame %d published after frame %d", f.seq, fs[i-1].seq)
		}
		if f.capture != sent[f.seq] {
			t.Fatalf("frame %d: capture time %d; want the input's, %d", f.seq, f.capture, sent[f.seq])
		}
	}
	st := r.p.Stats()
	t.Logf("%d published of %d: %+v", len(fs), len(pics), st)
	if len(fs) < 5 || st.Skipped == 0 {
		t.Fatalf("%d frames published, %d skipped; want frames published and others skipped by workers that cannot keep up", len(fs), st.Skipped)
	}
}

// slowStep takes a fixed time per frame: a detector slower than the camera.
type slowStep struct{ d time.Duration }

func (s slowStep) Name() string { return "slow" }
func (s slowStep) Apply(f *Frame) error {
	time.Sleep(s.d)
	return nil
}

// TestSlowStepSkipsInsteadOfLagging: a 150 ms step on a 30 fps channel.
// The processor skips the frames it has no time for instead of queueing
// them: most frames are never published, a frame waits for a worker a
// fraction of the step, and the age processing adds to what it publishes
// stays where it started however long it runs. A queue would add a step
// every few frames (seconds after 3 s).
//
// Everything is measured within the run and relative to it, so that a
// loaded machine, which makes every frame older and every step longer,
// does not fail the test: the age the processor adds to a frame is when
// the output arrived minus when the same frame arrived at a subscriber of
// the input, which the same load delays as much.
func TestSlowStepSkipsInsteadOfLagging(t *testing.T) {
	addr := testHub(t, hubConfig())
	const step = 150 * time.Millisecond
	pics := videoFrames(t, "vtest.avi", 0, 90)
	in := collect(t, addr, "cam")
	out := collect(t, addr, "slow")
	r := start(t, Config{Hub: addr, In: "cam", Out: "slow", Steps: []Step{slowStep{step}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const interval = time.Second / 30
	sent := push(t, ctx, addr, "cam", 1, interval, pics) // 3 s
	// A queueing processor would still finish, after 90 steps (13.5 s), and
	// fail the assertions below rather than this wait.
	fs := out.waitFor(t, 20*time.Second, "the last frames published and every frame taken processed",
		func(fs []received) bool { return lastSeq(85)(fs) && settled(r)(fs) })
	arrived := map[uint64]time.Time{}
	for _, f := range in.all() {
		arrived[f.seq] = f.at
	}
	var added []float64 // ms from the input's arrival to the output's, in publishing order
	for _, f := range fs {
		if at, ok := arrived[f.seq]; ok {
			added = append(added, float64(f.at.Sub(at))/float64(time.Millisecond))
		}
	}
	st := r.p.Stats()
	t.Logf("published %d of %d; skipped %d; processing p50 %.1f ms, waiting p50 %.1f ms, age added p50 %.1f ms p99 %.1f ms; added, input to output subscriber %.0f",
		len(fs), len(sent), st.Skipped, st.ProcMSP50, st.WaitMSP50, st.AddedMSP50, st.AddedMSP99, added)
	// A step of four and a half frame intervals publishes about one frame
	// in four or five; a loaded machine publishes fewer, a queue all.
	if len(fs) > len(sent)/2 || len(fs) < 5 {
		t.Errorf("%d of %d frames published (%d skipped by the processor); want most of them skipped, about one published per step", len(fs), len(sent), st.Skipped)
	}
	// A worker that comes free takes the newest frame, which arrived at
	// most an input interval or so before: the wait is a fraction of the
	// step (as long as it took in this run). Behind a queue, even one a few
	// frames deep, a frame waits for the steps ahead of it.
	if st.WaitMSP50 > st.ProcMSP50/2 {
		t.Errorf("frames waited %.1f ms (p50) for a worker, processing took %.1f ms; want well under the step: frames queue", st.WaitMSP50, st.ProcMSP50)
	}
	// The age added does not grow: the last quarter of the frames published
	// gained no more than a step more than the first quarter.
	k := max(len(added)/4, 2)
	if len(added) < 2*k {
		t.Fatalf("only %d frames published were seen on the input too; want at least %d", len(added), 2*k)
	}
	first, last := testutil.Median(added[:k]), testutil.Median(added[len(added)-k:])
	if last > first+st.ProcMSP50 {
		t.Errorf("the last frames published gained %.0f ms (median of %d), the first ones %.0f ms; want no growth beyond a step (%.0f ms): frames queue", last, k, first, st.ProcMSP50)
	}
}

// failingStep fails on even frames, as a step meeting a frame it cannot
// handle.
type failingStep struct{}

func (failingStep) Name() string { return "picky" }
func (failingStep) Apply(f *Frame) error {
	if f.Seq%2 == 0 {
		return errors.New("cannot handle this frame")
	}
	return nil
}

// TestStepFailureSkipsTheFrame: a step that fails on a frame costs that
// frame (counted, never published half processed), not the processor.
func TestStepFailureSkipsTheFrame(t *testing.T) {
	addr := testHub(t, hubConfig())
	out := collect(t, addr, "picky")
	r := start(t, Config{Hub: addr, In: "cam", Out: "picky", Steps: []Step{failingStep{}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lockstep(t, ctx, addr, "cam", 1, repeat(still(t, "messi5.jpg"), 10), out, r)
	for _, f := range out.all() {
		if f.seq%2 == 0 {
			t.Errorf("frame %d published; the step failed on it", f.seq)
		}
	}
	out.waitFor(t, 5*time.Second, "every frame taken processed", settled(r))
	if st := r.p.Stats(); st.Failed != 5 || st.Published != 5 {
		t.Fatalf("stats %+v; want 5 failed and 5 published", st)
	}
}

// TestHostileInputMetadata: every attack on the input's metadata (huge,
// deeply nested, wrong types, boxes not a list) is counted; the worker
// goes on at its pace; the output's metadata is a JSON object within the
// hub's limit whose boxes the page draws, and the worker's own boxes are
// in it.
func TestHostileInputMetadata(t *testing.T) {
	addr := testHub(t, hubConfig())
	messi := still(t, "messi5.jpg")
	var pics []picture
	wantBad := 0
	for _, c := range hostileMeta {
		if len(c.meta) > hub.DefaultMaxMetaBytes {
			continue
		}
		p := messi
		p.meta = []byte(c.meta)
		pics = append(pics, p)
		if c.wantBad {
			wantBad++
		}
	}
	out := collect(t, addr, "checked")
	var logged testutil.LockedBuffer
	r := start(t, Config{Hub: addr, In: "cam", Out: "checked", Logger: slog.New(slog.NewTextHandler(&logged, nil))}, "faces")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	lockstep(t, ctx, addr, "cam", 1, pics, out, r)
	perFrame := time.Since(began) / time.Duration(len(pics))
	out.waitFor(t, 5*time.Second, "every frame taken processed", settled(r))
	for _, f := range out.all() {
		if len(f.meta) > hub.DefaultMaxMetaBytes || !json.Valid(f.meta) || f.boxesBad != nil {
			t.Fatalf("frame %d: output metadata of %d bytes, problem %+v: %.300s", f.seq, len(f.meta), f.boxesBad, f.meta)
		}
		faces := 0
		for _, b := range f.boxes {
			if b.Label == "face" && iou(b, messiFace) > 0.6 {
				faces++
			}
		}
		if faces != 1 {
			t.Errorf("frame %d: %d faces found; want the one in the picture: %.300s", f.seq, faces, f.meta)
		}
	}
	st := r.p.Stats()
	if st.Published != uint64(len(pics)) || st.BadMeta != uint64(wantBad) {
		t.Fatalf("stats %+v; want %d published, %d with bad metadata", st, len(pics), wantBad)
	}
	if perFrame > time.Second {
		t.Errorf("%v per frame: hostile metadata slowed the worker", perFrame)
	}
	elapsed := time.Since(began)
	if n := strings.Count(logged.String(), "input metadata partly left out"); n < 1 || n > 1+int(elapsed/logEvery) {
		t.Errorf("%d log lines about bad metadata in %v; want one, and at most one per %v\n%s", n, elapsed, logEvery, logged.String())
	}
}

// TestOutputMetadataWithinTheHubLimit: a hub that takes 2 KiB of metadata,
// and input frames whose metadata nearly fills it with boxes: the
// worker's own boxes and its steps would take the output past the limit,
// so upstream boxes are left out to fit, and the output says how many.
func TestOutputMetadataWithinTheHubLimit(t *testing.T) {
	const limit = 2048
	addr := testHub(t, hub.Config{MaxMetaBytes: limit})
	var b strings.Builder
	b.WriteString(`{"boxes":[`)
	n := 0
	for b.Len() < limit-80 {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"x":%d,"y":10,"w":20,"h":20,"label":"upstream"}`, n)
		n++
	}
	b.WriteString(`]}`)
	p := still(t, "messi5.jpg")
	p.meta = []byte(b.String())
	out := collect(t, addr, "cut")
	r := start(t, Config{Hub: addr, In: "cam", Out: "cut"}, "faces")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	push(t, ctx, addr, "cam", 1, 100*time.Millisecond, repeat(p, 3))
	fs := out.waitFor(t, 10*time.Second, "frame 3", lastSeq(3))
	var m struct {
		Dropped int `json:"boxes_dropped"`
	}
	if err := json.Unmarshal(fs[0].meta, &m); err != nil || len(fs[0].meta) > limit || fs[0].boxesBad != nil {
		t.Fatalf("output metadata of %d bytes, problem %+v, %v: %s", len(fs[0].meta), fs[0].boxesBad, err, fs[0].meta)
	}
	faces := 0
	for _, b := range fs[0].boxes {
		if b.Label == "face" {
			faces++
		}
	}
	if m.Dropped == 0 || len(fs[0].boxes)+m.Dropped != n+1 || faces != 1 {
		t.Fatalf("%d boxes kept (%d faces), %d dropped; want the face kept, %d in all, upstream ones left out", len(fs[0].boxes), faces, m.Dropped, n+1)
	}
	if st := r.p.Stats(); st.MetaCut == 0 {
		t.Fatalf("stats %+v; want the cuts counted", st)
	}
}

// TestWaitsForInputAndReconnects: a processor started before anyone
// publishes its input waits for it; when the hub restarts, it comes back
// like every client and goes on.
func TestWaitsForInputAndReconnects(t *testing.T) {
	addr, stop := stoppableHub(t, "127.0.0.1:0")
	r := start(t, Config{Hub: addr, In: "late", Out: "late-faces"}, "faces")
	pics := repeat(still(t, "messi5.jpg"), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// Nothing is published yet: it must wait, subscribed, not fail.
	hubtest.WaitSubscribers(t, addr, 1, 10*time.Second)
	select {
	case <-r.done:
		t.Fatalf("Run ended with no input channel: %v", r.err)
	default:
	}
	out := collect(t, addr, "late-faces")
	push(t, ctx, addr, "late", 1, 100*time.Millisecond, pics)
	out.waitFor(t, 10*time.Second, "frame 3 before the restart", lastSeq(3))

	stop()
	addr2, _ := stoppableHub(t, addr) // the same address, as a restarted hub has
	out2 := collect(t, addr2, "late-faces")
	// The processor reconnects within its backoff (2.5 s at most); frames
	// sent before then are lost, as for every subscriber.
	deadline := time.Now().Add(15 * time.Second)
	for seq := uint64(10); ; seq += 3 {
		push(t, ctx, addr2, "late", seq, 100*time.Millisecond, pics)
		if fs := out2.all(); len(fs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no output 15 s after the hub restarted; stats %+v", r.p.Stats())
		}
	}
	if st := r.p.Stats(); st.Reconnects != 1 {
		t.Errorf("input reconnects %d; want 1", st.Reconnects)
	}
}

func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"out is in", Config{Hub: "127.0.0.1:1", In: "cam", Out: "cam", Steps: []Step{slowStep{}}}, "input channel"},
		{"no steps", Config{Hub: "127.0.0.1:1", In: "cam", Out: "b"}, "no steps"},
		{"bad channel", Config{Hub: "127.0.0.1:1", In: "cam/1", Out: "b", Steps: []Step{slowStep{}}}, "invalid channel name"},
		{"gate without detector", Config{Hub: "127.0.0.1:1", In: "cam", Out: "b", Steps: []Step{slowStep{}}, Gate: true}, "detectors"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v; want an error about %q", err, c.want)
			}
		})
	}
	for _, c := range []struct {
		specs []string
		opt   StepOptions
		want  string
	}{
		{[]string{"faces"}, StepOptions{Cascade: "/no/such/cascade.xml"}, "no such file"},
		{[]string{"faces"}, StepOptions{Cascade: "/etc/hostname"}, "cannot load"},
		{[]string{"sepia"}, StepOptions{}, "unknown step"},
		{[]string{"resize"}, StepOptions{}, "resize"},
		{[]string{"motion=-3"}, StepOptions{}, "minimum area"},
		{[]string{"faces=1"}, StepOptions{}, "no argument"},
		{[]string{"blur=4"}, StepOptions{}, "odd"},
	} {
		steps, err := ParseSteps(c.specs, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			closeSteps(steps)
			t.Errorf("ParseSteps(%q): %v; want an error about %q", c.specs, err, c.want)
		}
	}
	// Without opencv-data, faces says what to install.
	if _, err := findCascade("", []string{"/no/such/place.xml"}); !errors.Is(err, ErrNoCascade) || !strings.Contains(err.Error(), "opencv-data") {
		t.Errorf("faces with no cascade installed: %v; want ErrNoCascade naming opencv-data", err)
	}
}

// gateRun is what one run of a gate comparison saw.
type gateRun struct {
	boxes    map[uint64][]protocol.Box // per input frame
	cpu      time.Duration             // this process's CPU time per frame
	steady   time.Duration             // the same, after the motion step's warm-up
	stats    Stats
	fresh    int // boxes found on the frame itself
	carried  int // boxes carried from an earlier frame
	withGate bool
	events   map[string]protocol.Event // every event the frames carried, as last carried
}

// runGate processes every one of pics in lockstep, with or without the
// motion gate, and measures this process's CPU time per frame (the hub and
// the test's own publishing and subscribing included: the same in both).
func runGate(t testing.TB, addr, name string, pics []picture, gate bool, specs ...string) gateRun {
	t.Helper()
	return runGateWith(t, addr, name, pics, Config{Gate: gate}, specs...)
}

// runGateWith is runGate with more of the processor's configuration
// (Hub, In and Out are set here).
func runGateWith(t testing.TB, addr, name string, pics []picture, cfg Config, specs ...string) gateRun {
	t.Helper()
	gate := cfg.Gate
	in, outCh := name+"-in", name+"-out"
	out := collect(t, addr, outCh)
	cfg.Hub, cfg.In, cfg.Out = addr, in, outCh
	r := start(t, cfg, specs...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+time.Duration(len(pics))*time.Second)
	defer cancel()
	cpu0 := cpuTime()
	lockstep(t, ctx, addr, in, 1, pics[:motionWarmup], out, r)
	cpu1 := cpuTime()
	lockstep(t, ctx, addr, in, motionWarmup+1, pics[motionWarmup:], out, r)
	cpu2 := cpuTime()
	g := gateRun{boxes: map[uint64][]protocol.Box{}, stats: r.p.Stats(), withGate: gate,
		cpu: (cpu2 - cpu0) / time.Duration(len(pics)), steady: (cpu2 - cpu1) / time.Duration(len(pics)-motionWarmup)}
	for _, f := range out.all() {
		evs, _ := protocol.ParseEvents(f.meta)
		for _, e := range evs {
			if g.events == nil {
				g.events = map[string]protocol.Event{}
			}
			g.events[e.ID] = e
		}
		for _, b := range f.boxes {
			if b.Label == "motion" {
				continue
			}
			g.boxes[f.seq] = append(g.boxes[f.seq], b)
			if b.Carried {
				g.carried++
			} else {
				g.fresh++
			}
		}
	}
	r.stop()
	<-r.done
	return g
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tracks links the boxes of consecutive frames that overlap (IoU ≥ 0.3)
// into tracks: the same person, frame after frame. Each track lists its
// boxes by frame.
func tracks(boxes map[uint64][]protocol.Box, frames int) []map[uint64]protocol.Box {
	var all []map[uint64]protocol.Box
	var open []map[uint64]protocol.Box // tracks with a box in the previous frame
	for seq := uint64(1); seq <= uint64(frames); seq++ {
		var next []map[uint64]protocol.Box
		used := map[int]bool{}
		for _, b := range boxes[seq] {
			var tr map[uint64]protocol.Box
			for i, o := range open {
				x, y, w, h := o[seq-1].Rect()
				if !used[i] && iou(b, image.Rect(x, y, x+w, y+h)) >= 0.3 {
					tr, used[i] = o, true
					break
				}
			}
			if tr == nil {
				tr = map[uint64]protocol.Box{}
				all = append(all, tr)
			}
			tr[seq] = b
			next = append(next, tr)
		}
		open = next
	}
	return all
}

// matched reports whether some box of boxes overlaps b (IoU ≥ 0.3).
func matched(b protocol.Box, boxes []protocol.Box) bool {
	x, y, w, h := b.Rect()
	for _, o := range boxes {
		if iou(o, image.Rect(x, y, x+w, y+h)) >= 0.3 {
			return true
		}
	}
	return false
}

// lostTracks counts what the ungated run follows for more than three
// frames (a person, a face) that the gated run misses in more than three
// frames in a row, and says so.
func lostTracks(t testing.TB, plain, gated gateRun, frames int) int {
	t.Helper()
	lost := 0
	for _, tr := range tracks(plain.boxes, frames) {
		if len(tr) <= 3 {
			continue
		}
		run, worst := 0, 0
		for seq := uint64(1); seq <= uint64(frames); seq++ {
			b, ok := tr[seq]
			if !ok {
				continue
			}
			if matched(b, gated.boxes[seq]) {
				run = 0
			} else {
				run++
				worst = max(worst, run)
			}
		}
		if worst > 3 {
			lost++
			t.Logf("found by the ungated run in %d frames, missed by the gated run in %d in a row", len(tr), worst)
		}
	}
	return lost
}

// TestGateOnPedestrianVideo: with the motion gate, the people detector
// runs only where people walk. No person the ungated run follows for more
// than three frames is lost for more than three frames in a row, and it
// costs less CPU.
func TestGateOnPedestrianVideo(t *testing.T) {
	addr := testHub(t, hubConfig())
	pics := videoFrames(t, "vtest.avi", 0, 60)
	plain := runGate(t, addr, "plain", pics, false, "people")
	gated := runGate(t, addr, "gated", pics, true, "people")
	followed := 0
	for _, tr := range tracks(plain.boxes, len(pics)) {
		if len(tr) > 3 {
			followed++
		}
	}
	lost := lostTracks(t, plain, gated, len(pics))
	t.Logf("pedestrians, %d frames: ungated %d people found, CPU %v a frame; gated %d found + %d carried, CPU %v a frame (%.0f%%), %v after the warm-up (%.0f%%); %d people followed, %d lost",
		len(pics), plain.fresh, plain.cpu, gated.fresh, gated.carried, gated.cpu, 100*float64(gated.cpu)/float64(plain.cpu),
		gated.steady, 100*float64(gated.steady)/float64(plain.steady), followed, lost)
	if followed < 3 {
		t.Fatalf("the ungated run followed %d people; the video has more", followed)
	}
	if lost > 0 {
		t.Errorf("the gated run lost %d of the %d people the ungated run follows", lost, followed)
	}
	if gated.cpu >= plain.cpu {
		t.Errorf("gated CPU %v a frame; ungated %v", gated.cpu, plain.cpu)
	}
}

// TestGateOnStaticScene: on a still scene with sensor noise, the gated run
// costs at most a fifth of the ungated CPU, and carries the detections of
// the first frames forward, marked as carried.
func TestGateOnStaticScene(t *testing.T) {
	addr := testHub(t, hubConfig())
	rng := rand.New(rand.NewPCG(1, 2))
	bg := decode(t, still(t, "messi5.jpg").jpeg)
	pics := make([]picture, 40)
	for i := range pics {
		pics[i] = encode(t, noisy(bg, 6, rng))
	}
	plain := runGate(t, addr, "still-plain", pics, false, "faces,people")
	gated := runGate(t, addr, "still-gated", pics, true, "faces,people")
	ratio := float64(gated.steady) / float64(plain.steady)
	t.Logf("static scene, %d frames: ungated %d boxes, CPU %v a frame; gated %d found + %d carried, CPU %v a frame (%.0f%%), %v after the warm-up (%.0f%%); gated frames carried %d",
		len(pics), plain.fresh, plain.cpu, gated.fresh, gated.carried, gated.cpu, 100*float64(gated.cpu)/float64(plain.cpu),
		gated.steady, 100*ratio, gated.stats.Carried)
	if ratio > 0.2 {
		t.Errorf("after the warm-up, gated CPU is %.0f%% of ungated; want at most 20%%", 100*ratio)
	}
	if lost := lostTracks(t, plain, gated, len(pics)); lost > 0 {
		t.Errorf("the gated run lost %d of what the ungated run follows", lost)
	}
	for seq := uint64(10); seq <= uint64(len(pics)); seq++ {
		for _, b := range gated.boxes[seq] {
			if !b.Carried {
				t.Errorf("frame %d: box %+v not marked carried; nothing moved", seq, b)
			}
		}
	}
}
