package checks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// GuardConfig configures a Guard. Zero fields take the documented defaults.
type GuardConfig struct {
	// TTL is how long a result (or ErrUnknownNumber) is cached, per signal. Missing or
	// zero entries take the defaults: 10m sim_swap, 5m call_forwarding, 10m device_swap,
	// 5m roaming. A negative TTL disables caching for that signal. Signals other than the
	// four known ones are never cached.
	TTL map[Signal]time.Duration
	// ErrorTTL is how long other errors are cached, so a failing number is not hammered;
	// default 5s, negative disables. ErrSaturated and ErrBreakerOpen are never cached.
	ErrorTTL time.Duration
	// CacheSize bounds each cache (per signal, and the error cache); default 100000.
	CacheSize int
	// MaxConcurrent bounds concurrent provider calls; beyond it a call fails at once with
	// ErrSaturated. Default 256.
	MaxConcurrent int
	// Timeout bounds one provider call; default 1500ms. It should be shorter than the
	// SMPP response timeout the ESME applies.
	Timeout time.Duration
	// BreakerFailures is the number of consecutive ErrUnavailable results (timeouts
	// included) that opens the breaker; default 5.
	BreakerFailures int
	// BreakerOpenFor is how long the breaker stays open before one probe call is let
	// through; default 10s.
	BreakerOpenFor time.Duration
	// Now is the clock for cache expiry and the breaker; default time.Now.
	Now func() time.Time
}

// Defaults for GuardConfig.
const (
	DefaultErrorTTL        = 5 * time.Second
	DefaultCacheSize       = 100000
	DefaultMaxConcurrent   = 256
	DefaultTimeout         = 1500 * time.Millisecond
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = 10 * time.Second
)

// DefaultTTL returns the default cache TTL of a signal (0 for unknown signals).
func DefaultTTL(s Signal) time.Duration {
	switch s {
	case SimSwap, DeviceSwap:
		return 10 * time.Minute
	case CallForwarding, Roaming:
		return 5 * time.Minute
	}
	return 0
}

// BreakerState is the state of a Guard's circuit breaker.
type BreakerState string

// Breaker states.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half-open"
)

// GuardStats are a Guard's counters since it was created.
type GuardStats struct {
	// Hits are queries answered from the cache (results and cached errors); Misses went on
	// to a (possibly shared) provider call.
	Hits, Misses uint64
	// Calls are provider calls actually made: Misses minus coalesced, shed and
	// breaker-rejected queries.
	Calls uint64
	// Errors counts provider-call outcomes by sentinel: unknown_number, unauthorized,
	// rate_limited, unavailable, invalid, unsupported. Timeouts are counted in unavailable
	// and also in Timeouts.
	Errors   map[string]uint64
	Timeouts uint64
	// Shed are queries refused with ErrSaturated.
	Shed uint64
	// BreakerRejected are queries refused with ErrBreakerOpen.
	BreakerRejected uint64
	// Abandoned are queries whose caller's context ended before the answer came.
	Abandoned uint64
	// Breaker is the breaker's state now; BreakerOpens counts transitions to open.
	Breaker      BreakerState
	BreakerOpens uint64
	// InFlight is the number of provider calls running now.
	InFlight int64
}

// numErrorKinds is the number of sentinels counted per kind in GuardStats.Errors.
const numErrorKinds = 6

// errorKinds returns the sentinels counted per kind, with their Stats names.
func errorKinds() [numErrorKinds]struct {
	err  error
	name string
} {
	return [numErrorKinds]struct {
		err  error
		name string
	}{
		{ErrUnknownNumber, "unknown_number"},
		{ErrUnauthorized, "unauthorized"},
		{ErrRateLimited, "rate_limited"},
		{ErrUnavailable, "unavailable"},
		{ErrInvalid, "invalid"},
		{ErrUnsupported, "unsupported"},
	}
}

