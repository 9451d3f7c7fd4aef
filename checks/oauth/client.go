package oauth

import (
	"github.com/smppguard/smppguard/checks"

	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"
)

const (
	// refreshRetry is how long a Client keeps using its still-valid token after a failed
	// refresh before it tries the token endpoint again.
	refreshRetry = 5 * time.Second
	// rediscoverEvery bounds how often the discovery document is fetched again after token
	// request failures.
	rediscoverEvery = time.Minute
	// maxDescription caps the error_description carried into errors and logs.
	maxDescription = 200
)

// Client obtains, caches and refreshes access tokens for one carrier and scope set, and
// makes the *http.Client that sends them.
type Client struct {
	s    *settings
	log  *zap.Logger
	now  func() time.Time // the clock for token expiry and assertion times; tests replace it
	http *http.Client     // HTTPClient's value

	tokenHTTP     *http.Client // token requests: no redirects
	discoveryHTTP *http.Client // discovery fetches

	epMu       sync.Mutex
	endpoint   string    // token endpoint in use
	discovered time.Time // last discovery fetch (c.now), zero when TokenURL is configured
	rediscover bool      // a token request failed since the last discovery

	mu      sync.Mutex
	tok     *token    // nil: none or invalidated
	retryAt time.Time // after a failed refresh, keep tok (if still valid) until then
	flight  singleflight.Group

	fetches, failures, unauthorized, retries, discoveries atomic.Uint64
}

// token is a cached access token.
type token struct {
	access    string
	expiry    time.Time // c.now-based
	refreshAt time.Time // c.now-based
}

// Stats counts a Client's token and retry activity.
type Stats struct {
	TokenFetches  uint64 // token requests sent (successful or not)
	TokenFailures uint64 // token requests that failed (or could not be made)
	Unauthorized  uint64 // API answers with status 401
	Retries401    uint64 // API requests sent a second time, with a new token, after a 401
	Discoveries   uint64 // successful discovery document fetches
}

// New validates cfg, loads the signing key for private_key_jwt and, when cfg has a
// DiscoveryURL and no TokenURL, reads the token endpoint from the discovery document (within
// cfg.Timeout). It fetches no token: the first Token or API call does. A nil log logs nothing.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*Client, error) {
	if log == nil {
		log = zap.NewNop()
	}
	s, err := validate(cfg)
	if err != nil {
		return nil, fmt.Errorf("oauth: %w", err)
	}
	c := &Client{s: s, log: log, now: time.Now, endpoint: s.tokenURL}
	c.tokenHTTP = &http.Client{
		Transport: s.base,
		Timeout:   s.timeout,
		// A token request carries credentials: never resend it elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.discoveryHTTP = &http.Client{Transport: s.base, Timeout: s.timeout}
	c.http = &http.Client{Transport: &transport{c: c}, CheckRedirect: sameHostRedirects}

	if s.tokenURL == "" {
		ep, err := c.discover(ctx)
		if err != nil {
			return nil, fmt.Errorf("oauth: %w", err)
		}
		c.endpoint = ep
		c.discovered = c.now()
	}
	if u, err := url.Parse(c.endpoint); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		log.Warn("token endpoint is plain http: credentials and tokens cross the network unencrypted", zap.String("token_url", u.Redacted()))
	}
	if len(s.scopes) == 0 || !strings.HasPrefix(s.scopes[len(s.scopes)-1], purposePrefix) {
		log.Warn("no dpv: purpose scope configured; CAMARA operators require one, e.g. " + PurposeFraudPrevention)
	}
	log.Debug("oauth client ready", zap.String("token_url", redactURL(c.endpoint)), zap.String("method", s.method),
		zap.String("alg", s.alg), zap.Strings("scopes", s.scopes))
	return c, nil
}

// Validate checks cfg exactly as New does — the private key file of private_key_jwt is read
// and parsed and the signer made — without any network call (no discovery fetch). A config
// check (smppguard check-config) uses it so that what it accepts, New accepts too.
func Validate(cfg Config) error {
	if _, err := validate(cfg); err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	return nil
}

