package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"framehub/protocol"
)

// The publisher comparison (framehub bench --publisher) answers: how much
// CPU does the publisher spend per frame it sends, against a bare loop that
// reads the same clip and JPEG-encodes each frame at the same quality and
// does nothing else? Each side runs as its own child process pinned to the
// same single core (taskset), so its CPU (user + system, all threads, from
// wait4) is its own; the hub the publisher sends to runs as a third child
// on another core and is not counted. The two sides alternate (bare first
// in odd runs, publisher first in even runs) so that drift in the machine's
// load falls on both, and the ratio of each run is taken within that run.
// Nothing is subtracted: process start-up (loading OpenCV, opening the
// clip, and for the publisher connecting to the hub) is part of both, and
// reported apart so that its weight can be judged.
//
// With Renditions, each run has a third side: the same publisher also
// sending smaller copies of every frame (publish --renditions), and the
// report gives its CPU per frame against the plain publisher's, within
// the run (the three sides take turns going first).

// Size is a picture size.
type Size struct{ W, H int }

func (s Size) String() string { return fmt.Sprintf("%dx%d", s.W, s.H) }

// ParseSizes parses "1280x720,1920x1080".
func ParseSizes(s string) ([]Size, error) {
	var out []Size
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var sz Size
		if n, err := fmt.Sscanf(f, "%dx%d", &sz.W, &sz.H); err != nil || n != 2 || fmt.Sprint(sz) != f {
			return nil, fmt.Errorf("size %q: use WxH, e.g. 1280x720", f)
		}
		if sz.W < 16 || sz.H < 16 || sz.W > 7680 || sz.H > 4320 || sz.W%2 != 0 || sz.H%2 != 0 {
			return nil, fmt.Errorf("size %s: use even sizes from 16x16 to 7680x4320", f)
		}
		out = append(out, sz)
	}
	if len(out) == 0 {
		return nil, errors.New("no size given: use WxH, e.g. 1280x720,1920x1080")
	}
	return out, nil
}

// PublisherConfig describes a publisher comparison. Zero fields take the
// defaults noted.
type PublisherConfig struct {
	// Sizes of the clips to generate (default 1280x720 and 1920x1080);
	// ignored when Clip is set.
	Sizes []Size
	// Clip is a video file to use instead of generated clips.
	Clip string
	// Frames and FPS of each generated clip (default 600 at 30 fps: 20 s
	// per side, so that start-up, about 0.2 s of CPU for a process that
	// loads OpenCV, weighs a few percent).
	Frames int
	FPS    float64
	// Quality is the JPEG quality both sides encode at (default 80).
	Quality int
	// Runs per size, alternating the two sides (default 3).
	Runs int
	// Renditions, if set (e.g. "640,320"), adds the third side: the
	// publisher with --renditions Renditions.
	Renditions string
	// CPU is the core both measured sides are pinned to; -1 picks the last
	// core this process may run on. The hub goes on another one if there is.
	CPU int

	// BareCommand and PublishCommand build the two sides' command lines
	// (the program and its arguments). The bare side prints, on stdout, a
	// JSON object with "frames" (read and encoded); the publisher logs, as
	// JSON lines on stderr, "publisher stopped" with "captured", "sent" and
	// "skipped". Each logs BareReady or PublishReady once its clip is open.
	BareCommand    func(clip string, quality int) []string
	BareReady      string
	PublishCommand func(hubURL, channel, clip string, quality int) []string
	PublishReady   string
	// HubCommand starts the hub; it logs HubReady with "addr" as JSON.
	HubCommand []string
	HubReady   string

	FFmpeg   string    // default "ffmpeg"
	Taskset  string    // default "taskset"
	Progress io.Writer // a line per measured run; nil for none
	Logger   *slog.Logger
}

