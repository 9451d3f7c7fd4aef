package oauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"go.uber.org/zap"
)

// transport adds the bearer token to API requests and retries once after a 401.
type transport struct{ c *Client }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	ctx := req.Context()
	getBody, body, err := replayable(req)
	if err != nil {
		return nil, fmt.Errorf("oauth: reading the request body: %w", err)
	}
	tok, err := c.Token(ctx)
	if err != nil {
		closeBody(body)
		return nil, err
	}
	resp, err := c.s.base.RoundTrip(withToken(req, tok, body, getBody))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	c.unauthorized.Add(1)
	if getBody == nil {
		c.log.Warn("API answered 401; request body too large to send again, not retried",
			zap.String("method", req.Method), zap.String("url", req.URL.Redacted()))
		return resp, nil
	}
	body2, err := getBody()
	if err != nil {
		c.log.Warn("API answered 401; request body cannot be sent again, not retried", zap.Error(err))
		return resp, nil
	}
	drain(resp.Body)
	c.invalidate(tok)
	tok2, err := c.Token(ctx)
	if err != nil {
		closeBody(body2)
		return nil, fmt.Errorf("oauth: API answered 401 and no new token could be had: %w", err)
	}
	c.retries.Add(1)
	c.log.Debug("API answered 401; retrying once with a new token", zap.String("method", req.Method),
		zap.String("url", req.URL.Redacted()), zap.Bool("same_token", tok2 == tok))
	resp, err = c.s.base.RoundTrip(withToken(req, tok2, body2, getBody))
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		c.unauthorized.Add(1)
		c.log.Warn("API answered 401 again with a new token; returning it to the caller",
			zap.String("method", req.Method), zap.String("url", req.URL.Redacted()))
	}
	return resp, err
}

// replayable returns the body for the first attempt and a way to get it again (nil when the
// body cannot be replayed). A body without GetBody is buffered up to MaxReplayBody; a larger
// one is streamed once.
func replayable(req *http.Request) (getBody func() (io.ReadCloser, error), body io.ReadCloser, err error) {
	if req.Body == nil || req.Body == http.NoBody {
		return func() (io.ReadCloser, error) { return http.NoBody, nil }, req.Body, nil
	}
	if req.GetBody != nil {
		return req.GetBody, req.Body, nil
	}
	buf, err := io.ReadAll(io.LimitReader(req.Body, MaxReplayBody+1))
	if err != nil {
		req.Body.Close()
		return nil, nil, err
	}
	if len(buf) > MaxReplayBody {
		return nil, readCloser{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}, nil
	}
	req.Body.Close()
	getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return getBody, io.NopCloser(bytes.NewReader(buf)), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// withToken is a copy of req (RoundTrippers must not change theirs) with the token and body.
func withToken(req *http.Request, tok string, body io.ReadCloser, getBody func() (io.ReadCloser, error)) *http.Request {
	r := req.Clone(req.Context())
	r.Body, r.GetBody = body, getBody
	if req.Body == nil {
		r.GetBody = nil
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		b.Close()
	}
}

// drain reads a little of a discarded response so that its connection can be reused.
func drain(b io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	b.Close()
}

// sameHostRedirects follows redirects only within the original scheme and host: the
// transport adds the bearer token to every request it sends, so it must not reach another
// host. A redirect elsewhere is returned to the caller as the response.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return http.ErrUseLastResponse
	}
	return nil
}
