package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// report judges the run, writes OUT/samples.csv and OUT/report.md, prints
// the report, and says whether the run failed.
func (s *soak) report() (failed bool, err error) {
	s.mu.Lock()
	samples, faults, drops := slices.Clone(s.samples), slices.Clone(s.faults), slices.Clone(s.drops)
	failures := slices.Clone(s.failures)
	timeline, dir := slices.Clone(s.timeline), s.recording
	s.mu.Unlock()

	growths, leakFailures := leaks(samples, s.warmup, defaultBounds)
	recs, recFailures := recoveries(samples, faults, s.window, s.settle, defaultBounds)
	failures = append(failures, leakFailures...)
	failures = append(failures, recFailures...)
	frames, older, example := s.fresh.counts()
	if older > 0 {
		failures = append(failures, fmt.Sprintf("stale frames: %d of %d frames received were older than the newest the subscriber already had (%s)", older, frames, example))
	}
	if frames == 0 {
		failures = append(failures, "no frame reached any subscriber")
	}
	var back, shown []float64
	for _, d := range drops {
		if d.Back < 0 {
			failures = append(failures, fmt.Sprintf("%s %s at %.0f s never streamed again within 30 s", d.Camera, d.How, d.At))
		} else {
			back = append(back, d.Back)
		}
		if d.Shown < 0 {
			failures = append(failures, fmt.Sprintf("%s %s at %.0f s: the hub never showed the loss within %.0f s", d.Camera, d.How, d.At, s.sourceWait))
		} else {
			shown = append(shown, d.Shown)
		}
	}
	logs := s.countLogs(drops)

	if err := s.writeCSV(samples); err != nil {
		return true, err
	}
	f, err := os.Create(filepath.Join(s.dir, "report.md"))
	if err != nil {
		return true, err
	}
	defer f.Close()
	w := io.MultiWriter(f, os.Stdout)
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	verdict := "passed"
	if len(failures) > 0 {
		verdict = fmt.Sprintf("FAILED (%d)", len(failures))
	}
	p("# framehub soak: %s", verdict)
	p("")
	p("%s, %.0f minutes (`go run ./tools/soak --minutes %g`), %d CPUs; load average (1, 5, 15 min) %s at the start, %s at the end.",
		s.start.UTC().Format("2006-01-02 15:04 UTC"), s.dur.Minutes(), s.dur.Minutes(), runtime.NumCPU(), s.loadAt[0], s.loadAt[1])
	p("Warm-up %.0f s (and as long for each restarted process); samples every %v; camera drops every %.0f s; hub-a killed at %.0f s, nats at %.0f s.",
		s.warmup, s.every, s.dropEvery, s.hubKill, s.natsKill)
	p("")
	p("## Targets")
	p("")
	p("| target | measured |")
	p("|---|---|")
	p("| a camera that returns streams again within 2 s (p95 over the drops) | p95 %s, max %s over %d drops |", secs(percentile(back, 95)), secs(maxOf(back)), len(back))
	p("| its loss shown within --source-timeout (default: 10 frame intervals, 1 to 3 s; 1 s at these cameras' 10 fps) | max %s, p95 %s |", secs(maxOf(shown)), secs(percentile(shown, 95)))
	for _, g := range growths {
		if strings.HasPrefix(g.Proc, "hub-") && g.judged {
			p("| %s (pid %d) RSS growth after warm-up < 5 %% | %+.1f %% (%.1f → %.1f MiB) |", g.Proc, g.PID, 100*g.RSSGrowth(), g.RSSBase/(1<<20), g.RSSEnd/(1<<20))
		}
	}
	notBack := 0
	for _, r := range recs {
		if !r.Back {
			notBack++
		}
	}
	p("| goroutines and open files back to their baseline after each fault | %d of %d process × fault comparisons back |", len(recs)-notBack, len(recs))
	crashes := 0
	for _, fl := range failures {
		if strings.HasPrefix(fl, "crash:") {
			crashes++
		}
	}
	p("| 0 crashes | %d |", crashes)
	p("| every camera loss and return logged once | %s |", logs)
	p("| no frame older than the newest a subscriber had, after any reconnect | %d older of %d frames (%d churning connections) |", older, frames, s.churnConns.Load())
	p("| the recording directory within --max-size %d and one segment | peak %d bytes, largest segment %d; %d samples over |", dir.Max, dir.Peak, dir.Largest, dir.Over)
	p("")
	if len(failures) > 0 {
		p("## Failures")
		p("")
		for _, fl := range failures {
			p("- %s", fl)
		}
		p("")
	}
	p("## Timeline")
	p("")
	p("```")
	for _, l := range timeline {
		p("%s", l)
	}
	p("```")
	p("")
	p("## Processes after the warm-up")
	p("")
	p("Baseline: the median of the first quarter of a process's samples after its warm-up; end: of the last quarter. Bounds: RSS +%.0f %% + %.0f MiB, goroutines +%.0f %% + %.0f, open files + %.0f; instances with fewer than %d samples are not judged.",
		100*defaultBounds.RSSFrac, defaultBounds.RSSAbs/(1<<20), 100*defaultBounds.GoroutinesFrac, defaultBounds.GoroutinesAbs, defaultBounds.FilesAbs, defaultBounds.MinSamples)
	p("")
	p("| process | pid | samples | RSS MiB | RSS growth | open files | goroutines | CPU %% (median) | verdict |")
	p("|---|---|---|---|---|---|---|---|---|")
	for _, g := range growths {
		gor := "–"
		if g.hasGoroutines {
			gor = fmt.Sprintf("%.0f → %.0f", g.GorBase, g.GorEnd)
		}
		if g.Samples == 0 {
			p("| %s | %d | 0 | – | – | – | – | – | not judged: ended or restarted within its warm-up |", g.Proc, g.PID)
			continue
		}
		verdict := "not judged (short)"
		if g.judged {
			verdict = "ok"
			if len(g.Leaks) > 0 {
				verdict = "LEAK: " + strings.Join(g.Leaks, "; ")
			}
		}
		p("| %s | %d | %d | %.1f → %.1f | %+.1f %% | %.0f → %.0f | %s | %.1f | %s |", g.Proc, g.PID, g.Samples, g.RSSBase/(1<<20), g.RSSEnd/(1<<20),
			100*g.RSSGrowth(), g.FilesBase, g.FilesEnd, gor, g.CPUMedian, verdict)
	}
	p("")
	p("## After each fault")
	p("")
	p("Median of the %.0f s before the fault against the %.0f s from %.0f s after it.", s.window, s.window, s.settle)
	p("")
	p("| fault | process | open files | goroutines | back |")
	p("|---|---|---|---|---|")
	for _, r := range recs {
		gor := "–"
		if r.GorBefore >= 0 {
			gor = fmt.Sprintf("%.0f → %.0f", r.GorBefore, r.GorAfter)
		}
		p("| %s | %s | %.0f → %.0f | %s | %v |", r.Fault, r.Proc, r.FilesBefore, r.FilesAfter, gor, r.Back)
	}
	p("")
	p("## Camera drops")
	p("")
	p("| at | camera | how | loss shown after | as | the camera's own start | streaming again after it answered |")
	p("|---|---|---|---|---|---|---|")
	for _, d := range drops {
		start := "–"
		if d.How == "stopped" {
			start = secs(d.CameraStart)
		}
		p("| %.0f s | %s | %s | %s | %s | %s | %s |", d.At, d.Camera, d.How, secs(d.Shown), d.ShownAs, start, secs(d.Back))
	}
	p("")
	p("Subscribers: %d frames checked, %d churning connections (%d frames). Exits: %s.", frames, s.churnConns.Load(), s.churnFrames.Load(), s.exitSummary())
	p("Samples: `samples.csv` (t_s, process, pid, rss_mib, cpu_pct, open_files, goroutines), logs: `logs/`.")
	return len(failures) > 0, nil
}

