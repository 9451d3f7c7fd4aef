package config

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/smppguard/smppguard/smpp"
)

// Provider types.
const (
	ProviderCAMARA = "camara"
	ProviderStatic = "static"
)

// Signals a policy can check.
const (
	SignalSimSwap        = "sim_swap"
	SignalCallForwarding = "call_forwarding"
	SignalDeviceSwap     = "device_swap"
	SignalRoaming        = "roaming"
)

// OTP actions.
const (
	ActionAllow   = "allow"
	ActionReject  = "reject"
	ActionReroute = "reroute"
	ActionDrop    = "drop"
	ActionFlag    = "flag"
)

// Provider is a source of signals about destination numbers.
type Provider struct {
	// Name is referenced by policies' checks.
	Name string `yaml:"name"`
	// Type is camara (the carrier's CAMARA APIs) or static (a file of numbers).
	Type string `yaml:"type"`

	// BaseURL (camara) is the API root the paths are appended to.
	BaseURL string `yaml:"base_url"`
	// Auth (camara) is how tokens are obtained.
	Auth ProviderAuth `yaml:"auth"`
	// SimSwapMode (camara): check (default) or retrieve-date.
	SimSwapMode string `yaml:"sim_swap_mode"`
	// ForwardingMode (camara): unconditional (default) or list.
	ForwardingMode string `yaml:"forwarding_mode"`
	// PhoneField (camara) is the JSON field carrying the number; default phoneNumber.
	PhoneField string `yaml:"phone_field"`
	// Paths (camara) override the default API paths per operator.
	Paths ProviderPaths `yaml:"paths"`
	// Timeout bounds one API call; default 1s.
	Timeout Duration `yaml:"timeout"`

	// File (static) is the YAML file of numbers and their signals.
	File string `yaml:"file"`

	// MaxConcurrent bounds concurrent calls to this provider; beyond it look-ups are shed.
	// Default 256.
	MaxConcurrent int `yaml:"max_concurrent"`
	// CacheTTL per signal.
	CacheTTL CacheTTL `yaml:"cache_ttl"`
	// ErrorTTL is how long a failed look-up is remembered; default 5s.
	ErrorTTL Duration `yaml:"error_ttl"`
	// BreakerFailures consecutive failures open the breaker for BreakerOpenFor.
	BreakerFailures int      `yaml:"breaker_failures"`
	BreakerOpenFor  Duration `yaml:"breaker_open_for"`
}

// ProviderAuth is OAuth2 client-credentials authentication to the carrier.
type ProviderAuth struct {
	// TokenURL, or DiscoveryURL (an OpenID configuration document naming the token endpoint).
	TokenURL     string `yaml:"token_url"`
	DiscoveryURL string `yaml:"discovery_url"`
	ClientID     string `yaml:"client_id"`
	// Method: client_secret_basic (default), client_secret_post or private_key_jwt.
	Method         string `yaml:"method"`
	ClientSecret   string `yaml:"client_secret"`
	PrivateKeyFile string `yaml:"private_key_file"`
	SigningAlg     string `yaml:"signing_alg"`
	KeyID          string `yaml:"key_id"`
	// Scopes are the API scopes; Purpose the dpv: purpose scope.
	Scopes  []string `yaml:"scopes"`
	Purpose string   `yaml:"purpose"`
	// None disables authentication (sandboxes only).
	None bool `yaml:"none"`
}

// ProviderPaths override the CAMARA API paths.
type ProviderPaths struct {
	SimSwapCheck                string `yaml:"sim_swap_check"`
	SimSwapRetrieveDate         string `yaml:"sim_swap_retrieve_date"`
	CallForwardingUnconditional string `yaml:"call_forwarding_unconditional"`
	CallForwardingList          string `yaml:"call_forwarding_list"`
	DeviceSwapCheck             string `yaml:"device_swap_check"`
	DeviceSwapRetrieveDate      string `yaml:"device_swap_retrieve_date"`
	RoamingRetrieve             string `yaml:"roaming_retrieve"`
}

