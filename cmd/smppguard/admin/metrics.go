package admin

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names.
const (
	MetricRelayEvents        = "smppguard_relay_events_total"
	MetricQueueDepth         = "smppguard_receiver_queue_depth"
	MetricESMESessions       = "smppguard_esme_sessions"
	MetricESMEPDUs           = "smppguard_esme_pdus_total"
	MetricUpstreamBinds      = "smppguard_upstream_binds"
	MetricUpstreamReconnects = "smppguard_upstream_reconnects_total"
	MetricOTPMessages        = "smppguard_otp_messages_total"
	MetricOTPDecisions       = "smppguard_otp_decisions_total"
	MetricLookups            = "smppguard_lookups_total"
	MetricLookupErrors       = "smppguard_lookup_errors_total"
	MetricLookupBreakerOpen  = "smppguard_lookup_breaker_open"
	MetricLookupBreakerOpens = "smppguard_lookup_breaker_opens_total"
	MetricReady              = "smppguard_ready"
	MetricOTPRules           = "smppguard_otp_rule_matches_total"
	MetricOTPCauses          = "smppguard_otp_decision_causes_total"
	MetricReloads            = "smppguard_config_reloads_total"
	MetricWindowInUse        = "smppguard_esme_window_in_use"
	MetricPeerInFlight       = "smppguard_esme_requests_in_flight"
	MetricBindRefusals       = "smppguard_bind_refusals_total"
	MetricConnections        = "smppguard_esme_connections"
	MetricConnectionsLimit   = "smppguard_esme_connections_limit"
	MetricConnectionsRefused = "smppguard_esme_connections_refused_total"
	MetricAccountTPSLimit    = "smppguard_account_tps_limit"
	MetricAccountMaxBinds    = "smppguard_account_max_binds"
	MetricQueueOverflows     = "smppguard_queue_overflows_total"
)

// collector reads the Source at scrape time; nothing is counted on the hot path.
type collector struct {
	src Source

	relayEvents, queueDepth, esmeSessions, esmePDUs, upBinds, upReconnects,
	otpMessages, otpDecisions, lookups, lookupErrors, breakerOpen, breakerOpens,
	ready, otpRules, otpCauses, reloads, windowInUse, peerInFlight,
	bindRefusals, conns, connsLimit, connsRefused, tpsLimit, maxBinds, queueOverflows *prometheus.Desc
}

func newCollector(src Source) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		src:          src,
		relayEvents:  d(MetricRelayEvents, "Relay events by kind (binds, receipts, MOs, queue, upstream failures).", "event"),
		queueDepth:   d(MetricQueueDepth, "Receipts and MOs held for an account until a receiver binds.", "account"),
		esmeSessions: d(MetricESMESessions, "Bound ESME sessions.", "account", "bind_type"),
		esmePDUs:     d(MetricESMEPDUs, "PDUs exchanged with ESMEs (rx: from the ESME, tx: to it), closed sessions included.", "account", "direction"),
		upBinds:      d(MetricUpstreamBinds, "Upstream bind slots by state.", "upstream", "state"),
		upReconnects: d(MetricUpstreamReconnects, "Upstream reconnects.", "upstream"),
		otpMessages:  d(MetricOTPMessages, "Messages seen by the OTP interceptor, by kind (seen, otp, saturated, panic).", "kind"),
		otpDecisions: d(MetricOTPDecisions, "OTP decisions by action.", "action"),
		lookups:      d(MetricLookups, "Look-ups per provider by outcome (hit, miss, call, shed).", "provider", "outcome"),
		lookupErrors: d(MetricLookupErrors, "Look-up errors per provider by kind.", "provider", "kind"),
		breakerOpen:  d(MetricLookupBreakerOpen, "1 when the provider's circuit breaker is open.", "provider"),
		breakerOpens: d(MetricLookupBreakerOpens, "Times the provider's circuit breaker opened.", "provider"),
		ready:        d(MetricReady, "1 when the proxy is ready to serve."),
		otpRules:     d(MetricOTPRules, "OTP decisions by the rule that marked the message as an OTP.", "rule"),
		otpCauses:    d(MetricOTPCauses, "OTP decisions by action and by the check outcome that decided them.", "action", "cause"),
		reloads:      d(MetricReloads, "Configuration reloads by result (ok, refused).", "result"),
		windowInUse:  d(MetricWindowInUse, "deliver_sm sent to an account's ESMEs and not acknowledged yet (our window in use).", "account"),
		peerInFlight: d(MetricPeerInFlight, "Requests from an account's ESMEs not answered yet (their window in use).", "account"),
		bindRefusals: d(MetricBindRefusals, "Binds refused, by reason (bad_credentials, unknown_system_id, lockout, bind_rate, source_cidr, bind_type, max_binds, passthrough_refused_by_smsc, upstream_unreachable, shutting_down).", "reason"),
		conns:        d(MetricConnections, "Open ESME connections, bound or not (listen.max_connections bounds them)."),
		connsLimit:   d(MetricConnectionsLimit, "listen.max_connections."),
		connsRefused: d(MetricConnectionsRefused, "ESME connections closed at once because listen.max_connections were open."),
		tpsLimit:     d(MetricAccountTPSLimit, "accounts[].tps: submits per second allowed to each session of the account (absent: unlimited).", "account"),
		maxBinds:     d(MetricAccountMaxBinds, "accounts[].max_binds: concurrent binds allowed to the account (absent: unlimited).", "account"),
		queueOverflows: d(MetricQueueOverflows, "Sessions closed because the peer did not read what was sent to it (send queue full), by side (esme: per account, upstream: per upstream).",
			"side", "name"),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.relayEvents, c.queueDepth, c.esmeSessions, c.esmePDUs, c.upBinds, c.upReconnects,
		c.otpMessages, c.otpDecisions, c.lookups, c.lookupErrors, c.breakerOpen, c.breakerOpens, c.ready,
		c.otpRules, c.otpCauses, c.reloads, c.windowInUse, c.peerInFlight,
		c.bindRefusals, c.conns, c.connsLimit, c.connsRefused, c.tpsLimit, c.maxBinds, c.queueOverflows,
	} {
		ch <- d
	}
}