func (c *PublisherConfig) fill() error {
	if len(c.Sizes) == 0 {
		c.Sizes = []Size{{1280, 720}, {1920, 1080}}
	}
	if c.Frames == 0 {
		c.Frames = 600
	}
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.Quality == 0 {
		c.Quality = 80
	}
	if c.Runs == 0 {
		c.Runs = 3
	}
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.Taskset == "" {
		c.Taskset = "taskset"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Frames < 1 || c.Frames > 100000:
		return fmt.Errorf("publisher frames %d: use 1 to 100000", c.Frames)
	case c.FPS <= 0 || c.FPS > 1000:
		return fmt.Errorf("publisher clip fps %v: use more than 0, at most 1000", c.FPS)
	case c.Quality < 1 || c.Quality > 100:
		return fmt.Errorf("quality %d: use 1 to 100", c.Quality)
	case c.Runs < 1 || c.Runs > 99:
		return fmt.Errorf("publisher runs %d: use 1 to 99", c.Runs)
	case c.BareCommand == nil || c.PublishCommand == nil || len(c.HubCommand) == 0:
		return errors.New("the publisher comparison needs BareCommand, PublishCommand and HubCommand")
	}
	return nil
}

// PublisherRun is one measured pair: the bare loop and the publisher on
// the same clip, one after the other.
type PublisherRun struct {
	BareFirst bool `json:"bare_first"`
	// The bare loop: frames read and encoded, its CPU seconds.
	BareFrames int     `json:"bare_frames"`
	BareCPU    float64 `json:"bare_cpu_s"`
	// The publisher: frames captured, sent (its own count), received by
	// the hub, and skipped (captured, then overwritten by a newer frame
	// before the sender took it), and its CPU seconds. CPU per frame
	// divides by the frames the hub received, which is the sent count
	// unless a frame was lost.
	PublishCaptured int     `json:"publish_captured"`
	PublishSent     int     `json:"publish_sent"`
	HubFrames       int     `json:"hub_frames"`
	PublishSkipped  int     `json:"publish_skipped"`
	PublishCPU      float64 `json:"publish_cpu_s"`
	// Bytes per frame: the bare loop's JPEGs, and what the publisher sent
	// (the same JPEGs plus a 48-byte header each): equal sizes show both
	// sides encoded the same pictures at the same quality.
	BareBytesPerFrame    int `json:"bare_bytes_per_frame"`
	PublishBytesPerFrame int `json:"publish_bytes_per_frame"`
	// CPU milliseconds per frame, and publisher ÷ bare.
	BareCPUPerFrameMS    float64 `json:"bare_cpu_ms_per_frame"`
	PublishCPUPerFrameMS float64 `json:"publish_cpu_ms_per_frame"`
	Ratio                float64 `json:"ratio"`
	// CPU used before the first frame (the process starting, the dynamic
	// loader binding OpenCV and its libraries, the clip opening), read from
	// /proc when each side logged that its clip was open.
	BareStartupCPUMS    float64 `json:"bare_startup_cpu_ms"`
	PublishStartupCPUMS float64 `json:"publish_startup_cpu_ms"`
	// Renditions is the third side, with Config.Renditions.
	Renditions *RenditionsRun `json:"renditions,omitempty"`
}

// RenditionsRun is the third side of a run: the publisher with
// --renditions. CPU per frame divides by the main pictures the hub
// received; bytes per frame count a frame and its renditions.
type RenditionsRun struct {
	Widths         string  `json:"widths"`
	Captured       int     `json:"captured"`
	Sent           int     `json:"sent"`
	HubFrames      int     `json:"hub_frames"`
	RenditionsSent int     `json:"renditions_sent"`
	CPU            float64 `json:"cpu_s"`
	BytesPerFrame  int     `json:"bytes_per_frame"`
	CPUPerFrameMS  float64 `json:"cpu_ms_per_frame"`
	// RatioToPublish is CPUPerFrameMS ÷ the plain publisher's, in the
	// same run.
	RatioToPublish float64 `json:"ratio_to_publish"`
}

// PublisherResult is the comparison at one clip size.
type PublisherResult struct {
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Quality int    `json:"quality"`
	Frames  int    `json:"frames"` // in the clip
	Clip    string `json:"clip"`   // how it was made, or the user's file
	CPU     int    `json:"cpu"`    // the core both sides ran on
	HubCPU  int    `json:"hub_cpu"`
	// Medians over the runs: each side's CPU ms per frame, and the median
	// of the runs' own ratios.
	BareCPUPerFrameMS    float64 `json:"bare_cpu_ms_per_frame"`
	PublishCPUPerFrameMS float64 `json:"publish_cpu_ms_per_frame"`
	Ratio                float64 `json:"ratio"`
	// With renditions: the median CPU per frame of the publisher sending
	// them, and the median of the runs' ratios to the plain publisher.
	RenditionsCPUPerFrameMS float64        `json:"renditions_cpu_ms_per_frame,omitempty"`
	RenditionsRatio         float64        `json:"renditions_ratio,omitempty"`
	Runs                    []PublisherRun `json:"runs"`
}

