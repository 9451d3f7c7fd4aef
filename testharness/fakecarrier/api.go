package fakecarrier

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// correlatorRE is the XCorrelator schema pattern.
var correlatorRE = regexp.MustCompile(`^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$`)

// timeLayout is RFC 3339 with milliseconds, as in the specs' examples.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// maxBody bounds request bodies.
const maxBody = 64 << 10

// exchange is one request being answered.
type exchange struct {
	s       *Server
	w       http.ResponseWriter
	r       *http.Request
	rt      route
	call    *Call
	corr    string // valid x-correlator received (echoed)
	start   time.Time
	status  int
	code    string
	aborted bool
}

// update changes the recorded call under the server's lock.
func (x *exchange) update(f func(c *Call)) {
	if x.call == nil {
		return
	}
	x.s.mu.Lock()
	f(x.call)
	x.s.mu.Unlock()
}

// finish completes the recorded call.
func (x *exchange) finish() {
	d := time.Since(x.start)
	var c Call
	x.update(func(call *Call) {
		call.Status, call.Code, call.Duration = x.status, x.code, d
		c = *call
	})
	if ce := x.s.log.Check(zap.DebugLevel, "fakecarrier: call"); ce != nil {
		ce.Write(zap.String("endpoint", c.Endpoint), zap.String("phone_number", c.PhoneNumber),
			zap.String("client_id", c.ClientID), zap.String("auth_method", c.AuthMethod),
			zap.String("x_correlator", c.CorrelationID), zap.Int("status", c.Status),
			zap.String("code", c.Code), zap.Duration("took", d))
	}
}

// json answers with a JSON body.
func (x *exchange) json(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"status":500,"code":"INTERNAL","message":"Unknown server error. Typically a server bug."}`)
	}
	x.status = status
	x.w.Header().Set("Content-Type", "application/json")
	x.w.WriteHeader(status)
	x.w.Write(append(b, '\n'))
}

// errorInfo is the CAMARA ErrorInfo schema.
type errorInfo struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// fail answers with a CAMARA error; an empty message takes the spec's example message.
func (x *exchange) fail(status int, code, msg string) {
	if code == "" {
		code = defaultCode(status)
	}
	if msg == "" {
		msg = defaultMessage(x.rt.api, status, code)
	}
	x.code = code
	x.json(status, errorInfo{Status: status, Code: code, Message: msg})
}

// defaultCode is the CAMARA code for an HTTP status.
func defaultCode(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "IDENTIFIER_NOT_FOUND"
	case 405:
		return "METHOD_NOT_ALLOWED"
	case 406:
		return "NOT_ACCEPTABLE"
	case 409:
		return "CONFLICT"
	case 410:
		return "GONE"
	case 412:
		return "FAILED_PRECONDITION"
	case 415:
		return "UNSUPPORTED_MEDIA_TYPE"
	case 422:
		return "SERVICE_NOT_APPLICABLE"
	case 429:
		return "TOO_MANY_REQUESTS"
	case 500:
		return "INTERNAL"
	case 501:
		return "NOT_IMPLEMENTED"
	case 502:
		return "BAD_GATEWAY"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "TIMEOUT"
	}
	return strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_"))
}

// defaultMessage is the example message the API's spec gives for a code.
func defaultMessage(api string, status int, code string) string {
	cfsOrRoaming := api == "call-forwarding-signal" || api == "device-roaming-status"
	switch code {
	case "INVALID_ARGUMENT":
		return "Client specified an invalid argument, request body or query param."
	case "OUT_OF_RANGE":
		return "Client specified an invalid range."
	case "UNAUTHENTICATED":
		if api == "device-swap" {
			return "Request not authenticated due to missing, invalid, or expired credentials."
		}
		return "Request not authenticated due to missing, invalid, or expired credentials. A new authentication is required."
	case "PERMISSION_DENIED":
		return "Client does not have sufficient permissions to perform this action."
	case "NOT_FOUND":
		return "The specified resource is not found."
	case "IDENTIFIER_NOT_FOUND":
		if api == "device-roaming-status" {
			return "The phone number provided is not associated with a customer account"
		}
		return "Device identifier not found."
	case "SERVICE_NOT_APPLICABLE":
		return "The service is not available for the provided identifier."
	case "MISSING_IDENTIFIER":
		if api == "call-forwarding-signal" {
			return "The phone number cannot be identified."
		}
		return "The device cannot be identified."
	case "UNNECESSARY_IDENTIFIER":
		if api == "call-forwarding-signal" {
			return "The phone number is already identified by the access token."
		}
		return "The device is already identified by the access token."
	case "UNSUPPORTED_IDENTIFIER":
		return "The identifier provided is not supported."
	case "QUOTA_EXCEEDED":
		if cfsOrRoaming {
			return "Out of resource quota."
		}
		return "Rejected due to exceeding a business quota limit."
	case "TOO_MANY_REQUESTS":
		if cfsOrRoaming {
			return "Rate limit reached."
		}
		return "Rejected due to request rate limit overpassed."
	case "NOT_IMPLEMENTED":
		return "This functionality is not implemented yet."
	case "UNAVAILABLE":
		if api == "device-roaming-status" {
			return "Network issue"
		}
		return "Service Unavailable."
	case "INTERNAL":
		return "Unknown server error. Typically a server bug."
	case "METHOD_NOT_ALLOWED":
		return "The requested method is not allowed/supported on the target resource."
	case "TIMEOUT":
		return "Request timeout exceeded."
	}
	if t := http.StatusText(status); t != "" {
		return t + "."
	}
	return "Error."
}

// begin runs the checks every API call shares: x-correlator, token and scope, JSON object
// body. It answers and returns false on failure.
func (x *exchange) begin() (map[string]json.RawMessage, bool) {
	if c := x.r.Header.Get("x-correlator"); c != "" && x.corr == "" {
		x.fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Client specified an invalid argument, request body or query param: x-correlator must match ^[a-zA-Z0-9-_:;.\\/<>{}]{0,256}$.")
		return nil, false
	}
	if !x.authorize() {
		return nil, false
	}
	b, err := io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, maxBody))
	if err != nil {
		x.fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Client specified an invalid argument, request body or query param: the body could not be read.")
		return nil, false
	}
	b = bytes.TrimSpace(b)
	var body map[string]json.RawMessage
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &body) != nil {
		x.fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Client specified an invalid argument, request body or query param: the body must be a JSON object.")
		return nil, false
	}
	return body, true
}

// authorize checks the bearer token and the endpoint's scope (403 without it).
func (x *exchange) authorize() bool {
	s := x.s
	scheme, tok, _ := strings.Cut(strings.TrimSpace(x.r.Header.Get("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	bearer := strings.EqualFold(scheme, "Bearer") && tok != ""
	var t token
	valid := false
	if bearer {
		now := s.now()
		s.mu.Lock()
		t, valid = s.tokens[tok]
		if valid && !now.Before(t.expires) {
			delete(s.tokens, tok)
			valid = false
		}
		s.mu.Unlock()
	}
	if valid {
		x.update(func(c *Call) { c.ClientID = t.clientID })
	}
	if s.cfg.NoAuth {
		return true
	}
	if !valid {
		if bearer {
			x.w.Header().Set("WWW-Authenticate", `Bearer realm="fakecarrier", error="invalid_token"`)
		} else {
			x.w.Header().Set("WWW-Authenticate", `Bearer realm="fakecarrier"`)
		}
		x.fail(http.StatusUnauthorized, "UNAUTHENTICATED", "")
		return false
	}
	for _, sc := range x.rt.scopes {
		if t.scopes[sc] {
			return true
		}
	}
	x.w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="fakecarrier", error="insufficient_scope", scope=%q`, x.rt.scopes[0]))
	x.fail(http.StatusForbidden, "PERMISSION_DENIED", "")
	return false
}

