// Package camara is a checks.Provider speaking the carrier's CAMARA APIs: SIM Swap v2,
// Call Forwarding Signal v0.4, Device Swap v1 and Device Roaming Status v1.
//
// Every call is a POST of a JSON body with an x-correlator header, bounded by a timeout
// and a 64 KiB response limit. Authentication is the job of the http.Client given in
// Config (built by checks/oauth). Operators differ in paths, API versions, the name of the
// phone number field and which SIM Swap or Call Forwarding endpoint they offer; all of
// that is configuration, never code that knows operator names.
//
// Error bodies ({status, code, message}) become *checks.APIError. Mapping to sentinels:
//
//	404 with a CAMARA body, IDENTIFIER_NOT_FOUND,        → checks.ErrUnknownNumber
//	  422 SERVICE_NOT_APPLICABLE, legacy codes (SIM_SWAP.UNKNOWN_PHONE_NUMBER,
//	  *.PHONE_NUMBER_NOT_MANAGED_BY_OPERATOR, PHONE_NUMBER_NOT_APPLICABLE,
//	  DEVICE_NOT_APPLICABLE, 422 NOT_SUPPORTED)
//	404 without a CAMARA body (no such route)          → checks.ErrInvalid
//	400, other 422 (MISSING_IDENTIFIER, UNNECESSARY_IDENTIFIER,
//	  UNSUPPORTED_IDENTIFIER, ...), other 4xx (409, ...) → checks.ErrInvalid
//	401, 403                                           → checks.ErrUnauthorized
//	429                                                → checks.ErrRateLimited
//	501                                                → checks.ErrUnsupported
//	408, 5xx, network errors, timeouts, malformed
//	  or oversized success bodies                      → checks.ErrUnavailable
package camara

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/smppguard/smppguard/checks"
)

// Modes of Config.SimSwapMode and Config.DeviceSwapMode.
const (
	// ModeCheck posts maxAge to the check endpoint and takes its swapped answer.
	ModeCheck = "check"
	// ModeRetrieveDate posts to retrieve-date and compares the date with MaxAge.
	ModeRetrieveDate = "retrieve-date"
)

// Modes of Config.ForwardingMode.
const (
	// ModeUnconditional asks unconditional-call-forwardings for {active}.
	ModeUnconditional = "unconditional"
	// ModeList asks call-forwardings for the list of active forwarding types.
	ModeList = "list"
)

// Disabled, as a path, marks an endpoint the operator does not offer: queries that need it
// fail with checks.ErrUnsupported without a request.
const Disabled = "-"

// Default paths, relative to Config.BaseURL.
const (
	DefaultSimSwapCheck                = "/sim-swap/v2/check"
	DefaultSimSwapRetrieveDate         = "/sim-swap/v2/retrieve-date"
	DefaultCallForwardingUnconditional = "/call-forwarding-signal/v0.4/unconditional-call-forwardings"
	DefaultCallForwardingList          = "/call-forwarding-signal/v0.4/call-forwardings"
	DefaultDeviceSwapCheck             = "/device-swap/v1/check"
	DefaultDeviceSwapRetrieveDate      = "/device-swap/v1/retrieve-date"
	DefaultRoamingRetrieve             = "/device-roaming-status/v1/retrieve"
)

// DefaultTimeout bounds one HTTP call when Config.Timeout is zero.
const DefaultTimeout = time.Second

// maxBody is the largest response body read; larger answers are ErrUnavailable.
const maxBody = 64 << 10

// Config configures a Provider.
type Config struct {
	// Name identifies the provider in results and errors; default "camara".
	Name string
	// BaseURL is the API root, e.g. "https://api.operator.example/camara": http or https,
	// a host, no user info, query or fragment.
	BaseURL string
	// Paths overrides endpoint paths per operator; zero fields take the defaults.
	Paths Paths
	// SimSwapMode is "check" (default: POST check with maxAge, take swapped) or
	// "retrieve-date" (POST retrieve-date; swapped = latestSimChange within MaxAge; null
	// with a monitoredPeriod covering MaxAge, or null alone, is not swapped).
	SimSwapMode string
	// DeviceSwapMode is the same choice for Device Swap; default "check".
	DeviceSwapMode string
	// ForwardingMode is "unconditional" (default: POST unconditional-call-forwardings,
	// take active) or "list" (POST call-forwardings; forwarding = the list contains
	// "unconditional"; "call_forwarding_unconditional" and "CFU" are accepted too, any case).
	ForwardingMode string
	// PhoneField is the JSON field carrying the number; default "phoneNumber". For
	// roaming it is the field inside the "device" object.
	PhoneField string
	// HTTPClient sends the requests and does authentication; nil means
	// http.DefaultClient (tests only: no credentials).
	HTTPClient *http.Client
	// Timeout bounds one HTTP call; default 1s.
	Timeout time.Duration
	// Now is the clock for FetchedAt and retrieve-date comparisons; default time.Now.
	Now func() time.Time
}

// Paths are per-operator endpoint paths. A path is joined to BaseURL unless it is an
// absolute http(s) URL; Disabled ("-") marks an endpoint the operator does not offer.
type Paths struct {
	SimSwapCheck                string
	SimSwapRetrieveDate         string
	CallForwardingUnconditional string
	CallForwardingList          string
	DeviceSwapCheck             string
	DeviceSwapRetrieveDate      string
	RoamingRetrieve             string
}

// Provider is a checks.Provider for one operator's CAMARA APIs. It is safe for concurrent
// use.
type Provider struct {
	name       string
	client     *http.Client
	timeout    time.Duration
	now        func() time.Time
	phoneField string
	fwdMode    string
	sim, dev   swapAPI
	fwdUncond  string // URL, "" = not offered
	fwdList    string
	roaming    string
}

