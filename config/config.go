// Package config defines smppguard's configuration: one typed tree decoded
// from strict YAML, defaulted in one place (applyDefaults) and validated with
// "file:line: path: problem; how to fix" diagnostics.
//
// Use Load for a file on disk, Parse for bytes, and Default or DefaultYAML
// for the embedded sandbox configuration.
package config

import (
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Account modes.
const (
	// ModePooled accounts are authenticated by smppguard and their traffic is
	// relayed over smppguard's own upstream binds, chosen by routes.
	ModePooled = "pooled"
	// ModePassthrough accounts have their own bind forwarded to one upstream.
	ModePassthrough = "passthrough"
)

// Bind types used by Upstream.BindType and Account.BindTypes.
const (
	BindTransmitter = "transmitter"
	BindReceiver    = "receiver"
	BindTransceiver = "transceiver"
	// BindTxRx (upstreams only) opens one transmitter and one receiver bind
	// per bind slot.
	BindTxRx = "tx_rx"
)

// Message ID formats of the sandbox fake SMSC.
const (
	MessageIDHex     = "hex"
	MessageIDDecimal = "decimal"
	MessageIDUUID    = "uuid"
)

// Config is the root of smppguard's configuration.
type Config struct {
	Listen    Listen          `yaml:"listen"`
	Session   SessionDefaults `yaml:"session"`
	Upstreams []Upstream      `yaml:"upstreams"`
	Routes    []Route         `yaml:"routes"`
	Accounts  []Account       `yaml:"accounts"`
	MORules   []MORule        `yaml:"mo_rules"`
	Relay     Relay           `yaml:"relay"`
	Providers []Provider      `yaml:"providers"`
	Policies  []Policy        `yaml:"policies"`
	OTP       OTP             `yaml:"otp"`
	Admin     Admin           `yaml:"admin"`
	Sandbox   Sandbox         `yaml:"sandbox"`

	storeSet bool // relay.store_path was written in the file
	Log      Log  `yaml:"log"`
}

// Listen configures the ESME-facing SMPP listener.
type Listen struct {
	// SMPP is the host:port ESMEs connect to. Default "127.0.0.1:2775";
	// port 0 picks a free port (useful in tests).
	SMPP string `yaml:"smpp"`
	// MaxConns caps concurrent ESME connections. Default 10000, >= 1.
	MaxConns int `yaml:"max_connections"`
	// Lockout refuses binds from an address, or for a system_id, after repeated failed binds.
	Lockout Lockout `yaml:"lockout"`
	// TLS, when cert_file is set, serves SMPP over TLS (1.2 or later) on the listener.
	TLS ListenTLS `yaml:"tls"`
	// BindRate bounds bind attempts per source address. Default 10/s, burst 20.
	BindRate BindRate `yaml:"bind_rate"`
}

// SessionDefaults applies to every ESME session and upstream bind unless
// overridden per upstream or account.
type SessionDefaults struct {
	// Window is the maximum number of outstanding requests per bind.
	// Default 100; 1..10000.
	Window int `yaml:"window"`
	// MaxPDUSize is the largest PDU accepted, in bytes including the 16-byte
	// header. Default 65552 (64 KiB body + header); 64..16777216.
	MaxPDUSize int `yaml:"max_pdu_size"`
	// EnquireLinkInterval is the keepalive period. Default 30s; 0 disables;
	// otherwise >= 1s.
	EnquireLinkInterval Duration `yaml:"enquire_link_interval"`
	// InactivityTimeout closes a session that has been idle this long.
	// Default 120s; 0 disables.
	InactivityTimeout Duration `yaml:"inactivity_timeout"`
	// ResponseTimeout is how long to wait for a response PDU. Default 10s; > 0.
	ResponseTimeout Duration `yaml:"response_timeout"`
	// BindTimeout is how long a connection may take to bind. Default 10s; > 0.
	BindTimeout Duration `yaml:"bind_timeout"`
	// WriteTimeout bounds a single socket write. Default 10s; > 0.
	WriteTimeout Duration `yaml:"write_timeout"`
}

// Upstream is an SMSC that smppguard binds to.
type Upstream struct {
	// Name identifies the upstream in routes, accounts and mo_rules.
	// Required, unique, [a-z0-9_-]+.
	Name string `yaml:"name"`
	// Address is the SMSC's host:port. Required.
	Address string `yaml:"address"`
	// SystemID is smppguard's login at the SMSC (<= 15 chars). Required
	// unless the upstream is used only by passthrough accounts, whose own
	// credentials are forwarded.
	SystemID string `yaml:"system_id"`
	// Password is smppguard's password at the SMSC (<= 8 chars).
	Password string `yaml:"password"`
	// SystemType is sent in the bind (<= 12 chars).
	SystemType string `yaml:"system_type"`
	// BindType is transceiver (default), transmitter, receiver or tx_rx (one
	// transmitter plus one receiver per bind slot).
	BindType string `yaml:"bind_type"`
	// Binds is the number of bind slots kept open. Default 1; 1..64.
	Binds int `yaml:"binds"`
	// Window is the maximum outstanding requests per bind. Default
	// session.window; 1..10000.
	Window int `yaml:"window"`
	// TPS caps submit_sm per second to this upstream across all its binds.
	// 0 (default) is unlimited; >= 0.
	TPS float64 `yaml:"tps"`
	// ReconnectMin is the first reconnect backoff. Default 500ms; > 0.
	ReconnectMin Duration `yaml:"reconnect_min"`
	// ReconnectMax caps the reconnect backoff. Default 30s; >= ReconnectMin.
	ReconnectMax Duration `yaml:"reconnect_max"`
	// AddrTON is the bind's addr_ton. 0..255, default 0.
	AddrTON int `yaml:"addr_ton"`
	// AddrNPI is the bind's addr_npi. 0..255, default 0.
	AddrNPI int `yaml:"addr_npi"`
	// AddressRange is the bind's address_range (<= 40 chars).
	AddressRange string `yaml:"address_range"`
	// TLS connects to this SMSC over TLS when enabled.
	TLS UpstreamTLS `yaml:"tls"`
}

// ListenTLS configures TLS on the ESME listener. Certificates are re-read when the files change.
type ListenTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile verifies client certificates; ClientAuth requires one.
	CAFile     string `yaml:"ca_file"`
	ClientAuth bool   `yaml:"client_auth"`
}

