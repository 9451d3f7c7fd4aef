package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/checks"
	"github.com/smppguard/smppguard/interceptor"
	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/smpp/relay"
)

// swapProvider answers sim_swap: swapped for the numbers in risky, clean for the others.
type swapProvider struct{ risky map[string]bool }

func (swapProvider) Name() string { return "op" }

func (p swapProvider) Check(_ context.Context, q checks.Query) (checks.Result, error) {
	return checks.Result{Signal: q.Signal, Swapped: p.risky[q.MSISDN]}, nil
}

// hookTexts are the load generator's plain and OTP texts (testharness/loadgen).
const (
	hookPlainText = "Your parcel 4471 will arrive tomorrow between 9 and 12."
	hookOTPText   = "Your verification code is 482913. Do not share it."
)

// newTestHook is an otpHook as serve wires it for one account "otp" whose policy drops OTPs
// to a swapped SIM: the default rules, one sim_swap check through a Guard, mask_keep 4, the
// audit records to audit, and a relay without receivers whose queue keeps the drops'
// receipts. The Guard's cache already holds every number of risky and clean.
func newTestHook(tb testing.TB, risky, clean []string, audit interceptor.AuditSink) (*otpHook, relay.Store) {
	tb.Helper()
	rs, err := interceptor.CompileRules(interceptor.DefaultRules())
	if err != nil {
		tb.Fatal(err)
	}
	p := &interceptor.Policy{Name: "otp", Rules: rs, Checks: []interceptor.CheckPolicy{
		{Signal: checks.SimSwap, Provider: "op", MaxAge: 72 * time.Hour, OnRisk: interceptor.Outcome{Action: interceptor.ActionDrop}},
	}}
	prov := swapProvider{risky: map[string]bool{}}
	for _, n := range risky {
		prov.risky["+"+n] = true
	}
	guard := checks.NewGuard(prov, checks.GuardConfig{}, nil)
	for _, n := range append(append([]string(nil), risky...), clean...) {
		if _, err := guard.Check(context.Background(), checks.Query{MSISDN: "+" + n, Signal: checks.SimSwap, MaxAge: 72 * time.Hour}); err != nil {
			tb.Fatal(err)
		}
	}
	ic, err := interceptor.New(interceptor.Config{Policies: map[string]*interceptor.Policy{"otp": p},
		Providers: map[string]checks.Provider{"op": guard}, MaskKeep: 4, Audit: audit})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ic.Close)
	store := relay.NewMemStore(func(string) (int, time.Duration) { return 1 << 20, time.Hour })
	r, err := relay.New(relay.Config{Accounts: []relay.Account{{SystemID: "otp", Password: "pw", Route: "default"}},
		Upstreams: []relay.Upstream{{Name: "carrier", Addr: "127.0.0.1:9"}}, Routes: map[string]string{"default": "carrier"}, Store: store})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.Start(ctx) // the account's queue drainer: no receiver binds, so receipts stay queued
	tb.Cleanup(func() { cancel(); r.Close(context.Background()) })
	h := &otpHook{relay: r, log: zap.NewNop()}
	h.state.Store(&otpState{ic: ic, pols: map[string]*interceptor.Policy{"otp": p}})
	return h, store
}

// hookSubmit is a submit_sm from BANK to dest asking for a receipt.
func hookSubmit(tb testing.TB, dest, text string) *relay.SubmitRequest {
	tb.Helper()
	pdu, err := smpp.NewBuilder(smpp.SubmitSM, 0, 7).CString("").Int(5).Int(0).CString("BANK").Int(1).Int(1).CString(dest).
		Int(0).Int(0).Int(0).CString("").CString("").Int(1).Int(0).Int(0).Int(0).ShortMessage([]byte(text)).PDU()
	if err != nil {
		tb.Fatal(err)
	}
	return &relay.SubmitRequest{Ctx: context.Background(), Account: "otp", Route: "default", PDU: pdu}
}

