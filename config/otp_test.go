package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const otpBase = `upstreams:
  - name: carrier
    address: 127.0.0.1:2776
    system_id: p
    password: s
  - name: voicegw
    address: 127.0.0.1:2777
    system_id: p
    password: s
routes:
  - {name: default, upstream: carrier}
  - {name: voice, upstream: voicegw}
accounts:
  - system_id: bank
    password: pw
    route: default
    policy: otp
`

func TestOTPConfig(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	os.WriteFile(key, []byte("x"), 0o644)
	cases := []struct {
		name  string
		yaml  string
		want  string // substring of the error; "" = valid
		check func(t *testing.T, c *Config)
	}{
		{"valid with defaults", `providers:
  - name: op
    type: camara
    base_url: https://api.example/camara
    auth: {token_url: https://api.example/token, client_id: c, client_secret: s, purpose: "dpv:FraudPreventionAndDetection"}
policies:
  - name: otp
    checks:
      - {signal: sim_swap, provider: op}
      - {signal: call_forwarding, provider: op, on_risk: {action: reroute, route: voice}, on_error: {action: reject, status: ESME_RTHROTTLED}}
`, "", func(t *testing.T, c *Config) {
			p := c.Policy("otp")
			if p.Checks[0].MaxAge.D().Hours() != 72 || p.Checks[0].OnRisk.Action != ActionReject || p.Checks[0].OnError.Action != ActionAllow {
				t.Errorf("defaults: %+v", p.Checks[0])
			}
			if p.Deadline.D().Seconds() != 2 || c.Provider("op").Auth.Method != "client_secret_basic" || c.OTP.MaxInFlight != 1000 {
				t.Errorf("defaults: %+v %+v", p, c.Provider("op").Auth)
			}
			if c.Policy("otp").Checks[1].OnError.StatusCode().String() != "ESME_RTHROTTLED" {
				t.Error("status name not parsed")
			}
		}},
		{"unknown policy", strings.Replace(otpBase, "policy: otp", "policy: nope", 1), `accounts[0].policy: policy "nope" is not defined`, nil},
		{"unknown provider", `policies:
  - name: otp
    checks: [{signal: sim_swap, provider: ghost}]
`, `policies[0].checks[0].provider: provider "ghost" is not defined`, nil},
		{"bad signal", `providers: [{name: st, type: static, file: ` + key + `}]
policies:
  - name: otp
    checks: [{signal: sim_swop, provider: st}]
`, `"sim_swop" is not a signal`, nil},
		{"reroute to unknown route", `providers: [{name: st, type: static, file: ` + key + `}]
policies:
  - name: otp
    checks: [{signal: sim_swap, provider: st, on_risk: {action: reroute, route: nowhere}}]
`, `on_risk.route: route "nowhere" is not defined`, nil},
		{"bad status", `providers: [{name: st, type: static, file: ` + key + `}]
policies:
  - name: otp
    checks: [{signal: sim_swap, provider: st, on_risk: {action: reject, status: ESME_RWHATEVER}}]
`, `is not a command_status`, nil},
		{"bad regexp", `providers: [{name: st, type: static, file: ` + key + `}]
policies:
  - name: otp
    rules: [{name: r, text_pattern: "(unclosed"}]
    checks: [{signal: sim_swap, provider: st}]
`, `rules[0].text_pattern: not a valid regular expression`, nil},
		{"key file readable by others", `providers:
  - name: op
    type: camara
    base_url: https://api.example
    auth: {token_url: https://api.example/token, client_id: c, method: private_key_jwt, private_key_file: ` + key + `}
policies: [{name: otp}]
`, `chmod 600`, nil},
		{"bad purpose", `providers:
  - name: op
    type: camara
    base_url: https://api.example
    auth: {token_url: https://api.example/token, client_id: c, client_secret: s, purpose: FraudPrevention}
policies: [{name: otp}]
`, `is not a purpose scope`, nil},
		{"mask_keep absent keeps the last 4 digits", `policies: [{name: otp}]
`, "", func(t *testing.T, c *Config) {
			if c.OTP.MaskKeep != 4 {
				t.Errorf("mask_keep %d, want the default 4", c.OTP.MaskKeep)
			}
		}},
		{"mask_keep 0 masks every digit", `policies: [{name: otp}]
otp: {mask_keep: 0}
`, "", func(t *testing.T, c *Config) {
			if c.OTP.MaskKeep != 0 {
				t.Errorf("mask_keep %d, want 0 (an explicit 0 is not replaced by the default)", c.OTP.MaskKeep)
			}
		}},
		{"mask_keep negative", `policies: [{name: otp}]
otp: {mask_keep: -1}
`, `otp.mask_keep: must be 0 (mask every digit) or more, got -1`, nil},
		{"concat_first_part_timeout", `policies: [{name: otp}]
otp: {concat_timeout: 5s, concat_first_part_timeout: 800ms}
`, "", func(t *testing.T, c *Config) {
			if c.OTP.ConcatFirstPartTimeout.D() != 800*time.Millisecond || c.OTP.ConcatTimeout.D() != 5*time.Second {
				t.Errorf("concat timeouts %s %s", c.OTP.ConcatFirstPartTimeout, c.OTP.ConcatTimeout)
			}
		}},
		{"concat_first_part_timeout absent", `policies: [{name: otp}]
`, "", func(t *testing.T, c *Config) {
			if c.OTP.ConcatFirstPartTimeout.D() != time.Second {
				t.Errorf("concat_first_part_timeout %s, want the default 1s", c.OTP.ConcatFirstPartTimeout)
			}
		}},
		{"concat_first_part_timeout absent, concat_timeout shorter than its default", `policies: [{name: otp}]
otp: {concat_timeout: 400ms}
`, "", func(t *testing.T, c *Config) {
			if c.OTP.ConcatFirstPartTimeout.D() != 400*time.Millisecond {
				t.Errorf("concat_first_part_timeout %s, want concat_timeout (400ms)", c.OTP.ConcatFirstPartTimeout)
			}
		}},
		{"concat_first_part_timeout longer than concat_timeout", `policies: [{name: otp}]
otp: {concat_timeout: 2s, concat_first_part_timeout: 3s}
`, `otp.concat_first_part_timeout: 3s is longer than otp.concat_timeout (2s)`, nil},
		{"camara without base_url", `providers:
  - name: op
    type: camara
    auth: {none: true}
policies: [{name: otp}]
`, `providers[0].base_url`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.yaml
			if !strings.Contains(src, "upstreams:") {
				src = otpBase + src
			}
			c, err := Parse("otp.yaml", []byte(src))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "otp.yaml:") {
				t.Fatalf("error without file:line: %v", err)
			}
		})
	}
}
