package config

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// base is a small valid config. Lines appended with four spaces of
// indentation extend accounts[0]; "  - " starts accounts[1]; unindented
// lines start new sections at line 13.
const base = `upstreams:
  - name: carrier
    address: 10.0.0.1:2775
    system_id: guard
    password: pw
routes:
  - name: default
    upstream: carrier
accounts:
  - system_id: bank
    password: bankpw
    route: default
`

func TestDefault(t *testing.T) {
	c := Default()
	if c.Listen.SMPP != "127.0.0.1:2775" {
		t.Errorf("listen.smpp = %q", c.Listen.SMPP)
	}
	f := c.Sandbox.FakeSMSC
	if f == nil || f.Listen != "127.0.0.1:2776" || f.SystemID != "smppguard" || f.Password != "secret" {
		t.Fatalf("fake_smsc = %+v", f)
	}
	u := c.Upstream("carrier")
	if u == nil || u.Address != "127.0.0.1:2776" || u.SystemID != "smppguard" || u.Password != "secret" ||
		u.BindType != BindTransceiver || u.Binds != 2 {
		t.Fatalf("upstream carrier = %+v", u)
	}
	if r := c.Route("default"); r == nil || r.Upstream != "carrier" {
		t.Fatalf("route default = %+v", r)
	}
	if a := c.Account("bank"); a == nil || a.Password != "bankpw" || a.Mode != ModePooled || a.Route != "default" {
		t.Fatalf("account bank = %+v", a)
	}
	pt := c.Account("smppguard")
	if pt == nil || pt.Mode != ModePassthrough || pt.Upstream != "carrier" {
		t.Fatalf("passthrough account = %+v", pt)
	}
	if len(c.MORules) != 1 || c.MORules[0] != (MORule{Account: "bank"}) {
		t.Fatalf("mo_rules = %+v", c.MORules)
	}
	if c.Account("nobody") != nil || c.Route("nope") != nil || c.Upstream("nope") != nil {
		t.Error("lookups of absent names must return nil")
	}

	// Each call returns an independent copy.
	c.Listen.SMPP = "changed"
	if Default().Listen.SMPP == "changed" {
		t.Error("Default shares state between calls")
	}
}

func TestDefaultYAMLRoundTrip(t *testing.T) {
	want := Default()
	got, err := Parse("default.yaml", DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(DefaultYAML()) != Default():\n%+v\n%+v", got, want)
	}

	// Marshalling the typed tree and parsing it again is lossless, and the
	// marshalled form is a fixed point.
	out1, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("marshalled", out1)
	if err != nil {
		t.Fatalf("re-parse of marshalled default: %v\n%s", err, out1)
	}
	if !reflect.DeepEqual(again, want) {
		t.Fatalf("marshal round trip changed the config:\n%+v\n%+v", again, want)
	}
	out2, err := yaml.Marshal(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out1, out2) {
		t.Fatalf("marshal is not a fixed point:\n%s\n---\n%s", out1, out2)
	}

	// DefaultYAML hands out copies.
	b := DefaultYAML()
	b[0] = 'X'
	if DefaultYAML()[0] == 'X' {
		t.Error("DefaultYAML returns shared bytes")
	}
}

