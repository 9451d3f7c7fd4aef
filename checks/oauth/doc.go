// Package oauth builds the authenticated *http.Client that the CAMARA provider uses to call a
// carrier's network APIs (SIM Swap, Call Forwarding Signal, ...), the way real operators
// require it.
//
// # Client authentication
//
// The token request is an OAuth 2.0 client-credentials grant (RFC 6749 §4.4) to the carrier's
// token endpoint, which is either configured (Config.TokenURL) or read once from the
// carrier's OpenID / RFC 8414 discovery document (Config.DiscoveryURL, token_endpoint).
// Three client authentication methods are supported:
//
//   - client_secret_basic (default): client_id and secret in an HTTP Basic Authorization
//     header (form-urlencoded first, as RFC 6749 §2.3.1 says). Sandboxes.
//   - client_secret_post: client_id and client_secret in the form body. Sandboxes.
//   - private_key_jwt: what the CAMARA security and interoperability profile asks of API
//     consumers. Every token request carries a fresh RFC 7523 client assertion: a JWT signed
//     with the client's private key (RS256 or ES256) with iss = sub = client_id, aud = the
//     token endpoint URL, a random jti, iat = now and exp = now + 5 minutes, sent as
//     client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer and
//     client_assertion=<JWT>.
//
// The requested scope is the API scopes (e.g. sim-swap:check) plus exactly one CAMARA purpose
// scope, dpv:<Purpose> (dpv:FraudPreventionAndDetection for OTP protection).
//
// # Tokens
//
// One Client serves one carrier and scope set. Its token is cached and refreshed
// RefreshBefore its expiry (at most half the token's lifetime early); expires_in is honoured,
// 3600 s when absent. Only one token request is in flight at a time: concurrent callers share
// it. A failed refresh while the current token is still valid keeps that token (retrying
// the refresh at most every few seconds) so that a short token-endpoint outage costs nothing.
//
// HTTPClient's transport adds "Authorization: Bearer <token>" to every API call. When an API
// answers 401 it drops that token, fetches one new token and sends the request again, once:
// a second 401 goes back to the caller. Request bodies are replayed from GetBody or from a
// buffer of up to 64 KiB; a larger body without GetBody is sent once and not retried. Redirects
// to another host are not followed with the token (the redirect response is returned).
//
// Secrets, client assertions and tokens never appear in logs or errors: a token endpoint
// failure is reported as a *TokenError with the HTTP status, the OAuth error code and its
// error_description only, never the response body.
//
// # Dependencies
//
// The grant itself goes through golang.org/x/oauth2/clientcredentials (AuthStyleInHeader,
// AuthStyleInParams, EndpointParams for the client assertion); its error values are mapped to
// TokenError so that response bodies are never echoed.
//
// JWS signing uses github.com/go-jose/go-jose/v4 (and its jwt subpackage), not hand-made
// crypto. It is the maintained continuation of square/go-jose, the JOSE implementation most
// Go OAuth/OIDC software builds on; it is pure Go with no further dependencies; it signs
// RS256 and ES256 from the standard library's key types (ECDSA signatures in the JOSE r||s
// form, which hand-rolled code commonly gets wrong by emitting ASN.1); its jwt builder writes
// a single audience as a JSON string, as authorization servers expect for aud = token
// endpoint; and its v4 API was hardened (callers must name the algorithms they accept when
// parsing). The project's go.mod already listed it for this package.
package oauth
