package camara

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smppguard/smppguard/checks"
)

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) *time.Time {
	t := testNow.Add(-d)
	return &t
}

// newProvider starts a fake carrier and a provider pointed at it; mod adjusts the config.
func newProvider(t *testing.T, f *fakeCarrier, mod func(*Config)) *Provider {
	t.Helper()
	srv := f.start("")
	cfg := Config{Name: "op", BaseURL: srv.URL, Now: func() time.Time { return testNow }}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignalsAndModes(t *testing.T) {
	subs := map[string]subscriber{
		"+447700900001": {simSwap: ago(2 * time.Hour), deviceSwap: ago(30 * time.Minute)},
		"+447700900002": {simSwap: ago(100 * time.Hour), deviceSwap: ago(100 * time.Hour)},
		"+447700900003": {monitored: 120}, // null date, monitored 120 days
		"+447700900004": {},               // null date, no monitored period
		"+447700900005": {monitored: 2},   // null date, monitored 2 days
		"+447700900006": {forwardings: []string{"unconditional", "conditional_busy"}, roaming: true, countryCode: 262, countryName: []string{"DE"}},
		"+447700900007": {forwardings: []string{"conditional_busy", "conditional_no_answer"}},
		"+447700900008": {forwardings: []string{"CFU"}},
		"+447700900009": {forwardings: []string{"call_forwarding_unconditional"}},
		"+447700900010": {simSwap: ago(-time.Hour)}, // in the future (clock skew)
	}
	check, retrieve := func(c *Config) {}, func(c *Config) { c.SimSwapMode, c.DeviceSwapMode = ModeRetrieveDate, ModeRetrieveDate }
	list := func(c *Config) { c.ForwardingMode = ModeList }
	tests := []struct {
		name    string
		mod     func(*Config)
		number  string
		signal  checks.Signal
		maxAge  time.Duration
		path    string
		want    checks.Result // compared on the signal's fields
		wantErr error
	}{
		{"sim check swapped", check, "+447700900001", checks.SimSwap, 72 * time.Hour, DefaultSimSwapCheck, checks.Result{Swapped: true}, nil},
		{"sim check not swapped", check, "+447700900002", checks.SimSwap, 72 * time.Hour, DefaultSimSwapCheck, checks.Result{}, nil},
		{"sim check window covers old swap", check, "+447700900002", checks.SimSwap, 101 * time.Hour, DefaultSimSwapCheck, checks.Result{Swapped: true}, nil},
		{"sim retrieve swapped", retrieve, "+447700900001", checks.SimSwap, 72 * time.Hour, DefaultSimSwapRetrieveDate, checks.Result{Swapped: true, LastChange: ago(2 * time.Hour)}, nil},
		{"sim retrieve old swap", retrieve, "+447700900002", checks.SimSwap, 72 * time.Hour, DefaultSimSwapRetrieveDate, checks.Result{LastChange: ago(100 * time.Hour)}, nil},
		{"sim retrieve window rounds up to whole hours", retrieve, "+447700900002", checks.SimSwap, 99*time.Hour + time.Minute, DefaultSimSwapRetrieveDate, checks.Result{LastChange: ago(100 * time.Hour)}, nil},
		{"sim retrieve null with monitored period covering the window", retrieve, "+447700900003", checks.SimSwap, 72 * time.Hour, DefaultSimSwapRetrieveDate, checks.Result{MonitoredDays: 120}, nil},
		{"sim retrieve null without monitored period", retrieve, "+447700900004", checks.SimSwap, 72 * time.Hour, DefaultSimSwapRetrieveDate, checks.Result{}, nil},
		{"sim retrieve monitored period shorter than the window", retrieve, "+447700900005", checks.SimSwap, 72 * time.Hour, DefaultSimSwapRetrieveDate, checks.Result{}, checks.ErrInvalid},
		{"sim retrieve monitored period equal to the window", retrieve, "+447700900005", checks.SimSwap, 48 * time.Hour, DefaultSimSwapRetrieveDate, checks.Result{MonitoredDays: 2}, nil},
		{"sim retrieve future date counts as swapped", retrieve, "+447700900010", checks.SimSwap, time.Hour, DefaultSimSwapRetrieveDate, checks.Result{Swapped: true, LastChange: ago(-time.Hour)}, nil},
		{"device check swapped", check, "+447700900001", checks.DeviceSwap, time.Hour, DefaultDeviceSwapCheck, checks.Result{Swapped: true}, nil},
		{"device check not swapped", check, "+447700900002", checks.DeviceSwap, time.Hour, DefaultDeviceSwapCheck, checks.Result{}, nil},
		{"device retrieve swapped", retrieve, "+447700900001", checks.DeviceSwap, time.Hour, DefaultDeviceSwapRetrieveDate, checks.Result{Swapped: true, LastChange: ago(30 * time.Minute)}, nil},
		{"device retrieve null monitored", retrieve, "+447700900003", checks.DeviceSwap, time.Hour, DefaultDeviceSwapRetrieveDate, checks.Result{MonitoredDays: 120}, nil},
		{"forwarding unconditional active", check, "+447700900006", checks.CallForwarding, 0, DefaultCallForwardingUnconditional, checks.Result{Forwarding: true}, nil},
		{"forwarding unconditional inactive", check, "+447700900007", checks.CallForwarding, 0, DefaultCallForwardingUnconditional, checks.Result{}, nil},
		{"forwarding list with unconditional", list, "+447700900006", checks.CallForwarding, 0, DefaultCallForwardingList, checks.Result{Forwarding: true, Forwardings: []string{"unconditional", "conditional_busy"}}, nil},
		{"forwarding list conditional only", list, "+447700900007", checks.CallForwarding, 0, DefaultCallForwardingList, checks.Result{Forwardings: []string{"conditional_busy", "conditional_no_answer"}}, nil},
		{"forwarding list inactive", list, "+447700900001", checks.CallForwarding, 0, DefaultCallForwardingList, checks.Result{Forwardings: []string{}}, nil},
		{"forwarding list CFU", list, "+447700900008", checks.CallForwarding, 0, DefaultCallForwardingList, checks.Result{Forwarding: true, Forwardings: []string{"CFU"}}, nil},
		{"forwarding list 3GPP name", list, "+447700900009", checks.CallForwarding, 0, DefaultCallForwardingList, checks.Result{Forwarding: true, Forwardings: []string{"call_forwarding_unconditional"}}, nil},
		{"roaming", check, "+447700900006", checks.Roaming, 0, DefaultRoamingRetrieve, checks.Result{Roaming: true, CountryCode: 262, CountryName: []string{"DE"}}, nil},
		{"not roaming", check, "+447700900001", checks.Roaming, 0, DefaultRoamingRetrieve, checks.Result{}, nil},
		{"unknown number", check, "+447700900099", checks.SimSwap, time.Hour, DefaultSimSwapCheck, checks.Result{}, checks.ErrUnknownNumber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t, testNow)
			f.subs = subs
			p := newProvider(t, f, tt.mod)
			res, err := p.Check(context.Background(), checks.Query{MSISDN: tt.number, Signal: tt.signal, MaxAge: tt.maxAge, CorrelationID: "test-1"})
			if got := f.last().path; got != tt.path {
				t.Fatalf("request went to %s, want %s", got, tt.path)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Signal != tt.signal || res.Source != "op" || !res.FetchedAt.Equal(testNow) || res.Latency <= 0 || res.Cached {
				t.Fatalf("bookkeeping: %+v", res)
			}
			w := tt.want
			if res.Swapped != w.Swapped || res.MonitoredDays != w.MonitoredDays || res.Forwarding != w.Forwarding ||
				res.Roaming != w.Roaming || res.CountryCode != w.CountryCode || !slices.Equal(res.CountryName, w.CountryName) ||
				!slices.Equal(res.Forwardings, w.Forwardings) || (res.Forwardings == nil) != (w.Forwardings == nil) {
				t.Fatalf("result %+v, want %+v", res, w)
			}
			if (res.LastChange == nil) != (w.LastChange == nil) || res.LastChange != nil && !res.LastChange.Equal(*w.LastChange) {
				t.Fatalf("LastChange = %v, want %v", res.LastChange, w.LastChange)
			}
			if tt.signal == checks.Roaming && (res.StatusAt == nil || !res.StatusAt.Equal(time.Date(2024, 2, 20, 10, 41, 38, 657e6, time.UTC))) {
				t.Fatalf("StatusAt = %v", res.StatusAt)
			}
		})
	}
}