func secs(v float64) string {
	if v < 0 || v != v {
		return "never"
	}
	return fmt.Sprintf("%.2f s", v)
}

func maxOf(vs []float64) float64 {
	if len(vs) == 0 {
		return -1
	}
	return slices.Max(vs)
}

// exitSummary lists the processes that exited on their own.
func (s *soak) exitSummary() string {
	var parts []string
	for _, p := range s.procs {
		p.mu.Lock()
		if len(p.exits) > 0 {
			parts = append(parts, fmt.Sprintf("%s %d× (%s)", p.name, len(p.exits), strings.Join(p.exits, ", ")))
		}
		p.mu.Unlock()
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// countLogs compares the camera publishers' logs with the drops: each
// drop should be logged once as lost (or stalled) and once as back; and
// nothing but structured log lines should be on their stderr.
func (s *soak) countLogs(drops []dropResult) string {
	var parts []string
	for _, cam := range []string{"cam1", "cam2"} {
		n := 0
		for _, d := range drops {
			if d.Camera == cam {
				n++
			}
		}
		text, _ := os.ReadFile(filepath.Join(s.logDir, "pub-"+cam+".log"))
		// Warnings and notices only: the cameras' publishers log at debug
		// level too (every open and every folded library line), for a slow
		// return to be read from their logs.
		count := func(msg string) int {
			n := 0
			for _, l := range strings.Split(string(text), "\n") {
				if strings.Contains(l, `msg="`+msg+`"`) && !strings.Contains(l, "level=DEBUG") {
					n++
				}
			}
			return n
		}
		lost := count("source lost; reconnecting") + count("source stalled")
		back := count("source back")
		chatter := 0
		sc := bufio.NewScanner(strings.NewReader(string(text)))
		for sc.Scan() {
			if l := sc.Text(); l != "" && !strings.HasPrefix(l, "time=") {
				chatter++
			}
		}
		parts = append(parts, fmt.Sprintf("%s: %d drops, %d logged lost or stalled, %d back, %d source error lines, %d lines of decoder chatter",
			cam, n, lost, back, count("source error"), chatter))
	}
	return strings.Join(parts, "; ")
}

// writeCSV writes every sample, plot-ready.
func (s *soak) writeCSV(samples []sample) error {
	f, err := os.Create(filepath.Join(s.dir, "samples.csv"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "t_s,process,pid,rss_mib,cpu_pct,open_files,goroutines")
	for _, x := range samples {
		gor := ""
		if x.Goroutines >= 0 {
			gor = fmt.Sprint(x.Goroutines)
		}
		cpu := ""
		if x.CPU >= 0 {
			cpu = fmt.Sprintf("%.1f", x.CPU)
		}
		fmt.Fprintf(w, "%.1f,%s,%d,%.1f,%s,%d,%s\n", x.T, x.Proc, x.PID, float64(x.RSS)/(1<<20), cpu, x.Files, gor)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
