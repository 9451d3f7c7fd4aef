package main

import (
	"strings"
	"testing"

	"github.com/smppguard/smppguard/config"
)

// The banner shows passwords for the embedded sandbox only: a real config's account
// passwords (plain or bcrypt) must not reach stdout, which ends up in the journal.
func TestBannerPasswordsOnlyForSandbox(t *testing.T) {
	var sb strings.Builder
	printBanner(&sb, config.Default(), true, "127.0.0.1:2775", nil, nil)
	if out := sb.String(); !strings.Contains(out, "password=bankpw") || !strings.Contains(out, "-password bankpw") {
		t.Fatalf("sandbox banner lacks the sandbox credentials:\n%s", out)
	}

	cfg, err := config.Load(writeConfig(t, "127.0.0.1:2776"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Accounts[0].Password = "s3cret-Pa55"
	sb.Reset()
	printBanner(&sb, cfg, false, "127.0.0.1:2775", nil, nil)
	out := sb.String()
	if strings.Contains(out, "s3cret-Pa55") || strings.Contains(out, "password") {
		t.Fatalf("banner of a real config shows a password:\n%s", out)
	}
	for _, want := range []string{"system_id=bank", "system_id=pt", "listening on 127.0.0.1:2775"} {
		if !strings.Contains(out, want) {
			t.Fatalf("banner lacks %q:\n%s", want, out)
		}
	}
}
