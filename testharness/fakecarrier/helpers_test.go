package fakecarrier

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// clock is an adjustable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testScenario: one secret client with every scope, and a number of each kind.
func testScenario() Scenario {
	at := t0.Add(-30 * 24 * time.Hour)
	return Scenario{
		Clients: []Client{{ClientID: "app", ClientSecret: "s3cret", TokenTTL: 10 * time.Minute}},
		Numbers: map[string]Number{
			"+447700900001": {SimChangedAgo: Ago(2 * time.Hour)},
			"+447700900002": {Forwardings: []string{ForwardUnconditional, ForwardBusy}},
			"+447700900003": {},
			"+447700900004": {Unknown: true},
			"+447700900005": {DeviceChangedAgo: Ago(3 * time.Hour), Roaming: true, CountryCode: 262, CountryName: []string{"DE"}},
			"+447700900006": {Forwardings: []string{ForwardNoAnswer}, SimChangedAt: &at, DeviceChangedAt: &at},
			"+447700900007": {Roaming: true},
		},
	}
}

// start runs a server for the test with a fixed clock unless cfg.Now is set.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Now == nil {
		c := &clock{t: t0}
		cfg.Now = c.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the body into a generic value.
func (r response) decode(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

// errCode returns the CAMARA error code of the body, checking the ErrorInfo shape.
func (r response) errCode(t *testing.T) string {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if len(e) != 3 || e["status"] != float64(r.status) || e["message"] == "" {
		t.Fatalf("error body %s is not {status, code, message} with status %d", r.body, r.status)
	}
	c, _ := e["code"].(string)
	return c
}

// jsonEq fails unless the body is the JSON want.
func jsonEq(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body %s, want %s", got, want)
	}
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// call POSTs a JSON body to an API path with a bearer token (none if "") and headers
// given as name, value pairs.
func call(t *testing.T, s *Server, tok, path, body string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

// tokenReq POSTs a form to the token endpoint, with basic credentials if user != "".
func tokenReq(t *testing.T, s *Server, user, pass string, form url.Values) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return do(t, req)
}

// tokenResp is a successful token response.
type tokenResp struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// getToken gets a token for "app" with client_secret_basic and the scope (may be "").
func getToken(t *testing.T, s *Server, scope string) string {
	t.Helper()
	return mustToken(t, tokenReq(t, s, "app", "s3cret", form("grant_type", "client_credentials", "scope", scope))).AccessToken
}

func mustToken(t *testing.T, r response) tokenResp {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	var tr tokenResp
	if err := json.Unmarshal(r.body, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.AccessToken == "" || tr.TokenType != "Bearer" {
		t.Fatalf("token response %s", r.body)
	}
	return tr
}

// oauthErr returns the RFC 6749 error of a token response.
func oauthErr(t *testing.T, r response) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Fatalf("token error body %q", r.body)
	}
	return e.Error
}

// form builds url.Values from name, value pairs, skipping empty values.
func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
