package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smppguard/smppguard/cmd/smppguard/admin"
	"github.com/smppguard/smppguard/config"
	"github.com/smppguard/smppguard/interceptor"
	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/smpp/relay"
	"github.com/smppguard/smppguard/smpp/relay/boltstore"
	"github.com/smppguard/smppguard/testharness/fakecarrier"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
	"github.com/smppguard/smppguard/testharness/loadgen"
)

var errUsage = errors.New("usage")

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("smppguard "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return errUsage
	}
	return nil
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

func checkConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check-config", stderr)
	path := fs.String("c", "", "config file to validate (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "smppguard check-config: -c FILE is required")
		return errUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	// The providers' files (numbers, private keys) are parsed as serve parses them.
	if err := validateProviders(cfg); err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	fmt.Fprintf(stdout, "%s: OK (%d accounts, %d upstreams, %d routes)\n", *path, len(cfg.Accounts), len(cfg.Upstreams), len(cfg.Routes))
	return nil
}

func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "", "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	path := fs.String("c", "", "config file (default: the embedded sandbox config)")
	printCfg := fs.Bool("print-config", false, "print the embedded default config and exit")
	logFormat := fs.String("log-format", "", "override log.format: json or console")
	logLevel := fs.String("log-level", "", "override log.level: debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until exit")
	gcMinHeap := fs.Int("gc-min-heap", 64, "MiB: let the heap grow to this before collecting (0: plain GOGC; GOGC or GOMEMLIMIT in the environment switch it off)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *gcMinHeap < 0 {
		return fmt.Errorf("serve: -gc-min-heap %d: must be 0 (off) or a size in MiB", *gcMinHeap)
	}
	if *gcMinHeap > 0 && os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		defer startGCFloor(uint64(*gcMinHeap) << 20)()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if *printCfg {
		_, err := stdout.Write(config.DefaultYAML())
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if *logFormat != "" {
		cfg.Log.Format = *logFormat
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	log, err := newConfiguredLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()

	// runCtx outlives the signal: on the first signal (ctx done) smppguard drains while the
	// relay, its links and the sandbox keep running, and only then stops them.
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()

	var fake *fakesmsc.Server
	if fc := cfg.Sandbox.FakeSMSC; fc != nil {
		fake, err = fakesmsc.Start(runCtx, fakesmsc.Config{
			Addr: fc.Listen, Accounts: map[string]string{fc.SystemID: fc.Password},
			MessageIDFormat: fc.MessageIDFormat, DLRDelay: fc.DLRDelay.D(), NoRecord: true,
			Logger: log.Named("fake-smsc"),
		})
		if err != nil {
			return fmt.Errorf("sandbox fake SMSC: %w", err)
		}
		defer fake.Close()
	}
	var carrier *fakecarrier.Server
	if fc := cfg.Sandbox.FakeCarrier; fc != nil {
		carrier, err = startSandboxCarrier(runCtx, fc, log.Named("fake-carrier"))
		if err != nil {
			return fmt.Errorf("sandbox fake carrier: %w", err)
		}
		defer carrier.Close()
	}

	a := &app{path: *path, log: log, hook: &otpHook{log: log.Named("otp")}, esmeTotals: newESMETotals()}
	reg := prometheus.NewRegistry()
	if cfg.Admin.Listen != "" {
		a.metrics = newHotMetrics(reg)
	}
	a.cfg.Store(cfg)
	if cfg.Admin.Listen != "" {
		a.decisions = admin.NewDecisionLog(cfg.Admin.Decisions)
	}
	if cfg.OTP.AuditFile != "" {
		if a.audit, err = interceptor.OpenRotatingAudit(cfg.OTP.AuditFile, cfg.OTP.AuditMaxSizeMB, cfg.OTP.AuditMaxFiles); err != nil {
			return err
		}
		defer a.audit.Close()
	}
	st, err := a.buildOTPState(runCtx, cfg, nil)
	if err != nil {
		return err
	}
	a.hook.state.Store(st)
	defer func() { a.hook.state.Load().ic.Close() }()
	rc, err := relayConfig(cfg, a.hook, a.metrics, log.Named("relay"))
	if err != nil {
		return err
	}
	if cfg.Relay.StorePath != "" {
		st, err := boltstore.Open(cfg.Relay.StorePath, boltstore.Options{Logger: log.Named("relay"), Limits: func(acc string) (int, time.Duration) {
			if ac := a.cfg.Load().Account(acc); ac != nil {
				return ac.QueueMax, ac.QueueTTL.D()
			}
			return 0, 0
		}})
		if err != nil {
			return err
		}
		corr := st.Correlations()
		defer st.Close()
		defer corr.Close() // runs before st.Close: flushes the last correlations
		rc.Store, rc.Correlations = st, corr
	}
	r, err := relay.New(rc)
	if err != nil {
		return err
	}
	a.hook.relay, a.relay = r, r
	r.Start(runCtx)
	esmeSessions := sessionConfig(cfg, 0, log.Named("session"))
	esmeSessions.Global = &smpp.InFlightLimit{Max: int64(cfg.Relay.MaxInFlight)}
	if a.metrics != nil {
		a.metrics.watchInFlight(reg, esmeSessions.Global)
	}
	if a.metrics != nil {
		esmeSessions.Counts = &a.metrics.esme
	}
	esmeSessions.OnClose = func(s *smpp.Session, _ error) { a.esmeTotals.sessionClosed(s) }
	srv := r.Server(esmeSessions, cfg.Listen.MaxConns)
	a.esmeTotals.wrap(srv)
	srv.Session.ResponseTimeout = cfg.Relay.DeliverTimeout.D()

	ln, err := (&net.ListenConfig{}).Listen(runCtx, "tcp", cfg.Listen.SMPP)
	if err != nil {
		r.Close(context.Background())
		return fmt.Errorf("listen %s: %w", cfg.Listen.SMPP, err)
	}
	if lt := cfg.Listen.TLS; lt.CertFile != "" {
		tc, err := smpp.ServerTLSConfig(smpp.TLSFiles{CertFile: lt.CertFile, KeyFile: lt.KeyFile, CAFile: lt.CAFile, ClientAuth: lt.ClientAuth,
			Logger: log.Named("session")})
		if err != nil {
			ln.Close()
			r.Close(context.Background())
			return fmt.Errorf("listen TLS: %w", err)
		}
		ln = tls.NewListener(ln, tc)
	}
	// SIGHUP reloads the configuration file. Caught before the banner says we listen, so
	// that a SIGHUP sent as soon as it is printed reloads rather than kills.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	printBanner(stdout, cfg, *path == "", ln.Addr().String(), fake, carrier)
	log.Info("smppguard listening", zap.String("smpp", ln.Addr().String()))
	if cfg.Admin.Listen != "" {
		adm, err := admin.New(admin.Config{Addr: cfg.Admin.Listen, Token: cfg.Admin.Token, Source: a, Decisions: a.decisions,
			Registry: reg, Logger: log.Named("admin")})
		if err != nil {
			return err
		}
		addr, err := adm.Start(runCtx)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		fmt.Fprintf(stdout, "  admin API: http://%s (/healthz /readyz /metrics /api/v1/...)\n", addr)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			adm.Shutdown(sctx)
		}()
	}
	go func() {
		for {
			select {
			case <-hup:
				a.reload(runCtx)
			case <-runCtx.Done():
				return
			}
		}
	}()

	// Serve accepts until the first signal; the sessions it started go on.
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, ln) }()
	select {
	case <-ctx.Done():
		<-serveErr
	case err = <-serveErr:
	}
	drain(r, cfg.Relay.DrainTimeout.D(), log)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	srv.Shutdown(sctx) // unbind every ESME
	r.Close(sctx)      // unbind every upstream bind
	log.Info("smppguard stopped")
	return err
}

