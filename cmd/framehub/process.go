//go:build cgo

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/process"
	"framehub/protocol"
)

func processCommand() *cli.Command {
	return &cli.Command{
		Name:  "process",
		Usage: "run processing steps (face, people and motion detection, blur, resize, filters) on a channel and publish the result to another",
		UsageText: "framehub process --hub URL --in CHANNEL --out CHANNEL --step STEP[,STEP…] [--workers N] [--gate motion]\n\n" +
			"Steps: " + process.StepNames + ".\n" +
			"Each output frame keeps its input's sequence number and capture time; detections go into its metadata\n" +
			`as {"boxes":[{"x","y","w","h","label","score"}],"steps":[{"name","ms"}]}.`,
		Flags: append(append(clientFlags(),
			&cli.StringFlag{Name: "in", Required: true, Usage: "channel to process", EnvVars: []string{"FRAMEHUB_IN"}},
			&cli.StringFlag{Name: "out", Required: true, Usage: "channel to publish the processed frames to (not --in, unless as a rendition)", EnvVars: []string{"FRAMEHUB_OUT"}},
			&cli.StringFlag{Name: "out-rendition", Value: "main", Usage: "publish the results as this rendition of --out, a width (e.g. 320 with --step resize=320; --out may then be --in), or main", EnvVars: []string{"FRAMEHUB_OUT_RENDITION"}},
			&cli.StringSliceFlag{Name: "step", Required: true, Usage: "steps in order (repeat or comma-separate): " + process.StepNames, EnvVars: []string{"FRAMEHUB_STEP"}},
			&cli.IntFlag{Name: "workers", Value: 1, Usage: "frames processed at once; a result that finishes after a newer one is dropped", EnvVars: []string{"FRAMEHUB_WORKERS"}},
			&cli.StringFlag{Name: "gate", Usage: "motion: run the detectors only where the motion step finds movement; frames without movement carry the last detections", EnvVars: []string{"FRAMEHUB_GATE"}},
			&cli.DurationFlag{Name: "gate-refresh", Value: process.DefaultGateRefresh, Usage: "with --gate, run the detectors on the whole picture this often whatever moved (0: only at start)", EnvVars: []string{"FRAMEHUB_GATE_REFRESH"}},
			&cli.StringFlag{Name: "cascade", Usage: "Haar cascade file for faces and blur-faces (default: opencv-data's frontal face cascade)", EnvVars: []string{"FRAMEHUB_CASCADE"}},
			&cli.IntFlag{Name: "quality", Value: process.DefaultQuality, Usage: "JPEG quality of frames a step changed (detections alone pass the input's JPEG on as it came)", EnvVars: []string{"FRAMEHUB_QUALITY"}},
			&cli.IntFlag{Name: "credit", Value: process.DefaultCredit, Usage: "input frames in flight (credit mode)", EnvVars: []string{"FRAMEHUB_CREDIT"}},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: until Ctrl-C)", EnvVars: []string{"FRAMEHUB_DURATION"}},
			&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object on stdout", EnvVars: []string{"FRAMEHUB_JSON"}},
			&cli.BoolFlag{Name: "quiet", Usage: "no status line each second", EnvVars: []string{"FRAMEHUB_QUIET"}},
		), eventFlags()...),
		Action: runProcess,
	}
}