// The values written out in default.yaml must be the real defaults.
func TestDefaultYAMLMatchesDefaults(t *testing.T) {
	def := Default()
	minimal, err := Parse("minimal", []byte(base+"sandbox:\n  fake_smsc: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if minimal.Listen != def.Listen || minimal.Session != def.Session || minimal.Relay != def.Relay || minimal.Log != def.Log {
		t.Errorf("defaults differ from default.yaml:\n%+v\n%+v", minimal, def)
	}
	if *minimal.Sandbox.FakeSMSC != (FakeSMSC{Listen: def.Sandbox.FakeSMSC.Listen, MessageIDFormat: def.Sandbox.FakeSMSC.MessageIDFormat, DLRDelay: def.Sandbox.FakeSMSC.DLRDelay}) {
		t.Errorf("fake_smsc defaults %+v differ from default.yaml %+v", *minimal.Sandbox.FakeSMSC, *def.Sandbox.FakeSMSC)
	}
	if mu, du := minimal.Upstreams[0], def.Upstreams[0]; mu.BindType != du.BindType || mu.Window != du.Window ||
		mu.ReconnectMin != du.ReconnectMin || mu.ReconnectMax != du.ReconnectMax || mu.TPS != du.TPS {
		t.Errorf("upstream defaults %+v differ from default.yaml %+v", mu, du)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error message
	}{
		{"empty file", "", []string{"config.yaml: empty config"}},
		{"only comments", "# nothing\n", []string{"config.yaml: empty config"}},
		{"null document", "~\n", []string{"config.yaml:1: empty config"}},
		{"top level list", "- a\n", []string{"config.yaml:1: the top level must be a mapping"}},
		{"syntax error", "session:\n  window: [1\n", []string{"config.yaml:"}},
		{"two documents", "log: {level: info}\n---\nlog: {level: debug}\n", []string{"config.yaml:2: more than one YAML document"}},

		{"unknown key", "session:\n  windw: 5\n", []string{`config.yaml:2: unknown key "windw" in session; did you mean "window"?`}},
		{"unknown top-level key", "sesion:\n  window: 5\n", []string{`config.yaml:1: unknown key "sesion" at the top level; did you mean "session"?`}},
		{"unknown key lists valid keys", "log:\n  colour: red\n", []string{`config.yaml:2: unknown key "colour" in log; valid keys: level, format`}},
		{"unknown key in list item", base + "    pasword: x\n", []string{`config.yaml:13: unknown key "pasword" in accounts[0]; did you mean "password"?`}},
		{"unknown key in fake_smsc", "sandbox:\n  fake_smsc:\n    port: 1\n", []string{`config.yaml:3: unknown key "port" in sandbox.fake_smsc`}},
		{"duplicate key", "session:\n  window: 5\n  window: 6\n", []string{`config.yaml:3: duplicate key "window" in session (first at line 2)`}},

		{"wrong type int", "session:\n  window: lots\n", []string{`config.yaml:2: session.window: expected a whole number, got "lots"`}},
		{"wrong type float", base + "    window: 1.5\n", []string{`config.yaml:13: accounts[0].window: expected a whole number, got "1.5"`}},
		{"wrong type section", "session: 5\n", []string{`config.yaml:1: session: expected a mapping with keys window, max_pdu_size`}},
		{"wrong type list", "upstreams:\n  name: x\n", []string{`config.yaml:2: upstreams: expected a list, got a mapping`}},
		{"wrong type string", "log:\n  level: [info]\n", []string{`config.yaml:2: log.level: expected a string, got a list`}},
		{"quoted number", "session:\n  window: \"5\"\n", []string{`config.yaml:2: session.window: expected a whole number, got "5"; remove the quotes`}},
		{"empty list entry", "upstreams:\n  -\n  - name: a\n", []string{`config.yaml:2: upstreams[0]: empty list entry`}},
		{"non-scalar key", "session:\n  ? [a]\n  : 1\n", []string{`config.yaml:2: session: keys must be plain names, got a list`}},
		{"unknown key via merge", "log: &l {level: info, colour: red}\nsession:\n  <<: *l\n", []string{`config.yaml:1: unknown key "colour" in log`, `config.yaml:1: unknown key "level" in session`}},
		{"infinite tps", "upstreams:\n  - name: a\n    address: h:1\n    system_id: s\n    tps: .inf\n", []string{`config.yaml:5: upstreams[0].tps: must be a finite number >= 0, got +Inf`}},
		{"wrong type tps", "upstreams:\n  - name: a\n    address: h:1\n    system_id: s\n    tps: fast\n", []string{`config.yaml:5: upstreams[0].tps: expected a number, got "fast"`}},

		{"bad duration", "session:\n  response_timeout: 10 seconds\n", []string{`config.yaml:2: session.response_timeout: invalid duration "10 seconds"`}},
		{"duration without unit", "session:\n  bind_timeout: 10\n", []string{`config.yaml:2: session.bind_timeout: duration "10" has no unit; write e.g. "10s"`}},
		{"negative duration", "relay:\n  link_wait: -5s\n", []string{`config.yaml:2: relay.link_wait: duration "-5s" is negative`}},
		{"zero duration where > 0", "session:\n  write_timeout: 0s\n", []string{`config.yaml:2: session.write_timeout: must be greater than 0`}},
		{"enquire_link too short", "session:\n  enquire_link_interval: 500ms\n", []string{`config.yaml:2: session.enquire_link_interval: must be 0 (disabled) or at least 1s, got 500ms`}},

		{"negative window", "session:\n  window: -1\n", []string{`config.yaml:2: session.window: must be between 1 and 10000, got -1`}},
		{"explicit zero window", "session:\n  window: 0\n", []string{`config.yaml:2: session.window: must be between 1 and 10000, got 0`}},
		{"account window refused", base + "    window: 50\n", []string{`config.yaml:13: accounts[0].window: per-account windows are not supported: every ESME session's window is session.window (100); remove this key`}},
		{"account window zero refused", base + "    window: 0\n", []string{`config.yaml:13: accounts[0].window: per-account windows are not supported`}},
		{"pdu size too small", "session:\n  max_pdu_size: 16\n", []string{`config.yaml:2: session.max_pdu_size: must be between 64 and 16777216`}},
		{"max_connections zero", "listen:\n  max_connections: 0\n", []string{`config.yaml:2: listen.max_connections: must be at least 1, got 0`}},
		{"negative queue_max", base + "    queue_max: -1\n", []string{`config.yaml:13: accounts[0].queue_max: must be at least 0`}},

		{"listen without port", "listen:\n  smpp: 127.0.0.1\n", []string{`config.yaml:2: listen.smpp: "127.0.0.1" is not host:port (missing port in address)`}},
		{"listen named port", "listen:\n  smpp: localhost:smpp\n", []string{`config.yaml:2: listen.smpp: port "smpp" in "localhost:smpp" must be a number`}},
		{"upstream port 0", strings.Replace(base, "10.0.0.1:2775", "10.0.0.1:0", 1), []string{`config.yaml:3: upstreams[0].address: port 0 in "10.0.0.1:0" cannot be dialled`}},
		{"upstream without host", strings.Replace(base, "10.0.0.1:2775", ":2775", 1), []string{`config.yaml:3: upstreams[0].address: host is missing`}},
		{"upstream loops to listen", strings.Replace(base, "10.0.0.1:2775", "127.0.0.1:2775", 1), []string{`config.yaml:3: upstreams[0].address: "127.0.0.1:2775" is smppguard's own listen.smpp address`}},

		{"missing upstream address", "upstreams:\n  - name: a\n    system_id: s\n", []string{`config.yaml:2: upstreams[0].address: required; write host:port`}},
		{"missing upstream name", "upstreams:\n  - address: h:1\n    system_id: s\n", []string{`config.yaml:2: upstreams[0].name: required`}},
		{"bad upstream name", "upstreams:\n  - name: Main Carrier\n    address: h:1\n    system_id: s\n", []string{`config.yaml:2: upstreams[0].name: "Main Carrier" is not a valid name`}},
		{"routed upstream needs system_id", strings.Replace(base, "    system_id: guard\n", "", 1), []string{`config.yaml:2: upstreams[0].system_id: required because route "default" sends pooled traffic through this upstream`}},
		{"bad bind_type", "upstreams:\n  - name: a\n    address: h:1\n    system_id: s\n    bind_type: both\n", []string{`config.yaml:5: upstreams[0].bind_type: "both" is not a bind type`}},
		{"too many binds", "upstreams:\n  - name: a\n    address: h:1\n    system_id: s\n    binds: 65\n", []string{`config.yaml:5: upstreams[0].binds: must be between 1 and 64, got 65`}},
		{"negative tps", "upstreams:\n  - name: a\n    address: h:1\n    system_id: s\n    tps: -1\n", []string{`config.yaml:5: upstreams[0].tps: must be a finite number >= 0`}},
		{"reconnect_max below min", "upstreams:\n  - name: a\n    address: h:1\n    system_id: s\n    reconnect_min: 5s\n    reconnect_max: 1s\n", []string{`config.yaml:6: upstreams[0].reconnect_max: 1s is less than reconnect_min (5s)`}},
		{"addr_ton range", "upstreams:\n  - name: a\n    address: h:1\n    system_id: s\n    addr_ton: 256\n", []string{`config.yaml:5: upstreams[0].addr_ton: must be between 0 and 255`}},
		{"too-long system_id", "upstreams:\n  - name: a\n    address: h:1\n    system_id: abcdefghijklmnop\n", []string{`config.yaml:4: upstreams[0].system_id: "abcdefghijklmnop" is 16 characters, SMPP allows at most 15`}},
		{"too-long password is not echoed", "upstreams:\n  - name: a\n    address: h:1\n    system_id: s\n    password: topsecret\n", []string{`config.yaml:5: upstreams[0].password: value is 9 characters, SMPP allows at most 8`}},
		{"too-long system_type", "upstreams:\n  - name: a\n    address: h:1\n    system_id: s\n    system_type: abcdefghijklm\n", []string{`config.yaml:5: upstreams[0].system_type: "abcdefghijklm" is 13 characters, SMPP allows at most 12`}},
		{"too-long account system_id", base + "  - system_id: abcdefghijklmnop\n    password: x\n    route: default\n", []string{`config.yaml:13: accounts[1].system_id: "abcdefghijklmnop" is 16 characters, SMPP allows at most 15`}},
		{"non-ascii system_id", base + "  - system_id: bänk\n    password: x\n    route: default\n", []string{`config.yaml:13: accounts[1].system_id: "bänk" contains a control or non-ASCII character`}},

		{"duplicate upstream", base + "  - system_id: x\n    mode: passthrough\n    upstream: carrier\n" +
			"upstreams:\n", []string{`duplicate key "upstreams" at the top level (first at line 1)`}},
		{"duplicate upstream names", strings.Replace(base, "routes:", "  - name: carrier\n    address: h:2\n    system_id: s\nroutes:", 1),
			[]string{`config.yaml:6: upstreams[1].name: duplicate upstream name "carrier" (first defined at line 2 as upstreams[0].name)`}},
		{"duplicate route names", strings.Replace(base, "accounts:", "  - name: default\n    upstream: carrier\naccounts:", 1),
			[]string{`config.yaml:9: routes[1].name: duplicate route name "default" (first defined at line 7`}},
		{"duplicate system_ids", base + "  - system_id: bank\n    password: x\n    route: default\n",
			[]string{`config.yaml:13: accounts[1].system_id: duplicate system_id "bank" (first defined at line 10`}},

		{"dangling route", base + "  - system_id: eve\n    password: x\n    route: eu\n",
			[]string{`config.yaml:15: accounts[1].route: route "eu" is not defined; define it under routes: or use one of [default]`}},
		{"dangling route upstream", strings.Replace(base, "upstream: carrier", "upstream: nowhere", 1),
			[]string{`config.yaml:8: routes[0].upstream: upstream "nowhere" is not defined; define it under upstreams: or use one of [carrier]`}},
		{"route to receiver-only upstream", strings.Replace(base, "    password: pw\n", "    password: pw\n    bind_type: receiver\n", 1),
			[]string{`config.yaml:9: routes[0].upstream: upstream "carrier" binds as receiver and cannot send submit_sm`}},
		{"dangling prefix route", base + "    prefix_routes:\n      - prefix: \"+44\"\n        route: uk\n",
			[]string{`config.yaml:15: accounts[0].prefix_routes[0].route: route "uk" is not defined`}},
		{"bad prefix", base + "    prefix_routes:\n      - prefix: 44x\n        route: default\n",
			[]string{`config.yaml:14: accounts[0].prefix_routes[0].prefix: "44x" is not a prefix`}},
		{"duplicate prefix", base + "    prefix_routes:\n      - {prefix: \"+44\", route: default}\n      - {prefix: \"44\", route: default}\n",
			[]string{`config.yaml:15: accounts[0].prefix_routes[1].prefix: prefix "44" is already routed at line 14`}},
		{"pooled needs password and route", "accounts:\n  - system_id: bank\n",
			[]string{`config.yaml:2: accounts[0].password: required for pooled accounts`, `config.yaml:2: accounts[0].route: required for pooled accounts`}},
		{"pooled must not set upstream", base + "    upstream: carrier\n", []string{`config.yaml:13: accounts[0].upstream: only used in passthrough mode`}},
		{"passthrough needs upstream", base + "  - system_id: pt\n    mode: passthrough\n",
			[]string{`config.yaml:13: accounts[1].upstream: required for passthrough accounts`}},
		{"passthrough dangling upstream", base + "  - system_id: pt\n    mode: passthrough\n    upstream: other\n",
			[]string{`config.yaml:15: accounts[1].upstream: upstream "other" is not defined; define it under upstreams: or use one of [carrier]`}},
		{"passthrough must not set route", base + "  - system_id: pt\n    mode: passthrough\n    upstream: carrier\n    route: default\n",
			[]string{`config.yaml:16: accounts[1].route: only used in pooled mode`}},
		{"bad mode", base + "    mode: proxy\n", []string{`config.yaml:13: accounts[0].mode: "proxy" is not a mode`}},
		{"bad bind_types", base + "    bind_types: [transmitter, tx_rx, transmitter]\n",
			[]string{`config.yaml:13: accounts[0].bind_types[1]: "tx_rx" is not a bind type`, `config.yaml:13: accounts[0].bind_types[2]: "transmitter" is listed twice`}},
		{"empty bind_types", base + "    bind_types: []\n", []string{`config.yaml:13: accounts[0].bind_types: must list at least one`}},
		{"bad CIDR", base + "    allowed_cidrs:\n      - 10.0.0.0/8\n      - 192.168.1.1\n",
			[]string{`config.yaml:15: accounts[0].allowed_cidrs[1]: "192.168.1.1" is not a CIDR`}},
		{"max_binds zero", base + "    max_binds: 0\n", []string{`config.yaml:13: accounts[0].max_binds: must be at least 1, got 0`}},

		{"mo rule dangling account", base + "mo_rules:\n  - account: nobody\n",
			[]string{`config.yaml:14: mo_rules[0].account: account "nobody" is not defined`}},
		{"mo rule missing account", base + "mo_rules:\n  - destination_prefix: \"1\"\n",
			[]string{`config.yaml:14: mo_rules[0].account: required`}},
		{"mo rule dangling upstream", base + "mo_rules:\n  - account: bank\n    upstream: other\n",
			[]string{`config.yaml:15: mo_rules[0].upstream: upstream "other" is not defined`}},
		{"mo rule to passthrough", base + "  - system_id: pt\n    mode: passthrough\n    upstream: carrier\nmo_rules:\n  - account: pt\n",
			[]string{`config.yaml:17: mo_rules[0].account: account "pt" is passthrough`}},
		{"mo rule to transmitter-only account", base + "    bind_types: [transmitter]\nmo_rules:\n  - account: bank\n",
			[]string{`config.yaml:15: mo_rules[0].account: account "bank" may only bind as transmitter`}},
		{"mo rule bad prefix", base + "mo_rules:\n  - account: bank\n    destination_prefix: abc\n",
			[]string{`config.yaml:15: mo_rules[0].destination_prefix: "abc" is not a prefix`}},
		{"duplicate mo rule", base + "mo_rules:\n  - account: bank\n  - account: bank\n",
			[]string{`config.yaml:15: mo_rules[1]: same destination_prefix and upstream as mo_rules[0] (line 14)`}},

		{"fake smsc on listen address", "sandbox:\n  fake_smsc:\n    listen: 127.0.0.1:2775\n",
			[]string{`config.yaml:3: sandbox.fake_smsc.listen: "127.0.0.1:2775" is also listen.smpp`}},
		{"fake smsc message id format", "sandbox:\n  fake_smsc:\n    message_id_format: base64\n",
			[]string{`config.yaml:3: sandbox.fake_smsc.message_id_format: "base64" is not a format`}},
		{"bad log level", "log:\n  level: verbose\n", []string{`config.yaml:2: log.level: "verbose" is not a level`}},
		{"bad log format", "log:\n  format: text\n", []string{`config.yaml:2: log.format: "text" is not a format`}},

		{"all errors are collected", "session:\n  window: 0\nrelay:\n  deliver_timeout: 0s\nlog:\n  level: loud\n", []string{
			"config.yaml:2: session.window:",
			"config.yaml:4: relay.deliver_timeout:",
			"config.yaml:6: log.level:",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("config.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want errors %q", c, tt.want)
			}
			if c != nil {
				t.Error("Parse returned a config along with an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config.yaml") {
				t.Errorf("error does not start with the file name:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q; got:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "topsecret") {
				t.Errorf("error echoes a password:\n%s", msg)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is not a *config.Error: %T", err)
			}
		})
	}
}

func TestParseOK(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"defaults everywhere", "log:\n  level: debug\n", func(t *testing.T, c *Config) {
			want := Config{
				Listen: Listen{SMPP: "127.0.0.1:2775", MaxConns: 10000, Lockout: Lockout{Failures: 10, Window: Duration(time.Minute), Duration: Duration(5 * time.Minute)},
					BindRate: BindRate{PerSecond: 10, Burst: 20}},
				Session: SessionDefaults{
					Window: 100, MaxPDUSize: 65552,
					EnquireLinkInterval: Duration(30 * time.Second), InactivityTimeout: Duration(120 * time.Second),
					ResponseTimeout: Duration(10 * time.Second), BindTimeout: Duration(10 * time.Second), WriteTimeout: Duration(10 * time.Second),
				},
				Relay: Relay{
					DLRMatchWait: Duration(2 * time.Second), DLRCorrelationTTL: Duration(72 * time.Hour), DLRCorrelationMax: 1_000_000,
					LinkWait: Duration(5 * time.Second), DeliverTimeout: Duration(10 * time.Second), DrainTimeout: Duration(30 * time.Second), MaxInFlight: 50000,
				},
				OTP: OTP{
					MaxInFlight: 1000, ConcatTimeout: Duration(5 * time.Second), ConcatFirstPartTimeout: Duration(time.Second), MaskKeep: 4, AuditMaxSizeMB: 100, AuditMaxFiles: 10,
				},
				Admin: Admin{Listen: "127.0.0.1:8080", Decisions: 1000},
				Log:   Log{Level: "debug", Format: "json", PDUSample: 100},
			}
			if !reflect.DeepEqual(*c, want) {
				t.Errorf("got  %+v\nwant %+v", *c, want)
			}
		}},
		{"upstream and account defaults", "session:\n  window: 50\n" + base, func(t *testing.T, c *Config) {
			u := c.Upstreams[0]
			if u.BindType != BindTransceiver || u.Binds != 1 || u.Window != 50 || u.TPS != 0 ||
				u.ReconnectMin.D() != 500*time.Millisecond || u.ReconnectMax.D() != 30*time.Second {
				t.Errorf("upstream = %+v", u)
			}
			a := c.Accounts[0]
			if a.Mode != ModePooled || a.MaxBinds != 8 || a.Window != 0 || a.QueueMax != 10000 || a.QueueTTL.D() != 72*time.Hour ||
				!reflect.DeepEqual(a.BindTypes, []string{"transmitter", "receiver", "transceiver"}) || a.AllowedCIDRs != nil {
				t.Errorf("account = %+v", a)
			}
			if c.Sandbox.FakeSMSC != nil {
				t.Errorf("fake_smsc = %+v, want nil", c.Sandbox.FakeSMSC)
			}
		}},
		{"explicit zeros are kept", "session:\n  enquire_link_interval: 0\n  inactivity_timeout: 0s\nrelay:\n  link_wait: 0\n  dlr_match_wait: 0s\n" +
			base + "    queue_max: 0\n", func(t *testing.T, c *Config) {
			if c.Session.EnquireLinkInterval != 0 || c.Session.InactivityTimeout != 0 || c.Relay.LinkWait != 0 || c.Relay.DLRMatchWait != 0 {
				t.Errorf("zero durations replaced: %+v %+v", c.Session, c.Relay)
			}
			if c.Accounts[0].QueueMax != 0 {
				t.Errorf("queue_max = %d, want 0", c.Accounts[0].QueueMax)
			}
		}},
		{"null values take defaults", "session:\n  window: ~\n  bind_timeout:\n", func(t *testing.T, c *Config) {
			if c.Session.Window != 100 || c.Session.BindTimeout.D() != 10*time.Second {
				t.Errorf("session = %+v", c.Session)
			}
		}},
		{"explicit values", "listen:\n  smpp: \"[::1]:0\"\n  max_connections: 5\n" + strings.Replace(base, "    password: pw\n",
			"    password: pw\n    system_type: VMA\n    bind_type: tx_rx\n    binds: 4\n    window: 7\n    tps: 12.5\n    reconnect_min: 1s\n    reconnect_max: 1h30m\n    addr_ton: 1\n    addr_npi: 1\n    address_range: \"^1\"\n", 1) +
			"    allowed_cidrs: [10.0.0.0/8, \"2001:db8::/32\"]\n    bind_types: [transmitter]\n    max_binds: 2\n    queue_ttl: 1h\n", func(t *testing.T, c *Config) {
			want := Upstream{Name: "carrier", Address: "10.0.0.1:2775", SystemID: "guard", Password: "pw", SystemType: "VMA",
				BindType: BindTxRx, Binds: 4, Window: 7, TPS: 12.5, ReconnectMin: Duration(time.Second), ReconnectMax: Duration(90 * time.Minute),
				AddrTON: 1, AddrNPI: 1, AddressRange: "^1"}
			if c.Upstreams[0] != want {
				t.Errorf("upstream = %+v\nwant       %+v", c.Upstreams[0], want)
			}
			a := c.Accounts[0]
			if len(a.AllowedCIDRs) != 2 || len(a.allowed) != 2 || a.MaxBinds != 2 || a.QueueTTL.D() != time.Hour {
				t.Errorf("account = %+v", a)
			}
			if c.Listen.SMPP != "[::1]:0" || c.Listen.MaxConns != 5 {
				t.Errorf("listen = %+v", c.Listen)
			}
		}},
		{"passthrough-only upstream needs no system_id", "upstreams:\n  - name: direct\n    address: smsc.example.net:2775\naccounts:\n  - system_id: pt\n    mode: passthrough\n    upstream: direct\n",
			func(t *testing.T, c *Config) {
				if a := c.Account("pt"); a == nil || a.Upstream != "direct" || a.Route != "" {
					t.Errorf("account = %+v", a)
				}
			}},
		{"fake smsc defaults", "sandbox:\n  fake_smsc: {}\n", func(t *testing.T, c *Config) {
			want := FakeSMSC{Listen: "127.0.0.1:2776", MessageIDFormat: "hex", DLRDelay: Duration(100 * time.Millisecond)}
			if f := c.Sandbox.FakeSMSC; f == nil || *f != want {
				t.Errorf("fake_smsc = %+v, want %+v", f, want)
			}
		}},
		{"anchors and merge keys", "upstreams:\n  - &common\n    name: a\n    address: h:1\n    system_id: s\n    binds: 3\n  - <<: *common\n    name: b\n",
			func(t *testing.T, c *Config) {
				if len(c.Upstreams) != 2 || c.Upstreams[1].Name != "b" || c.Upstreams[1].Binds != 3 || c.Upstreams[1].Address != "h:1" {
					t.Errorf("upstreams = %+v", c.Upstreams)
				}
			}},
		{"prefix routes and mo rules", strings.Replace(base, "accounts:", "  - name: uk\n    upstream: carrier\naccounts:", 1) +
			"    prefix_routes:\n      - prefix: \"+44\"\n        route: uk\nmo_rules:\n  - destination_prefix: \"+4479\"\n    upstream: carrier\n    account: bank\n  - account: bank\n",
			func(t *testing.T, c *Config) {
				if got := c.Account("bank").RouteFor("447700900123"); got != "uk" {
					t.Errorf("RouteFor = %q, want uk", got)
				}
				if len(c.MORules) != 2 || c.MORules[0].Upstream != "carrier" {
					t.Errorf("mo_rules = %+v", c.MORules)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("config.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "smppguard.yaml")
	if err := os.WriteFile(good, DefaultYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Error("Load(default.yaml) != Default()")
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(base+"  - system_id: eve\n    password: x\n    route: eu\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	want := bad + `:15: accounts[1].route: route "eu" is not defined; define it under routes: or use one of [default]`
	if err == nil || err.Error() != want {
		t.Errorf("Load(bad) = %v\nwant %s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.File != bad || ce.Line != 15 || ce.Path != "accounts[1].route" {
		t.Errorf("error fields = %+v", ce)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestYAMLErrorsWrapped(t *testing.T) {
	_, err := Parse("x.yaml", []byte("x: 1\na: b: c\n"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Err == nil || ce.Line != 2 {
		t.Fatalf("syntax error = %#v", err)
	}
	if want := "x.yaml:2: mapping values are not allowed in this context"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	// yaml.v3 reports no line for some errors on line 1; the file name
	// still leads.
	if _, err := Parse("x.yaml", []byte("a: b: c\n")); err == nil || !strings.HasPrefix(err.Error(), "x.yaml: ") {
		t.Errorf("line-1 syntax error = %v", err)
	}
}

func TestRouteFor(t *testing.T) {
	a := &Account{Route: "default", PrefixRoutes: []PrefixRoute{
		{Prefix: "+44", Route: "uk"},
		{Prefix: "4479", Route: "uk-mobile"},
		{Prefix: "1", Route: "nanp"},
		{Prefix: "+447700", Route: "uk-test"},
	}}
	tests := []struct{ dest, want string }{
		{"447700900123", "uk-test"},
		{"+447700900123", "uk-test"},
		{"447912345678", "uk-mobile"},
		{"+447912345678", "uk-mobile"},
		{"442071234567", "uk"},
		{"4", "default"},
		{"15551234567", "nanp"},
		{"+15551234567", "nanp"},
		{"33612345678", "default"},
		{"", "default"},
	}
	for _, tt := range tests {
		if got := a.RouteFor(tt.dest); got != tt.want {
			t.Errorf("RouteFor(%q) = %q, want %q", tt.dest, got, tt.want)
		}
	}
	if got := (&Account{Route: "r"}).RouteFor("123"); got != "r" {
		t.Errorf("no prefix routes: RouteFor = %q", got)
	}
}

func TestAllows(t *testing.T) {
	c, err := Parse("config.yaml", []byte(base+"    allowed_cidrs: [10.0.0.0/8, 192.0.2.7/32, \"2001:db8::/32\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	parsed := c.Account("bank")
	built := &Account{AllowedCIDRs: parsed.AllowedCIDRs} // not validated: parsed on the fly
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true},
		{"192.0.2.7", true},
		{"192.0.2.8", false},
		{"11.0.0.1", false},
		{"2001:db8::1", true},
		{"2001:db9::1", false},
	}
	for _, tt := range tests {
		for name, a := range map[string]*Account{"parsed": parsed, "built": built} {
			if got := a.Allows(net.ParseIP(tt.ip)); got != tt.want {
				t.Errorf("%s: Allows(%s) = %v, want %v", name, tt.ip, got, tt.want)
			}
		}
	}
	if parsed.Allows(nil) {
		t.Error("Allows(nil) with CIDRs = true")
	}
	open := &Account{}
	if !open.Allows(net.ParseIP("203.0.113.1")) || !open.Allows(nil) {
		t.Error("empty allowed_cidrs must allow everything")
	}
	if (&Account{AllowedCIDRs: []string{"garbage"}}).Allows(net.ParseIP("10.0.0.1")) {
		t.Error("unparsable CIDR must allow nothing")
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"30s", 30 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"0", 0, ""},
		{"'0s'", 0, ""},
		{"30", 0, "has no unit"},
		{"-1s", 0, "is negative"},
		{"soon", 0, "invalid duration"},
		{"[1s]", 0, "expected a duration"},
	}
	for _, tt := range tests {
		var v struct {
			D Duration `yaml:"d"`
		}
		err := yaml.Unmarshal([]byte("d: "+tt.in), &v)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.in, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err = %v, want %q", tt.in, err, tt.wantErr)
		case tt.wantErr == "" && v.D.D() != tt.want:
			t.Errorf("%s = %v, want %v", tt.in, v.D.D(), tt.want)
		}
	}
	out, err := yaml.Marshal(map[string]Duration{"d": Duration(90 * time.Second)})
	if err != nil || string(out) != "d: 1m30s\n" {
		t.Errorf("Marshal = %q, %v", out, err)
	}
	if txt, _ := Duration(time.Second).MarshalText(); string(txt) != "1s" {
		t.Errorf("MarshalText = %q", txt)
	}
}
