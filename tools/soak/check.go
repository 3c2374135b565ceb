package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
)

// What the soak judges, apart from how it runs: the samples it takes and
// the bounds that make a run fail. Everything here is pure, so that the
// leak and failure detection is tested on made-up series
// (check_test.go), not only on whatever a real run happens to do.

// sample is one reading of one process.
type sample struct {
	T          float64 // seconds since the soak started
	Proc       string  // the soak's name for it (hub-a, pub-cam1, pub-cam1/ffmpeg…)
	PID        int
	RSS        uint64  // bytes
	CPU        float64 // percent of one core since the previous sample (-1: first)
	Files      int     // open file descriptors
	Goroutines int     // from the hub's metrics; -1 where there are none
}

// bounds are the limits a run must stay within after its warm-up.
type bounds struct {
	// RSSFrac and RSSAbs: a process's resident memory may grow by this
	// fraction of its baseline plus this many bytes (the absolute part
	// absorbs the Go heap's own breathing in a small process).
	RSSFrac float64
	RSSAbs  float64
	// GoroutinesFrac and GoroutinesAbs: the same for a hub's goroutines
	// (subscribers churn, each holds a few).
	GoroutinesFrac float64
	GoroutinesAbs  float64
	// FilesAbs: open files may grow by this many.
	FilesAbs float64
	// MinSamples: a process instance with fewer samples after the warm-up
	// is not judged (a camera restarted a moment ago).
	MinSamples int
}

// defaultBounds are the soak's stated bounds (docs/SOAK.md).
var defaultBounds = bounds{RSSFrac: 0.05, RSSAbs: 4 << 20, GoroutinesFrac: 0.10, GoroutinesAbs: 20, FilesAbs: 8, MinSamples: 8}

// growth is what one process instance did after the warm-up: the median
// of the first quarter of its samples (the baseline) against the median
// of the last quarter.
type growth struct {
	Proc                  string
	PID                   int
	Samples               int
	RSSBase, RSSEnd       float64
	FilesBase, FilesEnd   float64
	GorBase, GorEnd       float64 // -1: no goroutine count
	CPUMedian             float64
	Leaks                 []string // what grew beyond the bounds
	judged, hasGoroutines bool
}

// RSSGrowth is the resident memory's growth as a fraction of its baseline.
func (g growth) RSSGrowth() float64 {
	if g.RSSBase == 0 {
		return 0
	}
	return (g.RSSEnd - g.RSSBase) / g.RSSBase
}

// instance names one process instance (a restarted process is a new one).
type instance struct {
	Proc string
	PID  int
}

// byInstance groups samples by process instance, in time order, keeping
// the order instances first appear in.
func byInstance(samples []sample) ([]instance, map[instance][]sample) {
	var order []instance
	m := map[instance][]sample{}
	for _, s := range samples {
		k := instance{s.Proc, s.PID}
		if _, ok := m[k]; !ok {
			order = append(order, k)
		}
		m[k] = append(m[k], s)
	}
	for _, k := range order {
		sort.SliceStable(m[k], func(i, j int) bool { return m[k][i].T < m[k][j].T })
	}
	return order, m
}

