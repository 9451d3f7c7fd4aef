package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakecarrier"
)

// callsFor returns the API calls the fake carrier received for a number (E.164 without '+').
func callsFor(c *fakecarrier.Server, number string) []fakecarrier.Call {
	var out []fakecarrier.Call
	for _, call := range c.Calls() {
		if call.PhoneNumber == "+"+number {
			out = append(out, call)
		}
	}
	return out
}

// waitUntil polls cond every few milliseconds until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitAudit polls the audit file (flushed within a second of a record) until cond holds on
// its records.
func (e *otpEnv) waitAudit(t *testing.T, what string, cond func([]map[string]any) bool) []map[string]any {
	t.Helper()
	var recs []map[string]any
	waitUntil(t, 5*time.Second, what, func() bool {
		recs = e.auditRecords(t)
		return cond(recs)
	})
	return recs
}

// failPolicyAccounts are four accounts that tell an unknown number from a failed look-up in
// both directions: bank (fail open, unknown allowed), closed (fail closed with
// ESME_RTHROTTLED, unknown allowed: the default), strict (fail closed with ESME_RTHROTTLED,
// unknown rejected with ESME_RINVDSTADR) and lenient (fail open, unknown rejected with
// ESME_RINVDSTADR).
var failPolicyAccounts = otpEnvOptions{
	accounts: `  - {system_id: strict, password: pw, route: default, policy: strict}
  - {system_id: lenient, password: pw, route: default, policy: lenient}`,
	policies: `  - name: strict
    deadline: 700ms
    checks:
      - {signal: sim_swap, provider: op, on_error: {action: reject, status: ESME_RTHROTTLED}, on_unknown: {action: reject, status: ESME_RINVDSTADR}}
  - name: lenient
    deadline: 700ms
    checks:
      - {signal: sim_swap, provider: op, on_error: {action: allow}, on_unknown: {action: reject, status: ESME_RINVDSTADR}}`,
}

// Every injected carrier answer end to end, classified: the CAMARA "unknown number" answers
// (404 IDENTIFIER_NOT_FOUND, 422 SERVICE_NOT_APPLICABLE, and the scenario's unknown number)
// follow each check's on_unknown; every other error answer (401, 403, a 422 with another
// code, 429, 500, 503) and no answer at all follow on_error, the fail policy. In particular
// an unknown number on a fail-closed account is allowed (closed) or rejected with the
// unknown-number status (strict), never throttled like an error, and an error on a fail-open
// account is allowed even where unknown numbers are rejected (lenient).
func TestE2EOTPUnknownNumberVsError(t *testing.T) {
	e := startOTPEnvWith(t, failPolicyAccounts)
	accts := map[string]*esme{}
	for _, a := range []struct{ id, pw string }{{"strict", "pw"}, {"lenient", "pw"}, {"closed", "pw"}, {"bank", "bankpw"}} {
		accts[a.id] = bindTRX(t, e.proc.addr, a.id, a.pw)
	}
	type want struct{ strict, lenient, closed, bank smpp.Status }
	unknown := want{strict: smpp.StatusInvDstAdr, lenient: smpp.StatusInvDstAdr, closed: smpp.StatusOK, bank: smpp.StatusOK}
	failed := want{strict: smpp.StatusThrottled, lenient: smpp.StatusOK, closed: smpp.StatusThrottled, bank: smpp.StatusOK}
	cases := []struct {
		name       string
		n          fakecarrier.Number
		httpStatus int // what the carrier answered; 0 = no answer
		want       want
		isUnknown  bool
	}{
		{"404 IDENTIFIER_NOT_FOUND", fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: 404, Code: "IDENTIFIER_NOT_FOUND"}}, 404, unknown, true},
		{"422 SERVICE_NOT_APPLICABLE", fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: 422, Code: "SERVICE_NOT_APPLICABLE"}}, 422, unknown, true},
		{"scenario unknown number", fakecarrier.Number{Unknown: true}, 404, unknown, true},
		{"401 UNAUTHENTICATED", fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: 401, Code: "UNAUTHENTICATED"}}, 401, failed, false},
		{"403 PERMISSION_DENIED", fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: 403, Code: "PERMISSION_DENIED"}}, 403, failed, false},
		{"422 UNSUPPORTED_IDENTIFIER", fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: 422, Code: "UNSUPPORTED_IDENTIFIER"}}, 422, failed, false},
		{"429 TOO_MANY_REQUESTS", fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: 429, Code: "TOO_MANY_REQUESTS"}}, 429, failed, false},
		{"500 INTERNAL", fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: 500, Code: "INTERNAL"}}, 500, failed, false},
		{"503 UNAVAILABLE", fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: 503, Code: "UNAVAILABLE"}}, 503, failed, false},
		{"timeout", fakecarrier.Number{Timeout: true}, 0, failed, false},
	}
	for i, c := range cases {
		// A number per case: an unknown number is cached like a result (cache_ttl), so a
		// number reused across cases would carry the previous case's answer.
		num := fmt.Sprintf("4477009011%02d", i)
		c := c
		t.Run(c.name, func(t *testing.T) {
			e.carrier.SetNumber("+"+num, c.n)
			for _, a := range []struct {
				id   string
				want smpp.Status
			}{{"strict", c.want.strict}, {"lenient", c.want.lenient}, {"closed", c.want.closed}, {"bank", c.want.bank}} {
				start := time.Now()
				r := accts[a.id].submit(t, sm{dest: num, text: []byte(otpText)})
				if r.Status() != a.want {
					t.Errorf("%s: %s after %s, want %s", a.id, r.Status(), time.Since(start).Round(time.Millisecond), a.want)
				}
			}
			// The carrier really gave the answer the case is about.
			calls := callsFor(e.carrier, num)
			if len(calls) == 0 {
				t.Fatal("the carrier saw no call for the number")
			}
			for _, call := range calls {
				if call.Endpoint == fakecarrier.EndpointSimSwapCheck && call.Status != c.httpStatus {
					t.Fatalf("carrier answered %s with %d %s, want %d", call.Endpoint, call.Status, call.Code, c.httpStatus)
				}
			}
		})
	}
	// The audit tells them apart too: the strict account's records name the unknown number
	// or the failed look-up.
	recs := e.waitAudit(t, "one audit record per case for the strict account", func(recs []map[string]any) bool {
		n := 0
		for _, r := range recs {
			if r["account"] == "strict" {
				n++
			}
		}
		return n == len(cases)
	})
	for i, c := range cases {
		suffix := fmt.Sprintf("11%02d", i)
		for _, r := range recs {
			if r["account"] != "strict" || !strings.HasSuffix(fmt.Sprint(r["destination"]), suffix) {
				continue
			}
			reason := fmt.Sprint(r["reason"])
			if c.isUnknown != strings.Contains(reason, "number unknown to the carrier") || c.isUnknown == strings.Contains(reason, "look-up failed") {
				t.Errorf("%s: audit reason %q", c.name, reason)
			}
		}
	}
}