// drain stops new work and waits, up to timeout, for the requests and deliveries in flight.
func drain(r *relay.Relay, timeout time.Duration, log *zap.Logger) {
	r.Drain()
	req, dl := r.InFlight()
	log.Info("smppguard draining: new binds refused, new requests throttled",
		zap.Int("requests_in_flight", req), zap.Int("deliveries_in_flight", dl), zap.Duration("drain_timeout", timeout))
	deadline := time.Now().Add(timeout)
	for req+dl > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		req, dl = r.InFlight()
	}
	if req+dl > 0 {
		log.Warn("smppguard drain timeout: unbinding with work in flight", zap.Int("requests_in_flight", req), zap.Int("deliveries_in_flight", dl))
	}
}

// printBanner says where smppguard listens and which accounts to bind with. Passwords are
// printed only for the embedded sandbox config (embedded is true), whose passwords are
// public; for a real config stdout ends up in a journal, so accounts are listed without them.
func printBanner(w io.Writer, cfg *config.Config, embedded bool, addr string, fake *fakesmsc.Server, carrier *fakecarrier.Server) {
	scheme := ""
	if cfg.Listen.TLS.CertFile != "" {
		scheme = " (TLS)"
	}
	fmt.Fprintf(w, "smppguard: SMPP 3.4 proxy listening on %s%s\n", addr, scheme)
	if fake != nil {
		fmt.Fprintf(w, "  sandbox: in-process fake SMSC on %s (receipts after %s)\n", fake.Addr(), cfg.Sandbox.FakeSMSC.DLRDelay.D())
	}
	if carrier != nil {
		fmt.Fprintf(w, "  sandbox: in-process fake carrier API (CAMARA) on %s\n", carrier.URL())
		fmt.Fprintln(w, "    +447700900001 SIM swapped 2h ago, +447700900002 call forwarding active, +447700900003 clean")
	}
	if embedded {
		fmt.Fprintln(w, "  bind with:")
	} else {
		fmt.Fprintln(w, "  accounts:")
	}
	for _, a := range cfg.Accounts {
		switch {
		case a.Mode == config.ModePassthrough:
			fmt.Fprintf(w, "    system_id=%-10s pass-through: your bind is forwarded to upstream %q\n", a.SystemID, a.Upstream)
		case embedded:
			fmt.Fprintf(w, "    system_id=%-10s password=%s  pooled, route %q\n", a.SystemID, a.Password, a.Route)
		default:
			fmt.Fprintf(w, "    system_id=%-10s pooled, route %q\n", a.SystemID, a.Route)
		}
	}
	if b := cfg.Account("bank"); b != nil && embedded {
		fmt.Fprintln(w, "  try, in another terminal:")
		if carrier != nil && b.Policy != "" {
			fmt.Fprintf(w, "    go run ./cmd/smppguard send -addr %s -dst 447700900003   # clean number: OTP allowed\n", addr)
			fmt.Fprintf(w, "    go run ./cmd/smppguard send -addr %s -dst 447700900001   # SIM swapped: rejected\n", addr)
			fmt.Fprintf(w, "    go run ./cmd/smppguard send -addr %s -dst 447700900002   # diverted: rerouted to the voice route\n", addr)
		}
		fmt.Fprintf(w, "    go run ./cmd/smppguard load -addr %s -system-id bank -password %s -n 1000 -dlr\n", addr, b.Password)
	}
	fmt.Fprintln(w, "  stop with Ctrl-C")
}

