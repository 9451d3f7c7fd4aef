package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakecarrier"
)

// Tokens expire by time: the fake carrier issues tokens valid for 2 s (expires_in: 2) and
// OTPs to numbers not in the cache keep coming for more than two lifetimes. Every OTP is
// decided on the carrier's answer (the swap detected, not the fail policy), the proxy asked
// for new tokens as they aged (more than one token request, but not one per call), and no API
// call carried an expired token (the fake answers those 401 without a client).
func TestE2EOTPTokenExpiry(t *testing.T) {
	const ttl = 2 * time.Second
	e := startOTPEnvWith(t, otpEnvOptions{scenario: func(sc *fakecarrier.Scenario) {
		for i := range sc.Clients {
			sc.Clients[i].TokenTTL = ttl
		}
	}})
	bank := bindTRX(t, e.proc.addr, "bank", "bankpw")
	start := time.Now()
	otps := 0
	for time.Since(start) < 2*ttl+time.Second {
		num := fmt.Sprintf("4477009014%02d", otps)
		e.carrier.SetNumber("+"+num, fakecarrier.Number{SimChangedAgo: dur(time.Hour)})
		if r := bank.submit(t, sm{dest: num, text: []byte(otpText)}); r.Status() != smpp.StatusSubmitFail {
			t.Fatalf("OTP %d after %s: %s, want ESME_RSUBMITFAIL (the swap detected; anything else is the fail policy)",
				otps, time.Since(start).Round(time.Millisecond), r.Status())
		}
		otps++
		time.Sleep(100 * time.Millisecond) // pacing: OTPs spread over the tokens' lifetimes
	}
	elapsed := time.Since(start)
	tokens, api := 0, 0
	for _, c := range e.carrier.Calls() {
		switch c.Endpoint {
		case fakecarrier.EndpointToken:
			tokens++
			if c.Status != 200 {
				t.Errorf("token request answered %d %s", c.Status, c.Code)
			}
		case fakecarrier.EndpointDiscovery:
		default:
			api++
			if c.Status == 401 || c.ClientID != "smppguard" {
				t.Errorf("API call %s at %s with an expired or unknown token: status %d %s", c.Endpoint, c.Time.Format("15:04:05.000"), c.Status, c.Code)
			}
		}
	}
	t.Logf("%d OTPs, %d API calls, %d token requests in %s", otps, api, tokens, elapsed.Round(time.Millisecond))
	if api != 2*otps {
		t.Errorf("%d API calls for %d OTPs, want 2 each", api, otps)
	}
	// A token is used until half its lifetime is left (refresh_before is capped at half
	// the lifetime), so at most one request per second here, plus the first.
	if tokens < 2 || tokens > int(elapsed/(ttl/2))+2 {
		t.Errorf("%d token requests in %s with %s tokens", tokens, elapsed.Round(time.Millisecond), ttl)
	}
}
