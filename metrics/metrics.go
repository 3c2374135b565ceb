// Package metrics exports a hub's figures for Prometheus. The series and
// their names are fixed, so dashboards can rely on them:
//
//	framehub_frames_in_total{channel}          frames published
//	framehub_frames_dropped_total{channel}     frames over the publisher frame-rate cap
//	framehub_frames_out_total{channel}         frames written to subscribers
//	framehub_frames_skipped_total{channel}     frames a subscriber was never sent (newest wins)
//	framehub_bytes_out_total{channel}          bytes written to subscribers
//	framehub_subscribers{channel,kind}         subscribers now (kind: ws, mjpeg)
//	framehub_rendition_frames_in_total{channel,rendition}
//	                                           frames published of each rendition
//	framehub_rendition_bytes_in_total{channel,rendition}
//	                                           their bytes
//	framehub_rendition_subscribers{channel,rendition}
//	                                           readers receiving each rendition now
//	framehub_publishers                        publishers now
//	framehub_frame_age_seconds{channel}        histogram: capture time to the end of
//	                                           the write to a subscriber
//	framehub_refusals_total{reason}            refusals by reason
//	framehub_evictions_total                   stalled subscribers evicted
//	framehub_frame_memory_bytes                what the memory budget counts now
//	framehub_source_state{channel,state}       1 for the channel's source state (live,
//	                                           stalled, reconnecting, ended), 0 for the
//	                                           others; no series while it has none
//
// plus the Go runtime's and the process's collectors (go_goroutines,
// process_resident_memory_bytes, …). Counters and gauges are read from the
// hub when Prometheus scrapes, so the hub's hot path pays nothing for them;
// the age histogram is one observation per frame written. A channel's
// series go when the channel does, so there are at most as many channel
// labels as --max-channels allows. The rendition series exist only for a
// channel that carries renditions (or has a reader that asked for one),
// with rendition="main" or the width; a rendition's go when it does, so a
// channel has at most 1 + --max-renditions of them.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"framehub/hub"
	"framehub/protocol"
)

// AgeBuckets are the frame-age histogram's upper bounds, in seconds: 1 ms
// to 10 s.
var AgeBuckets = []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10}

// Source is what the exporter reads at each scrape: a *hub.Hub.
type Source interface {
	ChannelCounters() []hub.ChannelCounters
	Stats() protocol.Stats
}

// Exporter holds the registry. Create it with New, give its Instruments to
// the hub's Config, then Watch the hub. Safe for concurrent use.
type Exporter struct {
	reg *prometheus.Registry
	age *prometheus.HistogramVec
}

// New returns an exporter with the Go and process collectors registered.
func New() *Exporter {
	e := &Exporter{
		reg: prometheus.NewRegistry(),
		age: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "framehub_frame_age_seconds",
			Help:    "Age of frames when their write to a subscriber ended: capture time to delivery to the kernel.",
			Buckets: AgeBuckets,
		}, []string{"channel"}),
	}
	e.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), e.age)
	return e
}

// FrameAge returns the histogram of channel's frame ages. It implements
// hub.Instruments.
func (e *Exporter) FrameAge(channel string) hub.Observer { return e.age.WithLabelValues(channel) }

// Forget removes channel's histogram. It implements hub.Instruments.
func (e *Exporter) Forget(channel string) { e.age.DeleteLabelValues(channel) }

// Watch registers the collector that reads src at each scrape.
func (e *Exporter) Watch(src Source) { e.reg.MustRegister(&collector{src: src}) }

