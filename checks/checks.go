// Package checks asks a carrier about the destination of an OTP before it is relayed: was
// its SIM (or device) swapped recently, are its calls unconditionally forwarded, is it
// roaming.
//
// A Provider answers one Query for one signal. Providers live in sub-packages
// (checks/camara speaks the carrier's CAMARA APIs, checks/static answers from a YAML
// file). A Guard wraps a Provider with what every remote look-up needs: a cache per
// signal, one in-flight call per question, a bound on concurrent calls that sheds load, a
// per-call deadline and a circuit breaker.
//
// Errors are sentinels (ErrUnknownNumber, ErrUnavailable, ...) usable with errors.Is;
// carrier error bodies arrive as *APIError, which unwraps to one of them. An unknown
// number is an error, never "not swapped": the caller decides what it means.
package checks

import (
	"context"
	"time"
)

// Signal names one kind of check.
type Signal string

// The signals a Provider may offer.
const (
	// SimSwap: was the SIM behind the number changed within Query.MaxAge?
	SimSwap Signal = "sim_swap"
	// CallForwarding: is unconditional call forwarding active on the number?
	CallForwarding Signal = "call_forwarding"
	// DeviceSwap: was the number moved to another device within Query.MaxAge?
	DeviceSwap Signal = "device_swap"
	// Roaming: is the device behind the number roaming, and where?
	Roaming Signal = "roaming"
)

// AllSignals returns every known signal, in a stable order.
func AllSignals() []Signal { return []Signal{SimSwap, CallForwarding, DeviceSwap, Roaming} }

// Valid reports whether s is one of the known signals.
func (s Signal) Valid() bool {
	switch s {
	case SimSwap, CallForwarding, DeviceSwap, Roaming:
		return true
	}
	return false
}

// UsesMaxAge reports whether Query.MaxAge matters for s (the swap signals).
func (s Signal) UsesMaxAge() bool { return s == SimSwap || s == DeviceSwap }

// Query is one question to a Provider.
type Query struct {
	// MSISDN is the number in E.164 with a leading '+' (see NormalizeMSISDN).
	MSISDN string
	// Signal is what to check.
	Signal Signal
	// MaxAge is the window for "swapped" (sim_swap, device_swap). CAMARA counts it in whole
	// hours between 1 and 2400; see MaxAgeHours for the rounding.
	MaxAge time.Duration
	// CorrelationID is sent to the carrier as x-correlator; empty means the provider
	// generates one.
	CorrelationID string
}

// Result is a Provider's answer. Only the fields of the queried signal are meaningful.
type Result struct {
	// Signal is the signal that was checked.
	Signal Signal
	// Source is the name of the provider that answered.
	Source string
	// Swapped (sim_swap, device_swap): a swap happened within MaxAge.
	Swapped bool
	// LastChange is the time of the latest swap when the carrier said it (retrieve-date
	// endpoints), nil otherwise. CAMARA may return the activation date of the SIM (or the
	// first use of the number in a device) when no swap ever happened.
	LastChange *time.Time
	// MonitoredDays is the carrier's monitoredPeriod (days) from retrieve-date, 0 when
	// absent: the carrier vouches for "no swap" only that far back.
	MonitoredDays int
	// Forwarding (call_forwarding): unconditional call forwarding is active.
	Forwarding bool
	// Forwardings lists the active forwarding types when the list endpoint was used
	// ("unconditional", "conditional_busy", ...; "inactive" is dropped), nil otherwise.
	Forwardings []string
	// Roaming (roaming): the device is roaming.
	Roaming bool
	// CountryCode is the visited country's mobile country code (MCC) when roaming, 0 if
	// unknown.
	CountryCode int
	// CountryName lists the ISO 3166 alpha-2 codes mapped to CountryCode (one MCC may map
	// to several countries, or none).
	CountryName []string
	// StatusAt (roaming) is when the carrier last confirmed the roaming status
	// (lastStatusTime), nil if not given. An old status is more likely wrong.
	StatusAt *time.Time
	// FetchedAt is when the provider answered; for a cached result, the original time.
	FetchedAt time.Time
	// Cached is true when the result came from a Guard's cache.
	Cached bool
	// Latency is the duration of the provider call that produced the result (0 for a
	// cache hit).
	Latency time.Duration
	// CorrelationID is the x-correlator of the call that produced this answer: for a cached
	// or shared answer, the original caller's, so the audit can point at the carrier's log.
	CorrelationID string
}

// Clone returns a copy of r that shares no pointers or slices with it.
func (r Result) Clone() Result {
	if r.LastChange != nil {
		t := *r.LastChange
		r.LastChange = &t
	}
	if r.StatusAt != nil {
		t := *r.StatusAt
		r.StatusAt = &t
	}
	if r.Forwardings != nil {
		r.Forwardings = append([]string{}, r.Forwardings...)
	}
	if r.CountryName != nil {
		r.CountryName = append([]string{}, r.CountryName...)
	}
	return r
}

// CachePeeker is implemented by providers that can answer from a cache without calling out
// (Guard does).
type CachePeeker interface {
	Cached(q Query) (res Result, err error, ok bool)
}

// Provider answers queries about numbers. Implementations must be safe for concurrent
// use, honour ctx, and return errors that match one of this package's sentinels.
type Provider interface {
	// Name identifies the provider in results, logs and errors.
	Name() string
	// Check answers q. An unknown number is ErrUnknownNumber, a signal the provider does
	// not offer is ErrUnsupported.
	Check(ctx context.Context, q Query) (Result, error)
}

// MaxAgeHours converts a swap window to CAMARA's maxAge: whole hours rounded up, clamped
// to 1..2400. Zero or negative durations give 1.
func MaxAgeHours(d time.Duration) int {
	const minH, maxH = 1, 2400
	if d <= 0 {
		return minH
	}
	if d > maxH*time.Hour {
		return maxH
	}
	h := int((d + time.Hour - 1) / time.Hour)
	return max(minH, min(h, maxH))
}

// SwapWindow is the window a swap check actually covers for MaxAge d: MaxAgeHours(d)
// hours. Providers that decide "swapped" themselves (from a date) use it so they agree
// with the carrier's check endpoint.
func SwapWindow(d time.Duration) time.Duration { return time.Duration(MaxAgeHours(d)) * time.Hour }
