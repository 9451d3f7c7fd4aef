package main

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smppguard/smppguard/cmd/smppguard/admin"
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

// esmeTotals counts the PDUs of ESME sessions per account, closed sessions included, for
// smppguard_esme_pdus_total. Live sessions are read at scrape time; a closing session's final
// counts move to its account under the same lock, so the sum never falls and a session that
// binds and closes between two scrapes is counted. Nothing runs per PDU.
type esmeTotals struct {
	mu     sync.Mutex
	live   map[*smpp.Session]struct{}
	gone   map[*smpp.Session]struct{} // closed before opened was called (a peer that hung up at once)
	closed map[string]admin.PDUTotals
}

func newESMETotals() *esmeTotals {
	return &esmeTotals{live: map[*smpp.Session]struct{}{}, gone: map[*smpp.Session]struct{}{}, closed: map[string]admin.PDUTotals{}}
}

// wrap makes srv's sessions counted: it must be called before srv serves. The sessions'
// OnClose must call sessionClosed (set it in the session config given to relay.Server).
func (e *esmeTotals) wrap(srv *smpp.Server) {
	next := srv.NewHandler
	srv.NewHandler = func(s *smpp.Session) smpp.Handler {
		e.opened(s)
		if next == nil {
			return nil
		}
		return next(s)
	}
}

func (e *esmeTotals) opened(s *smpp.Session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.gone[s]; ok {
		delete(e.gone, s)
		return
	}
	e.live[s] = struct{}{}
}

// sessionClosed moves a closed session's final counts to its account.
func (e *esmeTotals) sessionClosed(s *smpp.Session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.live[s]; !ok {
		e.gone[s] = struct{}{}
	}
	delete(e.live, s)
	if id := s.SystemID(); id != "" {
		c, t := s.Counters(), e.closed[id]
		t.Rx += c.RxPDUs
		t.Tx += c.TxPDUs
		e.closed[id] = t
	}
}

// snapshot returns the totals per account: closed sessions plus the live bound ones.
func (e *esmeTotals) snapshot() map[string]admin.PDUTotals {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]admin.PDUTotals, len(e.closed))
	for id, t := range e.closed {
		out[id] = t
	}
	for s := range e.live {
		if id := s.SystemID(); id != "" {
			c, t := s.Counters(), out[id]
			t.Rx += c.RxPDUs
			t.Tx += c.TxPDUs
			out[id] = t
		}
	}
	return out
}
