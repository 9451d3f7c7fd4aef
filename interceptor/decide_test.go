package interceptor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

// perSignal is a checks.Provider answering per number and signal: C clean, R risky, E an
// error, U a number unknown to the carrier, T no answer before the deadline.
type perSignal struct {
	mu    sync.Mutex
	state map[string]map[checks.Signal]byte
}

func (p *perSignal) Name() string { return "op" }

func (p *perSignal) set(msisdn string, sim, cf byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		p.state = map[string]map[checks.Signal]byte{}
	}
	p.state[msisdn] = map[checks.Signal]byte{checks.SimSwap: sim, checks.CallForwarding: cf}
}

func (p *perSignal) Check(ctx context.Context, q checks.Query) (checks.Result, error) {
	p.mu.Lock()
	st := p.state[q.MSISDN][q.Signal]
	p.mu.Unlock()
	switch st {
	case 'R':
		return checks.Result{Signal: q.Signal, Source: "op", Swapped: true, Forwarding: true, FetchedAt: time.Now()}, nil
	case 'E':
		return checks.Result{}, fmt.Errorf("carrier: %w", checks.ErrUnavailable)
	case 'U':
		return checks.Result{}, fmt.Errorf("carrier: %w", checks.ErrUnknownNumber)
	case 'T':
		<-ctx.Done()
		return checks.Result{}, fmt.Errorf("carrier: %w", ctx.Err())
	}
	return checks.Result{Signal: q.Signal, Source: "op", FetchedAt: time.Now()}, nil
}

