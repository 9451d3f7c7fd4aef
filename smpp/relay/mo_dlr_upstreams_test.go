package relay

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// Two carriers issue the same message_id (decimal counters from the same start) to two
// accounts: each receipt is matched under the upstream it came from and reaches the account
// that submitted over that upstream.
func TestReceiptsMatchedPerUpstream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The receipts wait until both submits are answered: with the ids matched on the id
	// alone, the second submit_sm_resp overwrote the first's correlation.
	fc2 := fakesmsc.Config{MessageIDFormat: "decimal", DLRDelay: 300 * time.Millisecond, Logger: zaptest.NewLogger(t).Named("smsc2")}
	smsc2, err := fakesmsc.Start(ctx, fc2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smsc2.Close() })
	e := newEnv(t, fakesmsc.Config{MessageIDFormat: "decimal", DLRDelay: 300 * time.Millisecond}, func(c *Config) {
		c.Upstreams = append(c.Upstreams, Upstream{Name: "carrier2", Addr: smsc2.Addr(), Session: c.Upstreams[0].Session,
			Bind: smpp.BindParams{SystemID: "proxy2", Password: "x"}, Binds: 1, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond})
		c.Routes["r2"] = "carrier2"
		c.Accounts = append(c.Accounts, Account{SystemID: "other", Password: "pw", Route: "r2", QueueMax: 10, QueueTTL: time.Hour})
	})
	waitLink(t, e.relay, "carrier2", 1)
	bank := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	other := mustBind(t, e.addr, smpp.BindTransceiver, "other", "pw")

	r1 := request(t, bank, submitFrame(t, smOpt{dest: "447700900001", regDel: 1, text: []byte("to carrier")}))
	r2 := request(t, other, submitFrame(t, smOpt{dest: "447700900002", regDel: 1, text: []byte("to carrier2")}))
	id1, id2 := r1.CString(smpp.FieldMessageID), r2.CString(smpp.FieldMessageID)
	if r1.Status() != smpp.StatusOK || r2.Status() != smpp.StatusOK || id1 == "" || id1 != id2 {
		t.Fatalf("the two SMSCs should issue the same id: %q (%s) and %q (%s)", id1, r1.Status(), id2, r2.Status())
	}
	// A receipt's source_addr is the submit's destination: it tells which SMSC sent it.
	for _, c := range []struct {
		name string
		esme *esmeClient
		from string
	}{{"bank", bank, "447700900001"}, {"other", other, "447700900002"}} {
		got := c.esme.waitDelivered(t, 1)
		if src := got[0].CString(smpp.FieldSourceAddr); src != c.from {
			t.Fatalf("%s got the receipt of %s, want the one of %s", c.name, src, c.from)
		}
	}
	// Both SMSCs had their receipts acknowledged (the ESMEs answered), and neither account
	// got the other's.
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	for _, s := range []*fakesmsc.Server{e.smsc, smsc2} {
		if err := s.WaitRecords(wctx, func(recs []fakesmsc.Record) bool {
			for _, r := range recs {
				if r.Command == smpp.DeliverSMResp.String() {
					return true
				}
			}
			return false
		}); err != nil {
			t.Fatalf("receipt not acknowledged: %v", err)
		}
	}
	for _, c := range []*esmeClient{bank, other} {
		c.mu.Lock()
		n := len(c.delivered)
		c.mu.Unlock()
		if n != 1 {
			t.Fatalf("an account got %d receipts, want 1", n)
		}
	}
	if s := e.relay.Stats(); s.ReceiptsMatched != 2 || s.ReceiptsUnknown != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// mapCorr is an in-memory CorrStore.
type mapCorr struct {
	mu sync.Mutex
	m  map[string]origin
}

func (m *mapCorr) Put(key, account, upstream string, _ time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[key] = origin{account: account, upstream: upstream}
}

func (m *mapCorr) Get(key string) (string, string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.m[key]
	return o.account, o.upstream, ok
}

// The same id from two upstreams keeps both correlations, in memory and in the durable
// store; the hex/decimal fallback stays within the receipt's upstream; entries a previous
// version stored under the bare id are still found for their own upstream only.
func TestCorrelatorPerUpstream(t *testing.T) {
	store := &mapCorr{m: map[string]origin{"777": {account: "legacy", upstream: "a"}}}
	c := newCorrelator(100, time.Hour)
	c.durable, c.ttl = store, time.Hour
	c.add("1000", origin{account: "bank", upstream: "a"})
	c.add("1000", origin{account: "other", upstream: "b"})
	c.add("00FF", origin{account: "hexer", upstream: "a"})
	for _, tc := range []struct{ up, id, want string }{
		{"a", "1000", "bank"}, {"b", "1000", "other"}, {"c", "1000", ""},
		{"a", "255", "hexer"}, {"b", "255", ""}, // 0xFF in decimal, only on a
		{"b", "3e8", "other"}, // 1000 in hex
		{"a", "777", "legacy"}, {"b", "777", ""},
	} {
		got, ok := c.lookupFrom(tc.up, tc.id)
		if got.account != tc.want || ok != (tc.want != "") {
			t.Errorf("lookupFrom(%s, %q) = %q %v, want %q", tc.up, tc.id, got.account, ok, tc.want)
		}
	}
	// After a restart: only the durable store knows them.
	fresh := newCorrelator(100, time.Hour)
	fresh.durable, fresh.ttl = store, time.Hour
	for _, tc := range []struct{ up, id, want string }{{"a", "1000", "bank"}, {"b", "1000", "other"}, {"b", "ff", ""}} {
		if got, _ := fresh.lookupFrom(tc.up, tc.id); got.account != tc.want {
			t.Errorf("after restart lookupFrom(%s, %q) = %q, want %q", tc.up, tc.id, got.account, tc.want)
		}
	}
	// query_sm names only the id: any upstream that knows it.
	if got, ok := c.lookup("00ff"); !ok || got.account != "hexer" {
		t.Errorf("lookup(00ff) = %q %v", got.account, ok)
	}
}

// Two upstream entries for one SMSC account (same system_id, as the sandbox's carrier and
// voicegw): the SMSC delivers receipts on any of its receiver binds, so a receipt for a
// message submitted over one upstream may arrive on the other. It is still matched, at once.
func TestReceiptsAcrossUpstreamsOfOneSMSCAccount(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Upstreams = append(c.Upstreams, Upstream{Name: "carrier2", Addr: c.Upstreams[0].Addr, Session: c.Upstreams[0].Session,
			Bind: c.Upstreams[0].Bind, Binds: 1, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond})
		c.Routes["r2"] = "carrier2"
	})
	waitLink(t, e.relay, "carrier2", 1)
	bank := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	// The fake SMSC hands receipts to its three receiver binds round robin: a third of them
	// arrive on carrier2, whose link took none of the submits.
	const n = 9
	for i := range n {
		if r := request(t, bank, submitFrame(t, smOpt{regDel: 1, text: []byte{'a' + byte(i)}})); r.Status() != smpp.StatusOK {
			t.Fatalf("submit: %s", r.Status())
		}
	}
	bank.waitDelivered(t, n)
	if s := e.relay.Stats(); s.ReceiptsMatched != n || s.ReceiptsUnknown != 0 {
		t.Fatalf("stats %+v", s)
	}
}
