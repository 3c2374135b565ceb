package subscriber

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"framehub/protocol"
)

// Recording limits and defaults.
const (
	// DefaultRecordFPS is the file frame rate when neither the
	// configuration nor the hub gives one.
	DefaultRecordFPS = 30
	// MaxRecordFPS bounds a file's frame rate, and with it the frames a
	// recording may write per second of real time.
	MaxRecordFPS = 1000
	// recordJitter is the most the step between two frames' capture times
	// may differ from the step between their arrivals and still be
	// believed: network jitter, not a publisher's clock that jumped.
	recordJitter = 250 * time.Millisecond
	// recordSlack is how far the file's clock may drift ahead of or behind
	// the recorder's own (a publisher's clock running fast or slow).
	recordSlack = time.Second
	// recordMaxGap is the longest gap a file of a constant frame rate
	// fills by repeating the previous picture; a longer outage is cut out.
	recordMaxGap = 5 * time.Second
	// minFileSpan is the least video a file holds before a change of
	// picture size starts the next file: a publisher that keeps switching
	// sizes cannot make a file per frame. Frames of the new size that come
	// sooner are dropped.
	minFileSpan = time.Second
	// rawJPEGQuality is the quality raw frames are encoded at for Motion
	// JPEG files.
	rawJPEGQuality = 90
)

// RecordConfig configures Record.
type RecordConfig struct {
	Client Config // Hub, Channel, Header, TLS, Guard, backoff
	// Out is the file to write; its extension picks the format:
	// .mkv: Motion JPEG in Matroska, written live (crash-safe, no
	// re-encoding, no OpenCV); .avi: Motion JPEG through OpenCV; .mp4:
	// MPEG-4 Part 2 through OpenCV. The last two are complete only once
	// closed, and exist only in builds with cgo.
	Out string
	// Segment, if positive, starts a new file after this much video:
	// OUT-0001.mkv, OUT-0002.mkv, … A change of picture size also starts a
	// new file (OUT-0002.mkv, … after OUT.mkv when Segment is 0).
	Segment time.Duration
	// FPS is the file's frame rate (at most MaxRecordFPS); 0 asks the hub
	// for the channel's rate (DefaultRecordFPS if it does not know yet).
	FPS float64
	// MaxPixels is the recorder's own limit on a frame's width × height,
	// checked before anything is decoded or written, whatever the client
	// accepted (a player of the file would allocate that much). 0 means
	// protocol.DefaultMaxPixels.
	MaxPixels uint64
	// DrawBoxes burns the boxes of each frame's metadata (protocol.Box)
	// into the picture. Frames with boxes are decoded, drawn on and encoded
	// again, which costs CPU (for .mkv, only those frames; .avi and .mp4
	// decode every frame anyway). It needs OpenCV: a build without cgo
	// refuses it.
	DrawBoxes bool
	// Retention, with a Keep or a MaxSize, deletes the recording's oldest
	// files (Segment must be set): see RetentionConfig. Its Dir is Out's.
	Retention RetentionConfig
	// OnFrame, if set, is called after each frame is handled (written,
	// dropped or refused) with the stats so far, on the goroutine receiving
	// frames: it must return quickly and must not modify Files. For
	// progress displays and tests.
	OnFrame func(RecordStats)
	Logger  *slog.Logger // nil discards
}

// RecordStats describes a recording.
type RecordStats struct {
	Files    []string
	Received uint64 // frames that arrived
	Written  uint64 // frames in the files, counting repeats that fill gaps at a constant frame rate
	// Refused counts frames skipped because they cannot be recorded: past
	// the client's guard or the recorder's pixel limit, malformed, not
	// decodable, or of a kind the format cannot hold.
	Refused uint64
	// Dropped counts frames skipped on purpose: a second frame within one
	// frame interval, or a new picture size within minFileSpan of the
	// file's start.
	Dropped uint64
	Width   int // of the last file
	Height  int
	FPS     float64
	// Retention is what the retention keeps and deleted (RecordConfig.Retention).
	Retention RetentionStats
}

// videoFormat is what a file extension selects.
type videoFormat struct {
	name   string // for messages
	fourcc string // OpenCV's codec, or "" for the Matroska writer
	// minSide is the smallest width and height the format is written at;
	// smaller frames are refused.
	minSide int
}

// errDrawBoxes is Record's answer to DrawBoxes in a build without OpenCV.
var errDrawBoxes = errors.New("--draw-boxes decodes, draws on and re-encodes frames with OpenCV, which this build (without cgo) lacks: use the OpenCV build of framehub")