// Guard wraps a Provider with a cache per signal, singleflight, a concurrency bound, a
// per-call timeout and a circuit breaker. *Guard implements Provider. The caches are
// size-bounded, sharded LRUs (lruCache) whose entries carry their own expiry, checked on the
// Guard's clock at look-up (no sweeper goroutine: a Guard needs no Close).
type Guard struct {
	p      Provider
	cfg    GuardConfig
	log    *zap.Logger
	now    func() time.Time
	wall   bool                             // now is time.Now (GuardConfig.Now was nil)
	caches [numSignals]*lruCache[numberKey] // by signalIndex, fixed after NewGuard; nil = no caching
	ttls   [numSignals]time.Duration
	errs   *lruCache[cacheKey] // nil = errors not cached
	sf     singleflight.Group
	br     breaker

	inflight                                               atomic.Int64
	hits, misses, calls, timeouts, shed, brRejected, aband atomic.Uint64
	errCounts                                              [numErrorKinds]atomic.Uint64
}

// NewGuard wraps p. log may be nil. The caches are created here, once.
func NewGuard(p Provider, cfg GuardConfig, log *zap.Logger) *Guard {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.ErrorTTL == 0 {
		cfg.ErrorTTL = DefaultErrorTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = DefaultBreakerFailures
	}
	if cfg.BreakerOpenFor <= 0 {
		cfg.BreakerOpenFor = DefaultBreakerOpenFor
	}
	wall := cfg.Now == nil
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Guard{
		p: p, cfg: cfg, log: log, now: cfg.Now, wall: wall,
		br: breaker{threshold: cfg.BreakerFailures, openFor: cfg.BreakerOpenFor},
	}
	for _, s := range AllSignals() {
		ttl := cfg.TTL[s]
		if ttl == 0 {
			ttl = DefaultTTL(s)
		}
		i := signalIndex(s)
		g.ttls[i] = ttl
		if ttl > 0 {
			g.caches[i] = mustLRU[numberKey](cfg.CacheSize)
		}
	}
	if cfg.ErrorTTL > 0 {
		g.errs = mustLRU[cacheKey](cfg.CacheSize)
	}
	return g
}

// Name returns the wrapped provider's name.
func (g *Guard) Name() string { return g.p.Name() }

// Check answers q from the cache, or joins the in-flight call for the same (signal,
// MSISDN, MaxAge), or makes one provider call under the concurrency bound, the breaker and
// the timeout. The provider call is detached from ctx's cancellation (other callers may
// be waiting for it); if ctx ends first, Check returns at once with an error matching
// both ErrUnavailable and ctx.Err(), and the call's answer is still cached.
func (g *Guard) Check(ctx context.Context, q Query) (Result, error) {
	key := keyOf(q)
	if e, ok := g.cached(q.Signal, key, g.now()); ok {
		g.hits.Add(1)
		return hit(e)
	}
	g.misses.Add(1)
	if g.br.rejecting(g.now()) {
		g.brRejected.Add(1)
		return Result{}, g.breakerErr()
	}
	ch := g.sf.DoChan(key.String(), func() (any, error) { return g.call(context.WithoutCancel(ctx), q, key) })
	// The call's own deadline normally answers first; this bounds the wait even if the
	// provider ignores its context.
	stuck := time.NewTimer(g.cfg.Timeout + timeoutGrace)
	defer stuck.Stop()
	select {
	case r := <-ch:
		res, _ := r.Val.(Result)
		return res.Clone(), r.Err
	case <-ctx.Done():
		g.aband.Add(1)
		return Result{}, fmt.Errorf("checks: %s %s look-up abandoned: %w: %w", g.p.Name(), q.Signal, ErrUnavailable, ctx.Err())
	case <-stuck.C:
		g.timeouts.Add(1)
		return Result{}, fmt.Errorf("checks: %s %s: provider ignored its %s deadline: %w: %w", g.p.Name(), q.Signal, g.cfg.Timeout, ErrUnavailable, context.DeadlineExceeded)
	}
}

