package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakecarrier"
)

// Two OTPs to one number, one after the other: the second is decided from the cache, so the
// carrier sees one call per signal (sim swap, call forwarding) whatever the answer (clean,
// swapped, diverted, unknown number), and both OTPs get the same decision. A failed look-up
// is remembered only error_ttl (1 ms here): each OTP asks again. The audit marks the second
// decision's signals as cached, naming the x-correlator of the call that answered.
func TestE2EOTPCacheHit(t *testing.T) {
	e := startOTPEnv(t, "")
	bank := bindTRX(t, e.proc.addr, "bank", "bankpw")
	type cacheCase struct {
		name, num string
		n         fakecarrier.Number
		want      smpp.Status
		perSignal int // carrier calls per signal for the two OTPs
	}
	cases := []cacheCase{
		{"clean", "447700901701", fakecarrier.Number{}, smpp.StatusOK, 1},
		{"swapped", "447700901702", fakecarrier.Number{SimChangedAgo: dur(time.Hour)}, smpp.StatusSubmitFail, 1},
		{"diverted", "447700901703", fakecarrier.Number{Forwardings: []string{fakecarrier.ForwardUnconditional}}, smpp.StatusOK, 1},
		{"unknown number", "447700901704", fakecarrier.Number{Unknown: true}, smpp.StatusOK, 1},
		{"error: not cached", "447700901705", fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: 500}}, smpp.StatusOK, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.carrier.SetNumber("+"+c.num, c.n)
			for i := range 2 {
				if i == 1 && c.perSignal == 2 {
					time.Sleep(20 * time.Millisecond) // outlast error_ttl (1ms): not a synchronisation
				}
				if r := bank.submit(t, sm{dest: c.num, text: []byte(otpText)}); r.Status() != c.want {
					t.Fatalf("OTP %d: %s, want %s", i+1, r.Status(), c.want)
				}
			}
			per := map[string]int{}
			for _, call := range callsFor(e.carrier, c.num) {
				per[strings.SplitN(call.Endpoint, "/", 2)[0]]++
			}
			if per["sim-swap"] != c.perSignal || per["call-forwarding-signal"] != c.perSignal || len(per) != 2 {
				t.Fatalf("carrier calls per API %v, want %d each for sim-swap and call-forwarding-signal", per, c.perSignal)
			}
		})
	}
	// The second decision's signals came from the cache: the audit says so and names the
	// x-correlator of the call that answered (the first OTP's).
	recs := e.waitAudit(t, "two audit records per number", func(recs []map[string]any) bool { return len(recs) == 2*len(cases) })
	for _, c := range cases {
		if c.perSignal != 1 {
			continue
		}
		t.Run("audit "+c.name, func(t *testing.T) {
			var two []map[string]any
			for _, r := range recs {
				if strings.HasSuffix(fmt.Sprint(r["destination"]), c.num[len(c.num)-4:]) {
					two = append(two, r)
				}
			}
			if len(two) != 2 {
				t.Fatalf("%d audit records", len(two))
			}
			for i, r := range two {
				for _, s := range r["signals"].([]any) {
					sig := s.(map[string]any)
					if cached := sig["cached"] == true; cached != (i == 1) {
						t.Errorf("OTP %d signal %v: cached %v", i+1, sig["signal"], sig["cached"])
					}
					if i == 1 && sig["correlation_id"] != two[0]["correlation_id"] {
						t.Errorf("OTP 2 signal %v names x-correlator %v, want the first OTP's %v (its own, %v, never reached the carrier)",
							sig["signal"], sig["correlation_id"], two[0]["correlation_id"], r["correlation_id"])
					}
				}
			}
		})
	}
}

// OTPs sent together to one number share one carrier call per signal (singleflight): every
// audit record names, per signal, the x-correlator of the call that answered it, its own or
// the shared call's, for a clean number and for an unknown one.
func TestE2EOTPSharedAnswerAudit(t *testing.T) {
	e := startOTPEnv(t, "")
	bank := bindTRX(t, e.proc.addr, "bank", "bankpw")
	cases := []struct {
		name, num string
		n         fakecarrier.Number
	}{
		{"clean", "447700901801", fakecarrier.Number{Latency: fakecarrier.Duration(300 * time.Millisecond)}},
		{"unknown number", "447700901802", fakecarrier.Number{Unknown: true, Latency: fakecarrier.Duration(300 * time.Millisecond)}},
	}
	const n = 5
	for _, c := range cases {
		e.carrier.SetNumber("+"+c.num, c.n)
		done := make(chan error, n)
		for range n {
			go func() {
				r, err := bank.submitErr(sm{dest: c.num, text: []byte(otpText)})
				if err == nil && r.Status() != smpp.StatusOK {
					err = fmt.Errorf("status %s", r.Status())
				}
				done <- err
			}()
		}
		for range n {
			if err := <-done; err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
	}
	correlators := map[string]bool{}
	for _, call := range e.carrier.Calls() {
		correlators[call.CorrelationID] = true
	}
	delete(correlators, "") // token requests carry none
	recs := e.waitAudit(t, "one audit record per OTP", func(recs []map[string]any) bool { return len(recs) == n*len(cases) })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, r := range recs {
				if !strings.HasSuffix(fmt.Sprint(r["destination"]), c.num[len(c.num)-4:]) {
					continue
				}
				for _, s := range r["signals"].([]any) {
					id := fmt.Sprint(r["correlation_id"])
					if own, ok := s.(map[string]any)["correlation_id"]; ok {
						id = fmt.Sprint(own)
					}
					if !correlators[id] {
						t.Errorf("signal %v names x-correlator %s, which never reached the carrier", s.(map[string]any)["signal"], id)
					}
				}
			}
		})
	}
}
