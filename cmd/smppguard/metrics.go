package main

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smppguard/smppguard/cmd/smppguard/admin"
	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/smpp/relay"
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

	// upOverflows counts upstream sessions closed for not reading, per upstream (OnClose).
	upMu        sync.Mutex
	upOverflows map[string]uint64
}

// upstreamClosed returns the OnClose of upstream's sessions (pooled binds and pass-through
// sessions): it counts the sessions the upstream did not read for (smpp.ErrQueueFull).
func (h *hotMetrics) upstreamClosed(upstream string) func(*smpp.Session, error) {
	return func(s *smpp.Session, _ error) {
		if n := s.Counters().QueueOverflows; n > 0 {
			h.upMu.Lock()
			h.upOverflows[upstream]++
			h.upMu.Unlock()
		}
	}
}

func (h *hotMetrics) upstreamOverflows() map[string]uint64 {
	h.upMu.Lock()
	defer h.upMu.Unlock()
	return maps.Clone(h.upOverflows)
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
		relayObs:    map[smpp.CommandID]prometheus.Observer{},
		upOverflows: map[string]uint64{},
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
	// overflows counts, per account, the sessions closed because the ESME did not read.
	overflows map[string]uint64
	srv       *smpp.Server // the ESME listener (wrap)
}

func newESMETotals() *esmeTotals {
	return &esmeTotals{live: map[*smpp.Session]struct{}{}, gone: map[*smpp.Session]struct{}{}, closed: map[string]admin.PDUTotals{},
		overflows: map[string]uint64{}}
}

// wrap makes srv's sessions counted: it must be called before srv serves. The sessions'
// OnClose must call sessionClosed (set it in the session config given to relay.Server).
func (e *esmeTotals) wrap(srv *smpp.Server) {
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
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
	c := s.Counters()
	if c.QueueOverflows > 0 {
		e.overflows[s.SystemID()]++ // the first overflow closed the session
	}
	if id := s.SystemID(); id != "" {
		t := e.closed[id]
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

// limitCounters adds to c the bind refusals by reason, the ESME connections against
// listen.max_connections, the accounts' limits and the sessions closed for not reading:
// all read now, at scrape time.
func (a *app) limitCounters(c *admin.Counters, rs relay.Stats) {
	c.BindRefusals = make(map[string]uint64, len(rs.RefusedBy))
	for i, n := range rs.RefusedBy {
		c.BindRefusals[relay.RefusalReason(i).String()] = n
	}
	accts := a.cfg.Load().Accounts
	c.Limits = make(map[string]admin.AccountLimits, len(accts))
	for _, acc := range accts {
		c.Limits[acc.SystemID] = admin.AccountLimits{TPS: acc.TPS, MaxBinds: acc.MaxBinds}
	}
	e := a.esmeTotals
	e.mu.Lock()
	srv := e.srv
	c.QueueOverflows.ESME = maps.Clone(e.overflows)
	e.mu.Unlock()
	if srv != nil { // listen.max_connections needs a restart: the server's is the one in force
		c.Connections, c.MaxConnections, c.ConnectionsRefused = srv.Conns(), srv.MaxConns, srv.Refused()
	}
	if a.metrics != nil {
		c.QueueOverflows.Upstream = a.metrics.upstreamOverflows()
	}
}
