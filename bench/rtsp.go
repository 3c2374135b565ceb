package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/backoff"
	"framehub/internal/testcam"
	"framehub/protocol"
)

// The RTSP comparison (framehub bench --rtsp) answers: how much age does
// framehub's path from an RTSP camera to a viewer add over ffmpeg reading
// the same camera alone? The camera is the test IP camera (package
// testcam) with every frame stamped with the time it was made, so a
// frame's age is measured from the camera itself: when the frame's JPEG
// has fully arrived, minus the time in its picture. The sides, one at a
// time and alternating run after run, read the same camera:
//   - ffmpeg alone, with the arguments framehub gives it, writing Motion
//     JPEG to this process: the strongest simple version of the work;
//   - framehub publish with each decoder asked for, through a hub, to a
//     WebSocket subscriber in this process.
// Each side is measured for Duration after Warmup, and its CPU (with any
// ffmpeg it runs) over that time is read from /proc.

// RTSPConfig describes an RTSP comparison.
type RTSPConfig struct {
	Size     string        // the camera's picture, default 1280x720
	FPS      int           // the camera's rate, default 30
	Quality  int           // JPEG quality, default 80
	Runs     int           // default 3
	Duration time.Duration // measured per side and run, default 10 s
	Warmup   time.Duration // before measuring, default 3 s

	// FFmpegArgs are ffmpeg's arguments for the alone side, given the
	// camera's URL: framehub's own (publisher.FFmpegArgs).
	FFmpegArgs func(url string, quality int) []string
	FFmpeg     string // default "ffmpeg"
	// Decoders are the --decoder values the framehub side runs with, one
	// side each (default ffmpeg).
	Decoders []string
	// PublishCommand builds the publisher's command line.
	PublishCommand func(hub, channel, url, decoder string, quality int) []string
	// HubCommand starts the hub; it logs HubReady with "addr" as JSON.
	HubCommand []string
	HubReady   string

	Progress io.Writer
	Logger   *slog.Logger
}

// RTSPSide is one side's result in one run.
type RTSPSide struct {
	Side    string  `json:"side"`
	Frames  int     `json:"frames"`
	FPS     float64 `json:"fps"`
	AgeP50  float64 `json:"age_ms_p50"`
	AgeP90  float64 `json:"age_ms_p90"`
	AgeP99  float64 `json:"age_ms_p99"`
	CPUPct  float64 `json:"cpu_pct"` // of one core, the side's processes together
	OverP50 float64 `json:"over_alone_ms_p50"`
}

// RTSPReport is the comparison's result: every run, and per side the
// median over runs.
type RTSPReport struct {
	Camera        string       `json:"camera"`
	FrameInterval float64      `json:"frame_interval_ms"`
	Runs          [][]RTSPSide `json:"runs"`
	Median        []RTSPSide   `json:"median"`
}