// swapAPI describes one of the two swap APIs, which have the same shape.
type swapAPI struct {
	what      string // "sim-swap" / "device-swap", for messages
	mode      string
	check     string // URL, "" = not offered
	retrieve  string
	dateField string // latestSimChange / latestDeviceChange
}

// New validates cfg and returns a Provider.
func New(cfg Config) (*Provider, error) {
	name := cfg.Name
	if name == "" {
		name = "camara"
	}
	base, err := parseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("camara %s: base URL: %w", name, err)
	}
	p := &Provider{
		name: name, client: cfg.HTTPClient, timeout: cfg.Timeout, now: cfg.Now,
		phoneField: cfg.PhoneField, fwdMode: cfg.ForwardingMode,
		sim: swapAPI{what: "sim-swap", mode: cfg.SimSwapMode, dateField: "latestSimChange"},
		dev: swapAPI{what: "device-swap", mode: cfg.DeviceSwapMode, dateField: "latestDeviceChange"},
	}
	if p.client == nil {
		p.client = http.DefaultClient
	}
	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	if p.timeout < 0 {
		return nil, fmt.Errorf("camara %s: negative timeout %s", name, p.timeout)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.phoneField == "" {
		p.phoneField = "phoneNumber"
	}
	for _, m := range []*string{&p.sim.mode, &p.dev.mode} {
		switch *m {
		case "":
			*m = ModeCheck
		case ModeCheck, ModeRetrieveDate:
		default:
			return nil, fmt.Errorf("camara %s: swap mode %q: want %q or %q", name, *m, ModeCheck, ModeRetrieveDate)
		}
	}
	switch p.fwdMode {
	case "":
		p.fwdMode = ModeUnconditional
	case ModeUnconditional, ModeList:
	default:
		return nil, fmt.Errorf("camara %s: forwarding mode %q: want %q or %q", name, p.fwdMode, ModeUnconditional, ModeList)
	}
	for _, ep := range []struct {
		dst       *string
		path, def string
		field     string
	}{
		{&p.sim.check, cfg.Paths.SimSwapCheck, DefaultSimSwapCheck, "SimSwapCheck"},
		{&p.sim.retrieve, cfg.Paths.SimSwapRetrieveDate, DefaultSimSwapRetrieveDate, "SimSwapRetrieveDate"},
		{&p.fwdUncond, cfg.Paths.CallForwardingUnconditional, DefaultCallForwardingUnconditional, "CallForwardingUnconditional"},
		{&p.fwdList, cfg.Paths.CallForwardingList, DefaultCallForwardingList, "CallForwardingList"},
		{&p.dev.check, cfg.Paths.DeviceSwapCheck, DefaultDeviceSwapCheck, "DeviceSwapCheck"},
		{&p.dev.retrieve, cfg.Paths.DeviceSwapRetrieveDate, DefaultDeviceSwapRetrieveDate, "DeviceSwapRetrieveDate"},
		{&p.roaming, cfg.Paths.RoamingRetrieve, DefaultRoamingRetrieve, "RoamingRetrieve"},
	} {
		u, err := endpoint(base, ep.path, ep.def)
		if err != nil {
			return nil, fmt.Errorf("camara %s: path %s: %w", name, ep.field, err)
		}
		*ep.dst = u
	}
	return p, nil
}

// parseURL accepts absolute http(s) URLs with a host and nothing that could carry
// credentials or break path joining. Errors never repeat a password.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, err
	}
	var why string
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		why = "scheme must be http or https"
	case u.Host == "":
		why = "no host"
	case u.User != nil:
		why = "user info is not allowed (credentials belong to the OAuth2 client)"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		why = "query and fragment are not allowed"
	default:
		return u, nil
	}
	return nil, fmt.Errorf("%q: %s", u.Redacted(), why)
}

// endpoint resolves one path setting to a URL ("" when Disabled).
func endpoint(base *url.URL, path, def string) (string, error) {
	switch strings.TrimSpace(path) {
	case Disabled:
		return "", nil
	case "":
		path = def
	}
	if strings.Contains(path, "://") {
		u, err := parseURL(path)
		if err != nil {
			return "", err
		}
		return u.String(), nil
	}
	if strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("%q: query and fragment are not allowed", path)
	}
	u := *base
	u.Path = strings.TrimRight(base.Path, "/") + "/" + strings.TrimLeft(path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// Name returns the provider's name.
func (p *Provider) Name() string { return p.name }

// Check asks the carrier about q.MSISDN for q.Signal.
func (p *Provider) Check(ctx context.Context, q checks.Query) (checks.Result, error) {
	if !checks.IsE164(q.MSISDN) {
		return checks.Result{}, fmt.Errorf("camara %s: the number is not in E.164 form: %w", p.name, checks.ErrInvalid)
	}
	c := call{p: p, corr: correlator(q.CorrelationID)}
	var (
		res checks.Result
		err error
	)
	switch q.Signal {
	case checks.SimSwap:
		res, err = c.swap(ctx, p.sim, q)
	case checks.DeviceSwap:
		res, err = c.swap(ctx, p.dev, q)
	case checks.CallForwarding:
		res, err = c.forwarding(ctx, q)
	case checks.Roaming:
		res, err = c.roaming(ctx, q)
	default:
		err = fmt.Errorf("camara %s: signal %q: %w", p.name, q.Signal, checks.ErrUnsupported)
	}
	if err != nil {
		return checks.Result{}, err
	}
	res.Signal, res.Source, res.FetchedAt, res.Latency, res.CorrelationID = q.Signal, p.name, p.now(), c.latency, c.corr
	return res, nil
}
