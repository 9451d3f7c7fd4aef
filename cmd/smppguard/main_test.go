package main

import (
	"context"
	"strings"
	"testing"
)

// A command's error is prefixed with "smppguard <command>: " exactly once, including for
// the bundled tools whose entry points already name themselves.
func TestErrorPrefixedOnce(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"load", "-bogus"}, "smppguard load: flag provided but not defined: -bogus"},
		{[]string{"load", "extra"}, `smppguard load: unexpected arguments ["extra"]`},
		{[]string{"fake-smsc", "-bogus"}, "smppguard fake-smsc: flag provided but not defined: -bogus"},
		{[]string{"fake-carrier", "-bogus"}, "smppguard fake-carrier: flag provided but not defined: -bogus"},
		{[]string{"check-config", "-c", "/nonexistent/smppguard.yaml"}, "smppguard check-config: "},
	} {
		var stdout, stderr strings.Builder
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != 1 {
			t.Fatalf("%v: exit %d, want 1\n%s", tc.args, code, stderr.String())
		}
		var last string
		for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			if strings.HasPrefix(l, "smppguard ") {
				last = l
			}
		}
		if !strings.HasPrefix(last, tc.want) || strings.Count(last, "smppguard ") != 1 || strings.Count(last, tc.args[0]+":") != 1 {
			t.Fatalf("%v: error line %q, want %q once", tc.args, last, tc.want)
		}
	}
}
