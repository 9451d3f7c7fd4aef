package checks

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// fakeProvider counts calls and answers with fn.
type fakeProvider struct {
	calls atomic.Int64
	fn    func(ctx context.Context, q Query) (Result, error)
}

func (f *fakeProvider) Name() string { return "fake" }

func (f *fakeProvider) Check(ctx context.Context, q Query) (Result, error) {
	f.calls.Add(1)
	return f.fn(ctx, q)
}

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func okResult(clk *clock) func(context.Context, Query) (Result, error) {
	return func(_ context.Context, q Query) (Result, error) {
		return Result{Signal: q.Signal, Swapped: true, Forwardings: []string{"unconditional"}, FetchedAt: clk.Now(), Latency: time.Millisecond}, nil
	}
}

func TestGuardCacheTTLPerSignal(t *testing.T) {
	clk := newClock()
	p := &fakeProvider{fn: okResult(clk)}
	g := NewGuard(p, GuardConfig{Now: clk.Now}, zaptest.NewLogger(t))
	ctx := context.Background()
	sim := Query{MSISDN: "+447700900001", Signal: SimSwap, MaxAge: 72 * time.Hour}
	cf := Query{MSISDN: "+447700900001", Signal: CallForwarding}

	type step struct {
		name      string
		advance   time.Duration
		q         Query
		wantCalls int64
		cached    bool
	}
	steps := []step{
		{"sim miss", 0, sim, 1, false},
		{"cf miss", 0, cf, 2, false},
		{"sim hit", time.Minute, sim, 2, true},
		{"cf hit", 0, cf, 2, true},
		{"sim same CAMARA hours is the same question", 0, Query{MSISDN: sim.MSISDN, Signal: SimSwap, MaxAge: 71*time.Hour + time.Minute}, 2, true},
		{"sim other window is another question", 0, Query{MSISDN: sim.MSISDN, Signal: SimSwap, MaxAge: 24 * time.Hour}, 3, false},
		{"cf ignores MaxAge", 0, Query{MSISDN: cf.MSISDN, Signal: CallForwarding, MaxAge: time.Hour}, 3, true},
		{"cf expires after 5m", 4*time.Minute + time.Second, cf, 4, false},
		{"sim still cached at 5m01s", 0, sim, 4, true},
		{"sim expires after 10m", 5 * time.Minute, sim, 5, false},
		{"device swap default 10m", 0, Query{MSISDN: sim.MSISDN, Signal: DeviceSwap, MaxAge: time.Hour}, 6, false},
		{"device swap hit at 9m59s", 9*time.Minute + 59*time.Second, Query{MSISDN: sim.MSISDN, Signal: DeviceSwap, MaxAge: time.Hour}, 6, true},
		{"roaming miss", 0, Query{MSISDN: sim.MSISDN, Signal: Roaming}, 7, false},
		{"roaming expires after 5m", 5 * time.Minute, Query{MSISDN: sim.MSISDN, Signal: Roaming}, 8, false},
	}
	fetched := map[string]time.Time{}
	for _, s := range steps {
		clk.Advance(s.advance)
		res, err := g.Check(ctx, s.q)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := p.calls.Load(); got != s.wantCalls {
			t.Fatalf("%s: provider calls = %d, want %d", s.name, got, s.wantCalls)
		}
		if res.Cached != s.cached {
			t.Fatalf("%s: Cached = %v, want %v", s.name, res.Cached, s.cached)
		}
		key := keyOf(s.q).String()
		if s.cached {
			if res.Latency != 0 || !res.FetchedAt.Equal(fetched[key]) {
				t.Fatalf("%s: cached result has Latency %v FetchedAt %v, want 0 and the original %v", s.name, res.Latency, res.FetchedAt, fetched[key])
			}
		} else {
			if res.Latency == 0 || !res.FetchedAt.Equal(clk.Now()) {
				t.Fatalf("%s: fresh result has Latency %v FetchedAt %v", s.name, res.Latency, res.FetchedAt)
			}
			fetched[key] = res.FetchedAt
		}
		if res.Source != "fake" || res.Signal != s.q.Signal {
			t.Fatalf("%s: Source %q Signal %q", s.name, res.Source, res.Signal)
		}
	}
	st := g.Stats()
	if st.Calls != 8 || st.Hits != 6 || st.Misses != 8 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestGuardCachedResultsAreCopies(t *testing.T) {
	clk := newClock()
	g := NewGuard(&fakeProvider{fn: okResult(clk)}, GuardConfig{Now: clk.Now}, nil)
	q := Query{MSISDN: "+447700900001", Signal: CallForwarding}
	for range 3 {
		res, err := g.Check(context.Background(), q)
		if err != nil || res.Forwardings[0] != "unconditional" {
			t.Fatalf("a caller's change leaked into the cache: %+v %v", res, err)
		}
		res.Forwardings[0] = "mutated by caller"
	}
}

func TestGuardConfiguredTTLAndDisabledCache(t *testing.T) {
	clk := newClock()
	p := &fakeProvider{fn: okResult(clk)}
	g := NewGuard(p, GuardConfig{Now: clk.Now, TTL: map[Signal]time.Duration{SimSwap: time.Minute, Roaming: -1}}, nil)
	ctx := context.Background()
	sim := Query{MSISDN: "+447700900001", Signal: SimSwap, MaxAge: time.Hour}
	roam := Query{MSISDN: "+447700900001", Signal: Roaming}
	for range 3 {
		if _, err := g.Check(ctx, roam); err != nil {
			t.Fatal(err)
		}
	}
	if p.calls.Load() != 3 {
		t.Fatalf("negative TTL: calls = %d, want 3 (no caching)", p.calls.Load())
	}
	g.Check(ctx, sim)
	clk.Advance(59 * time.Second)
	if r, _ := g.Check(ctx, sim); !r.Cached {
		t.Fatalf("sim_swap not cached within its 1m TTL")
	}
	clk.Advance(2 * time.Second)
	if r, _ := g.Check(ctx, sim); r.Cached {
		t.Fatalf("sim_swap cached beyond its 1m TTL")
	}
}

func TestGuardErrorTTL(t *testing.T) {
	clk := newClock()
	errs := map[string]error{
		"+447700900001": fmt.Errorf("boom: %w", ErrUnavailable),
		"+447700900002": &APIError{HTTPStatus: 404, Code: "IDENTIFIER_NOT_FOUND", Err: ErrUnknownNumber},
		"+447700900003": &APIError{HTTPStatus: 429, Code: "TOO_MANY_REQUESTS", Err: ErrRateLimited},
	}
	p := &fakeProvider{fn: func(_ context.Context, q Query) (Result, error) { return Result{}, errs[q.MSISDN] }}
	g := NewGuard(p, GuardConfig{Now: clk.Now, BreakerFailures: 100}, nil)
	ctx := context.Background()
	q := func(n string) Query { return Query{MSISDN: n, Signal: SimSwap, MaxAge: time.Hour} }

	tests := []struct {
		name      string
		advance   time.Duration
		number    string
		want      error
		wantCalls int64
	}{
		{"unavailable: call", 0, "+447700900001", ErrUnavailable, 1},
		{"unknown: call", 0, "+447700900002", ErrUnknownNumber, 2},
		{"rate limited: call", 0, "+447700900003", ErrRateLimited, 3},
		{"unavailable cached for ErrorTTL", 4 * time.Second, "+447700900001", ErrUnavailable, 3},
		{"rate limited cached for ErrorTTL", 0, "+447700900003", ErrRateLimited, 3},
		{"unavailable expires after 5s", 2 * time.Second, "+447700900001", ErrUnavailable, 4},
		{"rate limited expires after 5s", 0, "+447700900003", ErrRateLimited, 5},
		{"unknown cached like a result", 0, "+447700900002", ErrUnknownNumber, 5},
		{"unknown still cached at 9m", 9 * time.Minute, "+447700900002", ErrUnknownNumber, 5},
		{"unknown expires with the signal TTL", time.Minute, "+447700900002", ErrUnknownNumber, 6},
	}
	for _, tt := range tests {
		clk.Advance(tt.advance)
		_, err := g.Check(ctx, q(tt.number))
		if !errors.Is(err, tt.want) {
			t.Fatalf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if got := p.calls.Load(); got != tt.wantCalls {
			t.Fatalf("%s: calls = %d, want %d", tt.name, got, tt.wantCalls)
		}
	}
	var ae *APIError
	if _, err := g.Check(ctx, q("+447700900002")); !errors.As(err, &ae) || ae.Code != "IDENTIFIER_NOT_FOUND" {
		t.Fatalf("cached error lost its details: %v", err)
	}
	st := g.Stats()
	if st.Errors["unavailable"] != 2 || st.Errors["unknown_number"] != 2 || st.Errors["rate_limited"] != 2 {
		t.Fatalf("error counts = %v", st.Errors)
	}

	// ErrorTTL < 0: errors are not cached.
	p2 := &fakeProvider{fn: func(context.Context, Query) (Result, error) { return Result{}, ErrInvalid }}
	g2 := NewGuard(p2, GuardConfig{Now: clk.Now, ErrorTTL: -1}, nil)
	g2.Check(ctx, q("+447700900001"))
	g2.Check(ctx, q("+447700900001"))
	if p2.calls.Load() != 2 {
		t.Fatalf("ErrorTTL -1: calls = %d, want 2", p2.calls.Load())
	}
}

func TestGuardSingleflight(t *testing.T) {
	release := make(chan struct{})
	p := &fakeProvider{fn: func(ctx context.Context, q Query) (Result, error) {
		<-release
		return Result{Swapped: true}, nil
	}}
	g := NewGuard(p, GuardConfig{Timeout: 10 * time.Second}, nil)
	const n = 100
	q := Query{MSISDN: "+447700900001", Signal: SimSwap, MaxAge: 72 * time.Hour}
	var wg sync.WaitGroup
	var swapped, failed atomic.Int64
	for range n {
		wg.Go(func() {
			res, err := g.Check(context.Background(), q)
			if err != nil {
				failed.Add(1)
			} else if res.Swapped {
				swapped.Add(1)
			}
		})
	}
	waitFor(t, "all callers to miss", func() bool { return g.Stats().Misses == n })
	close(release)
	wg.Wait()
	if got := p.calls.Load(); got != 1 {
		t.Fatalf("%d concurrent identical queries made %d provider calls, want 1", n, got)
	}
	if swapped.Load() != n || failed.Load() != 0 {
		t.Fatalf("swapped=%d failed=%d, want %d answers", swapped.Load(), failed.Load(), n)
	}
	if st := g.Stats(); st.Calls != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// blocker is a provider whose calls wait for release and report entering.
type blocker struct {
	fakeProvider
	entered chan string
	release chan struct{}
}

func newBlocker() *blocker {
	b := &blocker{entered: make(chan string, 100), release: make(chan struct{})}
	b.fn = func(ctx context.Context, q Query) (Result, error) {
		b.entered <- q.MSISDN
		select {
		case <-b.release:
			return Result{Forwarding: true}, nil
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	return b
}

func TestGuardMaxConcurrentSheds(t *testing.T) {
	b := newBlocker()
	g := NewGuard(b, GuardConfig{MaxConcurrent: 2, Timeout: 10 * time.Second}, nil)
	ctx := context.Background()
	q := func(n string) Query { return Query{MSISDN: n, Signal: CallForwarding} }
	errs := make(chan error, 3)
	for _, n := range []string{"+447700900001", "+447700900002"} {
		go func() { _, err := g.Check(ctx, q(n)); errs <- err }()
	}
	<-b.entered
	<-b.entered
	// A query for a number already in flight joins that call: no slot needed.
	go func() { _, err := g.Check(ctx, q("+447700900001")); errs <- err }()
	waitFor(t, "the joiner", func() bool { return g.Stats().Misses == 3 })

	start := time.Now()
	_, err := g.Check(ctx, q("+447700900003"))
	if !errors.Is(err, ErrSaturated) {
		t.Fatalf("third concurrent call: err = %v, want ErrSaturated", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("shedding took %v, want immediate", d)
	}
	if st := g.Stats(); st.Shed != 1 || st.InFlight != 2 {
		t.Fatalf("stats = %+v", st)
	}
	close(b.release)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Saturation is not cached: the shed number is answered once there is room.
	if res, err := g.Check(ctx, q("+447700900003")); err != nil || !res.Forwarding {
		t.Fatalf("after release: %+v %v", res, err)
	}
	if b.calls.Load() != 3 || g.Stats().InFlight != 0 {
		t.Fatalf("calls = %d, stats = %+v", b.calls.Load(), g.Stats())
	}
}

func TestGuardTimeout(t *testing.T) {
	b := newBlocker()
	defer close(b.release)
	g := NewGuard(b, GuardConfig{Timeout: 50 * time.Millisecond}, nil)
	start := time.Now()
	_, err := g.Check(context.Background(), Query{MSISDN: "+447700900001", Signal: SimSwap, MaxAge: time.Hour})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > time.Second {
		t.Fatalf("timed out after %v, want about 50ms", d)
	}
	if st := g.Stats(); st.Timeouts != 1 || st.Errors["unavailable"] != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestGuardProviderIgnoringDeadline(t *testing.T) {
	release := make(chan struct{})
	p := &fakeProvider{fn: func(context.Context, Query) (Result, error) { <-release; return Result{}, nil }}
	g := NewGuard(p, GuardConfig{Timeout: 20 * time.Millisecond}, nil)
	start := time.Now()
	_, err := g.Check(context.Background(), Query{MSISDN: "+447700900001", Signal: Roaming})
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	close(release)
	waitFor(t, "the stuck call to end", func() bool { return g.Stats().InFlight == 0 })
}

func TestGuardCallerContext(t *testing.T) {
	clk := newClock()
	b := newBlocker()
	g := NewGuard(b, GuardConfig{Timeout: 10 * time.Second, Now: clk.Now}, nil)
	q := Query{MSISDN: "+447700900001", Signal: CallForwarding}

	// One waiter gives up; the other still gets the shared answer.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	other := make(chan error, 1)
	go func() { _, err := g.Check(context.Background(), q); other <- err }()
	<-b.entered
	_, err := g.Check(ctx, q)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("abandoned: err = %v", err)
	}
	close(b.release)
	if err := <-other; err != nil {
		t.Fatalf("the other waiter: %v", err)
	}
	// The answer was cached for the next caller.
	if res, err := g.Check(context.Background(), q); err != nil || !res.Cached || !res.Forwarding {
		t.Fatalf("after: %+v %v", res, err)
	}
	if st := g.Stats(); st.Abandoned != 1 || st.Calls != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestGuardBreaker(t *testing.T) {
	clk := newClock()
	var mode atomic.Value // "ok", "fail", "unknown", "block"
	mode.Store("ok")
	entered, release := make(chan struct{}, 10), make(chan string)
	p := &fakeProvider{fn: func(ctx context.Context, q Query) (Result, error) {
		m := mode.Load().(string)
		if m == "block" {
			entered <- struct{}{}
			m = <-release
		}
		switch m {
		case "fail":
			return Result{}, fmt.Errorf("HTTP 503: %w", ErrUnavailable)
		case "unknown":
			return Result{}, ErrUnknownNumber
		}
		return Result{Roaming: true}, nil
	}}
	g := NewGuard(p, GuardConfig{Now: clk.Now, BreakerFailures: 3, BreakerOpenFor: 10 * time.Second, ErrorTTL: -1, Timeout: 10 * time.Second}, zaptest.NewLogger(t))
	ctx := context.Background()
	n := 0
	fresh := func() Query { n++; return Query{MSISDN: fmt.Sprintf("+4477009%05d", n), Signal: Roaming} }
	cachedQ := fresh()
	if _, err := g.Check(ctx, cachedQ); err != nil {
		t.Fatal(err)
	}

	// Failures interrupted by an answer (even an error answer) do not open it.
	mode.Store("fail")
	g.Check(ctx, fresh())
	g.Check(ctx, fresh())
	mode.Store("unknown")
	g.Check(ctx, fresh())
	mode.Store("fail")
	g.Check(ctx, fresh())
	g.Check(ctx, fresh())
	if st := g.Stats(); st.Breaker != BreakerClosed {
		t.Fatalf("opened without %d consecutive failures: %+v", 3, st)
	}
	// The third consecutive failure opens it.
	if _, err := g.Check(ctx, fresh()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if st := g.Stats(); st.Breaker != BreakerOpen || st.BreakerOpens != 1 {
		t.Fatalf("not open: %+v", st)
	}
	calls := p.calls.Load()

	// Open: fail fast without calling the provider; cached answers are still served.
	start := time.Now()
	if _, err := g.Check(ctx, fresh()); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("open: err = %v, want ErrBreakerOpen", err)
	}
	if time.Since(start) > 50*time.Millisecond || p.calls.Load() != calls {
		t.Fatalf("open breaker called the provider or was slow")
	}
	if res, err := g.Check(ctx, cachedQ); err != nil || !res.Cached {
		t.Fatalf("cache not served while open: %v", err)
	}
	clk.Advance(9 * time.Second)
	if _, err := g.Check(ctx, fresh()); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("still open at 9s: err = %v", err)
	}

	// Half-open: one probe goes out, others fail fast; the probe fails → open again.
	clk.Advance(time.Second)
	if st := g.Stats(); st.Breaker != BreakerHalfOpen {
		t.Fatalf("state after open period = %v", st.Breaker)
	}
	mode.Store("block")
	probe := make(chan error, 1)
	go func() { _, err := g.Check(ctx, fresh()); probe <- err }()
	<-entered
	if _, err := g.Check(ctx, fresh()); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("second call during the probe: err = %v, want ErrBreakerOpen", err)
	}
	release <- "fail"
	if err := <-probe; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("probe: %v", err)
	}
	if st := g.Stats(); st.Breaker != BreakerOpen || st.BreakerOpens != 2 {
		t.Fatalf("failed probe did not reopen: %+v", st)
	}
	if _, err := g.Check(ctx, fresh()); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("reopened: err = %v", err)
	}

	// Next probe succeeds → closed, calls flow again.
	clk.Advance(10 * time.Second)
	go func() { _, err := g.Check(ctx, fresh()); probe <- err }()
	<-entered
	release <- "ok"
	if err := <-probe; err != nil {
		t.Fatalf("probe: %v", err)
	}
	mode.Store("ok")
	if st := g.Stats(); st.Breaker != BreakerClosed {
		t.Fatalf("successful probe did not close: %+v", st)
	}
	for range 5 {
		if _, err := g.Check(ctx, fresh()); err != nil {
			t.Fatalf("closed: %v", err)
		}
	}
	if st := g.Stats(); st.BreakerRejected != 4 || st.BreakerOpens != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestGuardTimeoutsOpenBreaker(t *testing.T) {
	b := newBlocker()
	defer close(b.release)
	g := NewGuard(b, GuardConfig{Timeout: 10 * time.Millisecond, BreakerFailures: 2, ErrorTTL: -1}, nil)
	for i := range 2 {
		if _, err := g.Check(context.Background(), Query{MSISDN: fmt.Sprintf("+44770090000%d", i), Signal: Roaming}); !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
	}
	if _, err := g.Check(context.Background(), Query{MSISDN: "+447700900009", Signal: Roaming}); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("err = %v, want ErrBreakerOpen after two timeouts", err)
	}
}

func TestGuardClassifiesProviderErrors(t *testing.T) {
	p := &fakeProvider{fn: func(_ context.Context, q Query) (Result, error) {
		if q.MSISDN == "+447700900001" {
			panic("provider bug")
		}
		return Result{}, errors.New("unclassified")
	}}
	g := NewGuard(p, GuardConfig{}, zaptest.NewLogger(t))
	for _, n := range []string{"+447700900001", "+447700900002"} {
		_, err := g.Check(context.Background(), Query{MSISDN: n, Signal: Roaming})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: err = %v, want ErrUnavailable", n, err)
		}
	}
	if g.Name() != "fake" {
		t.Fatalf("Name = %q", g.Name())
	}
}

func TestGuardNoGoroutineLeak(t *testing.T) {
	clk := newClock()
	var n atomic.Int64
	p := &fakeProvider{fn: func(ctx context.Context, q Query) (Result, error) {
		switch n.Add(1) % 4 {
		case 0:
			<-ctx.Done() // times out
			return Result{}, ctx.Err()
		case 1:
			return Result{}, ErrUnknownNumber
		case 2:
			time.Sleep(time.Millisecond)
		}
		return Result{Swapped: true}, nil
	}}
	g := NewGuard(p, GuardConfig{Now: clk.Now, Timeout: 20 * time.Millisecond, MaxConcurrent: 8, BreakerFailures: 1000}, nil)
	// NewGuard's cache sweepers run forever by design; count from here.
	runtime.GC()
	before := runtime.NumGoroutine()

	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ctx := context.Background()
			if i%5 == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Millisecond)
				defer cancel()
			}
			g.Check(ctx, Query{MSISDN: fmt.Sprintf("+4477009%05d", i%50), Signal: SimSwap, MaxAge: time.Hour})
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := g.Stats(); st.InFlight != 0 || st.Calls == 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// A failure answered from the cache says so and still names the call that produced it.
func TestCachedErrorMarked(t *testing.T) {
	ae := &APIError{HTTPStatus: 404, Code: "IDENTIFIER_NOT_FOUND", CorrelationID: "c-1", Err: ErrUnknownNumber}
	err := error(cachedError{ae})
	if !FromCache(err) || FromCache(ae) {
		t.Fatalf("FromCache: cached %v, direct %v", FromCache(err), FromCache(ae))
	}
	if !errors.Is(err, ErrUnknownNumber) || CorrelationID(err) != "c-1" || CorrelationID(errors.New("x")) != "" {
		t.Fatalf("the cached error hides its cause: Is %v, id %q", errors.Is(err, ErrUnknownNumber), CorrelationID(err))
	}
}
