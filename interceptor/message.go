// Package interceptor decides what happens to submit-path PDUs that carry one-time
// passwords: classify (is it an OTP?) → look up (has the destination's SIM been swapped, is
// it diverted?) → decide (allow, reject, reroute, accept-and-drop, flag). It knows nothing
// about sockets: the relay offers it PDUs through a hook that cmd/ wires.
package interceptor

import (
	"time"

	"github.com/smppguard/smppguard/smpp"
)

// Message is the per-request state the steps annotate, CoreDNS-request style: the PDU is
// read-only; steps fill in what they derive.
type Message struct {
	// Account is the ESME's system_id.
	Account string
	// Route is the route the message would be relayed over ("" when not known, e.g.
	// pass-through); a route's policy overrides the account's.
	Route string
	// PDU is the submit_sm, data_sm or submit_multi as received. Read-only.
	PDU *smpp.PDU
	// Received is when the proxy read it. Left zero, Submit sets it from its clock when the
	// message needs it (an OTP, a concatenated part); a message that is not an OTP keeps it
	// zero.
	Received time.Time

	// Set by Decode.
	Command          smpp.CommandID
	Source           string // source_addr
	Dest             string // destination_addr as sent (first SME destination for submit_multi)
	plusDest         string // "+" + Dest, set by Decode (sharing its allocation)
	DestTON, DestNPI byte
	DataCoding       byte
	// Text is the decoded text of this PDU (UDH stripped); empty when Binary.
	Text string
	// Binary is true for 8-bit data codings that are not text; text rules never match it.
	Binary bool
	// Part is set for one part of a concatenated message (UDH IE 0x00/0x08 or sar_* TLVs).
	Part *Part

	// Set by the classify step.
	OTP  bool
	Rule string // name of the rule that marked it an OTP

	// Set by the look-up and decide steps.
	MSISDN        string // destination in E.164 with '+', "" when it is not a phone number
	CorrelationID string // x-correlator sent to the carrier API
	Signals       []SignalOutcome
	Decision      Decision

	// sigBuf holds Signals when a decision from the cache has at most two (no allocation:
	// a message reused by its caller reuses them too).
	sigBuf [2]SignalOutcome
}

// Part identifies one part of a concatenated message.
type Part struct {
	Ref   uint16 // concatenation reference (8- or 16-bit in the UDH, sar_msg_ref_num)
	Total int    // total parts, 1..255
	Seq   int    // this part, 1..Total
}

// SignalOutcome is one look-up's result as the decision and the audit record see it.
type SignalOutcome struct {
	Signal  string        `json:"signal"`           // sim_swap, call_forwarding, device_swap, roaming
	Source  string        `json:"source"`           // provider name
	Risky   bool          `json:"risky"`            // the policy's threshold was crossed
	Detail  string        `json:"detail,omitempty"` // e.g. "swapped within 72h", "unconditional forwarding active"
	Age     time.Duration `json:"age_ns,omitempty"` // how old the answer is (cached)
	Latency time.Duration `json:"latency_ns"`       // how long the look-up took
	Cached  bool          `json:"cached,omitempty"`
	unknown bool          // the carrier does not know the number (next to Cached: packs the struct)
	Err     string        `json:"error,omitempty"` // look-up failure; the fail policy applied
	// CorrelationID is the x-correlator of the call that answered, when it differs from the
	// message's own (a cached or shared answer).
	CorrelationID string `json:"correlation_id,omitempty"`
}

// Action is what the interceptor decides for an OTP.
type Action string

// Actions.
const (
	ActionAllow   Action = "allow"   // relay as usual
	ActionReject  Action = "reject"  // answer the ESME with Decision.Status
	ActionReroute Action = "reroute" // relay over Decision.Route
	ActionDrop    Action = "drop"    // answer success with a proxy message_id; a failed receipt if asked for
	ActionFlag    Action = "flag"    // allow, but record and count it
)

// Decision is the outcome for one message (all parts of a concatenated message share it).
type Decision struct {
	Action Action      `json:"action"`
	Status smpp.Status `json:"status,omitempty"` // reject: the command_status
	Route  string      `json:"route,omitempty"`  // reroute: the route name
	// Drop: the receipt to send when registered_delivery asks for one.
	ReceiptStat string `json:"receipt_stat,omitempty"` // REJECTD or UNDELIV
	ReceiptErr  int    `json:"receipt_err,omitempty"`
	Reason      string `json:"reason"` // in words, for the audit record
	// Cause is the check and outcome class that decided it ("sim_swap:risky",
	// "call_forwarding:error"), "none", "saturated", "error" or "panic": a label for metrics.
	Cause  string `json:"cause,omitempty"`
	Shadow bool   `json:"shadow,omitempty"` // decided but not enforced (shadow mode)
}