// Cached answers q from the cache alone: ok is false on a miss, and nothing is called. The
// interceptor uses it to decide fully cached OTPs without a goroutine.
func (g *Guard) Cached(q Query) (res Result, err error, ok bool) {
	e, ok := g.cached(q.Signal, keyOf(q), g.now())
	if !ok {
		return Result{}, nil, false
	}
	g.hits.Add(1)
	res, err = hit(e)
	return res, err, true
}

// Now reads the Guard's clock (GuardConfig.Now), for PeekAt.
func (g *Guard) Now() time.Time { return g.now() }

// WallClock reports whether the Guard's clock is time.Now (GuardConfig.Now left nil): a
// caller on time.Now too may pass PeekAt its own reading instead of calling Now.
func (g *Guard) WallClock() bool { return g.wall }

// PeekAt is Cached for a caller that reads the Guard's clock once (Now) for several queries
// of one decision: entries expire as of now. It copies nothing: res is the cache's own (nil
// with an error), which the caller must only read (Cached returns copies).
func (g *Guard) PeekAt(q Query, now time.Time) (res *Result, err error, ok bool) {
	e, ok := g.cached(q.Signal, keyOf(q), now)
	if !ok {
		return nil, nil, false
	}
	g.hits.Add(1)
	if e.cerr != nil {
		return nil, e.cerr, true
	}
	return &e.res, nil, true
}

// timeoutGrace is how long past the call timeout a waiter waits for a provider that does
// not honour its context.
const timeoutGrace = 100 * time.Millisecond

func hit(e *cacheEntry) (Result, error) {
	if e.cerr != nil {
		return Result{}, e.cerr
	}
	return e.res.Clone(), nil
}

// cacheKey identifies a question: MaxAge counts (in CAMARA hours) only for swap signals
// (maxAge is -1 for the others). A struct, so a look-up builds no string.
type cacheKey struct {
	signal Signal
	msisdn string
	maxAge int
}

func keyOf(q Query) cacheKey {
	k := cacheKey{signal: q.Signal, msisdn: q.MSISDN, maxAge: -1}
	if q.Signal.UsesMaxAge() {
		k.maxAge = MaxAgeHours(q.MaxAge)
	}
	return k
}

func (k cacheKey) number() string { return k.msisdn }

// numberKey is a cacheKey within one signal's cache.
type numberKey struct {
	msisdn string
	maxAge int
}

func (k numberKey) number() string { return k.msisdn }

// String is the singleflight key.
func (k cacheKey) String() string {
	s := string(k.signal) + "|" + k.msisdn
	if k.maxAge >= 0 {
		s += "|" + strconv.Itoa(k.maxAge)
	}
	return s
}

func mustLRU[K shardKey](size int) *lruCache[K] {
	c, err := newLRUCache[K](size)
	if err != nil { // only for size <= 0, which NewGuard rules out
		panic(err.Error())
	}
	return c
}

// numSignals is the number of known signals (AllSignals), which have a cache each.
const numSignals = 4

// signalIndex is s's index in Guard.caches and Guard.ttls, -1 for an unknown signal.
func signalIndex(s Signal) int {
	switch s {
	case SimSwap:
		return 0
	case CallForwarding:
		return 1
	case DeviceSwap:
		return 2
	case Roaming:
		return 3
	}
	return -1
}

// signalCache is s's cache, nil when s is not cached.
func (g *Guard) signalCache(s Signal) *lruCache[numberKey] {
	if i := signalIndex(s); i >= 0 {
		return g.caches[i]
	}
	return nil
}

// cached looks key up in the signal's cache, then in the error cache, as of now on the
// Guard's clock. An expired entry is removed.
func (g *Guard) cached(s Signal, key cacheKey, now time.Time) (*cacheEntry, bool) {
	if c := g.signalCache(s); c != nil {
		if e, ok := c.get(numberKey{key.msisdn, key.maxAge}, now); ok {
			return e, true
		}
	}
	if g.errs != nil {
		if e, ok := g.errs.get(key, now); ok {
			return e, true
		}
	}
	return nil, false
}

