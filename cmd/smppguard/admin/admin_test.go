package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/smppguard/smppguard/interceptor"
)

// fakeSource is a Source the tests drive.
type fakeSource struct {
	mu        sync.Mutex
	sessions  []SessionInfo
	links     []LinkInfo
	ready     bool
	why       string
	reloadErr error
	reloads   int
	counters  Counters
	checks    []string
}

func (f *fakeSource) Sessions() []SessionInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SessionInfo(nil), f.sessions...)
}

func (f *fakeSource) Links() []LinkInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LinkInfo(nil), f.links...)
}

func (f *fakeSource) Ready() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready, f.why
}

func (f *fakeSource) Check(ctx context.Context, account, msisdn string) (any, error) {
	f.mu.Lock()
	f.checks = append(f.checks, account+"/"+msisdn)
	f.mu.Unlock()
	switch account {
	case "":
		return map[string]any{"count": 2, "checks": []map[string]any{
			{"account": "acme", "destination": msisdn, "action": "allow"}, {"account": "bank", "destination": msisdn, "action": "allow"}}}, nil
	case "nopolicy":
		return nil, fmt.Errorf("account %q has no OTP policy: %w", account, ErrNotFound)
	case "slow":
		<-ctx.Done()
		return nil, ctx.Err()
	case "broken":
		return nil, errors.New("provider exploded")
	}
	return map[string]any{"account": account, "destination": msisdn, "action": "allow"}, nil
}

func (f *fakeSource) Reload(context.Context) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reloadErr != nil {
		return nil, f.reloadErr
	}
	f.reloads++
	return map[string]any{"accounts": 2, "generation": f.reloads}, nil
}

func (f *fakeSource) Counters() Counters {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.counters
	c.Relay = maps.Clone(c.Relay)
	c.QueueDepth = maps.Clone(c.QueueDepth)
	c.OTP = maps.Clone(c.OTP)
	c.Decisions = maps.Clone(c.Decisions)
	c.Lookups = maps.Clone(c.Lookups)
	c.ESMEPDUs = maps.Clone(c.ESMEPDUs)
	return c
}

func (f *fakeSource) checksSeen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.checks...)
}

