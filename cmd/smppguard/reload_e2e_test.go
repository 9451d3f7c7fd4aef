package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// providerFilesConfig has a static provider reading numbers and a CAMARA provider
// authenticating with private_key_jwt from key; the policy checks the static one.
func providerFilesConfig(smscAddr, numbers, key string) string {
	return fmt.Sprintf(`listen:
  smpp: 127.0.0.1:0
upstreams:
  - {name: carrier, address: %s, system_id: proxy, password: secret, binds: 1, reconnect_min: 20ms, reconnect_max: 100ms}
routes:
  - {name: default, upstream: carrier}
accounts:
  - {system_id: bank, password: bankpw, route: default, policy: otp}
providers:
  - {name: blocklist, type: static, file: %s}
  - name: op
    type: camara
    base_url: http://127.0.0.1:1
    auth:
      token_url: http://127.0.0.1:1/token
      client_id: smppguard
      method: private_key_jwt
      private_key_file: %s
      purpose: dpv:FraudPreventionAndDetection
policies:
  - name: otp
    checks:
      - {signal: sim_swap, provider: blocklist, max_age: 72h, on_risk: {action: reject, status: ESME_RSUBMITFAIL}}
admin:
  listen: 127.0.0.1:0
  token: %s
log:
  level: warn
`, smscAddr, numbers, key, opsToken)
}

func writeECKey(t *testing.T, path string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir, name := filepath.Split(path)
	if got, _ := writeKeys(t, dir, strings.TrimSuffix(name, ".pem"), k, &k.PublicKey); got != path {
		t.Fatalf("key written to %s, want %s", got, path)
	}
}

// waitMetric polls /metrics until it has line, within 10 s.
func waitMetric(t *testing.T, p *proc, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var body []byte
	for time.Now().Before(deadline) {
		_, body = adminCall(t, p, "GET", "/metrics", opsToken)
		if strings.Contains(string(body), line+"\n") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("metrics never had %q:\n%s", line, body)
}

// A reload re-reads the files providers are built from, not only the config: an edited
// static numbers file (an emergency block) applies after a real SIGHUP, a rotated private
// key is taken, and a key replaced by garbage refuses the reload with the reason while the
// running configuration goes on.
func TestE2EReloadRereadsProviderFiles(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{NoRecord: true})
	dir := t.TempDir()
	numbers := filepath.Join(dir, "blocklist.yaml")
	key := filepath.Join(dir, "carrier.pem")
	if err := os.WriteFile(numbers, []byte("numbers: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeECKey(t, key)
	path := filepath.Join(dir, "smppguard.yaml")
	if err := os.WriteFile(path, []byte(providerFilesConfig(smsc.Addr(), numbers, key)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, "serve", "-c", path)
	c := bindTRX(t, p.addr, "bank", "bankpw")
	const blocked = "447700900042"
	if r := c.submit(t, sm{dest: blocked, text: []byte(otpText)}); r.Status() != smpp.StatusOK {
		t.Fatalf("OTP before the block: %s", r.Status())
	}

	// The emergency block: only the numbers file changes, then a real SIGHUP.
	if err := os.WriteFile(numbers, []byte("numbers:\n  \"+"+blocked+"\": {sim_swapped_ago: 1m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, p, `smppguard_config_reloads_total{result="ok"} 1`)
	if r := c.submit(t, sm{dest: blocked, text: []byte(otpText)}); r.Status() != smpp.StatusSubmitFail {
		t.Fatalf("OTP after the numbers file blocked it and SIGHUP: %s, want ESME_RSUBMITFAIL", r.Status())
	}

	// A rotated key: the provider reading it is built again.
	writeECKey(t, key)
	code, body := adminCall(t, p, "POST", "/api/v1/reload", opsToken)
	if code != 200 || !strings.Contains(string(body), `"providers_changed":["op"]`) {
		t.Fatalf("reload after key rotation: %d %s", code, body)
	}

	// A key replaced by garbage: refused with the reason, by the API and by SIGHUP.
	if err := os.WriteFile(key, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body = adminCall(t, p, "POST", "/api/v1/reload", opsToken)
	if code != 400 || !strings.Contains(string(body), key) || !strings.Contains(string(body), "no PEM private key") {
		t.Fatalf("reload with a garbage key: %d %s", code, body)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, p, `smppguard_config_reloads_total{result="refused"} 2`)
	if logs := p.logs(); !strings.Contains(logs, "reload refused") || !strings.Contains(logs, "no PEM private key") {
		t.Fatalf("a refused SIGHUP reload does not log why:\n%s", logs)
	}
	// The running configuration stays: the block holds.
	if r := c.submit(t, sm{dest: blocked, text: []byte(otpText)}); r.Status() != smpp.StatusSubmitFail {
		t.Fatalf("OTP after refused reloads: %s", r.Status())
	}
	waitMetric(t, p, `smppguard_config_reloads_total{result="ok"} 2`)
}

// check-config parses the providers' files as serve does: an unparsable private key or
// numbers file is an error naming the file.
func TestE2ECheckConfigParsesProviderFiles(t *testing.T) {
	dir := t.TempDir()
	numbers := filepath.Join(dir, "blocklist.yaml")
	key := filepath.Join(dir, "carrier.pem")
	os.WriteFile(numbers, []byte("numbers: {}\n"), 0o600)
	writeECKey(t, key)
	path := filepath.Join(dir, "smppguard.yaml")
	os.WriteFile(path, []byte(providerFilesConfig("127.0.0.1:2776", numbers, key)), 0o600)
	if out, err := binCommand("check-config", "-c", path).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("valid config: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		file, content, want string
	}{
		{key, "not a key\n", "no PEM private key"},
		{numbers, "numbers:\n  \"+4477\": {}\n", "not an E.164 number"},
	} {
		good, _ := os.ReadFile(tc.file)
		os.WriteFile(tc.file, []byte(tc.content), 0o600)
		out, err := binCommand("check-config", "-c", path).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), tc.file) || !strings.Contains(string(out), tc.want) {
			t.Fatalf("check-config with a bad %s: %v\n%s", filepath.Base(tc.file), err, out)
		}
		os.WriteFile(tc.file, good, 0o600)
	}
}