// phoneNumber reads an optional phoneNumber field: an invalid one is answered 400.
func (x *exchange) phoneNumber(raw json.RawMessage, field string) (string, bool) {
	var p string
	if bytes.Equal(raw, []byte("null")) || json.Unmarshal(raw, &p) != nil {
		x.fail(http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Client specified an invalid argument, request body or query param: %s must be a string.", field))
		return "", false
	}
	x.update(func(c *Call) { c.PhoneNumber = p })
	if !phoneRE.MatchString(p) {
		x.fail(http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Client specified an invalid argument, request body or query param: %s must match ^\\+[1-9][0-9]{4,14}$.", field))
		return "", false
	}
	return p, true
}

// subject reads the phoneNumber of a SIM Swap, Device Swap or Call Forwarding request; the
// caller answers 422 MISSING_IDENTIFIER when present is false (after its other 400 checks).
func (x *exchange) subject(body map[string]json.RawMessage) (msisdn string, present, ok bool) {
	raw, present := body["phoneNumber"]
	if !present {
		return "", false, true
	}
	msisdn, ok = x.phoneNumber(raw, "phoneNumber")
	return msisdn, true, ok
}

// missingIdentifier answers 422 MISSING_IDENTIFIER: with a two-legged token the request
// must name the subject.
func (x *exchange) missingIdentifier() {
	x.fail(http.StatusUnprocessableEntity, "MISSING_IDENTIFIER", "")
}

// maxAge reads maxAge (hours, 1..2400, default 240).
func (x *exchange) maxAge(body map[string]json.RawMessage) (int, bool) {
	raw, ok := body["maxAge"]
	if !ok {
		return 240, true
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || bytes.Equal(raw, []byte("null")) || f != math.Trunc(f) {
		x.fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Client specified an invalid argument, request body or query param: maxAge must be an integer.")
		return 0, false
	}
	if f < 1 || f > 2400 {
		x.fail(http.StatusBadRequest, "OUT_OF_RANGE", "Client specified an invalid range: maxAge must be between 1 and 2400 hours.")
		return 0, false
	}
	return int(f), true
}

// number looks up the subject and plays its latency, timeout, injected error and unknown
// state. It returns false when that answered (or abandoned) the call.
func (x *exchange) number(msisdn string) (Number, bool) {
	n := x.s.lookup(msisdn)
	if !x.wait(n.Latency.D()) {
		return n, false
	}
	if n.Timeout {
		x.wait(-1)
		return n, false
	}
	if e := n.Error; x.s.takeError(msisdn, x.rt.endpoint, e) {
		x.fail(e.Status, e.Code, e.Message)
		return n, false
	}
	if n.Unknown {
		x.fail(http.StatusNotFound, "IDENTIFIER_NOT_FOUND", "")
		return n, false
	}
	return n, true
}

// changeTime resolves a *Ago / *At pair against now.
func changeTime(ago *Duration, at *time.Time, now time.Time) *time.Time {
	switch {
	case at != nil:
		t := *at
		return &t
	case ago != nil:
		t := now.Add(-ago.D())
		return &t
	}
	return nil
}

// withinMonitoring answers 400 OUT_OF_RANGE for a check longer than the monitored period.
func (x *exchange) withinMonitoring(n Number, maxAge int) bool {
	if n.MonitoredDays > 0 && maxAge > n.MonitoredDays*24 {
		x.fail(http.StatusBadRequest, "OUT_OF_RANGE", fmt.Sprintf("Check monitor period could not exceed local regulations (%d days)", n.MonitoredDays))
		return false
	}
	return true
}

// swapCheck serves SIM Swap and Device Swap check.
func (x *exchange) swapCheck(change func(Number, time.Time) *time.Time) {
	body, ok := x.begin()
	if !ok {
		return
	}
	msisdn, present, ok := x.subject(body)
	if !ok {
		return
	}
	maxAge, ok := x.maxAge(body)
	if !ok {
		return
	}
	if !present {
		x.missingIdentifier()
		return
	}
	n, ok := x.number(msisdn)
	if !ok || !x.withinMonitoring(n, maxAge) {
		return
	}
	now := x.s.now()
	at := change(n, now)
	x.json(http.StatusOK, struct {
		Swapped bool `json:"swapped"`
	}{at != nil && !at.Before(now.Add(-time.Duration(maxAge)*time.Hour))})
}

// swapDate serves SIM Swap and Device Swap retrieve-date; field is the date's name.
func (x *exchange) swapDate(change func(Number, time.Time) *time.Time, field string) {
	body, ok := x.begin()
	if !ok {
		return
	}
	msisdn, present, ok := x.subject(body)
	if !ok {
		return
	}
	if !present {
		x.missingIdentifier()
		return
	}
	n, ok := x.number(msisdn)
	if !ok {
		return
	}
	now := x.s.now()
	at := change(n, now)
	out := map[string]any{field: nil}
	if at != nil && (n.MonitoredDays == 0 || !at.Before(now.AddDate(0, 0, -n.MonitoredDays))) {
		out[field] = at.UTC().Format(timeLayout)
	} else if n.MonitoredDays > 0 {
		out["monitoredPeriod"] = n.MonitoredDays
	}
	x.json(http.StatusOK, out)
}

func simChange(n Number, now time.Time) *time.Time {
	return changeTime(n.SimChangedAgo, n.SimChangedAt, now)
}

func deviceChange(n Number, now time.Time) *time.Time {
	return changeTime(n.DeviceChangedAgo, n.DeviceChangedAt, now)
}

func (s *Server) simSwapCheck(x *exchange)    { x.swapCheck(simChange) }
func (s *Server) simSwapDate(x *exchange)     { x.swapDate(simChange, "latestSimChange") }
func (s *Server) deviceSwapCheck(x *exchange) { x.swapCheck(deviceChange) }
func (s *Server) deviceSwapDate(x *exchange)  { x.swapDate(deviceChange, "latestDeviceChange") }

// forwarding serves both Call Forwarding Signal endpoints.
func (x *exchange) forwarding(answer func(n Number)) {
	body, ok := x.begin()
	if !ok {
		return
	}
	msisdn, present, ok := x.subject(body)
	if !ok {
		return
	}
	if !present {
		x.missingIdentifier()
		return
	}
	n, ok := x.number(msisdn)
	if !ok {
		return
	}
	answer(n)
}

func (s *Server) unconditionalForwarding(x *exchange) {
	x.forwarding(func(n Number) {
		active := false
		for _, f := range n.Forwardings {
			active = active || f == ForwardUnconditional
		}
		x.json(http.StatusOK, struct {
			Active bool `json:"active"`
		}{active})
	})
}

func (s *Server) callForwardings(x *exchange) {
	x.forwarding(func(n Number) {
		list := []string{forwardingInactiveName}
		if len(n.Forwardings) > 0 {
			list = n.Forwardings
		}
		x.json(http.StatusOK, list)
	})
}

// roamingStatus serves Device Roaming Status retrieve. The device must include a
// phoneNumber (the other identifiers are validated but not supported: 422
// UNSUPPORTED_IDENTIFIER); the response names the device only when the request gave more
// than one identifier.
func (s *Server) roamingStatus(x *exchange) {
	body, ok := x.begin()
	if !ok {
		return
	}
	raw, present := body["device"]
	if !present {
		x.missingIdentifier()
		return
	}
	var dev map[string]json.RawMessage
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || json.Unmarshal(raw, &dev) != nil {
		x.fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Client specified an invalid argument, request body or query param: device must be an object.")
		return
	}
	ids := 0
	msisdn := ""
	for _, k := range []string{"phoneNumber", "networkAccessIdentifier", "ipv4Address", "ipv6Address"} {
		v, ok := dev[k]
		if !ok {
			continue
		}
		ids++
		bad := ""
		switch k {
		case "phoneNumber":
			p, ok := x.phoneNumber(v, "device.phoneNumber")
			if !ok {
				return
			}
			msisdn = p
		case "networkAccessIdentifier":
			var str string
			if json.Unmarshal(v, &str) != nil || bytes.Equal(v, []byte("null")) || str == "" {
				bad = "device.networkAccessIdentifier must be a string"
			}
		case "ipv4Address":
			bad = checkIPv4Addr(v)
		case "ipv6Address":
			var str string
			if json.Unmarshal(v, &str) != nil || net.ParseIP(str) == nil || net.ParseIP(str).To4() != nil {
				bad = "device.ipv6Address must be an IPv6 address"
			}
		}
		if bad != "" {
			x.fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Client specified an invalid argument, request body or query param: "+bad+".")
			return
		}
	}
	if ids == 0 {
		x.fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Client specified an invalid argument, request body or query param: device needs at least one identifier.")
		return
	}
	if msisdn == "" {
		x.fail(http.StatusUnprocessableEntity, "UNSUPPORTED_IDENTIFIER", "")
		return
	}
	n, ok := x.number(msisdn)
	if !ok {
		return
	}
	type device struct {
		PhoneNumber string `json:"phoneNumber"`
	}
	out := struct {
		Device         *device   `json:"device,omitempty"`
		LastStatusTime string    `json:"lastStatusTime"`
		Roaming        bool      `json:"roaming"`
		CountryCode    *int      `json:"countryCode,omitempty"`
		CountryName    *[]string `json:"countryName,omitempty"`
	}{LastStatusTime: s.now().UTC().Format(timeLayout), Roaming: n.Roaming}
	if ids > 1 {
		out.Device = &device{msisdn}
	}
	if n.Roaming {
		if n.CountryCode > 0 {
			cc := n.CountryCode
			out.CountryCode = &cc
		}
		names := append([]string{}, n.CountryName...)
		out.CountryName = &names
	}
	x.json(http.StatusOK, out)
}

// checkIPv4Addr validates the DeviceIpv4Addr schema; it returns a problem or "".
func checkIPv4Addr(raw json.RawMessage) string {
	var a struct {
		PublicAddress  *string          `json:"publicAddress"`
		PrivateAddress *string          `json:"privateAddress"`
		PublicPort     *json.RawMessage `json:"publicPort"`
	}
	const bad = "device.ipv4Address must have publicAddress and privateAddress or publicPort"
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || json.Unmarshal(raw, &a) != nil || a.PublicAddress == nil {
		return bad
	}
	v4 := func(s string) bool {
		ip := net.ParseIP(s)
		return ip != nil && ip.To4() != nil && !strings.Contains(s, ":")
	}
	if !v4(*a.PublicAddress) || (a.PrivateAddress != nil && !v4(*a.PrivateAddress)) {
		return "device.ipv4Address addresses must be IPv4 addresses"
	}
	if a.PublicPort != nil {
		p, err := strconv.Atoi(string(*a.PublicPort))
		if err != nil || p < 0 || p > 65535 {
			return "device.ipv4Address.publicPort must be an integer 0..65535"
		}
	}
	if a.PrivateAddress == nil && a.PublicPort == nil {
		return bad
	}
	return ""
}
