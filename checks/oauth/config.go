package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Client authentication methods (Config.AuthMethod).
const (
	MethodClientSecretBasic = "client_secret_basic"
	MethodClientSecretPost  = "client_secret_post"
	MethodPrivateKeyJWT     = "private_key_jwt"
)

// Signing algorithms for private_key_jwt (Config.SigningAlg).
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

const (
	// PurposeFraudPrevention is the CAMARA purpose scope for OTP fraud prevention.
	PurposeFraudPrevention = "dpv:FraudPreventionAndDetection"
	// AssertionType is RFC 7523's client_assertion_type for a JWT client assertion.
	AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

	// DefaultTimeout bounds a token request (and the discovery fetch).
	DefaultTimeout = 5 * time.Second
	// DefaultRefreshBefore is how long before expiry a token is refreshed.
	DefaultRefreshBefore = 60 * time.Second
	// DefaultExpiresIn is the token lifetime assumed when the response has no expires_in.
	DefaultExpiresIn = 3600 * time.Second
	// AssertionLifetime is how long a client assertion is valid (its exp - iat).
	AssertionLifetime = 5 * time.Minute
	// MaxReplayBody is the largest request body without GetBody that is buffered so that it
	// can be sent again after a 401.
	MaxReplayBody = 64 << 10

	minRSABits    = 2048
	maxKeyFile    = 1 << 20
	purposePrefix = "dpv:"
)

// Config says how to obtain tokens from one carrier.
type Config struct {
	TokenURL       string            // token endpoint; may be empty when DiscoveryURL is set
	DiscoveryURL   string            // OpenID configuration URL (…/.well-known/openid-configuration): token_endpoint read from it at New
	ClientID       string            // OAuth client_id; iss and sub of the client assertion
	AuthMethod     string            // "client_secret_basic" (default) | "client_secret_post" | "private_key_jwt"
	ClientSecret   string            // for the secret methods
	PrivateKeyFile string            // PEM (PKCS#8, PKCS#1 RSA, or SEC1 EC) for private_key_jwt; must be mode 0600 or stricter
	SigningAlg     string            // "RS256" | "ES256"; default from the key type
	KeyID          string            // JWT header kid, optional
	Scopes         []string          // API scopes
	Purpose        string            // e.g. "dpv:FraudPreventionAndDetection" (added as one more scope; must start with "dpv:")
	Timeout        time.Duration     // token request timeout, default 5s
	RefreshBefore  time.Duration     // refresh this long before expiry, default 60s
	Base           http.RoundTripper // transport for API and token calls; nil = http.DefaultTransport
}