// CacheTTL is how long each signal's answer is reused.
type CacheTTL struct {
	SimSwap        Duration `yaml:"sim_swap"`
	CallForwarding Duration `yaml:"call_forwarding"`
	DeviceSwap     Duration `yaml:"device_swap"`
	Roaming        Duration `yaml:"roaming"`
}

// Policy is an OTP policy accounts refer to by name.
type Policy struct {
	Name string `yaml:"name"`
	// Rules mark a message as an OTP; empty uses the built-in default rule set.
	Rules []OTPRule `yaml:"rules"`
	// Checks run for every OTP.
	Checks []PolicyCheck `yaml:"checks"`
	// Shadow: decide and record everything, enforce nothing.
	Shadow bool `yaml:"shadow"`
	// Deadline bounds all look-ups of one message; default 2s.
	Deadline Duration `yaml:"deadline"`
	// OnSaturated: throttle (default; ESME_RTHROTTLED) or fail_policy.
	OnSaturated string `yaml:"on_saturated"`
	// DefaultCountryCode turns national destination numbers into E.164 (e.g. "44").
	DefaultCountryCode string `yaml:"default_country_code"`
	// GSMPacked: data_coding 0 text is packed GSM 7-bit.
	GSMPacked bool `yaml:"gsm_packed"`
}

// OTPRule is one OTP recognition rule: all its set conditions must hold.
type OTPRule struct {
	Name          string `yaml:"name"`
	AllTraffic    bool   `yaml:"all_traffic"`
	TLVTag        int    `yaml:"tlv_tag"`
	TLVValue      string `yaml:"tlv_value"`
	ServiceType   string `yaml:"service_type"`
	SourcePattern string `yaml:"source_pattern"`
	TextPattern   string `yaml:"text_pattern"`
	// CodePattern must also match the text (e.g. the code itself: \b\d{4,8}\b).
	CodePattern string `yaml:"code_pattern"`
	// TextExclude, when it matches, stops the rule (e.g. "promo code").
	TextExclude string `yaml:"text_exclude"`
}

// PolicyCheck is one look-up and what its outcomes lead to.
type PolicyCheck struct {
	Signal   string   `yaml:"signal"`
	Provider string   `yaml:"provider"`
	MaxAge   Duration `yaml:"max_age"`
	// OnRisk applies when the signal is risky; default reject.
	OnRisk Outcome `yaml:"on_risk"`
	// OnError is the fail policy when the look-up fails or times out; default allow (fail open).
	OnError Outcome `yaml:"on_error"`
	// OnUnknown applies when the carrier does not know the number; default allow.
	OnUnknown Outcome `yaml:"on_unknown"`
}

// Outcome is an action and its parameters.
type Outcome struct {
	Action string `yaml:"action"`
	// Status (reject): an ESME_R* name or a number; default ESME_RSUBMITFAIL.
	Status string `yaml:"status"`
	// Route (reroute): a route name.
	Route string `yaml:"route"`
	// ReceiptStat (drop): REJECTD (default) or UNDELIV; ReceiptErr the receipt's err code.
	ReceiptStat string `yaml:"receipt_stat"`
	ReceiptErr  int    `yaml:"receipt_err"`
}

// OTP holds settings shared by all policies.
type OTP struct {
	// MaxInFlight bounds OTPs being looked up at once; default 1000.
	MaxInFlight int `yaml:"max_in_flight"`
	// ConcatTimeout: how long parts of a concatenated message wait for the rest; default 5s.
	ConcatTimeout Duration `yaml:"concat_timeout"`
	// ConcatFirstPartTimeout: how long the first part of a concatenated message waits alone
	// for a second one (once a second arrives, the parts wait up to ConcatTimeout). A sender
	// that waits for each part's answer before sending the next pays it once per message:
	// its later parts are decided on arrival, on the text of the parts so far. Default 1s
	// (an ESME with a window sends its parts within milliseconds), or ConcatTimeout if that
	// is shorter; at most ConcatTimeout. Maps to interceptor.ReassemblyConfig.FirstPartTimeout.
	ConcatFirstPartTimeout Duration `yaml:"concat_first_part_timeout"`
	// AuditFile, if set, gets one JSON line per OTP decision. It rotates at AuditMaxSizeMB
	// (default 100) and keeps AuditMaxFiles old files (default 10).
	AuditFile      string `yaml:"audit_file"`
	AuditMaxSizeMB int    `yaml:"audit_max_size_mb"`
	AuditMaxFiles  int    `yaml:"audit_max_files"`
	// MaskKeep: trailing digits of numbers left visible in logs and audit; default 4 when the
	// key is absent (an explicit 0 is kept and masks every digit).
	MaskKeep int `yaml:"mask_keep"`
}

