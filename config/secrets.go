package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Lockout: after Failures failed binds within Window from one source address, or for one
// system_id, binds from it (or for it) are refused for Duration. Failures 0 disables it.
type Lockout struct {
	Failures int      `yaml:"failures"`
	Window   Duration `yaml:"window"`
	Duration Duration `yaml:"duration"`
}

// IsBcrypt reports whether a configured password is a bcrypt hash ("$2a$…", "$2b$…", "$2y$…").
// Accounts may store their passwords this way (generate one with htpasswd -bnBC 10 "" pw).
func IsBcrypt(s string) bool {
	return len(s) == 60 && (strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$"))
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandSecrets replaces ${NAME} references in the secret fields (account and upstream
// passwords, provider client secrets) with the environment's values, so secrets can stay
// out of the file. An unset variable is an error naming the line.
func expandSecrets(c *Config, file string, d *doc, lookup func(string) (string, bool)) []error {
	var errs []error
	expand := func(path string, s *string) {
		if !strings.Contains(*s, "${") {
			return
		}
		*s = envRef.ReplaceAllStringFunc(*s, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := lookup(name)
			if !ok {
				errs = append(errs, &Error{File: file, Line: d.line(path), Path: path,
					Msg: fmt.Sprintf("environment variable %s is not set; export it or write the value", name)})
			}
			return v
		})
	}
	for i := range c.Accounts {
		expand(fmt.Sprintf("accounts[%d].password", i), &c.Accounts[i].Password)
	}
	for i := range c.Upstreams {
		expand(fmt.Sprintf("upstreams[%d].password", i), &c.Upstreams[i].Password)
	}
	expand("admin.token", &c.Admin.Token)
	for i := range c.Providers {
		expand(fmt.Sprintf("providers[%d].auth.client_secret", i), &c.Providers[i].Auth.ClientSecret)
	}
	return errs
}