// UpstreamTLS configures TLS to one SMSC.
type UpstreamTLS struct {
	Enabled bool `yaml:"enabled"`
	// CertFile and KeyFile: an optional client certificate.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile verifies the SMSC (default: the system roots); ServerName overrides the name checked.
	CAFile             string `yaml:"ca_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Route names an upstream that pooled traffic can be sent through.
type Route struct {
	// Name identifies the route. Required, unique, [a-z0-9_-]+.
	Name string `yaml:"name"`
	// Upstream is the upstream's name. Required; it must be able to transmit.
	Upstream string `yaml:"upstream"`
	// Policy, if set, is the OTP policy for messages relayed over this route, overriding the
	// sending account's.
	Policy string `yaml:"policy"`
}

// Account is an ESME allowed to bind to smppguard, looked up by the bind's
// system_id.
type Account struct {
	// SystemID is the ESME's login. Required, unique, <= 15 chars.
	SystemID string `yaml:"system_id"`
	// Password is the ESME's password (<= 8 chars). Required in pooled mode.
	// Optional in passthrough mode, where the ESME's own credentials are
	// forwarded to the upstream; when set there, smppguard checks it too.
	Password string `yaml:"password"`
	// Mode is "pooled" (default) or "passthrough".
	Mode string `yaml:"mode"`
	// Upstream (passthrough only, required there) names the upstream the
	// ESME's own bind is forwarded to.
	Upstream string `yaml:"upstream"`
	// BindTypes lists the bind types the ESME may use: a non-empty subset of
	// transmitter, receiver, transceiver. Default all three.
	BindTypes []string `yaml:"bind_types"`
	// MaxBinds caps concurrent binds of this account. Default 8; >= 1.
	MaxBinds int `yaml:"max_binds"`
	// AllowedCIDRs restricts source addresses (CIDR notation). Empty allows
	// any address. Parsed during validation; see Allows.
	AllowedCIDRs []string `yaml:"allowed_cidrs"`
	// Route (pooled only, required there) is the default route name.
	Route string `yaml:"route"`
	// PrefixRoutes (pooled only) map destination prefixes to routes; the
	// longest matching prefix wins. See RouteFor.
	PrefixRoutes []PrefixRoute `yaml:"prefix_routes"`
	// Window is refused by validation: per-account windows are not
	// implemented (every ESME session uses session.window). The key is kept
	// so that a config setting it gets that explanation rather than "unknown
	// key".
	Window int `yaml:"window,omitempty"`
	// QueueMax is the maximum number of DLRs/MOs held while the account has
	// no receiver bound. Default 10000; 0 holds nothing.
	QueueMax int `yaml:"queue_max"`
	// QueueTTL is how long queued DLRs/MOs are held. Default 72h; > 0.
	QueueTTL Duration `yaml:"queue_ttl"`

	// Policy names the OTP policy for this account's submits; empty: no interception.
	Policy string `yaml:"policy"`
	// TPS bounds each of the account's sessions to this many submits per second (beyond:
	// ESME_RTHROTTLED). 0: unlimited.
	TPS float64 `yaml:"tps"`

	allowed []*net.IPNet // AllowedCIDRs, parsed by validation
}

// PrefixRoute sends destinations starting with Prefix through Route.
type PrefixRoute struct {
	// Prefix is digits with an optional leading '+', compared with any '+'
	// stripped.
	Prefix string `yaml:"prefix"`
	// Route is the route's name. Required.
	Route string `yaml:"route"`
}

// MORule routes mobile-originated (non-receipt) deliver_sm PDUs arriving on
// pooled upstream binds to an account. Like prefix_routes, the rule with the
// longest matching destination_prefix wins, whatever the order of the rules;
// with equal prefixes a rule naming the MO's upstream beats one without
// upstream. An MO that no rule matches is refused with ESME_RX_P_APPN.
type MORule struct {
	// DestinationPrefix matches the deliver_sm destination_addr (digits with
	// an optional leading '+'); "" matches all.
	DestinationPrefix string `yaml:"destination_prefix"`
	// Upstream, when set, limits the rule to MOs arriving on that upstream.
	Upstream string `yaml:"upstream"`
	// Account is the system_id of the pooled account receiving matching MOs.
	// Required.
	Account string `yaml:"account"`
}

// Relay tunes message relaying and delivery-receipt correlation.
type Relay struct {
	// DLRMatchWait is how long an unmatched receipt is held waiting for its
	// submit_sm_resp. Default 2s; >= 0.
	DLRMatchWait Duration `yaml:"dlr_match_wait"`
	// DLRCorrelationTTL is how long message-id correlations are kept.
	// Default 72h; > 0.
	DLRCorrelationTTL Duration `yaml:"dlr_correlation_ttl"`
	// DLRCorrelationMax caps the number of stored correlations.
	// Default 1000000; >= 1.
	DLRCorrelationMax int `yaml:"dlr_correlation_max"`
	// LinkWait is how long a pooled request waits for an upstream bind before
	// it is answered with ESME_RTHROTTLED. Default 5s; >= 0.
	LinkWait Duration `yaml:"link_wait"`
	// DeliverTimeout is how long an ESME has to answer deliver_sm before the
	// SMSC gets ESME_RX_T_APPN. Default 10s; > 0.
	DeliverTimeout Duration `yaml:"deliver_timeout"`
	// DrainTimeout: on SIGTERM, how long requests and deliveries in flight may take to
	// complete before smppguard unbinds everyone and exits; on a reload that removes or
	// changes an account, how long its sessions may take to finish theirs before they are
	// unbound. Default 30s.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// StorePath keeps receipts and MOs for offline receivers, and receipt correlations, in
	// this file (bbolt), so a restart loses nothing that was acknowledged to the SMSC.
	// Default: smppguard.db next to the config file (the embedded sandbox: in memory);
	// "memory" keeps them in memory.
	StorePath string `yaml:"store_path"`
	// MaxInFlight bounds the ESMEs' unanswered requests over all sessions together; beyond
	// it requests are answered ESME_RTHROTTLED. Default 50000.
	MaxInFlight int `yaml:"max_in_flight"`
}

// Sandbox configures in-process helpers for demos and tests.
type Sandbox struct {
	// FakeSMSC, when non-nil, runs a fake SMSC inside the process.
	FakeSMSC *FakeSMSC `yaml:"fake_smsc"`
	// FakeCarrier starts the bundled fake CAMARA API in-process; nil = none.
	FakeCarrier *FakeCarrier `yaml:"fake_carrier"`
}

// FakeSMSC is an in-process fake SMSC for demos and tests.
type FakeSMSC struct {
	// Listen is its host:port. Default "127.0.0.1:2776".
	Listen string `yaml:"listen"`
	// SystemID is the login it accepts (<= 15 chars).
	SystemID string `yaml:"system_id"`
	// Password is the password it accepts (<= 8 chars).
	Password string `yaml:"password"`
	// MessageIDFormat is hex (default), decimal or uuid.
	MessageIDFormat string `yaml:"message_id_format"`
	// DLRDelay is how long after submit_sm it sends the receipt.
	// Default 100ms; >= 0.
	DLRDelay Duration `yaml:"dlr_delay"`
}

// FakeCarrier is the sandbox's in-process fake carrier API.
type FakeCarrier struct {
	// Listen address; default 127.0.0.1:8089.
	Listen string `yaml:"listen"`
	// Scenario file; empty uses the built-in scenario (a swapped, a diverted and a clean number).
	Scenario string `yaml:"scenario"`
	// RequirePurpose makes the token endpoint insist on this dpv: purpose scope.
	RequirePurpose string `yaml:"require_purpose"`
}

// Admin is the admin HTTP listener: health, readiness, Prometheus metrics, sessions, links,
// recent OTP decisions, checks and reload.
type Admin struct {
	// Listen address; "" disables the admin listener. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// Token, if set, is required as "Authorization: Bearer <token>" on everything but /healthz.
	Token string `yaml:"token"`
	// Decisions is how many recent OTP decisions /api/v1/decisions keeps. Default 1000.
	Decisions int `yaml:"decisions"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or console.
	Format string `yaml:"format"`
	// Levels override Level per component ("" = Level).
	Levels LogLevels `yaml:"levels"`
	// PDUDebug logs PDUs with hex dumps at debug level of the session component, one in
	// PDUSample (default 100); bind PDUs are never dumped (they carry passwords).
	PDUDebug  bool `yaml:"pdu_debug"`
	PDUSample int  `yaml:"pdu_sample"`
}