// otpKind maps Counters.OTP keys to the kind label.
func otpKind(k string) string {
	switch k {
	case "otps":
		return "otp"
	case "panics":
		return "panic"
	}
	return k
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	cn := c.src.Counters()
	for ev, v := range cn.Relay {
		counter(c.relayEvents, v, ev)
	}
	for acct, v := range cn.QueueDepth {
		gauge(c.queueDepth, float64(v), acct)
	}
	otp := map[string]uint64{}
	for k, v := range cn.OTP {
		otp[otpKind(k)] += v
	}
	for k, v := range otp {
		counter(c.otpMessages, v, k)
	}
	for a, v := range cn.Decisions {
		counter(c.otpDecisions, v, a)
	}
	for r, v := range cn.Rules {
		counter(c.otpRules, v, r)
	}
	for k, v := range cn.Causes {
		action, cause, _ := strings.Cut(k, "|")
		counter(c.otpCauses, v, action, cause)
	}
	for r, v := range cn.Reloads {
		counter(c.reloads, v, r)
	}
	for p, pc := range cn.Lookups {
		counter(c.lookups, pc.Hits, p, "hit")
		counter(c.lookups, pc.Misses, p, "miss")
		counter(c.lookups, pc.Calls, p, "call")
		counter(c.lookups, pc.Shed, p, "shed")
		for kind, v := range pc.ErrorsByKind {
			counter(c.lookupErrors, v, p, kind)
		}
		gauge(c.breakerOpen, b2f(pc.BreakerState == "open"), p)
		counter(c.breakerOpens, pc.BreakerOpens, p)
	}

	c.collectLimits(cn, counter, gauge)
	c.collectSessions(c.src.Sessions(), gauge)
	for acct, p := range cn.ESMEPDUs {
		counter(c.esmePDUs, p.Rx, acct, "rx")
		counter(c.esmePDUs, p.Tx, acct, "tx")
	}

	binds := map[[2]string]int{}
	reconnects := map[string]uint64{}
	for _, l := range c.src.Links() {
		binds[[2]string{l.Upstream, l.State}]++
		reconnects[l.Upstream] += l.Reconnects
	}
	for k, n := range binds {
		gauge(c.upBinds, float64(n), k[0], k[1])
	}
	for u, v := range reconnects {
		counter(c.upReconnects, v, u)
	}

	ok, _ := c.src.Ready()
	gauge(c.ready, b2f(ok))
}

// collectLimits exposes the refusals and the configured limits, for usage against limit.
func (c *collector) collectLimits(cn Counters, counter func(*prometheus.Desc, uint64, ...string), gauge func(*prometheus.Desc, float64, ...string)) {
	for reason, v := range cn.BindRefusals {
		counter(c.bindRefusals, v, reason)
	}
	gauge(c.conns, float64(cn.Connections))
	if cn.MaxConnections > 0 {
		gauge(c.connsLimit, float64(cn.MaxConnections))
	}
	counter(c.connsRefused, cn.ConnectionsRefused)
	for acct, l := range cn.Limits {
		if l.TPS > 0 {
			gauge(c.tpsLimit, l.TPS, acct)
		}
		if l.MaxBinds > 0 {
			gauge(c.maxBinds, float64(l.MaxBinds), acct)
		}
	}
	for acct, v := range cn.QueueOverflows.ESME {
		counter(c.queueOverflows, v, "esme", acct)
	}
	for up, v := range cn.QueueOverflows.Upstream {
		counter(c.queueOverflows, v, "upstream", up)
	}
}

func (c *collector) collectSessions(sessions []SessionInfo, gauge func(*prometheus.Desc, float64, ...string)) {
	count := map[[2]string]int{}
	inUse := map[string][2]int{}
	for _, s := range sessions {
		count[[2]string{s.Account, s.BindType}]++
		v := inUse[s.Account]
		v[0] += s.WindowInUse
		v[1] += s.PeerInFlight
		inUse[s.Account] = v
	}
	for acct, v := range inUse {
		gauge(c.windowInUse, float64(v[0]), acct)
		gauge(c.peerInFlight, float64(v[1]), acct)
	}
	for k, n := range count {
		gauge(c.esmeSessions, float64(n), k[0], k[1])
	}
}
