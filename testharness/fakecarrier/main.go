package fakecarrier

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
)

const scenarioHelp = `
Scenario file (YAML, strict; -print-scenario prints the built-in one):

  clients:
    - client_id: smppguard
      client_secret: sandbox-secret        # client_secret_basic / client_secret_post
      # public_key_file: client.pub.pem    # private_key_jwt (RS256 RSA or ES256 P-256 key)
      # scopes: [sim-swap:check]           # allowed; empty = every API scope
      token_ttl: 1h
  numbers:
    "+447700900001": {sim_changed_ago: 2h}           # or sim_changed_at: 2024-05-01T10:00:00Z
    "+447700900002": {forwardings: [unconditional]}  # conditional_busy, conditional_not_reachable, conditional_no_answer
    "+447700900004": {unknown: true}                 # 404 IDENTIFIER_NOT_FOUND
    "+447700900005": {device_changed_ago: 3d, roaming: true, country_code: 262, country_name: [DE]}
    "+447700900006": {latency: 300ms, monitored_days: 90}
    "+447700900007": {error: {status: 500, code: INTERNAL, times: 2, endpoints: [sim-swap]}}
    "+447700900008": {timeout: true}                 # never answers
  default: {}                                        # numbers not listed: clean
`

// Main runs `smppguard fake-carrier`: it parses args, starts a server, prints its URLs to
// stdout and serves until ctx is cancelled. -h prints the flags to stdout and returns nil.
func Main(ctx context.Context, args []string, stdout io.Writer, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	fs := flag.NewFlagSet("fake-carrier", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := Config{Logger: log}
	fs.StringVar(&cfg.Addr, "listen", "127.0.0.1:8089", "listen address host:port")
	scenario := fs.String("scenario", "", "scenario YAML `file` (default: the built-in sandbox scenario)")
	fs.StringVar(&cfg.RequirePurpose, "require-purpose", "", "token requests must carry exactly this purpose scope, e.g. `dpv:FraudPreventionAndDetection`")
	fs.StringVar(&cfg.PathPrefix, "prefix", "", "path prefix of every endpoint, e.g. `/camara`")
	fs.BoolVar(&cfg.NoAuth, "no-auth", false, "accept API calls without a token")
	var extra []Client
	fs.Func("client", "add an OAuth2 client `id:secret` with every scope and 1h tokens (repeatable)", func(v string) error {
		id, secret, ok := strings.Cut(v, ":")
		if !ok || id == "" || secret == "" {
			return errors.New("want id:secret")
		}
		extra = append(extra, Client{ClientID: id, ClientSecret: secret, TokenTTL: time.Hour})
		return nil
	})
	printScenario := fs.Bool("print-scenario", false, "print the scenario (built-in or -scenario) as YAML and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintln(stdout, "usage: smppguard fake-carrier [flags]")
			fmt.Fprintln(stdout, "\nA fake carrier API: CAMARA SIM Swap v2, Call Forwarding Signal v0.4, Device Swap v1,")
			fmt.Fprintln(stdout, "Device Roaming Status v1 and an OAuth2 client-credentials token endpoint.")
			fmt.Fprintln(stdout, "\nflags:")
			fs.PrintDefaults()
			fmt.Fprint(stdout, scenarioHelp)
			return nil
		}
		return fmt.Errorf("fake-carrier: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("fake-carrier: unexpected argument %q", fs.Arg(0))
	}
	sc := DefaultScenario()
	if *scenario != "" {
		var err error
		if sc, err = LoadScenario(*scenario); err != nil {
			return err
		}
	}
	sc.Clients = append(sc.Clients, extra...)
	if *printScenario {
		b, err := sc.yaml()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	cfg.Scenario = sc
	srv, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(stdout, srv.banner()); err != nil {
		srv.Close()
		return err
	}
	<-ctx.Done()
	return srv.Close()
}

// banner describes the running server.
func (s *Server) banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fake-carrier listening on %s\n", s.URL())
	fmt.Fprintf(&b, "  token endpoint: %s\n", s.TokenURL())
	fmt.Fprintf(&b, "  discovery:      %s\n", s.DiscoveryURL())
	ids := make([]string, 0, len(s.clients))
	for id := range s.clients {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "  client %s (%s)\n", id, strings.Join(s.clients[id].methods(), ", "))
	}
	switch {
	case s.cfg.NoAuth:
		b.WriteString("  API calls need no token (-no-auth)\n")
	case s.cfg.RequirePurpose != "":
		fmt.Fprintf(&b, "  token requests must name the purpose %s\n", s.cfg.RequirePurpose)
	}
	s.mu.Lock()
	nums := make([]string, 0, len(s.numbers))
	for k := range s.numbers {
		nums = append(nums, k)
	}
	sort.Strings(nums)
	for _, k := range nums {
		fmt.Fprintf(&b, "  %s %s\n", k, s.numbers[k].describe())
	}
	fmt.Fprintf(&b, "  other numbers: %s\n", s.def.describe())
	s.mu.Unlock()
	return b.String()
}

// describe summarises a number's state.
func (n Number) describe() string {
	var p []string
	switch {
	case n.SimChangedAgo != nil:
		p = append(p, "SIM swapped "+n.SimChangedAgo.String()+" ago")
	case n.SimChangedAt != nil:
		p = append(p, "SIM swapped at "+n.SimChangedAt.Format(time.RFC3339))
	}
	switch {
	case n.DeviceChangedAgo != nil:
		p = append(p, "device swapped "+n.DeviceChangedAgo.String()+" ago")
	case n.DeviceChangedAt != nil:
		p = append(p, "device swapped at "+n.DeviceChangedAt.Format(time.RFC3339))
	}
	if len(n.Forwardings) > 0 {
		p = append(p, "call forwarding "+strings.Join(n.Forwardings, "+"))
	}
	if n.Roaming {
		p = append(p, fmt.Sprintf("roaming (MCC %d %s)", n.CountryCode, strings.Join(n.CountryName, ",")))
	}
	if n.MonitoredDays > 0 {
		p = append(p, fmt.Sprintf("monitored %d days", n.MonitoredDays))
	}
	if n.Latency > 0 {
		p = append(p, "latency "+n.Latency.String())
	}
	if e := n.Error; e != nil {
		t := "always"
		if e.Times > 0 {
			t = fmt.Sprintf("%d times", e.Times)
		}
		p = append(p, fmt.Sprintf("error %d %s %s", e.Status, e.Code, t))
	}
	if n.Unknown {
		p = append(p, "unknown to the carrier")
	}
	if n.Timeout {
		p = append(p, "never answers")
	}
	if len(p) == 0 {
		return "clean"
	}
	return strings.Join(p, ", ")
}
