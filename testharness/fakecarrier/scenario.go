package fakecarrier

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Scenario is what the fake carrier knows: its OAuth2 clients and the state of each number.
type Scenario struct {
	Clients []Client          `yaml:"clients,omitempty"`
	Numbers map[string]Number `yaml:"numbers,omitempty"` // E.164 with '+'
	Default Number            `yaml:"default,omitempty"` // numbers not listed (clean unless set)
}

// Client is an OAuth2 client allowed to ask for tokens.
//
// A client with a ClientSecret may authenticate with client_secret_basic or
// client_secret_post; a client with a public key (PublicKeyFile or PublicKeyPEM: a PEM
// "PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE"; RSA for RS256, P-256 for ES256) with
// private_key_jwt. Both may be set.
type Client struct {
	ClientID      string `yaml:"client_id,omitempty"`
	ClientSecret  string `yaml:"client_secret,omitempty"`
	PublicKeyFile string `yaml:"public_key_file,omitempty"` // relative paths are relative to the scenario file
	PublicKeyPEM  string `yaml:"public_key_pem,omitempty"`
	// Scopes the client may ask for; empty = every API scope. A "dpv:" entry restricts the
	// purposes it may name too (otherwise any dpv: purpose is accepted, see
	// Config.RequirePurpose).
	Scopes   []string      `yaml:"scopes,omitempty"`
	TokenTTL time.Duration `yaml:"token_ttl,omitempty"` // lifetime of issued tokens; 0 = 1h
}

// Number is the carrier's state for one phone number. Every timestamp is relative to the
// server's clock (Config.Now) at the time of each request.
type Number struct {
	SimChangedAgo *Duration  `yaml:"sim_changed_ago,omitempty"` // last SIM change this long before now (nil = none known)
	SimChangedAt  *time.Time `yaml:"sim_changed_at,omitempty"`  // or at this instant (set one of the two)
	// MonitoredDays is how many days of history the carrier keeps (0 = unlimited). A change
	// older than that (or none) is answered by retrieve-date as null with this monitoredPeriod,
	// and check with a maxAge longer than that gets 400 OUT_OF_RANGE, as the SIM Swap spec
	// describes. It applies to SIM Swap and Device Swap alike.
	MonitoredDays    int        `yaml:"monitored_days,omitempty"`
	Forwardings      []string   `yaml:"forwardings,omitempty"`        // active: unconditional, conditional_busy, conditional_not_reachable, conditional_no_answer
	DeviceChangedAgo *Duration  `yaml:"device_changed_ago,omitempty"` // last device swap this long before now (nil = none known)
	DeviceChangedAt  *time.Time `yaml:"device_changed_at,omitempty"`
	Roaming          bool       `yaml:"roaming,omitempty"`
	CountryCode      int        `yaml:"country_code,omitempty"` // visited MCC, when roaming (0 = not reported)
	CountryName      []string   `yaml:"country_name,omitempty"` // ISO 3166 alpha-2 codes of that MCC, when roaming
	Latency          Duration   `yaml:"latency,omitempty"`      // added delay per API call (cut short when the client gives up)
	// Error, when set, answers API calls for this number with an error instead.
	Error *InjectedError `yaml:"error,omitempty"`
	// Unknown answers every API call for the number with 404 IDENTIFIER_NOT_FOUND.
	Unknown bool `yaml:"unknown,omitempty"`
	// Timeout never answers an API call for the number: the handler waits until the client
	// gives up (request context) or the server closes (connection aborted).
	Timeout bool `yaml:"timeout,omitempty"`
}

// InjectedError is an error answer in the CAMARA error format {status, code, message}.
type InjectedError struct {
	Status  int    `yaml:"status,omitempty"`  // HTTP status, 400..599
	Code    string `yaml:"code,omitempty"`    // default by status: 401 UNAUTHENTICATED, 404 IDENTIFIER_NOT_FOUND, 422 SERVICE_NOT_APPLICABLE, 429 TOO_MANY_REQUESTS, 500 INTERNAL, 503 UNAVAILABLE, ...
	Message string `yaml:"message,omitempty"` // default: the spec's example message for the code
	Times   int    `yaml:"times,omitempty"`   // answer this many matching calls with the error, then normally; 0 = always
	// Endpoints the error applies to, by API ("sim-swap", "call-forwarding-signal",
	// "device-swap", "device-roaming-status") or endpoint ("sim-swap/check", see the Endpoint
	// constants); empty = all.
	Endpoints []string `yaml:"endpoints,omitempty"`
}

