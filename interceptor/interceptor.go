package interceptor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/checks"
	"github.com/smppguard/smppguard/smpp"
)

// Handler is one link of the chain: it annotates m and calls the next link, or stops by
// setting m.Decision. Errors are returned, not logged.
type Handler interface {
	Serve(ctx context.Context, m *Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m *Message) error

// Serve calls f.
func (f HandlerFunc) Serve(ctx context.Context, m *Message) error { return f(ctx, m) }

// Step is a named chain link, CoreDNS style: Wrap returns the handler that runs this step and
// then next. The chain is compiled once, in a fixed order (chainOrder), never per request.
type Step interface {
	Name() string
	Wrap(next Handler) Handler
}

// Config configures an Interceptor.
type Config struct {
	// Policies by account system_id; an account without one is never intercepted.
	Policies map[string]*Policy
	// RoutePolicies override the account's policy for messages relayed over a route
	// (Message.Route), whether or not the account has a policy.
	RoutePolicies map[string]*Policy
	// Providers by name (wrapped in a checks.Guard by the caller).
	Providers map[string]checks.Provider
	// MaxInFlight bounds the OTPs being looked up at once; beyond it the account's
	// OnSaturated applies. Default 1000.
	MaxInFlight int
	// Reassembly of concatenated messages.
	Reassembly ReassemblyConfig
	// Audit receives one record per OTP decision; nil discards.
	Audit AuditSink
	// MaskKeep is how many trailing digits of a number stay visible in logs and audit; 0 (the
	// zero value) masks every digit. config supplies 4 when otp.mask_keep is absent. Negative
	// values are refused.
	MaskKeep int
	// ObserveLookup, if set, gets every provider look-up's duration and outcome (risky,
	// clean, unknown, error), for metrics.
	ObserveLookup func(provider, signal, outcome string, d time.Duration)
	Logger        *zap.Logger
	Now           func() time.Time
}

// Stats are the interceptor's counters.
type Stats struct {
	// Pending counts the messages whose decision is outstanding: held concatenated parts
	// and OTPs being looked up, each until its resolve is called.
	Seen, OTPs, Pending, Saturated, Panics uint64
	ByAction                               map[Action]uint64
	// ByRule counts OTP decisions by the rule that marked the message; ByCause by action and
	// cause ("reject|sim_swap:risky").
	ByRule, ByCause map[string]uint64
}

// Interceptor is the OTP decision chain.
type Interceptor struct {
	cfg                                    Config
	log                                    *zap.Logger
	chain                                  Handler
	reasm                                  *Reassembler
	sem                                    chan struct{}
	peekers                                map[*Policy][]cachePeeker                   // per policy, its checks' providers' caches
	submitNames                            [3]string                                   // command names of submit_sm, data_sm, submit_multi
	counters                               atomic.Pointer[map[decisionKey]*keyCounter] // copied on write
	countersMu                             sync.Mutex                                  // serialises writers of counters
	lastCounter                            atomic.Pointer[keyCounter]                  // the counter used last, checked before the map
	seen, otps, pending, saturated, panics atomic.Uint64
}

// Resolver receives the decision of a message that was pending.
type Resolver func(m *Message)

// held is a concatenated part waiting for the rest of its message.
type held struct {
	m       *Message
	resolve Resolver
}

// New compiles the chain once.
func New(cfg Config) (*Interceptor, error) {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1000
	}
	if cfg.MaskKeep < 0 {
		return nil, fmt.Errorf("interceptor: mask_keep %d: must be 0 (mask every digit) or more", cfg.MaskKeep)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	wallClock := cfg.Now == nil
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	all := map[string]*Policy{}
	for acct, p := range cfg.Policies {
		all["account "+acct] = p
	}
	for route, p := range cfg.RoutePolicies {
		all["route "+route] = p
	}
	for acct, p := range all {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("interceptor: %s: %w", acct, err)
		}
		for _, c := range p.Checks {
			if cfg.Providers[c.Provider] == nil {
				return nil, fmt.Errorf("interceptor: %s policy %q: unknown provider %q", acct, p.Name, c.Provider)
			}
		}
		if p.Deadline <= 0 {
			p.Deadline = 2 * time.Second
		}
		clean := make([]string, len(p.Checks))
		for i := range p.Checks {
			p.Checks[i].prepare()
			clean[i] = p.Checks[i].cleanReason
		}
		p.allClean = strings.Join(clean, "; ")
		if p.OnSaturated == "" {
			p.OnSaturated = SaturatedThrottle
		}
	}
	ic := &Interceptor{cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, cfg.MaxInFlight), peekers: map[*Policy][]cachePeeker{},
		submitNames: [3]string{smpp.SubmitSM.String(), smpp.DataSM.String(), smpp.SubmitMulti.String()}}
	for _, p := range all {
		ic.peekers[p] = peekersOf(p, cfg.Providers, wallClock)
	}
	var h Handler = HandlerFunc(func(context.Context, *Message) error { return nil })
	steps := ic.chainOrder()
	for i := len(steps) - 1; i >= 0; i-- {
		h = steps[i].Wrap(h)
	}
	ic.chain = h
	if cfg.Reassembly.Now == nil {
		cfg.Reassembly.Now = cfg.Now
	}
	ic.reasm = NewReassembler(cfg.Reassembly, ic.partsTimedOut)
	return ic, nil
}