// RunPublisher runs the publisher comparison at every size.
func RunPublisher(ctx context.Context, cfg PublisherConfig) ([]PublisherResult, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(cfg.Taskset); err != nil {
		return nil, fmt.Errorf("the publisher comparison pins each side to one core with taskset (util-linux): %w", err)
	}
	allowed, err := allowedCPUs()
	if err != nil {
		return nil, err
	}
	cpu, hubCPU := cfg.CPU, -1
	if cpu < 0 {
		cpu = allowed[len(allowed)-1]
	} else if !slices.Contains(allowed, cpu) {
		return nil, fmt.Errorf("core %d: this process may run on cores %v only", cpu, allowed)
	}
	for _, c := range allowed {
		if c != cpu {
			hubCPU = c
			break
		}
	}
	if hubCPU < 0 {
		hubCPU = cpu // one core only: the hub shares it, and is still not counted
	}
	type clip struct {
		path, desc string
		size       Size
		frames     int
	}
	var clips []clip
	if cfg.Clip != "" {
		if _, err := os.Stat(cfg.Clip); err != nil {
			return nil, fmt.Errorf("publisher clip: %w", err)
		}
		clips = append(clips, clip{path: cfg.Clip, desc: cfg.Clip})
	} else {
		if _, err := exec.LookPath(cfg.FFmpeg); err != nil {
			return nil, fmt.Errorf("the publisher comparison makes its clips with ffmpeg (or give --publisher-clip): %w", err)
		}
		dir, err := os.MkdirTemp("", "framehub-bench-publisher")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		for _, sz := range cfg.Sizes {
			path := filepath.Join(dir, sz.String()+".avi")
			desc, err := makeClip(ctx, cfg.FFmpeg, path, sz, cfg.Frames, cfg.FPS)
			if err != nil {
				return nil, err
			}
			clips = append(clips, clip{path: path, desc: desc, size: sz, frames: cfg.Frames})
		}
	}

	hubArgs := append([]string{"-c", strconv.Itoa(hubCPU)}, cfg.HubCommand...)
	hub, err := startChild(ctx, cfg.Taskset, hubArgs, cfg.HubReady)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	defer hub.stop()
	cfg.Logger.Info("publisher comparison", "cpu", cpu, "hub_cpu", hubCPU, "hub", hub.addr, "runs", cfg.Runs)

	var out []PublisherResult
	for ci, cl := range clips {
		res := PublisherResult{Width: cl.size.W, Height: cl.size.H, Quality: cfg.Quality, Frames: cl.frames,
			Clip: cl.desc, CPU: cpu, HubCPU: hubCPU}
		for i := range cfg.Runs {
			run := PublisherRun{BareFirst: i%2 == 0}
			channel := fmt.Sprintf("bench-publisher-%d-%d", ci, i)
			sides := []string{"bare", "publish"}
			if !run.BareFirst {
				sides = []string{"publish", "bare"}
			}
			if cfg.Renditions != "" {
				// Three sides: each goes first, second and last in turn.
				sides = []string{"bare", "publish", "renditions"}
				k := i % 3
				sides = append(sides[k:], sides[:k]...)
				run.BareFirst = sides[0] == "bare"
			}
			for _, side := range sides {
				var err error
				switch side {
				case "bare":
					if err = runBare(ctx, &cfg, cpu, cl.path, &run, &res); err != nil {
						err = fmt.Errorf("bare loop: %w", err)
					}
				case "publish":
					if err = runPublish(ctx, &cfg, cpu, hub.addr, channel, cl.path, &run); err != nil {
						err = fmt.Errorf("publisher: %w", err)
					}
				case "renditions":
					if err = runRenditions(ctx, &cfg, cpu, hub.addr, channel+"-renditions", cl.path, &run); err != nil {
						err = fmt.Errorf("publisher with renditions: %w", err)
					}
				}
				if err != nil {
					return nil, err
				}
			}
			run.BareCPUPerFrameMS = round3(run.BareCPU * 1000 / float64(run.BareFrames))
			run.PublishCPUPerFrameMS = round3(run.PublishCPU * 1000 / float64(run.HubFrames))
			run.Ratio = round3(run.PublishCPUPerFrameMS / run.BareCPUPerFrameMS)
			if rr := run.Renditions; rr != nil {
				rr.CPUPerFrameMS = round3(rr.CPU * 1000 / float64(rr.HubFrames))
				rr.RatioToPublish = round3(rr.CPUPerFrameMS / run.PublishCPUPerFrameMS)
			}
			res.Runs = append(res.Runs, run)
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "bench publisher %dx%d run %d/%d (core %d): bare %.3f ms/frame (%d frames), "+
					"publish %.3f ms/frame (%d sent of %d captured), ratio %.3f\n",
					res.Width, res.Height, i+1, cfg.Runs, cpu, run.BareCPUPerFrameMS, run.BareFrames,
					run.PublishCPUPerFrameMS, run.HubFrames, run.PublishCaptured, run.Ratio)
				if rr := run.Renditions; rr != nil {
					fmt.Fprintf(cfg.Progress, "bench publisher %dx%d run %d/%d: with --renditions %s %.3f ms/frame "+
						"(%d sent of %d captured, %d renditions), ratio to publish %.3f\n",
						res.Width, res.Height, i+1, cfg.Runs, rr.Widths, rr.CPUPerFrameMS, rr.HubFrames, rr.Captured,
						rr.RenditionsSent, rr.RatioToPublish)
				}
			}
		}
		var bare, pub, ratio, rend, rendRatio []float64
		for _, r := range res.Runs {
			bare = append(bare, r.BareCPUPerFrameMS)
			pub = append(pub, r.PublishCPUPerFrameMS)
			ratio = append(ratio, r.Ratio)
			if rr := r.Renditions; rr != nil {
				rend = append(rend, rr.CPUPerFrameMS)
				rendRatio = append(rendRatio, rr.RatioToPublish)
			}
		}
		res.BareCPUPerFrameMS, res.PublishCPUPerFrameMS, res.Ratio = median(bare), median(pub), median(ratio)
		res.RenditionsCPUPerFrameMS, res.RenditionsRatio = median(rend), median(rendRatio)
		out = append(out, res)
	}
	return out, nil
}

