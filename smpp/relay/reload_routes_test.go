package relay

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// A bound session resolves its account's routes once per configuration (esme.view): a
// reload that moves the account to another route, or points its route at another upstream,
// applies from the session's next message, in both directions.
func TestReloadRoutesApplyToBoundSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	smsc2, err := fakesmsc.Start(ctx, fakesmsc.Config{Accounts: map[string]string{"proxy": "secret"}, Logger: zaptest.NewLogger(t).Named("smsc2")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smsc2.Close() })
	var cfg Config
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		second := c.Upstreams[0]
		second.Name, second.Addr = "carrier2", smsc2.Addr()
		c.Upstreams = append(c.Upstreams, second)
		c.Routes = map[string]string{"default": "carrier", "alt": "carrier2"}
		cfg = *c
	})
	waitLink(t, e.relay, "carrier2", 2)
	bank := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")

	withRoutes := func(route string, routes map[string]string) Config {
		nc := cfg
		nc.Accounts = slices.Clone(cfg.Accounts)
		nc.Accounts[0].Route = route
		nc.Routes = routes
		return nc
	}
	steps := []struct {
		name string
		cfg  Config
		smsc *fakesmsc.Server
	}{
		{"as bound", cfg, e.smsc},
		{"account moved to route alt", withRoutes("alt", cfg.Routes), smsc2},
		{"route default now on carrier2", withRoutes("default", map[string]string{"default": "carrier2", "alt": "carrier2"}), smsc2},
		{"back to the start", withRoutes("default", cfg.Routes), e.smsc},
	}
	for i, st := range steps {
		if i > 0 {
			if _, err := e.relay.Reload(ctx, st.cfg); err != nil {
				t.Fatalf("%s: reload: %v", st.name, err)
			}
		}
		n1, n2 := countCmd(e.smsc.Records(), smpp.SubmitSM), countCmd(smsc2.Records(), smpp.SubmitSM)
		if r := request(t, bank, submitFrame(t, smOpt{text: []byte("x")})); r.Status() != smpp.StatusOK {
			t.Fatalf("%s: %s", st.name, r.Status())
		}
		d1, d2 := countCmd(e.smsc.Records(), smpp.SubmitSM)-n1, countCmd(smsc2.Records(), smpp.SubmitSM)-n2
		want1, want2 := 1, 0
		if st.smsc == smsc2 {
			want1, want2 = 0, 1
		}
		if d1 != want1 || d2 != want2 {
			t.Fatalf("%s: submits reached carrier %d, carrier2 %d; want %d, %d", st.name, d1, d2, want1, want2)
		}
	}
}