// chainOrder is the one place the steps' order is defined (after classify, which runs
// inline on the reader goroutine).
func (ic *Interceptor) chainOrder() []Step {
	return []Step{lookupStep{ic}, decideStep{ic}}
}

// Close stops the reassembly sweeper and answers every held part with its fail policy.
func (ic *Interceptor) Close() {
	for _, g := range ic.reasm.Close() {
		ic.partsTimedOut(g)
	}
}

// Stats returns the counters.
func (ic *Interceptor) Stats() Stats {
	by, rules, causes := map[Action]uint64{}, map[string]uint64{}, map[string]uint64{}
	if cs := ic.counters.Load(); cs != nil {
		for k, v := range *cs {
			n := v.n.Load()
			by[k.action] += n
			rules[k.rule] += n
			causes[string(k.action)+"|"+k.cause] += n
		}
	}
	return Stats{Seen: ic.seen.Load(), OTPs: ic.otps.Load(), Pending: ic.pending.Load(), Saturated: ic.saturated.Load(), Panics: ic.panics.Load(),
		ByAction: by, ByRule: rules, ByCause: causes}
}

var allow = Decision{Action: ActionAllow, Reason: "not an OTP"}

// Submit offers one submit-path PDU. It returns the decision at once (done == true) — for
// everything that is not an OTP, without allocating a goroutine — or done == false, and then
// calls resolve exactly once with m.Decision set: from another goroutine, or, for a part of
// a concatenated message that is not an OTP (its message complete, or its sender
// synchronous), from within Submit before it returns. When it returns true it keeps no
// reference to m or resolve (resolve is never called), so the caller may reuse both.
// m.Received left zero is set from the interceptor's clock when the message needs it: an
// OTP (decided from the cache: the same reading as the decision) or a concatenated part.
func (ic *Interceptor) Submit(ctx context.Context, m *Message, resolve Resolver) (done bool) {
	ic.seen.Add(1)
	p := ic.policyFor(m.Account, m.Route)
	if p == nil {
		m.Decision = allow
		return true
	}
	if err := DecodeWith(m, p.Decode); err != nil {
		m.Binary = true // undecodable text is never matched by text rules
	}
	if m.Part != nil && m.Part.Total > 1 {
		if m.Received.IsZero() {
			m.Received = ic.cfg.Now() // a held part's decision time counts from its arrival
		}
		g, err := ic.reasm.Add(GroupKey(m), *m.Part, m.Text, &held{m: m, resolve: resolve})
		if err != nil {
			// Too many groups or a duplicate part: decide this part on its own.
			ic.log.Info("interceptor: concatenated part decided alone", zap.String("account", m.Account), zap.Error(err))
			return ic.decideOne(ctx, p, m, resolve)
		}
		ic.pending.Add(1) // every held part counts until its resolve is called
		if g != nil {
			// Complete, or a later part of a message whose hold ran out: decided now on
			// the text of every part seen.
			ic.decideGroup(ctx, p, g)
		}
		return false
	}
	return ic.decideOne(ctx, p, m, resolve)
}