// call is the singleflight leader's work: one provider call, its accounting and caching.
func (g *Guard) call(ctx context.Context, q Query, key cacheKey) (res Result, err error) {
	// An earlier leader for this key may have finished between our miss and now.
	if e, ok := g.cached(q.Signal, key, g.now()); ok {
		return hit(e)
	}
	if n := g.inflight.Add(1); n > int64(g.cfg.MaxConcurrent) {
		g.inflight.Add(-1)
		g.shed.Add(1)
		return Result{}, fmt.Errorf("checks: %s: %d provider calls in flight: %w", g.p.Name(), n-1, ErrSaturated)
	}
	defer g.inflight.Add(-1)
	probe, ok := g.br.allow(g.now())
	if !ok {
		g.brRejected.Add(1)
		return Result{}, g.breakerErr()
	}

	cctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	g.calls.Add(1)
	start := time.Now()
	res, err = g.invoke(cctx, q)
	lat := time.Since(start)
	if err != nil {
		err = g.classify(cctx, q, err)
	} else {
		if res.Signal == "" {
			res.Signal = q.Signal
		}
		if res.Source == "" {
			res.Source = g.p.Name()
		}
		if res.FetchedAt.IsZero() {
			res.FetchedAt = g.now()
		}
		if res.Latency == 0 {
			res.Latency = lat
		}
		res.Cached = false
	}
	g.record(probe, err)
	g.store(q.Signal, key, res, err)
	return res, err
}

// invoke calls the provider, turning a panic into ErrUnavailable.
func (g *Guard) invoke(ctx context.Context, q Query) (res Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			g.log.Error("checks: provider panicked", zap.String("provider", g.p.Name()), zap.String("signal", string(q.Signal)), zap.Any("panic", v), zap.Stack("stack"))
			res, err = Result{}, fmt.Errorf("checks: %s panicked: %v: %w", g.p.Name(), v, ErrUnavailable)
		}
	}()
	return g.p.Check(ctx, q)
}

// classify makes sure err matches a sentinel: an error the provider classified keeps its
// sentinel; a timeout or an unclassified error is ErrUnavailable.
func (g *Guard) classify(ctx context.Context, q Query, err error) error {
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	switch {
	case Kind(err) != nil:
		if errors.Is(err, context.DeadlineExceeded) {
			g.timeouts.Add(1)
		}
		return err
	case timedOut:
		g.timeouts.Add(1)
		return fmt.Errorf("checks: %s %s timed out after %s: %w: %w", g.p.Name(), q.Signal, g.cfg.Timeout, ErrUnavailable, err)
	}
	return fmt.Errorf("checks: %s: %w: %w", g.p.Name(), ErrUnavailable, err)
}

// record counts the outcome and feeds the breaker.
func (g *Guard) record(probe bool, err error) {
	if err != nil {
		for i, k := range errorKinds() {
			if errors.Is(err, k.err) {
				g.errCounts[i].Add(1)
				break
			}
		}
	}
	failed := errors.Is(err, ErrUnavailable)
	switch g.br.record(probe, failed, g.now()) {
	case BreakerOpen:
		msg := "checks: circuit breaker opened after consecutive failures"
		if probe {
			msg = "checks: circuit breaker probe failed; open again"
		}
		g.log.Warn(msg, zap.String("provider", g.p.Name()), zap.Int("failures", g.br.threshold),
			zap.Duration("open_for", g.cfg.BreakerOpenFor), zap.Error(err))
	case BreakerClosed:
		g.log.Info("checks: circuit breaker closed after a successful probe", zap.String("provider", g.p.Name()))
	}
}

