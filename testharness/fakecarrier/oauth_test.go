package fakecarrier

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// client_secret_basic and client_secret_post, and their failures.
func TestTokenSecret(t *testing.T) {
	sc := testScenario()
	sc.Clients = append(sc.Clients, Client{ClientID: "odd id:x", ClientSecret: "p@ss w:rd&"})
	s := start(t, Config{Scenario: sc})
	cc := form("grant_type", "client_credentials")

	t.Run("basic", func(t *testing.T) {
		r := tokenReq(t, s, "app", "s3cret", cc)
		tr := mustToken(t, r)
		if tr.ExpiresIn != 600 || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s %v", r.body, r.header)
		}
		if tr.Scope != strings.Join(APIScopes, " ") {
			t.Fatalf("scope %q", tr.Scope)
		}
		if c := s.Calls()[len(s.Calls())-1]; c.Endpoint != EndpointToken || c.AuthMethod != AuthBasic || c.ClientID != "app" || c.Status != 200 {
			t.Fatalf("recorded %+v", c)
		}
		if r := call(t, s, tr.AccessToken, pSimCheck, phone("+447700900001")); r.status != 200 {
			t.Fatalf("API: %d", r.status)
		}
	})
	t.Run("basic form-urlencoded credentials", func(t *testing.T) {
		mustToken(t, tokenReq(t, s, "odd id:x", "p@ss w:rd&", cc))
	})
	t.Run("basic unencoded credentials", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(cc.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("app", "s3cret")
		mustToken(t, do(t, req))
	})
	t.Run("post", func(t *testing.T) {
		tr := mustToken(t, tokenReq(t, s, "", "", form("grant_type", "client_credentials", "client_id", "app", "client_secret", "s3cret", "scope", "sim-swap:check")))
		if tr.Scope != "sim-swap:check" {
			t.Fatalf("scope %q", tr.Scope)
		}
		if c := s.Calls()[len(s.Calls())-1]; c.AuthMethod != AuthPost || c.ClientID != "app" {
			t.Fatalf("recorded %+v", c)
		}
	})
	for _, tc := range []struct {
		name, user, pass string
		form             url.Values
		status           int
		err              string
	}{
		{"basic wrong secret", "app", "nope", cc, 401, "invalid_client"},
		{"basic unknown client", "who", "s3cret", cc, 401, "invalid_client"},
		{"post wrong secret", "", "", form("grant_type", "client_credentials", "client_id", "app", "client_secret", "x"), 401, "invalid_client"},
		{"post no client_id", "", "", form("grant_type", "client_credentials", "client_secret", "s3cret"), 401, "invalid_client"},
		{"no authentication", "", "", cc, 401, "invalid_client"},
		{"basic and post", "app", "s3cret", form("grant_type", "client_credentials", "client_id", "app", "client_secret", "s3cret"), 400, "invalid_request"},
		{"basic with other client_id", "app", "s3cret", form("grant_type", "client_credentials", "client_id", "odd id:x"), 401, "invalid_client"},
		{"no grant_type", "app", "s3cret", url.Values{}, 400, "invalid_request"},
		{"password grant", "app", "s3cret", form("grant_type", "password"), 400, "unsupported_grant_type"},
		{"duplicate parameter", "app", "s3cret", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tokenReq(t, s, tc.user, tc.pass, tc.form)
			if r.status != tc.status || oauthErr(t, r) != tc.err {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.TokenURL(), nil)
		if r := do(t, req); r.status != 405 {
			t.Fatalf("%d", r.status)
		}
	})
}

