//go:build cgo

package process

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkGate measures what the motion gate saves and what it loses:
// every frame of a clip processed in lockstep (none skipped, so the runs
// see the same frames), without and with --gate motion. It reports this
// process's CPU time per frame (the test's hub, publisher and subscriber
// included, the same in both runs), after the motion step's warm-up too,
// the boxes each run found, and how many of the people (or faces) the
// ungated run follows for more than three frames the gated run misses in
// more than three frames in a row. One iteration is the whole clip:
//
//	go test -run '^$' -bench Gate -benchtime 1x ./process
func BenchmarkGate(b *testing.B) {
	for _, c := range []struct {
		name  string
		steps string
		pics  func(b *testing.B) []picture
	}{
		{"pedestrians", "people", func(b *testing.B) []picture { return videoFrames(b, "vtest.avi", 0, 795) }},
		{"static", "faces,people", func(b *testing.B) []picture {
			rng := rand.New(rand.NewPCG(1, 2))
			bg := decode(b, still(b, "messi5.jpg").jpeg)
			pics := make([]picture, 300)
			for i := range pics {
				pics[i] = encode(b, noisy(bg, 6, rng))
			}
			return pics
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			pics := c.pics(b)
			addr := testHub(b, hubConfig())
			b.ResetTimer()
			for range b.N {
				plain := runGate(b, addr, "plain", pics, false, c.steps)
				gated := runGate(b, addr, "gated", pics, true, c.steps)
				followed := 0
				for _, tr := range tracks(plain.boxes, len(pics)) {
					if len(tr) > 3 {
						followed++
					}
				}
				lost := lostTracks(b, plain, gated, len(pics))
				ms := func(r gateRun) float64 { return float64(r.cpu.Microseconds()) / 1000 }
				b.ReportMetric(ms(plain), "ungated-cpu-ms/frame")
				b.ReportMetric(ms(gated), "gated-cpu-ms/frame")
				b.ReportMetric(100*float64(gated.cpu)/float64(plain.cpu), "gated-cpu-%")
				b.ReportMetric(100*float64(gated.steady)/float64(plain.steady), "gated-cpu-%-after-warmup")
				b.ReportMetric(float64(plain.fresh)/float64(len(pics)), "ungated-boxes/frame")
				b.ReportMetric(float64(gated.fresh)/float64(len(pics)), "gated-found/frame")
				b.ReportMetric(float64(gated.carried)/float64(len(pics)), "gated-carried/frame")
				b.ReportMetric(float64(followed), "followed")
				b.ReportMetric(float64(lost), "lost")
			}
		})
	}
}
