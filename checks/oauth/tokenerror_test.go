package oauth

import (
	"errors"
	"fmt"
	"testing"

	"github.com/smppguard/smppguard/checks"
)

func TestTokenErrorIsUnauthorized(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   bool
	}{{400, true}, {401, true}, {500, false}, {0, false}} {
		err := fmt.Errorf("camara: %w", &TokenError{StatusCode: tc.status, Code: "invalid_client"})
		if got := errors.Is(err, checks.ErrUnauthorized); got != tc.want {
			t.Errorf("status %d: errors.Is(ErrUnauthorized) = %v, want %v", tc.status, got, tc.want)
		}
	}
}
