package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"go.uber.org/zap"
)

// maxDiscovery caps the discovery document read.
const maxDiscovery = 1 << 20

// discoveryDoc is the part of an OpenID Provider / RFC 8414 metadata document used here.
type discoveryDoc struct {
	Issuer                   string   `json:"issuer"`
	TokenEndpoint            string   `json:"token_endpoint"`
	AuthMethodsSupported     []string `json:"token_endpoint_auth_methods_supported"`
	AuthSigningAlgsSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
}

// discover fetches the discovery document and returns its token_endpoint. It warns when the
// document says the server does not support the configured method or algorithm.
func (c *Client) discover(ctx context.Context) (string, error) {
	du := redactURL(c.s.discoveryURL)
	ctx, cancel := context.WithTimeout(ctx, c.s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.s.discoveryURL, nil)
	if err != nil {
		return "", fmt.Errorf("discovery %s: %v", du, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.discoveryHTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery: %v", err) // *url.Error names the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxDiscovery))
		return "", fmt.Errorf("discovery %s answered %s", du, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscovery+1))
	if err != nil {
		return "", fmt.Errorf("discovery %s: reading the document: %v", du, err)
	}
	if len(body) > maxDiscovery {
		return "", fmt.Errorf("discovery %s: document larger than %d bytes", du, maxDiscovery)
	}
	var doc discoveryDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery %s: not a JSON metadata document: %v", du, err)
	}
	if doc.TokenEndpoint == "" {
		return "", fmt.Errorf("discovery %s: the document has no token_endpoint; set TokenURL instead", du)
	}
	if err := checkURL(doc.TokenEndpoint); err != nil {
		return "", fmt.Errorf("discovery %s: token_endpoint: %v", du, err)
	}
	c.discoveries.Add(1)
	if len(doc.AuthMethodsSupported) > 0 && !slices.Contains(doc.AuthMethodsSupported, c.s.method) {
		c.log.Warn("the authorization server does not list the configured client authentication method",
			zap.String("method", c.s.method), zap.Strings("supported", doc.AuthMethodsSupported))
	}
	if c.s.method == MethodPrivateKeyJWT && len(doc.AuthSigningAlgsSupported) > 0 && !slices.Contains(doc.AuthSigningAlgsSupported, c.s.alg) {
		c.log.Warn("the authorization server does not list the configured signing algorithm",
			zap.String("alg", c.s.alg), zap.Strings("supported", doc.AuthSigningAlgsSupported))
	}
	return doc.TokenEndpoint, nil
}

// tokenEndpoint returns the token endpoint to use. After a failed token request it fetches
// the discovery document again (at most every rediscoverEvery), keeping the old endpoint if
// that fails.
func (c *Client) tokenEndpoint(ctx context.Context) string {
	c.epMu.Lock()
	defer c.epMu.Unlock()
	if c.s.tokenURL != "" || !c.rediscover || c.now().Sub(c.discovered) < rediscoverEvery {
		return c.endpoint
	}
	c.discovered = c.now()
	ep, err := c.discover(ctx)
	if err != nil {
		c.log.Warn("discovery failed again; keeping the token endpoint", zap.Error(err), zap.String("token_url", redactURL(c.endpoint)))
		return c.endpoint
	}
	c.rediscover = false
	if ep != c.endpoint {
		c.log.Info("token endpoint changed", zap.String("old", redactURL(c.endpoint)), zap.String("new", redactURL(ep)))
		c.endpoint = ep
	}
	return c.endpoint
}