func (f *fakeSource) set(fn func(*fakeSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newFake() *fakeSource {
	return &fakeSource{
		ready: true,
		sessions: []SessionInfo{
			{Account: "acme", BindType: "TRX", Peer: "10.0.0.1:4000", State: "BOUND_TRX", Since: t0, WindowInUse: 2, PeerInFlight: 1, RxPDUs: 10, TxPDUs: 12},
			{Account: "acme", BindType: "RX", Peer: "10.0.0.1:4001", State: "BOUND_RX", Since: t0, RxPDUs: 1, TxPDUs: 3},
			{Account: "bank", BindType: "TX", Peer: "10.0.0.2:5000", State: "BOUND_TX", Since: t0, RxPDUs: 5, TxPDUs: 5, Throttled: 1},
		},
		links: []LinkInfo{
			{Upstream: "smsc-a", Slot: 0, BindType: "TRX", State: "BOUND_TRX", Since: t0, Reconnects: 2, InFlight: 3},
			{Upstream: "smsc-a", Slot: 1, BindType: "TRX", State: "DOWN", Reconnects: 5, LastError: "connection refused"},
			{Upstream: "smsc-b", Slot: 0, BindType: "TX", State: "BOUND_TX", Since: t0},
		},
		counters: Counters{
			Relay:      map[string]uint64{"binds_ok": 3, "binds_refused": 1, "queue_full": 0},
			QueueDepth: map[string]int{"acme": 4},
			OTP:        map[string]uint64{"seen": 100, "otps": 40, "saturated": 1, "panics": 0},
			Decisions:  map[string]uint64{"allow": 30, "reject": 10},
			ESMEPDUs:   map[string]PDUTotals{"acme": {Rx: 11, Tx: 15}, "bank": {Rx: 5, Tx: 5}},
			Lookups: map[string]ProviderCounters{
				"camara": {Hits: 7, Misses: 3, Calls: 3, Shed: 1, BreakerOpens: 1, BreakerState: "closed", ErrorsByKind: map[string]uint64{"timeout": 2}},
			},
		},
	}
}

type env struct {
	t    *testing.T
	src  *fakeSource
	srv  *Server
	base string
	tok  string
	dl   *DecisionLog
}

func start(t *testing.T, token string) *env {
	t.Helper()
	src := newFake()
	dl := NewDecisionLog(5)
	s, err := New(Config{Addr: "127.0.0.1:0", Token: token, Source: src, Decisions: dl, CheckTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := s.Start(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer c2()
		if err := s.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &env{t: t, src: src, srv: s, base: "http://" + addr, tok: token, dl: dl}
}

func (e *env) do(method, path, token string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// get does an authorised GET and decodes a JSON body into v (when not nil).
func (e *env) get(path string, wantStatus int, v any) {
	e.t.Helper()
	e.call(http.MethodGet, path, wantStatus, v)
}

func (e *env) call(method, path string, wantStatus int, v any) {
	e.t.Helper()
	st, h, b := e.do(method, path, e.tok)
	if st != wantStatus {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, st, wantStatus, b)
	}
	if ct := h.Get("Content-Type"); v != nil && ct != "application/json" {
		e.t.Fatalf("%s %s: content type %q", method, path, ct)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func errMsg(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error: %s (%v)", b, err)
	}
	return e.Error
}

func TestHealthzAndReadyz(t *testing.T) {
	e := start(t, "")
	st, _, b := e.do(http.MethodGet, "/healthz", "")
	if st != 200 || strings.TrimSpace(string(b)) != "ok" {
		t.Fatalf("healthz: %d %q", st, b)
	}
	var r ReadyResponse
	e.get("/readyz", 200, &r)
	if !r.Ready || r.Why != "" {
		t.Fatalf("readyz: %+v", r)
	}
	e.src.set(func(f *fakeSource) { f.ready, f.why = false, "route default: no upstream bind up" })
	e.get("/readyz", 503, &r)
	if r.Ready || r.Why != "route default: no upstream bind up" {
		t.Fatalf("readyz not ready: %+v", r)
	}
	e.src.set(func(f *fakeSource) { f.ready, f.why = false, "" })
	e.get("/readyz", 503, &r)
	if r.Why == "" {
		t.Fatal("readyz: no why")
	}
	e.src.set(func(f *fakeSource) { f.ready = true })
	e.get("/readyz", 200, &r)
	if !r.Ready {
		t.Fatalf("readyz back: %+v", r)
	}
}

func TestAuth(t *testing.T) {
	e := start(t, "s3cret")
	paths := []struct{ method, path string }{
		{"GET", "/readyz"}, {"GET", "/metrics"}, {"GET", "/api/v1/sessions"}, {"GET", "/api/v1/links"},
		{"GET", "/api/v1/decisions"}, {"GET", "/api/v1/check?account=acme&msisdn=%2B447700900123"},
		{"POST", "/api/v1/reload"}, {"GET", "/nope"},
	}
	for _, p := range paths {
		for _, tok := range []string{"", "wrong", "s3cret-longer", "s3cre"} {
			st, h, b := e.do(p.method, p.path, tok)
			if st != http.StatusUnauthorized {
				t.Fatalf("%s %s token %q: %d, want 401", p.method, p.path, tok, st)
			}
			if h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: no WWW-Authenticate", p.method, p.path)
			}
			errMsg(t, b)
		}
		// Basic auth and a bare token are refused too.
		req, _ := http.NewRequest(p.method, e.base+p.path, nil)
		req.Header.Set("Authorization", "s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("bare token: %d", resp.StatusCode)
		}
		st, _, _ := e.do(p.method, p.path, "s3cret")
		if st == http.StatusUnauthorized {
			t.Fatalf("%s %s with the token: 401", p.method, p.path)
		}
	}
	e.src.mu.Lock()
	n := e.src.reloads
	e.src.mu.Unlock()
	if n != 1 {
		t.Fatalf("reloads = %d, want only the authorised one", n)
	}
	if st, _, b := e.do("GET", "/healthz", ""); st != 200 || !strings.HasPrefix(string(b), "ok") {
		t.Fatalf("healthz without token: %d %s", st, b)
	}
	// Lower-case scheme is accepted.
	req, _ := http.NewRequest("GET", e.base+"/api/v1/links", nil)
	req.Header.Set("Authorization", "bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("lower-case bearer: %d", resp.StatusCode)
	}
}

func TestMethodNotAllowedAndNotFound(t *testing.T) {
	e := start(t, "tok")
	for _, c := range []struct{ method, path, allow string }{
		{"POST", "/healthz", "GET, HEAD"},
		{"POST", "/readyz", "GET, HEAD"},
		{"DELETE", "/metrics", "GET, HEAD"},
		{"POST", "/api/v1/sessions", "GET"},
		{"PUT", "/api/v1/links", "GET"},
		{"POST", "/api/v1/decisions", "GET"},
		{"POST", "/api/v1/check", "GET"},
		{"GET", "/api/v1/reload", "POST"},
	} {
		st, h, b := e.do(c.method, c.path, "tok")
		if st != http.StatusMethodNotAllowed || h.Get("Allow") != c.allow {
			t.Fatalf("%s %s: %d allow %q", c.method, c.path, st, h.Get("Allow"))
		}
		errMsg(t, b)
	}
	st, _, b := e.do("GET", "/api/v2/whatever", "tok")
	if st != 404 {
		t.Fatalf("unknown path: %d", st)
	}
	errMsg(t, b)
}

func TestSessionsAndLinks(t *testing.T) {
	e := start(t, "")
	var raw struct {
		Count    int              `json:"count"`
		Sessions []map[string]any `json:"sessions"`
	}
	e.get("/api/v1/sessions", 200, &raw)
	if raw.Count != 3 || len(raw.Sessions) != 3 {
		t.Fatalf("sessions: %+v", raw)
	}
	s0 := raw.Sessions[0]
	for _, k := range []string{"account", "bind_type", "peer", "state", "since", "window_in_use", "peer_in_flight", "rx_pdus", "tx_pdus", "throttled", "timeouts"} {
		if _, ok := s0[k]; !ok {
			t.Errorf("session lacks %q: %v", k, s0)
		}
	}
	if s0["account"] != "acme" || s0["since"] != "2025-03-01T12:00:00Z" || s0["window_in_use"] != 2.0 {
		t.Errorf("session 0: %v", s0)
	}

	var links struct {
		Count int              `json:"count"`
		Links []map[string]any `json:"links"`
	}
	e.get("/api/v1/links", 200, &links)
	if links.Count != 3 {
		t.Fatalf("links: %+v", links)
	}
	for _, k := range []string{"upstream", "slot", "bind_type", "state", "since", "reconnects", "in_flight"} {
		if _, ok := links.Links[0][k]; !ok {
			t.Errorf("link lacks %q: %v", k, links.Links[0])
		}
	}
	if l1 := links.Links[1]; l1["last_error"] != "connection refused" || l1["state"] != "DOWN" {
		t.Errorf("link 1: %v", l1)
	} else if _, ok := l1["since"]; ok {
		t.Errorf("zero since not omitted: %v", l1)
	}

	e.src.set(func(f *fakeSource) { f.sessions, f.links = nil, nil })
	var typed SessionsResponse
	st, _, b := e.do("GET", "/api/v1/sessions", "")
	if st != 200 || !strings.Contains(string(b), `"sessions":[]`) {
		t.Fatalf("empty sessions: %d %s", st, b)
	}
	_ = json.Unmarshal(b, &typed)
	if typed.Count != 0 {
		t.Fatalf("empty sessions count %d", typed.Count)
	}
	st, _, b = e.do("GET", "/api/v1/links", "")
	if st != 200 || !strings.Contains(string(b), `"links":[]`) {
		t.Fatalf("empty links: %d %s", st, b)
	}
}

func TestCheck(t *testing.T) {
	e := start(t, "")
	var res map[string]any
	e.get("/api/v1/check?account=acme&msisdn=%2B447700900123", 200, &res)
	if res["account"] != "acme" || res["destination"] != "+447700900123" || res["action"] != "allow" {
		t.Fatalf("check: %v", res)
	}
	// Without an account: every account with a policy, as the CLI does.
	var all struct {
		Count  int              `json:"count"`
		Checks []map[string]any `json:"checks"`
	}
	e.get("/api/v1/check?msisdn=%2B447700900123", 200, &all)
	if all.Count != 2 || len(all.Checks) != 2 || all.Checks[1]["account"] != "bank" {
		t.Fatalf("check without an account: %+v", all)
	}
	if got := e.src.checksSeen(); len(got) != 2 || got[1] != "/+447700900123" {
		t.Fatalf("Source.Check calls %q; want the second with no account", got)
	}
	for _, c := range []struct {
		q    string
		want int
	}{
		{"account=acme", 400},
		{"", 400},
		{"msisdn=", 400},
		{"account=nopolicy&msisdn=1", 404},
		{"account=broken&msisdn=1", 500},
		{"account=slow&msisdn=1", 504},
	} {
		st, _, b := e.do("GET", "/api/v1/check?"+c.q, "")
		if st != c.want {
			t.Fatalf("check ?%s: %d, want %d (%s)", c.q, st, c.want, b)
		}
		msg := errMsg(t, b)
		if c.want == 404 && !strings.Contains(msg, "no OTP policy") {
			t.Fatalf("check 404 message: %q", msg)
		}
	}
}

func TestReload(t *testing.T) {
	e := start(t, "")
	var ok struct {
		Reloaded bool           `json:"reloaded"`
		Summary  map[string]any `json:"summary"`
	}
	e.call("POST", "/api/v1/reload", 200, &ok)
	if !ok.Reloaded || ok.Summary["generation"] != 1.0 {
		t.Fatalf("reload: %+v", ok)
	}
	e.src.set(func(f *fakeSource) { f.reloadErr = errors.New(`accounts.acme: unknown route "nope"`) })
	st, _, b := e.do("POST", "/api/v1/reload", "")
	if st != 400 {
		t.Fatalf("refused reload: %d %s", st, b)
	}
	if msg := errMsg(t, b); !strings.Contains(msg, `unknown route "nope"`) {
		t.Fatalf("refused reload reason: %q", msg)
	}
	e.src.set(func(f *fakeSource) { f.reloadErr = nil })
	e.call("POST", "/api/v1/reload", 200, &ok)
	if ok.Summary["generation"] != 2.0 {
		t.Fatalf("second reload: %+v", ok)
	}
}

func rec(i int, account string, action interceptor.Action) interceptor.AuditRecord {
	return interceptor.AuditRecord{
		Time: t0.Add(time.Duration(i) * time.Second), Account: account, Destination: "4477****0123",
		Action: action, Reason: fmt.Sprint("r", i), CorrelationID: fmt.Sprint("c", i),
		Signals: []interceptor.SignalOutcome{{Signal: "sim_swap", Source: "camara"}},
	}
}

func TestDecisionLogRing(t *testing.T) {
	d := NewDecisionLog(3)
	if got := d.Recent("", "", 0); len(got) != 0 {
		t.Fatalf("empty: %v", got)
	}
	d.Record(rec(1, "a", interceptor.ActionAllow))
	d.Record(rec(2, "b", interceptor.ActionReject))
	if got := d.Recent("", "", 10); len(got) != 2 || got[0].CorrelationID != "c2" || got[1].CorrelationID != "c1" {
		t.Fatalf("partial: %v", got)
	}
	for i := 3; i <= 7; i++ {
		d.Record(rec(i, "a", interceptor.ActionAllow))
	}
	got := d.Recent("", "", 0)
	if len(got) != 3 || got[0].CorrelationID != "c7" || got[2].CorrelationID != "c5" {
		t.Fatalf("wrapped: %v", got)
	}
	if d.Total() != 7 || d.Size() != 3 {
		t.Fatalf("total %d size %d", d.Total(), d.Size())
	}
	if got := d.Recent("b", "", 0); len(got) != 0 {
		t.Fatalf("evicted record still there: %v", got)
	}
	// Returned records are copies.
	got[0].Signals[0].Signal = "mutated"
	if d.Recent("", "", 1)[0].Signals[0].Signal != "sim_swap" {
		t.Fatal("Recent shares memory with the ring")
	}
	if NewDecisionLog(0).Size() != DefaultDecisionLogSize {
		t.Fatal("default size")
	}
	var _ interceptor.AuditSink = d
}

func TestDecisionsEndpoint(t *testing.T) {
	e := start(t, "")
	e.dl.Record(rec(1, "acme", interceptor.ActionAllow))
	e.dl.Record(rec(2, "bank", interceptor.ActionReject))
	e.dl.Record(rec(3, "acme", interceptor.ActionReject))
	e.dl.Record(rec(4, "acme", interceptor.ActionFlag))

	type resp struct {
		Count     int                       `json:"count"`
		Decisions []interceptor.AuditRecord `json:"decisions"`
	}
	ids := func(r resp) string {
		var s []string
		for _, d := range r.Decisions {
			s = append(s, d.CorrelationID)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct{ q, want string }{
		{"", "c4,c3,c2,c1"},
		{"account=acme", "c4,c3,c1"},
		{"action=reject", "c3,c2"},
		{"account=acme&action=reject", "c3"},
		{"account=acme&limit=2", "c4,c3"},
		{"account=nobody", ""},
	} {
		var r resp
		e.get("/api/v1/decisions?"+c.q, 200, &r)
		if ids(r) != c.want || r.Count != len(r.Decisions) {
			t.Fatalf("decisions ?%s: %q (count %d), want %q", c.q, ids(r), r.Count, c.want)
		}
	}
	// JSON shape of one record.
	var raw struct {
		Decisions []map[string]any `json:"decisions"`
	}
	e.get("/api/v1/decisions?limit=1", 200, &raw)
	for _, k := range []string{"time", "account", "destination", "action", "reason", "signals", "correlation_id"} {
		if _, ok := raw.Decisions[0][k]; !ok {
			t.Errorf("decision lacks %q: %v", k, raw.Decisions[0])
		}
	}
	// The ring (size 5) bounds what the endpoint can return.
	for i := 5; i <= 12; i++ {
		e.dl.Record(rec(i, "acme", interceptor.ActionAllow))
	}
	var r resp
	e.get("/api/v1/decisions?limit=1000", 200, &r)
	if ids(r) != "c12,c11,c10,c9,c8" {
		t.Fatalf("ring bound: %q", ids(r))
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=x"} {
		st, _, b := e.do("GET", "/api/v1/decisions?"+q, "")
		if st != 400 {
			t.Fatalf("?%s: %d", q, st)
		}
		errMsg(t, b)
	}

	// Without a DecisionLog the endpoint answers 404.
	s, err := New(Config{Addr: "127.0.0.1:0", Source: newFake()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp2, err := http.Get("http://" + addr + "/api/v1/decisions")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 404 {
		t.Fatalf("no decision log: %d", resp2.StatusCode)
	}
	cancel()
	sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer c2()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}

type sample struct {
	labels map[string]string
	value  float64
	typ    string
}

func scrape(t *testing.T, e *env) map[string][]sample {
	t.Helper()
	st, h, b := e.do("GET", "/metrics", e.tok)
	if st != 200 {
		t.Fatalf("metrics: %d %s", st, b)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("metrics content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, b)
	}
	out := map[string][]sample{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			s := sample{labels: map[string]string{}, typ: f.GetType().String()}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s.value = m.GetGauge().GetValue()
			}
			out[name] = append(out[name], s)
		}
	}
	return out
}

// value finds the sample of name with exactly these labels (k=v pairs).
func value(t *testing.T, m map[string][]sample, typ, name string, kv ...string) float64 {
	t.Helper()
	want := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	for _, s := range m[name] {
		if maps.Equal(s.labels, want) {
			if s.typ != typ {
				t.Fatalf("%s: type %s, want %s", name, s.typ, typ)
			}
			return s.value
		}
	}
	t.Fatalf("no %s%v in %v", name, want, m[name])
	return 0
}

func absent(t *testing.T, m map[string][]sample, name string, kv ...string) {
	t.Helper()
	want := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	for _, s := range m[name] {
		if maps.Equal(s.labels, want) {
			t.Fatalf("%s%v present: %v", name, want, s.value)
		}
	}
}

func TestMetrics(t *testing.T) {
	e := start(t, "tok")
	m := scrape(t, e)
	const C, G = "COUNTER", "GAUGE"
	checks := []struct {
		typ, name string
		labels    []string
		want      float64
	}{
		{C, MetricRelayEvents, []string{"event", "binds_ok"}, 3},
		{C, MetricRelayEvents, []string{"event", "binds_refused"}, 1},
		{C, MetricRelayEvents, []string{"event", "queue_full"}, 0},
		{G, MetricQueueDepth, []string{"account", "acme"}, 4},
		{G, MetricESMESessions, []string{"account", "acme", "bind_type", "TRX"}, 1},
		{G, MetricESMESessions, []string{"account", "acme", "bind_type", "RX"}, 1},
		{G, MetricESMESessions, []string{"account", "bank", "bind_type", "TX"}, 1},
		{C, MetricESMEPDUs, []string{"account", "acme", "direction", "rx"}, 11},
		{C, MetricESMEPDUs, []string{"account", "acme", "direction", "tx"}, 15},
		{C, MetricESMEPDUs, []string{"account", "bank", "direction", "rx"}, 5},
		{G, MetricUpstreamBinds, []string{"upstream", "smsc-a", "state", "BOUND_TRX"}, 1},
		{G, MetricUpstreamBinds, []string{"upstream", "smsc-a", "state", "DOWN"}, 1},
		{G, MetricUpstreamBinds, []string{"upstream", "smsc-b", "state", "BOUND_TX"}, 1},
		{C, MetricUpstreamReconnects, []string{"upstream", "smsc-a"}, 7},
		{C, MetricUpstreamReconnects, []string{"upstream", "smsc-b"}, 0},
		{C, MetricOTPMessages, []string{"kind", "seen"}, 100},
		{C, MetricOTPMessages, []string{"kind", "otp"}, 40},
		{C, MetricOTPMessages, []string{"kind", "saturated"}, 1},
		{C, MetricOTPMessages, []string{"kind", "panic"}, 0},
		{C, MetricOTPDecisions, []string{"action", "allow"}, 30},
		{C, MetricOTPDecisions, []string{"action", "reject"}, 10},
		{C, MetricLookups, []string{"provider", "camara", "outcome", "hit"}, 7},
		{C, MetricLookups, []string{"provider", "camara", "outcome", "miss"}, 3},
		{C, MetricLookups, []string{"provider", "camara", "outcome", "call"}, 3},
		{C, MetricLookups, []string{"provider", "camara", "outcome", "shed"}, 1},
		{C, MetricLookupErrors, []string{"provider", "camara", "kind", "timeout"}, 2},
		{G, MetricLookupBreakerOpen, []string{"provider", "camara"}, 0},
		{C, MetricLookupBreakerOpens, []string{"provider", "camara"}, 1},
		{G, MetricReady, nil, 1},
	}
	for _, c := range checks {
		if got := value(t, m, c.typ, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	absent(t, m, MetricOTPMessages, "kind", "otps")

	// Counters move; a session closes, one opens; the breaker opens; readiness drops.
	e.src.set(func(f *fakeSource) {
		f.counters.Relay = map[string]uint64{"binds_ok": 9, "binds_refused": 1, "queue_full": 2, "mos_routed": 4}
		f.counters.QueueDepth = map[string]int{"acme": 0, "bank": 6}
		f.counters.OTP = map[string]uint64{"seen": 150, "otps": 60, "saturated": 1, "panics": 1}
		f.counters.Decisions = map[string]uint64{"allow": 45, "reject": 14, "drop": 1}
		f.counters.Lookups = map[string]ProviderCounters{
			"camara": {Hits: 9, Misses: 4, Calls: 4, Shed: 3, BreakerOpens: 2, BreakerState: "open", ErrorsByKind: map[string]uint64{"timeout": 3, "unavailable": 1}},
		}
		// The Source's cumulative counts: acme's live sessions plus its closed RX session,
		// bank's closed session. They are what the metric says, whatever the live sessions.
		f.counters.ESMEPDUs = map[string]PDUTotals{"acme": {Rx: 23, Tx: 27}, "bank": {Rx: 5, Tx: 5}}
		f.sessions = []SessionInfo{
			{Account: "acme", BindType: "TRX", Peer: "10.0.0.1:4000", State: "BOUND_TRX", Since: t0, RxPDUs: 20, TxPDUs: 22},
			{Account: "acme", BindType: "TRX", Peer: "10.0.0.1:4002", State: "BOUND_TRX", Since: t0.Add(time.Minute), RxPDUs: 2, TxPDUs: 2},
		}
		f.links[1].State = "BOUND_TRX"
		f.links[1].Reconnects = 6
		f.ready, f.why = false, "route x down"
	})
	m = scrape(t, e)
	checks = []struct {
		typ, name string
		labels    []string
		want      float64
	}{
		{C, MetricRelayEvents, []string{"event", "binds_ok"}, 9},
		{C, MetricRelayEvents, []string{"event", "mos_routed"}, 4},
		{C, MetricRelayEvents, []string{"event", "queue_full"}, 2},
		{G, MetricQueueDepth, []string{"account", "acme"}, 0},
		{G, MetricQueueDepth, []string{"account", "bank"}, 6},
		{G, MetricESMESessions, []string{"account", "acme", "bind_type", "TRX"}, 2},
		{C, MetricESMEPDUs, []string{"account", "acme", "direction", "rx"}, 23},
		{C, MetricESMEPDUs, []string{"account", "acme", "direction", "tx"}, 27},
		// bank has no session any more: its count comes from the Source all the same.
		{C, MetricESMEPDUs, []string{"account", "bank", "direction", "rx"}, 5},
		{G, MetricUpstreamBinds, []string{"upstream", "smsc-a", "state", "BOUND_TRX"}, 2},
		{C, MetricUpstreamReconnects, []string{"upstream", "smsc-a"}, 8},
		{C, MetricOTPMessages, []string{"kind", "seen"}, 150},
		{C, MetricOTPMessages, []string{"kind", "otp"}, 60},
		{C, MetricOTPMessages, []string{"kind", "panic"}, 1},
		{C, MetricOTPDecisions, []string{"action", "drop"}, 1},
		{C, MetricLookups, []string{"provider", "camara", "outcome", "shed"}, 3},
		{C, MetricLookupErrors, []string{"provider", "camara", "kind", "unavailable"}, 1},
		{G, MetricLookupBreakerOpen, []string{"provider", "camara"}, 1},
		{C, MetricLookupBreakerOpens, []string{"provider", "camara"}, 2},
		{G, MetricReady, nil, 0},
	}
	for _, c := range checks {
		if got := value(t, m, c.typ, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	absent(t, m, MetricESMESessions, "account", "acme", "bind_type", "RX")
	absent(t, m, MetricESMESessions, "account", "bank", "bind_type", "TX")
	absent(t, m, MetricUpstreamBinds, "upstream", "smsc-a", "state", "DOWN")

	// HELP/TYPE lines as a text check too.
	_, _, b := e.do("GET", "/metrics", "tok")
	for _, line := range []string{
		"# TYPE smppguard_relay_events_total counter",
		"# TYPE smppguard_receiver_queue_depth gauge",
		"# TYPE smppguard_ready gauge",
		`smppguard_otp_messages_total{kind="otp"} 60`,
	} {
		if !strings.Contains(string(b), line) {
			t.Errorf("metrics lack %q", line)
		}
	}
}

func TestInjectedRegistryAndConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a Source succeeded")
	}
	s, err := New(Config{Source: newFake()})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Addr != DefaultAddr || s.reg == nil {
		t.Fatalf("defaults: %q %v", s.cfg.Addr, s.reg)
	}
	// The collector goes to the injected registry; a second one on the same registry is refused.
	reg := s.reg
	if _, err := New(Config{Source: newFake(), Registry: reg}); err == nil {
		t.Fatal("a second collector on the same registry was accepted")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) == 0 {
		t.Fatal("nothing gathered from the injected registry")
	}
	// Start twice fails; Shutdown before Start is harmless.
	s2, _ := New(Config{Addr: "127.0.0.1:0", Source: newFake()})
	if err := s2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := s2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	// Cancelling the context stops the listener.
	cancel()
	select {
	case <-s2.done:
	case <-time.After(5 * time.Second):
		t.Fatal("listener still up after the context ended")
	}
}

func TestConcurrentRecordAndScrape(t *testing.T) {
	e := start(t, "")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				e.dl.Record(rec(i, "acme", interceptor.ActionAllow))
			}
		}()
	}
	for i := 0; i < 5; i++ {
		scrape(t, e)
		e.get("/api/v1/decisions?limit=3", 200, nil)
	}
	wg.Wait()
	if e.dl.Total() != 800 {
		t.Fatalf("total %d", e.dl.Total())
	}
}
