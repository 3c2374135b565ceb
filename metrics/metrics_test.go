package metrics_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"framehub/hub"
	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/metrics"
	"framehub/protocol"
)

func TestMain(m *testing.M) { os.Exit(testutil.Check(m.Run())) }

// scrape reads the exporter's /metrics with Prometheus' own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the series of family name whose labels are
// labels, and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestScrapeAfterKnownTraffic(t *testing.T) {
	exp := metrics.New()
	h := hubtest.Start(t, hub.Config{Instruments: exp, ChannelTTL: time.Second})
	exp.Watch(h.Hub)
	srv := httptest.NewServer(exp.Handler())
	defer srv.Close()

	// Two WebSocket subscribers and one MJPEG reader on cam1, then 20
	// frames, each waited for, so every reader gets every one.
	c1, in1 := hubtest.Subscribe(t, h.Addr, "cam1", "")
	c2, in2 := hubtest.Subscribe(t, h.Addr, "cam1", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+"/channels/cam1/stream.mjpeg", nil)
	mjpeg, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer mjpeg.Body.Close()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := mjpeg.Body.Read(buf); err != nil {
				return
			}
		}
	}()
	hubtest.WaitSubscribers(t, h.Addr, 3, 5*time.Second)
	// Admitted is not yet joined: wait until all three read the channel,
	// so that every frame has both WebSocket readers (and goes by sendfile).
	testutil.Eventually(t, 5*time.Second, "three readers joined cam1", func() bool { return h.Hub.Readers("cam1") == 3 })
	frames := make([]protocol.Frame, 20)
	for i := range frames {
		frames[i] = hubtest.JPEGFrame(64, 48, testutil.FakeJPEG(64, 48, uint64(i), 500))
	}
	// Paced, so that no reader skips one.
	hubtest.Publish(t, ctx, h.Addr, "cam1", 30*time.Millisecond, frames)
	for _, in := range []<-chan protocol.Frame{in1, in2} {
		for f := hubtest.Next(t, in, 5*time.Second); f.Seq < 20; f = hubtest.Next(t, in, 5*time.Second) {
		}
	}

	// A refused request is counted by reason.
	resp, _ := http.Get(h.URL + "/ws/subscribe/..")
	resp.Body.Close()

	testutil.Eventually(t, 5*time.Second, "the MJPEG reader's 20 frames counted", func() bool {
		v, _ := value(scrape(t, srv.URL), "framehub_frames_out_total", map[string]string{"channel": "cam1"})
		return v >= 60
	})
	fams := scrape(t, srv.URL)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"framehub_frames_in_total", map[string]string{"channel": "cam1"}, 20},
		{"framehub_frames_out_total", map[string]string{"channel": "cam1"}, 60},
		{"framehub_frame_age_seconds", map[string]string{"channel": "cam1"}, 60},
		{"framehub_subscribers", map[string]string{"channel": "cam1", "kind": "ws"}, 2},
		{"framehub_subscribers", map[string]string{"channel": "cam1", "kind": "mjpeg"}, 1},
		{"framehub_refusals_total", map[string]string{"reason": "bad_channel_name"}, 1},
		{"framehub_evictions_total", nil, 0},
		{"framehub_zero_copy_frames_total", nil, 40}, // both WebSocket readers, by sendfile
		{"framehub_publishers", nil, 0},
	} {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v); want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// Bytes out: each WebSocket frame with its framing, each MJPEG part.
	if b, _ := value(fams, "framehub_bytes_out_total", map[string]string{"channel": "cam1"}); b < 60*500 {
		t.Errorf("bytes out %v; want at least 60 frames of 500 bytes", b)
	}
	// The histogram's buckets run from 1 ms to 10 s, and every age fits.
	for _, m := range fams["framehub_frame_age_seconds"].Metric {
		bs := m.Histogram.Bucket
		if len(bs) > 0 && math.IsInf(bs[len(bs)-1].GetUpperBound(), 1) {
			bs = bs[:len(bs)-1] // the text format spells out +Inf
		}
		if len(bs) != len(metrics.AgeBuckets) || bs[0].GetUpperBound() != 0.001 || bs[len(bs)-1].GetUpperBound() != 10 {
			t.Fatalf("buckets %v", bs)
		}
		if n := bs[len(bs)-1].GetCumulativeCount(); n != m.Histogram.GetSampleCount() {
			t.Errorf("%d of %d ages are under 10 s; frames on loopback are younger", n, m.Histogram.GetSampleCount())
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}

	// When the channel goes (no one on it, its frame older than the TTL),
	// its series go too.
	c1.Close()
	c2.Close()
	cancel()
	testutil.Eventually(t, 10*time.Second, "cam1's series to go", func() bool {
		fams := scrape(t, srv.URL)
		_, in := value(fams, "framehub_frames_in_total", map[string]string{"channel": "cam1"})
		_, age := value(fams, "framehub_frame_age_seconds", map[string]string{"channel": "cam1"})
		return !in && !age
	})
}

