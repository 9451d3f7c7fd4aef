package interceptor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppguard/smppguard/checks"
	"github.com/smppguard/smppguard/checks/camara"
	"github.com/smppguard/smppguard/testharness/fakecarrier"
)

func faultsHeapStackInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// A real carrier API that is down, slow, failing (500) or rate limiting (429) behind the
// CAMARA provider and the Guard (breaker on): every OTP is decided by its fail policy within
// the deadline, and nothing is left behind — no goroutines, no memory.
func TestCarrierFaultsNoLeak(t *testing.T) {
	const (
		deadline = 300 * time.Millisecond
		slack    = 500 * time.Millisecond // the slow carrier answers after 1 s: anything under it shows the deadline holds
	)
	perFault := 200
	if testing.Short() {
		perFault = 50
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	carrier, err := fakecarrier.Start(ctx, fakecarrier.Config{NoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer carrier.Close()
	// A carrier that is down: nothing listens on this port any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + ln.Addr().String()
	ln.Close()

	transport := &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}

	faults := []struct {
		name  string
		url   string
		state fakecarrier.Number
	}{
		{"down", downURL, fakecarrier.Number{}},
		{"slow", carrier.URL(), fakecarrier.Number{Latency: fakecarrier.Duration(time.Second)}},
		{"500", carrier.URL(), fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: http.StatusInternalServerError}}},
		{"429", carrier.URL(), fakecarrier.Number{Error: &fakecarrier.InjectedError{Status: http.StatusTooManyRequests}}},
	}
	variants := []Action{ActionAllow, ActionReject}
	rules, err := CompileRules(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}

	// Everything long-lived is built before the baseline: each Guard starts cache sweepers
	// that never exit, each Interceptor a reassembly sweeper (stopped by Close). One Guard
	// per phase, so that one phase's open breaker does not answer the next phase's calls.
	type phase struct {
		fault   int
		onError Action
		guard   *checks.Guard
		ic      *Interceptor
	}
	var phases []phase
	for _, v := range variants {
		for i, f := range faults {
			prov, err := camara.New(camara.Config{BaseURL: f.url, HTTPClient: client, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			g := checks.NewGuard(prov, checks.GuardConfig{Timeout: 200 * time.Millisecond, ErrorTTL: 100 * time.Millisecond,
				BreakerFailures: 5, BreakerOpenFor: 100 * time.Millisecond}, nil)
			p := &Policy{Name: "otp", Rules: rules, Deadline: deadline, Checks: []CheckPolicy{
				{Signal: checks.SimSwap, Provider: "camara", MaxAge: 72 * time.Hour, OnRisk: Outcome{Action: ActionReject}, OnError: Outcome{Action: v}},
			}}
			ic, err := New(Config{Policies: map[string]*Policy{"bank": p}, Providers: map[string]checks.Provider{"camara": g}})
			if err != nil {
				t.Fatal(err)
			}
			defer ic.Close()
			phases = append(phases, phase{fault: i, onError: v, guard: g, ic: ic})
		}
	}

	// settle waits (bounded) for calls the Guard abandoned to finish and idle keep-alive
	// connections (and the carrier's goroutines serving them) to go, then measures.
	settle := func(want int) (goroutines int, inUse uint64) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			transport.CloseIdleConnections()
			goroutines = runtime.NumGoroutine()
			if goroutines <= want || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(150 * time.Millisecond) // expired error-cache entries are swept (ErrorTTL 100ms)
		carrier.ResetCalls()               // the fake carrier's own call log is not ours
		return goroutines, faultsHeapStackInUse()
	}

	time.Sleep(20 * time.Millisecond)
	g0 := runtime.NumGoroutine()
	m0 := faultsHeapStackInUse()

	next := 0 // distinct destination numbers across all phases and rounds
	round := func(r int) {
		for _, ph := range phases {
			f := faults[ph.fault]
			t.Run(fmt.Sprintf("round%d/%s/on_error=%s", r, f.name, ph.onError), func(t *testing.T) {
				carrier.SetDefault(f.state)
				defer carrier.SetDefault(fakecarrier.Number{})
				lat := make([]time.Duration, perFault)
				var wrong atomic.Int64
				var firstWrong atomic.Value
				var wg sync.WaitGroup
				for i := range perFault {
					dest := fmt.Sprintf("4477009%05d", next)
					next++
					wg.Add(1)
					m := &Message{Account: "bank", PDU: smFrame(t, dest, 0, []byte("Your verification code is 482913")), Received: time.Now()}
					start := time.Now()
					check := func(m *Message) {
						defer wg.Done()
						lat[i] = time.Since(start)
						ok := m.OTP && m.Decision.Action == ph.onError && len(m.Signals) == 1 && m.Signals[0].Err != ""
						if !ok && wrong.Add(1) == 1 {
							firstWrong.Store(fmt.Sprintf("%s: otp %v action %s (%s) signals %+v", dest, m.OTP, m.Decision.Action, m.Decision.Reason, m.Signals))
						}
					}
					if ph.ic.Submit(context.Background(), m, check) {
						check(m)
					}
				}
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("decisions still pending after 10 s")
				}
				sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
				st := ph.guard.Stats()
				t.Logf("%d OTPs, carrier %s, on_error %s: decision latency p50 %s, p99 %s, max %s; guard totals so far: calls %d, breaker-rejected %d, timeouts %d",
					perFault, f.name, ph.onError, lat[perFault/2].Round(time.Millisecond), lat[perFault*99/100].Round(time.Millisecond),
					lat[perFault-1].Round(time.Millisecond), st.Calls, st.BreakerRejected, st.Timeouts)
				if n := wrong.Load(); n > 0 {
					t.Errorf("%d of %d decisions did not follow the fail policy; first: %v", n, perFault, firstWrong.Load())
				}
				if max := lat[perFault-1]; max > deadline+slack {
					t.Errorf("slowest decision took %s, want within %s", max, deadline+slack)
				}
			})
		}
	}

	// Round 1 pays for one-time costs (connection pools, goroutine descriptors of the peak
	// concurrency); round 2 must then leave nothing behind.
	round(1)
	g1, m1 := settle(g0 + 2)
	round(2)
	g2, m2 := settle(g1 + 2)
	total := perFault * len(phases)
	t.Logf("%d OTPs per round over %d phases: goroutines %d -> %d (round 1) -> %d (round 2); heap+stack in use %.2f MiB -> %.2f MiB (round 1, %+d KiB) -> %.2f MiB (round 2, %+d KiB)",
		total, len(phases), g0, g1, g2, float64(m0)/(1<<20), float64(m1)/(1<<20), (int64(m1)-int64(m0))/1024,
		float64(m2)/(1<<20), (int64(m2)-int64(m1))/1024)
	if g1 > g0+2 || g2 > g0+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines grew from %d to %d and %d:\n%s", g0, g1, g2, buf[:runtime.Stack(buf, true)])
	}
	// A leak of per-OTP state (a message, its PDU, a context, a timer) would grow by several
	// MiB over 1600 OTPs; GC and race-detector noise stays around ±1.5 MiB.
	if growth := int64(m2) - int64(m1); growth > 4<<20 {
		t.Fatalf("heap+stack in use grew by %d KiB over round 2 (%d OTPs), want < 4 MiB", growth/1024, total)
	}
	if growth := int64(m1) - int64(m0); growth > 8<<20 {
		t.Fatalf("heap+stack in use grew by %d KiB over round 1, want < 8 MiB", growth/1024)
	}
}
