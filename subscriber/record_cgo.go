//go:build cgo

package subscriber

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"gocv.io/x/gocv"
)

// RecordConfig configures Record.
type RecordConfig struct {
	Client Config // Hub, Channel, Header, TLS, backoff
	// Out is the file to write: .avi (Motion JPEG), .mkv (Motion JPEG) or
	// .mp4 (MPEG-4 Part 2, where OpenCV's FFmpeg has the encoder).
	Out string
	// Segment, if positive, starts a new file this often: OUT-0001.avi,
	// OUT-0002.avi, …
	Segment time.Duration
	// FPS is the file's frame rate; 0 asks the hub for the channel's rate
	// (30 if it does not know yet).
	FPS    float64
	Logger *slog.Logger
}

// RecordStats describes a recording.
type RecordStats struct {
	Files    []string
	Received uint64 // frames that arrived
	Written  uint64 // frames written, counting repeats that fill gaps
	Width    int
	Height   int
	FPS      float64
}

// Record writes the channel to video files until ctx ends, then closes the
// current file properly (so an AVI gets its index). Frames are placed by
// capture time at the file's frame rate: a gap repeats the previous frame
// and a burst keeps the newest, so the file plays in real time.
func Record(ctx context.Context, cfg RecordConfig) (RecordStats, error) {
	var st RecordStats
	fourcc, err := fourccFor(cfg.Out)
	if err != nil {
		return st, err
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
	if st.FPS <= 0 {
		st.FPS = 30
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cc.TLS, Proxy: http.ProxyFromEnvironment}}
		infos, err := Channels(ctx, cc.Hub, cc.Header, hc)
		hc.CloseIdleConnections()
		if err == nil {
			for _, in := range infos {
				if in.Name == cc.Channel && in.FPS >= 1 {
					st.FPS = math.Round(in.FPS)
				}
			}
		}
	}
	step := time.Duration(float64(time.Second) / st.FPS)

	r := &recorder{cfg: cfg, fourcc: fourcc, st: &st, log: log, frame: gocv.NewMat(), scaled: gocv.NewMat()}
	defer r.frame.Close()
	defer r.scaled.Close()
	var next time.Time // capture time of the next output frame
	err = cl.Run(ctx, func(f *Frame) error {
		st.Received++
		if err := DecodeMat(&f.Frame, &r.frame); err != nil {
			log.Warn("skipping frame", "error", err.Error())
			return nil
		}
		at := time.Unix(0, f.CaptureTime)
		if next.IsZero() || at.Sub(next) > 5*time.Second || next.Sub(at) > 5*time.Second {
			next = at // first frame, or the publisher's clock jumped
		}
		if at.Before(next) {
			return nil // a burst: the next slot is not due yet
		}
		for !next.After(at) {
			if err := r.write(time.Now()); err != nil {
				return err
			}
			next = next.Add(step)
		}
		return nil
	})
	if cerr := r.closeFile(); err == nil {
		err = cerr
	}
	return st, err
}

type recorder struct {
	cfg           RecordConfig
	fourcc        string
	st            *RecordStats
	log           *slog.Logger
	vw            *gocv.VideoWriter
	segStart      time.Time
	seg           int
	frame, scaled gocv.Mat
}

// write appends the current frame to the file, opening or rotating files
// as needed, and scaling to the file's size if the channel's size changed.
func (r *recorder) write(now time.Time) error {
	if r.vw != nil && r.cfg.Segment > 0 && now.Sub(r.segStart) >= r.cfg.Segment {
		if err := r.closeFile(); err != nil {
			return err
		}
	}
	m := r.frame
	if m.Channels() != 3 {
		code := gocv.ColorGrayToBGR
		if m.Channels() == 4 {
			code = gocv.ColorBGRAToBGR
		}
		gocv.CvtColor(m, &r.scaled, code)
		m = r.scaled
	}
	if r.vw == nil {
		if err := r.openFile(now, m.Cols(), m.Rows()); err != nil {
			return err
		}
	}
	if m.Cols() != r.st.Width || m.Rows() != r.st.Height {
		gocv.Resize(m, &r.scaled, image.Pt(r.st.Width, r.st.Height), 0, 0, gocv.InterpolationArea)
		m = r.scaled
	}
	if err := r.vw.Write(m); err != nil {
		return fmt.Errorf("write %s: %w", r.st.Files[len(r.st.Files)-1], err)
	}
	r.st.Written++
	return nil
}

func (r *recorder) openFile(now time.Time, w, h int) error {
	name := r.cfg.Out
	if r.cfg.Segment > 0 {
		r.seg++
		ext := filepath.Ext(name)
		name = fmt.Sprintf("%s-%04d%s", strings.TrimSuffix(name, ext), r.seg, ext)
	}
	vw, err := gocv.VideoWriterFile(name, r.fourcc, r.st.FPS, w, h, true)
	if err != nil || !vw.IsOpened() {
		if vw != nil {
			vw.Close()
		}
		return fmt.Errorf("cannot write %s with codec %s: OpenCV could not open it", name, r.fourcc)
	}
	r.vw, r.segStart = vw, now
	r.st.Width, r.st.Height = w, h
	r.st.Files = append(r.st.Files, name)
	r.log.Info("recording", "file", name, "width", w, "height", h, "fps", r.st.FPS, "codec", r.fourcc)
	return nil
}

func (r *recorder) closeFile() error {
	if r.vw == nil {
		return nil
	}
	err := r.vw.Close()
	r.vw = nil
	return err
}

func fourccFor(out string) (string, error) {
	switch strings.ToLower(filepath.Ext(out)) {
	case ".avi", ".mkv":
		return "MJPG", nil
	case ".mp4", ".m4v", ".mov":
		return "mp4v", nil
	case "":
		return "", errors.New("--out needs a file name ending in .avi, .mkv or .mp4")
	}
	return "", fmt.Errorf("--out %s: use .avi, .mkv or .mp4", out)
}