// TestSourceStateGauge: a channel's source state is one series per state,
// 1 for the current one; a publisher's notices move it, and a state that
// is not one of the four cannot add a label (the hub refuses it).
func TestSourceStateGauge(t *testing.T) {
	exp := metrics.New()
	h := hubtest.Start(t, hub.Config{Instruments: exp})
	exp.Watch(h.Hub)
	srv := httptest.NewServer(exp.Handler())
	defer srv.Close()
	u, _ := protocol.ChannelURL(h.Addr, protocol.PathPublish, "door")
	pub, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.WriteMessage(websocket.BinaryMessage, hubtest.Frame(1, 64, 48, 300, nil))
	state := func(want string) {
		t.Helper()
		testutil.Eventually(t, 5*time.Second, "state "+want, func() bool {
			fams := scrape(t, srv.URL)
			for _, s := range []string{"live", "stalled", "reconnecting", "ended"} {
				v, ok := value(fams, "framehub_source_state", map[string]string{"channel": "door", "state": s})
				if !ok || (v == 1) != (s == want) {
					return false
				}
			}
			return len(fams["framehub_source_state"].Metric) == 4
		})
	}
	pub.WriteMessage(websocket.TextMessage, protocol.NewSourceNotice(protocol.SourceReconnecting, "refused").Encode())
	state("reconnecting")
	pub.WriteMessage(websocket.TextMessage, protocol.NewSourceNotice(protocol.SourceLive, "").Encode())
	state("live")
	pub.WriteMessage(websocket.TextMessage, []byte(`{"op":"source","state":"x\"} 1\nevil{a=\"b"}`))
	testutil.Eventually(t, 5*time.Second, "the bad notice refused", func() bool {
		v, _ := value(scrape(t, srv.URL), "framehub_refusals_total", map[string]string{"reason": "bad_source_notice"})
		return v == 1
	})
	if fams := scrape(t, srv.URL); fams["evil"] != nil {
		t.Fatal("a notice wrote a series")
	}
}

// TestRenditionSeries: each rendition a channel carries is labelled in
// framehub_rendition_*: its frames and bytes in and its readers now. A
// publisher that sends more renditions than the hub allows adds no series
// for the ones refused, so the rendition label has at most
// --max-renditions + 1 values a channel, whatever publishers send.
func TestRenditionSeries(t *testing.T) {
	exp := metrics.New()
	h := hubtest.Start(t, hub.Config{Instruments: exp, MaxRenditions: 2})
	exp.Watch(h.Hub)
	srv := httptest.NewServer(exp.Handler())
	defer srv.Close()
	_, small := hubtest.Subscribe(t, h.Addr, "hall", "max-width=320")
	testutil.Eventually(t, 5*time.Second, "the reader joined", func() bool { return h.Hub.Readers("hall") == 1 })

	u, _ := protocol.ChannelURL(h.Addr, protocol.PathPublish, "hall")
	pub, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	// Each set: the main picture, 640 and 320 (relayed), then 240, 160
	// and 80 (past the limit of 2: refused, the rest going on).
	const sets = 10
	widths := []uint32{640, 320, 240, 160, 80}
	for seq := uint64(1); seq <= sets; seq++ {
		at := time.Now().UnixNano()
		for _, w := range append([]uint32{1280}, widths...) {
			r := protocol.Rendition(w)
			if w == 1280 {
				r = protocol.RenditionMain
			}
			f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey, Width: w, Height: w * 9 / 16,
				Seq: seq, CaptureTime: at, Rendition: r}, Payload: testutil.FakeJPEG(int(w), int(w*9/16), seq, int(w))}
			if err := pub.WriteMessage(websocket.BinaryMessage, protocol.AppendFrame(nil, &f)); err != nil {
				t.Fatal(err)
			}
		}
		// The reader gets each set's 320 (set 1 may come first as the
		// main picture or the 640, before its 320 appears).
		for {
			f := hubtest.Next(t, small, 5*time.Second)
			if f.Seq == seq && f.Rendition == 320 {
				break
			}
			if f.Seq != 1 {
				t.Fatalf("the max-width=320 reader got frame %d of %v; want %d of 320", f.Seq, f.Rendition, seq)
			}
		}
	}
	testutil.Eventually(t, 5*time.Second, "every set counted", func() bool {
		v, _ := value(scrape(t, srv.URL), "framehub_rendition_frames_in_total", map[string]string{"channel": "hall", "rendition": "320"})
		return v == sets
	})
	fams := scrape(t, srv.URL)
	for _, c := range []struct {
		name, rendition string
		want            float64
	}{
		{"framehub_rendition_frames_in_total", "main", sets},
		{"framehub_rendition_frames_in_total", "640", sets},
		{"framehub_rendition_frames_in_total", "320", sets},
		{"framehub_rendition_bytes_in_total", "320", sets * 320},
		{"framehub_rendition_subscribers", "320", 1},
		{"framehub_rendition_subscribers", "640", 0},
		{"framehub_rendition_subscribers", "main", 0},
	} {
		got, ok := value(fams, c.name, map[string]string{"channel": "hall", "rendition": c.rendition})
		if c.name == "framehub_rendition_bytes_in_total" {
			// A frame's bytes: its header and its JPEG.
			if !ok || got < c.want || got > c.want+sets*protocol.HeaderLen {
				t.Errorf("%s{rendition=%q} = %v (present %v); want %v JPEG bytes and their headers", c.name, c.rendition, got, ok, c.want)
			}
			continue
		}
		if !ok || got != c.want {
			t.Errorf("%s{rendition=%q} = %v (present %v); want %v", c.name, c.rendition, got, ok, c.want)
		}
	}
	for _, name := range []string{"framehub_rendition_frames_in_total", "framehub_rendition_bytes_in_total", "framehub_rendition_subscribers"} {
		if n := len(fams[name].GetMetric()); n != 3 {
			t.Errorf("%s has %d series; want 3 (main, 640, 320): refused renditions add none", name, n)
		}
	}
	if v, _ := value(fams, "framehub_refusals_total", map[string]string{"reason": "too_many_renditions"}); v != 3*sets {
		t.Errorf("too_many_renditions counted %v; want %d (240, 160 and 80 of each set)", v, 3*sets)
	}
}