// Duration is a time.Duration written in YAML as "500ms", "30s", "2h", "1h30m" or with a
// leading day count, "3d" or "2d12h". A bare 0 is accepted; negative values are not.
type Duration time.Duration

// Ago returns a *Duration for the *Ago fields of Number.
func Ago(d time.Duration) *Duration { v := Duration(d); return &v }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like "2h", "1h30m" or "1.5s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText writes d as a duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration such as \"2h\"", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*d = v
	return nil
}

// ParseDuration parses "0", a time.ParseDuration string, or one with a leading day count
// ("3d", "2d12h"). Negative durations are refused.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q; write e.g. \"30s\", \"2h\", \"3d\" or \"1d12h\"", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return Duration(days), nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q; write e.g. \"30s\", \"2h\", \"3d\" or \"1d12h\"", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return Duration(days + v), nil
}

// Forwarding types of the Call Forwarding Signal spec (CallForwardingSignal enum, less
// "inactive", which is what an empty list is reported as).
const (
	ForwardUnconditional   = "unconditional"
	ForwardBusy            = "conditional_busy"
	ForwardNotReachable    = "conditional_not_reachable"
	ForwardNoAnswer        = "conditional_no_answer"
	forwardingInactiveName = "inactive"
)

var forwardingTypes = []string{ForwardUnconditional, ForwardBusy, ForwardNotReachable, ForwardNoAnswer}

// DefaultScenario is the sandbox's: client "smppguard" / "sandbox-secret" (every scope,
// 1h tokens); +447700900001 SIM swapped 2h ago; +447700900002 unconditional call forwarding
// active; +447700900003 clean; +447700900004 unknown to the carrier; everything else clean.
func DefaultScenario() Scenario {
	return Scenario{
		Clients: []Client{{ClientID: "smppguard", ClientSecret: "sandbox-secret", TokenTTL: time.Hour}},
		Numbers: map[string]Number{
			"+447700900001": {SimChangedAgo: Ago(2 * time.Hour)},
			"+447700900002": {Forwardings: []string{ForwardUnconditional}},
			"+447700900003": {},
			"+447700900004": {Unknown: true},
		},
	}
}

// LoadScenario reads a YAML scenario. Unknown keys, malformed numbers, unknown scopes,
// forwardings or endpoints, unreadable keys and the like are errors, reported together.
func LoadScenario(path string) (Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("fakecarrier: scenario: %w", err)
	}
	sc, err := parseScenario(b, filepath.Dir(path))
	if err != nil {
		return Scenario{}, fmt.Errorf("fakecarrier: scenario %s: %w", path, err)
	}
	return sc, nil
}

// parseScenario decodes strictly and validates; relative key files are resolved against dir.
func parseScenario(b []byte, dir string) (Scenario, error) {
	var sc Scenario
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		if errors.Is(err, io.EOF) {
			return Scenario{}, errors.New("empty scenario")
		}
		return Scenario{}, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Scenario{}, errors.New("more than one YAML document")
	}
	for i := range sc.Clients {
		if f := sc.Clients[i].PublicKeyFile; f != "" && !filepath.IsAbs(f) && dir != "" {
			sc.Clients[i].PublicKeyFile = filepath.Join(dir, f)
		}
	}
	if _, err := sc.compile(); err != nil {
		return Scenario{}, err
	}
	return sc, nil
}

// MarshalYAML-friendly dump of a scenario (used by -print-scenario).
func (sc Scenario) yaml() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(sc); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

var phoneRE = regexp.MustCompile(`^\+[1-9][0-9]{4,14}$`)

// clientState is a validated client.
type clientState struct {
	Client
	key     any // *rsa.PublicKey or *ecdsa.PublicKey (P-256), nil if none
	allowed map[string]bool
	purpose map[string]bool // allowed dpv: scopes; nil = any
}

func (c *clientState) methods() []string {
	var m []string
	if c.ClientSecret != "" {
		m = append(m, AuthBasic, AuthPost)
	}
	if c.key != nil {
		m = append(m, AuthPrivateKeyJWT)
	}
	return m
}