// The hook reuses a submit's message for the next one only when the interceptor decided at
// once and the verdict keeps no reference to it. A dropped OTP's receipt is built after the
// answer from its message: submits decided meanwhile, concurrently, must not have reused it
// (each receipt comes from its own OTP's destination), and the audit records kept by the
// sink must keep their own destination and signals.
func TestOTPHookReusesOnlyFinishedMessages(t *testing.T) {
	var risky, clean []string
	for i := range 20 {
		risky = append(risky, fmt.Sprintf("4477009010%02d", i))
		clean = append(clean, fmt.Sprintf("4477009020%02d", i))
	}
	var (
		mu      sync.Mutex
		records []interceptor.AuditRecord
	)
	h, store := newTestHook(t, risky, clean, interceptor.AuditFunc(func(r interceptor.AuditRecord) {
		r.Signals = slices.Clone(r.Signals) // as AuditSink requires: the message's storage is reused
		mu.Lock()
		records = append(records, r)
		mu.Unlock()
	}))
	type drop struct {
		dest string
		v    relay.Verdict
	}
	var (
		wg    sync.WaitGroup
		dmu   sync.Mutex
		drops []drop
	)
	const workers, rounds = 4, 50
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				for _, sub := range []struct {
					dest, text string
					want       relay.Action
				}{
					{clean[(w+i)%len(clean)], hookPlainText, relay.Pass},
					{risky[(w*rounds+i)%len(risky)], hookOTPText, relay.Answer},
					{clean[(w+i)%len(clean)], hookOTPText, relay.Pass},
					{risky[(w+i)%len(risky)], hookPlainText, relay.Pass},
				} {
					v := h.Submit(hookSubmit(t, sub.dest, sub.text))
					if v.Action != sub.want {
						t.Errorf("%q to %s: verdict %v, want %v", sub.text, sub.dest, v.Action, sub.want)
						return
					}
					if v.Action == relay.Answer {
						if v.AfterAnswer == nil {
							t.Errorf("drop to %s without a receipt", sub.dest)
							return
						}
						dmu.Lock()
						drops = append(drops, drop{sub.dest, v})
						dmu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(drops) != workers*rounds {
		t.Fatalf("%d drops, want %d", len(drops), workers*rounds)
	}
	// Every receipt now, after all the other submits: each from its own OTP's destination.
	for _, d := range drops {
		d.v.AfterAnswer()
		it, ok := store.Peek("otp")
		if !ok {
			t.Fatalf("no receipt queued for the drop to %s", d.dest)
		}
		store.Remove("otp", it.ID)
		rc, err := smpp.Parse(it.Frame)
		if err != nil {
			t.Fatal(err)
		}
		if from, to := rc.CString(smpp.FieldSourceAddr), rc.CString(smpp.FieldDestinationAddr); from != d.dest || to != "BANK" {
			t.Fatalf("receipt of the drop to %s comes from %q to %q", d.dest, from, to)
		}
	}
	// One record per OTP, each with its own masked destination and signal.
	mu.Lock()
	defer mu.Unlock()
	if len(records) != 2*workers*rounds {
		t.Fatalf("%d audit records, want %d", len(records), 2*workers*rounds)
	}
	for _, r := range records {
		if len(r.Signals) != 1 {
			t.Fatalf("record %+v: %d signals", r, len(r.Signals))
		}
		wantRisky := r.Action == interceptor.ActionDrop
		if r.Signals[0].Risky != wantRisky || (r.Action != interceptor.ActionDrop && r.Action != interceptor.ActionAllow) {
			t.Fatalf("record %+v: action %s with signal %+v", r, r.Action, r.Signals[0])
		}
		suffix := "10" // risky numbers: 4477009010xx
		if !wantRisky {
			suffix = "20"
		}
		if len(r.Destination) != 12 || r.Destination[:8] != "********" || r.Destination[8:10] != suffix {
			t.Fatalf("record %+v: destination %q does not match its decision", r, r.Destination)
		}
	}
}

// BenchmarkOTPHookSubmit is the hook's work per submit on the account with a policy, for a
// plain message and for an OTP decided from the Guard's cache (allowed): what the proxy
// spends beyond relaying in the bench's "plain (otp account)" and "otp cached" rows.
func BenchmarkOTPHookSubmit(b *testing.B) {
	benchHook(b, func(b *testing.B, submit func() bool) {
		for b.Loop() { // the same request each time: a verdict made at once never resolves it
			if !submit() {
				b.Fatal("not passed")
			}
		}
	})
}

// BenchmarkOTPHookSubmitParallel is BenchmarkOTPHookSubmit from every P at once, as the ESME
// sessions' readers call the hook: shared counters and cache locks meet here.
func BenchmarkOTPHookSubmitParallel(b *testing.B) {
	benchHook(b, func(b *testing.B, submit func() bool) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !submit() {
					b.Error("not passed")
					return
				}
			}
		})
	})
}

// benchHook runs loop for a plain message and a cached OTP through a hook with a no-op audit
// sink; submit offers the case's request and reports whether it was passed.
func benchHook(b *testing.B, loop func(b *testing.B, submit func() bool)) {
	h, _ := newTestHook(b, nil, []string{"447700900123"}, interceptor.AuditFunc(func(interceptor.AuditRecord) {}))
	for _, bc := range []struct{ name, text string }{{"plain", hookPlainText}, {"otp-cached", hookOTPText}} {
		req := hookSubmit(b, "447700900123", bc.text)
		if v := h.Submit(req); v.Action != relay.Pass {
			b.Fatalf("%s: verdict %v", bc.name, v.Action)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			loop(b, func() bool { return h.Submit(req).Action == relay.Pass })
		})
	}
}
