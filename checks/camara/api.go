package camara

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/smppguard/smppguard/checks"
)

// call is one Check: the provider, the x-correlator sent and the HTTP latency.
type call struct {
	p       *Provider
	corr    string
	latency time.Duration
}

// swap answers sim_swap or device_swap in the configured mode.
func (c *call) swap(ctx context.Context, api swapAPI, q checks.Query) (checks.Result, error) {
	hours := checks.MaxAgeHours(q.MaxAge)
	if api.mode == ModeCheck {
		if api.check == "" {
			return checks.Result{}, c.unsupported(api.what + " check")
		}
		var out struct {
			Swapped *bool `json:"swapped"`
		}
		body := map[string]any{c.p.phoneField: q.MSISDN, "maxAge": hours}
		if err := c.post(ctx, api.check, body, &out); err != nil {
			return checks.Result{}, err
		}
		if out.Swapped == nil {
			return checks.Result{}, c.malformed(api.what+" check", `no boolean "swapped"`)
		}
		return checks.Result{Swapped: *out.Swapped}, nil
	}

	if api.retrieve == "" {
		return checks.Result{}, c.unsupported(api.what + " retrieve-date")
	}
	var out map[string]json.RawMessage
	if err := c.post(ctx, api.retrieve, map[string]any{c.p.phoneField: q.MSISDN}, &out); err != nil {
		return checks.Result{}, err
	}
	what := api.what + " retrieve-date"
	raw, ok := out[api.dateField]
	if !ok {
		return checks.Result{}, c.malformed(what, fmt.Sprintf("no %q (required, nullable)", api.dateField))
	}
	var latest *time.Time
	if !isNull(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return checks.Result{}, c.malformed(what, fmt.Sprintf("%q is not a string", api.dateField))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return checks.Result{}, c.malformed(what, fmt.Sprintf("%q is not an RFC 3339 date-time with zone", api.dateField))
		}
		latest = &t
	}
	monitored := 0
	if raw, ok := out["monitoredPeriod"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &monitored); err != nil || monitored < 0 {
			return checks.Result{}, c.malformed(what, `"monitoredPeriod" is not a non-negative integer`)
		}
	}

	window := time.Duration(hours) * time.Hour
	res := checks.Result{LastChange: latest, MonitoredDays: monitored}
	switch {
	case latest != nil:
		// A date in the future (clock skew) counts as within the window.
		res.Swapped = latest.After(c.p.now().Add(-window))
	case monitored > 0 && time.Duration(monitored)*24*time.Hour < window:
		// The carrier vouches for fewer days than asked: like the check endpoint's
		// 400 OUT_OF_RANGE, this is no answer for the window.
		return checks.Result{}, fmt.Errorf("camara %s: %w", c.p.name, &checks.APIError{HTTPStatus: http.StatusOK, Code: "OUT_OF_RANGE", CorrelationID: c.corr, Err: checks.ErrInvalid,
			Message: fmt.Sprintf("%s: monitoredPeriod %d days is shorter than maxAge %dh", what, monitored, hours)})
	}
	return res, nil
}

// unconditionalNames are the list values meaning unconditional forwarding (compared
// case-insensitively). CAMARA has only ever used "unconditional"; the others are the 3GPP
// supplementary-service names some gateways return.
func isUnconditional(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "unconditional", "call_forwarding_unconditional", "cfu":
		return true
	}
	return false
}

// forwarding answers call_forwarding in the configured mode.
func (c *call) forwarding(ctx context.Context, q checks.Query) (checks.Result, error) {
	body := map[string]any{c.p.phoneField: q.MSISDN}
	if c.p.fwdMode == ModeUnconditional {
		if c.p.fwdUncond == "" {
			return checks.Result{}, c.unsupported("unconditional-call-forwardings")
		}
		var out struct {
			Active *bool `json:"active"`
		}
		if err := c.post(ctx, c.p.fwdUncond, body, &out); err != nil {
			return checks.Result{}, err
		}
		if out.Active == nil {
			return checks.Result{}, c.malformed("unconditional-call-forwardings", `no boolean "active"`)
		}
		return checks.Result{Forwarding: *out.Active}, nil
	}
	if c.p.fwdList == "" {
		return checks.Result{}, c.unsupported("call-forwardings")
	}
	var out []string
	if err := c.post(ctx, c.p.fwdList, body, &out); err != nil {
		return checks.Result{}, err
	}
	if out == nil {
		return checks.Result{}, c.malformed("call-forwardings", "not an array of strings")
	}
	res := checks.Result{Forwardings: []string{}}
	for _, v := range out {
		v = strings.TrimSpace(v)
		if v == "" || strings.EqualFold(v, "inactive") {
			continue
		}
		res.Forwardings = append(res.Forwardings, v)
		if isUnconditional(v) {
			res.Forwarding = true
		}
	}
	return res, nil
}

// roaming answers roaming from Device Roaming Status /retrieve ({"device": {phone}}).
func (c *call) roaming(ctx context.Context, q checks.Query) (checks.Result, error) {
	if c.p.roaming == "" {
		return checks.Result{}, c.unsupported("device-roaming-status retrieve")
	}
	var out struct {
		Roaming        *bool    `json:"roaming"`
		CountryCode    *int     `json:"countryCode"`
		CountryName    []string `json:"countryName"`
		LastStatusTime *string  `json:"lastStatusTime"`
	}
	body := map[string]any{"device": map[string]any{c.p.phoneField: q.MSISDN}}
	if err := c.post(ctx, c.p.roaming, body, &out); err != nil {
		return checks.Result{}, err
	}
	if out.Roaming == nil {
		return checks.Result{}, c.malformed("device-roaming-status retrieve", `no boolean "roaming"`)
	}
	res := checks.Result{Roaming: *out.Roaming, CountryName: out.CountryName}
	if out.CountryCode != nil {
		res.CountryCode = *out.CountryCode
	}
	if out.LastStatusTime != nil {
		if t, err := time.Parse(time.RFC3339Nano, *out.LastStatusTime); err == nil {
			res.StatusAt = &t
		}
	}
	return res, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func (c *call) unsupported(endpoint string) error {
	return fmt.Errorf("camara %s: %s is not offered (path disabled): %w", c.p.name, endpoint, checks.ErrUnsupported)
}

// malformed is a 200 answer the decision cannot use.
func (c *call) malformed(what, why string) error {
	return fmt.Errorf("camara %s: %w", c.p.name, &checks.APIError{HTTPStatus: http.StatusOK, CorrelationID: c.corr, Err: checks.ErrUnavailable,
		Message: "malformed " + what + " response: " + why})
}
