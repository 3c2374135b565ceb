package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// What each target is, for the report's legend.
var targetLegend = map[string]string{
	"hub":              "the hub",
	"write":            "baseline: one goroutine per subscriber, newest frame in an atomic pointer, woken by a closed channel, write(2)",
	"sendfile":         "baseline: the same, each frame put once in a memory file and sent with sendfile(2), as the hub's zero-copy path",
	"hub-default":      "the hub on the same load with credit mode off",
	"sendfile-default": "the sendfile baseline on the same load with credit mode off",
}

// WriteTable prints the report as a table: one row per figure, a column
// per target, and the hub's ratio to each other target. With several runs
// each cell is the median over the runs and its range.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "framehub bench: %s, %d subscribers (%d slow at %.0f fps) + %d stalled + %d idle, %d channel(s), credit %d, churn %d/s\n",
		rep.Mode, rep.Subscribers, rep.Slow, rep.SlowFPS, rep.Stalled, rep.Idle, rep.Channels, rep.Credit, rep.Churn)
	fmt.Fprintf(w, "frames %dx%d JPEG, %d bytes, %.0f fps, measured over %.0f s", rep.Width, rep.Height, rep.FrameBytes, rep.FPS, rep.Seconds)
	if rep.SendBuffer != 0 {
		fmt.Fprintf(w, "; subscriber send buffer %d bytes on every server", rep.SendBuffer)
	}
	fmt.Fprintln(w)
	for _, t := range rep.Targets {
		fmt.Fprintf(w, "  %s: %s\n", t, targetLegend[t])
	}
	if n := len(rep.Runs); n > 1 {
		fmt.Fprintf(w, "%d runs, the targets' order rotated each run; each figure is the median [min-max] over the runs, each ratio is taken within a run\n", n)
	}
	if rep.Pinned != "" {
		fmt.Fprintf(w, "pinned: %s\n", rep.Pinned)
	}
	if rep.ClientBound {
		fmt.Fprintf(w, "\nCLIENT-BOUND: %d of %d runs measured the load generator or the machine more than the servers; do not read the ratios as the server's.\n",
			rep.ClientBoundRuns, len(rep.Runs))
	} else if rep.ClientBoundRuns > 0 {
		fmt.Fprintf(w, "\n%d of %d runs were client-bound (see the warnings).\n", rep.ClientBoundRuns, len(rep.Runs))
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	var pairs []string
	for _, p := range ratioPairs(parseTargets(rep.Targets)) {
		pairs = append(pairs, p[0].String()+"/"+p[1].String())
	}
	head := "figure\t"
	for _, t := range rep.Targets {
		head += t + "\t"
	}
	for _, p := range pairs {
		head += strings.Replace(p, "/", " ÷ ", 1) + "\t"
	}
	fmt.Fprintln(tw, head)
	many := len(rep.Runs) > 1
	cell := func(med, lo, hi float64) string {
		if !many {
			return num(med)
		}
		return fmt.Sprintf("%s [%s-%s]", num(med), num(lo), num(hi))
	}
	row := func(name string, get func(*Result) float64, ratioKey string) {
		line := name + "\t"
		for _, t := range rep.Targets {
			line += cell(get(rep.Median[t]), get(rep.Min[t]), get(rep.Max[t])) + "\t"
		}
		for _, p := range pairs {
			if r, ok := rep.Ratios[p][ratioKey]; ok && ratioKey != "" {
				if many {
					line += fmt.Sprintf("%.3f [%.3f-%.3f]", r.Median, r.Min, r.Max)
				} else {
					line += fmt.Sprintf("%.3f", r.Median)
				}
			}
			line += "\t"
		}
		fmt.Fprintln(tw, line)
	}
	row("published fps per channel", func(r *Result) float64 { return r.PublishedFPS }, "")
	row("fast fps min", func(r *Result) float64 { return r.FastFPS.Min }, "fast_fps_min")
	row("fast fps p10", func(r *Result) float64 { return r.FastFPS.P10 }, "")
	row("fast fps median", func(r *Result) float64 { return r.FastFPS.Median }, "fast_fps_median")
	row("fast delivered fraction min", func(r *Result) float64 { return r.FastDelivered.Min }, "fast_delivered_min")
	row("fast delivered fraction median", func(r *Result) float64 { return r.FastDelivered.Median }, "")
	if rep.Slow > 0 {
		row("slow fps median", func(r *Result) float64 { return r.SlowFPS.Median }, "")
	}
	row("delivered MB/s", func(r *Result) float64 { return r.DeliveredMBps }, "delivered_mb_per_s")
	row("fast age p50 ms", func(r *Result) float64 { return r.FastAge.P50 }, "fast_age_p50")
	row("fast age p99 ms", func(r *Result) float64 { return r.FastAge.P99 }, "fast_age_p99")
	row("fast age max ms", func(r *Result) float64 { return r.FastAge.Max }, "")
	if rep.Slow > 0 {
		row("slow age p50 ms", func(r *Result) float64 { return r.SlowAge.P50 }, "slow_age_p50")
		row("slow age p99 ms", func(r *Result) float64 { return r.SlowAge.P99 }, "")
	}
	row("skipped frames", func(r *Result) float64 { return float64(r.Skipped) }, "")
	row("server CPU s", func(r *Result) float64 { return r.ServerCPU }, "")
	row("server CPU s per GB", func(r *Result) float64 { return r.ServerCPUPerGB }, "server_cpu_per_gb")
	row("server RSS MB", func(r *Result) float64 { return r.ServerRSSMB }, "server_rss")
	row("server private MB (RssAnon)", func(r *Result) float64 { return r.ServerAnonMB }, "server_private")
	row("load generator CPU s", func(r *Result) float64 { return r.LoadgenCPU }, "")
	row("server CPUs busy", func(r *Result) float64 { return r.ServerCPUsBusy }, "")
	row("load generator CPUs busy", func(r *Result) float64 { return r.LoadgenCPUsBusy }, "")
	row("machine load average (1 min)", func(r *Result) float64 { return r.LoadAvg }, "")
	row(fmt.Sprintf("connect s (%d subscribers to first frame)", rep.Subscribers), func(r *Result) float64 { return r.ConnectS }, "connect_s")
	if rep.Idle > 0 {
		row("KB per idle subscriber", func(r *Result) float64 { return r.IdleKBPerSub }, "")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	h := rep.Median[targetHub.String()]
	fmt.Fprintf(w, "\nhub (medians): heap %.1f MB, %d goroutines, %d subscribers evicted", h.HeapMB, h.Goroutines, h.Evicted)
	if rep.Idle > 0 {
		fmt.Fprintf(w, ", %.1f KB per idle subscriber", h.IdleKBPerSub)
	}
	fmt.Fprintln(w)
	if c := h.Churn; c != nil {
		fmt.Fprintf(w, "churn (medians): %d short-lived subscribers; goroutines %d before, %d after; heap %.1f MB before, %.1f MB after\n",
			c.Started, c.GoroutinesBefore, c.GoroutinesAfter, c.HeapMBBefore, c.HeapMBAfter)
	}
	return rep.writePublisher(w)
}

// parseTargets turns target names back into targets.
func parseTargets(names []string) []target {
	var ts []target
	for _, n := range names {
		for t := targetHub; t <= targetSendfileDefault; t++ {
			if t.String() == n {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3f", v)
}
