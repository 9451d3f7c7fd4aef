package main

import (
	"strings"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakecarrier"
)

// The drop action answers success with a proxy message_id and relays nothing. A failed
// receipt follows when the ESME asked for one (registered_delivery bits 0-1 set: 1 always, 2
// on failure), with the stat and err configured (REJECTD, err 0 by default); without
// registered_delivery no receipt is sent at all.
func TestE2EOTPDropReceipts(t *testing.T) {
	e := startOTPEnvWith(t, otpEnvOptions{
		accounts: `  - {system_id: dropdef, password: pw, route: default, policy: dropdef}`,
		policies: `  - name: dropdef
    checks:
      - {signal: sim_swap, provider: op, on_risk: {action: drop}}`,
	})
	for _, n := range []string{"447700901501", "447700901502", "447700901503", "447700901504"} {
		e.carrier.SetNumber("+"+n, fakecarrier.Number{SimChangedAgo: dur(time.Hour)})
	}
	// dropped submits one and checks the answer: success, a proxy message_id, not relayed.
	dropped := func(t *testing.T, c *esme, m sm) string {
		t.Helper()
		before := submitsTo(e.smsc, m.dest)
		r := c.submit(t, m)
		id := r.CString(smpp.FieldMessageID)
		if r.Status() != smpp.StatusOK || !strings.HasPrefix(id, "sg") {
			t.Fatalf("status %s id %q, want success with a proxy message_id", r.Status(), id)
		}
		if submitsTo(e.smsc, m.dest) != before {
			t.Fatal("a dropped OTP reached the SMSC")
		}
		return id
	}
	var slowest time.Duration // longest wait for a receipt that came
	receipt := func(t *testing.T, c *esme, id, dest, stat, errCode string, state byte) {
		t.Helper()
		start := time.Now()
		rc := c.waitReceipt(t, id)
		slowest = max(slowest, time.Since(start))
		if from, to := rc.CString(smpp.FieldSourceAddr), rc.CString(smpp.FieldDestinationAddr); from != dest || to != "BANK" {
			t.Fatalf("receipt from %q to %q, want from the OTP's destination %s to its source BANK", from, to, dest)
		}
		txt := string(rc.ShortMessage())
		if !strings.Contains(txt, "stat:"+stat) || !strings.Contains(txt, "err:"+errCode) {
			t.Fatalf("receipt %q, want stat:%s err:%s", txt, stat, errCode)
		}
		if esm, _ := rc.Uint8(smpp.FieldESMClass); esm&0x3C != 0x04 {
			t.Fatalf("receipt esm_class %#x, want an SMSC delivery receipt (0x04)", esm)
		}
		if v, ok := rc.TLV(smpp.TagMessageState); !ok || len(v) != 1 || v[0] != state {
			t.Fatalf("receipt message_state %v, want %d", v, state)
		}
	}
	t.Run("registered_delivery 1: REJECTD by default", func(t *testing.T) {
		c := bindTRX(t, e.proc.addr, "dropdef", "pw")
		receipt(t, c, dropped(t, c, sm{dest: "447700901501", text: []byte(otpText)}), "447700901501", "REJECTD", "000", 8)
	})
	t.Run("registered_delivery 1: UNDELIV err 11 as configured", func(t *testing.T) {
		c := bindTRX(t, e.proc.addr, "dropper", "pw")
		receipt(t, c, dropped(t, c, sm{dest: "447700901502", text: []byte(otpText)}), "447700901502", "UNDELIV", "011", 5)
	})
	t.Run("registered_delivery 2 (on failure): receipt", func(t *testing.T) {
		c := bindTRX(t, e.proc.addr, "dropper", "pw")
		receipt(t, c, dropped(t, c, sm{dest: "447700901503", text: []byte(otpText), rd: regDelivery(2)}), "447700901503", "UNDELIV", "011", 5)
	})
	t.Run("no registered_delivery: no receipt", func(t *testing.T) {
		c := bindTRX(t, e.proc.addr, "dropper", "pw")
		// Looked up, then the same number again, decided from the cache.
		dropped(t, c, sm{dest: "447700901504", text: []byte(otpText), rd: regDelivery(0)})
		dropped(t, c, sm{dest: "447700901504", text: []byte(otpText), rd: regDelivery(0)})
		// Many times what the receipts above needed.
		wait := min(max(time.Second, 20*slowest), 5*time.Second)
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) {
			if got := c.receipts(); len(got) != 0 {
				t.Fatalf("a receipt for a drop without registered_delivery: %q", got[0].ShortMessage())
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The session does receive receipts: one asked for now arrives, alone.
		id := dropped(t, c, sm{dest: "447700901504", text: []byte(otpText)})
		receipt(t, c, id, "447700901504", "UNDELIV", "011", 5)
		if got := c.receipts(); len(got) != 1 {
			t.Fatalf("%d deliver_sm on the session, want only the receipt asked for", len(got))
		}
	})
}
