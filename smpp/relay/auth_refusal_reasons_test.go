package relay

import (
	"net"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// Every refusal site counts its reason once, and the reasons add up to BindsRefused.
func TestBindRefusalsByReason(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Upstreams = append(c.Upstreams, Upstream{Name: "dead", Addr: "127.0.0.1:1",
			Session: smpp.Config{ResponseTimeout: time.Second, BindTimeout: time.Second, EnquireLinkInterval: -1}})
		c.Accounts = append(c.Accounts,
			Account{SystemID: "rxonly", Password: "pw", Route: "default", BindTypes: []smpp.CommandID{smpp.BindReceiver}},
			Account{SystemID: "fenced", Password: "pw", Route: "default", Allow: func(net.IP) bool { return false }},
			Account{SystemID: "single", Password: "pw", Route: "default", MaxBinds: 1},
			Account{SystemID: "ptdead", Mode: PassThrough, Upstream: "dead"},
		)
		c.Lockout = Lockout{Failures: 3, Window: time.Minute, Duration: time.Minute}
	})
	want := [NumRefusalReasons]uint64{}
	check := func(sysID, pw string, st smpp.Status, reason RefusalReason) {
		t.Helper()
		if got := bindStatus(t, e.addr, sysID, pw); got != st {
			t.Fatalf("bind %s: %s, want %s (%s)", sysID, got, st, reason)
		}
		want[reason]++
		s := e.relay.Stats()
		if s.RefusedBy != want {
			t.Fatalf("after %s refused: by reason %v, want %v", sysID, s.RefusedBy, want)
		}
		var sum uint64
		for _, n := range s.RefusedBy {
			sum += n
		}
		if sum != s.BindsRefused {
			t.Fatalf("reasons add up to %d, BindsRefused %d", sum, s.BindsRefused)
		}
	}
	mustBind(t, e.addr, smpp.BindTransceiver, "single", "pw") // first: a bind forgets the address's failures
	check("single", "pw", smpp.StatusBindFail, RefusedMaxBinds)
	check("bank", "wrong", smpp.StatusInvPaswd, RefusedBadCredentials)
	check("nobody", "pw", smpp.StatusInvPaswd, RefusedUnknownSystemID)
	check("rxonly", "pw", smpp.StatusBindFail, RefusedBindType) // binds as a transceiver
	check("fenced", "pw", smpp.StatusBindFail, RefusedSourceCIDR)
	check("ptdead", "x", smpp.StatusBindFail, RefusedUpstreamUnreachable)
	check("pt", "wrong", smpp.StatusInvPaswd, RefusedBySMSC)
	// bank, nobody and pt (refused by the SMSC for its password) failed from 127.0.0.1:
	// the address is locked out.
	check("bank", "pw", smpp.StatusBindFail, RefusedLockout)
	e.relay.Drain()
	check("bank", "pw", smpp.StatusBindFail, RefusedShuttingDown)

	for r := range NumRefusalReasons {
		if s := r.String(); s == "unknown" || s == "" {
			t.Errorf("reason %d has no label", r)
		}
	}
}

// listen.bind_rate refusals are counted as bind_rate.
func TestBindRefusedByRate(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) { c.BindRate = BindRate{PerSecond: 0.001, Burst: 1} })
	if st := bindStatus(t, e.addr, "bank", "pw"); st != smpp.StatusOK {
		t.Fatalf("first bind: %s", st)
	}
	if st := bindStatus(t, e.addr, "bank", "pw"); st != smpp.StatusBindFail {
		t.Fatalf("second bind: %s, want ESME_RBINDFAIL", st)
	}
	if s := e.relay.Stats(); s.RefusedBy[RefusedBindRate] != 1 || s.BindsRefused != 1 {
		t.Fatalf("bind_rate %d of %d refused, want 1 of 1", s.RefusedBy[RefusedBindRate], s.BindsRefused)
	}
}

// Without the password, a known account fenced by source address or bind type answers like
// an unknown system_id (ESME_RINVPASWD): the source and bind type checks come after the
// password, so their ESME_RBINDFAIL does not tell a prober that the system_id exists.
func TestBindRefusalDoesNotRevealAccount(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Accounts = append(c.Accounts,
			Account{SystemID: "rxonly", Password: "pw", Route: "default", BindTypes: []smpp.CommandID{smpp.BindReceiver}},
			Account{SystemID: "fenced", Password: "pw", Route: "default", Allow: func(net.IP) bool { return false }},
		)
	})
	for _, c := range []struct {
		sysID, pw string
		want      smpp.Status
	}{
		{"nobody", "guess", smpp.StatusInvPaswd},
		{"fenced", "guess", smpp.StatusInvPaswd},
		{"rxonly", "guess", smpp.StatusInvPaswd},
		{"fenced", "pw", smpp.StatusBindFail}, // with the password, the precise refusal
		{"rxonly", "pw", smpp.StatusBindFail},
	} {
		if got := bindStatus(t, e.addr, c.sysID, c.pw); got != c.want {
			t.Errorf("bind %s/%s: %s, want %s", c.sysID, c.pw, got, c.want)
		}
	}
}