func TestMaxAgeSent(t *testing.T) {
	f := newFakeCarrier(t, testNow)
	f.subs["+447700900001"] = subscriber{}
	p := newProvider(t, f, nil)
	tests := []struct {
		maxAge time.Duration
		want   string
	}{
		{0, "1"}, {-time.Hour, "1"}, {time.Second, "1"}, {time.Hour, "1"}, {time.Hour + time.Second, "2"},
		{72 * time.Hour, "72"}, {2400 * time.Hour, "2400"}, {2401 * time.Hour, "2400"}, {100000 * time.Hour, "2400"},
	}
	for _, sig := range []checks.Signal{checks.SimSwap, checks.DeviceSwap} {
		for _, tt := range tests {
			if _, err := p.Check(context.Background(), checks.Query{MSISDN: "+447700900001", Signal: sig, MaxAge: tt.maxAge}); err != nil {
				t.Fatalf("%s %v: %v", sig, tt.maxAge, err)
			}
			if got := fmt.Sprint(f.last().body["maxAge"]); got != tt.want {
				t.Errorf("%s MaxAge %v sent maxAge %s, want %s", sig, tt.maxAge, got, tt.want)
			}
		}
	}
}

func TestRequestShape(t *testing.T) {
	f := newFakeCarrier(t, testNow)
	f.subs["+447700900001"] = subscriber{}
	p := newProvider(t, f, func(c *Config) { c.SimSwapMode = ModeRetrieveDate })
	ctx := context.Background()
	want := map[checks.Signal]string{
		checks.SimSwap:        `{"phoneNumber":"+447700900001"}`, // retrieve-date: no maxAge
		checks.DeviceSwap:     `{"maxAge":2,"phoneNumber":"+447700900001"}`,
		checks.CallForwarding: `{"phoneNumber":"+447700900001"}`,
		checks.Roaming:        `{"device":{"phoneNumber":"+447700900001"}}`,
	}
	for sig, body := range want {
		if _, err := p.Check(ctx, checks.Query{MSISDN: "+447700900001", Signal: sig, MaxAge: 90 * time.Minute}); err != nil {
			t.Fatalf("%s: %v", sig, err)
		}
		if got := mustJSON(f.last().body); got != body {
			t.Errorf("%s sent %s, want %s", sig, got, body)
		}
	}
}

