package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/checks"
	"github.com/smppguard/smppguard/checks/camara"
	"github.com/smppguard/smppguard/checks/oauth"
	"github.com/smppguard/smppguard/checks/static"
	"github.com/smppguard/smppguard/config"
	"github.com/smppguard/smppguard/interceptor"
	"github.com/smppguard/smppguard/smpp/relay"
	"github.com/smppguard/smppguard/testharness/fakecarrier"
)

// providerSet is what buildProviders built: per provider name, its guard, the configuration
// and the fingerprint of the files it was built from (what a reload compares).
type providerSet struct {
	provs  map[string]checks.Provider
	guards map[string]*checks.Guard
	cfgs   map[string]config.Provider
	fps    map[string]string
	built  []string // names built anew (not reused from prev), in config order
}

// buildProviders creates each configured provider once, wrapped in a checks.Guard (cache per
// signal, singleflight, concurrency bound, breaker). A provider whose configuration and
// files (the static provider's numbers, the private_key_jwt key: compared by content) are
// unchanged from prev keeps its guard, cache and token (reload); any other is built anew, and
// an error building one fails the whole set.
func buildProviders(ctx context.Context, cfg *config.Config, prev *otpState, log *zap.Logger) (*providerSet, error) {
	ps := &providerSet{provs: map[string]checks.Provider{}, guards: map[string]*checks.Guard{}, cfgs: map[string]config.Provider{}, fps: map[string]string{}}
	for i := range cfg.Providers {
		pc := &cfg.Providers[i]
		// Hashed before the provider reads its files: an edit in between makes the next
		// reload see a difference and build it again.
		fp := filesFingerprint(providerFiles(pc))
		ps.cfgs[pc.Name], ps.fps[pc.Name] = *pc, fp
		if prev != nil {
			if g, ok := prev.guards[pc.Name]; ok && prev.fps[pc.Name] == fp && reflect.DeepEqual(prev.provs[pc.Name], *pc) {
				ps.provs[pc.Name], ps.guards[pc.Name] = g, g
				continue
			}
		}
		p, err := newProvider(ctx, pc, log)
		if err != nil {
			return nil, fmt.Errorf("provider %q: %w", pc.Name, err)
		}
		g := checks.NewGuard(p, checks.GuardConfig{
			TTL: map[checks.Signal]time.Duration{
				checks.SimSwap: pc.CacheTTL.SimSwap.D(), checks.CallForwarding: pc.CacheTTL.CallForwarding.D(),
				checks.DeviceSwap: pc.CacheTTL.DeviceSwap.D(), checks.Roaming: pc.CacheTTL.Roaming.D(),
			},
			ErrorTTL: pc.ErrorTTL.D(), MaxConcurrent: pc.MaxConcurrent, Timeout: pc.Timeout.D(),
			BreakerFailures: pc.BreakerFailures, BreakerOpenFor: pc.BreakerOpenFor.D(),
		}, log.Named("checks").With(zap.String("provider", pc.Name)))
		ps.provs[pc.Name], ps.guards[pc.Name] = g, g
		ps.built = append(ps.built, pc.Name)
	}
	return ps, nil
}

// providerFiles lists the files a provider reads when it is built.
func providerFiles(pc *config.Provider) []string {
	switch pc.Type {
	case config.ProviderStatic:
		return []string{pc.File}
	case config.ProviderCAMARA:
		if !pc.Auth.None && pc.Auth.Method == oauth.MethodPrivateKeyJWT && pc.Auth.PrivateKeyFile != "" {
			return []string{pc.Auth.PrivateKeyFile}
		}
	}
	return nil
}

