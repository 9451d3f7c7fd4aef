package oauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAuthMethods runs each client authentication method end to end: the token endpoint
// verifies the credentials (Basic, form, or the signed assertion by hand with the public key),
// the API accepts the token, and N API calls cost one token request.
func TestAuthMethods(t *testing.T) {
	rsaK, ecK := testRSAKey(t), testECKey(t)
	tests := []struct {
		name    string
		method  string
		keyPEM  func(t *testing.T) []byte
		pub     crypto.PublicKey
		cfgAlg  string // Config.SigningAlg
		wantAlg string
		kid     string
	}{
		{name: "client_secret_basic", method: MethodClientSecretBasic},
		{name: "default method is basic", method: ""},
		{name: "client_secret_post", method: MethodClientSecretPost},
		{name: "private_key_jwt RS256 PKCS#8", method: MethodPrivateKeyJWT, keyPEM: func(t *testing.T) []byte { return pkcs8(t, rsaK) },
			pub: &rsaK.PublicKey, wantAlg: AlgRS256},
		{name: "private_key_jwt RS256 PKCS#1 explicit alg and kid", method: MethodPrivateKeyJWT, keyPEM: func(*testing.T) []byte { return pkcs1(rsaK) },
			pub: &rsaK.PublicKey, cfgAlg: AlgRS256, wantAlg: AlgRS256, kid: "smppguard-2026-01"},
		{name: "private_key_jwt ES256 SEC1", method: MethodPrivateKeyJWT, keyPEM: func(t *testing.T) []byte { return sec1(t, ecK) },
			pub: &ecK.PublicKey, wantAlg: AlgES256},
		{name: "private_key_jwt ES256 PKCS#8 explicit alg and kid", method: MethodPrivateKeyJWT, keyPEM: func(t *testing.T) []byte { return pkcs8(t, ecK) },
			pub: &ecK.PublicKey, cfgAlg: AlgES256, wantAlg: AlgES256, kid: "ec-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asMethod := tt.method
			if asMethod == "" {
				asMethod = MethodClientSecretBasic
			}
			as := newAS(t, asConfig{method: asMethod, pub: tt.pub, alg: tt.wantAlg, kid: tt.kid, expiresIn: 3600})
			api := newAPI(t, as)
			cfg := baseConfig(as)
			cfg.AuthMethod = tt.method
			if tt.method == MethodPrivateKeyJWT {
				cfg.ClientSecret = ""
				cfg.PrivateKeyFile = writeFile(t, tt.keyPEM(t), 0o600)
				cfg.SigningAlg, cfg.KeyID = tt.cfgAlg, tt.kid
			}
			c, obs := newClient(t, cfg)
			hc := c.HTTPClient()
			if hc != c.HTTPClient() {
				t.Error("HTTPClient returns a new client on each call")
			}
			const n = 5
			for i := range n {
				body := fmt.Sprintf(`{"phoneNumber":"+34600000%03d","maxAge":240}`, i)
				status, resp, err := call(t, hc, http.MethodPost, api.URL(), strings.NewReader(body))
				if err != nil || status != http.StatusOK {
					t.Fatalf("call %d: status %d body %q err %v", i, status, resp, err)
				}
				if want := fmt.Sprintf(`"echo":%d`, len(body)); !strings.Contains(resp, want) {
					t.Errorf("API saw a different body: %q", resp)
				}
			}
			if got := as.Fetches(); got != 1 {
				t.Errorf("%d API calls made %d token requests, want 1", n, got)
			}
			if st := c.Stats(); st.TokenFetches != 1 || st.TokenFailures != 0 || st.Retries401 != 0 {
				t.Errorf("stats %+v", st)
			}
			// Every token request gets a fresh assertion (the server refuses a replayed jti).
			for range 2 {
				c.Invalidate()
				if _, err := c.Token(context.Background()); err != nil {
					t.Fatalf("Token after Invalidate: %v", err)
				}
			}
			if got := as.Fetches(); got != 3 {
				t.Errorf("token requests %d, want 3", got)
			}
			if tt.method == MethodPrivateKeyJWT && as.JTIs() != 3 {
				t.Errorf("%d distinct jti, want 3", as.JTIs())
			}
			assertNoLeak(t, obs, as.sensitive())
		})
	}
}