func TestPathOverridesAndPhoneField(t *testing.T) {
	f := newFakeCarrier(t, testNow)
	f.phoneField = "msisdn"
	f.subs["+447700900001"] = subscriber{simSwap: ago(time.Hour), deviceSwap: ago(time.Hour), forwardings: []string{"unconditional"}, roaming: true, countryCode: 208}
	f.paths = map[string]string{
		"sim-check": "/simswap/v1/check", "sim-retrieve": "/simswap/v1/retrieve-date",
		"cf-uncond": "/cfs/v0.3/unconditional-call-forwardings", "cf-list": "/cfs/v0.3/call-forwardings",
		"dev-check": "/device-swap/v0.1/check", "dev-retrieve": "/device-swap/v0.1/retrieve-date",
		"roaming": "/device-status/v0/roaming",
	}
	srv := f.start("/camara")
	other := newFakeCarrier(t, testNow) // a second host for an absolute-URL override
	other.phoneField = "msisdn"
	other.subs = f.subs
	otherSrv := other.start("")
	cfg := Config{
		Name: "op", BaseURL: srv.URL + "/camara/", PhoneField: "msisdn", Now: func() time.Time { return testNow },
		Paths: Paths{
			SimSwapCheck: "simswap/v1/check", SimSwapRetrieveDate: "/simswap/v1/retrieve-date",
			CallForwardingUnconditional: "/cfs/v0.3/unconditional-call-forwardings", CallForwardingList: "/cfs/v0.3/call-forwardings",
			DeviceSwapCheck: "/device-swap/v0.1/check", DeviceSwapRetrieveDate: "/device-swap/v0.1/retrieve-date",
			RoamingRetrieve: otherSrv.URL + DefaultRoamingRetrieve,
		},
	}
	ctx := context.Background()
	for _, mode := range []string{"check+unconditional", "retrieve-date+list"} {
		c := cfg
		if mode != "check+unconditional" {
			c.SimSwapMode, c.DeviceSwapMode, c.ForwardingMode = ModeRetrieveDate, ModeRetrieveDate, ModeList
		}
		p, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, sig := range []checks.Signal{checks.SimSwap, checks.DeviceSwap, checks.CallForwarding} {
			res, err := p.Check(ctx, checks.Query{MSISDN: "+447700900001", Signal: sig, MaxAge: 2 * time.Hour})
			if err != nil || !(res.Swapped || res.Forwarding) {
				t.Fatalf("%s %s: %+v %v", mode, sig, res, err)
			}
			if !strings.HasPrefix(f.last().path, "/camara/") {
				t.Fatalf("%s %s went to %s", mode, sig, f.last().path)
			}
		}
		res, err := p.Check(ctx, checks.Query{MSISDN: "+447700900001", Signal: checks.Roaming})
		if err != nil || !res.Roaming || res.CountryCode != 208 || other.last().path != DefaultRoamingRetrieve {
			t.Fatalf("%s roaming: %+v %v", mode, res, err)
		}
	}
	if n := f.count(); n != 6 {
		t.Fatalf("carrier saw %d requests, want 6", n)
	}

	// A disabled endpoint answers ErrUnsupported without a request.
	c := cfg
	c.Paths.RoamingRetrieve = Disabled
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	before := other.count()
	if _, err := p.Check(ctx, checks.Query{MSISDN: "+447700900001", Signal: checks.Roaming}); !errors.Is(err, checks.ErrUnsupported) {
		t.Fatalf("disabled: err = %v", err)
	}
	if other.count() != before {
		t.Fatalf("a disabled endpoint was called")
	}
}

