package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/checks"
	"github.com/smppguard/smppguard/cmd/smppguard/admin"
	"github.com/smppguard/smppguard/config"
	"github.com/smppguard/smppguard/interceptor"
	"github.com/smppguard/smppguard/smpp/relay"
)

// app is a running smppguard: what serve built, what reload swaps, what the admin API reads.
type app struct {
	path       string // config file; "" = embedded
	log        *zap.Logger
	cfg        atomic.Pointer[config.Config]
	relay      *relay.Relay
	hook       *otpHook
	audit      *interceptor.JSONLines // the audit file, when configured
	decisions  *admin.DecisionLog
	metrics    *hotMetrics // nil when the admin listener is off
	esmeTotals *esmeTotals // PDUs per account, closed ESME sessions included
	reloadMu   sync.Mutex
}

// auditSink feeds every OTP decision to the audit file and the admin API's recent list; nil
// when there is neither (both are fixed at start: a changed audit_file or admin section
// needs a restart), so that no decision builds a record nobody reads.
func (a *app) auditSink() interceptor.AuditSink {
	if a.audit == nil && a.decisions == nil {
		return nil
	}
	return interceptor.AuditFunc(func(r interceptor.AuditRecord) {
		if a.audit != nil {
			a.audit.Record(r)
		}
		if a.decisions != nil {
			a.decisions.Record(r)
		}
	})
}

// buildOTPState compiles the policies and the interceptor of cfg, reusing prev's guards for
// providers whose configuration did not change.
func (a *app) buildOTPState(ctx context.Context, cfg *config.Config, prev *otpState) (*otpState, error) {
	pols, routePols, err := buildAllPolicies(cfg)
	if err != nil {
		return nil, err
	}
	ps, err := buildProviders(ctx, cfg, prev, a.log)
	if err != nil {
		return nil, err
	}
	icfg := interceptor.Config{
		Policies: pols, RoutePolicies: routePols, Providers: ps.provs, MaxInFlight: cfg.OTP.MaxInFlight, MaskKeep: cfg.OTP.MaskKeep,
		Reassembly: interceptor.ReassemblyConfig{Timeout: cfg.OTP.ConcatTimeout.D(), FirstPartTimeout: cfg.OTP.ConcatFirstPartTimeout.D()}, Audit: a.auditSink(), Logger: a.log.Named("otp"),
	}
	if a.metrics != nil {
		icfg.ObserveLookup = a.metrics.observeLookup
	}
	ic, err := interceptor.New(icfg)
	if err != nil {
		return nil, err
	}
	return &otpState{ic: ic, pols: pols, routePols: routePols, guards: ps.guards, provs: ps.cfgs, fps: ps.fps, rebuilt: ps.built}, nil
}

// reloadReport is what a reload changed.
type reloadReport struct {
	Relay             relay.ReloadReport `json:"relay"`
	PoliciesChanged   []string           `json:"policies_changed,omitempty"`
	ProvidersChanged  []string           `json:"providers_changed,omitempty"`
	RestartRequired   []string           `json:"restart_required,omitempty"`
	ConfigurationFile string             `json:"file"`
}

