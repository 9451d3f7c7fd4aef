package interceptor

import (
	"fmt"
	"time"

	"github.com/smppguard/smppguard/checks"
	"github.com/smppguard/smppguard/smpp"
)

// Outcome is what a check's result (or its failure) leads to.
type Outcome struct {
	Action      Action
	Status      smpp.Status // reject; default ESME_RSUBMITFAIL
	Route       string      // reroute
	ReceiptStat string      // drop; default REJECTD
	ReceiptErr  int         // drop
}

// CheckPolicy is one look-up an account's OTPs get.
type CheckPolicy struct {
	Signal   checks.Signal
	Provider string
	// MaxAge is the swap window for sim_swap and device_swap (e.g. 72h).
	MaxAge time.Duration
	// OnRisk applies when the signal crosses the threshold (swapped within MaxAge, unconditional
	// forwarding active, device swapped, roaming).
	OnRisk Outcome
	// OnError is the fail policy when the look-up errors or times out: allow (fail open),
	// reject (fail closed) or any other action.
	OnError Outcome
	// OnUnknown applies when the carrier does not know the number; default allow.
	OnUnknown Outcome

	risky, clean string // detail texts, precomputed by New
	cleanReason  string // "<signal>: <clean>", precomputed by New
	// Precomputed by New: the reasons Decide gives for a risky signal whose detail is risky
	// and for an unknown number, and the causes of each outcome class ("<signal>:risky").
	riskyReason, unknownReason           string
	riskyFor, unknownFor                 Action // the actions they were computed for
	causeError, causeUnknown, causeRisky string
}

// Saturation is what happens when look-ups are saturated.
type Saturation string

const (
	// SaturatedThrottle answers the OTP with ESME_RTHROTTLED: the application retries later.
	SaturatedThrottle Saturation = "throttle"
	// SaturatedFailPolicy applies each check's OnError outcome.
	SaturatedFailPolicy Saturation = "fail_policy"
)

// Policy is an account's OTP policy.
type Policy struct {
	Name   string
	Rules  *RuleSet
	Decode DecodeOptions
	Checks []CheckPolicy
	// Shadow decides and records everything and enforces nothing.
	Shadow bool
	// Deadline bounds all look-ups of one message, so that the ESME gets its response well
	// before its own response timer. Default 2 s.
	Deadline time.Duration
	// OnSaturated: see Saturation. Default throttle.
	OnSaturated Saturation
	// DefaultCC is the country code for national destination numbers.
	DefaultCC string

	allClean string // the decision reason when every check is clean, precomputed by New
}

// severity orders actions: the most severe outcome of all checks wins (reject > drop >
// reroute > flag > allow), whatever made each check choose it (risk, error, unknown number).
// Between outcomes of the same action the first check in policy order wins, with its status,
// route or receipt: Decide and failPolicy replace the outcome kept only on a strictly more
// severe one.
func severity(a Action) int {
	switch a {
	case ActionReject:
		return 5
	case ActionDrop:
		return 4
	case ActionReroute:
		return 3
	case ActionFlag:
		return 2
	case ActionAllow, "":
		return 1
	}
	return 0
}

// Validate checks a policy's outcomes.
func (p *Policy) Validate() error {
	for i, c := range p.Checks {
		for _, o := range []struct {
			name string
			o    Outcome
		}{{"on_risk", c.OnRisk}, {"on_error", c.OnError}, {"on_unknown", c.OnUnknown}} {
			if severity(o.o.Action) == 0 {
				return fmt.Errorf("policy %q check %d (%s): %s: unknown action %q", p.Name, i, c.Signal, o.name, o.o.Action)
			}
			if o.o.Action == ActionReroute && o.o.Route == "" {
				return fmt.Errorf("policy %q check %d (%s): %s: reroute needs a route", p.Name, i, c.Signal, o.name)
			}
		}
	}
	return nil
}

func (o Outcome) decision(reason string) Decision {
	d := Decision{Action: o.Action, Status: o.Status, Route: o.Route, ReceiptStat: o.ReceiptStat, ReceiptErr: o.ReceiptErr, Reason: reason}
	if d.Action == "" {
		d.Action = ActionAllow
	}
	if d.Action == ActionReject && d.Status == 0 {
		d.Status = smpp.StatusSubmitFail
	}
	if d.Action == ActionDrop && d.ReceiptStat == "" {
		d.ReceiptStat = "REJECTD"
	}
	return d
}
