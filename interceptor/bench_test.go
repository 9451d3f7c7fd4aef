package interceptor

import (
	"context"
	"testing"
	"time"

	"github.com/smppguard/smppguard/checks"
)

// BenchmarkSubmit measures Interceptor.Submit per message on the paths that decide at once:
// a message that is not an OTP, and an OTP whose checks are all in the Guard's cache (the
// default rules, two checks, an audit sink). A new Message per call with Received unset, as
// the relay hook offers it (the interceptor reads its clock once for an OTP).
func BenchmarkSubmit(b *testing.B) {
	prov := &scripted{swapped: map[string]bool{}, fwd: map[string]bool{}}
	guard := checks.NewGuard(prov, checks.GuardConfig{}, nil)
	rules, err := CompileRules(DefaultRules())
	if err != nil {
		b.Fatal(err)
	}
	p := &Policy{Name: "otp", Rules: rules, Checks: []CheckPolicy{
		{Signal: checks.SimSwap, Provider: "op", MaxAge: 72 * time.Hour, OnRisk: Outcome{Action: ActionReject}},
		{Signal: checks.CallForwarding, Provider: "op", OnRisk: Outcome{Action: ActionReroute, Route: "voice"}},
	}}
	audit := AuditFunc(func(AuditRecord) {})
	ic, err := New(Config{Policies: map[string]*Policy{"bank": p}, Providers: map[string]checks.Provider{"op": guard}, Audit: audit})
	if err != nil {
		b.Fatal(err)
	}
	defer ic.Close()
	for _, bc := range []struct {
		name, text string
		otp        bool
	}{
		{"not-otp", "Your parcel 4471 will arrive tomorrow between 9 and 12.", false},
		{"otp-cached", "Your ACME verification code is 482913. Do not share it.", true},
	} {
		pdu := dtSubmit(b, dtSM{sm: gsmEncode(b, bc.text)})
		// Warm the Guard's cache (and the rules memo) with one decision that looks up.
		done := make(chan struct{})
		m := &Message{Account: "bank", PDU: pdu, Received: time.Now()}
		if !ic.Submit(context.Background(), m, func(*Message) { close(done) }) {
			<-done
		}
		if m.OTP != bc.otp {
			b.Fatalf("%s: OTP %v", bc.name, m.OTP)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := &Message{Account: "bank", PDU: pdu}
				if !ic.Submit(context.Background(), m, nil) {
					b.Fatal("not decided at once")
				}
			}
		})
	}
	if s := guard.Stats(); s.Calls > 2 {
		b.Fatalf("provider called %d times: the cache did not answer", s.Calls)
	}
}