// makeClip writes a Motion JPEG clip of ffmpeg's testsrc2 (moving
// pattern, burned-in counters) and returns how it was made. MJPEG is what
// USB cameras send at 720p and 1080p, and every frame of it costs the same
// to decode (no inter-frame prediction, no decoder delay).
func makeClip(ctx context.Context, ffmpeg, path string, sz Size, frames int, fps float64) (string, error) {
	src := fmt.Sprintf("testsrc2=size=%s:rate=%s", sz, strconv.FormatFloat(fps, 'f', -1, 64))
	args := []string{"-v", "error", "-y", "-f", "lavfi", "-i", src, "-frames:v", strconv.Itoa(frames),
		"-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", path}
	if b, err := exec.CommandContext(ctx, ffmpeg, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ffmpeg: %v %s", err, strings.TrimSpace(string(b)))
	}
	return fmt.Sprintf("ffmpeg %s, %d frames, MJPEG -q:v 3 in AVI", src, frames), nil
}

func runBare(ctx context.Context, cfg *PublisherConfig, cpu int, clip string, run *PublisherRun, res *PublisherResult) error {
	m, err := runMeasured(ctx, cfg, cpu, cfg.BareCommand(clip, cfg.Quality), cfg.BareReady)
	if err != nil {
		return err
	}
	var out struct{ Frames, Bytes, Width, Height int }
	if err := json.Unmarshal(m.stdout, &out); err != nil || out.Frames <= 0 {
		return fmt.Errorf("no frame count in the bare loop's output %q", m.stdout)
	}
	run.BareFrames, run.BareCPU, run.BareStartupCPUMS = out.Frames, round3(m.cpu), m.startupMS
	run.BareBytesPerFrame = out.Bytes / out.Frames
	if res.Width == 0 { // a user's clip: its size is what was read
		res.Width, res.Height = out.Width, out.Height
	}
	if res.Frames == 0 {
		res.Frames = out.Frames
	}
	return nil
}

