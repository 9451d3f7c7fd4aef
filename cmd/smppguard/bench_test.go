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

// The reported round of a scenario is the one with the median ratio (the lower middle one for
// an even count), carrying every round's figures and the ratio range; rows without a ratio
// take the median throughput. The cached-OTP ratios are per round, then the median.
func TestBenchMedianRound(t *testing.T) {
	cases := []struct {
		name             string
		rounds           []benchResult
		wantTP           float64
		wantRatio        float64
		wantMin, wantMax float64
	}{
		{"odd", []benchResult{{Throughput: 10, Ratio: 0.5}, {Throughput: 30, Ratio: 0.2}, {Throughput: 20, Ratio: 0.4}}, 20, 0.4, 0.2, 0.5},
		{"even: lower middle", []benchResult{{Throughput: 1, Ratio: 0.3}, {Throughput: 2, Ratio: 0.1}, {Throughput: 3, Ratio: 0.4}, {Throughput: 4, Ratio: 0.2}}, 4, 0.2, 0.1, 0.4},
		{"one round", []benchResult{{Throughput: 7, Ratio: 0.7}}, 7, 0.7, 0.7, 0.7},
		{"no ratio: median throughput", []benchResult{{Throughput: 9}, {Throughput: 3}, {Throughput: 5}}, 5, 0, 0, 0},
	}
	for _, c := range cases {
		got := medianRound(c.rounds)
		if got.Throughput != c.wantTP || got.Ratio != c.wantRatio || got.RatioMin != c.wantMin || got.RatioMax != c.wantMax || len(got.Rounds) != len(c.rounds) {
			t.Errorf("%s: got throughput %v ratio %v range %v–%v, %d rounds", c.name, got.Throughput, got.Ratio, got.RatioMin, got.RatioMax, len(got.Rounds))
		}
		for i, r := range got.Rounds {
			if r.Throughput != c.rounds[i].Throughput {
				t.Errorf("%s: round %d listed as %v, want %v (in run order)", c.name, i, r.Throughput, c.rounds[i].Throughput)
			}
		}
	}
	round := func(plain, cached float64) []benchResult {
		return []benchResult{{Scenario: sameTextsPooled, Throughput: 100}, {Scenario: plainOTPAccount, Throughput: plain}, {Scenario: otpCached, Throughput: cached}}
	}
	got := medianCachedRatios([][]benchResult{round(100, 95), round(100, 70), round(100, 80)})
	if got == nil || got.VsPlain != 0.8 || got.VsNoPolicy != 0.8 {
		t.Fatalf("median cached ratios %+v, want 0.8 and 0.8", got)
	}
	if medianCachedRatios([][]benchResult{{{Scenario: "direct", Throughput: 1}}}) != nil {
		t.Fatal("cached ratios without OTP rows")
	}
}