// The decision table over policies: different actions per check (reject with a custom
// status, reroute, drop with its receipt, flag), fail open, fail closed and a named action on
// error and on a deadline, unknown numbers (default allow, or an action; a destination that
// is not a number fails the look-up), shadow mode, and precedence when the two checks
// disagree: the most severe action wins (reject > drop > reroute > flag > allow), and between
// two outcomes of the same action the first check in policy order wins (its status, route or
// receipt). Each case runs through Decide (pure) and through the Interceptor with a provider
// (the signals as the look-up builds them; shadow is applied when the decision is recorded).
func TestDecidePolicies(t *testing.T) {
	type check struct{ risk, err, unknown Outcome }
	policy := func(name string, sim, cf check) *Policy {
		return &Policy{Name: name, Deadline: 100 * time.Millisecond, Checks: []CheckPolicy{
			{Signal: checks.SimSwap, Provider: "op", MaxAge: 72 * time.Hour, OnRisk: sim.risk, OnError: sim.err, OnUnknown: sim.unknown},
			{Signal: checks.CallForwarding, Provider: "op", OnRisk: cf.risk, OnError: cf.err, OnUnknown: cf.unknown},
		}}
	}
	var (
		allowO  = Outcome{Action: ActionAllow}
		flagO   = Outcome{Action: ActionFlag}
		rejectO = Outcome{Action: ActionReject} // status defaults to ESME_RSUBMITFAIL
		rejDst  = Outcome{Action: ActionReject, Status: smpp.StatusInvDstAdr}
		rejThr  = Outcome{Action: ActionReject, Status: smpp.StatusThrottled}
		rejSys  = Outcome{Action: ActionReject, Status: smpp.StatusSysErr}
		voice   = Outcome{Action: ActionReroute, Route: "voice"}
		backup  = Outcome{Action: ActionReroute, Route: "backup"}
		dropO   = Outcome{Action: ActionDrop} // receipt stat defaults to REJECTD
		dropUnd = Outcome{Action: ActionDrop, ReceiptStat: "UNDELIV", ReceiptErr: 7}
	)
	policies := map[string]*Policy{
		// Fail open; a custom reject status; reroute on forwarding; unknown numbers default
		// to allow (no on_unknown set).
		"open": policy("open", check{risk: rejDst, err: allowO}, check{risk: voice, err: allowO}),
		// Fail closed with a status per check; drop with its own receipt on a swap, flag on
		// forwarding; unknown numbers rejected (sim) or flagged (cf).
		"closed": policy("closed", check{risk: dropUnd, err: rejThr, unknown: rejDst}, check{risk: flagO, err: rejSys, unknown: flagO}),
		// Named actions on error: drop (sim), reroute (cf); unknown numbers flagged or dropped.
		"named": policy("named", check{risk: voice, err: dropO, unknown: flagO}, check{risk: backup, err: voice, unknown: dropUnd}),
		// Both checks lead to the same actions with different parameters: the first wins.
		"ties": policy("ties", check{risk: rejectO, err: voice, unknown: dropO}, check{risk: rejThr, err: backup, unknown: dropUnd}),
	}
	shadow := *policies["open"]
	shadow.Name, shadow.Shadow = "shadow", true
	shadow.Checks = append([]CheckPolicy(nil), shadow.Checks...)
	policies["shadow"] = &shadow

	want := func(a Action, o Outcome, cause string) Decision {
		d := o.decision("")
		d.Action, d.Cause = a, cause
		return d
	}
	const notNumber = "BANKAPP" // an alphanumeric destination: the look-ups fail
	cases := []struct {
		policy  string
		sim, cf byte // C R E U T; '-' with notNumber
		dest    string
		want    Decision
	}{
		{"open", 'C', 'C', "", Decision{Action: ActionAllow, Cause: "none"}},
		{"open", 'R', 'C', "", want(ActionReject, rejDst, "sim_swap:risky")},
		{"open", 'C', 'R', "", want(ActionReroute, voice, "call_forwarding:risky")},
		{"open", 'R', 'R', "", want(ActionReject, rejDst, "sim_swap:risky")}, // reject > reroute
		{"open", 'E', 'E', "", Decision{Action: ActionAllow, Cause: "none"}}, // fail open
		{"open", 'T', 'C', "", Decision{Action: ActionAllow, Cause: "none"}}, // deadline: fail open
		{"open", 'E', 'R', "", want(ActionReroute, voice, "call_forwarding:risky")},
		{"open", 'U', 'U', "", Decision{Action: ActionAllow, Cause: "none"}}, // on_unknown unset: allow
		{"open", '-', '-', notNumber, Decision{Action: ActionAllow, Cause: "none"}},

		{"closed", 'C', 'C', "", Decision{Action: ActionAllow, Cause: "none"}},
		{"closed", 'R', 'C', "", want(ActionDrop, dropUnd, "sim_swap:risky")},
		{"closed", 'C', 'R', "", want(ActionFlag, flagO, "call_forwarding:risky")},
		{"closed", 'R', 'R', "", want(ActionDrop, dropUnd, "sim_swap:risky")},  // drop > flag
		{"closed", 'E', 'C', "", want(ActionReject, rejThr, "sim_swap:error")}, // fail closed
		{"closed", 'C', 'E', "", want(ActionReject, rejSys, "call_forwarding:error")},
		{"closed", 'T', 'T', "", want(ActionReject, rejThr, "sim_swap:error")},        // both time out: first check's status
		{"closed", 'R', 'E', "", want(ActionReject, rejSys, "call_forwarding:error")}, // an error outranks a risk here
		{"closed", 'U', 'C', "", want(ActionReject, rejDst, "sim_swap:unknown")},
		{"closed", 'C', 'U', "", want(ActionFlag, flagO, "call_forwarding:unknown")},
		{"closed", '-', '-', notNumber, want(ActionReject, rejThr, "sim_swap:error")},

		{"named", 'E', 'C', "", want(ActionDrop, dropO, "sim_swap:error")},
		{"named", 'C', 'E', "", want(ActionReroute, voice, "call_forwarding:error")},
		{"named", 'E', 'E', "", want(ActionDrop, dropO, "sim_swap:error")}, // drop > reroute
		{"named", 'R', 'C', "", want(ActionReroute, voice, "sim_swap:risky")},
		{"named", 'C', 'R', "", want(ActionReroute, backup, "call_forwarding:risky")},
		{"named", 'R', 'R', "", want(ActionReroute, voice, "sim_swap:risky")}, // tie: the first check's route
		{"named", 'U', 'C', "", want(ActionFlag, flagO, "sim_swap:unknown")},
		{"named", 'U', 'U', "", want(ActionDrop, dropUnd, "call_forwarding:unknown")}, // drop > flag
		{"named", 'U', 'R', "", want(ActionReroute, backup, "call_forwarding:risky")}, // reroute > flag

		{"ties", 'R', 'R', "", want(ActionReject, rejectO, "sim_swap:risky")}, // ESME_RSUBMITFAIL, not ESME_RTHROTTLED
		{"ties", 'C', 'R', "", want(ActionReject, rejThr, "call_forwarding:risky")},
		{"ties", 'E', 'E', "", want(ActionReroute, voice, "sim_swap:error")},
		{"ties", 'U', 'U', "", want(ActionDrop, dropO, "sim_swap:unknown")}, // REJECTD, not UNDELIV
		{"ties", 'E', 'U', "", want(ActionDrop, dropUnd, "call_forwarding:unknown")},

		{"shadow", 'R', 'C', "", want(ActionReject, rejDst, "sim_swap:risky")},
		{"shadow", 'C', 'R', "", want(ActionReroute, voice, "call_forwarding:risky")},
		{"shadow", 'C', 'C', "", Decision{Action: ActionAllow, Cause: "none"}},
	}

	prov := &perSignal{}
	rules, err := CompileRules(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	ics := map[string]*Interceptor{}
	for name, p := range policies {
		p.Rules = rules
		ic, err := New(Config{Policies: map[string]*Policy{"bank": p}, Providers: map[string]checks.Provider{"op": prov}, MaskKeep: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ic.Close)
		ics[name] = ic
	}
	kind := map[byte]SignalOutcome{
		'C': {}, 'R': {Risky: true, Detail: "risky"}, 'E': {Err: "unavailable"}, 'T': {Err: "deadline exceeded"},
		'U': {unknown: true, Detail: "number unknown to the carrier"}, '-': {Err: "destination is not a phone number"},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s/%c%c", tc.policy, tc.sim, tc.cf), func(t *testing.T) {
			p := policies[tc.policy]
			check := func(how string, d Decision) {
				t.Helper()
				d.Reason = ""
				w := tc.want
				w.Shadow = how == "interceptor" && p.Shadow
				if d != w {
					t.Errorf("%s: %+v, want %+v", how, d, w)
				}
			}
			sim, cf := kind[tc.sim], kind[tc.cf]
			sim.Signal, cf.Signal = "sim_swap", "call_forwarding"
			check("Decide", Decide(p, []SignalOutcome{sim, cf}))

			dest := tc.dest
			if dest == "" {
				dest = fmt.Sprintf("4477009%05d", i)
				prov.set("+"+dest, tc.sim, tc.cf)
			}
			m := &Message{Account: "bank", PDU: smFrame(t, dest, 0, []byte("Your verification code is 482913"))}
			got := make(chan *Message, 1)
			if ics[tc.policy].Submit(context.Background(), m, func(m *Message) { got <- m }) {
				got <- m
			}
			select {
			case m = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("not decided")
			}
			if !m.OTP {
				t.Fatal("not classified as an OTP")
			}
			check("interceptor", m.Decision)
		})
	}
}
