package main

import "testing"

// TestOTPCachedRatios: "otp cached" is compared with plain messages through the same account
// (issue 6's target) and with the same texts through an account without a policy, whatever
// the rows' order; a missing baseline leaves its ratio out.
func TestOTPCachedRatios(t *testing.T) {
	rows := []benchResult{
		{Scenario: "direct", Throughput: 1000},
		{Scenario: sameTextsPooled, Throughput: 500},
		{Scenario: plainOTPAccount, Throughput: 400},
		{Scenario: otpCached, Throughput: 300},
	}
	got := otpCachedRatios(rows)
	if got == nil || got.VsPlain != 0.75 || got.VsNoPolicy != 0.6 || got.Target != 0.9 {
		t.Fatalf("ratios %+v, want 0.75 vs plain, 0.6 vs no policy, target 0.9", got)
	}
	if got := otpCachedRatios(append([]benchResult(nil), rows[2:]...)); got == nil || got.VsPlain != 0.75 || got.VsNoPolicy != 0 {
		t.Fatalf("without the pooled row: %+v", got)
	}
	if got := otpCachedRatios(rows[:3]); got != nil {
		t.Fatalf("without otp cached: %+v", got)
	}
	if got := otpCachedRatios(rows[3:]); got != nil {
		t.Fatalf("without baselines: %+v", got)
	}
	if ratioText(0) != "—" || ratioText(0.567) != "0.57" {
		t.Fatalf("ratioText: %q %q", ratioText(0), ratioText(0.567))
	}
}
