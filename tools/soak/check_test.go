package main

import (
	"math"
	"strings"
	"testing"
)

// series makes n samples of one process, one a second from t0, with
// value(i) giving RSS (MiB), open files and goroutines.
func series(proc string, pid, n int, t0 float64, value func(i int) (rssMiB float64, files, gor int)) []sample {
	var out []sample
	for i := range n {
		r, f, g := value(i)
		out = append(out, sample{T: t0 + float64(i), Proc: proc, PID: pid, RSS: uint64(r * (1 << 20)), CPU: 5, Files: f, Goroutines: g})
	}
	return out
}

func TestLeaksFlagsGrowthAfterWarmUp(t *testing.T) {
	for _, c := range []struct {
		name  string
		value func(i int) (float64, int, int)
		want  string // "" no leak
	}{
		{"steady", func(i int) (float64, int, int) { return 50, 20, 100 }, ""},
		{"noise within bounds", func(i int) (float64, int, int) { return 50 + float64(i%3), 20 + i%4, 100 + i%9 }, ""},
		{"RSS grows 30 %", func(i int) (float64, int, int) { return 50 + 15*float64(i)/99, 20, 100 }, "RSS"},
		{"files grow by one every five samples", func(i int) (float64, int, int) { return 50, 20 + i/5, 100 }, "open files"},
		{"goroutines grow", func(i int) (float64, int, int) { return 50, 20, 100 + i }, "goroutines"},
		// A process that only warms up (its memory rises and stays) before
		// the warm-up ends is no leak.
		{"grows only during warm-up", func(i int) (float64, int, int) { return 50 + 30*math.Min(float64(i), 20)/20, 20, 100 }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			all, failures := leaks(series("hub-a", 10, 100, 0, c.value), 20, defaultBounds)
			if len(all) != 1 || !all[0].judged {
				t.Fatalf("want one judged instance; got %+v", all)
			}
			got := strings.Join(failures, "; ")
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Fatalf("failures %q; want %q", got, c.want)
			}
		})
	}
}

func TestLeaksJudgesEachInstance(t *testing.T) {
	// hub-a is killed at 50 s and restarted with a new PID and a lower
	// memory: no leak, and each instance is judged on its own; a camera
	// alive for 5 samples is not judged at all.
	s := series("hub-a", 10, 50, 0, func(int) (float64, int, int) { return 80, 30, 200 })
	s = append(s, series("hub-a", 11, 50, 50, func(int) (float64, int, int) { return 40, 25, 150 })...)
	s = append(s, series("cam1", 12, 5, 90, func(i int) (float64, int, int) { return float64(10 + 10*i), 5, -1 })...)
	all, failures := leaks(s, 10, defaultBounds)
	if len(failures) != 0 {
		t.Fatalf("failures %v", failures)
	}
	if len(all) != 3 || !all[0].judged || !all[1].judged || all[2].judged {
		t.Fatalf("instances %+v", all)
	}
	if all[2].GorBase != -1 || !all[0].hasGoroutines {
		t.Fatalf("goroutines of a process without metrics: %+v", all[2])
	}
}

func TestRecoveriesAfterFaults(t *testing.T) {
	faults := []fault{{"nats killed", 50}}
	back := series("hub-b", 20, 100, 0, func(i int) (float64, int, int) {
		if i >= 50 && i < 55 {
			return 60, 40, 300 // the fault and the reconnections
		}
		return 60, 30, 200
	})
	all, failures := recoveries(back, faults, 10, 15, defaultBounds)
	if len(failures) != 0 || len(all) != 1 || !all[0].Back {
		t.Fatalf("a hub back to its baseline: %+v, %v", all, failures)
	}
	stuck := series("hub-b", 20, 100, 0, func(i int) (float64, int, int) {
		if i >= 50 {
			return 60, 30, 260 // goroutines left behind by the fault
		}
		return 60, 30, 200
	})
	all, failures = recoveries(stuck, faults, 10, 15, defaultBounds)
	if len(failures) != 1 || all[0].Back || !strings.Contains(failures[0], "nats killed") {
		t.Fatalf("a hub that kept the fault's goroutines: %+v, %v", all, failures)
	}
	// The killed process itself (gone at the fault, a new PID after) is
	// not compared.
	killed := series("nats", 1, 50, 0, func(int) (float64, int, int) { return 20, 10, -1 })
	killed = append(killed, series("nats", 2, 50, 52, func(int) (float64, int, int) { return 20, 50, -1 })...)
	if all, failures := recoveries(killed, faults, 10, 15, defaultBounds); len(all) != 0 || len(failures) != 0 {
		t.Fatalf("the killed process compared with itself: %+v, %v", all, failures)
	}
}

func TestFreshness(t *testing.T) {
	f := newFreshness()
	for _, c := range []struct {
		key   string
		at    int64
		older bool
	}{
		{"a/cam", 100, false},
		{"a/cam", 200, false},
		{"a/cam", 200, false}, // the same frame again (a channel's last frame to a new subscriber)
		{"b/cam", 150, false}, // another hub keeps its own newest
		{"a/cam", 199, true},  // older than the newest a/cam sent
		{"a/cam", 300, false},
	} {
		if got := f.saw(c.key, c.at); got != c.older {
			t.Fatalf("saw(%s, %d) = %v; want %v", c.key, c.at, got, c.older)
		}
	}
	frames, older, example := f.counts()
	if frames != 6 || older != 1 || !strings.Contains(example, "a/cam") {
		t.Fatalf("counts %d, %d, %q", frames, older, example)
	}
}

func TestDirWatch(t *testing.T) {
	d := dirWatch{Max: 1000}
	for _, sizes := range [][]int64{{100}, {300, 50}, {300, 300, 300, 90}, {300, 300, 300, 290}} {
		if d.observe(sizes) {
			t.Fatalf("%v: over; want within --max-size and a segment", sizes)
		}
	}
	if !d.observe([]int64{300, 300, 300, 300, 150}) || d.Over != 1 || d.Largest != 300 || d.Peak != 1350 {
		t.Fatalf("five files of 1350 bytes for 1000 and segments of 300: %+v", d)
	}
}

func TestPercentile(t *testing.T) {
	vs := []float64{5, 1, 4, 2, 3, 10, 6, 7, 8, 9}
	if p := percentile(vs, 95); p != 10 {
		t.Fatalf("p95 %v", p)
	}
	if p := percentile(vs, 50); p != 5 {
		t.Fatalf("p50 %v", p)
	}
	if !math.IsNaN(percentile(nil, 95)) {
		t.Fatal("p95 of nothing")
	}
}