// store caches a result or ErrUnknownNumber for the signal's TTL and other errors for
// ErrorTTL; saturation and breaker errors are not cached.
func (g *Guard) store(s Signal, key cacheKey, res Result, err error) {
	now := g.now()
	switch {
	case err == nil || errors.Is(err, ErrUnknownNumber):
		if c := g.signalCache(s); c != nil {
			hit := res.Clone()
			hit.Cached, hit.Latency = true, 0
			c.add(numberKey{key.msisdn, key.maxAge}, newCacheEntry(hit, err, now.Add(g.ttls[signalIndex(s)])))
		}
	case errors.Is(err, ErrSaturated), errors.Is(err, ErrBreakerOpen):
	default:
		if g.errs != nil {
			g.errs.add(key, newCacheEntry(Result{}, err, now.Add(g.cfg.ErrorTTL)))
		}
	}
}

func newCacheEntry(res Result, err error, expires time.Time) *cacheEntry {
	e := &cacheEntry{res: res, err: err, expires: expires}
	if err != nil {
		e.cerr = cachedError{err}
	}
	return e
}

func (g *Guard) breakerErr() error {
	return fmt.Errorf("checks: %s: %d consecutive failures: %w", g.p.Name(), g.br.threshold, ErrBreakerOpen)
}

// Stats returns the Guard's counters.
func (g *Guard) Stats() GuardStats {
	st := GuardStats{
		Hits: g.hits.Load(), Misses: g.misses.Load(), Calls: g.calls.Load(),
		Errors: map[string]uint64{}, Timeouts: g.timeouts.Load(), Shed: g.shed.Load(),
		BreakerRejected: g.brRejected.Load(), Abandoned: g.aband.Load(), InFlight: g.inflight.Load(),
		BreakerOpens: g.br.opens.Load(),
	}
	for i, k := range errorKinds() {
		st.Errors[k.name] = g.errCounts[i].Load()
	}
	st.Breaker = g.br.state(g.now())
	return st
}

// breaker is a consecutive-failure counter with an open period and a single half-open
// probe.
type breaker struct {
	threshold int
	openFor   time.Duration
	opens     atomic.Uint64

	mu       sync.Mutex
	st       BreakerState // "" = closed
	failures int
	until    time.Time // end of the open period
	probing  bool
}

// rejecting is the fast path: the breaker is open and its open period has not ended.
func (b *breaker) rejecting(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st == BreakerOpen && now.Before(b.until) || b.st == BreakerHalfOpen && b.probing
}

// allow decides whether a call may go out; probe is true for the half-open probe.
func (b *breaker) allow(now time.Time) (probe, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.st {
	case BreakerOpen:
		if now.Before(b.until) {
			return false, false
		}
		b.st, b.probing = BreakerHalfOpen, true
		return true, true
	case BreakerHalfOpen:
		if b.probing {
			return false, false
		}
		b.probing = true
		return true, true
	}
	return false, true
}

// record feeds one call's outcome; it returns the new state when it changed, "" if not.
func (b *breaker) record(probe, failed bool, now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case probe:
		b.probing = false
		if failed {
			b.open(now)
			return BreakerOpen
		}
		b.st, b.failures = "", 0
		return BreakerClosed
	case b.st != "":
		// A call that started before the breaker opened: the probe decides, not it.
		return ""
	case !failed:
		b.failures = 0
		return ""
	}
	b.failures++
	if b.failures >= b.threshold {
		b.open(now)
		return BreakerOpen
	}
	return ""
}

func (b *breaker) open(now time.Time) {
	b.st, b.until, b.failures = BreakerOpen, now.Add(b.openFor), 0
	b.opens.Add(1)
}

// state reports the state as callers see it: an open breaker whose period ended is
// half-open (the next call probes).
func (b *breaker) state(now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.st == "":
		return BreakerClosed
	case b.st == BreakerOpen && !now.Before(b.until):
		return BreakerHalfOpen
	}
	return b.st
}