// Scopes: what may be asked for, and which endpoint each opens (403 otherwise).
func TestScopes(t *testing.T) {
	sc := testScenario()
	sc.Clients = append(sc.Clients, Client{ClientID: "narrow", ClientSecret: "pw", Scopes: []string{"sim-swap:check", "dpv:FraudPreventionAndDetection"}})
	s := start(t, Config{Scenario: sc})
	endpoints := map[string]string{
		pSimCheck: phone("+447700900001"), pSimDate: phone("+447700900001"), pCFU: phone("+447700900001"),
		pCFList: phone("+447700900001"), pDevCheck: phone("+447700900001"), pDevDate: phone("+447700900001"),
		pRoaming: device("+447700900001"),
	}
	for _, tc := range []struct {
		scope string
		opens []string
	}{
		{"sim-swap:check", []string{pSimCheck}},
		{"sim-swap:retrieve-date", []string{pSimDate}},
		{"sim-swap", []string{pSimCheck, pSimDate}},
		{"call-forwarding-signal:unconditional-call-forwardings:read", []string{pCFU}},
		{"call-forwarding-signal:call-forwardings:read", []string{pCFList}},
		{"device-swap:check", []string{pDevCheck}},
		{"device-swap:retrieve-date", []string{pDevDate}},
		{"device-swap", []string{pDevCheck, pDevDate}},
		{"device-roaming-status:read", []string{pRoaming}},
		{"sim-swap:check call-forwarding-signal:unconditional-call-forwardings:read", []string{pSimCheck, pCFU}},
		{"", []string{pSimCheck, pSimDate, pCFU, pCFList, pDevCheck, pDevDate, pRoaming}},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			tok := getToken(t, s, tc.scope)
			for path, body := range endpoints {
				r := call(t, s, tok, path, body)
				want := 403
				for _, o := range tc.opens {
					if o == path {
						want = 200
					}
				}
				if r.status != want {
					t.Fatalf("%s: %d, want %d: %s", path, r.status, want, r.body)
				}
				if want == 403 {
					if c := r.errCode(t); c != "PERMISSION_DENIED" {
						t.Fatalf("%s: code %s", path, c)
					}
				}
			}
		})
	}
	for _, tc := range []struct{ client, secret, scope string }{
		{"app", "s3cret", "sim-swap:delete"},
		{"app", "s3cret", "openid"},
		{"narrow", "pw", "sim-swap:retrieve-date"},
		{"narrow", "pw", "sim-swap:check dpv:Marketing"},
	} {
		r := tokenReq(t, s, tc.client, tc.secret, form("grant_type", "client_credentials", "scope", tc.scope))
		if r.status != 400 || oauthErr(t, r) != "invalid_scope" {
			t.Fatalf("%s %q: %d %s", tc.client, tc.scope, r.status, r.body)
		}
	}
	tr := mustToken(t, tokenReq(t, s, "narrow", "pw", form("grant_type", "client_credentials")))
	if tr.Scope != "sim-swap:check" {
		t.Fatalf("narrow default scope %q", tr.Scope)
	}
}

// RequirePurpose: exactly one dpv: purpose scope, the configured one.
func TestPurpose(t *testing.T) {
	const p = "dpv:FraudPreventionAndDetection"
	s := start(t, Config{Scenario: testScenario(), RequirePurpose: p})
	for _, tc := range []struct {
		scope string
		ok    bool
	}{
		{"sim-swap:check " + p, true},
		{p, true},
		{p + " " + p, true}, // the same purpose twice is one purpose
		{"sim-swap:check", false},
		{"", false},
		{"sim-swap:check dpv:Marketing", false},
		{"sim-swap:check dpv:", false},
		{"sim-swap:check " + p + " dpv:Marketing", false},
	} {
		r := tokenReq(t, s, "app", "s3cret", form("grant_type", "client_credentials", "scope", tc.scope))
		if tc.ok {
			tr := mustToken(t, r)
			if !strings.HasSuffix(tr.Scope, " "+p) {
				t.Fatalf("%q: granted %q", tc.scope, tr.Scope)
			}
			continue
		}
		if r.status != 400 || oauthErr(t, r) != "invalid_scope" {
			t.Fatalf("%q: %d %s", tc.scope, r.status, r.body)
		}
	}
	if _, err := Start(t.Context(), Config{Scenario: testScenario(), RequirePurpose: "FraudPrevention"}); err == nil {
		t.Fatal("a purpose without dpv: was accepted")
	}
}

// ExpireTokens and token lifetimes.
func TestTokenExpiry(t *testing.T) {
	c := &clock{t: t0}
	s := start(t, Config{Scenario: testScenario(), Now: c.Now})
	tok := getToken(t, s, "")
	if r := call(t, s, tok, pSimCheck, phone("+447700900001")); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	s.ExpireTokens()
	r := call(t, s, tok, pSimCheck, phone("+447700900001"))
	if r.status != 401 || r.errCode(t) != "UNAUTHENTICATED" || !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("after ExpireTokens: %d %v %s", r.status, r.header, r.body)
	}
	tok = getToken(t, s, "")
	c.Add(9 * time.Minute)
	if r := call(t, s, tok, pSimCheck, phone("+447700900001")); r.status != 200 {
		t.Fatalf("before TokenTTL: %d", r.status)
	}
	c.Add(time.Minute)
	if r := call(t, s, tok, pSimCheck, phone("+447700900001")); r.status != 401 {
		t.Fatalf("after TokenTTL: %d", r.status)
	}
	for _, auth := range []string{"", "Bearer", "Basic YXBwOnMzY3JldA==", "Bearer nope"} {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+pSimCheck, strings.NewReader(phone("+447700900001")))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if r := do(t, req); r.status != 401 || r.errCode(t) != "UNAUTHENTICATED" {
			t.Fatalf("Authorization %q: %d %s", auth, r.status, r.body)
		}
	}
	// The spec's device-swap 401 message differs from the others.
	jsonEq(t, call(t, s, "", pDevCheck, phone("+447700900001")).body,
		`{"status":401,"code":"UNAUTHENTICATED","message":"Request not authenticated due to missing, invalid, or expired credentials."}`)
}