// decideOne classifies m inline and runs the look-ups off the caller's goroutine.
func (ic *Interceptor) decideOne(ctx context.Context, p *Policy, m *Message, resolve Resolver) bool {
	if !ic.classify(p, m) {
		m.Decision = allow
		return true
	}
	// One clock reading for the message's arrival and, when its checks are cached, its
	// decision (when the caller left Received unset, as the relay hook does).
	var now time.Time
	if m.Received.IsZero() {
		now = ic.cfg.Now()
		m.Received = now
	}
	if ic.decideFromCache(p, m, now) {
		return true
	}
	ic.pending.Add(1)
	ic.run(ctx, p, m, func(m *Message) { ic.pending.Add(^uint64(0)); resolve(m) })
	return false
}

// decideFromCache decides an OTP on the caller's goroutine when every check can be answered
// from its provider's cache: no goroutine, no context, no call out. It reports false (and
// changes nothing) on any miss; the look-up chain then runs as usual. now is a reading of
// the interceptor's clock taken for this message, or zero to read it here.
func (ic *Interceptor) decideFromCache(p *Policy, m *Message, now time.Time) bool {
	if m.Command == smpp.SubmitMulti {
		return false
	}
	peekers := ic.peekers[p]
	if len(peekers) != len(p.Checks) {
		return false // a check's provider has no cache
	}
	msisdn, err := checks.NormalizeMSISDNPlus(m.Dest, m.plusDest, m.DestTON, m.DestNPI, p.DefaultCC)
	if err != nil {
		return false
	}
	// The answers are gathered on the stack (policies have a few checks) and turned into
	// signals once all hit, so a miss allocates nothing.
	type answer struct {
		res *checks.Result // the cache's own (guard) or a copy (cache); nil with err
		err error
	}
	var buf [4]answer
	answers := buf[:0]
	if now.IsZero() {
		now = ic.cfg.Now() // one clock read for the whole decision
	}
	var (
		guard    guardPeeker // the provider whose clock was read, and the reading
		guardNow time.Time
	)
	for i := range p.Checks {
		c := &p.Checks[i]
		q := checks.Query{MSISDN: msisdn, Signal: c.Signal, MaxAge: c.MaxAge}
		var (
			a   answer
			hit bool
		)
		if pk := &peekers[i]; pk.guard != nil {
			if pk.guard != guard { // one reading of each Guard's clock per decision
				guard, guardNow = pk.guard, now
				if !pk.sameClock {
					guardNow = pk.guard.Now()
				}
			}
			a.res, a.err, hit = pk.guard.PeekAt(q, guardNow)
		} else {
			var res checks.Result
			res, a.err, hit = pk.cache.Cached(q)
			a.res = &res
		}
		if !hit {
			return false
		}
		answers = append(answers, a)
	}
	var sigs []SignalOutcome
	if len(answers) <= len(m.sigBuf) {
		sigs = m.sigBuf[:len(answers)]
	} else {
		sigs = make([]SignalOutcome, len(answers))
	}
	for i := range answers {
		sigs[i] = ic.outcome(&p.Checks[i], m, answers[i].res, answers[i].err, 0, now)
	}
	m.MSISDN, m.Signals = msisdn, sigs
	m.Decision = Decide(p, sigs)
	ic.recordAt(p, m, now)
	return true
}

// guardPeeker is a provider that answers from its cache on one reading of its clock for all
// of a decision's checks, without copying (checks.Guard). The results are only read.
type guardPeeker interface {
	Now() time.Time
	PeekAt(q checks.Query, now time.Time) (*checks.Result, error, bool)
}

// wallClocked is a provider whose clock is time.Now (checks.Guard without GuardConfig.Now).
type wallClocked interface {
	WallClock() bool
}

// cachePeeker is how decideFromCache asks a check's provider: guard when it is a
// guardPeeker, else cache. sameClock: the guard's clock and the interceptor's are both
// time.Now, so one reading serves both.
type cachePeeker struct {
	guard     guardPeeker
	cache     checks.CachePeeker
	sameClock bool
}

// peekersOf resolves the cache of each of p's checks' providers, once; nil when one of
// them has none (its OTPs are always looked up).
func peekersOf(p *Policy, providers map[string]checks.Provider, wallClock bool) []cachePeeker {
	out := make([]cachePeeker, len(p.Checks))
	for i, c := range p.Checks {
		switch prov := providers[c.Provider].(type) {
		case guardPeeker:
			out[i].guard = prov
			if w, ok := prov.(wallClocked); ok && wallClock && w.WallClock() {
				out[i].sameClock = true
			}
		case checks.CachePeeker:
			out[i].cache = prov
		default:
			return nil
		}
	}
	return out
}