// Handler serves the metrics in Prometheus' text format.
func (e *Exporter) Handler() http.Handler {
	return promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

var (
	descFramesIn   = prometheus.NewDesc("framehub_frames_in_total", "Frames published on the channel.", []string{"channel"}, nil)
	descDropped    = prometheus.NewDesc("framehub_frames_dropped_total", "Frames over the publisher frame-rate cap, not relayed.", []string{"channel"}, nil)
	descFramesOut  = prometheus.NewDesc("framehub_frames_out_total", "Frames written to the channel's subscribers.", []string{"channel"}, nil)
	descSkipped    = prometheus.NewDesc("framehub_frames_skipped_total", "Frames a subscriber was not sent because a newer one replaced them.", []string{"channel"}, nil)
	descBytesOut   = prometheus.NewDesc("framehub_bytes_out_total", "Bytes written to the channel's subscribers.", []string{"channel"}, nil)
	descSubs       = prometheus.NewDesc("framehub_subscribers", "Subscribers connected now.", []string{"channel", "kind"}, nil)
	descPublishers = prometheus.NewDesc("framehub_publishers", "Publishers connected now.", nil, nil)
	descRefusals   = prometheus.NewDesc("framehub_refusals_total", "Refused connections, requests and frames, by reason.", []string{"reason"}, nil)
	descEvictions  = prometheus.NewDesc("framehub_evictions_total", "Subscribers evicted for a stalled write.", nil, nil)
	descZeroCopy   = prometheus.NewDesc("framehub_zero_copy_frames_total", "Frames sent to subscribers by sendfile from a memory file instead of copied by a write.", nil, nil)
	descMemory     = prometheus.NewDesc("framehub_frame_memory_bytes", "Bytes of frames the memory budget counts now.", nil, nil)
	descSource     = prometheus.NewDesc("framehub_source_state", "1 for the state of the channel's camera or stream (live, stalled, reconnecting, ended), 0 for the others.", []string{"channel", "state"}, nil)

	descRendFrames = prometheus.NewDesc("framehub_rendition_frames_in_total", "Frames published of the rendition (main or a width).", []string{"channel", "rendition"}, nil)
	descRendBytes  = prometheus.NewDesc("framehub_rendition_bytes_in_total", "Bytes published of the rendition.", []string{"channel", "rendition"}, nil)
	descRendSubs   = prometheus.NewDesc("framehub_rendition_subscribers", "Readers receiving the rendition now.", []string{"channel", "rendition"}, nil)
)

// sourceStates are the values of framehub_source_state's state label: a
// fixed set, whatever a publisher sends.
var sourceStates = []string{protocol.SourceLive, protocol.SourceStalled, protocol.SourceReconnecting, protocol.SourceEnded}

// collector reads the hub when Prometheus scrapes.
type collector struct{ src Source }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFramesIn, descDropped, descFramesOut, descSkipped, descBytesOut, descSubs,
		descPublishers, descRefusals, descEvictions, descZeroCopy, descMemory, descSource, descRendFrames, descRendBytes, descRendSubs} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, cc := range c.src.ChannelCounters() {
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), cc.Name)
		}
		counter(descFramesIn, cc.FramesIn)
		counter(descDropped, cc.FramesDropped)
		counter(descFramesOut, cc.FramesOut)
		counter(descSkipped, cc.FramesSkipped)
		counter(descBytesOut, cc.BytesOut)
		ch <- prometheus.MustNewConstMetric(descSubs, prometheus.GaugeValue, float64(cc.SubscribersWS), cc.Name, "ws")
		ch <- prometheus.MustNewConstMetric(descSubs, prometheus.GaugeValue, float64(cc.SubscribersMJPEG), cc.Name, "mjpeg")
		for _, r := range cc.Renditions {
			ch <- prometheus.MustNewConstMetric(descRendFrames, prometheus.CounterValue, float64(r.FramesIn), cc.Name, r.Name)
			ch <- prometheus.MustNewConstMetric(descRendBytes, prometheus.CounterValue, float64(r.BytesIn), cc.Name, r.Name)
			ch <- prometheus.MustNewConstMetric(descRendSubs, prometheus.GaugeValue, float64(r.Subscribers), cc.Name, r.Name)
		}
		if cc.SourceState != "" {
			for _, s := range sourceStates {
				v := 0.0
				if s == cc.SourceState {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descSource, prometheus.GaugeValue, v, cc.Name, s)
			}
		}
	}
	st := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(descPublishers, prometheus.GaugeValue, float64(st.Publishers))
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(st.Evicted))
	ch <- prometheus.MustNewConstMetric(descZeroCopy, prometheus.CounterValue, float64(st.ZeroCopyFrames))
	ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(st.FrameMemoryBytes))
	for reason, n := range st.Refused {
		ch <- prometheus.MustNewConstMetric(descRefusals, prometheus.CounterValue, float64(n), reason)
	}
}