// Provider returns the provider named name, or nil.
func (c *Config) Provider(name string) *Provider {
	for i := range c.Providers {
		if c.Providers[i].Name == name {
			return &c.Providers[i]
		}
	}
	return nil
}

// Policy returns the policy named name, or nil.
func (c *Config) Policy(name string) *Policy {
	for i := range c.Policies {
		if c.Policies[i].Name == name {
			return &c.Policies[i]
		}
	}
	return nil
}

// StatusCode returns the outcome's command_status (default ESME_RSUBMITFAIL).
func (o Outcome) StatusCode() smpp.Status {
	if o.Status == "" {
		return smpp.StatusSubmitFail
	}
	st, err := smpp.ParseStatus(o.Status)
	if err != nil {
		return smpp.StatusSubmitFail // validated at load
	}
	return st
}

func applyOTPDefaults(c *Config, unset func(string, bool) bool) {
	if len(c.Providers) == 0 {
		c.Providers = nil
	}
	if len(c.Policies) == 0 {
		c.Policies = nil
	}
	for i := range c.Providers {
		pv, p := &c.Providers[i], fmt.Sprintf("providers[%d].", i)
		if unset(p+"timeout", pv.Timeout == 0) {
			pv.Timeout = Duration(time.Second)
		}
		if unset(p+"max_concurrent", pv.MaxConcurrent == 0) {
			pv.MaxConcurrent = 256
		}
		if unset(p+"error_ttl", pv.ErrorTTL == 0) {
			pv.ErrorTTL = Duration(5 * time.Second)
		}
		if unset(p+"breaker_failures", pv.BreakerFailures == 0) {
			pv.BreakerFailures = 5
		}
		if unset(p+"breaker_open_for", pv.BreakerOpenFor == 0) {
			pv.BreakerOpenFor = Duration(10 * time.Second)
		}
		t := &pv.CacheTTL
		for _, f := range []struct {
			key string
			d   *Duration
			def time.Duration
		}{{"sim_swap", &t.SimSwap, 10 * time.Minute}, {"call_forwarding", &t.CallForwarding, 5 * time.Minute},
			{"device_swap", &t.DeviceSwap, 10 * time.Minute}, {"roaming", &t.Roaming, 5 * time.Minute}} {
			if unset(p+"cache_ttl."+f.key, *f.d == 0) {
				*f.d = Duration(f.def)
			}
		}
		if pv.Type == ProviderCAMARA && pv.Auth.Method == "" && !pv.Auth.None {
			pv.Auth.Method = "client_secret_basic"
		}
	}
	for i := range c.Policies {
		pl, p := &c.Policies[i], fmt.Sprintf("policies[%d].", i)
		if len(pl.Rules) == 0 {
			pl.Rules = nil
		}
		if len(pl.Checks) == 0 {
			pl.Checks = nil
		}
		if unset(p+"deadline", pl.Deadline == 0) {
			pl.Deadline = Duration(2 * time.Second)
		}
		if pl.OnSaturated == "" {
			pl.OnSaturated = "throttle"
		}
		for j := range pl.Checks {
			ch := &pl.Checks[j]
			if ch.OnRisk.Action == "" {
				ch.OnRisk.Action = ActionReject
			}
			if ch.OnError.Action == "" {
				ch.OnError.Action = ActionAllow
			}
			if ch.OnUnknown.Action == "" {
				ch.OnUnknown.Action = ActionAllow
			}
			if unset(fmt.Sprintf("%schecks[%d].max_age", p, j), ch.MaxAge == 0) && (ch.Signal == SignalSimSwap || ch.Signal == SignalDeviceSwap) {
				ch.MaxAge = Duration(72 * time.Hour)
			}
		}
	}
	if unset("admin.listen", c.Admin.Listen == "") {
		c.Admin.Listen = "127.0.0.1:8080"
	}
	if unset("admin.decisions", c.Admin.Decisions == 0) {
		c.Admin.Decisions = 1000
	}
	if unset("listen.bind_rate.per_second", c.Listen.BindRate.PerSecond == 0) {
		c.Listen.BindRate.PerSecond = 10
	}
	if unset("listen.bind_rate.burst", c.Listen.BindRate.Burst == 0) {
		c.Listen.BindRate.Burst = 20
	}
	if unset("relay.max_in_flight", c.Relay.MaxInFlight == 0) {
		c.Relay.MaxInFlight = 50000
	}
	if unset("listen.lockout.failures", c.Listen.Lockout.Failures == 0) {
		c.Listen.Lockout.Failures = 10
	}
	if unset("listen.lockout.window", c.Listen.Lockout.Window == 0) {
		c.Listen.Lockout.Window = Duration(time.Minute)
	}
	if unset("listen.lockout.duration", c.Listen.Lockout.Duration == 0) {
		c.Listen.Lockout.Duration = Duration(5 * time.Minute)
	}
	if fc := c.Sandbox.FakeCarrier; fc != nil && fc.Listen == "" {
		fc.Listen = "127.0.0.1:8089"
	}
	if unset("otp.max_in_flight", c.OTP.MaxInFlight == 0) {
		c.OTP.MaxInFlight = 1000
	}
	if unset("otp.concat_timeout", c.OTP.ConcatTimeout == 0) {
		c.OTP.ConcatTimeout = Duration(5 * time.Second)
	}
	if unset("otp.concat_first_part_timeout", c.OTP.ConcatFirstPartTimeout == 0) {
		c.OTP.ConcatFirstPartTimeout = min(Duration(time.Second), c.OTP.ConcatTimeout)
	}
	if unset("log.pdu_sample", c.Log.PDUSample == 0) {
		c.Log.PDUSample = 100
	}
	if unset("otp.audit_max_size_mb", c.OTP.AuditMaxSizeMB == 0) {
		c.OTP.AuditMaxSizeMB = 100
	}
	if unset("otp.audit_max_files", c.OTP.AuditMaxFiles == 0) {
		c.OTP.AuditMaxFiles = 10
	}
	if unset("otp.mask_keep", c.OTP.MaskKeep == 0) {
		c.OTP.MaskKeep = 4
	}
}

