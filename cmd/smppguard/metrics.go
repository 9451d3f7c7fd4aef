package main

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smppguard/smppguard/smpp"
)

// hotMetrics are the metrics observed on the PDU path: PDU counts (atomic arrays in smpp,
// read at scrape time) and latency histograms. Everything registers on an injected registry.
type hotMetrics struct {
	esme, upstream smpp.PDUCounts
	relayLatency   *prometheus.HistogramVec
	relayObs       map[smpp.CommandID]prometheus.Observer // built once, read-only
	lookupLatency  *prometheus.HistogramVec
	reloadsOK      atomic.Uint64
	reloadsRefused atomic.Uint64
}

// watchInFlight exposes the global in-flight bound's use and limit.
func (h *hotMetrics) watchInFlight(reg *prometheus.Registry, l *smpp.InFlightLimit) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "smppguard_requests_in_flight",
			Help: "ESME requests not answered yet, over all sessions (relay.max_in_flight bounds it)."},
			func() float64 { return float64(l.InFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "smppguard_requests_in_flight_limit", Help: "relay.max_in_flight."},
			func() float64 { return float64(l.Max) }))
}

// latencyBuckets span 50 µs to ~6.5 s.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 18)

func newHotMetrics(reg *prometheus.Registry) *hotMetrics {
	h := &hotMetrics{
		relayLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smppguard_relay_latency_seconds",
			Help:    "From an ESME request's arrival to its response being queued back to the ESME (OTP decisions included).",
			Buckets: latencyBuckets,
		}, []string{"command"}),
		lookupLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smppguard_lookup_duration_seconds",
			Help:    "Carrier look-ups that were not answered from the cache, by provider, signal and outcome (risky, clean, unknown, error).",
			Buckets: latencyBuckets,
		}, []string{"provider", "signal", "outcome"}),
		relayObs: map[smpp.CommandID]prometheus.Observer{},
	}
	for _, id := range []smpp.CommandID{smpp.SubmitSM, smpp.DataSM, smpp.SubmitMulti, smpp.QuerySM, smpp.CancelSM, smpp.ReplaceSM} {
		h.relayObs[id] = h.relayLatency.WithLabelValues(id.String())
	}
	reg.MustRegister(h.relayLatency, h.lookupLatency, pduCollector{h})
	return h
}

func (h *hotMetrics) observeRelay(id smpp.CommandID, d time.Duration) {
	if o, ok := h.relayObs[id]; ok {
		o.Observe(d.Seconds())
	}
}

func (h *hotMetrics) observeLookup(provider, signal, outcome string, d time.Duration) {
	h.lookupLatency.WithLabelValues(provider, signal, outcome).Observe(d.Seconds())
}

// pduCollector exposes the PDU counts at scrape time.
type pduCollector struct{ h *hotMetrics }

var pduDesc = prometheus.NewDesc("smppguard_pdus_total",
	"PDUs by side (esme: ESME sessions, upstream: SMSC binds), direction (rx, tx), command and command_status.",
	[]string{"side", "direction", "command", "status"}, nil)

func (pduCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pduDesc }

func (c pduCollector) Collect(ch chan<- prometheus.Metric) {
	for _, side := range []struct {
		name string
		n    *smpp.PDUCounts
	}{{"esme", &c.h.esme}, {"upstream", &c.h.upstream}} {
		side.n.Each(func(rx bool, id smpp.CommandID, st smpp.Status, n uint64) {
			dir := "tx"
			if rx {
				dir = "rx"
			}
			cmd := id.String()
			if id == 0 {
				cmd = "unknown"
			}
			status := st.String()
			if st == 0xFFFFFFFF {
				status = "other"
			} else if _, err := strconv.ParseUint(status, 0, 32); err == nil {
				status = "0x" + strconv.FormatUint(uint64(st), 16)
			}
			ch <- prometheus.MustNewConstMetric(pduDesc, prometheus.CounterValue, float64(n), side.name, dir, cmd, status)
		})
	}
}