// filesFingerprint is a hash of the files' contents. A file that cannot be read contributes
// its error, so it differs from any content read before and the provider is built again (and
// that build reports the error).
func filesFingerprint(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	h := sha256.New()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			data = []byte("unreadable: " + err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// newProvider builds one provider (not guarded). It reads the provider's files and, for a
// CAMARA provider with a discovery URL, fetches the discovery document.
func newProvider(ctx context.Context, pc *config.Provider, log *zap.Logger) (checks.Provider, error) {
	switch pc.Type {
	case config.ProviderCAMARA:
		cc := camaraConfig(pc)
		// One transport per provider, with as many kept-alive connections as look-ups may
		// run at once: the default (2 idle per host) would open and close a connection for
		// most calls under load.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = pc.MaxConcurrent
		tr.MaxIdleConnsPerHost = pc.MaxConcurrent
		tr.MaxConnsPerHost = pc.MaxConcurrent
		cc.HTTPClient = &http.Client{Transport: tr}
		if !pc.Auth.None {
			oc, err := oauth.New(ctx, oauthConfig(pc, tr), log.Named("oauth").With(zap.String("provider", pc.Name)))
			if err != nil {
				return nil, err
			}
			cc.HTTPClient = oc.HTTPClient()
		}
		return camara.New(cc)
	case config.ProviderStatic:
		return static.Load(pc.File, time.Now)
	}
	return nil, fmt.Errorf("unknown type %q", pc.Type)
}

// validateProviders checks every provider as serve would build it — the static provider's
// file parsed, the CAMARA settings and the OAuth2 settings checked, the private_key_jwt key
// read and parsed — without any network call.
func validateProviders(cfg *config.Config) error {
	var errs []error
	for i := range cfg.Providers {
		pc := &cfg.Providers[i]
		var err error
		switch pc.Type {
		case config.ProviderCAMARA:
			if _, err = camara.New(camaraConfig(pc)); err == nil && !pc.Auth.None {
				err = oauth.Validate(oauthConfig(pc, nil))
			}
		case config.ProviderStatic:
			_, err = static.Load(pc.File, time.Now)
		default:
			err = fmt.Errorf("unknown type %q", pc.Type)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("provider %q: %w", pc.Name, err))
		}
	}
	return errors.Join(errs...)
}

// camaraConfig maps a CAMARA provider's settings (HTTPClient left to the caller).
func camaraConfig(pc *config.Provider) camara.Config {
	return camara.Config{
		Name: pc.Name, BaseURL: pc.BaseURL, SimSwapMode: pc.SimSwapMode, ForwardingMode: pc.ForwardingMode,
		PhoneField: pc.PhoneField, Timeout: pc.Timeout.D(),
		Paths: camara.Paths{
			SimSwapCheck: pc.Paths.SimSwapCheck, SimSwapRetrieveDate: pc.Paths.SimSwapRetrieveDate,
			CallForwardingUnconditional: pc.Paths.CallForwardingUnconditional, CallForwardingList: pc.Paths.CallForwardingList,
			DeviceSwapCheck: pc.Paths.DeviceSwapCheck, DeviceSwapRetrieveDate: pc.Paths.DeviceSwapRetrieveDate, RoamingRetrieve: pc.Paths.RoamingRetrieve,
		},
	}
}

// oauthConfig maps a CAMARA provider's auth settings; base is the transport for token calls.
func oauthConfig(pc *config.Provider, base http.RoundTripper) oauth.Config {
	a := pc.Auth
	return oauth.Config{
		TokenURL: a.TokenURL, DiscoveryURL: a.DiscoveryURL, ClientID: a.ClientID, AuthMethod: a.Method,
		ClientSecret: a.ClientSecret, PrivateKeyFile: a.PrivateKeyFile, SigningAlg: a.SigningAlg, KeyID: a.KeyID,
		Scopes: a.Scopes, Purpose: a.Purpose, Base: base,
	}
}

func outcome(o config.Outcome) interceptor.Outcome {
	return interceptor.Outcome{Action: interceptor.Action(o.Action), Status: o.StatusCode(), Route: o.Route, ReceiptStat: o.ReceiptStat, ReceiptErr: o.ReceiptErr}
}

// buildPolicies compiles each policy once and maps accounts to them; routePolicies maps the
// routes that override them.
func buildPolicies(cfg *config.Config) (map[string]*interceptor.Policy, error) {
	byAccount, _, err := buildAllPolicies(cfg)
	return byAccount, err
}

func buildAllPolicies(cfg *config.Config) (byAccount, byRoute map[string]*interceptor.Policy, err error) {
	byName := map[string]*interceptor.Policy{}
	for _, pc := range cfg.Policies {
		rules := interceptor.DefaultRules()
		if len(pc.Rules) > 0 {
			rules = nil
			for _, r := range pc.Rules {
				rules = append(rules, interceptor.RuleConfig{Name: r.Name, AllTraffic: r.AllTraffic, TLVTag: uint16(r.TLVTag), TLVValue: r.TLVValue,
					ServiceType: r.ServiceType, SourcePattern: r.SourcePattern, TextPattern: r.TextPattern,
					CodePattern: r.CodePattern, TextExclude: r.TextExclude})
			}
		}
		rs, err := interceptor.CompileRules(rules)
		if err != nil {
			return nil, nil, fmt.Errorf("policy %q: %w", pc.Name, err)
		}
		p := &interceptor.Policy{
			Name: pc.Name, Rules: rs, Shadow: pc.Shadow, Deadline: pc.Deadline.D(), OnSaturated: interceptor.Saturation(pc.OnSaturated),
			DefaultCC: pc.DefaultCountryCode, Decode: interceptor.DecodeOptions{GSMPacked: pc.GSMPacked},
		}
		for _, c := range pc.Checks {
			p.Checks = append(p.Checks, interceptor.CheckPolicy{Signal: checks.Signal(c.Signal), Provider: c.Provider, MaxAge: c.MaxAge.D(),
				OnRisk: outcome(c.OnRisk), OnError: outcome(c.OnError), OnUnknown: outcome(c.OnUnknown)})
		}
		byName[pc.Name] = p
	}
	byAccount, byRoute = map[string]*interceptor.Policy{}, map[string]*interceptor.Policy{}
	for _, a := range cfg.Accounts {
		if a.Policy != "" {
			byAccount[a.SystemID] = byName[a.Policy]
		}
	}
	for _, rt := range cfg.Routes {
		if rt.Policy != "" {
			byRoute[rt.Name] = byName[rt.Policy]
		}
	}
	return byAccount, byRoute, nil
}

// otpHook adapts the interceptor to the relay's submit hook; neither package imports the
// other. Its state (interceptor and policies) is swapped whole by a reload.
type otpHook struct {
	state atomic.Pointer[otpState]
	relay *relay.Relay
	log   *zap.Logger
	ids   atomic.Uint64
	calls sync.Pool // *otpCall, reused after decisions made at once
}

// otpState is one configuration's interceptor and account policies.
type otpState struct {
	ic        *interceptor.Interceptor
	pols      map[string]*interceptor.Policy
	routePols map[string]*interceptor.Policy
	guards    map[string]*checks.Guard
	provs     map[string]config.Provider // the configuration each guard was built from
	fps       map[string]string          // the fingerprint of the files each guard's provider read
	rebuilt   []string                   // providers built for this state rather than kept from the previous one
}

// Intercepts implements relay.Interests: submits with neither an account nor a route policy
// skip the hook.
func (h *otpHook) Intercepts(account, route string) bool {
	st := h.state.Load()
	return st != nil && (st.pols[account] != nil || (route != "" && st.routePols[route] != nil))
}

// otpCall is one submit's message and the resolver that answers its request, built once per
// otpCall. A call decided at once whose verdict keeps no reference to the message goes back
// to otpHook.calls for the next submit, so such a submit allocates neither.
type otpCall struct {
	m       interceptor.Message
	req     *relay.SubmitRequest
	resolve interceptor.Resolver
}

// call takes an otpCall from the pool, or makes one.
func (h *otpHook) call() *otpCall {
	if c, _ := h.calls.Get().(*otpCall); c != nil {
		return c
	}
	c := &otpCall{}
	c.resolve = func(m *interceptor.Message) { c.req.Resolve(h.verdict(m)) }
	return c
}

// Submit leaves Message.Received to the interceptor: it reads its clock only for a message
// that needs it (an OTP: one reading for its arrival and its decision from the cache).
func (h *otpHook) Submit(req *relay.SubmitRequest) relay.Verdict {
	st := h.state.Load()
	c := h.call()
	c.m = interceptor.Message{Account: req.Account, Route: req.Route, PDU: req.PDU}
	c.req = req
	if !st.ic.Submit(req.Ctx, &c.m, c.resolve) {
		return relay.Verdict{Action: relay.Pending} // the call is the decision's now: never reused
	}
	v := h.verdict(&c.m)
	if v.AfterAnswer == nil { // nothing refers to the message any more (a drop's receipt does)
		c.m, c.req = interceptor.Message{}, nil
		h.calls.Put(c)
	}
	return v
}

func (h *otpHook) verdict(m *interceptor.Message) relay.Verdict {
	d := m.Decision
	if d.Shadow {
		return relay.Verdict{Action: relay.Pass}
	}
	switch d.Action {
	case interceptor.ActionReject:
		return relay.Verdict{Action: relay.Reject, Status: d.Status}
	case interceptor.ActionReroute:
		return relay.Verdict{Action: relay.Reroute, Route: d.Route}
	case interceptor.ActionDrop:
		id := "sg" + strconv.FormatUint(uint64(time.Now().Unix())<<20|h.ids.Add(1)&0xFFFFF, 16)
		v := relay.Verdict{Action: relay.Answer, MessageID: id}
		if interceptor.WantsReceipt(m) {
			v.AfterAnswer = func() {
				frame, err := interceptor.Receipt(m, id, d.ReceiptStat, d.ReceiptErr, time.Now())
				if err == nil {
					err = h.relay.Deliver(m.Account, frame)
				}
				if err != nil {
					h.log.Error("otp: failed receipt for a dropped message not queued", zap.String("account", m.Account), zap.String("message_id", id), zap.Error(err))
				}
			}
		}
		return v
	}
	return relay.Verdict{Action: relay.Pass} // allow, flag
}

func fakeCarrier(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	log, err := newLogger("info", "console", stderr)
	if err != nil {
		return err
	}
	return fakecarrier.Main(ctx, args, stdout, log)
}

// check runs the configured checks for one number and prints each signal and the decision an
// OTP to it would get now, per account with a policy. Nothing is sent.
func check(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	path := fs.String("c", "", "config file (default: the embedded sandbox config)")
	account := fs.String("account", "", "only this account's policy")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: smppguard check [-c config.yaml] [-account ID] +447700900123")
		return errUsage
	}
	number := fs.Arg(0)
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	log := zap.NewNop()
	pols, err := buildPolicies(cfg)
	if err != nil {
		return err
	}
	if cfg.Sandbox.FakeCarrier != nil && *path == "" {
		// Without -c, answer from an in-process fake carrier, unless a running sandbox
		// already serves it on the same port.
		carrier, err := startSandboxCarrier(ctx, cfg.Sandbox.FakeCarrier, log)
		switch {
		case err == nil:
			defer carrier.Close()
		case errors.Is(err, syscall.EADDRINUSE):
		default:
			return fmt.Errorf("sandbox fake carrier: %w", err)
		}
	}
	ps, err := buildProviders(ctx, cfg, nil, log)
	if err != nil {
		return err
	}
	ic, err := interceptor.New(interceptor.Config{Policies: pols, Providers: ps.provs, MaskKeep: cfg.OTP.MaskKeep, Logger: log})
	if err != nil {
		return err
	}
	defer ic.Close()
	res, err := runChecks(ctx, ic, cfg, pols, *account, number)
	if err != nil {
		return err
	}
	for _, r := range res {
		fmt.Fprintf(stdout, "account %s (policy %s), destination %s\n", r.Account, r.Policy, r.MSISDN)
		for _, s := range r.Signals {
			state := s.Detail
			if s.Err != "" {
				state = "error: " + s.Err
			}
			fmt.Fprintf(stdout, "  %-16s %-12s %s (%s%s)\n", s.Signal, s.Source, state, s.Latency.Round(time.Microsecond), map[bool]string{true: ", cached", false: ""}[s.Cached])
		}
		d := r.Decision
		line := string(d.Action)
		switch d.Action {
		case interceptor.ActionReject:
			line += " with " + d.Status
		case interceptor.ActionReroute:
			line += " to route " + d.Route
		}
		if d.Shadow {
			line += " (shadow mode: recorded, not enforced)"
		}
		fmt.Fprintf(stdout, "  decision: %s\n  reason:   %s\n", line, d.Reason)
	}
	return nil
}

