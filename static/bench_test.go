package static_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"framehub/hub"
	"framehub/protocol"
)

// pageRun publishes n channels of 1280x720 JPEG at 30 fps, opens path in
// headless Chromium, and measures in the page, over a 10 s window after a
// 3 s warm-up, how many frames each player draws per second and how old
// they are when drawn.
func pageRun(b *testing.B, channels int, path, statsJS string) {
	s := startHub(b, "127.0.0.1:0", hub.Config{})
	frames := []*protocol.Frame{noisyFrame(b, 1), noisyFrame(b, 2)}
	b.Logf("frame size %d and %d bytes", len(frames[0].Payload), len(frames[1].Payload))
	var feeds []*feed
	for i := range channels {
		feeds = append(feeds, startFeed(b, s.url(), fmt.Sprintf("cam%d", i), 30, frames[i%2]))
	}
	ctx := browser(b)
	navigate(b, ctx, s.url()+path)
	time.Sleep(3 * time.Second)
	type st struct {
		Received int     `json:"received"`
		Drawn    int     `json:"drawn"`
		AgeP50   float64 `json:"ageP50"`
		AgeP99   float64 `json:"ageP99"`
	}
	before := eval[map[string]st](b, ctx, statsJS)
	sent0 := feeds[0].sent.Load()
	const window = 10 * time.Second
	start := time.Now()
	time.Sleep(window)
	after := eval[map[string]st](b, ctx, statsJS)
	secs := time.Since(start).Seconds()
	sentFPS := float64(feeds[0].sent.Load()-sent0) / secs
	var fps, recv, p50, p99 []float64
	for name, a := range after {
		fps = append(fps, float64(a.Drawn-before[name].Drawn)/secs)
		recv = append(recv, float64(a.Received-before[name].Received)/secs)
		p50 = append(p50, a.AgeP50)
		p99 = append(p99, a.AgeP99)
	}
	if len(fps) != channels {
		b.Fatalf("measured %d players; want %d", len(fps), channels)
	}
	slices.Sort(fps)
	slices.Sort(recv)
	b.ReportMetric(recv[len(recv)/2], "received-fps-median")
	b.ReportMetric(sentFPS, "published-fps")
	b.ReportMetric(fps[0], "drawn-fps-min")
	b.ReportMetric(fps[len(fps)/2], "drawn-fps-median")
	b.ReportMetric(slices.Max(p50), "age-p50-ms-worst")
	b.ReportMetric(slices.Max(p99), "age-p99-ms-worst")
	shot(b, ctx, fmt.Sprintf("bench-%d", channels))
}

// BenchmarkPagePlayer: one channel on /view/{channel}.
//
//	go test ./static -run '^$' -bench PagePlayer -benchtime 1x
func BenchmarkPagePlayer(b *testing.B) {
	for range b.N {
		pageRun(b, 1, "/view/cam0", `({cam0: framehub.player.stats()})`)
	}
}

// BenchmarkPageGrid9: nine channels on the grid at /.
//
//	go test ./static -run '^$' -bench PageGrid9 -benchtime 1x
func BenchmarkPageGrid9(b *testing.B) {
	for range b.N {
		pageRun(b, 9, "/", `framehubGrid.stats()`)
	}
}