func (c *RTSPConfig) fill() error {
	if c.Size == "" {
		c.Size = "1280x720"
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
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if len(c.Decoders) == 0 {
		c.Decoders = []string{"ffmpeg"}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FFmpegArgs == nil || c.PublishCommand == nil || len(c.HubCommand) == 0 {
		return errors.New("bench: the RTSP comparison needs FFmpegArgs, PublishCommand and HubCommand")
	}
	return testcam.Available()
}

// RunRTSP runs the comparison.
func RunRTSP(ctx context.Context, cfg RTSPConfig) (*RTSPReport, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	cam, err := testcam.Start(testcam.Options{Size: cfg.Size, FPS: cfg.FPS, Timecode: true})
	if err != nil {
		return nil, err
	}
	defer cam.Stop()
	hub, err := startChild(ctx, cfg.HubCommand[0], cfg.HubCommand[1:], cfg.HubReady)
	if err != nil {
		return nil, err
	}
	defer hub.stop()
	rep := &RTSPReport{Camera: fmt.Sprintf("%s at %d fps, H.264 over RTSP/TCP", cfg.Size, cfg.FPS),
		FrameInterval: round3(1000 / float64(cfg.FPS))}
	sides := append([]string{"ffmpeg alone"}, cfg.Decoders...)
	for run := range cfg.Runs {
		order := slices.Clone(sides)
		if run%2 == 1 {
			slices.Reverse(order) // drift in the machine's load falls on every side
		}
		var got []RTSPSide
		for _, side := range order {
			var s RTSPSide
			var err error
			if side == "ffmpeg alone" {
				s, err = rtspAlone(ctx, &cfg, cam.URL())
			} else {
				s, err = rtspFramehub(ctx, &cfg, hub.addr, cam.URL(), side)
				s.Side = "framehub publish --decoder " + side
			}
			if err != nil {
				return nil, fmt.Errorf("run %d, %s: %w", run+1, side, err)
			}
			got = append(got, s)
		}
		slices.SortFunc(got, func(a, b RTSPSide) int { return slices.Index(sides, sideKey(a)) - slices.Index(sides, sideKey(b)) })
		for i := range got {
			got[i].OverP50 = round3(got[i].AgeP50 - got[0].AgeP50)
		}
		rep.Runs = append(rep.Runs, got)
		if cfg.Progress != nil {
			for _, s := range got {
				fmt.Fprintf(cfg.Progress, "run %d: %-36s age p50 %6.1f ms  p90 %6.1f ms  (+%5.1f ms)  %4.1f fps  cpu %5.1f%%\n",
					run+1, s.Side, s.AgeP50, s.AgeP90, s.OverP50, s.FPS, s.CPUPct)
			}
		}
	}
	for i := range sides {
		var col []RTSPSide
		for _, r := range rep.Runs {
			col = append(col, r[i])
		}
		med := func(f func(RTSPSide) float64) float64 {
			v := make([]float64, len(col))
			for k, s := range col {
				v[k] = f(s)
			}
			slices.Sort(v)
			return round3(v[len(v)/2])
		}
		rep.Median = append(rep.Median, RTSPSide{Side: col[0].Side, Frames: int(med(func(s RTSPSide) float64 { return float64(s.Frames) })),
			FPS: med(func(s RTSPSide) float64 { return s.FPS }), AgeP50: med(func(s RTSPSide) float64 { return s.AgeP50 }),
			AgeP90: med(func(s RTSPSide) float64 { return s.AgeP90 }), AgeP99: med(func(s RTSPSide) float64 { return s.AgeP99 }),
			CPUPct: med(func(s RTSPSide) float64 { return s.CPUPct }), OverP50: med(func(s RTSPSide) float64 { return s.OverP50 })})
	}
	return rep, nil
}

func sideKey(s RTSPSide) string {
	if s.Side == "ffmpeg alone" {
		return s.Side
	}
	return s.Side[len("framehub publish --decoder "):]
}

// WriteTable prints the medians and each run.
func (r *RTSPReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "RTSP camera: %s (a frame every %.1f ms); age = arrival - the time in the picture\n", r.Camera, r.FrameInterval)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side (median of runs)\tfps\tage p50 ms\tp90\tp99\tover alone p50 ms\tframe intervals\tCPU % of a core\t")
	for _, s := range r.Median {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%+.1f\t%+.2f\t%.1f\t\n", s.Side, s.FPS, s.AgeP50, s.AgeP90, s.AgeP99, s.OverP50,
			s.OverP50/r.FrameInterval, s.CPUPct)
	}
	return tw.Flush()
}

// ageLog collects frame ageLog: the reader stamps each JPEG's arrival and
// hands it on; decoding (to read the time in the picture) runs apart, so
// that it never delays the next arrival.
type ageLog struct {
	in   chan arrival
	done chan struct{}
	mu   sync.Mutex
	ms   []float64
}

type arrival struct {
	at   time.Time
	jpeg []byte
}

func newAgeLog() *ageLog {
	a := &ageLog{in: make(chan arrival, 256), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for f := range a.in {
			img, err := jpeg.Decode(bytes.NewReader(f.jpeg))
			if err != nil {
				continue
			}
			if made, ok := testcam.Timecode(img); ok {
				a.mu.Lock()
				a.ms = append(a.ms, float64(f.at.Sub(made).Microseconds())/1000)
				a.mu.Unlock()
			}
		}
	}()
	return a
}

// add offers a frame that arrived at at; when the decoder lags far behind
// the frame is left out (never delaying the reader).
func (a *ageLog) add(at time.Time, b []byte) {
	select {
	case a.in <- arrival{at, bytes.Clone(b)}:
	default:
	}
}

// result closes the collector and summarizes it over d.
func (a *ageLog) result(side string, d time.Duration, cpu float64) RTSPSide {
	close(a.in)
	<-a.done
	slices.Sort(a.ms)
	q := func(p float64) float64 {
		if len(a.ms) == 0 {
			return 0
		}
		return round3(a.ms[min(len(a.ms)-1, int(p*float64(len(a.ms))))])
	}
	return RTSPSide{Side: side, Frames: len(a.ms), FPS: round3(float64(len(a.ms)) / d.Seconds()), AgeP50: q(0.5), AgeP90: q(0.9),
		AgeP99: q(0.99), CPUPct: round3(100 * cpu / d.Seconds())}
}