// errNoPolicy: no account (or not the one asked for) has an OTP policy.
var errNoPolicy = errors.New("no account with an OTP policy")

// checkResult is the decision an OTP from an account to a number would get now: what
// `smppguard check` prints and /api/v1/check answers.
type checkResult struct {
	Account  string                      `json:"account"`
	Policy   string                      `json:"policy"`
	MSISDN   string                      `json:"msisdn"`
	Signals  []interceptor.SignalOutcome `json:"signals"`
	Decision checkDecision               `json:"decision"`
}

// checkDecision is interceptor.Decision with the command_status by name
// ("ESME_RSUBMITFAIL"), as the audit records and /api/v1/decisions write it.
type checkDecision struct {
	Action      interceptor.Action `json:"action"`
	Status      string             `json:"status,omitempty"`
	Route       string             `json:"route,omitempty"`
	ReceiptStat string             `json:"receipt_stat,omitempty"`
	ReceiptErr  int                `json:"receipt_err,omitempty"`
	Reason      string             `json:"reason"`
	Cause       string             `json:"cause,omitempty"`
	Shadow      bool               `json:"shadow,omitempty"`
}

// runChecks runs the checks for number as an OTP from each account with a policy would get
// them (only account, when not ""), in config order. Nothing is sent. No such account:
// errNoPolicy.
func runChecks(ctx context.Context, ic *interceptor.Interceptor, cfg *config.Config, pols map[string]*interceptor.Policy, account, number string) ([]checkResult, error) {
	var out []checkResult
	for _, a := range cfg.Accounts {
		if pols[a.SystemID] == nil || (account != "" && a.SystemID != account) {
			continue
		}
		m, err := ic.Check(ctx, a.SystemID, number)
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", a.SystemID, err)
		}
		d := m.Decision
		cd := checkDecision{Action: d.Action, Route: d.Route, ReceiptStat: d.ReceiptStat, ReceiptErr: d.ReceiptErr,
			Reason: d.Reason, Cause: d.Cause, Shadow: d.Shadow}
		if d.Status != 0 {
			cd.Status = d.Status.String()
		}
		out = append(out, checkResult{Account: a.SystemID, Policy: a.Policy, MSISDN: m.MSISDN, Signals: m.Signals, Decision: cd})
	}
	if len(out) == 0 {
		if account != "" {
			return nil, fmt.Errorf("%w named %s", errNoPolicy, account)
		}
		return nil, errNoPolicy
	}
	return out, nil
}
