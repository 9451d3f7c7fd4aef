package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SMPP 3.4 C-Octet String limits, excluding the terminating NUL.
const (
	maxSystemIDLen     = 15
	maxPasswordLen     = 8
	maxSystemTypeLen   = 12
	maxAddressRangeLen = 40
)

// validator collects every problem in a defaulted Config.
type validator struct {
	file string
	doc  *doc
	errs []error
}

// validate checks every value and cross-reference of c and returns all
// problems found. It also stores the parsed AllowedCIDRs of each account.
func validate(c *Config, file string, d *doc) []error {
	v := &validator{file: file, doc: d}
	v.listen(c)
	v.session(c)
	v.upstreams(c)
	v.routes(c)
	v.accounts(c)
	v.moRules(c)
	v.relay(c)
	v.otp(c)
	v.tls(c)
	v.sandbox(c)
	v.log(c)
	return v.errs
}

// add records a problem at path; format should end with "; how to fix".
func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.doc.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) intRange(path string, val, lo, hi int) {
	if val < lo || val > hi {
		v.add(path, "must be between %d and %d, got %d; omit it to use the default", lo, hi, val)
	}
}

func (v *validator) atLeast(path string, val, lo int) {
	if val < lo {
		v.add(path, "must be at least %d, got %d; omit it to use the default", lo, val)
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be greater than 0, got %s; write e.g. \"10s\" or omit it to use the default", d)
	}
}

func (v *validator) nonNegative(path string, d Duration) {
	if d < 0 {
		v.add(path, "must not be negative, got %s; use 0 or a positive duration", d)
	}
}

// smppString checks an SMPP C-Octet String field. Secret values are never
// echoed in messages.
func (v *validator) smppString(path, val string, maxLen int, secret bool) {
	shown := strconv.Quote(val)
	if secret {
		shown = "value"
	}
	if len(val) > maxLen {
		v.add(path, "%s is %d characters, SMPP allows at most %d; shorten it", shown, len(val), maxLen)
	}
	for _, r := range val {
		if r < 0x20 || r > 0x7e {
			v.add(path, "%s contains a control or non-ASCII character; SMPP strings must be printable ASCII", shown)
			break
		}
	}
}

// name checks a required, pattern-restricted, unique name and records it.
func (v *validator) name(path, kind, val string, seen map[string]string) {
	switch {
	case val == "":
		v.add(path, "required; give each %s a unique name such as \"main\"", kind)
		return
	case !validName(val):
		v.add(path, "%q is not a valid name; use only lowercase letters, digits, '_' and '-'", val)
	}
	if first, dup := seen[val]; dup {
		v.add(path, "duplicate %s name %q (first defined at line %d as %s); names must be unique", kind, val, v.doc.line(first), first)
		return
	}
	seen[val] = path
}

