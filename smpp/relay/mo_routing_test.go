package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// moEnv is the test env with a second pooled upstream, carrier2 (the same fake SMSC, bound
// as system_id "pt", so that SendMO can choose the upstream), and receivers for accounts.
func moEnv(t *testing.T, rules []MORule, accounts ...string) (*env, map[string]*esmeClient) {
	t.Helper()
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Upstreams = append(c.Upstreams, Upstream{Name: "carrier2", Addr: c.Upstreams[0].Addr, Session: c.Upstreams[0].Session,
			Bind: smpp.BindParams{SystemID: "pt", Password: "ptpw"}, Binds: 1, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond})
		c.Routes["r2"] = "carrier2"
		for _, a := range accounts {
			if a != "bank" {
				c.Accounts = append(c.Accounts, Account{SystemID: a, Password: "pw", Route: "default", QueueMax: 10, QueueTTL: time.Hour})
			}
		}
		c.MORules = rules
	})
	waitLink(t, e.relay, "carrier2", 1)
	rx := map[string]*esmeClient{}
	for _, a := range accounts {
		rx[a] = mustBind(t, e.addr, smpp.BindReceiver, a, "pw")
	}
	return e, rx
}

// waitLink waits until the relay's pooled link to upstream has n binds.
func waitLink(t *testing.T, r *Relay, upstream string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if l := r.Links()[upstream]; l != nil && len(l.Sessions()) == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pooled link %s did not come up with %d binds", upstream, n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// MO rules are longest-prefix-match like prefix_routes (file order does not matter: the
// catch-all is listed first here), a rule naming the upstream beats one without at equal
// length, and rules for another upstream never match.
func TestMORoutingLongestPrefix(t *testing.T) {
	rules := []MORule{
		{DestPrefix: "", Account: "bank"},
		{DestPrefix: "44", Account: "uk"},
		{DestPrefix: "+4479", Account: "uk79"},
		{DestPrefix: "44", Upstream: "carrier2", Account: "c2"},
		{DestPrefix: "1", Upstream: "carrier2", Account: "us2"},
	}
	e, rx := moEnv(t, rules, "bank", "uk", "uk79", "c2", "us2")
	smscID := map[string]string{"carrier": "proxy", "carrier2": "pt"}
	for i, tc := range []struct {
		upstream, dest, want string
	}{
		{"carrier", "33123456", "bank"},   // only the catch-all matches
		{"carrier", "441234567", "uk"},    // "44" beats ""
		{"carrier", "+447912345", "uk79"}, // "4479" beats "44" ('+' ignored)
		{"carrier2", "441234567", "c2"},   // same length: the rule naming carrier2 wins
		{"carrier2", "447912345", "uk79"}, // a longer prefix for every upstream beats it
		{"carrier2", "15551234", "us2"},   // carrier2-only rule
		{"carrier", "15551234", "bank"},   // ... never matches on carrier
	} {
		t.Run(tc.upstream+"/"+tc.dest, func(t *testing.T) {
			before := map[string]int{}
			for a, c := range rx {
				c.mu.Lock()
				before[a] = len(c.delivered)
				c.mu.Unlock()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			text := []byte{'m', 'o', byte('0' + i)}
			if err := e.smsc.SendMO(ctx, smscID[tc.upstream], "447700900999", tc.dest, 0, text); err != nil {
				t.Fatalf("MO: %v", err)
			}
			// SendMO returned: the ESME acknowledged it, so it has it.
			for a, c := range rx {
				c.mu.Lock()
				got := c.delivered[before[a]:]
				c.mu.Unlock()
				switch {
				case a == tc.want && (len(got) != 1 || string(got[0].ShortMessage()) != string(text)):
					t.Fatalf("account %s got %d MOs, want this one", a, len(got))
				case a != tc.want && len(got) != 0:
					t.Fatalf("MO for %s on %s reached %s, want %s", tc.dest, tc.upstream, a, tc.want)
				}
			}
		})
	}
	if s := e.relay.Stats(); s.MOsRouted != 7 || s.MOsUnknown != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// An MO that no rule matches is refused with ESME_RX_P_APPN (the documented default) and
// counted; no account gets it.
func TestMONoRuleRefused(t *testing.T) {
	e, rx := moEnv(t, []MORule{{DestPrefix: "44", Account: "bank"}, {DestPrefix: "1", Upstream: "carrier2", Account: "bank"}}, "bank")
	for _, tc := range []struct{ smscID, dest string }{{"proxy", "33123"}, {"proxy", "15551234"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := e.smsc.SendMO(ctx, tc.smscID, "447700900999", tc.dest, 0, []byte("x"))
		cancel()
		if !errors.Is(err, smpp.StatusXPAppn) {
			t.Fatalf("MO to %s: %v, want ESME_RX_P_APPN", tc.dest, err)
		}
	}
	rx["bank"].mu.Lock()
	n := len(rx["bank"].delivered)
	rx["bank"].mu.Unlock()
	if n != 0 {
		t.Fatalf("bank got %d MOs", n)
	}
	if s := e.relay.Stats(); s.MOsUnknown != 2 || s.MOsRouted != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestMORouteTable(t *testing.T) {
	rules := []MORule{{Account: "all"}, {DestPrefix: "44", Account: "uk"}, {DestPrefix: "44", Upstream: "b", Account: "uk-b"}, {DestPrefix: "4", Upstream: "a", Account: "4-a"}}
	for _, tc := range []struct{ up, dest, want string }{
		{"a", "441", "uk"}, {"b", "441", "uk-b"}, {"c", "441", "uk"}, {"a", "451", "4-a"}, {"b", "451", "all"}, {"a", "", "all"}, {"b", "+441", "uk-b"},
	} {
		if got, ok := moRoute(rules, tc.up, tc.dest); !ok || got != tc.want {
			t.Errorf("moRoute(%s, %q) = %q %v, want %q", tc.up, tc.dest, got, ok, tc.want)
		}
	}
	if got, ok := moRoute(rules[2:], "c", "441"); ok {
		t.Errorf("rules for other upstreams matched: %q", got)
	}
}
