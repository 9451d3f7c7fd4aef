// Package admin is smppguard's admin HTTP listener: health and readiness probes, JSON
// views of the ESME sessions, upstream binds and recent OTP decisions, a manual check,
// a config reload, and Prometheus metrics. It is separate from the SMPP listeners and
// knows nothing of the relay or the interceptor: the caller implements Source.
package admin

import (
	"context"
	"errors"
	"time"
)

// Source is what the admin listener reads and drives. The caller (cmd/smppguard)
// implements it over the relay, the interceptor and the check guards. Every method may be
// called concurrently, from HTTP handlers and from Prometheus scrapes.
type Source interface {
	// Sessions lists the bound ESME sessions.
	Sessions() []SessionInfo
	// Links lists the upstream binds (one entry per bind slot).
	Links() []LinkInfo
	// Ready reports whether the proxy can serve: config loaded and at least one upstream
	// bind per route up. why explains a false answer.
	Ready() (ready bool, why string)
	// Check runs the configured checks for msisdn as an OTP from account would get them
	// now — from every account with a policy when account is "", as the CLI `check` does —
	// and returns a JSON-able value. Wrap ErrInvalid or ErrNotFound to choose a 400 or 404
	// answer; other errors give 500 (504 on a deadline).
	Check(ctx context.Context, account, msisdn string) (any, error)
	// Reload re-reads the config. An error means the new config was refused (answered
	// 400 with the reason); the running config stays.
	Reload(ctx context.Context) (summary any, err error)
	// Counters is a snapshot of the counters, read at scrape time.
	Counters() Counters
}

// SessionInfo describes one ESME session.
type SessionInfo struct {
	Account      string    `json:"account"`
	BindType     string    `json:"bind_type"`
	Peer         string    `json:"peer"`
	State        string    `json:"state"`
	Since        time.Time `json:"since,omitzero"`
	WindowInUse  int       `json:"window_in_use"`
	PeerInFlight int       `json:"peer_in_flight"`
	RxPDUs       uint64    `json:"rx_pdus"`
	TxPDUs       uint64    `json:"tx_pdus"`
	Throttled    uint64    `json:"throttled"`
	Timeouts     uint64    `json:"timeouts"`
}

// LinkInfo describes one upstream bind slot.
type LinkInfo struct {
	Upstream   string    `json:"upstream"`
	Slot       int       `json:"slot"`
	BindType   string    `json:"bind_type"`
	State      string    `json:"state"`
	Since      time.Time `json:"since,omitzero"`
	Reconnects uint64    `json:"reconnects"`
	LastError  string    `json:"last_error,omitempty"`
	InFlight   int       `json:"in_flight"`
}

// Counters is a snapshot of the proxy's counters for the metrics.
type Counters struct {
	// Relay counts relay events by name: binds_ok, binds_refused, receipts_matched,
	// receipts_unknown, mos_routed, queued, queue_full, queue_delivered, upstream_failures…
	Relay map[string]uint64
	// QueueDepth is the number of receipts and MOs held per account.
	QueueDepth map[string]int
	// OTP counts interceptor messages: seen, otps, saturated, panics (the singular forms
	// otp and panic are accepted too).
	OTP map[string]uint64
	// Decisions counts OTP decisions by action.
	Decisions map[string]uint64
	// Lookups holds the look-up counters per provider.
	Lookups map[string]ProviderCounters
	// Rules counts OTP decisions by the rule that marked the message.
	Rules map[string]uint64
	// Causes counts OTP decisions by "action|cause" (cause: "sim_swap:risky", "none", ...).
	Causes map[string]uint64
	// Reloads counts configuration reloads by result: ok, refused.
	Reloads map[string]uint64
	// ESMEPDUs counts the PDUs exchanged with each account's ESME sessions since start,
	// sessions already closed included (smppguard_esme_pdus_total). The Source keeps it
	// monotonic: a session that binds and closes between two scrapes is counted.
	ESMEPDUs map[string]PDUTotals
	// BindRefusals counts refused binds by reason: bad_credentials, unknown_system_id,
	// lockout, bind_rate, source_cidr, bind_type, max_binds, passthrough_refused_by_smsc,
	// upstream_unreachable, shutting_down (their sum is Relay["binds_refused"]).
	BindRefusals map[string]uint64
	// Connections is the number of open ESME connections, bound or not; MaxConnections is
	// listen.max_connections (0: not exposed); ConnectionsRefused counts the connections
	// closed at once because MaxConnections were open.
	Connections, MaxConnections int
	ConnectionsRefused          uint64
	// Limits are the configured limits of each account.
	Limits map[string]AccountLimits
	// QueueOverflows counts sessions closed because their peer did not read what was sent
	// to it (its send queue full: smpp.ErrQueueFull), since start: ESME sessions by
	// account (ESME) and upstream sessions by upstream (Upstream).
	QueueOverflows QueueOverflows
}

// AccountLimits are an account's configured limits; 0 is unlimited.
type AccountLimits struct {
	TPS      float64 // accounts[].tps, per session
	MaxBinds int     // accounts[].max_binds
}

// QueueOverflows are sessions closed for not reading, by account and by upstream.
type QueueOverflows struct {
	ESME, Upstream map[string]uint64
}

// PDUTotals are PDU counts by direction: Rx from the ESME, Tx to it.
type PDUTotals struct {
	Rx, Tx uint64
}

// ProviderCounters are one look-up provider's counters.
type ProviderCounters struct {
	Hits, Misses, Calls, Shed, BreakerOpens uint64
	ErrorsByKind                            map[string]uint64
	BreakerState                            string // "closed", "open", "half-open"
}

// Errors a Source may wrap to choose the HTTP status of a failed Check.
var (
	ErrInvalid  = errors.New("invalid request")
	ErrNotFound = errors.New("not found")
)