// reload re-reads the config file. A config that fails validation is refused with the
// reason and the running one stays; a valid one takes effect for new PDUs without dropping
// established binds.
func (a *app) reload(ctx context.Context) (any, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	old := a.cfg.Load()
	refused := func(err error) (any, error) {
		if a.metrics != nil {
			a.metrics.reloadsRefused.Add(1)
		}
		a.log.Error("reload refused: the running configuration stays", zap.Error(err))
		return nil, fmt.Errorf("%w: %w", admin.ErrInvalid, err)
	}
	cfg, err := loadConfig(a.path)
	if err != nil {
		return refused(err)
	}
	prev := a.hook.state.Load()
	st, err := a.buildOTPState(ctx, cfg, prev)
	if err != nil {
		return refused(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := relayConfig(cfg, a.hook, a.metrics, a.log.Named("relay"))
	if err != nil {
		st.ic.Close()
		return refused(err)
	}
	rr, err := a.relay.Reload(rctx, rc)
	if err != nil {
		st.ic.Close()
		return refused(err)
	}
	if a.metrics != nil {
		a.metrics.reloadsOK.Add(1)
	}
	a.hook.state.Store(st)
	a.cfg.Store(cfg)
	go prev.ic.Close() // its pending decisions complete; held concatenated parts are decided now
	rep := reloadReport{Relay: rr, ConfigurationFile: a.path}
	if rep.ConfigurationFile == "" {
		rep.ConfigurationFile = "(embedded)"
	}
	rep.PoliciesChanged = changedNames(old.Policies, cfg.Policies, func(p config.Policy) string { return p.Name })
	rep.ProvidersChanged = changedNames(old.Providers, cfg.Providers, func(p config.Provider) string { return p.Name })
	for _, name := range st.rebuilt { // built anew because a file it reads changed
		if !slices.Contains(rep.ProvidersChanged, name) {
			rep.ProvidersChanged = append(rep.ProvidersChanged, name)
		}
	}
	sort.Strings(rep.ProvidersChanged)
	for _, sec := range []struct {
		name     string
		old, new any
	}{{"listen", old.Listen, cfg.Listen}, {"session", old.Session, cfg.Session}, {"relay", old.Relay, cfg.Relay},
		{"otp", old.OTP, cfg.OTP}, {"admin", old.Admin, cfg.Admin}, {"sandbox", old.Sandbox, cfg.Sandbox}, {"log", old.Log, cfg.Log}} {
		if !reflect.DeepEqual(sec.old, sec.new) {
			rep.RestartRequired = append(rep.RestartRequired, sec.name)
		}
	}
	for i, name := range rep.RestartRequired {
		if name == "otp" { // max_in_flight, concat_timeout and mask_keep apply through the new interceptor
			if old.OTP.AuditFile == cfg.OTP.AuditFile {
				rep.RestartRequired = append(rep.RestartRequired[:i], rep.RestartRequired[i+1:]...)
			}
			break
		}
	}
	a.log.Info("configuration reloaded", zap.Any("changes", rep))
	return rep, nil
}

// changedNames lists the names added, removed or changed between two lists.
func changedNames[T any](old, new []T, name func(T) string) []string {
	byName := map[string]T{}
	for _, o := range old {
		byName[name(o)] = o
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range new {
		seen[name(n)] = true
		if o, ok := byName[name(n)]; !ok || !reflect.DeepEqual(o, n) {
			out = append(out, name(n))
		}
	}
	for _, o := range old {
		if !seen[name(o)] {
			out = append(out, name(o))
		}
	}
	sort.Strings(out)
	return out
}

// Sessions implements admin.Source.
func (a *app) Sessions() []admin.SessionInfo {
	var out []admin.SessionInfo
	for _, acc := range a.cfg.Load().Accounts {
		for _, s := range a.relay.Sessions(acc.SystemID) {
			_, bound := s.Since()
			ours, peers := s.InFlight()
			c := s.Counters()
			out = append(out, admin.SessionInfo{
				Account: acc.SystemID, BindType: s.State().String(), Peer: s.RemoteAddr().String(), State: s.State().String(),
				Since: bound, WindowInUse: ours, PeerInFlight: peers, RxPDUs: c.RxPDUs, TxPDUs: c.TxPDUs,
				Throttled: c.Throttled, Timeouts: c.ResponseTimeouts,
			})
		}
	}
	return out
}

// Links implements admin.Source.
func (a *app) Links() []admin.LinkInfo {
	var out []admin.LinkInfo
	links := a.relay.Links()
	names := make([]string, 0, len(links))
	for n := range links {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, h := range links[n].Health() {
			out = append(out, admin.LinkInfo{Upstream: n, Slot: h.Slot, BindType: h.BindType, State: h.State, Since: h.Since,
				Reconnects: h.Reconnects, LastError: h.LastError, InFlight: h.InFlight})
		}
	}
	return out
}

// Ready implements admin.Source: a configuration is loaded and every route has a bound link.
func (a *app) Ready() (bool, string) {
	cfg := a.cfg.Load()
	if cfg == nil {
		return false, "no configuration loaded"
	}
	links := a.relay.Links()
	for _, rt := range cfg.Routes {
		if l := links[rt.Upstream]; l == nil || !l.Ready() {
			return false, fmt.Sprintf("route %q: upstream %q has no bind up", rt.Name, rt.Upstream)
		}
	}
	return true, ""
}

// Check implements admin.Source: as `smppguard check`, for account or, when it is "", for
// every account with a policy.
func (a *app) Check(ctx context.Context, account, msisdn string) (any, error) {
	st := a.hook.state.Load()
	res, err := runChecks(ctx, st.ic, a.cfg.Load(), st.pols, account, msisdn)
	if errors.Is(err, errNoPolicy) {
		return nil, fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return struct {
		MSISDN string        `json:"msisdn"`
		Count  int           `json:"count"`
		Checks []checkResult `json:"checks"`
	}{msisdn, len(res), res}, nil
}

// Reload implements admin.Source.
func (a *app) Reload(ctx context.Context) (any, error) { return a.reload(ctx) }

// Counters implements admin.Source.
func (a *app) Counters() admin.Counters {
	rs := a.relay.Stats()
	c := admin.Counters{
		Relay: map[string]uint64{
			"binds_ok": rs.BindsOK, "binds_refused": rs.BindsRefused, "receipts_matched": rs.ReceiptsMatched,
			"receipts_held": rs.ReceiptsHeld, "receipts_unknown": rs.ReceiptsUnknown, "mos_routed": rs.MOsRouted,
			"mos_unknown": rs.MOsUnknown, "queued": rs.Queued, "queue_full": rs.QueueFull, "queue_delivered": rs.QueueDelivered,
			"upstream_failures": rs.UpstreamFailures, "foreign_message_ids": rs.ForeignMessageIDs,
		},
		QueueDepth: map[string]int{}, Lookups: map[string]admin.ProviderCounters{},
	}
	for _, acc := range a.cfg.Load().Accounts {
		c.QueueDepth[acc.SystemID] = a.relay.QueueLen(acc.SystemID)
	}
	st := a.hook.state.Load()
	is := st.ic.Stats()
	c.OTP = map[string]uint64{"seen": is.Seen, "otp": is.OTPs, "saturated": is.Saturated, "panic": is.Panics}
	c.Decisions = map[string]uint64{}
	for act, n := range is.ByAction {
		c.Decisions[string(act)] = n
	}
	c.Rules, c.Causes = is.ByRule, is.ByCause
	c.ESMEPDUs = a.esmeTotals.snapshot()
	if a.metrics != nil {
		c.Reloads = map[string]uint64{"ok": a.metrics.reloadsOK.Load(), "refused": a.metrics.reloadsRefused.Load()}
	}
	for name, g := range st.guards {
		gs := g.Stats()
		pc := admin.ProviderCounters{Hits: gs.Hits, Misses: gs.Misses, Calls: gs.Calls, Shed: gs.Shed, BreakerOpens: gs.BreakerOpens,
			BreakerState: fmt.Sprint(gs.Breaker), ErrorsByKind: map[string]uint64{}}
		for k, v := range gs.Errors {
			pc.ErrorsByKind[k] = v
		}
		c.Lookups[name] = pc
	}
	a.limitCounters(&c, rs)
	return c
}

var _ admin.Source = (*app)(nil)
var _ = errors.New
var _ = checks.ErrInvalid