func (v *validator) otp(c *Config) {
	seen := map[string]string{}
	var provNames []string
	for i := range c.Providers {
		pv, p := &c.Providers[i], fmt.Sprintf("providers[%d]", i)
		v.name(p+".name", "provider", pv.Name, seen)
		provNames = append(provNames, pv.Name)
		switch pv.Type {
		case ProviderCAMARA:
			if u, err := url.Parse(pv.BaseURL); pv.BaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.add(p+".base_url", "%q is not an http(s) URL; set the carrier's CAMARA API root, e.g. https://api.operator.example/camara", pv.BaseURL)
			}
			a, ap := &pv.Auth, p+".auth"
			if !a.None {
				if a.TokenURL == "" && a.DiscoveryURL == "" {
					v.add(ap+".token_url", "required (or discovery_url); set the carrier's OAuth2 token endpoint, or auth: {none: true} for a sandbox without tokens")
				}
				if a.ClientID == "" {
					v.add(ap+".client_id", "required; set the client_id the carrier issued")
				}
				switch a.Method {
				case "client_secret_basic", "client_secret_post":
					if a.ClientSecret == "" {
						v.add(ap+".client_secret", "required for %s; set it (a ${ENV} reference keeps it out of the file)", a.Method)
					}
				case "private_key_jwt":
					if a.PrivateKeyFile == "" {
						v.add(ap+".private_key_file", "required for private_key_jwt; name a PEM key file readable only by smppguard (chmod 600)")
					} else if st, err := os.Stat(a.PrivateKeyFile); err != nil {
						v.add(ap+".private_key_file", "%v; check the path", err)
					} else if st.Mode().Perm()&0o077 != 0 {
						v.add(ap+".private_key_file", "%s is readable by group or others (mode %o); run chmod 600 %s", a.PrivateKeyFile, st.Mode().Perm(), a.PrivateKeyFile)
					}
					if a.SigningAlg != "" && !oneOf(a.SigningAlg, "RS256", "ES256") {
						v.add(ap+".signing_alg", "%q is not supported; use RS256 or ES256 (or omit it to follow the key type)", a.SigningAlg)
					}
				default:
					v.add(ap+".method", "%q is not a client authentication method; use client_secret_basic, client_secret_post or private_key_jwt", a.Method)
				}
				if a.Purpose != "" && len(a.Purpose) < 5 || a.Purpose != "" && a.Purpose[:4] != "dpv:" {
					v.add(ap+".purpose", "%q is not a purpose scope; CAMARA purposes look like dpv:FraudPreventionAndDetection", a.Purpose)
				}
			}
			if pv.SimSwapMode != "" && !oneOf(pv.SimSwapMode, "check", "retrieve-date") {
				v.add(p+".sim_swap_mode", "%q is not a mode; use check (default) or retrieve-date", pv.SimSwapMode)
			}
			if pv.ForwardingMode != "" && !oneOf(pv.ForwardingMode, "unconditional", "list") {
				v.add(p+".forwarding_mode", "%q is not a mode; use unconditional (default) or list", pv.ForwardingMode)
			}
		case ProviderStatic:
			if pv.File == "" {
				v.add(p+".file", "required for a static provider; name a YAML file of numbers")
			} else if _, err := os.Stat(pv.File); err != nil {
				v.add(p+".file", "%v; check the path", err)
			}
		default:
			v.add(p+".type", "%q is not a provider type; use camara or static", pv.Type)
		}
		v.positive(p+".timeout", pv.Timeout)
		v.atLeast(p+".max_concurrent", pv.MaxConcurrent, 1)
		v.atLeast(p+".breaker_failures", pv.BreakerFailures, 1)
	}
	seenPol := map[string]string{}
	for i := range c.Policies {
		pl, p := &c.Policies[i], fmt.Sprintf("policies[%d]", i)
		v.name(p+".name", "policy", pl.Name, seenPol)
		for j, r := range pl.Rules {
			rp := fmt.Sprintf("%s.rules[%d]", p, j)
			for _, f := range []struct{ key, re string }{{"source_pattern", r.SourcePattern}, {"text_pattern", r.TextPattern}, {"code_pattern", r.CodePattern}, {"text_exclude", r.TextExclude}} {
				if f.re == "" {
					continue
				}
				if _, err := regexp.Compile(f.re); err != nil {
					v.add(rp+"."+f.key, "not a valid regular expression: %v", err)
				}
			}
			if !r.AllTraffic && r.TLVTag == 0 && r.ServiceType == "" && r.SourcePattern == "" && r.TextPattern == "" && r.CodePattern == "" {
				v.add(rp, "a rule needs at least one condition (all_traffic, tlv_tag, service_type, source_pattern or text_pattern)")
			}
			v.intRange(rp+".tlv_tag", r.TLVTag, 0, 0xFFFF)
		}
		for j := range pl.Checks {
			ch, cp := &pl.Checks[j], fmt.Sprintf("%s.checks[%d]", p, j)
			if !oneOf(ch.Signal, SignalSimSwap, SignalCallForwarding, SignalDeviceSwap, SignalRoaming) {
				v.add(cp+".signal", "%q is not a signal; use sim_swap, call_forwarding, device_swap or roaming", ch.Signal)
			}
			if c.Provider(ch.Provider) == nil {
				v.add(cp+".provider", "%s", undefined("provider", ch.Provider, "providers", provNames))
			}
			v.nonNegative(cp+".max_age", ch.MaxAge)
			for _, o := range []struct {
				key string
				o   Outcome
			}{{"on_risk", ch.OnRisk}, {"on_error", ch.OnError}, {"on_unknown", ch.OnUnknown}} {
				v.outcome(c, cp+"."+o.key, o.o)
			}
		}
		v.positive(p+".deadline", pl.Deadline)
		if !oneOf(pl.OnSaturated, "throttle", "fail_policy") {
			v.add(p+".on_saturated", "%q is not a choice; use throttle or fail_policy", pl.OnSaturated)
		}
	}
	for i, rt := range c.Routes {
		if rt.Policy != "" && c.Policy(rt.Policy) == nil {
			var names []string
			for _, pl := range c.Policies {
				names = append(names, pl.Name)
			}
			v.add(fmt.Sprintf("routes[%d].policy", i), "%s", undefined("policy", rt.Policy, "policies", names))
		}
	}
	for i := range c.Accounts {
		a, p := &c.Accounts[i], fmt.Sprintf("accounts[%d].policy", i)
		if a.Policy != "" && c.Policy(a.Policy) == nil {
			var names []string
			for _, pl := range c.Policies {
				names = append(names, pl.Name)
			}
			v.add(p, "%s", undefined("policy", a.Policy, "policies", names))
		}
	}
	v.atLeast("otp.max_in_flight", c.OTP.MaxInFlight, 1)
	v.atLeast("relay.max_in_flight", c.Relay.MaxInFlight, 1)
	v.atLeast("listen.bind_rate.burst", c.Listen.BindRate.Burst, 1)
	if c.Listen.BindRate.PerSecond < 0 || !finite(c.Listen.BindRate.PerSecond) {
		v.add("listen.bind_rate.per_second", "must be 0 (unlimited) or positive")
	}
	for i, a := range c.Accounts {
		if a.TPS < 0 || !finite(a.TPS) {
			v.add(fmt.Sprintf("accounts[%d].tps", i), "must be 0 (unlimited) or positive")
		}
	}
	v.positive("otp.concat_timeout", c.OTP.ConcatTimeout)
	v.nonNegative("otp.concat_first_part_timeout", c.OTP.ConcatFirstPartTimeout)
	if c.OTP.ConcatFirstPartTimeout > c.OTP.ConcatTimeout && c.OTP.ConcatTimeout > 0 {
		v.add("otp.concat_first_part_timeout", "%s is longer than otp.concat_timeout (%s); make it shorter, e.g. 1s, or omit it", c.OTP.ConcatFirstPartTimeout, c.OTP.ConcatTimeout)
	}
	if c.OTP.MaskKeep < 0 {
		v.add("otp.mask_keep", "must be 0 (mask every digit) or more, got %d; omit it to keep the last 4 digits visible", c.OTP.MaskKeep)
	}
	v.atLeast("otp.audit_max_size_mb", c.OTP.AuditMaxSizeMB, 1)
	v.atLeast("otp.audit_max_files", c.OTP.AuditMaxFiles, 1)
}

func (v *validator) outcome(c *Config, p string, o Outcome) {
	switch o.Action {
	case ActionAllow, ActionFlag:
	case ActionReject:
		if o.Status != "" {
			if _, err := smpp.ParseStatus(o.Status); err != nil {
				v.add(p+".status", "%q is not a command_status; write a name like ESME_RSUBMITFAIL or a number like 0x45", o.Status)
			}
		}
	case ActionReroute:
		if o.Route == "" {
			v.add(p+".route", "required for reroute; name a route, one of %s", list(routeNames(c)))
		} else if c.Route(o.Route) == nil {
			v.add(p+".route", "%s", undefined("route", o.Route, "routes", routeNames(c)))
		}
	case ActionDrop:
		if o.ReceiptStat != "" && !oneOf(o.ReceiptStat, "REJECTD", "UNDELIV") {
			v.add(p+".receipt_stat", "%q is not allowed; use REJECTD (default) or UNDELIV", o.ReceiptStat)
		}
	default:
		v.add(p+".action", "%q is not an action; use allow, reject, reroute, drop or flag", o.Action)
	}
}
