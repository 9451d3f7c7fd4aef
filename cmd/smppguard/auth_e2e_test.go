package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smppguard/smppguard/testharness/fakecarrier"
)

func writeKeys(t *testing.T, dir, name string, priv any, pub any) (privPath, pubPEM string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	privPath = filepath.Join(dir, name+".pem")
	if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pder, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return privPath, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}))
}

func checkConfigFor(t *testing.T, baseURL, auth string) string {
	t.Helper()
	cfg := fmt.Sprintf(`upstreams:
  - {name: carrier, address: 127.0.0.1:2776, system_id: p, password: s}
routes:
  - {name: default, upstream: carrier}
accounts:
  - {system_id: bank, password: pw, route: default, policy: otp}
providers:
  - name: op
    type: camara
    base_url: %s
    auth:
%s
policies:
  - name: otp
    checks:
      - {signal: sim_swap, provider: op, on_error: {action: allow}}
`, baseURL, auth)
	path := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each client authentication method, end to end: the real binary's `check` command gets a
// token from the fake carrier, which verifies the method (and the client assertion's
// signature, aud, exp and jti for private_key_jwt) and the purpose scope, then answers the
// SIM swap check.
func TestE2ECarrierAuthMethods(t *testing.T) {
	dir := t.TempDir()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaPriv, rsaPub := writeKeys(t, dir, "rsa", rsaKey, &rsaKey.PublicKey)
	ecPriv, ecPub := writeKeys(t, dir, "ec", ecKey, &ecKey.PublicKey)

	sc := fakecarrier.DefaultScenario()
	sc.Clients = []fakecarrier.Client{
		{ClientID: "secret-client", ClientSecret: "s3cret"},
		{ClientID: "rsa-client", PublicKeyPEM: rsaPub},
		{ClientID: "ec-client", PublicKeyPEM: ecPub},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	carrier, err := fakecarrier.Start(ctx, fakecarrier.Config{Scenario: sc, RequirePurpose: "dpv:FraudPreventionAndDetection"})
	if err != nil {
		t.Fatal(err)
	}
	defer carrier.Close()
	const purpose = "      purpose: dpv:FraudPreventionAndDetection\n      scopes: [sim-swap:check]"
	cases := []struct {
		name, method, auth string
		wantReject         bool
	}{
		{"client_secret_basic", "client_secret_basic", "      token_url: " + carrier.TokenURL() + "\n      client_id: secret-client\n      client_secret: s3cret\n" + purpose, true},
		{"client_secret_post", "client_secret_post", "      token_url: " + carrier.TokenURL() + "\n      client_id: secret-client\n      method: client_secret_post\n      client_secret: s3cret\n" + purpose, true},
		{"private_key_jwt RS256 via discovery", "private_key_jwt", "      discovery_url: " + carrier.DiscoveryURL() + "\n      client_id: rsa-client\n      method: private_key_jwt\n      private_key_file: " + rsaPriv + "\n      signing_alg: RS256\n" + purpose, true},
		{"private_key_jwt ES256", "private_key_jwt", "      token_url: " + carrier.TokenURL() + "\n      client_id: ec-client\n      method: private_key_jwt\n      private_key_file: " + ecPriv + "\n      key_id: k1\n" + purpose, true},
		{"wrong key: token refused, fail policy applies", "private_key_jwt", "      token_url: " + carrier.TokenURL() + "\n      client_id: rsa-client\n      method: private_key_jwt\n      private_key_file: " + ecPriv + "\n" + purpose, false},
		{"missing purpose: token refused", "client_secret_basic", "      token_url: " + carrier.TokenURL() + "\n      client_id: secret-client\n      client_secret: s3cret\n      scopes: [sim-swap:check]", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(carrier.Calls())
			out, err := binCommand("check", "-c", checkConfigFor(t, carrier.URL(), tc.auth), "+447700900001").CombinedOutput()
			if err != nil {
				t.Fatalf("check: %v\n%s", err, out)
			}
			if got := strings.Contains(string(out), "decision: reject"); got != tc.wantReject {
				t.Fatalf("reject %v, want %v:\n%s", got, tc.wantReject, out)
			}
			if !tc.wantReject && !strings.Contains(string(out), "error") {
				t.Fatalf("a refused token should show as a look-up error:\n%s", out)
			}
			var tokenCall *fakecarrier.Call
			for _, c := range carrier.Calls()[before:] {
				if c.Endpoint == "token" {
					c := c
					tokenCall = &c
				}
			}
			if tokenCall == nil || tokenCall.AuthMethod != tc.method {
				t.Fatalf("token call %+v, want method %s", tokenCall, tc.method)
			}
			for _, secret := range []string{"s3cret", "PRIVATE KEY"} {
				if strings.Contains(string(out), secret) {
					t.Fatalf("secret in output:\n%s", out)
				}
			}
		})
	}
}

// A private key readable by others, or unparsable, is a clear config error at start.
func TestE2EKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.pem")
	os.WriteFile(loose, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o644)
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a key"), 0o600)
	for _, tc := range []struct{ key, cmd, want string }{
		{loose, "check-config", "chmod 600"},
		{garbage, "serve", "garbage.pem"},
	} {
		cfg := checkConfigFor(t, "http://127.0.0.1:1", "      token_url: http://127.0.0.1:1/token\n      client_id: c\n      method: private_key_jwt\n      private_key_file: "+tc.key)
		args := []string{tc.cmd, "-c", cfg}
		out, err := binCommand(args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), tc.want) {
			t.Fatalf("%s with %s: %v\n%s", tc.cmd, filepath.Base(tc.key), err, out)
		}
	}
}