func (ic *Interceptor) classify(p *Policy, m *Message) bool {
	if p.Rules == nil {
		return false
	}
	name, ok := p.Rules.Match(m)
	if ok {
		m.OTP, m.Rule = true, name
		ic.otps.Add(1)
	}
	return ok
}

// decideGroup classifies the text of every part of g seen so far (Group.Text) and gives its
// held parts one decision. Parts answered earlier (Released) are in the text, not answered
// again: after a timeout, the part that completes an OTP is decided on the whole OTP.
func (ic *Interceptor) decideGroup(ctx context.Context, p *Policy, g *Group) {
	parts := make([]*held, 0, len(g.Parts))
	for _, gp := range g.Parts {
		if !gp.Released {
			parts = append(parts, gp.Value.(*held))
		}
	}
	if len(parts) == 0 {
		return
	}
	first := parts[0].m
	whole := *first
	whole.Text = g.Text()
	whole.Binary = false
	for _, h := range parts {
		whole.Binary = whole.Binary || h.m.Binary
	}
	finish := func(w *Message) {
		if (g.TimedOut || !g.Complete) && w.OTP && w.Decision.Reason != "" {
			w.Decision.Reason += fmt.Sprintf(" (%d of %d parts seen, %d answered separately)", len(g.Parts), g.Total, len(g.Parts)-len(parts))
		}
		for _, h := range parts {
			h.m.OTP, h.m.Rule, h.m.MSISDN, h.m.Signals, h.m.Decision, h.m.CorrelationID = w.OTP, w.Rule, w.MSISDN, w.Signals, w.Decision, w.CorrelationID
			h.m.Text = w.Text
			ic.pending.Add(^uint64(0))
			h.resolve(h.m)
		}
	}
	if !ic.classify(p, &whole) {
		whole.Decision = allow
		finish(&whole)
		return
	}
	ic.run(ctx, p, &whole, finish)
}

// policyFor is the route's policy when it has one, else the account's.
func (ic *Interceptor) policyFor(account, route string) *Policy {
	if route != "" {
		if p := ic.cfg.RoutePolicies[route]; p != nil {
			return p
		}
	}
	return ic.cfg.Policies[account]
}

// partsTimedOut decides the held parts of a message whose hold ran out (or that Close
// found), on the text seen so far.
func (ic *Interceptor) partsTimedOut(g *Group) {
	for _, gp := range g.Parts {
		if !gp.Released {
			m := gp.Value.(*held).m
			ic.decideGroup(context.Background(), ic.policyFor(m.Account, m.Route), g)
			return
		}
	}
}

// run executes the look-up → decide chain for an OTP on its own goroutine, within the
// in-flight bound, and hands the result to done exactly once.
func (ic *Interceptor) run(ctx context.Context, p *Policy, m *Message, done Resolver) {
	select {
	case ic.sem <- struct{}{}:
	default:
		ic.saturated.Add(1)
		if p.OnSaturated == SaturatedFailPolicy {
			m.Decision = ic.failPolicy(p, "look-ups saturated")
		} else {
			m.Decision = Decision{Action: ActionReject, Status: smpp.StatusThrottled, Reason: "look-ups saturated: throttled"}
		}
		m.Decision.Cause = "saturated"
		ic.record(p, m)
		go done(m) // resolve is documented as coming from another goroutine
		return
	}
	go func() {
		lctx, cancel := context.WithTimeout(ctx, p.Deadline)
		func() {
			defer func() {
				if r := recover(); r != nil {
					ic.panics.Add(1)
					ic.log.Error("interceptor: panic in chain", zap.Any("panic", r), zap.Stack("stack"))
					m.Decision = ic.failPolicy(p, fmt.Sprintf("internal error: %v", r))
					m.Decision.Cause = "panic"
				}
			}()
			if err := ic.chain.Serve(withPolicy(lctx, p), m); err != nil {
				m.Decision = ic.failPolicy(p, err.Error())
				m.Decision.Cause = "error"
			}
		}()
		cancel()
		ic.record(p, m)
		// Free the slot before answering: an ESME whose window equals the bound may send
		// its next OTP the moment it reads this answer.
		<-ic.sem
		done(m)
	}()
}

