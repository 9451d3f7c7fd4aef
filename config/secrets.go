package config

import (
	"fmt"
	"os"
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

// BindRate is a token bucket per source address for bind attempts.
type BindRate struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
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

// validateTLS checks the TLS sections: files that exist, and settings that fit together.
func (v *validator) tls(c *Config) {
	file := func(path, name string) {
		if name == "" {
			return
		}
		if _, err := os.Stat(name); err != nil {
			v.add(path, "%v; check the path", err)
		}
	}
	lt := c.Listen.TLS
	if lt.CertFile != "" || lt.KeyFile != "" || lt.CAFile != "" || lt.ClientAuth {
		if lt.CertFile == "" || lt.KeyFile == "" {
			v.add("listen.tls", "cert_file and key_file are both required to serve TLS")
		}
		if lt.ClientAuth && lt.CAFile == "" {
			v.add("listen.tls.ca_file", "required with client_auth: name the CA bundle client certificates are verified against")
		}
		file("listen.tls.cert_file", lt.CertFile)
		file("listen.tls.key_file", lt.KeyFile)
		file("listen.tls.ca_file", lt.CAFile)
	}
	for i, u := range c.Upstreams {
		p := fmt.Sprintf("upstreams[%d].tls", i)
		t := u.TLS
		if !t.Enabled {
			if t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" || t.ServerName != "" || t.InsecureSkipVerify {
				v.add(p+".enabled", "TLS settings are given but enabled is false; set enabled: true or remove them")
			}
			continue
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			v.add(p, "cert_file and key_file go together (a client certificate needs both)")
		}
		file(p+".cert_file", t.CertFile)
		file(p+".key_file", t.KeyFile)
		file(p+".ca_file", t.CAFile)
	}
}
