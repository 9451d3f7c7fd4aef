package checks

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error a Provider or Guard returns matches exactly one of them with
// errors.Is (a caller's own context error may match as well, see Guard.Check).
var (
	// ErrUnknownNumber: the carrier does not know the number or cannot answer for it (HTTP
	// 404 IDENTIFIER_NOT_FOUND, 422 SERVICE_NOT_APPLICABLE, legacy *.UNKNOWN_PHONE_NUMBER,
	// ...). It is NOT "not swapped"; a Guard caches it like a result.
	ErrUnknownNumber = errors.New("number unknown to the carrier")
	// ErrUnauthorized: the carrier refused our credentials or scope (HTTP 401, 403).
	ErrUnauthorized = errors.New("not authorized by the carrier")
	// ErrRateLimited: the carrier's rate or quota limit was hit (HTTP 429).
	ErrRateLimited = errors.New("rate limited by the carrier")
	// ErrUnavailable: no usable answer (HTTP 5xx, network error, timeout, malformed
	// success body). These feed a Guard's circuit breaker.
	ErrUnavailable = errors.New("carrier unavailable")
	// ErrInvalid: the carrier rejected the request as malformed or out of range (HTTP 400,
	// 422 other than unknown-number codes, other 4xx), or the query itself is invalid.
	// Usually a configuration problem (maxAge beyond the operator's window, 3-legged token,
	// wrong field name or path).
	ErrInvalid = errors.New("invalid request")
	// ErrSaturated: a Guard's bound on concurrent provider calls was reached; the call was
	// shed without being made.
	ErrSaturated = errors.New("too many concurrent look-ups")
	// ErrBreakerOpen: a Guard's circuit breaker is open after repeated failures; the call
	// was not made.
	ErrBreakerOpen = errors.New("circuit breaker open")
	// ErrUnsupported: the provider does not offer that signal (or the carrier answered 501
	// NOT_IMPLEMENTED).
	ErrUnsupported = errors.New("signal not supported by the provider")
)

// APIError is an error answer from a carrier API. It unwraps to the sentinel in Err.
type APIError struct {
	// HTTPStatus is the response status: 200 when a successful response was unusable
	// (malformed body, monitored period shorter than the requested window).
	HTTPStatus int
	// Code is the CAMARA error code ("IDENTIFIER_NOT_FOUND", ...), empty if the body was not
	// a CAMARA error body.
	Code string
	// Message is the carrier's message, shortened and stripped of control characters.
	Message string
	// CorrelationID is the x-correlator sent with the request.
	CorrelationID string
	// Err is the sentinel this error maps to (ErrUnknownNumber, ErrInvalid, ...).
	Err error
}

// Error describes the carrier's answer; it never contains credentials.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Err != nil {
		b.WriteString(" (" + e.Err.Error() + ")")
	}
	if e.CorrelationID != "" {
		b.WriteString(" [x-correlator " + e.CorrelationID + "]")
	}
	return b.String()
}

// Unwrap returns the sentinel.
func (e *APIError) Unwrap() error { return e.Err }

// Kind returns the sentinel err matches, or nil if it matches none. Useful for counting
// and for mapping errors to decisions.
func Kind(err error) error {
	for _, s := range []error{ErrUnknownNumber, ErrUnauthorized, ErrRateLimited, ErrUnavailable, ErrInvalid, ErrSaturated, ErrBreakerOpen, ErrUnsupported} {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}

// cachedError marks an error a Guard answered from its cache (a failure remembered for
// error_ttl, or an unknown number remembered like any answer). errors.Is and errors.As see
// through it to the original error, *APIError included.
type cachedError struct{ error }

func (e cachedError) Unwrap() error { return e.error }

// FromCache reports whether err was answered from a Guard's cache rather than by a call.
func FromCache(err error) bool {
	var c cachedError
	return errors.As(err, &c)
}

// CorrelationID returns the x-correlator of the carrier call that produced err (its
// *APIError), or "" if err did not come from a carrier's answer.
func CorrelationID(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.CorrelationID
	}
	return ""
}