func TestCorrelator(t *testing.T) {
	f := newFakeCarrier(t, testNow)
	f.subs["+447700900001"] = subscriber{}
	p := newProvider(t, f, nil)
	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	tests := []struct {
		name, id  string
		generated bool
	}{
		{"given", "b4333c46-49c0-4f62-80d7-f0ef930f1c46", false},
		{"given, all allowed characters", "smpp:bank/42;seq.7_{x}<y>", false},
		{"empty", "", true},
		{"space is not allowed", "bad id", true},
		{"too long", strings.Repeat("a", 257), true},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		if _, err := p.Check(context.Background(), checks.Query{MSISDN: "+447700900001", Signal: checks.CallForwarding, CorrelationID: tt.id}); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := f.last().correlator
		if tt.generated {
			if !uuid4.MatchString(got) || seen[got] {
				t.Fatalf("%s: sent %q, want a fresh UUIDv4", tt.name, got)
			}
			seen[got] = true
		} else if got != tt.id {
			t.Fatalf("%s: sent %q, want %q", tt.name, got, tt.id)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	j := func(status int, code string) reply {
		return reply{status: status, contentType: "application/json", body: fmt.Sprintf(`{"status":%d,"code":%q,"message":"m"}`, status, code)}
	}
	tests := []struct {
		name     string
		reply    reply
		signal   checks.Signal
		want     error
		wantCode string
	}{
		{"400 INVALID_ARGUMENT", j(400, "INVALID_ARGUMENT"), checks.SimSwap, checks.ErrInvalid, "INVALID_ARGUMENT"},
		{"400 OUT_OF_RANGE (maxAge beyond operator policy)", j(400, "OUT_OF_RANGE"), checks.SimSwap, checks.ErrInvalid, "OUT_OF_RANGE"},
		{"401 UNAUTHENTICATED", j(401, "UNAUTHENTICATED"), checks.SimSwap, checks.ErrUnauthorized, "UNAUTHENTICATED"},
		{"403 PERMISSION_DENIED", j(403, "PERMISSION_DENIED"), checks.CallForwarding, checks.ErrUnauthorized, "PERMISSION_DENIED"},
		{"403 INVALID_TOKEN_CONTEXT (legacy)", j(403, "INVALID_TOKEN_CONTEXT"), checks.CallForwarding, checks.ErrUnauthorized, "INVALID_TOKEN_CONTEXT"},
		{"404 IDENTIFIER_NOT_FOUND", j(404, "IDENTIFIER_NOT_FOUND"), checks.SimSwap, checks.ErrUnknownNumber, "IDENTIFIER_NOT_FOUND"},
		{"404 NOT_FOUND", j(404, "NOT_FOUND"), checks.SimSwap, checks.ErrUnknownNumber, "NOT_FOUND"},
		{"404 SIM_SWAP.UNKNOWN_PHONE_NUMBER (legacy)", j(404, "SIM_SWAP.UNKNOWN_PHONE_NUMBER"), checks.SimSwap, checks.ErrUnknownNumber, "SIM_SWAP.UNKNOWN_PHONE_NUMBER"},
		{"404 CALL_FORWARDING.UNKNOWN_PHONE_NUMBER (legacy)", j(404, "CALL_FORWARDING.UNKNOWN_PHONE_NUMBER"), checks.CallForwarding, checks.ErrUnknownNumber, "CALL_FORWARDING.UNKNOWN_PHONE_NUMBER"},
		{"404 SIM_SWAP.PHONE_NUMBER_NOT_MANAGED_BY_OPERATOR (legacy)", j(404, "SIM_SWAP.PHONE_NUMBER_NOT_MANAGED_BY_OPERATOR"), checks.SimSwap, checks.ErrUnknownNumber, "SIM_SWAP.PHONE_NUMBER_NOT_MANAGED_BY_OPERATOR"},
		{"404 without CAMARA body (no such route)", reply{status: 404, contentType: "text/plain", body: "404 page not found"}, checks.SimSwap, checks.ErrInvalid, ""},
		{"409 CONFLICT", j(409, "CONFLICT"), checks.SimSwap, checks.ErrInvalid, "CONFLICT"},
		{"409 ABORTED", j(409, "ABORTED"), checks.DeviceSwap, checks.ErrInvalid, "ABORTED"},
		{"422 SERVICE_NOT_APPLICABLE", j(422, "SERVICE_NOT_APPLICABLE"), checks.DeviceSwap, checks.ErrUnknownNumber, "SERVICE_NOT_APPLICABLE"},
		{"422 MISSING_IDENTIFIER", j(422, "MISSING_IDENTIFIER"), checks.SimSwap, checks.ErrInvalid, "MISSING_IDENTIFIER"},
		{"422 UNNECESSARY_IDENTIFIER (3-legged token)", j(422, "UNNECESSARY_IDENTIFIER"), checks.SimSwap, checks.ErrInvalid, "UNNECESSARY_IDENTIFIER"},
		{"422 UNSUPPORTED_IDENTIFIER", j(422, "UNSUPPORTED_IDENTIFIER"), checks.Roaming, checks.ErrInvalid, "UNSUPPORTED_IDENTIFIER"},
		{"422 UNIDENTIFIABLE_PHONE_NUMBER (legacy)", j(422, "UNIDENTIFIABLE_PHONE_NUMBER"), checks.SimSwap, checks.ErrInvalid, "UNIDENTIFIABLE_PHONE_NUMBER"},
		{"422 PHONE_NUMBER_NOT_APPLICABLE (legacy)", j(422, "PHONE_NUMBER_NOT_APPLICABLE"), checks.SimSwap, checks.ErrUnknownNumber, "PHONE_NUMBER_NOT_APPLICABLE"},
		{"422 DEVICE_NOT_APPLICABLE (legacy)", j(422, "DEVICE_NOT_APPLICABLE"), checks.SimSwap, checks.ErrUnknownNumber, "DEVICE_NOT_APPLICABLE"},
		{"422 NOT_SUPPORTED (legacy)", j(422, "NOT_SUPPORTED"), checks.SimSwap, checks.ErrUnknownNumber, "NOT_SUPPORTED"},
		{"422 without CAMARA body", reply{status: 422, body: "nope"}, checks.SimSwap, checks.ErrInvalid, ""},
		{"429 TOO_MANY_REQUESTS", j(429, "TOO_MANY_REQUESTS"), checks.SimSwap, checks.ErrRateLimited, "TOO_MANY_REQUESTS"},
		{"429 QUOTA_EXCEEDED", j(429, "QUOTA_EXCEEDED"), checks.Roaming, checks.ErrRateLimited, "QUOTA_EXCEEDED"},
		{"500 INTERNAL", j(500, "INTERNAL"), checks.SimSwap, checks.ErrUnavailable, "INTERNAL"},
		{"501 NOT_IMPLEMENTED", j(501, "NOT_IMPLEMENTED"), checks.CallForwarding, checks.ErrUnsupported, "NOT_IMPLEMENTED"},
		{"502 HTML from a gateway", reply{status: 502, contentType: "text/html", body: "<html><body>Bad Gateway</body></html>"}, checks.SimSwap, checks.ErrUnavailable, ""},
		{"503 UNAVAILABLE", j(503, "UNAVAILABLE"), checks.Roaming, checks.ErrUnavailable, "UNAVAILABLE"},
		{"503 empty body", reply{status: 503}, checks.SimSwap, checks.ErrUnavailable, ""},
		{"504 TIMEOUT", j(504, "TIMEOUT"), checks.SimSwap, checks.ErrUnavailable, "TIMEOUT"},
		{"200 not JSON", reply{status: 200, contentType: "text/html", body: "<html>login</html>"}, checks.SimSwap, checks.ErrUnavailable, ""},
		{"200 empty object", reply{status: 200, contentType: "application/json", body: "{}"}, checks.SimSwap, checks.ErrUnavailable, ""},
		{"200 wrong type", reply{status: 200, contentType: "application/json", body: `{"swapped":"yes"}`}, checks.SimSwap, checks.ErrUnavailable, ""},
		{"200 null", reply{status: 200, contentType: "application/json", body: "null"}, checks.CallForwarding, checks.ErrUnavailable, ""},
		{"200 object without roaming", reply{status: 200, contentType: "application/json", body: `{"active":true}`}, checks.Roaming, checks.ErrUnavailable, ""},
		{"200 oversized", reply{status: 200, contentType: "application/json", body: `{"swapped":true,"pad":"` + strings.Repeat("x", 70000) + `"}`}, checks.SimSwap, checks.ErrUnavailable, ""},
		{"404 oversized non-CAMARA body", reply{status: 404, contentType: "text/html", body: strings.Repeat("x", 70000)}, checks.SimSwap, checks.ErrInvalid, ""},
		{"503 oversized body", reply{status: 503, contentType: "text/html", body: strings.Repeat("x", 70000)}, checks.SimSwap, checks.ErrUnavailable, ""},
		{"timeout", reply{delay: true}, checks.SimSwap, checks.ErrUnavailable, ""},
	}
	f := newFakeCarrier(t, testNow)
	srv := f.start("")
	p, err := New(Config{Name: "op", BaseURL: srv.URL, Timeout: 100 * time.Millisecond,
		HTTPClient: &http.Client{Transport: bearer{"SECRET-TOKEN"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			number := fmt.Sprintf("+4477009002%02d", i)
			f.replies[number] = tt.reply
			start := time.Now()
			_, err := p.Check(context.Background(), checks.Query{MSISDN: number, Signal: tt.signal, MaxAge: time.Hour, CorrelationID: "corr-" + fmt.Sprint(i)})
			if !errors.Is(err, tt.want) || checks.Kind(err) != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "SECRET-TOKEN") {
				t.Fatalf("error leaks the token: %v", err)
			}
			if !strings.Contains(err.Error(), "corr-"+fmt.Sprint(i)) {
				t.Fatalf("error lacks the x-correlator: %v", err)
			}
			if tt.reply.delay {
				if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
					t.Fatalf("timeout: %v after %v", err, time.Since(start))
				}
				return
			}
			var ae *checks.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v is not an *APIError", err)
			}
			if ae.Code != tt.wantCode || ae.CorrelationID != "corr-"+fmt.Sprint(i) {
				t.Fatalf("APIError = %+v, want code %q", ae, tt.wantCode)
			}
			if ae.HTTPStatus != tt.reply.status {
				t.Fatalf("HTTPStatus = %d, want %d", ae.HTTPStatus, tt.reply.status)
			}
		})
	}
}