// failPolicy is the most severe OnError outcome of the policy's checks.
func (ic *Interceptor) failPolicy(p *Policy, why string) Decision {
	var worst Outcome
	for _, c := range p.Checks {
		if severity(c.OnError.Action) > severity(worst.Action) {
			worst = c.OnError
		}
	}
	return worst.decision("fail policy: " + why)
}

func (ic *Interceptor) record(p *Policy, m *Message) { ic.recordAt(p, m, ic.cfg.Now()) }

// recordAt counts, audits and logs a decision made at now.
func (ic *Interceptor) recordAt(p *Policy, m *Message, now time.Time) {
	if p.Shadow {
		m.Decision.Shadow = true
	}
	ic.count(decisionKey{m.Decision.Action, m.Rule, m.Decision.Cause})
	ce := ic.log.Check(zap.InfoLevel, "interceptor: OTP decision")
	var masked string
	if ic.cfg.Audit != nil || ce != nil {
		masked = Mask(m.Dest, ic.cfg.MaskKeep)
	}
	if ic.cfg.Audit != nil {
		ic.cfg.Audit.Record(ic.auditRecord(m, masked, now))
	}
	if ce != nil {
		ce.Write(zap.String("account", m.Account), zap.String("destination", masked),
			zap.String("rule", m.Rule), zap.String("action", string(m.Decision.Action)), zap.Bool("shadow", m.Decision.Shadow),
			zap.String("reason", m.Decision.Reason), zap.String("correlation_id", m.CorrelationID))
	}
}

// decisionKey counts decisions by action, rule and cause, from which Stats sums ByAction,
// ByRule and ByCause ("action|cause"); a struct, so that counting builds no string.
type decisionKey struct {
	action Action
	rule   string
	cause  string
}

// count adds one decision: lock-free once the key was seen. The keys are few (actions ×
// rules × causes), so a new one copies the map.
func (ic *Interceptor) count(k decisionKey) {
	if last := ic.lastCounter.Load(); last != nil && last.key == k {
		last.n.Add(1) // most decisions repeat the one before: no hashing
		return
	}
	if cs := ic.counters.Load(); cs != nil {
		if c := (*cs)[k]; c != nil {
			c.n.Add(1)
			ic.lastCounter.Store(c)
			return
		}
	}
	ic.countersMu.Lock()
	defer ic.countersMu.Unlock()
	old := ic.counters.Load()
	var next map[decisionKey]*keyCounter
	if old != nil {
		if c := (*old)[k]; c != nil { // added meanwhile
			c.n.Add(1)
			return
		}
		next = make(map[decisionKey]*keyCounter, len(*old)+1)
		for kk, c := range *old {
			next[kk] = c
		}
	} else {
		next = map[decisionKey]*keyCounter{}
	}
	c := &keyCounter{key: k}
	c.n.Add(1)
	next[k] = c
	ic.counters.Store(&next)
}

// keyCounter is a decision counter with its key.
type keyCounter struct {
	key decisionKey
	n   atomic.Uint64
}

// commandName is c.String(), without its map look-up for the submit commands.
func (ic *Interceptor) commandName(c smpp.CommandID) string {
	switch c {
	case smpp.SubmitSM:
		return ic.submitNames[0]
	case smpp.DataSM:
		return ic.submitNames[1]
	case smpp.SubmitMulti:
		return ic.submitNames[2]
	}
	return c.String()
}

type policyKey struct{}

func withPolicy(ctx context.Context, p *Policy) context.Context {
	return context.WithValue(ctx, policyKey{}, p)
}

func policyOf(ctx context.Context) *Policy {
	p, _ := ctx.Value(policyKey{}).(*Policy)
	return p
}

// lookupStep runs the policy's checks concurrently for the normalised destination.
type lookupStep struct{ ic *Interceptor }

func (lookupStep) Name() string { return "lookup" }