func formatFor(out string) (videoFormat, error) {
	switch strings.ToLower(filepath.Ext(out)) {
	case ".mkv":
		return videoFormat{name: "Motion JPEG in Matroska", minSide: 1}, nil
	case ".avi", ".mp4", ".m4v", ".mov":
		if !haveOpenCV {
			return videoFormat{}, fmt.Errorf("--out %s: .avi and .mp4 are written through OpenCV, which this build (without cgo) lacks; record to .mkv", out)
		}
		if strings.EqualFold(filepath.Ext(out), ".avi") {
			return videoFormat{name: "Motion JPEG in AVI (OpenCV)", fourcc: "MJPG", minSide: openCVMinSide}, nil
		}
		return videoFormat{name: "MPEG-4 Part 2 (OpenCV)", fourcc: "mp4v", minSide: openCVMinSide}, nil
	case "":
		return videoFormat{}, fmt.Errorf("--out %q needs a file name ending in .mkv, .avi or .mp4", out)
	}
	return videoFormat{}, fmt.Errorf("--out %s: use .mkv, .avi or .mp4", out)
}

// openCVMinSide is the smallest width and height written through OpenCV:
// Debian's FFmpeg encoders corrupt the heap (and abort the process) on
// pictures a few pixels wide.
const openCVMinSide = 16

// videoWriter writes a recording's files in one format, one file open at
// a time. For each frame that goes in, the recorder calls prepare, then
// open if a new file must start, then write.
type videoWriter interface {
	// prepare gets f's picture ready to write: the JPEG to store, or the
	// decoded picture. w×h is its size, already checked by PictureSize.
	// An error means f cannot be recorded, and is skipped.
	prepare(f *Frame, w, h int) error
	// open starts a new file of w×h pictures whose time 0 is start. With
	// fresh, name must not exist (fs.ErrExist if it does, a symlink
	// included): the file is created anew, never written over or through.
	open(name string, w, h int, start time.Time, fresh bool) error
	// write appends the prepared picture at file time at. fill is how many
	// frame intervals before it the previous picture must fill: a file of
	// a constant frame rate repeats it (fewer times if ctx ends); Matroska,
	// which stores times, ignores it. It returns the frames it wrote.
	write(ctx context.Context, at time.Duration, fill int) (int, error)
	// close completes the open file, if any, and reports any error writing
	// it.
	close() error
	// release frees what the writer holds, after its last close.
	release()
}

// Record writes the channel to video files until ctx ends, then completes
// the current file (see RecordConfig.Out for what each format survives).
// Frames are placed by capture time at the file's frame rate, kept within
// recordSlack of the recorder's own clock: a gap shows the previous
// picture, and of several frames within one frame interval the first is
// kept. Frames the recorder refuses are skipped and counted; any error
// writing a file ends the recording with that error.
func Record(ctx context.Context, cfg RecordConfig) (RecordStats, error) {
	var st RecordStats
	format, err := formatFor(cfg.Out)
	if err != nil {
		return st, err
	}
	if cfg.FPS < 0 || cfg.FPS > MaxRecordFPS || math.IsNaN(cfg.FPS) {
		return st, fmt.Errorf("frame rate %g: must be 0 (the channel's) to %d", cfg.FPS, MaxRecordFPS)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cc := cfg.Client
	cc.Logger = log
	cl, err := New(cc)
	if err != nil {
		return st, err
	}
	st.FPS = cfg.FPS
	if st.FPS == 0 {
		st.FPS = channelFPS(ctx, cc)
	}
	if cfg.MaxPixels == 0 {
		cfg.MaxPixels = protocol.DefaultMaxPixels
	}
	if cfg.DrawBoxes && !haveOpenCV {
		return st, errDrawBoxes
	}
	var out videoWriter
	if format.fourcc == "" {
		mf := &matroskaFiles{fps: st.FPS, title: "framehub " + cc.Channel}
		if cfg.DrawBoxes {
			if mf.burn, err = newBoxBurner(cfg.MaxPixels); err != nil {
				return st, err
			}
		}
		out = mf
	} else if out, err = newOpenCVFiles(format.fourcc, st.FPS, cfg.MaxPixels, cfg.DrawBoxes); err != nil {
		return st, err
	}
	defer out.release()
	ret, err := openRecordRetention(cfg)
	if err != nil {
		return st, err
	}
	if ret != nil {
		defer ret.Close()
	}
	r := &recorder{ret: ret, cfg: cfg, format: format, out: out, st: &st, log: log.With("channel", cc.Channel),
		step: time.Duration(float64(time.Second) / st.FPS)}
	err = cl.Run(ctx, func(f *Frame) error {
		err := r.frame(ctx, f)
		if cfg.OnFrame != nil {
			st := st
			st.Refused += cl.Invalid()
			cfg.OnFrame(st)
		}
		return err
	})
	if r.err != nil {
		err = r.err // a write error, even if ctx ended as it happened
	}
	if cerr := r.out.close(); err == nil {
		err = cerr
	}
	r.retainClosed()
	r.retainEnforce()
	st.Refused += cl.Invalid()
	if r.refusedSinceLog > 0 {
		r.log.Warn("frames refused", "count", st.Refused, "last_error", r.lastRefusal)
	}
	return st, err
}

// channelFPS asks the hub for the channel's frame rate, rounded.
func channelFPS(ctx context.Context, cc Config) float64 {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cc.TLS, Proxy: http.ProxyFromEnvironment}}
	defer hc.CloseIdleConnections()
	infos, err := Channels(ctx, cc.Hub, cc.Header, hc)
	if err == nil {
		for _, in := range infos {
			if in.Name == cc.Channel && in.FPS >= 1 {
				return min(math.Round(in.FPS), MaxRecordFPS)
			}
		}
	}
	return DefaultRecordFPS
}

