package relay

import (
	"errors"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// A pass-through bind the SMSC refuses for its credentials counts toward the lockout: after
// Failures refusals the relay refuses the next bind itself (ESME_RBINDFAIL), even with the
// right password, without dialling the SMSC again.
func TestPassThroughRefusedBindsCountTowardLockout(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Lockout = Lockout{Failures: 3, Window: time.Minute, Duration: time.Minute}
	})
	bindStatus := func(pw string) smpp.Status {
		t.Helper()
		_, _, err := bindESME(t, e.addr, smpp.BindTransceiver, "pt", pw)
		if err == nil {
			return smpp.StatusOK
		}
		var be *smpp.BindError
		if !errors.As(err, &be) {
			t.Fatalf("bind pt/%s: %v, want a bind_resp", pw, err)
		}
		return be.Status
	}
	// A success first: it must not reset what follows.
	if st := bindStatus("ptpw"); st != smpp.StatusOK {
		t.Fatalf("right password: %s", st)
	}
	for i := range 3 {
		if st := bindStatus("wrong"); st != smpp.StatusInvPaswd {
			t.Fatalf("wrong password #%d: %s, want the SMSC's ESME_RINVPASWD relayed", i+1, st)
		}
	}
	binds := func() int {
		n := 0
		for _, rec := range e.smsc.Records() {
			if rec.SystemID == "" && (rec.Command == smpp.BindTransceiver.String()) {
				n++
			}
		}
		return n
	}
	before := binds()
	if st := bindStatus("ptpw"); st != smpp.StatusBindFail {
		t.Fatalf("after 3 refusals by the SMSC: %s, want ESME_RBINDFAIL (locked out)", st)
	}
	if after := binds(); after != before {
		t.Fatalf("a locked-out bind reached the SMSC (%d binds recorded, was %d)", after, before)
	}
	if s := e.relay.Stats(); s.BindsRefused != 4 {
		t.Fatalf("binds refused %d, want 4", s.BindsRefused)
	}
}
