package interceptor

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppguard/smppguard/checks"
)

func TestMaskLongAndShort(t *testing.T) {
	long := strings.Repeat("1234567890", 5)
	for _, tc := range []struct {
		in   string
		keep int
		want string
	}{
		{long, 0, strings.Repeat("*", 50)},
		{long, 4, strings.Repeat("*", 46) + "7890"},
		{long, 50, strings.Repeat("*", 50)},
		{"+447700900123", 13, "*************"},
		{"+447700900123", 12, "*447700900123"},
		{"+447700900123", 1, "************3"},
	} {
		if got := Mask(tc.in, tc.keep); got != tc.want {
			t.Errorf("Mask(%q, %d) = %q, want %q", tc.in, tc.keep, got, tc.want)
		}
	}
}

// peekOnly is a provider with a cache that is not a checks.Guard: only checks.CachePeeker.
type peekOnly struct{ g *checks.Guard }

func (p peekOnly) Name() string { return p.g.Name() }
func (p peekOnly) Check(ctx context.Context, q checks.Query) (checks.Result, error) {
	return p.g.Check(ctx, q)
}
func (p peekOnly) Cached(q checks.Query) (checks.Result, error, bool) { return p.g.Cached(q) }

// countingClock counts its readings.
type countingClock struct{ n atomic.Int64 }

func (c *countingClock) Now() time.Time { c.n.Add(1); return time.Now() }

