package fakecarrier

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwtBearer is the RFC 7523 client assertion type.
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLife is how far in the future a client assertion may expire.
const maxAssertionLife = 10 * time.Minute

// oauthError answers with an RFC 6749 section 5.2 error.
func (x *exchange) oauthError(status int, code, desc string) {
	if status == http.StatusUnauthorized {
		x.w.Header().Set("WWW-Authenticate", `Basic realm="fakecarrier"`)
	}
	x.w.Header().Set("Cache-Control", "no-store")
	x.w.Header().Set("Pragma", "no-cache")
	x.code = code
	x.json(status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
}

// token is the OAuth2 token endpoint: client_credentials only.
func (s *Server) token(x *exchange) {
	r := x.r
	r.Body = http.MaxBytesReader(x.w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		x.oauthError(http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 {
			x.oauthError(http.StatusBadRequest, "invalid_request", fmt.Sprintf("parameter %s given more than once", k))
			return
		}
	}
	user, pass, hasBasic := r.BasicAuth()
	hasPost := form.Has("client_secret")
	hasJWT := form.Has("client_assertion") || form.Has("client_assertion_type")
	methods := 0
	for _, b := range []bool{hasBasic, hasPost, hasJWT} {
		if b {
			methods++
		}
	}
	if methods > 1 {
		x.oauthError(http.StatusBadRequest, "invalid_request", "use exactly one client authentication method")
		return
	}
	var c *clientState
	var problem string
	switch {
	case hasBasic:
		c, problem = s.authBasic(user, pass, form.Get("client_id"))
		x.update(func(call *Call) { call.AuthMethod = AuthBasic })
	case hasPost:
		c, problem = s.authSecret(form.Get("client_id"), form.Get("client_secret"))
		x.update(func(call *Call) { call.AuthMethod = AuthPost })
	case hasJWT:
		x.update(func(call *Call) { call.AuthMethod = AuthPrivateKeyJWT })
		if form.Get("client_assertion_type") != jwtBearer || form.Get("client_assertion") == "" {
			x.oauthError(http.StatusBadRequest, "invalid_request", "private_key_jwt needs client_assertion_type="+jwtBearer+" and client_assertion")
			return
		}
		c, problem = s.authJWT(r, form.Get("client_assertion"), form.Get("client_id"))
	default:
		problem = "client authentication required (client_secret_basic, client_secret_post or private_key_jwt)"
	}
	if c == nil {
		x.oauthError(http.StatusUnauthorized, "invalid_client", problem)
		return
	}
	x.update(func(call *Call) { call.ClientID = c.ClientID })
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		x.oauthError(http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		x.oauthError(http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported; use client_credentials", gt))
		return
	}
	scopes, problem := s.grantScopes(c, form.Get("scope"))
	if problem != "" {
		x.oauthError(http.StatusBadRequest, "invalid_scope", problem)
		return
	}
	var raw [32]byte
	rand.Read(raw[:])
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	set := make(map[string]bool, len(scopes))
	for _, sc := range scopes {
		set[sc] = true
	}
	s.mu.Lock()
	for k, t := range s.tokens {
		if !now.Before(t.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[tok] = token{clientID: c.ClientID, scopes: set, expires: now.Add(c.TokenTTL)}
	s.mu.Unlock()
	x.w.Header().Set("Cache-Control", "no-store")
	x.w.Header().Set("Pragma", "no-cache")
	x.json(http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Scope       string `json:"scope"`
	}{tok, "Bearer", int64((c.TokenTTL + time.Second - 1) / time.Second), strings.Join(scopes, " ")})
}

// authBasic authenticates client_secret_basic: the credentials are form-urlencoded before
// base64 (RFC 6749 2.3.1); unencoded ones are accepted too.
func (s *Server) authBasic(user, pass, formID string) (*clientState, string) {
	for _, enc := range []bool{true, false} {
		u, p := user, pass
		if enc {
			var e1, e2 error
			u, e1 = url.QueryUnescape(user)
			p, e2 = url.QueryUnescape(pass)
			if e1 != nil || e2 != nil {
				continue
			}
		}
		if c, _ := s.authSecret(u, p); c != nil {
			if formID != "" && formID != c.ClientID {
				return nil, "client_id in the body does not match the Authorization header"
			}
			return c, ""
		}
	}
	return nil, "unknown client or wrong secret"
}

// authSecret checks a client id and secret.
func (s *Server) authSecret(id, secret string) (*clientState, string) {
	c := s.clients[id]
	if c == nil || c.ClientSecret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.ClientSecret)) != 1 {
		return nil, "unknown client or wrong secret"
	}
	return c, ""
}

// authJWT checks a private_key_jwt client assertion (RFC 7523 section 3).
func (s *Server) authJWT(r *http.Request, assertion, formID string) (*clientState, string) {
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil, "client_assertion is not a JWS signed with RS256 or ES256: " + err.Error()
	}
	var claims jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return nil, "client_assertion claims: " + err.Error()
	}
	id := claims.Issuer
	if formID != "" && formID != id {
		return nil, "client_id does not match the assertion's iss"
	}
	c := s.clients[id]
	if c == nil || c.key == nil {
		return nil, fmt.Sprintf("no client %q with a public key", id)
	}
	claims = jwt.Claims{}
	if err := tok.Claims(c.key, &claims); err != nil {
		return nil, "client_assertion signature does not verify with the client's key"
	}
	now := s.now()
	switch {
	case claims.Issuer != c.ClientID || claims.Subject != c.ClientID:
		return nil, "client_assertion iss and sub must both be the client_id"
	case !s.audienceOK(r, claims.Audience):
		return nil, fmt.Sprintf("client_assertion aud must be the token endpoint %s", s.TokenURL())
	case claims.Expiry == nil:
		return nil, "client_assertion has no exp"
	case !now.Before(claims.Expiry.Time()):
		return nil, "client_assertion has expired"
	case claims.Expiry.Time().After(now.Add(maxAssertionLife)):
		return nil, "client_assertion exp is more than 10 minutes ahead"
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(time.Minute)):
		return nil, "client_assertion is not valid yet (nbf)"
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(time.Minute)):
		return nil, "client_assertion iat is in the future"
	case claims.ID == "":
		return nil, "client_assertion has no jti"
	}
	key := c.ClientID + "\x00" + claims.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range s.jtis {
		if now.After(exp.Add(time.Minute)) {
			delete(s.jtis, k)
		}
	}
	if _, used := s.jtis[key]; used {
		return nil, "client_assertion jti has been used before"
	}
	s.jtis[key] = claims.Expiry.Time()
	return c, ""
}

