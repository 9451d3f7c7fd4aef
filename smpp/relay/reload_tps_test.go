package relay

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// withAccount returns a copy of cfg whose account sysID is changed by f (the slices are
// copied: cfg's own stay as the relay was built with them).
func withAccount(cfg Config, sysID string, f func(*Account)) Config {
	cfg.Accounts = slices.Clone(cfg.Accounts)
	for i := range cfg.Accounts {
		if cfg.Accounts[i].SystemID == sysID {
			f(&cfg.Accounts[i])
		}
	}
	return cfg
}

// burstOf sends n submits back to back and counts ESME_ROK and ESME_RTHROTTLED answers.
func burstOf(t *testing.T, c *esmeClient, n int) (ok, throttled int) {
	t.Helper()
	for range n {
		switch r := request(t, c, submitFrame(t, smOpt{text: []byte("x")})); r.Status() {
		case smpp.StatusOK:
			ok++
		case smpp.StatusThrottled:
			throttled++
		default:
			t.Fatalf("status %s", r.Status())
		}
	}
	return ok, throttled
}

// A reload that changes accounts[].tps applies to the sessions already bound, both ways:
// unlimited → 1/s throttles them at once, and back to unlimited lets everything through.
func TestReloadTPSAppliesToBoundSessions(t *testing.T) {
	var cfg Config
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) { cfg = *c })
	c := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	const n = 6
	if ok, _ := burstOf(t, c, n); ok != n {
		t.Fatalf("unlimited account: %d of %d submits accepted", ok, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := e.relay.Reload(ctx, withAccount(cfg, "bank", func(a *Account) { a.TPS = 1 }))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.TPSChanged, []string{"bank"}) || rep.SessionsUnbound != 0 {
		t.Fatalf("report %+v", rep)
	}
	if ok, throttled := burstOf(t, c, n); ok > 2 || throttled < n-2 {
		t.Fatalf("after reload to tps 1: %d accepted, %d throttled of %d immediate submits", ok, throttled, n)
	}

	if _, err := e.relay.Reload(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if ok, _ := burstOf(t, c, n); ok != n {
		t.Fatalf("after reload back to unlimited: %d of %d submits accepted", ok, n)
	}
	if c.s.State() != smpp.StateBoundTRX {
		t.Fatalf("session state %s: the reload must keep the bind", c.s.State())
	}
}
