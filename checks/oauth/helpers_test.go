package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const (
	testClientID = "smppguard-test"
	testSecret   = "s3cr3t+value/with=specials" // exercises the form-encoding of Basic credentials
	testPurpose  = PurposeFraudPrevention
)

var testScopes = []string{"sim-swap:check", "call-forwarding-signal:unconditional-call-forwardings:read"}

// ---- keys ----

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	ecOnce  sync.Once
	ecKey   *ecdsa.PrivateKey
)

func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func testECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	ecOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		ecKey = k
	})
	return ecKey
}

// writeFile writes data to a new file in a temp dir with exactly mode perm.
func writeFile(t *testing.T, data []byte, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "client-key.pem")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return p
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes("PRIVATE KEY", der)
}

func sec1(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes("EC PRIVATE KEY", der)
}

func pkcs1(key *rsa.PrivateKey) []byte {
	return pemBytes("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
}

// ---- clock ----

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ---- fake authorization server ----

// asConfig is what the fake token endpoint expects and answers.
type asConfig struct {
	method    string           // client authentication method it verifies
	pub       crypto.PublicKey // private_key_jwt: the client's public key
	alg       string           // private_key_jwt: expected JWS alg
	kid       string           // private_key_jwt: expected kid header ("" = absent)
	scopes    []string         // expected scope parameter, in order; nil = testScopes + testPurpose
	expiresIn any              // expires_in in the answer; nil = absent
	delay     time.Duration    // before answering
}

// fakeAS is an httptest token endpoint (any path under /token) that verifies client
// authentication and the request like a strict carrier would.
type fakeAS struct {
	t   *testing.T
	srv *httptest.Server
	cfg asConfig

	mu         sync.Mutex
	fetches    int
	jtis       map[string]bool
	issued     []string
	assertions []string
	scopes     []string // last request's scope parameter, split
	// respond, when set, may answer instead (returning true) after verification; n counts
	// token requests from 1.
	respond func(w http.ResponseWriter, r *http.Request, n int) bool
}

func newAS(t *testing.T, cfg asConfig) *fakeAS {
	t.Helper()
	if cfg.method == "" {
		cfg.method = MethodClientSecretBasic
	}
	if cfg.scopes == nil {
		cfg.scopes = append(slices.Clone(testScopes), testPurpose)
	}
	a := &fakeAS{t: t, cfg: cfg, jtis: map[string]bool{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAS) URL() string { return a.srv.URL + "/token" }

func (a *fakeAS) Fetches() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fetches
}

func (a *fakeAS) setRespond(f func(w http.ResponseWriter, r *http.Request, n int) bool) {
	a.mu.Lock()
	a.respond = f
	a.mu.Unlock()
}

func (a *fakeAS) JTIs() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.jtis)
}

func (a *fakeAS) Scopes() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.scopes)
}

// answer writes a canned response.
func answer(w http.ResponseWriter, status int, contentType, body string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// valid reports whether tok was issued by this server.
func (a *fakeAS) valid(tok string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.issued, tok)
}

// sensitive is everything that must never appear in logs or errors.
func (a *fakeAS) sensitive() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []string{testSecret, url.QueryEscape(testSecret)}
	out = append(out, a.issued...)
	for _, as := range a.assertions {
		out = append(out, as)
		if parts := strings.Split(as, "."); len(parts) == 3 {
			out = append(out, parts[2]) // the signature alone
		}
	}
	return out
}