// audienceOK accepts the token endpoint URL, as published (TokenURL) or as reached through
// the request's Host (e.g. localhost instead of 127.0.0.1).
func (s *Server) audienceOK(r *http.Request, aud jwt.Audience) bool {
	if aud.Contains(s.TokenURL()) {
		return true
	}
	return r.Host != "" && aud.Contains("http://"+r.Host+s.prefix+"/oauth2/token")
}

// grantScopes checks the requested scopes (space-separated) and returns those granted:
// every requested scope must be allowed for the client; a dpv: purpose is checked against
// RequirePurpose; no API scope requested grants all the client's.
func (s *Server) grantScopes(c *clientState, requested string) ([]string, string) {
	var api, purposes []string
	for _, sc := range strings.Fields(requested) {
		switch {
		case strings.HasPrefix(sc, "dpv:"):
			if len(sc) == 4 {
				return nil, "empty dpv: purpose"
			}
			if c.purpose != nil && !c.purpose[sc] {
				return nil, fmt.Sprintf("purpose %s is not allowed for client %s", sc, c.ClientID)
			}
			if !slices.Contains(purposes, sc) {
				purposes = append(purposes, sc)
			}
		case !slices.Contains(APIScopes, sc):
			return nil, fmt.Sprintf("unknown scope %q", sc)
		case !c.allowed[sc]:
			return nil, fmt.Sprintf("scope %s is not allowed for client %s", sc, c.ClientID)
		default:
			if !slices.Contains(api, sc) {
				api = append(api, sc)
			}
		}
	}
	if want := s.cfg.RequirePurpose; want != "" {
		switch {
		case len(purposes) == 0:
			return nil, "a purpose scope is required: " + want
		case len(purposes) > 1:
			return nil, "exactly one purpose scope is allowed, got " + strings.Join(purposes, " ")
		case purposes[0] != want:
			return nil, fmt.Sprintf("purpose %s is not the one agreed for this API: %s", purposes[0], want)
		}
	}
	if len(api) == 0 {
		for _, sc := range APIScopes {
			if c.allowed[sc] {
				api = append(api, sc)
			}
		}
	}
	return append(api, purposes...), ""
}

// discovery serves the OpenID configuration document.
func (s *Server) discovery(x *exchange) {
	methods := []string{}
	for _, c := range s.clients {
		for _, m := range c.methods() {
			if !slices.Contains(methods, m) {
				methods = append(methods, m)
			}
		}
	}
	slices.Sort(methods)
	if len(methods) == 0 {
		methods = []string{AuthBasic, AuthPost, AuthPrivateKeyJWT}
	}
	scopes := append([]string{}, APIScopes...)
	if s.cfg.RequirePurpose != "" {
		scopes = append(scopes, s.cfg.RequirePurpose)
	}
	x.json(http.StatusOK, map[string]any{
		"issuer":                                s.URL(),
		"token_endpoint":                        s.TokenURL(),
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": methods,
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "ES256"},
		"scopes_supported": scopes,
	})
}
