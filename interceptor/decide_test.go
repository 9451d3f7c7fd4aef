package interceptor

import (
	"strings"
	"testing"

	"github.com/smppguard/smppguard/checks"
	"github.com/smppguard/smppguard/smpp"
)

// Every combination of two checks' outcomes (clean, risky, error, unknown) under one policy,
// with the expected decision written out.
func TestDecideTable(t *testing.T) {
	p := &Policy{Name: "t", Checks: []CheckPolicy{
		{Signal: checks.SimSwap, Provider: "op", OnRisk: Outcome{Action: ActionReject, Status: smpp.StatusSubmitFail}, OnError: Outcome{Action: ActionAllow}, OnUnknown: Outcome{Action: ActionAllow}},
		{Signal: checks.CallForwarding, Provider: "op", OnRisk: Outcome{Action: ActionReroute, Route: "voice"}, OnError: Outcome{Action: ActionFlag}, OnUnknown: Outcome{Action: ActionDrop, ReceiptStat: "UNDELIV"}},
	}}
	state := map[byte]SignalOutcome{
		'C': {Detail: "clean"},
		'R': {Risky: true, Detail: "risky"},
		'E': {Err: "timeout"},
		'U': {unknown: true, Detail: "unknown"},
	}
	cases := []struct {
		sim, cf byte
		want    Action
	}{
		{'C', 'C', ActionAllow}, {'C', 'R', ActionReroute}, {'C', 'E', ActionFlag}, {'C', 'U', ActionDrop},
		{'R', 'C', ActionReject}, {'R', 'R', ActionReject}, {'R', 'E', ActionReject}, {'R', 'U', ActionReject},
		{'E', 'C', ActionAllow}, {'E', 'R', ActionReroute}, {'E', 'E', ActionFlag}, {'E', 'U', ActionDrop},
		{'U', 'C', ActionAllow}, {'U', 'R', ActionReroute}, {'U', 'E', ActionFlag}, {'U', 'U', ActionDrop},
	}
	for _, tc := range cases {
		t.Run(string([]byte{tc.sim, '_', tc.cf}), func(t *testing.T) {
			sim, cf := state[tc.sim], state[tc.cf]
			sim.Signal, cf.Signal = "sim_swap", "call_forwarding"
			d := Decide(p, []SignalOutcome{sim, cf})
			if d.Action != tc.want {
				t.Fatalf("action %s, want %s (reason %q)", d.Action, tc.want, d.Reason)
			}
			switch d.Action {
			case ActionReject:
				if d.Status != smpp.StatusSubmitFail {
					t.Errorf("status %s", d.Status)
				}
			case ActionReroute:
				if d.Route != "voice" {
					t.Errorf("route %q", d.Route)
				}
			case ActionDrop:
				if d.ReceiptStat != "UNDELIV" {
					t.Errorf("receipt stat %q", d.ReceiptStat)
				}
			}
			if !strings.Contains(d.Reason, "sim_swap") || !strings.Contains(d.Reason, "call_forwarding") {
				t.Errorf("reason %q does not name both checks", d.Reason)
			}
		})
	}
}

func TestOutcomeDefaults(t *testing.T) {
	if d := (Outcome{Action: ActionReject}).decision("x"); d.Status != smpp.StatusSubmitFail {
		t.Errorf("reject without status: %s, want ESME_RSUBMITFAIL", d.Status)
	}
	if d := (Outcome{Action: ActionDrop}).decision("x"); d.ReceiptStat != "REJECTD" {
		t.Errorf("drop without stat: %q", d.ReceiptStat)
	}
	if d := (Outcome{}).decision("x"); d.Action != ActionAllow {
		t.Errorf("empty outcome: %s", d.Action)
	}
	if err := (&Policy{Checks: []CheckPolicy{{OnRisk: Outcome{Action: ActionReroute}}}}).Validate(); err == nil {
		t.Error("reroute without route validated")
	}
	if err := (&Policy{Checks: []CheckPolicy{{OnRisk: Outcome{Action: "explode"}}}}).Validate(); err == nil {
		t.Error("unknown action validated")
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct {
		in   string
		keep int
		want string
	}{{"+447700900123", 4, "*********0123"}, {"123", 4, "***"}, {"", 4, ""}, {"447700900123", 0, "************"}} {
		if got := Mask(tc.in, tc.keep); got != tc.want {
			t.Errorf("Mask(%q, %d) = %q, want %q", tc.in, tc.keep, got, tc.want)
		}
	}
}

// The reasons precomputed for clean checks read exactly as the ones Decide formats, and a
// clean decision formats nothing.
func TestDecidePrecomputedReasons(t *testing.T) {
	checksOf := func() []CheckPolicy {
		return []CheckPolicy{
			{Signal: checks.SimSwap, Provider: "op", MaxAge: 72 * 3600e9, OnRisk: Outcome{Action: ActionReject}},
			{Signal: checks.CallForwarding, Provider: "op", OnRisk: Outcome{Action: ActionFlag}},
		}
	}
	prepared := &Policy{Name: "p", Checks: checksOf()}
	clean := make([]string, len(prepared.Checks))
	for i := range prepared.Checks {
		prepared.Checks[i].prepare()
		clean[i] = prepared.Checks[i].cleanReason
	}
	prepared.allClean = strings.Join(clean, "; ")
	raw := &Policy{Name: "p", Checks: checksOf()}
	for i := range raw.Checks {
		raw.Checks[i].risky, raw.Checks[i].clean = prepared.Checks[i].risky, prepared.Checks[i].clean
	}
	for _, risky := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		sigs := make([]SignalOutcome, 2)
		for i, c := range prepared.Checks {
			sigs[i] = SignalOutcome{Signal: string(c.Signal), Risky: risky[i], Detail: c.clean}
			if risky[i] {
				sigs[i].Detail = c.risky
			}
		}
		got, want := Decide(prepared, sigs), Decide(raw, sigs)
		if got != want {
			t.Fatalf("%v: prepared %+v, formatted %+v", risky, got, want)
		}
	}
	sigs := []SignalOutcome{{Signal: "sim_swap", Detail: prepared.Checks[0].clean}, {Signal: "call_forwarding", Detail: prepared.Checks[1].clean}}
	if got := Decide(prepared, sigs).Reason; got != "sim_swap: no SIM swap within 72h; call_forwarding: no unconditional call forwarding" {
		t.Fatalf("clean reason %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { Decide(prepared, sigs) }); n != 0 && !raceEnabled() {
		t.Fatalf("a clean decision allocates %v times", n)
	}
}