// median of vs (0 for none); vs is not changed.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the p-th percentile (0 to 100) of vs, nearest rank.
func percentile(vs []float64, p float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// leaks judges every process instance's samples taken at or after warmup
// seconds, and warmup seconds after its own first sample: it returns each
// instance's growth, and what leaked.
func leaks(samples []sample, warmup float64, b bounds) (all []growth, failures []string) {
	order, m := byInstance(samples)
	for _, k := range order {
		// A process started late (restarted after a fault) warms up too.
		from := max(warmup, m[k][0].T+warmup)
		var after []sample
		for _, s := range m[k] {
			if s.T >= from {
				after = append(after, s)
			}
		}
		g := growth{Proc: k.Proc, PID: k.PID, Samples: len(after), GorBase: -1, GorEnd: -1}
		if len(after) == 0 {
			all = append(all, g) // alive too briefly to judge
			continue
		}
		q := max(len(after)/4, 1)
		field := func(ss []sample, f func(sample) float64) float64 {
			vs := make([]float64, len(ss))
			for i, s := range ss {
				vs[i] = f(s)
			}
			return median(vs)
		}
		first, last := after[:q], after[len(after)-q:]
		rss := func(s sample) float64 { return float64(s.RSS) }
		files := func(s sample) float64 { return float64(s.Files) }
		gor := func(s sample) float64 { return float64(s.Goroutines) }
		g.RSSBase, g.RSSEnd = field(first, rss), field(last, rss)
		g.FilesBase, g.FilesEnd = field(first, files), field(last, files)
		var cpu []float64
		for _, s := range after {
			if s.CPU >= 0 {
				cpu = append(cpu, s.CPU)
			}
		}
		g.CPUMedian = median(cpu)
		g.hasGoroutines = after[0].Goroutines >= 0
		if g.hasGoroutines {
			g.GorBase, g.GorEnd = field(first, gor), field(last, gor)
		}
		if len(after) >= b.MinSamples {
			g.judged = true
			if g.RSSEnd > g.RSSBase*(1+b.RSSFrac)+b.RSSAbs {
				g.Leaks = append(g.Leaks, fmt.Sprintf("RSS %.1f → %.1f MiB (+%.1f %%)", g.RSSBase/(1<<20), g.RSSEnd/(1<<20), 100*g.RSSGrowth()))
			}
			if g.FilesEnd > g.FilesBase+b.FilesAbs {
				g.Leaks = append(g.Leaks, fmt.Sprintf("open files %.0f → %.0f", g.FilesBase, g.FilesEnd))
			}
			if g.hasGoroutines && g.GorEnd > g.GorBase*(1+b.GoroutinesFrac)+b.GoroutinesAbs {
				g.Leaks = append(g.Leaks, fmt.Sprintf("goroutines %.0f → %.0f", g.GorBase, g.GorEnd))
			}
			for _, l := range g.Leaks {
				failures = append(failures, fmt.Sprintf("leak: %s (pid %d): %s", g.Proc, g.PID, l))
			}
		}
		all = append(all, g)
	}
	return all, failures
}

// fault is an injected fault: a hub or the NATS server killed and started
// again, at At seconds.
type fault struct {
	Name string
	At   float64
}

// recovery is how one process instance's open files and goroutines
// compare after a fault with before it.
type recovery struct {
	Fault                   string
	Proc                    string
	PID                     int
	FilesBefore, FilesAfter float64
	GorBefore, GorAfter     float64 // -1: none
	Back                    bool
}

// recoveries compares, for each fault and each process instance that lived
// through it, the median of its samples in the window before the fault
// with the median in the window that starts settle seconds after it. A
// process whose open files or goroutines are not back within the bounds
// fails.
func recoveries(samples []sample, faults []fault, window, settle float64, b bounds) (all []recovery, failures []string) {
	order, m := byInstance(samples)
	for _, f := range faults {
		for _, k := range order {
			var before, after []sample
			for _, s := range m[k] {
				switch {
				case s.T >= f.At-window && s.T < f.At:
					before = append(before, s)
				case s.T >= f.At+settle && s.T < f.At+settle+window:
					after = append(after, s)
				}
			}
			if len(before) < 2 || len(after) < 2 {
				continue // not alive on both sides: the fault's own process, or a camera restarted
			}
			vals := func(ss []sample, f func(sample) float64) float64 {
				vs := make([]float64, len(ss))
				for i, s := range ss {
					vs[i] = f(s)
				}
				return median(vs)
			}
			r := recovery{Fault: f.Name, Proc: k.Proc, PID: k.PID, GorBefore: -1, GorAfter: -1, Back: true,
				FilesBefore: vals(before, func(s sample) float64 { return float64(s.Files) }),
				FilesAfter:  vals(after, func(s sample) float64 { return float64(s.Files) })}
			if r.FilesAfter > r.FilesBefore+b.FilesAbs {
				r.Back = false
			}
			if before[0].Goroutines >= 0 {
				r.GorBefore = vals(before, func(s sample) float64 { return float64(s.Goroutines) })
				r.GorAfter = vals(after, func(s sample) float64 { return float64(s.Goroutines) })
				if r.GorAfter > r.GorBefore*(1+b.GoroutinesFrac)+b.GoroutinesAbs {
					r.Back = false
				}
			}
			if !r.Back {
				failures = append(failures, fmt.Sprintf("not back after %s: %s (pid %d): open files %.0f → %.0f, goroutines %.0f → %.0f",
					f.Name, k.Proc, k.PID, r.FilesBefore, r.FilesAfter, r.GorBefore, r.GorAfter))
			}
			all = append(all, r)
		}
	}
	return all, failures
}

// freshness checks what a subscriber receives: on each hub and channel, a
// frame never older (by capture time) than the newest it received there
// before, whether it stayed connected or reconnected (itself, or after a
// hub or NATS restart). Safe for concurrent use.
type freshness struct {
	mu      sync.Mutex
	newest  map[string]int64 // by hub and channel
	frames  uint64
	older   uint64
	example string
}

func newFreshness() *freshness { return &freshness{newest: map[string]int64{}} }

// saw records a frame of capture time (Unix ns) on key (hub/channel), and
// reports whether it is older than the newest before it.
func (f *freshness) saw(key string, capture int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frames++
	prev, ok := f.newest[key]
	if ok && capture < prev {
		f.older++
		if f.example == "" {
			f.example = fmt.Sprintf("%s: a frame captured %.3f s before the newest already received", key, float64(prev-capture)/1e9)
		}
		return true
	}
	if !ok || capture > prev {
		f.newest[key] = capture
	}
	return false
}

// counts returns the frames seen, how many were older, and the first.
func (f *freshness) counts() (frames, older uint64, example string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frames, f.older, f.example
}

// dirWatch follows a recording directory's total size against its
// --max-size: it may be over by at most one segment (the largest seen
// complete), as the retention promises.
type dirWatch struct {
	Max      int64
	Largest  int64 // the largest complete segment seen
	Peak     int64 // the most the directory held
	Over     int   // samples over the bound
	OverText string
}

// observe takes the segments' sizes, oldest first (the last one is being
// written), and reports whether the directory is over its bound.
func (d *dirWatch) observe(sizes []int64) bool {
	var total int64
	for i, s := range sizes {
		total += s
		if i < len(sizes)-1 {
			d.Largest = max(d.Largest, s)
		}
	}
	d.Peak = max(d.Peak, total)
	if total > d.Max+d.Largest {
		d.Over++
		if d.OverText == "" {
			d.OverText = fmt.Sprintf("%d bytes in %d files, over --max-size %d by more than a segment (%d)", total, len(sizes), d.Max, d.Largest)
		}
		return true
	}
	return false
}
