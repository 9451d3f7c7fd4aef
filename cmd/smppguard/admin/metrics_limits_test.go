package admin

import (
	"strings"
	"testing"
)

// Refusals by reason, connections against listen.max_connections, per-account limits and
// sessions closed for not reading are exposed as the Source reports them at scrape time.
func TestMetricsLimitsAndRefusals(t *testing.T) {
	e := start(t, "tok")
	m := scrape(t, e)
	// The fake reports none of them yet: what must be there is there at zero, the rest absent.
	if got := value(t, m, "GAUGE", MetricConnections); got != 0 {
		t.Errorf("%s = %v, want 0", MetricConnections, got)
	}
	if got := value(t, m, "COUNTER", MetricConnectionsRefused); got != 0 {
		t.Errorf("%s = %v, want 0", MetricConnectionsRefused, got)
	}
	absent(t, m, MetricConnectionsLimit)

	e.src.set(func(f *fakeSource) {
		f.counters.BindRefusals = map[string]uint64{"bad_credentials": 3, "unknown_system_id": 2, "lockout": 1, "max_binds": 4, "bind_rate": 0}
		f.counters.Connections, f.counters.MaxConnections, f.counters.ConnectionsRefused = 7, 10, 5
		f.counters.Limits = map[string]AccountLimits{"acme": {TPS: 50, MaxBinds: 2}, "bank": {TPS: 0.5}, "free": {}}
		f.counters.QueueOverflows = QueueOverflows{ESME: map[string]uint64{"acme": 2}, Upstream: map[string]uint64{"smsc-a": 1}}
	})
	m = scrape(t, e)
	const C, G = "COUNTER", "GAUGE"
	for _, c := range []struct {
		typ, name string
		labels    []string
		want      float64
	}{
		{C, MetricBindRefusals, []string{"reason", "bad_credentials"}, 3},
		{C, MetricBindRefusals, []string{"reason", "unknown_system_id"}, 2},
		{C, MetricBindRefusals, []string{"reason", "lockout"}, 1},
		{C, MetricBindRefusals, []string{"reason", "max_binds"}, 4},
		{C, MetricBindRefusals, []string{"reason", "bind_rate"}, 0},
		{G, MetricConnections, nil, 7},
		{G, MetricConnectionsLimit, nil, 10},
		{C, MetricConnectionsRefused, nil, 5},
		{G, MetricAccountTPSLimit, []string{"account", "acme"}, 50},
		{G, MetricAccountTPSLimit, []string{"account", "bank"}, 0.5},
		{G, MetricAccountMaxBinds, []string{"account", "acme"}, 2},
		{C, MetricQueueOverflows, []string{"side", "esme", "name", "acme"}, 2},
		{C, MetricQueueOverflows, []string{"side", "upstream", "name", "smsc-a"}, 1},
	} {
		if got := value(t, m, c.typ, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Unlimited is absent, so usage/limit has no series for it (rather than a division by 0).
	absent(t, m, MetricAccountMaxBinds, "account", "bank")
	absent(t, m, MetricAccountTPSLimit, "account", "free")
	absent(t, m, MetricAccountMaxBinds, "account", "free")

	_, _, b := e.do("GET", "/metrics", "tok")
	for _, line := range []string{
		"# TYPE smppguard_bind_refusals_total counter",
		"# TYPE smppguard_esme_connections_limit gauge",
		"# TYPE smppguard_account_max_binds gauge",
		`smppguard_queue_overflows_total{name="acme",side="esme"} 2`,
	} {
		if !strings.Contains(string(b), line) {
			t.Errorf("metrics lack %q", line)
		}
	}
}