// HTTPClient returns the client for API calls. Its transport adds the bearer token and, on a
// 401, fetches one new token and sends the request once more. It has no overall timeout of
// its own: use request contexts. It is the same *http.Client on every call.
func (c *Client) HTTPClient() *http.Client { return c.http }

// Stats returns the counters so far.
func (c *Client) Stats() Stats {
	return Stats{
		TokenFetches: c.fetches.Load(), TokenFailures: c.failures.Load(),
		Unauthorized: c.unauthorized.Load(), Retries401: c.retries.Load(), Discoveries: c.discoveries.Load(),
	}
}

// Invalidate drops the cached token: the next Token or API call fetches a new one.
func (c *Client) Invalidate() {
	c.mu.Lock()
	c.tok, c.retryAt = nil, time.Time{}
	c.mu.Unlock()
}

// invalidate drops the cached token if it still is access, so that many API calls failing
// with the same token cause one refresh, not one each.
func (c *Client) invalidate(access string) {
	c.mu.Lock()
	if c.tok != nil && c.tok.access == access {
		c.tok, c.retryAt = nil, time.Time{}
	}
	c.mu.Unlock()
}

// cached returns the token to use without a refresh, if any.
func (c *Client) cached() (string, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tok
	if t == nil {
		return "", false
	}
	if now.Before(t.refreshAt) || now.Before(t.expiry) && now.Before(c.retryAt) {
		return t.access, true
	}
	return "", false
}

// Token returns a valid access token: the cached one, or a new one when there is none or it
// is within RefreshBefore of its expiry. Concurrent callers share one token request, which is
// not cancelled when a caller gives up (it is bounded by Timeout); ctx bounds the wait.
func (c *Client) Token(ctx context.Context) (string, error) {
	if tok, ok := c.cached(); ok {
		return tok, nil
	}
	ch := c.flight.DoChan("token", func() (any, error) {
		if tok, ok := c.cached(); ok { // another flight finished just before this one began
			return tok, nil
		}
		return c.refresh()
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", fmt.Errorf("oauth: waiting for a token: %w", context.Cause(ctx))
	}
}

// refresh fetches a token and caches it. When the fetch fails but the cached token is still
// valid, it keeps that token for refreshRetry and returns it.
func (c *Client) refresh() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.timeout)
	defer cancel()
	t, err := c.fetch(ctx)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if old := c.tok; old != nil && now.Before(old.expiry) {
			c.retryAt = now.Add(min(refreshRetry, old.expiry.Sub(now)))
			c.log.Warn("token refresh failed; keeping the current token until it expires",
				zap.Error(err), zap.Duration("valid_for", old.expiry.Sub(now)))
			return old.access, nil
		}
		c.log.Warn("token request failed", zap.Error(err))
		return "", err
	}
	c.tok, c.retryAt = t, time.Time{}
	return t.access, nil
}

// fetch makes one token request.
func (c *Client) fetch(ctx context.Context) (*token, error) {
	endpoint := c.tokenEndpoint(ctx)
	c.fetches.Add(1)
	t, err := c.request(ctx, endpoint)
	if err != nil {
		c.failures.Add(1)
		if c.s.tokenURL == "" {
			c.epMu.Lock()
			c.rediscover = true
			c.epMu.Unlock()
		}
		return nil, err
	}
	return t, nil
}