// compile validates the scenario and returns its clients by id.
func (sc *Scenario) compile() (map[string]*clientState, error) {
	var problems []string
	add := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	clients := map[string]*clientState{}
	for i, c := range sc.Clients {
		p := fmt.Sprintf("clients[%d]", i)
		if c.ClientID == "" {
			add("%s.client_id: required", p)
		} else if _, dup := clients[c.ClientID]; dup {
			add("%s.client_id: %q given twice", p, c.ClientID)
		}
		cs := &clientState{Client: c, allowed: map[string]bool{}}
		if c.PublicKeyFile != "" && c.PublicKeyPEM != "" {
			add("%s: set public_key_file or public_key_pem, not both", p)
		}
		pemData := []byte(c.PublicKeyPEM)
		if c.PublicKeyFile != "" {
			b, err := os.ReadFile(c.PublicKeyFile)
			if err != nil {
				add("%s.public_key_file: %v", p, err)
			}
			pemData = b
		}
		if len(pemData) > 0 {
			k, err := parsePublicKey(pemData)
			if err != nil {
				add("%s: public key: %v", p, err)
			}
			cs.key = k
		}
		if c.ClientSecret == "" && c.PublicKeyFile == "" && c.PublicKeyPEM == "" {
			add("%s: set client_secret (client_secret_basic/post) or a public key (private_key_jwt)", p)
		}
		for _, s := range c.Scopes {
			switch {
			case strings.HasPrefix(s, "dpv:") && len(s) > 4:
				if cs.purpose == nil {
					cs.purpose = map[string]bool{}
				}
				cs.purpose[s] = true
			case slices.Contains(APIScopes, s):
				cs.allowed[s] = true
			default:
				add("%s.scopes: unknown scope %q (want one of %s, or a dpv: purpose)", p, s, strings.Join(APIScopes, ", "))
			}
		}
		if len(cs.allowed) == 0 {
			for _, s := range APIScopes {
				cs.allowed[s] = true
			}
		}
		if c.TokenTTL < 0 {
			add("%s.token_ttl: must not be negative", p)
		}
		if cs.TokenTTL == 0 {
			cs.TokenTTL = time.Hour
		}
		if c.ClientID != "" {
			clients[c.ClientID] = cs
		}
	}
	keys := make([]string, 0, len(sc.Numbers))
	for k := range sc.Numbers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !phoneRE.MatchString(k) {
			add("numbers: %q is not an E.164 number with '+' (^\\+[1-9][0-9]{4,14}$)", k)
		}
		for _, pr := range sc.Numbers[k].problems() {
			add("numbers[%s].%s", k, pr)
		}
	}
	for _, pr := range sc.Default.problems() {
		add("default.%s", pr)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return clients, nil
}

// problems lists what is wrong with n.
func (n Number) problems() []string {
	var p []string
	if n.SimChangedAgo != nil && n.SimChangedAt != nil {
		p = append(p, "sim_changed_ago/sim_changed_at: set one, not both")
	}
	if n.DeviceChangedAgo != nil && n.DeviceChangedAt != nil {
		p = append(p, "device_changed_ago/device_changed_at: set one, not both")
	}
	if (n.SimChangedAgo != nil && *n.SimChangedAgo < 0) || (n.DeviceChangedAgo != nil && *n.DeviceChangedAgo < 0) || n.Latency < 0 {
		p = append(p, "durations must not be negative")
	}
	if n.MonitoredDays < 0 {
		p = append(p, "monitored_days: must not be negative")
	}
	seen := map[string]bool{}
	for _, f := range n.Forwardings {
		if !slices.Contains(forwardingTypes, f) {
			p = append(p, fmt.Sprintf("forwardings: unknown %q (want %s)", f, strings.Join(forwardingTypes, ", ")))
		} else if seen[f] {
			p = append(p, fmt.Sprintf("forwardings: %q given twice", f))
		}
		seen[f] = true
	}
	if n.CountryCode < 0 || n.CountryCode > 999 {
		p = append(p, "country_code: want a mobile country code 0..999")
	}
	if e := n.Error; e != nil {
		if e.Status < 400 || e.Status > 599 {
			p = append(p, fmt.Sprintf("error.status: %d is not an HTTP error status (400..599)", e.Status))
		}
		if e.Times < 0 {
			p = append(p, "error.times: must not be negative (0 = always)")
		}
		for _, ep := range e.Endpoints {
			if !validEndpointName(ep) {
				p = append(p, fmt.Sprintf("error.endpoints: unknown %q (want an API: %s; or an endpoint: %s)", ep, strings.Join(apiNames, ", "), strings.Join(apiEndpoints, ", ")))
			}
		}
	}
	return p
}

// parsePublicKey reads a PEM public key or certificate: RSA, or ECDSA on P-256.
func parsePublicKey(b []byte) (any, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block found")
	}
	var k any
	var err error
	switch blk.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(blk.Bytes); err == nil {
			k = c.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: want at least 2048", k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("EC key on %s: ES256 needs P-256", k.Curve.Params().Name)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("%T: want an RSA (RS256) or P-256 EC (ES256) key", k)
	}
}