func (s lookupStep) Wrap(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, m *Message) error {
		p := policyOf(ctx)
		m.CorrelationID = newCorrelationID()
		if m.Command == smpp.SubmitMulti && m.PDU != nil {
			return s.multi(ctx, p, m, next)
		}
		msisdn, err := checks.NormalizeMSISDNPlus(m.Dest, m.plusDest, m.DestTON, m.DestNPI, p.DefaultCC)
		m.Signals = make([]SignalOutcome, len(p.Checks))
		if err != nil {
			for i, c := range p.Checks {
				m.Signals[i] = SignalOutcome{Signal: string(c.Signal), Source: c.Provider, Err: "destination is not a phone number: " + err.Error()}
			}
			return next.Serve(ctx, m)
		}
		m.MSISDN = msisdn
		var wg sync.WaitGroup
		for i, c := range p.Checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if r := recover(); r != nil {
						s.ic.panics.Add(1)
						s.ic.log.Error("interceptor: panic in look-up", zap.String("provider", c.Provider), zap.Any("panic", r), zap.Stack("stack"))
						m.Signals[i] = SignalOutcome{Signal: string(c.Signal), Source: c.Provider, Err: fmt.Sprintf("internal error: %v", r)}
					}
				}()
				m.Signals[i] = s.ic.lookup(ctx, c, m)
			}()
		}
		wg.Wait()
		return next.Serve(ctx, m)
	})
}

// multi checks every SME destination of a submit_multi. The message gets one decision: each
// check's signals over all destinations, named by destination, and the most severe outcome.
func (s lookupStep) multi(ctx context.Context, p *Policy, m *Message, next Handler) error {
	dests := SMEDestinations(m.PDU.Field(smpp.FieldDestAddresses))
	all := make([][]SignalOutcome, len(dests))
	var wg sync.WaitGroup
	for d, dst := range dests {
		all[d] = make([]SignalOutcome, len(p.Checks))
		msisdn, err := checks.NormalizeMSISDN(dst.Addr, dst.TON, dst.NPI, p.DefaultCC)
		for i, c := range p.Checks {
			if err != nil {
				all[d][i] = SignalOutcome{Signal: string(c.Signal), Source: c.Provider, Err: "destination is not a phone number: " + err.Error()}
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if r := recover(); r != nil {
						s.ic.panics.Add(1)
						all[d][i] = SignalOutcome{Signal: string(c.Signal), Source: c.Provider, Err: fmt.Sprintf("internal error: %v", r)}
					}
				}()
				dm := *m
				dm.MSISDN = msisdn
				all[d][i] = s.ic.lookup(ctx, c, &dm)
			}()
		}
	}
	wg.Wait()
	// The decision table works per check: fold the destinations into one outcome per check,
	// keeping the worst (error > unknown > risky > clean as the policy orders them).
	m.Signals = make([]SignalOutcome, len(p.Checks))
	for i, c := range p.Checks {
		var pick SignalOutcome
		for d := range dests {
			so := all[d][i]
			so.Detail = Mask(dests[d].Addr, s.ic.cfg.MaskKeep) + ": " + so.Detail
			if pick.Signal == "" || severity(outcomeOf(c, so).Action) > severity(outcomeOf(c, pick).Action) {
				pick = so
			}
		}
		if pick.Signal == "" {
			pick = SignalOutcome{Signal: string(c.Signal), Source: c.Provider, Detail: "no SME destination"}
		}
		m.Signals[i] = pick
	}
	if len(dests) > 0 {
		m.MSISDN = dests[0].Addr
	}
	return next.Serve(ctx, m)
}

// outcomeOf is the outcome one signal leads to under check c.
func outcomeOf(c CheckPolicy, so SignalOutcome) Outcome {
	switch {
	case so.Err != "":
		return c.OnError
	case so.unknown:
		return c.OnUnknown
	case so.Risky:
		return c.OnRisk
	}
	return Outcome{Action: ActionAllow}
}

func (ic *Interceptor) lookup(ctx context.Context, c CheckPolicy, m *Message) SignalOutcome {
	start := time.Now()
	res, err := ic.cfg.Providers[c.Provider].Check(ctx, checks.Query{MSISDN: m.MSISDN, Signal: c.Signal, MaxAge: c.MaxAge, CorrelationID: m.CorrelationID})
	so := ic.outcome(&c, m, &res, err, time.Since(start), ic.cfg.Now())
	if ic.cfg.ObserveLookup != nil && !so.Cached {
		ic.cfg.ObserveLookup(c.Provider, string(c.Signal), so.kind(), so.Latency)
	}
	return so
}

