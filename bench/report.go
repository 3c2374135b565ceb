package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the report as a table: one row per figure, a column
// per target, and the hub's ratio to the baseline where there is one.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "framehub bench: %s, %d subscribers (%d slow at %.0f fps) + %d stalled + %d idle, %d channel(s), credit %d, churn %d/s\n",
		rep.Mode, rep.Subscribers, rep.Slow, rep.SlowFPS, rep.Stalled, rep.Idle, rep.Channels, rep.Credit, rep.Churn)
	fmt.Fprintf(w, "frames %dx%d JPEG, %d bytes, %.0f fps, measured over %.0f s\n", rep.Width, rep.Height, rep.FrameBytes, rep.FPS, rep.Seconds)
	if rep.Pinned != "" {
		fmt.Fprintf(w, "pinned: %s\n", rep.Pinned)
	}
	if rep.ClientBound {
		fmt.Fprintln(w, "\nCLIENT-BOUND RUN: the figures below describe the load generator or the machine more than the server; do not read the ratios as the server's.")
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	b := rep.Baseline
	head := "figure\thub\t"
	if b != nil {
		head += "raw-tcp\thub ÷ raw-tcp\t"
	}
	fmt.Fprintln(tw, head)
	row := func(name string, hv, bv float64, ratioKey string) {
		line := fmt.Sprintf("%s\t%s\t", name, num(hv))
		if b != nil {
			line += num(bv) + "\t"
			if r, ok := rep.Ratios[ratioKey]; ok {
				line += fmt.Sprintf("%.3f", r)
			}
			line += "\t"
		}
		fmt.Fprintln(tw, line)
	}
	h := rep.Hub
	var z Result
	if b == nil {
		b = &z
	}
	row("published fps per channel", h.PublishedFPS, b.PublishedFPS, "")
	row("fast fps min", h.FastFPS.Min, b.FastFPS.Min, "fast_fps_min")
	row("fast fps p10", h.FastFPS.P10, b.FastFPS.P10, "")
	row("fast fps median", h.FastFPS.Median, b.FastFPS.Median, "fast_fps_median")
	row("fast delivered fraction min", h.FastDelivered.Min, b.FastDelivered.Min, "fast_delivered_min")
	row("fast delivered fraction median", h.FastDelivered.Median, b.FastDelivered.Median, "")
	if rep.Slow > 0 {
		row("slow fps median", h.SlowFPS.Median, b.SlowFPS.Median, "")
	}
	row("delivered MB/s", h.DeliveredMBps, b.DeliveredMBps, "delivered_mb_per_s")
	row("fast age p50 ms", h.FastAge.P50, b.FastAge.P50, "fast_age_p50")
	row("fast age p99 ms", h.FastAge.P99, b.FastAge.P99, "fast_age_p99")
	row("fast age max ms", h.FastAge.Max, b.FastAge.Max, "")
	if rep.Slow > 0 {
		row("slow age p50 ms", h.SlowAge.P50, b.SlowAge.P50, "slow_age_p50")
		row("slow age p99 ms", h.SlowAge.P99, b.SlowAge.P99, "")
	}
	row("skipped frames", float64(h.Skipped), float64(b.Skipped), "")
	row("server CPU s", h.ServerCPU, b.ServerCPU, "")
	row("server CPU s per GB", h.ServerCPUPerGB, b.ServerCPUPerGB, "server_cpu_per_gb")
	row("server RSS MB", h.ServerRSSMB, b.ServerRSSMB, "server_rss")
	row("server private MB (RssAnon)", h.ServerAnonMB, b.ServerAnonMB, "server_private")
	row("load generator CPU s", h.LoadgenCPU, b.LoadgenCPU, "")
	row("server CPUs busy", h.ServerCPUsBusy, b.ServerCPUsBusy, "")
	row("load generator CPUs busy", h.LoadgenCPUsBusy, b.LoadgenCPUsBusy, "")
	row(fmt.Sprintf("connect s (%d subscribers to first frame)", rep.Subscribers), h.ConnectS, b.ConnectS, "connect_s")
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nhub: heap %.1f MB, %d goroutines, %d subscribers evicted", h.HeapMB, h.Goroutines, h.Evicted)
	if rep.Idle > 0 {
		fmt.Fprintf(w, ", %.1f KB per idle subscriber", h.IdleKBPerSub)
	}
	fmt.Fprintln(w)
	if c := h.Churn; c != nil {
		fmt.Fprintf(w, "churn: %d short-lived subscribers; goroutines %d before, %d after; heap %.1f MB before, %.1f MB after\n",
			c.Started, c.GoroutinesBefore, c.GoroutinesAfter, c.HeapMBBefore, c.HeapMBAfter)
	}
	return rep.writePublisher(w)
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
