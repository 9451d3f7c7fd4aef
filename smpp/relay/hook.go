package relay

import (
	"context"
	"sync"
	"time"

	"github.com/smppguard/smppguard/smpp"
)

// SubmitHook sees every submit_sm, data_sm and submit_multi an ESME sends, before it is
// relayed. The OTP interceptor plugs in here (cmd/ wires it; this package knows nothing of
// OTPs). A nil hook relays everything.
type SubmitHook interface {
	// Submit is called on the ESME session's reader goroutine and must not block: it returns
	// a Verdict at once, or Verdict{Action: Pending} and later calls req.Resolve exactly once,
	// from any goroutine. Other PDUs of the session keep flowing while a request is pending;
	// its response is sent when it is resolved (out-of-order responses are legal SMPP).
	Submit(req *SubmitRequest) Verdict
}

// SubmitHookFunc adapts a function to SubmitHook.
type SubmitHookFunc func(req *SubmitRequest) Verdict

// Submit calls f.
func (f SubmitHookFunc) Submit(req *SubmitRequest) Verdict { return f(req) }

// Action is what the relay does with a submit-path PDU.
type Action uint8

const (
	// Pass relays the PDU to its route as usual.
	Pass Action = iota
	// Pending means the hook will call Resolve later.
	Pending
	// Reject answers the ESME with Verdict.Status (a non-zero command_status); nothing is relayed.
	Reject
	// Reroute relays the PDU over the pooled route named Verdict.Route instead of its own
	// route; its receipt comes back to the account by message_id correlation.
	Reroute
	// Answer answers the ESME itself with Verdict.Status (usually ESME_ROK) and
	// Verdict.MessageID; nothing is relayed. Relay.Deliver can send it a receipt.
	Answer
)

func (a Action) String() string {
	switch a {
	case Pass:
		return "pass"
	case Pending:
		return "pending"
	case Reject:
		return "reject"
	case Reroute:
		return "reroute"
	case Answer:
		return "answer"
	}
	return "action?"
}

// Verdict is a hook's decision.
type Verdict struct {
	Action    Action
	Status    smpp.Status
	Route     string
	MessageID string
	// AfterAnswer, if set with Answer, runs once the response is queued to the ESME: a
	// receipt queued from it (Relay.Deliver) cannot overtake the submit_sm_resp.
	AfterAnswer func()
}

// Interests is an optional interface of a SubmitHook: when implemented, the hook is offered
// only the submits of accounts for which Intercepts returns true; other accounts' submits
// are relayed without building a SubmitRequest.
type Interests interface {
	Intercepts(account, route string) bool
}

// SubmitRequest is one submit-path PDU offered to the hook.
type SubmitRequest struct {
	// Ctx is cancelled when the ESME session closes.
	Ctx context.Context
	// Account is the ESME's system_id as configured.
	Account string
	// Route is the pooled route the PDU would be relayed over ("" for pass-through).
	Route string
	// Session is the ESME session (read its identity; do not write to it).
	Session *smpp.Session
	// PDU is the request as received. Read-only: the relay forwards these bytes.
	PDU *smpp.PDU

	once sync.Once
	// What Resolve needs to carry a verdict out (fields, not a closure: one allocation less
	// per intercepted submit).
	e     *esme
	start time.Time
	route string
}

// Resolve delivers the decision of a Pending verdict. Calls after the first are ignored.
func (r *SubmitRequest) Resolve(v Verdict) {
	r.once.Do(func() {
		if v.Action == Pending {
			v = Verdict{Action: Reject, Status: smpp.StatusSysErr}
		}
		r.e.apply(r.PDU, v, r.start, r.route)
	})
}