// recorder places frames in files. It runs on the client's goroutine.
type recorder struct {
	cfg    RecordConfig
	format videoFormat
	out    videoWriter
	st     *RecordStats
	log    *slog.Logger
	step   time.Duration // one frame interval
	tl     timeline
	fresh  bool // every file new: Out too is never written over (nextFileName)

	open      bool       // a file is open
	fileW     int        // its picture size
	fileH     int        //
	fileStart int64      // slot of its first frame
	written   bool       // a frame went into it
	lastSlot  int64      // slot of the last frame written
	seq       int        // files opened
	err       error      // the write error that ended the recording
	ret       *Retention // nil without retention

	refusedSinceLog uint64
	lastRefusalLog  time.Time
	lastRefusal     string
}

// frame handles one received frame.
func (r *recorder) frame(ctx context.Context, f *Frame) error {
	r.st.Received++
	w, h, err := PictureSize(&f.Frame, r.cfg.MaxPixels)
	if err == nil {
		err = r.recordable(f, w, h)
	}
	if err != nil {
		r.refuse(err)
		return nil
	}
	at := r.tl.place(f.CaptureTime, f.Received)
	slot := int64(math.Round(float64(at) / float64(r.step)))
	if r.written && slot <= r.lastSlot {
		r.st.Dropped++ // a second frame in one interval
		return nil
	}
	rotate := false
	if r.open {
		span := time.Duration(slot-r.fileStart) * r.step
		resized := w != r.fileW || h != r.fileH
		if resized && span < minFileSpan {
			r.st.Dropped++
			return nil
		}
		rotate = resized || (r.cfg.Segment > 0 && span >= r.cfg.Segment)
	}
	// Decode (if the format needs it) only what goes in, and before a
	// file is closed for it.
	if err := r.out.prepare(f, w, h); err != nil {
		r.refuse(err)
		return nil
	}
	if rotate {
		r.open = false
		if err := r.out.close(); err != nil {
			r.err = err
			return err
		}
		r.retainClosed()
	}
	fill := 0
	if !r.open {
		if err := r.openFile(w, h, f.Received); err != nil {
			r.err = err
			return err
		}
		r.fileStart = slot
	} else if r.written {
		fill = int(min(slot-r.lastSlot-1, int64(recordMaxGap/r.step)))
	}
	n, err := r.out.write(ctx, time.Duration(slot-r.fileStart)*r.step, fill)
	r.st.Written += uint64(n)
	if err != nil {
		r.err = err
		return err
	}
	r.written, r.lastSlot = true, slot
	r.retainEnforce()
	return nil
}

// recordable checks what the file's format can hold.
func (r *recorder) recordable(f *Frame, w, h int) error {
	if w < r.format.minSide || h < r.format.minSide {
		return fmt.Errorf("frame %d: %dx%d is smaller than %s is written at (%dx%d)", f.Seq, w, h, r.format.name, r.format.minSide, r.format.minSide)
	}
	if f.Codec == protocol.CodecRaw && (f.ElemType != protocol.ElemUint8 || f.Channels == 2) {
		return fmt.Errorf("frame %d: raw element type %d with %d channels is not recorded (8-bit gray, BGR or BGRA are)", f.Seq, f.ElemType, f.Channels)
	}
	return nil
}