// The decision taken from the cache is the one the look-up chain took, and so is its audit
// record, but for what tells a cached answer (cached, age, latency, correlation ids, time);
// each Guard's clock is read once per decision; a provider without a cache is never peeked.
func TestCachedFastPathMatchesChain(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(g *checks.Guard) checks.Provider
		fast bool
	}{
		{"guard", func(g *checks.Guard) checks.Provider { return g }, true},
		{"cache peeker", func(g *checks.Guard) checks.Provider { return peekOnly{g} }, true},
		{"no cache", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prov := &scripted{swapped: map[string]bool{"+447700900001": true}, fwd: map[string]bool{"+447700900001": true, "+447700900002": true}}
			clk := &countingClock{}
			g := checks.NewGuard(prov, checks.GuardConfig{Now: clk.Now}, nil)
			ic, audit := newTestInterceptor(t, prov, func(_ *Policy, c *Config) {
				if tc.wrap != nil {
					c.Providers = map[string]checks.Provider{"op": tc.wrap(g)}
				}
			})
			for _, dest := range []string{"447700900001", "447700900002", "447700900003"} {
				first, pending := submit(t, ic, smFrame(t, dest, 0, []byte("Your OTP is 1234")))
				if !pending {
					t.Fatalf("%s: first OTP decided at once", dest)
				}
				clk.n.Store(0)
				calls := prov.calls.Load()
				second, pending := submit(t, ic, smFrame(t, dest, 0, []byte("Your OTP is 5678")))
				if pending == tc.fast {
					t.Fatalf("%s: second OTP pending %v", dest, pending)
				}
				if !tc.fast {
					continue
				}
				if prov.calls.Load() != calls {
					t.Fatalf("%s: provider called", dest)
				}
				if tc.name == "guard" && clk.n.Load() != 1 {
					t.Fatalf("%s: Guard clock read %d times for one decision", dest, clk.n.Load())
				}
				if first.Decision != second.Decision || first.MSISDN != second.MSISDN || len(first.Signals) != len(second.Signals) {
					t.Fatalf("%s: chain %s %+v, cache %s %+v", dest, first.MSISDN, first.Decision, second.MSISDN, second.Decision)
				}
				for i := range first.Signals {
					a, b := first.Signals[i], second.Signals[i]
					if !b.Cached || b.Latency != 0 || b.CorrelationID != first.CorrelationID {
						t.Fatalf("%s: cached signal %+v (first correlation id %s)", dest, b, first.CorrelationID)
					}
					a.Cached, a.Age, a.Latency, a.CorrelationID = b.Cached, b.Age, b.Latency, b.CorrelationID
					if a != b {
						t.Fatalf("%s: signal %d: chain %+v, cache %+v", dest, i, a, b)
					}
				}
				recs := audit.all()
				ra, rb := recs[len(recs)-2], recs[len(recs)-1]
				if rb.Destination != "********"+dest[len(dest)-4:] || rb.Command != "submit_sm" {
					t.Fatalf("%s: record %+v", dest, rb)
				}
				ra.Time, ra.DecisionTime, ra.CorrelationID, ra.Signals = rb.Time, rb.DecisionTime, rb.CorrelationID, rb.Signals
				if !equalRecords(ra, rb) {
					t.Fatalf("%s: records differ:\n%+v\n%+v", dest, ra, rb)
				}
			}
			st := ic.Stats()
			if st.ByAction[ActionReject]+st.ByAction[ActionReroute]+st.ByAction[ActionAllow] != 6 || st.ByRule[anyKey(st.ByRule)] != 6 {
				t.Fatalf("stats %+v", st)
			}
			if tc.fast && (st.ByAction[ActionReject] != 2 || st.ByAction[ActionReroute] != 2 || st.ByCause["reject|sim_swap:risky"] != 2 || st.ByCause["allow|none"] != 2) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func anyKey(m map[string]uint64) string {
	for k := range m {
		return k
	}
	return ""
}

func equalRecords(a, b AuditRecord) bool {
	a.Signals, b.Signals = nil, nil
	return a.Time.Equal(b.Time) && a.Account == b.Account && a.Destination == b.Destination && a.Source == b.Source &&
		a.Command == b.Command && a.Rule == b.Rule && a.Parts == b.Parts && a.Action == b.Action && a.Status == b.Status &&
		a.Route == b.Route && a.Reason == b.Reason && a.Shadow == b.Shadow && a.CorrelationID == b.CorrelationID
}

// A Guard on time.Now shares the decision's clock reading only with an interceptor on
// time.Now.
func TestPeekersShareWallClock(t *testing.T) {
	prov := &scripted{}
	wall := checks.NewGuard(prov, checks.GuardConfig{}, nil)
	own := checks.NewGuard(prov, checks.GuardConfig{Now: time.Now}, nil)
	p := &Policy{Checks: []CheckPolicy{{Signal: checks.SimSwap, Provider: "wall"}, {Signal: checks.Roaming, Provider: "own"}, {Signal: checks.CallForwarding, Provider: "peek"}}}
	provs := map[string]checks.Provider{"wall": wall, "own": own, "peek": peekOnly{wall}}
	got := peekersOf(p, provs, true)
	if len(got) != 3 || !got[0].sameClock || got[1].sameClock || got[0].guard == nil || got[2].guard != nil || got[2].cache == nil {
		t.Fatalf("wall-clock interceptor: %+v", got)
	}
	if got := peekersOf(p, provs, false); got[0].sameClock || got[1].sameClock {
		t.Fatalf("interceptor with its own clock: %+v", got)
	}
	if got := peekersOf(p, map[string]checks.Provider{"wall": wall, "own": prov, "peek": wall}, true); got != nil {
		t.Fatalf("a provider without a cache: %+v", got)
	}
}

// The reasons and causes precomputed by New read exactly as the ones Decide formats, for
// every outcome class, also when a detail differs from the precomputed one or an action
// was changed after New.
func TestDecidePrecomputedRiskyUnknownReasons(t *testing.T) {
	checksOf := func() []CheckPolicy {
		return []CheckPolicy{
			{Signal: checks.SimSwap, Provider: "op", MaxAge: 72 * time.Hour, OnRisk: Outcome{Action: ActionReject}, OnUnknown: Outcome{Action: ActionFlag}, OnError: Outcome{Action: ActionAllow}},
			{Signal: checks.CallForwarding, Provider: "op", OnRisk: Outcome{Action: ActionReroute, Route: "voice"}},
			{Signal: checks.Roaming, Provider: "op", OnRisk: Outcome{Action: ActionFlag}, OnUnknown: Outcome{Action: ActionDrop}},
		}
	}
	plain := &Policy{Name: "plain", Checks: checksOf()}
	prepared := &Policy{Name: "prepared", Checks: checksOf()}
	for i := range prepared.Checks {
		prepared.Checks[i].prepare()
	}
	kinds := func(c CheckPolicy) []SignalOutcome {
		var pc CheckPolicy = c
		pc.prepare()
		base := SignalOutcome{Signal: string(c.Signal), Source: c.Provider}
		risky, riskyLater, unknown, failed, clean := base, base, base, base, base
		risky.Risky, risky.Detail = true, pc.risky
		riskyLater.Risky, riskyLater.Detail = true, pc.risky+" (last change 5h0m0s ago)"
		unknown.unknown, unknown.Detail = true, unknownDetail
		failed.Err = "checks: op: boom"
		clean.Detail = pc.clean
		return []SignalOutcome{risky, riskyLater, unknown, failed, clean}
	}
	a, b, c := kinds(plain.Checks[0]), kinds(plain.Checks[1]), kinds(plain.Checks[2])
	n := 0
	for _, sa := range a {
		for _, sb := range b {
			for _, sc := range c {
				sigs := []SignalOutcome{sa, sb, sc}
				want, got := Decide(plain, sigs), Decide(prepared, sigs)
				if want != got {
					t.Fatalf("signals %+v:\nformatted   %+v\nprecomputed %+v", sigs, want, got)
				}
				n++
			}
		}
	}
	// An action changed after New is not described by the precomputed reason.
	prepared.Checks[0].OnRisk.Action, plain.Checks[0].OnRisk.Action = ActionDrop, ActionDrop
	prepared.Checks[2].OnUnknown.Action, plain.Checks[2].OnUnknown.Action = ActionReject, ActionReject
	sigs := []SignalOutcome{a[0], b[4], c[2]}
	if want, got := Decide(plain, sigs), Decide(prepared, sigs); want != got || !strings.Contains(got.Reason, "sim_swap: SIM swapped within 72h: drop") {
		t.Fatalf("after a change:\nformatted   %+v\nprecomputed %+v", want, got)
	}
	if n != 125 {
		t.Fatal(n)
	}
}

// Decisions counted from many goroutines at once add up in Stats.
func TestStatsCountConcurrent(t *testing.T) {
	ic, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	keys := []decisionKey{{ActionAllow, "r1", "none"}, {ActionReject, "r1", "sim_swap:risky"}, {ActionAllow, "r2", "none"}, {ActionFlag, "r2", "roaming:risky"}}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				ic.count(keys[(i+w)%len(keys)])
			}
		}()
	}
	wg.Wait()
	st := ic.Stats()
	if st.ByAction[ActionAllow] != 4000 || st.ByAction[ActionReject] != 2000 || st.ByAction[ActionFlag] != 2000 ||
		st.ByRule["r1"] != 4000 || st.ByRule["r2"] != 4000 || st.ByCause["allow|none"] != 4000 || st.ByCause["flag|roaming:risky"] != 2000 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGSM7SameMask(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c < 0x80 && c != 0x1B && gsm7Basic[c] == rune(c)
		if got := gsm7Same(byte(c)); got != want {
			t.Errorf("gsm7Same(%#x) = %v, want %v", c, got, want)
		}
	}
}