// The discovery document.
func TestDiscovery(t *testing.T) {
	s := start(t, Config{Scenario: testScenario(), PathPrefix: "/op", RequirePurpose: "dpv:FraudPreventionAndDetection"})
	if s.DiscoveryURL() != s.URL()+"/.well-known/openid-configuration" {
		t.Fatal(s.DiscoveryURL())
	}
	req, _ := http.NewRequest(http.MethodGet, s.DiscoveryURL(), nil)
	r := do(t, req)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var d struct {
		Issuer        string   `json:"issuer"`
		TokenEndpoint string   `json:"token_endpoint"`
		Grants        []string `json:"grant_types_supported"`
		Methods       []string `json:"token_endpoint_auth_methods_supported"`
		Algs          []string `json:"token_endpoint_auth_signing_alg_values_supported"`
		Scopes        []string `json:"scopes_supported"`
	}
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != s.URL() || d.TokenEndpoint != s.TokenURL() || fmt.Sprint(d.Grants) != "[client_credentials]" ||
		fmt.Sprint(d.Methods) != "[client_secret_basic client_secret_post]" || fmt.Sprint(d.Algs) != "[RS256 ES256]" ||
		d.Scopes[len(d.Scopes)-1] != "dpv:FraudPreventionAndDetection" {
		t.Fatalf("%s", r.body)
	}
	if r := do(t, mustReq(t, http.MethodPost, s.DiscoveryURL())); r.status != 405 {
		t.Fatalf("POST: %d", r.status)
	}
}