// bearer stands in for the OAuth2 client: it adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// sentinelTransport fails like an OAuth2 client that already classified its failure.
type sentinelTransport struct{ err error }

func (s sentinelTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, s.err }

func TestTransportErrors(t *testing.T) {
	f := newFakeCarrier(t, testNow)
	srv := f.start("")
	url := srv.URL
	srv.Close()
	p, err := New(Config{BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Check(context.Background(), checks.Query{MSISDN: "+447700900001", Signal: checks.SimSwap}); !errors.Is(err, checks.ErrUnavailable) {
		t.Fatalf("connection refused: err = %v", err)
	}
	p, _ = New(Config{BaseURL: url, HTTPClient: &http.Client{Transport: sentinelTransport{fmt.Errorf("token endpoint said invalid_client: %w", checks.ErrUnauthorized)}}})
	if _, err := p.Check(context.Background(), checks.Query{MSISDN: "+447700900001", Signal: checks.SimSwap}); checks.Kind(err) != checks.ErrUnauthorized {
		t.Fatalf("classified transport error: err = %v", err)
	}
}

func TestCarrierMessageSanitized(t *testing.T) {
	f := newFakeCarrier(t, testNow)
	f.replies["+447700900001"] = reply{status: 400, contentType: "application/json",
		body: fmt.Sprintf(`{"status":400,"code":"INVALID_ARGUMENT","message":"line1\nline2\u001b[31m%s"}`, strings.Repeat("x", 500))}
	p := newProvider(t, f, nil)
	_, err := p.Check(context.Background(), checks.Query{MSISDN: "+447700900001", Signal: checks.SimSwap})
	var ae *checks.APIError
	if !errors.As(err, &ae) || strings.ContainsAny(ae.Message, "\n\x1b") || len([]rune(ae.Message)) > 201 {
		t.Fatalf("message not sanitized: %q", ae.Message)
	}
}

func TestInvalidQueries(t *testing.T) {
	f := newFakeCarrier(t, testNow)
	p := newProvider(t, f, nil)
	for _, q := range []checks.Query{
		{MSISDN: "447700900001", Signal: checks.SimSwap},
		{MSISDN: "+44 7700 900001", Signal: checks.SimSwap},
		{MSISDN: "", Signal: checks.CallForwarding},
	} {
		if _, err := p.Check(context.Background(), q); !errors.Is(err, checks.ErrInvalid) {
			t.Errorf("%q: err = %v, want ErrInvalid", q.MSISDN, err)
		}
	}
	if _, err := p.Check(context.Background(), checks.Query{MSISDN: "+447700900001", Signal: "number_verification"}); !errors.Is(err, checks.ErrUnsupported) {
		t.Errorf("unknown signal: err = %v, want ErrUnsupported", err)
	}
	if f.count() != 0 {
		t.Fatalf("invalid queries reached the carrier")
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{BaseURL: "https://api.operator.example/camara"}, true},
		{"http", Config{BaseURL: "http://127.0.0.1:9091"}, true},
		{"empty", Config{}, false},
		{"relative", Config{BaseURL: "/camara"}, false},
		{"ftp", Config{BaseURL: "ftp://api.operator.example"}, false},
		{"no host", Config{BaseURL: "https:///camara"}, false},
		{"user info", Config{BaseURL: "https://client:secret@api.operator.example"}, false},
		{"query", Config{BaseURL: "https://api.operator.example/?key=x"}, false},
		{"unparsable", Config{BaseURL: "https://api.operator.example/%zz"}, false},
		{"sim mode", Config{BaseURL: "https://a.example", SimSwapMode: "retrieve"}, false},
		{"device mode", Config{BaseURL: "https://a.example", DeviceSwapMode: "list"}, false},
		{"forwarding mode", Config{BaseURL: "https://a.example", ForwardingMode: "all"}, false},
		{"negative timeout", Config{BaseURL: "https://a.example", Timeout: -time.Second}, false},
		{"path with query", Config{BaseURL: "https://a.example", Paths: Paths{SimSwapCheck: "/check?x=1"}}, false},
		{"absolute path override", Config{BaseURL: "https://a.example", Paths: Paths{RoamingRetrieve: "https://b.example/roaming/v1/retrieve"}}, true},
		{"bad absolute path override", Config{BaseURL: "https://a.example", Paths: Paths{RoamingRetrieve: "ftp://b.example/x"}}, false},
		{"disabled paths", Config{BaseURL: "https://a.example", Paths: Paths{DeviceSwapCheck: Disabled, RoamingRetrieve: Disabled}}, true},
	}
	for _, tt := range tests {
		p, err := New(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
			continue
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error leaks the password: %v", tt.name, err)
		}
		if err == nil && p.Name() != "camara" {
			t.Errorf("%s: default name %q", tt.name, p.Name())
		}
	}
	p, _ := New(Config{BaseURL: "https://a.example/camara/"})
	if p.sim.check != "https://a.example/camara/sim-swap/v2/check" || p.roaming != "https://a.example/camara/device-roaming-status/v1/retrieve" {
		t.Fatalf("default URLs: %s %s", p.sim.check, p.roaming)
	}
}

// TestBehindGuard runs the provider under a Guard: concurrent identical queries make one
// HTTP request, and an unknown number is cached.
func TestBehindGuard(t *testing.T) {
	f := newFakeCarrier(t, testNow)
	f.subs["+447700900001"] = subscriber{simSwap: ago(time.Hour)}
	p := newProvider(t, f, nil)
	g := checks.NewGuard(p, checks.GuardConfig{}, nil)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			res, err := g.Check(context.Background(), checks.Query{MSISDN: "+447700900001", Signal: checks.SimSwap, MaxAge: 72 * time.Hour})
			if err != nil || !res.Swapped {
				t.Errorf("%+v %v", res, err)
			}
		})
	}
	wg.Wait()
	for range 3 {
		if _, err := g.Check(context.Background(), checks.Query{MSISDN: "+447700900002", Signal: checks.SimSwap, MaxAge: 72 * time.Hour}); !errors.Is(err, checks.ErrUnknownNumber) {
			t.Fatalf("unknown: %v", err)
		}
	}
	// One request for the swapped number (coalesced or cached), one for the unknown one.
	if n := f.count(); n != 2 || g.Stats().Calls != 2 {
		t.Fatalf("carrier saw %d requests, guard made %d calls", n, g.Stats().Calls)
	}
}