// window runs measure from warmup to warmup+d, with the CPU of the
// processes pids() returns then over that time.
func window(ctx context.Context, cfg *RTSPConfig, pids func() []int, a *ageLog, measuring *bool, mu *sync.Mutex) (cpu float64, err error) {
	if !backoff.Wait(ctx, cfg.Warmup) {
		return 0, ctx.Err()
	}
	cpuOf := func() float64 {
		var s float64
		for _, p := range pids() {
			if c, err := procCPU(p); err == nil {
				s += c
			}
		}
		return s
	}
	c0 := cpuOf()
	mu.Lock()
	*measuring = true
	mu.Unlock()
	if !backoff.Wait(ctx, cfg.Duration) {
		return 0, ctx.Err()
	}
	mu.Lock()
	*measuring = false
	mu.Unlock()
	return cpuOf() - c0, nil
}

// rtspAlone measures ffmpeg reading the camera by itself.
func rtspAlone(ctx context.Context, cfg *RTSPConfig, url string) (RTSPSide, error) {
	cmd := exec.CommandContext(ctx, cfg.FFmpeg, cfg.FFmpegArgs(url, cfg.Quality)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return RTSPSide{}, err
	}
	if err := cmd.Start(); err != nil {
		return RTSPSide{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	a := newAgeLog()
	var mu sync.Mutex
	measuring := false
	go func() {
		mr := protocol.NewMJPEGReader(out, protocol.MJPEGOptions{Bare: true, MaxJPEG: 16 << 20})
		for {
			p, err := mr.Next()
			if err != nil {
				return
			}
			now := time.Now()
			mu.Lock()
			m := measuring
			mu.Unlock()
			if m {
				a.add(now, p.JPEG)
			}
		}
	}()
	cpu, err := window(ctx, cfg, func() []int { return []int{cmd.Process.Pid} }, a, &measuring, &mu)
	if err != nil {
		return RTSPSide{}, err
	}
	res := a.result("ffmpeg alone", cfg.Duration, cpu)
	if res.Frames == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // its stderr is complete once it has been waited for
		return res, fmt.Errorf("ffmpeg delivered no frame in %v; it said: %s", cfg.Warmup+cfg.Duration, lastLines(stderr.String(), 3))
	}
	return res, nil
}

// rtspFramehub measures framehub publish, through the hub, to a
// subscriber here.
func rtspFramehub(ctx context.Context, cfg *RTSPConfig, hubAddr, url, decoder string) (RTSPSide, error) {
	channel := "rtsp-" + decoder
	argv := cfg.PublishCommand(hubAddr, channel, url, decoder, cfg.Quality)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return RTSPSide{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	u, err := protocol.ChannelURL(hubAddr, protocol.PathSubscribe, channel)
	if err != nil {
		return RTSPSide{}, err
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, u, http.Header{})
	if err != nil {
		return RTSPSide{}, err
	}
	defer ws.Close()
	a := newAgeLog()
	var mu sync.Mutex
	measuring := false
	go func() {
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			now := time.Now()
			f, err := protocol.ParseMessage(msg, protocol.ClientGuard)
			mu.Lock()
			m := measuring
			mu.Unlock()
			if err == nil && m {
				a.add(now, f.Payload)
			}
		}
	}()
	pids := func() []int { return append([]int{cmd.Process.Pid}, childPIDs(cmd.Process.Pid)...) }
	cpu, err := window(ctx, cfg, pids, a, &measuring, &mu)
	if err != nil {
		return RTSPSide{}, err
	}
	s := a.result(decoder, cfg.Duration, cpu)
	if s.Frames == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // its stderr is complete once it has been waited for
		return s, fmt.Errorf("no frame reached the subscriber; publish said: %s", lastLines(stderr.String(), 3))
	}
	return s, nil
}

func lastLines(s string, n int) string {
	sc := bufio.NewScanner(bytes.NewReader([]byte(s)))
	var l []string
	for sc.Scan() {
		l = append(l, sc.Text())
		if len(l) > n {
			l = l[1:]
		}
	}
	b, _ := json.Marshal(l)
	return string(b)
}
