package camara

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/smppguard/smppguard/checks"
)

// post sends body as JSON to url and decodes a 2xx answer into out. Any other answer is
// an *checks.APIError; transport failures are checks.ErrUnavailable (or the sentinel the
// HTTP client's transport already attached, e.g. ErrUnauthorized from the OAuth2 client).
func (c *call) post(ctx context.Context, url string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("camara %s: encoding request: %w: %w", c.p.name, checks.ErrInvalid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("camara %s: building request: %w: %w", c.p.name, checks.ErrInvalid, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("x-correlator", c.corr)

	start := time.Now()
	resp, err := c.p.client.Do(req)
	if err != nil {
		c.latency = time.Since(start)
		return c.transportErr(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	c.latency = time.Since(start)
	if err != nil {
		return c.transportErr(ctx, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("camara %s: %w", c.p.name, c.apiError(resp, data[:min(len(data), maxBody)]))
	}
	if len(data) > maxBody {
		return fmt.Errorf("camara %s: %w", c.p.name, &checks.APIError{HTTPStatus: resp.StatusCode, CorrelationID: c.corr, Err: checks.ErrUnavailable,
			Message: fmt.Sprintf("response body exceeds %d KiB", maxBody>>10)})
	}
	if err := json.Unmarshal(data, out); err != nil {
		return c.malformed(req.URL.Path, fmt.Sprintf("not the expected JSON (%s, %d bytes)", contentType(resp), len(data)))
	}
	return nil
}

// transportErr classifies a failure to get a response.
func (c *call) transportErr(ctx context.Context, err error) error {
	if k := checks.Kind(err); k != nil {
		return fmt.Errorf("camara %s: request failed [x-correlator %s]: %w", c.p.name, c.corr, err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("camara %s: no answer within %s [x-correlator %s]: %w: %w", c.p.name, c.p.timeout, c.corr, checks.ErrUnavailable, context.DeadlineExceeded)
	}
	return fmt.Errorf("camara %s: request failed [x-correlator %s]: %w: %w", c.p.name, c.corr, checks.ErrUnavailable, err)
}

// errorBody is CAMARA's ErrorInfo.
type errorBody struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// apiError maps a non-2xx answer to an APIError with its sentinel.
func (c *call) apiError(resp *http.Response, data []byte) *checks.APIError {
	var eb errorBody
	camaraBody := json.Unmarshal(data, &eb) == nil && eb.Code != ""
	e := &checks.APIError{HTTPStatus: resp.StatusCode, CorrelationID: c.corr}
	if camaraBody {
		e.Code, e.Message = clean(eb.Code, 64), clean(eb.Message, 200)
	} else {
		e.Message = fmt.Sprintf("%s, not a CAMARA error body (%s, %d bytes)", http.StatusText(resp.StatusCode), contentType(resp), len(data))
	}
	e.Err = kindOf(resp.StatusCode, eb.Code, camaraBody)
	if resp.StatusCode == http.StatusNotFound && !camaraBody {
		e.Message += "; check the base URL and paths"
	}
	return e
}

// kindOf maps an HTTP status and CAMARA code to a sentinel.
func kindOf(status int, code string, camaraBody bool) error {
	if status >= 400 && status <= 499 && unknownNumber(status, code) {
		return checks.ErrUnknownNumber
	}
	switch {
	case status == http.StatusNotFound:
		if camaraBody {
			return checks.ErrUnknownNumber
		}
		return checks.ErrInvalid
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return checks.ErrUnauthorized
	case status == http.StatusTooManyRequests:
		return checks.ErrRateLimited
	case status == http.StatusRequestTimeout:
		return checks.ErrUnavailable
	case status == http.StatusNotImplemented:
		return checks.ErrUnsupported
	case status >= 400 && status <= 499:
		return checks.ErrInvalid
	}
	return checks.ErrUnavailable
}

// unknownNumber reports whether a 4xx code says the carrier does not know (or does not
// serve) the number. Current CAMARA: 404 IDENTIFIER_NOT_FOUND, 422 SERVICE_NOT_APPLICABLE.
// Earlier releases: SIM_SWAP.UNKNOWN_PHONE_NUMBER, DEVICE_SWAP.UNKNOWN_PHONE_NUMBER,
// CALL_FORWARDING.UNKNOWN_PHONE_NUMBER, SIM_SWAP.PHONE_NUMBER_NOT_MANAGED_BY_OPERATOR,
// SIMSWAP.PHONE_NUMBER_NOT_IN_OPERATOR_SCOPE (404), PHONE_NUMBER_NOT_APPLICABLE,
// DEVICE_NOT_APPLICABLE and 422 NOT_SUPPORTED ("service not supported for this
// phoneNumber").
func unknownNumber(status int, code string) bool {
	switch code {
	case "IDENTIFIER_NOT_FOUND", "SERVICE_NOT_APPLICABLE", "PHONE_NUMBER_NOT_APPLICABLE", "DEVICE_NOT_APPLICABLE":
		return true
	case "NOT_SUPPORTED":
		return status == http.StatusUnprocessableEntity
	}
	for _, suffix := range []string{"UNKNOWN_PHONE_NUMBER", "PHONE_NUMBER_NOT_MANAGED_BY_OPERATOR", "PHONE_NUMBER_NOT_IN_OPERATOR_SCOPE"} {
		if strings.HasSuffix(code, "."+suffix) || code == suffix {
			return true
		}
	}
	return false
}

func contentType(resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	if ct == "" {
		return "no content type"
	}
	return clean(ct, 40)
}

// clean shortens a carrier string and drops control characters, so it is safe in logs.
func clean(s string, maxRunes int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > maxRunes {
		s = string(r[:maxRunes]) + "…"
	}
	return s
}

// correlator returns id if CAMARA's XCorrelator pattern (^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$)
// accepts it, or a fresh UUIDv4 when id is empty or would be rejected.
func correlator(id string) string {
	if id != "" && len(id) <= 256 && strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_:;./<>{}", r))
	}) < 0 {
		return id
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