// Text copied verbatim decodes as the general path decodes it.
func TestDecodeVerbatimMatchesDecodeText(t *testing.T) {
	for _, tc := range []struct {
		alpha alphabet
		text  string
	}{
		{alphaGSM7, "Your ACME verification code is 482913. Do not share it."},
		{alphaGSM7, "code: 1234 @home $5 _x_"}, // @, $ and _ differ in GSM 03.38
		{alphaGSM7, "\x1b\x65 euro"},
		{alphaASCII, "Your code is 1234"},
		{alphaLatin1, "Your code is 1234 \xe9"},
		{alphaASCII, "caf\xe9"},
	} {
		var sb strings.Builder
		decodeText(&sb, tc.alpha, []byte(tc.text), 0)
		verbatim := tc.alpha == alphaGSM7 && gsm7AllSame([]byte(tc.text)) || tc.alpha != alphaGSM7 && allASCII([]byte(tc.text))
		if verbatim && sb.String() != tc.text {
			t.Errorf("%q taken verbatim but decodes to %q", tc.text, sb.String())
		}
	}
}

// A cached OTP decision allocates the decoded text, the signals and the masked destination
// (with MaskKeep 4), besides the Message its caller made: the E.164 number is the decoded
// "+" + destination, and nothing else is built.
func TestCachedFastPathAllocations(t *testing.T) {
	if raceEnabled() {
		t.Skip("allocation counts differ under the race detector")
	}
	prov := &scripted{swapped: map[string]bool{}, fwd: map[string]bool{}}
	g := checks.NewGuard(prov, checks.GuardConfig{}, nil)
	ic, _ := newTestInterceptor(t, prov, func(_ *Policy, c *Config) {
		c.Providers = map[string]checks.Provider{"op": g}
		c.Audit = AuditFunc(func(AuditRecord) {})
	})
	pdu := smFrame(t, "447700900001", 0, []byte("Your ACME verification code is 482913. Do not share it."))
	if _, pending := submit(t, ic, pdu); !pending {
		t.Fatal("first OTP decided at once")
	}
	var m *Message
	n := testing.AllocsPerRun(200, func() {
		m = &Message{Account: "bank", PDU: pdu, Received: time.Now()}
		if !ic.Submit(context.Background(), m, nil) {
			t.Fatal("not decided at once")
		}
	})
	if m.MSISDN != "+447700900001" || m.Dest != "447700900001" || len(m.Signals) != 2 {
		t.Fatalf("message %+v", m)
	}
	if n > 4 {
		t.Fatalf("%v allocations per cached OTP, want at most 4", n)
	}
}