func (c *Client) request(ctx context.Context, endpoint string) (*token, error) {
	cc := clientcredentials.Config{ClientID: c.s.clientID, TokenURL: endpoint, Scopes: c.s.scopes}
	switch c.s.method {
	case MethodClientSecretBasic:
		cc.ClientSecret, cc.AuthStyle = c.s.secret.reveal(), oauth2.AuthStyleInHeader
	case MethodClientSecretPost:
		cc.ClientSecret, cc.AuthStyle = c.s.secret.reveal(), oauth2.AuthStyleInParams
	case MethodPrivateKeyJWT:
		assertion, err := c.assertion(endpoint)
		if err != nil {
			return nil, &TokenError{Endpoint: redactURL(endpoint), Err: fmt.Errorf("signing the client assertion: %w", err)}
		}
		// client_id goes in the body too (RFC 7521 §4.2 allows it; some servers want it).
		cc.AuthStyle = oauth2.AuthStyleInParams
		cc.EndpointParams = url.Values{"client_assertion_type": {AssertionType}, "client_assertion": {assertion}}
	}
	start := time.Now()
	ot, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, c.tokenHTTP))
	if err != nil {
		return nil, tokenError(endpoint, err)
	}
	if typ := ot.TokenType; typ != "" && !strings.EqualFold(typ, "bearer") {
		return nil, &TokenError{Endpoint: redactURL(endpoint), StatusCode: http.StatusOK,
			Err: fmt.Errorf("token_type %q is not supported (Bearer only)", clean(typ))}
	}
	lifetime := DefaultExpiresIn
	if !ot.Expiry.IsZero() {
		// x/oauth2 turned expires_in into a wall-clock time; take the lifetime back out so
		// that it is applied to c.now.
		lifetime = max(ot.Expiry.Sub(start).Round(time.Second), 0)
	}
	margin := min(c.s.refreshBefore, lifetime/2)
	now := c.now()
	c.log.Debug("token fetched", zap.String("token_url", redactURL(endpoint)), zap.Duration("expires_in", lifetime),
		zap.Strings("scopes", c.s.scopes), zap.Duration("took", time.Since(start)))
	return &token{access: ot.AccessToken, expiry: now.Add(lifetime), refreshAt: now.Add(lifetime - margin)}, nil
}

// assertion makes a fresh RFC 7523 client assertion for the token endpoint aud.
func (c *Client) assertion(aud string) (string, error) {
	now := c.now()
	claims := jwt.Claims{
		Issuer:   c.s.clientID,
		Subject:  c.s.clientID,
		Audience: jwt.Audience{aud},
		ID:       rand.Text(), // 128 random bits
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(AssertionLifetime)),
	}
	return jwt.Signed(c.s.signer).Claims(claims).Serialize()
}

// TokenError is a failed token request. It carries the HTTP status, the OAuth error code and
// error_description (RFC 6749 §5.2) or the transport error, never the response body,
// credentials or tokens.
type TokenError struct {
	Endpoint    string // token endpoint URL (password redacted)
	StatusCode  int    // HTTP status; 0 when no response was had
	Status      string // HTTP status line text, e.g. "401 Unauthorized"
	Code        string // OAuth error code, e.g. invalid_client
	Description string // error_description, cleaned and truncated
	Err         error  // transport or parse error, if any
}

func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("oauth: token request to ")
	b.WriteString(e.Endpoint)
	switch {
	case e.StatusCode != 0 && e.Status != "":
		b.WriteString(" answered ")
		b.WriteString(e.Status)
	case e.StatusCode != 0:
		fmt.Fprintf(&b, " answered %d", e.StatusCode)
	default:
		b.WriteString(" failed")
	}
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
		if e.Description != "" {
			fmt.Fprintf(&b, " (%s)", e.Description)
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *TokenError) Unwrap() error { return e.Err }

// Is makes a refused token request (400 or 401 from the token endpoint: bad credentials,
// scope or purpose) match checks.ErrUnauthorized, so a misconfigured client is reported as
// such and does not count as the carrier being unavailable (the breaker's business).
func (e *TokenError) Is(target error) bool {
	return target == checks.ErrUnauthorized && (e.StatusCode == 400 || e.StatusCode == 401)
}

// tokenError maps an x/oauth2 error to a TokenError without the response body.
func tokenError(endpoint string, err error) error {
	te := &TokenError{Endpoint: redactURL(endpoint)}
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		if re.Response != nil {
			te.StatusCode, te.Status = re.Response.StatusCode, re.Response.Status
		}
		te.Code, te.Description = clean(re.ErrorCode), clean(re.ErrorDescription)
		if te.Code == "" && te.StatusCode >= 300 && te.StatusCode < 400 {
			te.Err = errors.New("redirects are not followed for token requests")
		}
	default:
		// Transport errors (*url.Error: method, redacted URL, cause) and x/oauth2's parse
		// errors carry no credentials.
		te.Err = err
	}
	return te
}

// clean makes server-provided text safe for one log line: printable, bounded.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > maxDescription {
		s = string(r[:maxDescription]) + "…"
	}
	return strings.TrimSpace(s)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}
