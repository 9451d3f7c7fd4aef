package fakecarrier

import (
	"bufio"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadScenario(t *testing.T) {
	p := writeScenario(t, `
clients:
  - client_id: app
    client_secret: s3cret
    scopes: [sim-swap:check, dpv:FraudPreventionAndDetection]
    token_ttl: 30m
numbers:
  "+447700900001": {sim_changed_ago: 2h}
  "+447700900002":
    forwardings: [unconditional, conditional_busy]
    latency: 250ms
  "+447700900003":
    sim_changed_at: 2025-05-01T10:00:00Z
    device_changed_ago: 3d
    monitored_days: 90
  "+447700900004": {unknown: true}
  "+447700900005": {roaming: true, country_code: 340, country_name: [BL, GF]}
  "+447700900006":
    error: {status: 429, code: QUOTA_EXCEEDED, message: slow down, times: 3, endpoints: [sim-swap, device-roaming-status/retrieve]}
  "+447700900007": {timeout: true, device_changed_ago: 1d12h}
default:
  latency: 10ms
`)
	sc, err := LoadScenario(p)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	want := Scenario{
		Clients: []Client{{ClientID: "app", ClientSecret: "s3cret", Scopes: []string{"sim-swap:check", "dpv:FraudPreventionAndDetection"}, TokenTTL: 30 * time.Minute}},
		Numbers: map[string]Number{
			"+447700900001": {SimChangedAgo: Ago(2 * time.Hour)},
			"+447700900002": {Forwardings: []string{"unconditional", "conditional_busy"}, Latency: Duration(250 * time.Millisecond)},
			"+447700900003": {SimChangedAt: &at, DeviceChangedAgo: Ago(72 * time.Hour), MonitoredDays: 90},
			"+447700900004": {Unknown: true},
			"+447700900005": {Roaming: true, CountryCode: 340, CountryName: []string{"BL", "GF"}},
			"+447700900006": {Error: &InjectedError{Status: 429, Code: "QUOTA_EXCEEDED", Message: "slow down", Times: 3, Endpoints: []string{"sim-swap", "device-roaming-status/retrieve"}}},
			"+447700900007": {Timeout: true, DeviceChangedAgo: Ago(36 * time.Hour)},
		},
		Default: Number{Latency: Duration(10 * time.Millisecond)},
	}
	if !reflect.DeepEqual(sc, want) {
		t.Fatalf("got  %+v\nwant %+v", sc, want)
	}
}

func TestLoadScenarioErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"empty", ``, "empty scenario"},
		{"unknown key", "clients:\n  - client_id: a\n    client_secret: b\n    secret: c\n", "field secret not found"},
		{"unknown number key", "numbers:\n  \"+447700900001\": {swapped: true}\n", "field swapped not found"},
		{"misplaced key", "sim_changed_ago: 2h\n", "field sim_changed_ago not found"},
		{"bad number", "numbers:\n  \"447700900001\": {}\n", `"447700900001" is not an E.164 number`},
		{"bad duration", "numbers:\n  \"+447700900001\": {sim_changed_ago: 2 hours}\n", "invalid duration"},
		{"negative duration", "default: {latency: -1s}\n", "negative"},
		{"bad forwarding", "numbers:\n  \"+447700900001\": {forwardings: [always]}\n", `unknown "always"`},
		{"bad status", "default: {error: {status: 200}}\n", "not an HTTP error status"},
		{"bad endpoint", "default: {error: {status: 500, endpoints: [simswap]}}\n", `unknown "simswap"`},
		{"ago and at", "default: {sim_changed_ago: 1h, sim_changed_at: 2025-01-01T00:00:00Z}\n", "set one, not both"},
		{"bad scope", "clients:\n  - {client_id: a, client_secret: b, scopes: [sim-swap:write]}\n", `unknown scope "sim-swap:write"`},
		{"no credentials", "clients:\n  - {client_id: a}\n", "set client_secret"},
		{"no client_id", "clients:\n  - {client_secret: b}\n", "client_id: required"},
		{"duplicate client", "clients:\n  - {client_id: a, client_secret: b}\n  - {client_id: a, client_secret: c}\n", "given twice"},
		{"missing key file", "clients:\n  - {client_id: a, public_key_file: nope.pem}\n", "nope.pem"},
		{"bad key pem", "clients:\n  - {client_id: a, public_key_pem: junk}\n", "no PEM block"},
		{"two documents", "default: {}\n---\ndefault: {}\n", "more than one YAML document"},
		{"wrong type", "numbers: [1, 2]\n", "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeScenario(t, tc.text)
			_, err := LoadScenario(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, p, tc.want)
			}
		})
	}
	if _, err := LoadScenario(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("a missing file loaded")
	}
	// Start validates Go-built scenarios the same way.
	if _, err := Start(t.Context(), Config{Scenario: Scenario{Numbers: map[string]Number{"+1": {}}}, NoAuth: true}); err == nil {
		t.Fatal("Start accepted a bad number")
	}
	if _, err := Start(t.Context(), Config{}); err == nil || !strings.Contains(err.Error(), "no clients") {
		t.Fatalf("Start without clients: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "2h": 2 * time.Hour, "1h30m": 90 * time.Minute, "500ms": 500 * time.Millisecond,
		"3d": 72 * time.Hour, "1d12h": 36 * time.Hour, "0d": 0} {
		if d, err := ParseDuration(in); err != nil || d.D() != want {
			t.Errorf("%q: %v %v", in, d, err)
		}
	}
	for _, in := range []string{"", "5", "-1h", "-1d", "xd", "1d-1h", "2 hours"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if s := Duration(2 * time.Hour).String(); s != "2h" {
		t.Error(s)
	}
	if s := Duration(90 * time.Minute).String(); s != "1h30m" {
		t.Error(s)
	}
}

// DefaultScenario behaves as documented for the sandbox's provider settings.
func TestDefaultScenario(t *testing.T) {
	const purpose = "dpv:FraudPreventionAndDetection"
	s := start(t, Config{Scenario: DefaultScenario(), RequirePurpose: purpose})
	tr := mustToken(t, tokenReq(t, s, "smppguard", "sandbox-secret", form("grant_type", "client_credentials",
		"scope", "sim-swap:check call-forwarding-signal:unconditional-call-forwardings:read "+purpose)))
	if tr.ExpiresIn != 3600 {
		t.Fatalf("expires_in %d", tr.ExpiresIn)
	}
	for num, want := range map[string][2]string{
		"+447700900001": {`{"swapped":true}`, `{"active":false}`},
		"+447700900002": {`{"swapped":false}`, `{"active":true}`},
		"+447700900003": {`{"swapped":false}`, `{"active":false}`},
		"+447700900009": {`{"swapped":false}`, `{"active":false}`},
	} {
		jsonEq(t, call(t, s, tr.AccessToken, pSimCheck, phone(num)).body, want[0])
		jsonEq(t, call(t, s, tr.AccessToken, pCFU, phone(num)).body, want[1])
	}
	if r := call(t, s, tr.AccessToken, pSimCheck, phone("+447700900004")); r.status != 404 || r.errCode(t) != "IDENTIFIER_NOT_FOUND" {
		t.Fatalf("unknown: %d %s", r.status, r.body)
	}
	// The YAML printed by -print-scenario loads back to the same scenario.
	b, err := DefaultScenario().yaml()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := LoadScenario(writeScenario(t, string(b)))
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(sc, DefaultScenario()) {
		t.Fatalf("round trip:\n%s\n%+v", b, sc)
	}
}

// Main: flags, banner, serving until cancelled.
func TestMainCommand(t *testing.T) {
	t.Run("serve", func(t *testing.T) {
		p := writeScenario(t, "clients: [{client_id: app, client_secret: s3cret}]\nnumbers:\n  \"+447700900001\": {sim_changed_ago: 1h}\n")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		done := make(chan error, 1)
		go func() {
			done <- Main(ctx, []string{"-listen", "127.0.0.1:0", "-scenario", p, "-require-purpose", "dpv:FraudPreventionAndDetection",
				"-prefix", "/camara", "-client", "extra:pw"}, pw, nil)
			pw.Close()
		}()
		sc := bufio.NewScanner(pr)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.HasPrefix(sc.Text(), "  other numbers:") {
				break
			}
		}
		out := strings.Join(lines, "\n")
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "fake-carrier listening on http://127.0.0.1:") {
			t.Fatalf("output %q", out)
		}
		base := strings.TrimPrefix(lines[0], "fake-carrier listening on ")
		for _, want := range []string{"token endpoint: " + base + "/oauth2/token", "discovery:      " + base + "/.well-known/openid-configuration",
			"client app (client_secret_basic, client_secret_post)", "client extra", "purpose dpv:FraudPreventionAndDetection",
			"+447700900001 SIM swapped 1h ago", "other numbers: clean"} {
			if !strings.Contains(out, want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
		}
		if !strings.HasSuffix(base, "/camara") {
			t.Fatalf("base %s", base)
		}
		// Talk to it like a client would.
		tokURL, _ := url.Parse(base + "/oauth2/token")
		s := &Server{base: tokURL.Scheme + "://" + tokURL.Host, prefix: "/camara"}
		tr := mustToken(t, tokenReq(t, s, "extra", "pw", form("grant_type", "client_credentials", "scope", "dpv:FraudPreventionAndDetection")))
		jsonEq(t, call(t, s, tr.AccessToken, pSimCheck, phone("+447700900001")).body, `{"swapped":true}`)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Main did not return after cancel")
		}
	})
	t.Run("help", func(t *testing.T) {
		var b syncBuffer
		if err := Main(t.Context(), []string{"-h"}, &b, nil); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"usage: smppguard fake-carrier", "-listen", "-scenario", "-require-purpose", "sim_changed_ago"} {
			if !strings.Contains(b.String(), want) {
				t.Fatalf("help lacks %q:\n%s", want, b.String())
			}
		}
	})
	t.Run("print-scenario", func(t *testing.T) {
		var b syncBuffer
		if err := Main(t.Context(), []string{"-print-scenario"}, &b, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "client_id: smppguard") || !strings.Contains(b.String(), "sim_changed_ago: 2h") {
			t.Fatalf("%s", b.String())
		}
	})
	for _, args := range [][]string{
		{"-bogus"},
		{"extra-arg"},
		{"-scenario", filepath.Join(t.TempDir(), "missing.yaml")},
		{"-require-purpose", "Fraud", "-listen", "127.0.0.1:0"},
		{"-client", "nosecret"},
		{"-listen", "256.0.0.1:1"},
	} {
		if err := Main(t.Context(), args, &syncBuffer{}, nil); err == nil {
			t.Errorf("Main %q: no error", args)
		}
	}
}

// The example in -h loads.
func TestHelpExample(t *testing.T) {
	text := strings.TrimPrefix(scenarioHelp, "\nScenario file (YAML, strict; -print-scenario prints the built-in one):\n")
	sc, err := LoadScenario(writeScenario(t, text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if len(sc.Clients) != 1 || len(sc.Numbers) != 7 || sc.Numbers["+447700900007"].Error.Times != 2 {
		t.Fatalf("%+v", sc)
	}
}