// refuse counts a frame the recorder skips, and logs about it at most once
// per refusalLogEvery.
func (r *recorder) refuse(err error) {
	r.st.Refused++
	r.refusedSinceLog++
	r.lastRefusal = err.Error()
	if now := time.Now(); now.Sub(r.lastRefusalLog) >= refusalLogEvery {
		r.log.Warn("skipped frames the recorder refuses", "count", r.refusedSinceLog, "error", r.lastRefusal)
		r.lastRefusalLog, r.refusedSinceLog = now, 0
	}
}

func (r *recorder) openFile(w, h int, start time.Time) error {
	var name string
	for try := 0; ; try++ {
		var fresh bool
		var err error
		if name, fresh, err = r.nextFileName(); err != nil {
			return err
		}
		if err = r.retainCreating(name); err != nil {
			return err
		}
		err = r.out.open(name, w, h, start, fresh)
		if fresh && errors.Is(err, fs.ErrExist) && try < maxNameRaces {
			continue // made since nextFileName looked: the next name
		}
		if err != nil {
			return err
		}
		break
	}
	if err := r.retainCreated(name); err != nil {
		return err
	}
	r.open, r.written = true, false
	r.fileW, r.fileH = w, h
	r.st.Width, r.st.Height = w, h
	r.st.Files = append(r.st.Files, name)
	r.log.Info("recording", "file", name, "width", w, "height", h, "fps", r.st.FPS, "format", r.format.name)
	return nil
}

// timeline places frames on the file's clock: by the publisher's capture
// times, which space frames as they were taken, checked against the
// recorder's clock (receive times), which the publisher cannot set. A
// capture-time step that is not positive, or differs from the receive-time
// step by more than recordJitter (a clock that stands still, goes back or
// jumps), is replaced by the receive-time step; and the file's clock stays
// within recordSlack of the recorder's whatever the steps add up to.
type timeline struct {
	started     bool
	start       time.Time // receive time of the first frame
	lastCapture int64
	lastRecv    time.Time
	t           time.Duration
}

// place returns the file-clock time of a frame captured at capture (Unix
// ns, as sent) and received at recv. Results never decrease.
func (tl *timeline) place(capture int64, recv time.Time) time.Duration {
	if !tl.started {
		*tl = timeline{started: true, start: recv, lastCapture: capture, lastRecv: recv}
		return 0
	}
	d := time.Duration(capture - tl.lastCapture)
	dr := max(recv.Sub(tl.lastRecv), 0)
	if d <= 0 || d > dr+recordJitter || d < dr-recordJitter {
		d = dr
	}
	elapsed := recv.Sub(tl.start)
	tl.t = min(max(tl.t+d, elapsed-recordSlack), elapsed+recordSlack)
	tl.lastCapture, tl.lastRecv = capture, recv
	return tl.t
}

// matroskaFiles writes Matroska files: JPEG frames as they are, raw ones
// encoded to JPEG.
type matroskaFiles struct {
	fps   float64
	title string
	w     *matroskaWriter // the open file, or nil
	pic   []byte          // the prepared JPEG
	enc   bytes.Buffer
	burn  *boxBurner // draws boxes in (DrawBoxes), or nil
}

func (m *matroskaFiles) prepare(f *Frame, _, _ int) error {
	if m.burn != nil {
		pic, err := m.burn.jpeg(f)
		if err != nil {
			return err
		}
		if pic != nil {
			m.pic = pic
			return nil
		}
	}
	if f.Codec != protocol.CodecRaw {
		m.pic = f.Payload
		return nil
	}
	img, err := protocol.RawImage(f.Header, f.Payload)
	if err != nil {
		return fmt.Errorf("frame %d: %w", f.Seq, err)
	}
	m.enc.Reset()
	if err := jpeg.Encode(&m.enc, img, &jpeg.Options{Quality: rawJPEGQuality}); err != nil {
		return fmt.Errorf("frame %d: %w", f.Seq, err)
	}
	m.pic = m.enc.Bytes()
	return nil
}

func (m *matroskaFiles) open(name string, w, h int, start time.Time, fresh bool) error {
	var err error
	m.w, err = createMatroska(name, mkvTrackInfo{Width: w, Height: h, FPS: m.fps, Title: m.title, Start: start}, fresh)
	return err
}

func (m *matroskaFiles) write(_ context.Context, at time.Duration, _ int) (int, error) {
	if err := m.w.WriteFrame(m.pic, at); err != nil {
		return 0, err
	}
	return 1, nil
}

func (m *matroskaFiles) close() error {
	if m.w == nil {
		return nil
	}
	err := m.w.Close()
	m.w = nil
	return err
}

func (m *matroskaFiles) release() {
	if m.burn != nil {
		m.burn.close()
	}
}