// validName reports whether s matches [a-z0-9_-]+.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// validPrefix reports whether s is digits with an optional leading '+'.
func validPrefix(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// hostPort returns the problem with a host:port address, or "". Listening
// addresses may omit the host and use port 0; dial addresses may not.
func hostPort(addr string, listen bool) string {
	example := "\"10.0.0.5:2775\""
	if listen {
		example = "\"127.0.0.1:2775\" or \":2775\" for all interfaces"
	}
	if addr == "" {
		return "required; write host:port, e.g. " + example
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		reason := err.Error()
		if ae, ok := err.(*net.AddrError); ok {
			reason = ae.Err
		}
		return fmt.Sprintf("%q is not host:port (%s); write e.g. %s (IPv6: \"[::1]:2775\")", addr, reason, example)
	}
	lo := 1
	if listen {
		lo = 0
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("port %q in %q must be a number from %d to 65535", port, addr, lo)
	}
	if !listen && n == 0 {
		return fmt.Sprintf("port 0 in %q cannot be dialled; use the SMSC's port, e.g. 2775", addr)
	}
	if !listen && host == "" {
		return fmt.Sprintf("host is missing in %q; write e.g. %s", addr, example)
	}
	return ""
}

func oneOf(val string, allowed ...string) bool { return slices.Contains(allowed, val) }

// list formats names for "use one of [a, b]" hints.
func list(names []string) string { return "[" + strings.Join(names, ", ") + "]" }

// undefined explains a dangling reference to a name in section.
func undefined(kind, name, section string, defined []string) string {
	if len(defined) == 0 {
		return fmt.Sprintf("%s %q is not defined; define it under %s:", kind, name, section)
	}
	return fmt.Sprintf("%s %q is not defined; define it under %s: or use one of %s", kind, name, section, list(defined))
}

func (v *validator) listen(c *Config) {
	if p := hostPort(c.Listen.SMPP, true); p != "" {
		v.add("listen.smpp", "%s", p)
	}
	v.atLeast("listen.max_connections", c.Listen.MaxConns, 1)
}

func (v *validator) session(c *Config) {
	s := &c.Session
	v.intRange("session.window", s.Window, 1, 10000)
	v.intRange("session.max_pdu_size", s.MaxPDUSize, 64, 16777216)
	if d := s.EnquireLinkInterval; d < 0 || (d > 0 && d.D() < time.Second) {
		v.add("session.enquire_link_interval", "must be 0 (disabled) or at least 1s, got %s; omit it to use the default (30s)", d)
	}
	v.nonNegative("session.inactivity_timeout", s.InactivityTimeout)
	v.positive("session.response_timeout", s.ResponseTimeout)
	v.positive("session.bind_timeout", s.BindTimeout)
	v.positive("session.write_timeout", s.WriteTimeout)
}

func (v *validator) upstreams(c *Config) {
	// Which routes / passthrough accounts use each upstream decides whether
	// smppguard needs its own credentials for it.
	routedBy := map[string]string{}
	for _, r := range c.Routes {
		if _, ok := routedBy[r.Upstream]; !ok {
			routedBy[r.Upstream] = r.Name
		}
	}
	passthrough := map[string]bool{}
	for _, a := range c.Accounts {
		if a.Mode == ModePassthrough {
			passthrough[a.Upstream] = true
		}
	}

	seen := map[string]string{}
	for i := range c.Upstreams {
		u, p := &c.Upstreams[i], fmt.Sprintf("upstreams[%d]", i)
		v.name(p+".name", "upstream", u.Name, seen)
		if prob := hostPort(u.Address, false); prob != "" {
			v.add(p+".address", "%s", prob)
		} else if u.Address == c.Listen.SMPP {
			v.add(p+".address", "%q is smppguard's own listen.smpp address and would loop; point it at the SMSC", u.Address)
		}
		switch route, routed := routedBy[u.Name]; {
		case u.SystemID != "":
		case routed:
			v.add(p+".system_id", "required because route %q sends pooled traffic through this upstream; set smppguard's login at the SMSC", route)
		case !passthrough[u.Name]:
			v.add(p+".system_id", "required for pooled binds; set smppguard's login at the SMSC (only upstreams used solely by passthrough accounts may omit it)")
		}
		v.smppString(p+".system_id", u.SystemID, maxSystemIDLen, false)
		v.smppString(p+".password", u.Password, maxPasswordLen, true)
		v.smppString(p+".system_type", u.SystemType, maxSystemTypeLen, false)
		v.smppString(p+".address_range", u.AddressRange, maxAddressRangeLen, false)
		if !oneOf(u.BindType, BindTransceiver, BindTransmitter, BindReceiver, BindTxRx) {
			v.add(p+".bind_type", "%q is not a bind type; use transceiver (default), transmitter, receiver or tx_rx", u.BindType)
		}
		v.intRange(p+".binds", u.Binds, 1, 64)
		v.intRange(p+".window", u.Window, 1, 10000)
		if !finite(u.TPS) || u.TPS < 0 {
			v.add(p+".tps", "must be a finite number >= 0, got %v; use 0 for unlimited", u.TPS)
		}
		v.positive(p+".reconnect_min", u.ReconnectMin)
		v.positive(p+".reconnect_max", u.ReconnectMax)
		if u.ReconnectMin > 0 && u.ReconnectMax > 0 && u.ReconnectMax < u.ReconnectMin {
			v.add(p+".reconnect_max", "%s is less than reconnect_min (%s); raise reconnect_max or lower reconnect_min", u.ReconnectMax, u.ReconnectMin)
		}
		v.intRange(p+".addr_ton", u.AddrTON, 0, 255)
		v.intRange(p+".addr_npi", u.AddrNPI, 0, 255)
	}
}

func upstreamNames(c *Config) []string {
	names := make([]string, 0, len(c.Upstreams))
	for _, u := range c.Upstreams {
		names = append(names, u.Name)
	}
	return names
}

func routeNames(c *Config) []string {
	names := make([]string, 0, len(c.Routes))
	for _, r := range c.Routes {
		names = append(names, r.Name)
	}
	return names
}

func (v *validator) routes(c *Config) {
	seen := map[string]string{}
	for i := range c.Routes {
		r, p := &c.Routes[i], fmt.Sprintf("routes[%d]", i)
		v.name(p+".name", "route", r.Name, seen)
		switch u := c.Upstream(r.Upstream); {
		case r.Upstream == "":
			v.add(p+".upstream", "required; name the upstream this route sends through, one of %s", list(upstreamNames(c)))
		case u == nil:
			v.add(p+".upstream", "%s", undefined("upstream", r.Upstream, "upstreams", upstreamNames(c)))
		case u.BindType == BindReceiver:
			v.add(p+".upstream", "upstream %q binds as receiver and cannot send submit_sm; set its bind_type to transceiver, transmitter or tx_rx", r.Upstream)
		}
	}
}

func (v *validator) accounts(c *Config) {
	seen := map[string]string{}
	for i := range c.Accounts {
		a, p := &c.Accounts[i], fmt.Sprintf("accounts[%d]", i)

		if a.SystemID == "" {
			v.add(p+".system_id", "required; set the system_id the ESME binds with")
		} else if first, dup := seen[a.SystemID]; dup {
			v.add(p+".system_id", "duplicate system_id %q (first defined at line %d as %s); system_ids must be unique", a.SystemID, v.doc.line(first), first)
		} else {
			seen[a.SystemID] = p + ".system_id"
		}
		v.smppString(p+".system_id", a.SystemID, maxSystemIDLen, false)
		if !IsBcrypt(a.Password) {
			v.smppString(p+".password", a.Password, maxPasswordLen, true)
		}

		switch a.Mode {
		case ModePooled:
			if a.Password == "" {
				v.add(p+".password", "required for pooled accounts; set the password the ESME binds with")
			}
			switch {
			case a.Route == "":
				v.add(p+".route", "required for pooled accounts; set it to one of %s (define routes under routes:)", list(routeNames(c)))
			case c.Route(a.Route) == nil:
				v.add(p+".route", "%s", undefined("route", a.Route, "routes", routeNames(c)))
			}
			if a.Upstream != "" {
				v.add(p+".upstream", "only used in passthrough mode; remove it (pooled accounts pick upstreams via route) or set mode: passthrough")
			}
			v.prefixRoutes(c, a, p)
		case ModePassthrough:
			switch {
			case a.Upstream == "":
				v.add(p+".upstream", "required for passthrough accounts; name the upstream the ESME's bind is forwarded to, one of %s", list(upstreamNames(c)))
			case c.Upstream(a.Upstream) == nil:
				v.add(p+".upstream", "%s", undefined("upstream", a.Upstream, "upstreams", upstreamNames(c)))
			}
			if a.Route != "" {
				v.add(p+".route", "only used in pooled mode; remove it or set mode: pooled")
			}
			if len(a.PrefixRoutes) > 0 {
				v.add(p+".prefix_routes", "only used in pooled mode; remove it or set mode: pooled")
			}
		default:
			v.add(p+".mode", "%q is not a mode; use pooled (default) or passthrough", a.Mode)
		}

		if len(a.BindTypes) == 0 {
			v.add(p+".bind_types", "must list at least one of transmitter, receiver, transceiver; omit it to allow all three")
		}
		for j, bt := range a.BindTypes {
			bp := fmt.Sprintf("%s.bind_types[%d]", p, j)
			switch {
			case !oneOf(bt, BindTransmitter, BindReceiver, BindTransceiver):
				v.add(bp, "%q is not a bind type; use transmitter, receiver or transceiver", bt)
			case slices.Index(a.BindTypes, bt) < j:
				v.add(bp, "%q is listed twice; remove the duplicate", bt)
			}
		}
		v.atLeast(p+".max_binds", a.MaxBinds, 1)

		a.allowed = nil
		for j, s := range a.AllowedCIDRs {
			_, n, err := net.ParseCIDR(s)
			if err != nil {
				v.add(fmt.Sprintf("%s.allowed_cidrs[%d]", p, j), "%q is not a CIDR; write e.g. \"10.0.0.0/8\" or \"192.0.2.7/32\" for one address", s)
				continue
			}
			a.allowed = append(a.allowed, n)
		}
		if len(a.allowed) != len(a.AllowedCIDRs) {
			a.allowed = nil
		}

		if v.doc.has(p+".window") || a.Window != 0 {
			v.add(p+".window", "per-account windows are not supported: every ESME session's window is session.window (%d); remove this key, or change session.window for all accounts", c.Session.Window)
		}
		v.atLeast(p+".queue_max", a.QueueMax, 0)
		v.positive(p+".queue_ttl", a.QueueTTL)
	}
}

func (v *validator) prefixRoutes(c *Config, a *Account, p string) {
	seen := map[string]string{}
	for j, pr := range a.PrefixRoutes {
		pp := fmt.Sprintf("%s.prefix_routes[%d]", p, j)
		if !validPrefix(pr.Prefix) {
			v.add(pp+".prefix", "%q is not a prefix; use digits with an optional leading '+', e.g. \"+44\" or \"4479\"", pr.Prefix)
		} else {
			norm := strings.TrimPrefix(pr.Prefix, "+")
			if first, dup := seen[norm]; dup {
				v.add(pp+".prefix", "prefix %q is already routed at line %d (%s); keep only one", pr.Prefix, v.doc.line(first), first)
			} else {
				seen[norm] = pp + ".prefix"
			}
		}
		switch {
		case pr.Route == "":
			v.add(pp+".route", "required; set it to one of %s", list(routeNames(c)))
		case c.Route(pr.Route) == nil:
			v.add(pp+".route", "%s", undefined("route", pr.Route, "routes", routeNames(c)))
		}
	}
}

func (v *validator) moRules(c *Config) {
	seen := map[string]string{}
	for i, m := range c.MORules {
		p := fmt.Sprintf("mo_rules[%d]", i)
		if m.DestinationPrefix != "" && !validPrefix(m.DestinationPrefix) {
			v.add(p+".destination_prefix", "%q is not a prefix; use digits with an optional leading '+', or \"\" to match all", m.DestinationPrefix)
		}
		if m.Upstream != "" {
			switch u := c.Upstream(m.Upstream); {
			case u == nil:
				v.add(p+".upstream", "%s", undefined("upstream", m.Upstream, "upstreams", upstreamNames(c)))
			case u.BindType == BindTransmitter:
				v.add(p+".upstream", "upstream %q binds as transmitter and never receives MOs; set its bind_type to transceiver, receiver or tx_rx, or remove this key", m.Upstream)
			}
		}
		key := strings.TrimPrefix(m.DestinationPrefix, "+") + "\x00" + m.Upstream
		if first, dup := seen[key]; dup {
			v.add(p, "same destination_prefix and upstream as %s (line %d), so this rule never applies; remove one", first, v.doc.line(first))
		} else {
			seen[key] = p
		}
		switch a := c.Account(m.Account); {
		case m.Account == "":
			v.add(p+".account", "required; set the system_id of the pooled account that receives these MOs")
		case a == nil:
			v.add(p+".account", "account %q is not defined; define it under accounts: or use a defined system_id", m.Account)
		case a.Mode != ModePooled:
			v.add(p+".account", "account %q is %s; MO rules only route to pooled accounts (passthrough ESMEs receive MOs on their own bind)", m.Account, a.Mode)
		case !slices.Contains(a.BindTypes, BindReceiver) && !slices.Contains(a.BindTypes, BindTransceiver):
			v.add(p+".account", "account %q may only bind as transmitter and could never receive these MOs; add receiver or transceiver to its bind_types", m.Account)
		}
	}
}

func (v *validator) relay(c *Config) {
	r := &c.Relay
	v.nonNegative("relay.dlr_match_wait", r.DLRMatchWait)
	v.positive("relay.dlr_correlation_ttl", r.DLRCorrelationTTL)
	v.atLeast("relay.dlr_correlation_max", r.DLRCorrelationMax, 1)
	v.nonNegative("relay.link_wait", r.LinkWait)
	v.positive("relay.deliver_timeout", r.DeliverTimeout)
	v.positive("relay.drain_timeout", r.DrainTimeout)
}

func (v *validator) sandbox(c *Config) {
	f := c.Sandbox.FakeSMSC
	if f == nil {
		return
	}
	const p = "sandbox.fake_smsc"
	if prob := hostPort(f.Listen, true); prob != "" {
		v.add(p+".listen", "%s", prob)
	} else if f.Listen == c.Listen.SMPP && !strings.HasSuffix(f.Listen, ":0") {
		v.add(p+".listen", "%q is also listen.smpp; give the fake SMSC its own port, e.g. \"127.0.0.1:2776\"", f.Listen)
	}
	v.smppString(p+".system_id", f.SystemID, maxSystemIDLen, false)
	v.smppString(p+".password", f.Password, maxPasswordLen, true)
	if !oneOf(f.MessageIDFormat, MessageIDHex, MessageIDDecimal, MessageIDUUID) {
		v.add(p+".message_id_format", "%q is not a format; use hex (default), decimal or uuid", f.MessageIDFormat)
	}
	v.nonNegative(p+".dlr_delay", f.DLRDelay)
}

func (v *validator) log(c *Config) {
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		v.add("log.level", "%q is not a level; use debug, info (default), warn or error", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "json", "console") {
		v.add("log.format", "%q is not a format; use json (default) or console", c.Log.Format)
	}
	for _, f := range []struct{ key, val string }{{"relay", c.Log.Levels.Relay}, {"session", c.Log.Levels.Session}, {"otp", c.Log.Levels.OTP},
		{"checks", c.Log.Levels.Checks}, {"admin", c.Log.Levels.Admin}, {"sandbox", c.Log.Levels.Sandbox}} {
		if f.val != "" && !oneOf(f.val, "debug", "info", "warn", "error") {
			v.add("log.levels."+f.key, "%q is not a level; use debug, info, warn or error (or omit it to use log.level)", f.val)
		}
	}
	v.atLeast("log.pdu_sample", c.Log.PDUSample, 1)
}