// LogLevels are per-component log levels.
type LogLevels struct {
	Relay   string `yaml:"relay"`
	Session string `yaml:"session"`
	OTP     string `yaml:"otp"`
	Checks  string `yaml:"checks"`
	Admin   string `yaml:"admin"`
	Sandbox string `yaml:"sandbox"`
}

// Of returns the level for a component name, or "" when it has none.
func (l LogLevels) Of(component string) string {
	switch component {
	case "relay":
		return l.Relay
	case "session":
		return l.Session
	case "otp":
		return l.OTP
	case "checks", "oauth":
		return l.Checks
	case "admin":
		return l.Admin
	case "fake-smsc", "fake-carrier":
		return l.Sandbox
	}
	return ""
}

// Upstream returns the upstream with the given name, or nil.
func (c *Config) Upstream(name string) *Upstream {
	for i := range c.Upstreams {
		if c.Upstreams[i].Name == name {
			return &c.Upstreams[i]
		}
	}
	return nil
}

// Route returns the route with the given name, or nil.
func (c *Config) Route(name string) *Route {
	for i := range c.Routes {
		if c.Routes[i].Name == name {
			return &c.Routes[i]
		}
	}
	return nil
}

// Account returns the account with the given system_id, or nil.
func (c *Config) Account(systemID string) *Account {
	for i := range c.Accounts {
		if c.Accounts[i].SystemID == systemID {
			return &c.Accounts[i]
		}
	}
	return nil
}