// unknownDetail is the detail of a signal whose number the carrier does not know.
const unknownDetail = "number unknown to the carrier"

// kind is the outcome class of a look-up: error, unknown, risky or clean.
func (so SignalOutcome) kind() string {
	switch {
	case so.Err != "":
		return "error"
	case so.unknown:
		return "unknown"
	case so.Risky:
		return "risky"
	}
	return "clean"
}

// outcome turns one provider answer into the signal the decision and the audit see.
func (ic *Interceptor) outcome(c *CheckPolicy, m *Message, res *checks.Result, err error, latency time.Duration, now time.Time) SignalOutcome {
	so := SignalOutcome{Signal: string(c.Signal), Source: c.Provider, Latency: latency}
	if err != nil {
		// Name the call that answered when it is not this message's own: a cached answer,
		// or one shared with other OTPs to the number (singleflight).
		so.Cached = checks.FromCache(err)
		if id := checks.CorrelationID(err); id != "" && id != m.CorrelationID {
			so.CorrelationID = id
		}
		if errors.Is(err, checks.ErrUnknownNumber) {
			so.Detail = unknownDetail
			so.unknown = true
			return so
		}
		so.Err = err.Error()
		return so
	}
	so.Cached = res.Cached
	if res.CorrelationID != "" && res.CorrelationID != m.CorrelationID {
		so.CorrelationID = res.CorrelationID
	}
	if !res.FetchedAt.IsZero() {
		so.Age = now.Sub(res.FetchedAt)
	}
	switch c.Signal {
	case checks.SimSwap, checks.DeviceSwap:
		so.Risky = res.Swapped
	case checks.CallForwarding:
		so.Risky = res.Forwarding
	case checks.Roaming:
		so.Risky = res.Roaming
	}
	so.Detail = c.clean
	if so.Risky {
		so.Detail = c.risky
		if res.LastChange != nil {
			so.Detail += " (last change " + now.Sub(*res.LastChange).Round(time.Minute).String() + " ago)"
		}
		if c.Signal == checks.Roaming && res.CountryCode != 0 {
			so.Detail += " (country " + strconv.Itoa(res.CountryCode) + ")"
		}
	}
	return so
}

// prepare precomputes the check's detail texts, so deciding formats nothing.
func (c *CheckPolicy) prepare() {
	switch c.Signal {
	case checks.SimSwap, checks.DeviceSwap:
		what := "SIM"
		if c.Signal == checks.DeviceSwap {
			what = "device"
		}
		c.risky = what + " swapped within " + shortDur(c.MaxAge)
		c.clean = "no " + what + " swap within " + shortDur(c.MaxAge)
	case checks.CallForwarding:
		c.risky, c.clean = "unconditional call forwarding active", "no unconditional call forwarding"
	case checks.Roaming:
		c.risky, c.clean = "roaming", "not roaming"
	default:
		c.risky, c.clean = "risky", "clean"
	}
	c.cleanReason = string(c.Signal) + ": " + c.clean
	c.riskyReason = string(c.Signal) + ": " + c.risky + ": " + string(orAllow(c.OnRisk.Action))
	c.unknownReason = string(c.Signal) + ": " + unknownDetail + ": " + string(orAllow(c.OnUnknown.Action))
	c.riskyFor, c.unknownFor = c.OnRisk.Action, c.OnUnknown.Action
	c.causeError, c.causeUnknown, c.causeRisky = string(c.Signal)+":error", string(c.Signal)+":unknown", string(c.Signal)+":risky"
}

// reason is Decide's reason for a risky or unknown signal that leads to action:
// "<signal>: <detail>: <action>"; pre when it was precomputed for that detail and action.
func (c *CheckPolicy) reason(so *SignalOutcome, action Action, pre, preDetail string) string {
	preAction := c.riskyFor
	if so.unknown {
		preAction = c.unknownFor
	}
	if pre != "" && so.Detail == preDetail && action == preAction {
		return pre
	}
	return string(c.Signal) + ": " + so.Detail + ": " + string(orAllow(action))
}

// decideStep turns the signals into one decision: each check yields an outcome (risk, error
// or unknown), and the most severe one wins.
type decideStep struct{ ic *Interceptor }

