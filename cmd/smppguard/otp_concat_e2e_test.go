package main

import (
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
)

// A synchronous ESME (each part sent after the previous part's submit_sm_resp) sends a
// concatenated OTP to a swapped SIM through the binary: the first part waits out the
// first-part hold (otp.concat_first_part_timeout, default 1s; otp.concat_timeout is 2s
// here) and is relayed, the second is answered at once (its text so far holds no code),
// and the third, which completes the wording and the code, is rejected at once. Each part
// was once held the whole timeout and relayed alone.
func TestE2EOTPConcatSynchronousSender(t *testing.T) {
	e := startOTPEnv(t, "")
	bank := bindTRX(t, e.proc.addr, "bank", "bankpw")
	parts := []string{"Your verification ", "code is 48", "2913."}
	want := []smpp.Status{smpp.StatusOK, smpp.StatusOK, smpp.StatusSubmitFail}
	for i, text := range parts {
		start := time.Now()
		r := bank.submit(t, sm{dest: numSwapped, esm: 0x40, text: append([]byte{5, 0, 3, 0x21, 3, byte(i + 1)}, text...)})
		took := time.Since(start)
		t.Logf("part %d: %s after %s", i+1, r.Status(), took.Round(time.Millisecond))
		if r.Status() != want[i] {
			t.Fatalf("part %d: %s, want %s", i+1, r.Status(), want[i])
		}
		if i == 0 && (took < 900*time.Millisecond || took >= 1900*time.Millisecond) {
			t.Fatalf("part 1 answered after %s, want the first-part hold (1s), not concat_timeout (2s)", took)
		}
		if i > 0 && took >= time.Second {
			t.Fatalf("part %d answered after %s: held again instead of decided on arrival", i+1, took)
		}
	}
	if n := submitsTo(e.smsc, numSwapped); n != 2 {
		t.Fatalf("%d parts relayed to the SMSC, want 2 (the third was rejected)", n)
	}
	deadline := time.Now().Add(5 * time.Second) // the audit file is flushed within a second
	for {
		recs := e.auditRecords(t)
		if len(recs) == 1 && recs[0]["action"] == "reject" && recs[0]["parts"] == float64(3) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit records %v, want one reject of a 3-part message", recs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