// RouteFor returns the route name for destination address dest: the route
// of the longest PrefixRoutes prefix matching dest, else a.Route. A leading
// '+' is ignored on both sides.
func (a *Account) RouteFor(dest string) string {
	dest = strings.TrimPrefix(dest, "+")
	route, best := a.Route, -1
	for _, pr := range a.PrefixRoutes {
		p := strings.TrimPrefix(pr.Prefix, "+")
		if len(p) > best && strings.HasPrefix(dest, p) {
			route, best = pr.Route, len(p)
		}
	}
	return route
}

// Allows reports whether a bind from ip is permitted by AllowedCIDRs. An
// empty list allows every address; a nil ip is allowed only then.
func (a *Account) Allows(ip net.IP) bool {
	if len(a.AllowedCIDRs) == 0 {
		return true
	}
	nets := a.allowed
	if len(nets) != len(a.AllowedCIDRs) {
		// Not validated (built in code, or edited after Parse): parse now
		// without caching; unparsable entries match nothing.
		nets = make([]*net.IPNet, 0, len(a.AllowedCIDRs))
		for _, s := range a.AllowedCIDRs {
			if _, n, err := net.ParseCIDR(s); err == nil {
				nets = append(nets, n)
			}
		}
	}
	if ip == nil {
		return false
	}
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Duration is a time.Duration written in YAML as "500ms", "30s", "2m" or
// "1h30m". A bare 0 is accepted; other unitless numbers and negative values
// are rejected.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText writes d as a duration string (used by JSON encoders).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalYAML parses a duration string. Errors are reported as
// *yaml.TypeError so decoding continues and all problems are collected.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, problem := parseDurationNode(n)
	if problem != "" {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, problem)}}
	}
	*d = v
	return nil
}

// parseDurationNode parses a YAML scalar as a non-negative Duration. It
// returns a human-readable problem (with a fix) instead of an error.
func parseDurationNode(n *yaml.Node) (Duration, string) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Sprintf("expected a duration such as \"30s\", got %s", describe(n))
	}
	if isNull(n) {
		return 0, ""
	}
	s := strings.TrimSpace(n.Value)
	v, err := time.ParseDuration(s)
	switch {
	case err != nil && s != "" && strings.Trim(s, "0123456789.+-") == "":
		return 0, fmt.Sprintf("duration %q has no unit; write e.g. \"%ss\" (units: ms, s, m, h)", s, s)
	case err != nil:
		return 0, fmt.Sprintf("invalid duration %q; write a number with a unit, e.g. \"500ms\", \"30s\", \"2m\" or \"1h30m\"", s)
	case v < 0:
		return 0, fmt.Sprintf("duration %q is negative; use 0 or a positive duration", s)
	}
	return Duration(v), ""
}

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