func mustReq(t *testing.T, method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// pemPublic encodes a public key as PEM.
func pemPublic(t *testing.T, k any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// sign makes a client assertion.
func sign(t *testing.T, key any, alg jose.SignatureAlgorithm, c jwt.Claims) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// private_key_jwt with RSA and EC keys, and every way an assertion can be wrong.
func TestPrivateKeyJWT(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// The RSA client's key comes from a file given relative to the scenario.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rsa.pub.pem"), []byte(pemPublic(t, &rsaKey.PublicKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	scen := fmt.Sprintf(`clients:
  - client_id: rsa-client
    public_key_file: rsa.pub.pem
    token_ttl: 5m
  - client_id: ec-client
    public_key_pem: |
%s
  - client_id: app
    client_secret: s3cret
numbers:
  "+447700900001": {sim_changed_ago: 2h}
`, indent(pemPublic(t, &ecKey.PublicKey), "      "))
	path := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(scen), 0o600); err != nil {
		t.Fatal(err)
	}
	sc, err := LoadScenario(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: t0}
	s := start(t, Config{Scenario: sc, Now: c.Now, RequirePurpose: "dpv:FraudPreventionAndDetection"})
	n := 0
	claims := func(id string) jwt.Claims {
		n++
		return jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{s.TokenURL()}, Expiry: jwt.NewNumericDate(t0.Add(5 * time.Minute)),
			IssuedAt: jwt.NewNumericDate(t0), ID: fmt.Sprintf("jti-%d", n)}
	}
	send := func(assertion, clientID string) response {
		return tokenReq(t, s, "", "", form("grant_type", "client_credentials", "client_id", clientID,
			"client_assertion_type", jwtBearer, "client_assertion", assertion, "scope", "sim-swap:check dpv:FraudPreventionAndDetection"))
	}
	for _, tc := range []struct {
		name string
		key  any
		alg  jose.SignatureAlgorithm
		id   string
	}{{"RS256", rsaKey, jose.RS256, "rsa-client"}, {"ES256", ecKey, jose.ES256, "ec-client"}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustToken(t, send(sign(t, tc.key, tc.alg, claims(tc.id)), tc.id))
			if last := s.Calls()[len(s.Calls())-1]; last.AuthMethod != AuthPrivateKeyJWT || last.ClientID != tc.id {
				t.Fatalf("recorded %+v", last)
			}
			if r := call(t, s, tr.AccessToken, pSimCheck, phone("+447700900001")); r.status != 200 {
				t.Fatalf("API: %d", r.status)
			}
			// client_id is optional.
			mustToken(t, send(sign(t, tc.key, tc.alg, claims(tc.id)), ""))
		})
	}
	if tr := mustToken(t, send(sign(t, rsaKey, jose.RS256, claims("rsa-client")), "")); tr.ExpiresIn != 300 {
		t.Fatalf("expires_in %d", tr.ExpiresIn)
	}
	reused := claims("ec-client")
	mustToken(t, send(sign(t, ecKey, jose.ES256, reused), "ec-client"))
	mod := func(id string, f func(*jwt.Claims)) jwt.Claims { c := claims(id); f(&c); return c }
	for _, tc := range []struct {
		name      string
		assertion string
		clientID  string
	}{
		{"bad signature", sign(t, otherEC, jose.ES256, claims("ec-client")), "ec-client"},
		{"RSA client, EC signature", sign(t, ecKey, jose.ES256, claims("rsa-client")), "rsa-client"},
		{"wrong aud", sign(t, ecKey, jose.ES256, mod("ec-client", func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example/token"} })), "ec-client"},
		{"aud is the issuer", sign(t, ecKey, jose.ES256, mod("ec-client", func(c *jwt.Claims) { c.Audience = jwt.Audience{s.URL()} })), "ec-client"},
		{"expired", sign(t, ecKey, jose.ES256, mod("ec-client", func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(t0.Add(-time.Second)) })), "ec-client"},
		{"exp too far ahead", sign(t, ecKey, jose.ES256, mod("ec-client", func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(t0.Add(11 * time.Minute)) })), "ec-client"},
		{"no exp", sign(t, ecKey, jose.ES256, mod("ec-client", func(c *jwt.Claims) { c.Expiry = nil })), "ec-client"},
		{"reused jti", sign(t, ecKey, jose.ES256, reused), "ec-client"},
		{"no jti", sign(t, ecKey, jose.ES256, mod("ec-client", func(c *jwt.Claims) { c.ID = "" })), "ec-client"},
		{"sub is not the client", sign(t, ecKey, jose.ES256, mod("ec-client", func(c *jwt.Claims) { c.Subject = "someone" })), "ec-client"},
		{"iss is another client", sign(t, ecKey, jose.ES256, mod("ec-client", func(c *jwt.Claims) { c.Issuer = "rsa-client" })), ""},
		{"client_id differs from iss", sign(t, ecKey, jose.ES256, claims("ec-client")), "rsa-client"},
		{"client without a key", sign(t, ecKey, jose.ES256, claims("app")), "app"},
		{"not yet valid", sign(t, ecKey, jose.ES256, mod("ec-client", func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(t0.Add(2 * time.Minute)) })), "ec-client"},
		{"HS256", sign(t, []byte("0123456789abcdef0123456789abcdef"), jose.HS256, claims("ec-client")), "ec-client"},
		{"not a JWT", "not.a.jwt", "ec-client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := send(tc.assertion, tc.clientID)
			if r.status != 401 || oauthErr(t, r) != "invalid_client" {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	t.Run("wrong assertion type", func(t *testing.T) {
		r := tokenReq(t, s, "", "", form("grant_type", "client_credentials", "client_assertion_type", "urn:x", "client_assertion", sign(t, ecKey, jose.ES256, claims("ec-client"))))
		if r.status != 400 || oauthErr(t, r) != "invalid_request" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("assertion and secret", func(t *testing.T) {
		r := tokenReq(t, s, "app", "s3cret", form("grant_type", "client_credentials", "client_assertion_type", jwtBearer, "client_assertion", sign(t, ecKey, jose.ES256, claims("ec-client"))))
		if r.status != 400 || oauthErr(t, r) != "invalid_request" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("aud through the Host used", func(t *testing.T) {
		host := strings.Replace(s.TokenURL(), "127.0.0.1", "localhost", 1)
		a := sign(t, ecKey, jose.ES256, mod("ec-client", func(c *jwt.Claims) { c.Audience = jwt.Audience{host} }))
		req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form("grant_type", "client_credentials",
			"client_assertion_type", jwtBearer, "client_assertion", a, "scope", "dpv:FraudPreventionAndDetection").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Host = strings.TrimPrefix(strings.TrimSuffix(host, "/oauth2/token"), "http://")
		mustToken(t, do(t, req))
	})
	t.Run("purpose still enforced", func(t *testing.T) {
		r := tokenReq(t, s, "", "", form("grant_type", "client_credentials", "client_assertion_type", jwtBearer,
			"client_assertion", sign(t, ecKey, jose.ES256, claims("ec-client")), "scope", "sim-swap:check"))
		if r.status != 400 || oauthErr(t, r) != "invalid_scope" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("discovery lists the methods", func(t *testing.T) {
		r := do(t, mustReq(t, http.MethodGet, s.DiscoveryURL()))
		if !strings.Contains(string(r.body), `"token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post","private_key_jwt"]`) {
			t.Fatalf("%s", r.body)
		}
	})
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n")
}