func runPublish(ctx context.Context, cfg *PublisherConfig, cpu int, hubAddr, channel, clip string, run *PublisherRun) error {
	m, err := runMeasured(ctx, cfg, cpu, cfg.PublishCommand("http://"+hubAddr, channel, clip, cfg.Quality), cfg.PublishReady)
	if err != nil {
		return err
	}
	if m.stopped == nil {
		return errors.New(`no "publisher stopped" line in the publisher's log`)
	}
	run.PublishCaptured, run.PublishSent, run.PublishSkipped = m.stopped.Captured, m.stopped.Sent, m.stopped.Skipped
	if run.PublishSent > 0 {
		run.PublishBytesPerFrame = m.stopped.Bytes / run.PublishSent
	}
	run.PublishCPU, run.PublishStartupCPUMS = round3(m.cpu), m.startupMS
	frames, err := hubChannelFrames(hubAddr, channel)
	if err != nil {
		return err
	}
	run.HubFrames = min(frames, run.PublishSent)
	if run.HubFrames <= 0 {
		return fmt.Errorf("the hub received no frame on %s (the publisher says it sent %d)", channel, run.PublishSent)
	}
	return nil
}

// runRenditions runs the publisher with --renditions on the clip.
func runRenditions(ctx context.Context, cfg *PublisherConfig, cpu int, hubAddr, channel, clip string, run *PublisherRun) error {
	argv := append(cfg.PublishCommand("http://"+hubAddr, channel, clip, cfg.Quality), "--renditions", cfg.Renditions)
	m, err := runMeasured(ctx, cfg, cpu, argv, cfg.PublishReady)
	if err != nil {
		return err
	}
	if m.stopped == nil {
		return errors.New(`no "publisher stopped" line in the publisher's log`)
	}
	rr := &RenditionsRun{Widths: cfg.Renditions, Captured: m.stopped.Captured, Sent: m.stopped.Sent,
		RenditionsSent: m.stopped.Renditions, CPU: round3(m.cpu)}
	if rr.Sent > 0 {
		rr.BytesPerFrame = m.stopped.Bytes / rr.Sent
	}
	frames, err := hubChannelFrames(hubAddr, channel)
	if err != nil {
		return err
	}
	rr.HubFrames = min(frames, rr.Sent)
	if rr.HubFrames <= 0 {
		return fmt.Errorf("the hub received no frame on %s (the publisher says it sent %d)", channel, rr.Sent)
	}
	if rr.RenditionsSent == 0 {
		return fmt.Errorf("the publisher sent no rendition on %s (--renditions %s: none narrower than the clip?)", channel, cfg.Renditions)
	}
	run.Renditions = rr
	return nil
}

// measured is what a finished child used and said.
type measured struct {
	cpu       float64 // seconds, user + system, all threads
	startupMS float64
	stdout    []byte
	stopped   *stopped
}

// stopped is what a publisher's "publisher stopped" line says.
type stopped struct{ Captured, Sent, Skipped, Bytes, Renditions int }

// runMeasured runs a side to its end, pinned to one core, and returns its
// CPU time from wait4 (ProcessState), which counts every thread of it.
func runMeasured(ctx context.Context, cfg *PublisherConfig, cpu int, argv []string, ready string) (*measured, error) {
	cmd := exec.Command(cfg.Taskset, append([]string{"-c", strconv.Itoa(cpu)}, argv...)...)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	pid := cmd.Process.Pid
	m := &measured{}
	var tail []string // the last lines, for an error
	sawReady := false
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var l struct {
				Msg                            string `json:"msg"`
				Captured, Sent, Skipped, Bytes *int
				Renditions                     int `json:"renditions_sent"`
			}
			if json.Unmarshal(line, &l) == nil {
				switch {
				case l.Msg == ready && !sawReady:
					sawReady = true
					if c, err := threadsCPU(pid); err == nil {
						m.startupMS = round3(c.Seconds() * 1000)
					}
				case l.Msg == "publisher stopped" && l.Sent != nil && l.Captured != nil && l.Skipped != nil && l.Bytes != nil:
					m.stopped = &stopped{*l.Captured, *l.Sent, *l.Skipped, *l.Bytes, l.Renditions}
				}
			}
			tail = append(tail, string(line))
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
	}()
	// Stop the child (by its PID) if the benchmark is cancelled.
	finished := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-finished:
		}
	}()
	wg.Wait()
	err = cmd.Wait()
	close(finished)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.Join(tail, " | "))
	}
	st := cmd.ProcessState
	m.cpu = (st.UserTime() + st.SystemTime()).Seconds()
	m.stdout = []byte(stdout.String())
	return m, nil
}