func (decideStep) Name() string { return "decide" }

func (s decideStep) Wrap(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, m *Message) error {
		m.Decision = Decide(policyOf(ctx), m.Signals)
		return next.Serve(ctx, m)
	})
}

// Decide is the decision table: pure, so it is tested for every combination. Each check's
// signal picks its outcome (OnError when the look-up failed or timed out, OnUnknown when the
// carrier does not know the number, OnRisk when risky, allow when clean). Precedence: the
// most severe action wins (see severity: reject > drop > reroute > flag > allow); on a tie,
// the first check in policy order, whose status, route or receipt the decision carries.
// Shadow mode is applied when the decision is recorded, not here.
func Decide(p *Policy, signals []SignalOutcome) Decision {
	best := Outcome{Action: ActionAllow}
	cause := "none"
	var buf [4]string
	reasons := buf[:0]
	clean := 0
	for i := range p.Checks {
		if i >= len(signals) {
			break
		}
		c, so := &p.Checks[i], &signals[i]
		var (
			o       Outcome
			causeOf string // precomputed cause, "" when not prepared
		)
		switch {
		case so.Err != "":
			o, causeOf = c.OnError, c.causeError
			reasons = append(reasons, string(c.Signal)+" look-up failed ("+so.Err+"): "+string(orAllow(o.Action)))
		case so.unknown:
			o, causeOf = c.OnUnknown, c.causeUnknown
			reasons = append(reasons, c.reason(so, o.Action, c.unknownReason, unknownDetail))
		case so.Risky:
			o, causeOf = c.OnRisk, c.causeRisky
			reasons = append(reasons, c.reason(so, o.Action, c.riskyReason, c.risky))
		default:
			if c.cleanReason != "" && so.Detail == c.clean {
				reasons = append(reasons, c.cleanReason)
				clean++
			} else {
				reasons = append(reasons, string(c.Signal)+": "+so.Detail)
			}
			continue
		}
		if severity(o.Action) > severity(best.Action) {
			best = o
			cause = causeOf
			if cause == "" {
				cause = string(c.Signal) + ":" + so.kind()
			}
		}
	}
	var d Decision
	switch {
	case len(reasons) == 0:
		d = best.decision("no checks configured")
	case clean == len(p.Checks) && p.allClean != "":
		d = best.decision(p.allClean) // the common case formats nothing
	default:
		d = best.decision(strings.Join(reasons, "; "))
	}
	d.Cause = cause
	return d
}

func orAllow(a Action) Action {
	if a == "" {
		return ActionAllow
	}
	return a
}

// newCorrelationID returns a random UUIDv4, the x-correlator sent with the look-ups.
func newCorrelationID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// Mask hides all but the last keep characters of a number: "+447700900123" → "*********0123".
func Mask(s string, keep int) string {
	if len(s) <= keep {
		return stars(len(s))
	}
	n := len(s) - keep
	if keep == 0 {
		return stars(n)
	}
	return stars(n) + s[n:]
}

// maskStars is sliced for masks of up to its length, so masking allocates at most the result.
const maskStars = "********************************"

func stars(n int) string {
	if n <= len(maskStars) {
		return maskStars[:n]
	}
	return strings.Repeat("*", n)
}

// Check runs an account's checks for a number as if an OTP were sent to it now, and returns
// the annotated message with its signals and decision. Nothing is recorded or relayed.
func (ic *Interceptor) Check(ctx context.Context, account, number string) (*Message, error) {
	p := ic.cfg.Policies[account]
	if p == nil {
		return nil, fmt.Errorf("interceptor: account %q has no OTP policy", account)
	}
	m := &Message{Account: account, Dest: number, OTP: true, Rule: "manual check", Received: ic.cfg.Now()}
	if strings.HasPrefix(number, "+") {
		m.Dest, m.DestTON, m.DestNPI = number[1:], 1, 1
	}
	lctx, cancel := context.WithTimeout(ctx, p.Deadline)
	defer cancel()
	if err := ic.chain.Serve(withPolicy(lctx, p), m); err != nil {
		return nil, err
	}
	if p.Shadow {
		m.Decision.Shadow = true
	}
	return m, nil
}

// shortDur writes whole hours as "72h" rather than "72h0m0s".
func shortDur(d time.Duration) string {
	if d > 0 && d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