// processConfig maps the process flags to process.Config.
func processConfig(c *cli.Context) (process.Config, error) {
	hd, tlsConf, err := clientAuth(c)
	if err != nil {
		return process.Config{}, err
	}
	cfg := process.Config{
		Hub: c.String("hub"), In: c.String("in"), Out: c.String("out"), Header: hd, TLS: tlsConf,
		ConnectTimeout: connectTimeout(c), Workers: c.Int("workers"), Quality: c.Int("quality"),
		Credit: c.Int("credit"), GateRefresh: c.Duration("gate-refresh"), Logger: logger(c),
	}
	if cfg.GateRefresh == 0 {
		cfg.GateRefresh = -1 // 0 on the command line: only at start
	}
	switch c.String("gate") {
	case "":
	case "motion":
		cfg.Gate = true
	default:
		return cfg, fmt.Errorf("--gate %q: the only gate is motion", c.String("gate"))
	}
	if cfg.OutRendition, err = protocol.ParseRendition(c.String("out-rendition")); err != nil {
		return cfg, fmt.Errorf("--out-rendition: %w", err)
	}
	if cfg.In == cfg.Out && cfg.OutRendition == protocol.RenditionMain {
		return cfg, fmt.Errorf("--out %s is --in: publishing to the channel being processed would feed it its own output "+
			"(add a rendition of it instead: --out-rendition N with --step resize=N)", cfg.Out)
	}
	if cfg.Events, err = eventRules(c); err != nil {
		return cfg, err
	}
	cfg.Steps, err = process.ParseSteps(c.StringSlice("step"), process.StepOptions{Cascade: c.String("cascade")})
	if err != nil {
		return cfg, fmt.Errorf("--step: %w", err)
	}
	return cfg, nil
}

// processSummary is what `process --json` prints.
type processSummary struct {
	In  string `json:"in"`
	Out string `json:"out"`
	process.Stats
	// CPUMSPerFrame is this process's CPU time (user and system, every
	// thread: decoding, steps, encoding, network) per processed frame.
	CPUMSPerFrame float64 `json:"cpu_ms_per_frame"`
	Seconds       float64 `json:"duration_s"`
}

func runProcess(c *cli.Context) error {
	quietOpenCV(c)
	cfg, err := processConfig(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	if d := c.Duration("duration"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	return runProcessor(ctx, c, cfg)
}

// runProcessor runs a processor with a status line each second on stderr
// and a summary at the end.
func runProcessor(ctx context.Context, c *cli.Context, cfg process.Config) error {
	p, err := process.New(cfg)
	if err != nil {
		for _, s := range cfg.Steps {
			if cl, ok := s.(interface{ Close() error }); ok {
				cl.Close()
			}
		}
		return err
	}
	defer p.Close()
	start, cpu0 := time.Now(), cpuTime()
	cfg.Logger.Info("processing", "in", cfg.In, "out", cfg.Out, "hub", cfg.Hub, "workers", max(cfg.Workers, 1), "gate", cfg.Gate)
	prev, at := p.Stats(), time.Now()
	stopStatus := showEverySecond(c, func(now time.Time) string {
		cur := p.Stats()
		line := cfg.In + " -> " + cfg.Out + "  " + process.Status(prev, cur, now.Sub(at))
		prev, at = cur, now
		return line
	})
	err = p.Run(ctx)
	stopStatus()
	sum := processSummary{In: cfg.In, Out: cfg.Out, Stats: p.Stats(), Seconds: time.Since(start).Seconds()}
	if sum.Processed > 0 {
		sum.CPUMSPerFrame = float64(cpuTime()-cpu0) / float64(time.Millisecond) / float64(sum.Processed)
	}
	if c.Bool("json") {
		if e := json.NewEncoder(c.App.Writer).Encode(sum); e != nil && err == nil {
			err = e
		}
	} else {
		s := sum.Stats
		fmt.Fprintf(c.App.ErrWriter, "%s -> %s: %d frames received, %d processed, %d published; skipped %d, late %d, failed %d, bad input %d, bad metadata %d, metadata cut %d; processing p50 %.1f ms p99 %.1f ms, age added p50 %.1f ms p99 %.1f ms, CPU %.1f ms per frame; %d events started, %d ended\n",
			cfg.In, cfg.Out, s.Received, s.Processed, s.Published, s.Skipped, s.Late, s.Failed, s.BadInput, s.BadMeta, s.MetaCut,
			s.ProcMSP50, s.ProcMSP99, s.AddedMSP50, s.AddedMSP99, sum.CPUMSPerFrame, s.EventsStarted, s.EventsEnded)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// cpuTime returns the CPU time this process has used, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