func (a *fakeAS) reject(w http.ResponseWriter, format string, args ...any) {
	a.t.Helper()
	msg := fmt.Sprintf(format, args...)
	a.t.Errorf("token endpoint: %s", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": "test server: " + msg})
}

func (a *fakeAS) serve(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/token") {
		http.NotFound(w, r)
		return
	}
	if a.cfg.delay > 0 {
		time.Sleep(a.cfg.delay)
	}
	a.mu.Lock()
	a.fetches++
	n := a.fetches
	respond := a.respond
	a.mu.Unlock()

	if r.Method != http.MethodPost {
		a.reject(w, "method %s", r.Method)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		a.reject(w, "content type %q", ct)
		return
	}
	if err := r.ParseForm(); err != nil {
		a.reject(w, "form: %v", err)
		return
	}
	f := r.PostForm
	if got := f["grant_type"]; len(got) != 1 || got[0] != "client_credentials" {
		a.reject(w, "grant_type %q", got)
		return
	}
	scopes := strings.Split(f.Get("scope"), " ")
	a.mu.Lock()
	a.scopes = scopes
	a.mu.Unlock()
	if len(f["scope"]) != 1 || !slices.Equal(scopes, a.cfg.scopes) {
		a.reject(w, "scope %q, want %q", f["scope"], strings.Join(a.cfg.scopes, " "))
		return
	}
	purposes := 0
	for _, s := range scopes {
		if strings.HasPrefix(s, "dpv:") {
			purposes++
		}
	}
	if purposes > 1 {
		a.reject(w, "%d purpose scopes", purposes)
		return
	}
	if !a.authenticate(w, r, f) {
		return
	}
	if respond != nil && respond(w, r, n) {
		return
	}
	tok := fmt.Sprintf("at-%d-%s", n, rand.Text())
	a.mu.Lock()
	a.issued = append(a.issued, tok)
	a.mu.Unlock()
	ans := map[string]any{"access_token": tok, "token_type": "Bearer"}
	if a.cfg.expiresIn != nil {
		ans["expires_in"] = a.cfg.expiresIn
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(ans)
}

func (a *fakeAS) authenticate(w http.ResponseWriter, r *http.Request, f url.Values) bool {
	switch a.cfg.method {
	case MethodClientSecretBasic:
		u, p, ok := r.BasicAuth()
		if !ok {
			a.reject(w, "no basic auth")
			return false
		}
		u, _ = url.QueryUnescape(u) // RFC 6749 §2.3.1
		p, _ = url.QueryUnescape(p)
		if u != testClientID || p != testSecret {
			a.reject(w, "basic auth user %q and a wrong password", u)
			return false
		}
		if f.Has("client_secret") || f.Has("client_assertion") {
			a.reject(w, "credentials in the body too")
			return false
		}
	case MethodClientSecretPost:
		if r.Header.Get("Authorization") != "" {
			a.reject(w, "Authorization header with client_secret_post")
			return false
		}
		if f.Get("client_id") != testClientID || f.Get("client_secret") != testSecret || len(f["client_secret"]) != 1 {
			a.reject(w, "client_id %q and a wrong client_secret", f.Get("client_id"))
			return false
		}
	case MethodPrivateKeyJWT:
		if r.Header.Get("Authorization") != "" {
			a.reject(w, "Authorization header with private_key_jwt")
			return false
		}
		if f.Has("client_secret") {
			a.reject(w, "client_secret with private_key_jwt")
			return false
		}
		if id := f.Get("client_id"); id != "" && id != testClientID {
			a.reject(w, "client_id %q", id)
			return false
		}
		if got := f["client_assertion_type"]; len(got) != 1 || got[0] != AssertionType {
			a.reject(w, "client_assertion_type %q", got)
			return false
		}
		as := f["client_assertion"]
		if len(as) != 1 {
			a.reject(w, "%d client_assertion values", len(as))
			return false
		}
		a.mu.Lock()
		a.assertions = append(a.assertions, as[0])
		a.mu.Unlock()
		if err := a.checkAssertion(as[0], "http://"+r.Host+r.URL.Path); err != nil {
			a.reject(w, "client assertion: %v", err)
			return false
		}
	}
	return true
}

// checkAssertion verifies the JWS by hand with the public key (independently of go-jose)
// and the RFC 7523 claims.
func (a *fakeAS) checkAssertion(compact, aud string) error {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%d JWS parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("signature encoding: %v", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	var hdr struct {
		Alg, Typ, Kid string
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return fmt.Errorf("header: %v", err)
	}
	if hdr.Alg != a.cfg.alg {
		return fmt.Errorf("alg %q, want %q", hdr.Alg, a.cfg.alg)
	}
	if hdr.Typ != "JWT" {
		return fmt.Errorf("typ %q", hdr.Typ)
	}
	if hdr.Kid != a.cfg.kid {
		return fmt.Errorf("kid %q, want %q", hdr.Kid, a.cfg.kid)
	}
	switch pub := a.cfg.pub.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			return fmt.Errorf("RS256 signature: %v", err)
		}
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return fmt.Errorf("ES256 signature of %d bytes, want 64 (r||s)", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, digest[:], r, s) {
			return fmt.Errorf("ES256 signature does not verify")
		}
	default:
		return fmt.Errorf("test server has no public key")
	}
	var cl struct {
		Iss, Sub, Jti string
		Aud           any
		Exp, Iat      *float64
	}
	if err := decodeSegment(parts[1], &cl); err != nil {
		return fmt.Errorf("claims: %v", err)
	}
	if cl.Iss != testClientID || cl.Sub != testClientID {
		return fmt.Errorf("iss %q sub %q, want both %q", cl.Iss, cl.Sub, testClientID)
	}
	if cl.Aud != aud {
		return fmt.Errorf("aud %v, want %q", cl.Aud, aud)
	}
	now := float64(time.Now().Unix())
	if cl.Exp == nil || *cl.Exp <= now || *cl.Exp > now+600 {
		return fmt.Errorf("exp %v is not in the next 10 minutes (now %v)", cl.Exp, now)
	}
	if cl.Iat == nil || *cl.Iat > now+5 || *cl.Iat < now-60 {
		return fmt.Errorf("iat %v is not now (%v)", cl.Iat, now)
	}
	if cl.Jti == "" {
		return fmt.Errorf("no jti")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.jtis[cl.Jti] {
		return fmt.Errorf("jti %q replayed", cl.Jti)
	}
	a.jtis[cl.Jti] = true
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// ---- fake API ----

// fakeAPI is a CAMARA-like endpoint that accepts the tokens of its authorization server.
type fakeAPI struct {
	srv *httptest.Server
	as  *fakeAS

	mu       sync.Mutex
	requests int
	bodies   []string
	auths    []string
	// unauthorized, when set, decides whether a request (n counts from 1) with a valid token
	// gets 401 anyway (a token the carrier revoked).
	unauthorized func(n int, tok string) bool
}

func newAPI(t *testing.T, as *fakeAS) *fakeAPI {
	t.Helper()
	p := &fakeAPI{as: as}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeAPI) URL() string { return p.srv.URL + "/sim-swap/v2/check" }

func (p *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	auth := r.Header.Get("Authorization")
	p.mu.Lock()
	p.requests++
	n := p.requests
	p.bodies = append(p.bodies, string(body))
	p.auths = append(p.auths, auth)
	unauth := p.unauthorized
	p.mu.Unlock()
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || !p.as.valid(tok) || unauth != nil && unauth(n, tok) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"status":401,"code":"UNAUTHENTICATED","message":"Request not authenticated due to missing, invalid, or expired credentials."}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"swapped":false,"echo":%d}`, len(body))
}

func (p *fakeAPI) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

func (p *fakeAPI) Auths() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.auths)
}

func (p *fakeAPI) setUnauthorized(f func(n int, tok string) bool) {
	p.mu.Lock()
	p.unauthorized = f
	p.mu.Unlock()
}

func (p *fakeAPI) Bodies() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.bodies)
}

// ---- client helpers ----

type logs = observer.ObservedLogs

// newClient makes a Client that logs into an observer at debug level.
func newClient(t *testing.T, cfg Config) (*Client, *logs) {
	t.Helper()
	core, obs := observer.New(zapcore.DebugLevel)
	c, err := New(context.Background(), cfg, zap.New(core))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, obs
}

func baseConfig(as *fakeAS) Config {
	return Config{
		TokenURL: as.URL(), ClientID: testClientID, ClientSecret: testSecret,
		Scopes: testScopes, Purpose: testPurpose, Timeout: 2 * time.Second,
	}
}

// call sends one API request through hc and returns the status and body.
func call(t *testing.T, hc *http.Client, method, u string, body io.Reader) (int, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// assertNoLeak fails when any sensitive string appears in a log entry (message or field) or
// in one of the texts.
func assertNoLeak(t *testing.T, obs *logs, sensitive []string, texts ...string) {
	t.Helper()
	all := slices.Clone(texts)
	if obs != nil {
		for _, e := range obs.All() {
			enc := zapcore.NewMapObjectEncoder()
			for _, f := range e.Context {
				f.AddTo(enc)
			}
			all = append(all, e.Message+" "+fmt.Sprint(enc.Fields))
		}
	}
	for _, s := range sensitive {
		if s == "" {
			continue
		}
		for _, text := range all {
			if strings.Contains(text, s) {
				t.Errorf("secret material %.12q… leaked into %q", s, text)
			}
		}
	}
}