// String describes the configuration with the client secret redacted, so that a Config that
// ends up in a log line or an error does not leak it.
func (c Config) String() string {
	sec := ""
	if c.ClientSecret != "" {
		sec = "[REDACTED]"
	}
	return fmt.Sprintf("oauth.Config{TokenURL:%q DiscoveryURL:%q ClientID:%q AuthMethod:%q ClientSecret:%s PrivateKeyFile:%q SigningAlg:%q KeyID:%q Scopes:%q Purpose:%q Timeout:%s RefreshBefore:%s}",
		c.TokenURL, c.DiscoveryURL, c.ClientID, c.AuthMethod, sec, c.PrivateKeyFile, c.SigningAlg, c.KeyID, c.Scopes, c.Purpose, c.Timeout, c.RefreshBefore)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// secret holds a credential; it formats as [REDACTED] however it is printed.
type secret string

func (secret) String() string               { return "[REDACTED]" }
func (secret) GoString() string             { return "[REDACTED]" }
func (secret) Format(f fmt.State, _ rune)   { io.WriteString(f, "[REDACTED]") }
func (secret) MarshalText() ([]byte, error) { return []byte("[REDACTED]"), nil }
func (s secret) reveal() string             { return string(s) }

// settings is a validated Config.
type settings struct {
	tokenURL      string
	discoveryURL  string
	clientID      string
	method        string
	secret        secret
	signer        jose.Signer // private_key_jwt only
	alg           string
	scopes        []string // API scopes then the purpose, deduplicated
	timeout       time.Duration
	refreshBefore time.Duration
	base          http.RoundTripper
}

// validate checks everything that can be checked without the network and reports every
// problem at once.
func validate(cfg Config) (*settings, error) {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	s := &settings{
		tokenURL: strings.TrimSpace(cfg.TokenURL), discoveryURL: strings.TrimSpace(cfg.DiscoveryURL),
		clientID: cfg.ClientID, method: cfg.AuthMethod, secret: secret(cfg.ClientSecret),
		timeout: cfg.Timeout, refreshBefore: cfg.RefreshBefore, base: cfg.Base,
	}
	if s.method == "" {
		s.method = MethodClientSecretBasic
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.refreshBefore == 0 {
		s.refreshBefore = DefaultRefreshBefore
	}
	if s.base == nil {
		s.base = http.DefaultTransport
	}

	switch {
	case s.tokenURL == "" && s.discoveryURL == "":
		add("no token endpoint: set TokenURL, or DiscoveryURL to the carrier's .well-known/openid-configuration")
	case s.tokenURL != "":
		if err := checkURL(s.tokenURL); err != nil {
			add("TokenURL: %v", err)
		}
	default:
		if err := checkURL(s.discoveryURL); err != nil {
			add("DiscoveryURL: %v", err)
		}
	}
	if strings.TrimSpace(s.clientID) == "" {
		add("ClientID is required")
	}
	if cfg.Timeout < 0 {
		add("Timeout %s is negative", cfg.Timeout)
	}
	if cfg.RefreshBefore < 0 {
		add("RefreshBefore %s is negative", cfg.RefreshBefore)
	}

	switch s.method {
	case MethodClientSecretBasic, MethodClientSecretPost:
		if cfg.ClientSecret == "" {
			add("AuthMethod %s needs ClientSecret", s.method)
		}
	case MethodPrivateKeyJWT:
		signer, alg, err := loadSigner(cfg.PrivateKeyFile, cfg.SigningAlg, cfg.KeyID)
		if err != nil {
			errs = append(errs, err)
		}
		s.signer, s.alg = signer, alg
	default:
		add("AuthMethod %q is not a client authentication method; use %s, %s or %s",
			cfg.AuthMethod, MethodClientSecretBasic, MethodClientSecretPost, MethodPrivateKeyJWT)
	}

	scopes, err := buildScopes(cfg.Scopes, cfg.Purpose)
	if err != nil {
		errs = append(errs, err)
	}
	s.scopes = scopes

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// checkURL accepts absolute http(s) URLs.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", u.Redacted())
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q has a fragment", u.Redacted())
	}
	return nil
}

// buildScopes returns the API scopes (deduplicated, in order) followed by the one purpose
// scope. A dpv: scope may also be given among Scopes instead of in Purpose, but there can be
// only one purpose.
func buildScopes(api []string, purpose string) ([]string, error) {
	var errs []error
	var out []string
	seen := map[string]bool{}
	var purposes []string
	for _, sc := range api {
		switch {
		case sc == "":
			errs = append(errs, errors.New("Scopes has an empty scope"))
			continue
		case !validScopeToken(sc):
			errs = append(errs, fmt.Errorf("scope %q has a character a scope cannot have (space, quote, backslash or control)", sc))
			continue
		case seen[sc]:
			continue
		}
		seen[sc] = true
		if strings.HasPrefix(sc, purposePrefix) {
			purposes = append(purposes, sc)
			continue
		}
		out = append(out, sc)
	}
	if purpose != "" {
		switch {
		case !strings.HasPrefix(purpose, purposePrefix) || len(purpose) == len(purposePrefix):
			errs = append(errs, fmt.Errorf("Purpose %q is not a CAMARA purpose scope: it must look like dpv:<Purpose>, e.g. %s", purpose, PurposeFraudPrevention))
		case !validScopeToken(purpose):
			errs = append(errs, fmt.Errorf("Purpose %q has a character a scope cannot have", purpose))
		case !seen[purpose]:
			purposes = append(purposes, purpose)
		}
	}
	if len(purposes) > 1 {
		errs = append(errs, fmt.Errorf("a token request carries one purpose scope, got %q", purposes))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return append(out, purposes...), nil
}

// validScopeToken is RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// loadSigner reads the PEM private key and makes the JWS signer for the client assertion.
func loadSigner(path, alg, kid string) (jose.Signer, string, error) {
	key, err := loadPrivateKey(path)
	if err != nil {
		return nil, "", err
	}
	var want string
	switch k := key.(type) {
	case *rsa.PrivateKey:
		want = AlgRS256
		if bits := k.N.BitLen(); bits < minRSABits {
			return nil, "", fmt.Errorf("private key file %s: RSA key of %d bits is too small; use at least %d", path, bits, minRSABits)
		}
	case *ecdsa.PrivateKey:
		want = AlgES256
		if k.Curve != elliptic.P256() {
			return nil, "", fmt.Errorf("private key file %s: EC key on curve %s; ES256 needs P-256 (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)", path, k.Curve.Params().Name)
		}
	default:
		return nil, "", fmt.Errorf("private key file %s: %T keys are not supported; use an RSA (RS256) or EC P-256 (ES256) key", path, key)
	}
	switch alg {
	case "":
		alg = want
	case AlgRS256, AlgES256:
		if alg != want {
			kind := "an RSA"
			if want == AlgES256 {
				kind = "an EC P-256"
			}
			return nil, "", fmt.Errorf("SigningAlg %s does not match private key file %s, which holds %s key (%s); set SigningAlg to %s or omit it", alg, path, kind, want, want)
		}
	default:
		return nil, "", fmt.Errorf("SigningAlg %q is not supported; use RS256 or ES256 (or omit it to follow the key type)", alg)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, "", fmt.Errorf("private key file %s: cannot make a %s signer: %v", path, alg, err)
	}
	return signer, alg, nil
}

// loadPrivateKey opens the key file, refuses it when group or others can access it, and
// parses the first private key PEM block (PKCS#8, PKCS#1 or SEC1).
func loadPrivateKey(path string) (crypto.Signer, error) {
	if path == "" {
		return nil, errors.New("private_key_jwt needs PrivateKeyFile (a PEM private key, mode 0600)")
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("private key file %s does not exist", path)
		case errors.As(err, &pe):
			return nil, fmt.Errorf("private key file %s cannot be read: %v", path, pe.Err)
		default:
			return nil, fmt.Errorf("private key file %s cannot be read: %v", path, err)
		}
	}
	defer f.Close()
	st, err := f.Stat() // the opened file itself, not the path again
	if err != nil {
		return nil, fmt.Errorf("private key file %s cannot be read: %v", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("private key file %s is a directory", path)
	}
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("private key file %s is accessible by group or others (mode %#o); run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("private key file %s cannot be read: %v", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("private key file %s is larger than %d bytes; it is not a PEM private key", path, maxKeyFile)
	}
	const want = `expected a PEM private key ("PRIVATE KEY" PKCS#8, "RSA PRIVATE KEY" PKCS#1 or "EC PRIVATE KEY" SEC1)`
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("private key file %s has no PEM private key; %s", path, want)
		}
		if block.Headers["Proc-Type"] != "" && strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, fmt.Errorf("private key file %s is encrypted; decrypt it (openssl pkey -in %s -out NEW) and keep it mode 0600", path, path)
		}
		var key any
		var perr error
		switch block.Type {
		case "EC PARAMETERS":
			continue // openssl ecparam -genkey writes these before the key
		case "PRIVATE KEY":
			key, perr = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, perr = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, perr = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("private key file %s is encrypted; decrypt it (openssl pkey -in %s -out NEW) and keep it mode 0600", path, path)
		default:
			return nil, fmt.Errorf("private key file %s holds a %q PEM block; %s", path, block.Type, want)
		}
		if perr != nil {
			return nil, fmt.Errorf("private key file %s: cannot parse the %q block: %v", path, block.Type, perr)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("private key file %s: %T keys are not supported; use an RSA (RS256) or EC P-256 (ES256) key", path, key)
		}
		return signer, nil
	}
}