// threadsCPU returns the CPU time of a process's live threads so far, from
// /proc/PID/task/*/schedstat (nanoseconds, where /proc/PID/stat counts
// clock ticks of 10 ms).
func threadsCPU(pid int) (time.Duration, error) {
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, d.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %w", pid, d.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// hubChannelFrames returns how many frames the hub received on channel.
func hubChannelFrames(addr, channel string) (int, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/api/channels")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var list []protocol.ChannelInfo
	if err := jsonDecode(resp.Body, &list); err != nil {
		return 0, fmt.Errorf("hub /api/channels: %w", err)
	}
	for _, c := range list {
		if c.Name == channel {
			return int(c.Frames), nil
		}
	}
	return 0, fmt.Errorf("hub /api/channels does not list %s", channel)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return round3((s[len(s)/2-1] + s[len(s)/2]) / 2)
}

// writePublisher prints the publisher comparison, if the report has one.
func (rep *Report) writePublisher(w io.Writer) error {
	if len(rep.Publisher) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\npublisher CPU per sent frame vs a bare gocv loop (read the clip, JPEG-encode each frame), each side alone on core %d\n",
		rep.Publisher[0].CPU)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tquality\trun\tbare ms/frame\tframes\tpublish ms/frame\tsent\tcaptured\tpublish ÷ bare\tstart-up ms bare / publish\tKB/frame bare / publish\t")
	for _, p := range rep.Publisher {
		for i, r := range p.Runs {
			fmt.Fprintf(tw, "%dx%d\t%d\t%d\t%.3f\t%d\t%.3f\t%d\t%d\t%.3f\t%.0f / %.0f\t%.1f / %.1f\t\n", p.Width, p.Height, p.Quality, i+1,
				r.BareCPUPerFrameMS, r.BareFrames, r.PublishCPUPerFrameMS, r.HubFrames, r.PublishCaptured, r.Ratio,
				r.BareStartupCPUMS, r.PublishStartupCPUMS, float64(r.BareBytesPerFrame)/1000, float64(r.PublishBytesPerFrame)/1000)
		}
		fmt.Fprintf(tw, "%dx%d\t%d\tmedian\t%.3f\t\t%.3f\t\t\t%.3f\t\t\t\n", p.Width, p.Height, p.Quality,
			p.BareCPUPerFrameMS, p.PublishCPUPerFrameMS, p.Ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range rep.Publisher {
		fmt.Fprintf(w, "clip %dx%d: %s\n", p.Width, p.Height, p.Clip)
	}
	if len(rep.Publisher[0].Runs) == 0 || rep.Publisher[0].Runs[0].Renditions == nil {
		return nil
	}
	fmt.Fprintf(w, "\npublisher CPU per frame with --renditions %s vs without, same runs, same core\n", rep.Publisher[0].Runs[0].Renditions.Widths)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\trun\tpublish ms/frame\twith renditions ms/frame\tsent\trenditions sent\twith ÷ without\tKB/frame without / with\t")
	for _, p := range rep.Publisher {
		for i, r := range p.Runs {
			rr := r.Renditions
			if rr == nil {
				continue
			}
			fmt.Fprintf(tw, "%dx%d\t%d\t%.3f\t%.3f\t%d\t%d\t%.3f\t%.1f / %.1f\t\n", p.Width, p.Height, i+1,
				r.PublishCPUPerFrameMS, rr.CPUPerFrameMS, rr.HubFrames, rr.RenditionsSent, rr.RatioToPublish,
				float64(r.PublishBytesPerFrame)/1000, float64(rr.BytesPerFrame)/1000)
		}
		fmt.Fprintf(tw, "%dx%d\tmedian\t%.3f\t%.3f\t\t\t%.3f\t\t\n", p.Width, p.Height,
			p.PublishCPUPerFrameMS, p.RenditionsCPUPerFrameMS, p.RenditionsRatio)
	}
	return tw.Flush()
}
