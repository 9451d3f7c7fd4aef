package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretsFromEnvAndBcrypt(t *testing.T) {
	t.Setenv("SG_TEST_PW", "envpw")
	base := `upstreams:
  - {name: carrier, address: 127.0.0.1:2776, system_id: p, password: "${SG_TEST_PW}"}
routes:
  - {name: default, upstream: carrier}
accounts:
  - {system_id: bank, password: "%s", route: default}
listen:
  lockout: {failures: 5, window: 1m, duration: 10m}
`
	hash := "$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z6X3ZrH1oMZ5QDbQKxXz6c6a"
	c, err := Parse("s.yaml", []byte(strings.Replace(base, "%s", hash, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstreams[0].Password != "envpw" || c.Accounts[0].Password != hash || c.Listen.Lockout.Failures != 5 {
		t.Fatalf("got %+v %+v %+v", c.Upstreams[0], c.Accounts[0], c.Listen.Lockout)
	}
	_, err = Parse("s.yaml", []byte(strings.Replace(base, "%s", "${SG_TEST_UNSET_VAR}", 1)))
	if err == nil || !strings.Contains(err.Error(), "s.yaml:6: accounts[0].password: environment variable SG_TEST_UNSET_VAR is not set") {
		t.Fatalf("unset variable: %v", err)
	}
	_, err = Parse("s.yaml", []byte(strings.Replace(base, "%s", "way-too-long-password", 1)))
	if err == nil || !strings.Contains(err.Error(), "at most 8") {
		t.Fatalf("long plain password: %v", err)
	}
}

// A config file keeps the durable store next to itself unless store_path says otherwise.
func TestStorePathDefault(t *testing.T) {
	dir := t.TempDir()
	base := "upstreams:\n  - {name: carrier, address: 127.0.0.1:2776, system_id: p, password: s}\nroutes:\n  - {name: default, upstream: carrier}\n"
	for _, tc := range []struct{ extra, want string }{
		{"", filepath.Join(dir, DefaultStoreFile)},
		{"relay:\n  store_path: memory\n", ""},
		{"relay:\n  store_path: /var/lib/x.db\n", "/var/lib/x.db"},
	} {
		path := filepath.Join(dir, "c.yaml")
		os.WriteFile(path, []byte(base+tc.extra), 0o600)
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.Relay.StorePath != tc.want {
			t.Errorf("%q: store_path %q, want %q", tc.extra, c.Relay.StorePath, tc.want)
		}
	}
	if Default().Relay.StorePath != "" {
		t.Error("the embedded sandbox should keep its queue in memory")
	}
}