// The memo stays an LRU: a text read often survives many more other texts than a shard
// holds, one never read again is evicted, and a read returns what was put.
func TestTextMemoRecency(t *testing.T) {
	m, err := newTextMemo(nil)
	if err != nil {
		t.Fatal(err)
	}
	key := func(i int) ([]byte, uint64) { return []byte("text " + strconv.Itoa(i)), uint64(i) * memoShards } // all in shard 0
	hotK, hotH := key(0)
	m.put(hotK, hotH, memoEntry{done: 3, res: 1})
	coldK, coldH := key(1)
	m.put(coldK, coldH, memoEntry{done: 1})
	for i := 2; i < 10*memoPerShard; i++ {
		k, h := key(i)
		m.put(k, h, memoEntry{done: 1})
		if i%16 == 0 {
			if e, ok := m.get(hotK, hotH); !ok || e.done != 3 || e.res != 1 {
				t.Fatalf("hot text lost after %d others: %+v %v", i, e, ok)
			}
		}
		if n := m.shards[0].Len(); n > memoPerShard {
			t.Fatalf("%d entries in a shard of %d", n, memoPerShard)
		}
	}
	if _, ok := m.get(coldK, coldH); ok {
		t.Fatal("cold text kept")
	}
	// A hash collision is not a hit.
	if _, ok := m.get([]byte("other text"), hotH); ok {
		t.Fatal("collision taken for a hit")
	}
}

func TestGSM7AllSame(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := []byte("Your code is 1234")
		for _, at := range []int{0, 8, len(b) - 1} {
			x := append([]byte(nil), b...)
			x[at] = byte(c)
			if got, want := gsm7AllSame(x), gsm7Same(byte(c)); got != want {
				t.Fatalf("%q: %v, want %v", x, got, want)
			}
		}
	}
	if !gsm7AllSame(nil) {
		t.Fatal("empty text")
	}
}