// TestScopes checks the scope parameter: the API scopes and exactly one dpv: purpose.
func TestScopes(t *testing.T) {
	tests := []struct {
		name    string
		scopes  []string
		purpose string
		want    []string
	}{
		{"api scopes and purpose", testScopes, testPurpose, append(slices.Clone(testScopes), testPurpose)},
		{"purpose repeated among the scopes", []string{testPurpose, "sim-swap:check"}, testPurpose, []string{"sim-swap:check", testPurpose}},
		{"purpose only among the scopes", []string{"sim-swap:check", testPurpose}, "", []string{"sim-swap:check", testPurpose}},
		{"duplicate api scope", []string{"sim-swap:check", "sim-swap:check"}, testPurpose, []string{"sim-swap:check", testPurpose}},
		{"another purpose", []string{"sim-swap:check"}, "dpv:RequestedServiceProvision", []string{"sim-swap:check", "dpv:RequestedServiceProvision"}},
		{"no purpose (sandbox)", []string{"sim-swap:check"}, "", []string{"sim-swap:check"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newAS(t, asConfig{scopes: tt.want})
			cfg := baseConfig(as)
			cfg.Scopes, cfg.Purpose = tt.scopes, tt.purpose
			c, _ := newClient(t, cfg)
			if _, err := c.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := as.Scopes(); !slices.Equal(got, tt.want) {
				t.Errorf("scope %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDiscovery reads the token endpoint from the discovery document, once.
func TestDiscovery(t *testing.T) {
	ecK := testECKey(t)
	as := newAS(t, asConfig{method: MethodPrivateKeyJWT, pub: &ecK.PublicKey, alg: AlgES256})
	var hits atomic.Int32
	disco := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": "http://" + r.Host, "token_endpoint": as.URL(),
			"token_endpoint_auth_methods_supported":            []string{"private_key_jwt", "client_secret_basic"},
			"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	}))
	defer disco.Close()
	api := newAPI(t, as)

	cfg := baseConfig(as)
	cfg.TokenURL, cfg.DiscoveryURL = "", disco.URL+"/.well-known/openid-configuration"
	cfg.AuthMethod, cfg.ClientSecret, cfg.PrivateKeyFile = MethodPrivateKeyJWT, "", writeFile(t, sec1(t, ecK), 0o600)
	c, obs := newClient(t, cfg)
	for range 3 {
		// The fake server checks aud against the URL it was reached at: the discovered one.
		if status, body, err := call(t, c.HTTPClient(), http.MethodPost, api.URL(), strings.NewReader(`{}`)); err != nil || status != 200 {
			t.Fatalf("status %d body %q err %v", status, body, err)
		}
	}
	if hits.Load() != 1 || c.Stats().Discoveries != 1 {
		t.Errorf("discovery fetched %d times (stats %+v), want once", hits.Load(), c.Stats())
	}
	if as.Fetches() != 1 {
		t.Errorf("token requests %d, want 1", as.Fetches())
	}
	if n := obs.FilterMessageSnippet("does not list").Len(); n != 0 {
		t.Errorf("%d warnings about unsupported method/alg", n)
	}

	// An explicit TokenURL wins: no discovery.
	cfg.TokenURL = as.URL()
	if _, _ = newClient(t, cfg); hits.Load() != 1 {
		t.Errorf("discovery fetched although TokenURL is set")
	}
}

func TestDiscoveryWarnsAboutUnsupportedMethod(t *testing.T) {
	as := newAS(t, asConfig{})
	disco := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"token_endpoint":%q,"token_endpoint_auth_methods_supported":["private_key_jwt"]}`, as.URL())
	}))
	defer disco.Close()
	cfg := baseConfig(as)
	cfg.TokenURL, cfg.DiscoveryURL = "", disco.URL
	_, obs := newClient(t, cfg)
	if obs.FilterMessageSnippet("does not list the configured client authentication method").Len() != 1 {
		t.Errorf("no warning; logs %v", obs.All())
	}
}

func TestDiscoveryErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    []string
	}{
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, []string{"discovery", "404 Not Found"}},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") }, []string{"not a JSON metadata document"}},
		{"no token_endpoint", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"issuer":"x"}`) }, []string{"no token_endpoint"}},
		{"relative token_endpoint", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"token_endpoint":"/token"}`) }, []string{"token_endpoint", "not an absolute http(s) URL"}},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		}, []string{"discovery", "deadline exceeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			cfg := Config{DiscoveryURL: srv.URL + "/.well-known/openid-configuration", ClientID: testClientID,
				ClientSecret: testSecret, Scopes: testScopes, Purpose: testPurpose, Timeout: 200 * time.Millisecond}
			start := time.Now()
			_, err := New(context.Background(), cfg, nil)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("New took %s; the discovery timeout is 200ms", time.Since(start))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestRediscovery: after the token endpoint fails, the discovery document is read again (at
// most once a minute) and a moved endpoint is followed.
func TestRediscovery(t *testing.T) {
	as := newAS(t, asConfig{})
	var endpoint atomic.Value
	endpoint.Store(as.srv.URL + "/token-old")
	var hits atomic.Int32
	disco := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, `{"token_endpoint":%q}`, endpoint.Load())
	}))
	defer disco.Close()
	cfg := baseConfig(as)
	cfg.TokenURL, cfg.DiscoveryURL = "", disco.URL
	c, _ := newClient(t, cfg)
	clk := newClock()
	c.now = clk.Now
	c.discovered = clk.Now()
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The carrier moves its token endpoint.
	endpoint.Store(as.srv.URL + "/token-new")
	as.setRespond(func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if r.URL.Path == "/token-old" {
			http.Error(w, "gone", http.StatusNotFound)
			return true
		}
		return false
	})
	c.Invalidate()
	if _, err := c.Token(context.Background()); err == nil {
		t.Fatal("token from the old endpoint")
	}
	clk.Advance(10 * time.Second)
	if _, err := c.Token(context.Background()); err == nil || hits.Load() != 1 {
		t.Fatalf("rediscovered within a minute (hits %d, err %v)", hits.Load(), err)
	}
	clk.Advance(time.Minute)
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatalf("after rediscovery: %v", err)
	}
	if hits.Load() != 2 || c.Stats().Discoveries != 2 {
		t.Errorf("discovery hits %d, stats %+v", hits.Load(), c.Stats())
	}
}

// TestTokenCaching: many API calls and Token calls share one token.
func TestTokenCaching(t *testing.T) {
	as := newAS(t, asConfig{expiresIn: 3600})
	api := newAPI(t, as)
	c, _ := newClient(t, baseConfig(as))
	first, err := c.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if status, _, err := call(t, c.HTTPClient(), http.MethodGet, api.URL(), nil); err != nil || status != 200 {
			t.Fatalf("call %d: %d %v", i, status, err)
		}
		if tok, _ := c.Token(context.Background()); tok != first {
			t.Fatalf("token changed")
		}
	}
	if as.Fetches() != 1 || c.Stats().TokenFetches != 1 {
		t.Errorf("token requests %d (stats %+v), want 1", as.Fetches(), c.Stats())
	}
	for _, a := range api.Auths() {
		if a != "Bearer "+first {
			t.Fatalf("API saw Authorization %q", a)
		}
	}
}

// TestRefreshBeforeExpiry uses an injected clock to step around the refresh time.
func TestRefreshBeforeExpiry(t *testing.T) {
	tests := []struct {
		name          string
		expiresIn     any
		refreshBefore time.Duration
		cachedAt      time.Duration // still the first token
		refreshedAt   time.Duration // a new token
	}{
		{"expires_in 600, refresh 60s early", 600, 60 * time.Second, 539 * time.Second, 541 * time.Second},
		{"expires_in absent means 3600", nil, 0, 3539 * time.Second, 3541 * time.Second},
		{"expires_in as a string", "120", 0, 59 * time.Second, 61 * time.Second},
		{"short token: refresh at most half its life early", 60, 5 * time.Minute, 29 * time.Second, 31 * time.Second},
		{"custom refreshBefore", 300, 2 * time.Minute, 179 * time.Second, 181 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newAS(t, asConfig{expiresIn: tt.expiresIn})
			cfg := baseConfig(as)
			cfg.RefreshBefore = tt.refreshBefore
			c, _ := newClient(t, cfg)
			clk := newClock()
			c.now = clk.Now
			ctx := context.Background()
			t1, err := c.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(tt.cachedAt)
			if tok, _ := c.Token(ctx); tok != t1 || as.Fetches() != 1 {
				t.Fatalf("at +%s: refreshed too early (fetches %d)", tt.cachedAt, as.Fetches())
			}
			clk.Advance(tt.refreshedAt - tt.cachedAt)
			t2, err := c.Token(ctx)
			if err != nil || t2 == t1 || as.Fetches() != 2 {
				t.Fatalf("at +%s: not refreshed (fetches %d, err %v)", tt.refreshedAt, as.Fetches(), err)
			}
			if tok, _ := c.Token(ctx); tok != t2 || as.Fetches() != 2 {
				t.Fatalf("new token not cached")
			}
		})
	}
}

// TestRefreshFailureKeepsValidToken: a failed refresh keeps the still-valid token, retries
// the endpoint at most every refreshRetry, and fails once the token has expired.
func TestRefreshFailureKeepsValidToken(t *testing.T) {
	as := newAS(t, asConfig{expiresIn: 600})
	c, _ := newClient(t, baseConfig(as))
	clk := newClock()
	c.now = clk.Now
	ctx := context.Background()
	t1, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	as.setRespond(func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return true
	})
	clk.Advance(545 * time.Second)
	if tok, err := c.Token(ctx); err != nil || tok != t1 {
		t.Fatalf("refresh failure: token %v err %v, want the current token", tok == t1, err)
	}
	clk.Advance(time.Second)
	c.Token(ctx)
	if as.Fetches() != 2 {
		t.Errorf("token endpoint hit %d times within the retry pause, want 2", as.Fetches())
	}
	clk.Advance(refreshRetry)
	if tok, err := c.Token(ctx); err != nil || tok != t1 || as.Fetches() != 3 {
		t.Errorf("after the pause: fetches %d err %v", as.Fetches(), err)
	}
	clk.Advance(time.Minute) // past expiry
	if _, err := c.Token(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("expired token and failing endpoint: err %v", err)
	}
	if st := c.Stats(); st.TokenFailures != 3 || st.TokenFetches != 4 {
		t.Errorf("stats %+v", st)
	}
}

// TestConcurrentCallersShareOneRefresh: concurrent callers cause one token request, both for
// the first token and for a refresh.
func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	as := newAS(t, asConfig{expiresIn: 600, delay: 100 * time.Millisecond})
	c, _ := newClient(t, baseConfig(as))
	clk := newClock()
	c.now = clk.Now
	run := func() []string {
		const n = 32
		toks := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				tok, err := c.Token(context.Background())
				if err != nil {
					t.Error(err)
				}
				toks[i] = tok
			}()
		}
		close(start)
		wg.Wait()
		return toks
	}
	toks := run()
	if as.Fetches() != 1 {
		t.Errorf("first token: %d requests, want 1", as.Fetches())
	}
	clk.Advance(550 * time.Second)
	toks2 := run()
	if as.Fetches() != 2 {
		t.Errorf("refresh: %d requests in all, want 2", as.Fetches())
	}
	for i := range toks {
		if toks[i] != toks[0] || toks2[i] != toks2[0] || toks2[i] == toks[0] {
			t.Fatalf("callers got different tokens")
		}
	}
}

// TestTokenWaitHonoursContext: a caller that gives up does not wait for the token request.
func TestTokenWaitHonoursContext(t *testing.T) {
	as := newAS(t, asConfig{delay: 500 * time.Millisecond})
	c, _ := newClient(t, baseConfig(as))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if time.Since(start) > 400*time.Millisecond {
		t.Errorf("waited %s", time.Since(start))
	}
	// The shared request went on and its token is cached.
	time.Sleep(600 * time.Millisecond)
	if _, err := c.Token(context.Background()); err != nil || as.Fetches() != 1 {
		t.Errorf("fetches %d err %v", as.Fetches(), err)
	}
}

// TestUnauthorizedRetry: a 401 from the API costs one refresh and one retry, never a loop.
func TestUnauthorizedRetry(t *testing.T) {
	big := strings.Repeat("x", MaxReplayBody+1000)
	tests := []struct {
		name         string
		method       string
		body         func() io.Reader
		unauthorized func(n int, tok string) bool
		failRefresh  bool
		wantStatus   int
		wantErr      string
		wantAPI      int // API requests
		wantFetches  int
		wantRetries  uint64
		wantUnauth   uint64
	}{
		{name: "revoked token, body without GetBody is buffered and replayed", method: http.MethodPost,
			body:         func() io.Reader { return io.NopCloser(strings.NewReader(`{"phoneNumber":"+34600000001"}`)) },
			unauthorized: func(n int, _ string) bool { return n == 1 },
			wantStatus:   200, wantAPI: 2, wantFetches: 2, wantRetries: 1, wantUnauth: 1},
		{name: "revoked token, body with GetBody", method: http.MethodPost,
			body:         func() io.Reader { return bytes.NewReader([]byte(`{"phoneNumber":"+34600000002"}`)) },
			unauthorized: func(n int, _ string) bool { return n == 1 },
			wantStatus:   200, wantAPI: 2, wantFetches: 2, wantRetries: 1, wantUnauth: 1},
		{name: "revoked token, GET", method: http.MethodGet,
			unauthorized: func(n int, _ string) bool { return n == 1 },
			wantStatus:   200, wantAPI: 2, wantFetches: 2, wantRetries: 1, wantUnauth: 1},
		{name: "second 401 goes back to the caller", method: http.MethodPost,
			body:         func() io.Reader { return strings.NewReader(`{"phoneNumber":"+34600000003"}`) },
			unauthorized: func(int, string) bool { return true },
			wantStatus:   401, wantAPI: 2, wantFetches: 2, wantRetries: 1, wantUnauth: 2},
		{name: "body over 64 KiB without GetBody is not retried", method: http.MethodPost,
			body:         func() io.Reader { return io.NopCloser(strings.NewReader(big)) },
			unauthorized: func(n int, _ string) bool { return n == 1 },
			wantStatus:   401, wantAPI: 1, wantFetches: 1, wantRetries: 0, wantUnauth: 1},
		{name: "refresh fails after the 401", method: http.MethodPost,
			body:         func() io.Reader { return strings.NewReader(`{}`) },
			unauthorized: func(n int, _ string) bool { return n == 1 }, failRefresh: true,
			wantErr: "API answered 401 and no new token could be had", wantAPI: 1, wantFetches: 2, wantRetries: 0, wantUnauth: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newAS(t, asConfig{expiresIn: 3600})
			api := newAPI(t, as)
			api.setUnauthorized(tt.unauthorized)
			if tt.failRefresh {
				as.setRespond(func(w http.ResponseWriter, _ *http.Request, n int) bool {
					if n > 1 {
						answer(w, http.StatusUnauthorized, "application/json", `{"error":"invalid_client"}`)
						return true
					}
					return false
				})
			}
			c, obs := newClient(t, baseConfig(as))
			var body io.Reader
			var sent string
			if tt.body != nil {
				body = tt.body()
				b, _ := io.ReadAll(tt.body())
				sent = string(b)
			}
			status, resp, err := call(t, c.HTTPClient(), tt.method, api.URL(), body)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "invalid_client") {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case status != tt.wantStatus:
				t.Fatalf("status %d, want %d (body %q)", status, tt.wantStatus, resp)
			case status == 401 && !strings.Contains(resp, "UNAUTHENTICATED"):
				t.Errorf("the caller did not get the API's 401 body: %q", resp)
			}
			if api.Requests() != tt.wantAPI || as.Fetches() != tt.wantFetches {
				t.Errorf("API requests %d (want %d), token requests %d (want %d)", api.Requests(), tt.wantAPI, as.Fetches(), tt.wantFetches)
			}
			for i, b := range api.Bodies() {
				if b != sent {
					t.Errorf("API request %d had a body of %d bytes, want %d", i, len(b), len(sent))
				}
			}
			if st := c.Stats(); st.Retries401 != tt.wantRetries || st.Unauthorized != tt.wantUnauth {
				t.Errorf("stats %+v", st)
			}
			if auths := api.Auths(); len(auths) == 2 && auths[0] == auths[1] {
				t.Errorf("the retry used the same token")
			}
			assertNoLeak(t, obs, as.sensitive(), fmt.Sprint(err))
		})
	}
}

// TestUnauthorizedConcurrent: many calls failing with the same revoked token cause one refresh.
func TestUnauthorizedConcurrent(t *testing.T) {
	as := newAS(t, asConfig{expiresIn: 3600, delay: 20 * time.Millisecond})
	api := newAPI(t, as)
	c, _ := newClient(t, baseConfig(as))
	first, err := c.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	api.setUnauthorized(func(_ int, tok string) bool { return tok == first })
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, err := call(t, c.HTTPClient(), http.MethodPost, api.URL(), strings.NewReader(`{}`))
			if err != nil || status != 200 {
				t.Errorf("status %d err %v", status, err)
			}
		}()
	}
	wg.Wait()
	if as.Fetches() != 2 {
		t.Errorf("token requests %d, want 2 (one refresh for all)", as.Fetches())
	}
	// Calls that started after the refresh never saw a 401; each one that did was retried once.
	if st := c.Stats(); st.Retries401 == 0 || st.Retries401 != st.Unauthorized {
		t.Errorf("stats %+v", st)
	}
}

// TestTokenEndpointErrors: errors name the status, the OAuth error code and description only.
func TestTokenEndpointErrors(t *testing.T) {
	ecK := testECKey(t)
	const marker = "BODY-MARKER-" + testSecret
	tests := []struct {
		name       string
		status     int
		ct, body   string
		want       []string
		wantStatus int
		wantCode   string
	}{
		{"invalid_client", 401, "application/json", `{"error":"invalid_client","error_description":"Client authentication failed","debug":"` + marker + `"}`,
			[]string{"401 Unauthorized", "invalid_client", "Client authentication failed"}, 401, "invalid_client"},
		{"invalid_scope", 400, "application/json;charset=UTF-8", `{"error":"invalid_scope","error_description":"purpose dpv:X not allowed"}`,
			[]string{"400 Bad Request", "invalid_scope", "purpose dpv:X not allowed"}, 400, "invalid_scope"},
		{"500 with an HTML body", 500, "text/html", "<html><body>" + marker + "</body></html>",
			[]string{"500 Internal Server Error"}, 500, ""},
		{"error in a 200 answer", 200, "application/json", `{"error":"unauthorized_client"}`,
			[]string{"unauthorized_client"}, 200, "unauthorized_client"},
		{"no access_token", 200, "application/json", `{"token_type":"Bearer","expires_in":3600}`,
			[]string{"missing access_token"}, 0, ""},
		{"not a bearer token", 200, "application/json", `{"access_token":"` + marker + `","token_type":"mac"}`,
			[]string{"token_type \"mac\" is not supported"}, 200, ""},
		{"redirect", 307, "text/plain", marker, []string{"307 Temporary Redirect", "redirects are not followed"}, 307, ""},
	}
	for _, method := range []string{MethodClientSecretBasic, MethodClientSecretPost, MethodPrivateKeyJWT} {
		for _, tt := range tests {
			t.Run(method+"/"+tt.name, func(t *testing.T) {
				as := newAS(t, asConfig{method: method, pub: &ecK.PublicKey, alg: AlgES256})
				var redirected atomic.Bool
				elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { redirected.Store(true) }))
				defer elsewhere.Close()
				as.setRespond(func(w http.ResponseWriter, r *http.Request, _ int) bool {
					if tt.status == http.StatusTemporaryRedirect {
						http.Redirect(w, r, elsewhere.URL+"/token", http.StatusTemporaryRedirect)
						return true
					}
					answer(w, tt.status, tt.ct, tt.body)
					return true
				})
				api := newAPI(t, as)
				cfg := baseConfig(as)
				cfg.AuthMethod = method
				if method == MethodPrivateKeyJWT {
					cfg.ClientSecret, cfg.PrivateKeyFile = "", writeFile(t, pkcs8(t, ecK), 0o600)
				}
				c, obs := newClient(t, cfg)
				_, err := c.Token(context.Background())
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if !strings.Contains(err.Error(), as.URL()) {
					t.Errorf("error %q does not name the token endpoint", err)
				}
				var te *TokenError
				if !errors.As(err, &te) || te.StatusCode != tt.wantStatus || te.Code != tt.wantCode {
					t.Errorf("TokenError %+v, want status %d code %q", te, tt.wantStatus, tt.wantCode)
				}
				if redirected.Load() {
					t.Error("the token request followed a redirect")
				}
				// An API call fails with the same error, and the API is not called.
				_, _, apiErr := call(t, c.HTTPClient(), http.MethodPost, api.URL(), strings.NewReader(`{}`))
				if !errors.As(apiErr, &te) || api.Requests() != 0 {
					t.Errorf("API call: err %v, API requests %d", apiErr, api.Requests())
				}
				if st := c.Stats(); st.TokenFailures != 2 || st.TokenFetches != 2 {
					t.Errorf("stats %+v", st)
				}
				assertNoLeak(t, obs, append(as.sensitive(), marker, "BODY-MARKER"), err.Error(), apiErr.Error())
			})
		}
	}
}

func TestTokenEndpointUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/token"
	srv.Close()
	c, obs := newClient(t, Config{TokenURL: u, ClientID: testClientID, ClientSecret: testSecret, Purpose: testPurpose})
	_, err := c.Token(context.Background())
	var te *TokenError
	if !errors.As(err, &te) || te.StatusCode != 0 || te.Err == nil || !strings.Contains(err.Error(), u) {
		t.Fatalf("err %v", err)
	}
	assertNoLeak(t, obs, []string{testSecret}, err.Error())
}

// TestRedirects: the API client follows a redirect on the same host with the token, and does
// not carry the token to another host.
func TestRedirects(t *testing.T) {
	as := newAS(t, asConfig{})
	api := newAPI(t, as)
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization"))
	}))
	defer other.Close()
	front := http.NewServeMux()
	front.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/same", http.StatusTemporaryRedirect)
	})
	front.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/x", http.StatusTemporaryRedirect)
	})
	front.HandleFunc("/same", api.serve)
	fs := httptest.NewServer(front)
	defer fs.Close()
	c, _ := newClient(t, baseConfig(as))
	if status, _, err := call(t, c.HTTPClient(), http.MethodPost, fs.URL+"/moved", strings.NewReader(`{}`)); err != nil || status != 200 {
		t.Errorf("same-host redirect: %d %v", status, err)
	}
	if status, _, err := call(t, c.HTTPClient(), http.MethodPost, fs.URL+"/away", strings.NewReader(`{}`)); err != nil || status != http.StatusTemporaryRedirect {
		t.Errorf("cross-host redirect: %d %v, want the 307 back", status, err)
	}
	if v := leaked.Load(); v != nil {
		t.Errorf("the other host was called (Authorization %q)", v)
	}
}

// TestConfigErrors: New refuses bad configuration with a clear error.
func TestConfigErrors(t *testing.T) {
	rsaK, ecK := testRSAKey(t), testECKey(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := func(data []byte, perm os.FileMode) func(t *testing.T) string {
		return func(t *testing.T) string { return writeFile(t, data, perm) }
	}
	jwtCfg := func(alg string) Config {
		return Config{TokenURL: "https://as.example/token", ClientID: testClientID, AuthMethod: MethodPrivateKeyJWT,
			SigningAlg: alg, Scopes: testScopes, Purpose: testPurpose}
	}
	secretCfg := Config{TokenURL: "https://as.example/token", ClientID: testClientID, ClientSecret: testSecret, Scopes: testScopes, Purpose: testPurpose}
	with := func(f func(*Config)) Config {
		c := secretCfg
		f(&c)
		return c
	}
	rsaPEM := pkcs8(t, rsaK)
	tests := []struct {
		name string
		cfg  Config
		key  func(t *testing.T) string // PrivateKeyFile
		want []string                  // "%s" is replaced by the key path
	}{
		{"key file mode 0644", jwtCfg(""), keyFile(rsaPEM, 0o644), []string{"%s", "mode 0644", "chmod 600 %s"}},
		{"key file mode 0640", jwtCfg(""), keyFile(rsaPEM, 0o640), []string{"%s", "chmod 600"}},
		{"key file mode 0604", jwtCfg(""), keyFile(rsaPEM, 0o604), []string{"chmod 600"}},
		{"key file missing", jwtCfg(""), func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.pem") }, []string{"%s", "does not exist"}},
		{"key file is a directory", jwtCfg(""), func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "d")
			os.Mkdir(d, 0o700)
			return d
		}, []string{"is a directory"}},
		{"no key file", jwtCfg(""), nil, []string{"needs PrivateKeyFile"}},
		{"garbage", jwtCfg(""), keyFile([]byte("this is not a key\n"), 0o600), []string{"%s", "no PEM private key"}},
		{"certificate instead of a key", jwtCfg(""), keyFile(pemBytes("CERTIFICATE", []byte{1, 2, 3}), 0o600), []string{`"CERTIFICATE" PEM block`}},
		{"corrupt PKCS#8", jwtCfg(""), keyFile(pemBytes("PRIVATE KEY", []byte("garbage")), 0o600), []string{"%s", "cannot parse"}},
		{"corrupt SEC1", jwtCfg(""), keyFile(pemBytes("EC PRIVATE KEY", []byte("garbage")), 0o600), []string{"cannot parse"}},
		{"encrypted PKCS#8", jwtCfg(""), keyFile(pemBytes("ENCRYPTED PRIVATE KEY", []byte("x")), 0o600), []string{"encrypted"}},
		{"encrypted legacy PEM", jwtCfg(""), keyFile(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte("x")}), 0o600), []string{"encrypted"}},
		{"ES256 with an RSA key", jwtCfg(AlgES256), keyFile(rsaPEM, 0o600), []string{"ES256", "RSA", "RS256"}},
		{"RS256 with an EC key", jwtCfg(AlgRS256), keyFile(sec1(t, ecK), 0o600), []string{"RS256", "EC P-256", "ES256"}},
		{"HS256", jwtCfg("HS256"), keyFile(rsaPEM, 0o600), []string{`"HS256" is not supported`}},
		{"P-384 key", jwtCfg(""), keyFile(sec1(t, p384), 0o600), []string{"P-384", "P-256"}},
		{"1024-bit RSA key", jwtCfg(""), keyFile(pkcs1(small), 0o600), []string{"1024 bits", "too small"}},
		{"purpose without dpv:", with(func(c *Config) { c.Purpose = "FraudPreventionAndDetection" }), nil, []string{"Purpose", "dpv:"}},
		{"bare dpv:", with(func(c *Config) { c.Purpose = "dpv:" }), nil, []string{"dpv:<Purpose>"}},
		{"two purposes", with(func(c *Config) { c.Scopes = []string{"sim-swap:check", "dpv:Other"} }), nil, []string{"one purpose scope"}},
		{"scope with a space", with(func(c *Config) { c.Scopes = []string{"sim-swap:check extra"} }), nil, []string{"sim-swap:check extra"}},
		{"empty scope", with(func(c *Config) { c.Scopes = []string{""} }), nil, []string{"empty scope"}},
		{"no client id", with(func(c *Config) { c.ClientID = "" }), nil, []string{"ClientID is required"}},
		{"basic without secret", with(func(c *Config) { c.ClientSecret = "" }), nil, []string{"client_secret_basic needs ClientSecret"}},
		{"post without secret", with(func(c *Config) { c.ClientSecret, c.AuthMethod = "", MethodClientSecretPost }), nil, []string{"client_secret_post needs ClientSecret"}},
		{"unknown method", with(func(c *Config) { c.AuthMethod = "tls_client_auth" }), nil, []string{`"tls_client_auth" is not a client authentication method`}},
		{"no endpoint", with(func(c *Config) { c.TokenURL = "" }), nil, []string{"no token endpoint"}},
		{"relative token URL", with(func(c *Config) { c.TokenURL = "/token" }), nil, []string{"TokenURL", "absolute"}},
		{"ftp discovery URL", with(func(c *Config) { c.TokenURL, c.DiscoveryURL = "", "ftp://as.example/.well-known/openid-configuration" }), nil, []string{"DiscoveryURL"}},
		{"negative timeout", with(func(c *Config) { c.Timeout = -time.Second }), nil, []string{"Timeout"}},
		{"several problems at once", with(func(c *Config) { c.ClientID, c.Purpose = "", "Fraud" }), nil, []string{"ClientID is required", "Purpose \"Fraud\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if tt.key != nil {
				cfg.PrivateKeyFile = tt.key(t)
			}
			_, err := New(context.Background(), cfg, nil)
			if err == nil {
				t.Fatal("New accepted the configuration")
			}
			if verr := Validate(cfg); verr == nil || verr.Error() != err.Error() {
				t.Errorf("Validate: %v, want New's error %v", verr, err)
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "%s", cfg.PrivateKeyFile)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

// TestKeyFormats: the accepted key files and the algorithm that follows from each.
func TestKeyFormats(t *testing.T) {
	rsaK, ecK := testRSAKey(t), testECKey(t)
	params := pemBytes("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	tests := []struct {
		name string
		pem  []byte
		perm os.FileMode
		alg  string
	}{
		{"PKCS#8 RSA", pkcs8(t, rsaK), 0o600, AlgRS256},
		{"PKCS#1 RSA", pkcs1(rsaK), 0o600, AlgRS256},
		{"PKCS#8 EC", pkcs8(t, ecK), 0o600, AlgES256},
		{"SEC1 EC", sec1(t, ecK), 0o600, AlgES256},
		{"SEC1 EC after EC PARAMETERS (openssl ecparam -genkey)", append(params, sec1(t, ecK)...), 0o600, AlgES256},
		{"mode 0400", pkcs8(t, ecK), 0o400, AlgES256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{TokenURL: "https://as.example/token", ClientID: testClientID,
				AuthMethod: MethodPrivateKeyJWT, PrivateKeyFile: writeFile(t, tt.pem, tt.perm), Purpose: testPurpose}
			c, err := New(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Validate accepts it too, and fetches nothing: this discovery URL answers nobody.
			cfg.TokenURL, cfg.DiscoveryURL = "", "http://127.0.0.1:1/.well-known/openid-configuration"
			if err := Validate(cfg); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if c.s.alg != tt.alg {
				t.Errorf("alg %s, want %s", c.s.alg, tt.alg)
			}
		})
	}
}

// TestSecretNotPrinted: a Config printed by mistake does not show the secret.
func TestSecretNotPrinted(t *testing.T) {
	cfg := Config{TokenURL: "https://as.example/token", ClientID: testClientID, ClientSecret: testSecret}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg),
		fmt.Sprint(secret(testSecret)), fmt.Sprintf("%q %#v", secret(testSecret), secret(testSecret))} {
		if strings.Contains(s, testSecret) || !strings.Contains(s, "REDACTED") {
			t.Errorf("printed as %q", s)
		}
	}
	b, _ := json.Marshal(struct{ S secret }{secret(testSecret)})
	if strings.Contains(string(b), testSecret) {
		t.Errorf("JSON %s", b)
	}
}