// sessionConfig maps the session defaults; window overrides the default window when > 0.
func sessionConfig(cfg *config.Config, window int, log *zap.Logger) smpp.Config {
	s := cfg.Session
	if window <= 0 {
		window = s.Window
	}
	eli := s.EnquireLinkInterval.D()
	if eli == 0 {
		eli = -1 // disabled
	}
	sc := smpp.Config{
		Window: window, MaxPDUSize: s.MaxPDUSize, EnquireLinkInterval: eli, InactivityTimeout: s.InactivityTimeout.D(),
		ResponseTimeout: s.ResponseTimeout.D(), BindTimeout: s.BindTimeout.D(), WriteTimeout: s.WriteTimeout.D(), Logger: log,
	}
	if cfg.Log.PDUDebug {
		sc.Trace = pduTracer(log, cfg.Log.PDUSample)
	}
	return sc
}

var bindIDs = map[string]smpp.CommandID{
	config.BindTransmitter: smpp.BindTransmitter, config.BindReceiver: smpp.BindReceiver, config.BindTransceiver: smpp.BindTransceiver,
}

// relayConfig maps the config tree onto the relay's own types.
func relayConfig(cfg *config.Config, hook *otpHook, hm *hotMetrics, log *zap.Logger) (relay.Config, error) {
	rc := relay.Config{
		Routes:         map[string]string{},
		DLRMatchWait:   cfg.Relay.DLRMatchWait.D(),
		CorrelationTTL: cfg.Relay.DLRCorrelationTTL.D(),
		CorrelationMax: cfg.Relay.DLRCorrelationMax,
		LinkWait:       cfg.Relay.LinkWait.D(),
		DrainTimeout:   cfg.Relay.DrainTimeout.D(), // a reload drains a removed account's sessions this long at most
		Lockout: relay.Lockout{Failures: cfg.Listen.Lockout.Failures, Window: cfg.Listen.Lockout.Window.D(),
			Duration: cfg.Listen.Lockout.Duration.D()},
		BindRate: relay.BindRate{PerSecond: cfg.Listen.BindRate.PerSecond, Burst: cfg.Listen.BindRate.Burst},
		Logger:   log,
	}
	rc.Hook = hook
	if hm != nil {
		rc.ObserveLatency = hm.observeRelay
	}
	for _, u := range cfg.Upstreams {
		up := relay.Upstream{
			Name: u.Name, Addr: u.Address, Session: sessionConfig(cfg, u.Window, log.Named("session")),
			Bind: smpp.BindParams{SystemID: u.SystemID, Password: u.Password, SystemType: u.SystemType,
				AddrTON: byte(u.AddrTON), AddrNPI: byte(u.AddrNPI), AddressRange: u.AddressRange},
			Binds: u.Binds, TPS: u.TPS, ReconnectMin: u.ReconnectMin.D(), ReconnectMax: u.ReconnectMax.D(),
		}
		switch u.BindType {
		case config.BindTxRx:
			up.BindType, up.RxBinds = smpp.BindTransmitter, u.Binds
		default:
			up.BindType = bindIDs[u.BindType]
		}
		if hm != nil {
			up.Session.Counts = &hm.upstream
			up.Session.OnClose = hm.upstreamClosed(u.Name)
		}
		if t := u.TLS; t.Enabled {
			tc, err := smpp.ClientTLSConfig(smpp.TLSFiles{CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile, ServerName: t.ServerName,
				InsecureSkipVerify: t.InsecureSkipVerify, Logger: log}, u.Address)
			if err != nil {
				return relay.Config{}, fmt.Errorf("upstream %q TLS: %w", u.Name, err)
			}
			up.TLS, up.TLSKey = tc, fmt.Sprintf("%+v", t)
		}
		rc.Upstreams = append(rc.Upstreams, up)
	}
	for _, rt := range cfg.Routes {
		rc.Routes[rt.Name] = rt.Upstream
	}
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		ra := relay.Account{
			SystemID: a.SystemID, Password: a.Password, Upstream: a.Upstream, MaxBinds: a.MaxBinds,
			Allow: a.Allows, QueueMax: a.QueueMax, QueueTTL: a.QueueTTL.D(), TPS: a.TPS,
		}
		if a.Mode == config.ModePassthrough {
			ra.Mode = relay.PassThrough
		} else {
			ra.Route = a.Route
			for _, pr := range a.PrefixRoutes {
				ra.PrefixRoutes = append(ra.PrefixRoutes, relay.PrefixRoute{Prefix: pr.Prefix, Route: pr.Route})
			}
		}
		for _, bt := range a.BindTypes {
			ra.BindTypes = append(ra.BindTypes, bindIDs[bt])
		}
		rc.Accounts = append(rc.Accounts, ra)
	}
	for _, m := range cfg.MORules {
		rc.MORules = append(rc.MORules, relay.MORule{DestPrefix: m.DestinationPrefix, Upstream: m.Upstream, Account: m.Account})
	}
	return rc, nil
}

func fakeSMSC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	log, err := newLogger("info", "console", stderr)
	if err != nil {
		return err
	}
	return fakesmsc.Main(ctx, args, stdout, log)
}

func load(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	log, err := newLogger("warn", "console", stderr)
	if err != nil {
		return err
	}
	return loadgen.Main(ctx, args, stdout, log)
}

func startSandboxCarrier(ctx context.Context, fc *config.FakeCarrier, log *zap.Logger) (*fakecarrier.Server, error) {
	sc := fakecarrier.DefaultScenario()
	if fc.Scenario != "" {
		var err error
		if sc, err = fakecarrier.LoadScenario(fc.Scenario); err != nil {
			return nil, err
		}
	}
	return fakecarrier.Start(ctx, fakecarrier.Config{Addr: fc.Listen, Scenario: sc, RequirePurpose: fc.RequirePurpose, Logger: log})
}
