//go:build cgo

package publisher

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/testutil"
)

// ipCamera is an HTTP MJPEG camera, as IP cameras serve one: each GET is
// the device opened, and streams JPEGs at 25 fps until the client goes.
func ipCamera(t *testing.T) (url string, opens *atomic.Int64) {
	opens = new(atomic.Int64)
	jpg := testutil.JPEG(160, 120, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opens.Add(1)
		w.Header().Set("Content-Type", "multipart/x-mixed-replace;boundary=cam")
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := fmt.Fprintf(w, "--cam\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n", len(jpg), jpg); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/video.mjpg", opens
}

// TestOnDemandHoldStopsChurn is issue 22's churn: twenty viewers who each
// watch for 150 ms, one after another (100 ms apart), then a snapshot
// poller. Without a hold, an on-demand
// publisher released and reopened its camera for each of them (21 opens);
// with a hold, the camera is opened once and stays open until the hold
// has passed after the last viewer left, then it is released.
func TestOnDemandHoldStopsChurn(t *testing.T) {
	for _, c := range []struct {
		hold               time.Duration
		minOpens, maxOpens int64
	}{
		{0, 2, 20}, // the old behaviour, for comparison: it churns
		{time.Second, 1, 1},
	} {
		t.Run(fmt.Sprintf("hold_%v", c.hold), func(t *testing.T) {
			h := hubtest.Start(t, hub.Config{})
			cam, opens := ipCamera(t)
			p, err := New(Config{Source: cam, OnDemand: true, OnDemandHold: c.hold, Sender: SenderConfig{Hub: h.URL, Channel: "porch"}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- p.Run(ctx) }()
			// New opened the camera; nobody watches, so it is released.
			testutil.Eventually(t, 10*time.Second, "the idle publisher", func() bool {
				n, known := p.sender.Viewers()
				return p.Connected() && known && n == 0 && p.Stats().Captured == 0
			})
			before := opens.Load()
			for range 20 {
				v, frames := hubtest.Subscribe(t, h.Addr, "porch", "")
				time.Sleep(150 * time.Millisecond)
				select {
				case <-frames:
				default:
				}
				v.Close()
				// The next viewer comes 100 ms after the publisher heard
				// this one go.
				testutil.Eventually(t, 5*time.Second, "the viewer gone", func() bool {
					n, known := p.sender.Viewers()
					return known && n == 0
				})
				time.Sleep(100 * time.Millisecond)
			}
			churn := opens.Load() - before
			t.Logf("hold %v: the camera was opened %d times for 20 viewers of 150 ms each (%d opens in all, with New's)",
				c.hold, churn, opens.Load())
			if churn < c.minOpens || churn > c.maxOpens {
				t.Errorf("%d camera opens during the churn; want %d to %d", churn, c.minOpens, c.maxOpens)
			}
			// Released once the hold has passed: capture stops.
			left := time.Now()
			paused := func() {
				testutil.Eventually(t, c.hold+10*time.Second, "capture paused after the hold", func() bool {
					n := p.Stats().Captured
					time.Sleep(300 * time.Millisecond)
					return p.Stats().Captured == n
				})
			}
			paused()
			if d := time.Since(left); d < c.hold-500*time.Millisecond {
				t.Errorf("capture paused %v after the last viewer left; want the %v hold first", d, c.hold)
			}
			// A snapshot poller (a home automation asking every 300 ms):
			// each snapshot wakes the camera and gets a fresh frame.
			before = opens.Load()
			for range 10 {
				asked := time.Now()
				resp, err := http.Get(h.URL + "/channels/porch/snapshot.jpg")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				ns, _ := strconv.ParseInt(resp.Header.Get("X-Capture-Time"), 10, 64)
				if resp.StatusCode != http.StatusOK || time.Unix(0, ns).Before(asked.Add(-time.Second)) {
					t.Fatalf("snapshot %d of a frame captured %v before it was asked for; want a fresh one",
						resp.StatusCode, asked.Sub(time.Unix(0, ns)))
				}
				time.Sleep(300 * time.Millisecond)
			}
			polls := opens.Load() - before
			t.Logf("hold %v: the camera was opened %d times for 10 snapshots 300 ms apart", c.hold, polls)
			if polls < c.minOpens || polls > c.maxOpens {
				t.Errorf("%d camera opens for the snapshots; want %d to %d", polls, c.minOpens, c.maxOpens)
			}
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}
