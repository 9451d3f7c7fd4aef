package interceptor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/smppguard/smppguard/checks"
	"github.com/smppguard/smppguard/smpp"
)

// scripted is a checks.Provider whose answers the test sets per number.
type scripted struct {
	mu      sync.Mutex
	swapped map[string]bool
	fwd     map[string]bool
	err     error
	block   chan struct{} // when set, calls wait for it (or ctx)
	panicOn string
	calls   atomic.Int64
}

func (s *scripted) Name() string { return "op" }

func (s *scripted) Check(ctx context.Context, q checks.Query) (checks.Result, error) {
	s.calls.Add(1)
	s.mu.Lock()
	block, err, pan := s.block, s.err, s.panicOn
	s.mu.Unlock()
	if pan == q.MSISDN {
		panic("provider exploded")
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return checks.Result{}, ctx.Err()
		}
	}
	if err != nil {
		return checks.Result{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return checks.Result{Signal: q.Signal, Source: "op", Swapped: s.swapped[q.MSISDN], Forwarding: s.fwd[q.MSISDN], FetchedAt: time.Now(), CorrelationID: q.CorrelationID}, nil
}

type auditLog struct {
	mu   sync.Mutex
	recs []AuditRecord
}

func (a *auditLog) Record(r AuditRecord) { a.mu.Lock(); a.recs = append(a.recs, r); a.mu.Unlock() }

func (a *auditLog) all() []AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AuditRecord(nil), a.recs...)
}

func newTestInterceptor(t *testing.T, prov *scripted, mutate func(*Policy, *Config)) (*Interceptor, *auditLog) {
	t.Helper()
	rules, err := CompileRules(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{Name: "otp", Rules: rules, Deadline: 500 * time.Millisecond, Checks: []CheckPolicy{
		{Signal: checks.SimSwap, Provider: "op", MaxAge: 72 * time.Hour, OnRisk: Outcome{Action: ActionReject}, OnError: Outcome{Action: ActionAllow}},
		{Signal: checks.CallForwarding, Provider: "op", OnRisk: Outcome{Action: ActionReroute, Route: "voice"}, OnError: Outcome{Action: ActionAllow}},
	}}
	audit := &auditLog{}
	cfg := Config{Policies: map[string]*Policy{"bank": p}, Providers: map[string]checks.Provider{"op": prov}, Audit: audit,
		Reassembly: ReassemblyConfig{Timeout: 200 * time.Millisecond}, MaskKeep: 4}
	if mutate != nil {
		mutate(p, &cfg)
	}
	ic, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ic.Close)
	return ic, audit
}

func smFrame(t *testing.T, dest string, esm byte, text []byte, tlvs ...smpp.TLV) *smpp.PDU {
	t.Helper()
	b := smpp.NewBuilder(smpp.SubmitSM, 0, 1).CString("").Int(5).Int(0).CString("BANK").Int(1).Int(1).CString(dest).
		Int(esm).Int(0).Int(0).CString("").CString("").Int(1).Int(0).Int(0).Int(0).ShortMessage(text)
	for _, tlv := range tlvs {
		b.TLV(tlv.Tag, tlv.Value)
	}
	p, err := b.PDU()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// submit offers a message and returns its decision, waiting for a pending one.
func submit(t *testing.T, ic *Interceptor, p *smpp.PDU) (*Message, bool) {
	t.Helper()
	m := &Message{Account: "bank", PDU: p, Received: time.Now()}
	got := make(chan *Message, 1)
	var calls atomic.Int32
	if ic.Submit(context.Background(), m, func(m *Message) { calls.Add(1); got <- m }) {
		return m, false
	}
	select {
	case m := <-got:
		time.Sleep(time.Millisecond)
		if calls.Load() != 1 {
			t.Fatalf("resolve called %d times", calls.Load())
		}
		return m, true
	case <-time.After(5 * time.Second):
		t.Fatal("pending decision never resolved")
		return nil, true
	}
}

func TestInterceptorDecisions(t *testing.T) {
	prov := &scripted{swapped: map[string]bool{"+447700900001": true}, fwd: map[string]bool{"+447700900002": true}}
	ic, audit := newTestInterceptor(t, prov, nil)
	cases := []struct {
		name, dest, text string
		pending          bool
		want             Action
	}{
		{"not an OTP is decided at once without look-ups", "447700900001", "Your parcel ships tomorrow", false, ActionAllow},
		{"OTP to a swapped SIM is rejected", "447700900001", "Your verification code is 482913", true, ActionReject},
		{"OTP to a diverted number is rerouted", "447700900002", "Your verification code is 482913", true, ActionReroute},
		{"OTP to a clean number is allowed", "447700900003", "Your verification code is 482913", true, ActionAllow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := prov.calls.Load()
			m, pending := submit(t, ic, smFrame(t, tc.dest, 0, []byte(tc.text)))
			if pending != tc.pending || m.Decision.Action != tc.want {
				t.Fatalf("pending %v action %s (%s), want %v %s", pending, m.Decision.Action, m.Decision.Reason, tc.pending, tc.want)
			}
			if !tc.pending && prov.calls.Load() != before {
				t.Fatal("a non-OTP caused look-ups")
			}
		})
	}
	recs := audit.all()
	if len(recs) != 3 {
		t.Fatalf("%d audit records, want one per OTP (3)", len(recs))
	}
	r := recs[0]
	if r.Destination != "********0001" || r.Rule == "" || len(r.Signals) != 2 || r.CorrelationID == "" || r.Action != ActionReject {
		t.Fatalf("audit record %+v", r)
	}
	if strings.Contains(r.Reason, "447700900001") {
		t.Fatal("unmasked number in the audit reason")
	}
}

func TestInterceptorFailPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		onError Action
		err     error
		block   bool
		want    Action
	}{
		{"fail open on error", ActionAllow, checks.ErrUnavailable, false, ActionAllow},
		{"fail closed on error", ActionReject, checks.ErrUnavailable, false, ActionReject},
		{"fail closed on timeout", ActionReject, nil, true, ActionReject},
		{"named action on rate limit", ActionDrop, checks.ErrRateLimited, false, ActionDrop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prov := &scripted{err: tc.err}
			if tc.block {
				prov.block = make(chan struct{})
				defer close(prov.block)
			}
			ic, _ := newTestInterceptor(t, prov, func(p *Policy, _ *Config) {
				p.Deadline = 100 * time.Millisecond
				for i := range p.Checks {
					p.Checks[i].OnError = Outcome{Action: tc.onError}
				}
			})
			start := time.Now()
			m, _ := submit(t, ic, smFrame(t, "447700900003", 0, []byte("Your OTP is 1234")))
			if m.Decision.Action != tc.want {
				t.Fatalf("action %s (%s), want %s", m.Decision.Action, m.Decision.Reason, tc.want)
			}
			if tc.block && time.Since(start) > 3*time.Second {
				t.Fatal("deadline not applied")
			}
		})
	}
}

func TestInterceptorShadowAndPanic(t *testing.T) {
	prov := &scripted{swapped: map[string]bool{"+447700900001": true}, panicOn: "+447700900009"}
	ic, _ := newTestInterceptor(t, prov, func(p *Policy, _ *Config) { p.Shadow = true })
	m, _ := submit(t, ic, smFrame(t, "447700900001", 0, []byte("Your OTP is 1234")))
	if m.Decision.Action != ActionReject || !m.Decision.Shadow {
		t.Fatalf("shadow: %+v", m.Decision)
	}
	m, _ = submit(t, ic, smFrame(t, "447700900009", 0, []byte("Your OTP is 1234")))
	if ic.Stats().Panics != 2 || !strings.Contains(m.Decision.Reason, "internal error") { // one per check
		t.Fatalf("panic not recovered into the fail policy: %+v %+v", ic.Stats(), m.Decision)
	}
}

// With look-ups saturated, an OTP gets ESME_RTHROTTLED at once (or the fail policy).
func TestInterceptorSaturation(t *testing.T) {
	for _, mode := range []Saturation{SaturatedThrottle, SaturatedFailPolicy} {
		t.Run(string(mode), func(t *testing.T) {
			prov := &scripted{block: make(chan struct{})}
			ic, _ := newTestInterceptor(t, prov, func(p *Policy, c *Config) {
				c.MaxInFlight = 1
				p.OnSaturated = mode
				p.Deadline = 5 * time.Second
				p.Checks[0].OnError = Outcome{Action: ActionFlag}
			})
			first := &Message{Account: "bank", PDU: smFrame(t, "447700900003", 0, []byte("Your OTP is 1234"))}
			firstDone := make(chan *Message, 1)
			if ic.Submit(context.Background(), first, func(m *Message) { firstDone <- m }) {
				t.Fatal("OTP decided at once")
			}
			m, _ := submit(t, ic, smFrame(t, "447700900004", 0, []byte("Your OTP is 5678")))
			want := Decision{Action: ActionReject, Status: smpp.StatusThrottled}
			if mode == SaturatedFailPolicy {
				want = Decision{Action: ActionFlag}
			}
			if m.Decision.Action != want.Action || m.Decision.Status != want.Status {
				t.Fatalf("saturated: %+v, want %+v", m.Decision, want)
			}
			close(prov.block)
			<-firstDone
		})
	}
}

// Parts of a concatenated OTP arriving out of order are decided together, on the whole text.
func TestInterceptorConcatenated(t *testing.T) {
	prov := &scripted{swapped: map[string]bool{"+447700900001": true}}
	ic, audit := newTestInterceptor(t, prov, nil)
	texts := []string{"Your verification ", "code is 48", "2913. Do not share it."}
	udh := func(ref byte, seq int) []byte { return []byte{0x05, 0x00, 0x03, ref, 3, byte(seq)} }
	results := make(chan *Message, 3)
	order := []int{2, 0, 1}
	for i, idx := range order {
		p := smFrame(t, "447700900001", 0x40, append(udh(0x2A, idx+1), texts[idx]...))
		m := &Message{Account: "bank", PDU: p}
		if ic.Submit(context.Background(), m, func(m *Message) { results <- m }) {
			t.Fatalf("part %d decided at once", idx+1)
		}
		if i < 2 {
			select {
			case <-results:
				t.Fatal("a part was decided before all parts arrived")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	for range 3 {
		select {
		case m := <-results:
			if m.Decision.Action != ActionReject || !m.OTP {
				t.Fatalf("part decision %+v", m.Decision)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("parts not resolved")
		}
	}
	if n := len(audit.all()); n != 1 {
		t.Fatalf("%d audit records for one concatenated message", n)
	}

	// Two of three parts, the third never comes: decided after the reassembly timeout.
	p1 := smFrame(t, "447700900001", 0x40, append(udh(0x2B, 1), "Your verification code is 4829"...))
	p2 := smFrame(t, "447700900001", 0x40, append(udh(0x2B, 2), "13."...))
	for _, p := range []*smpp.PDU{p1, p2} {
		if ic.Submit(context.Background(), &Message{Account: "bank", PDU: p}, func(m *Message) { results <- m }) {
			t.Fatal("decided at once")
		}
	}
	for range 2 {
		select {
		case m := <-results:
			if m.Decision.Action != ActionReject {
				t.Fatalf("timed-out parts: %+v", m.Decision)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("timed-out parts never resolved")
		}
	}
}

func TestReceiptForDrop(t *testing.T) {
	p := smFrame(t, "447700900001", 0, []byte("x"))
	m := &Message{Account: "bank", PDU: p}
	if err := Decode(m); err != nil {
		t.Fatal(err)
	}
	f, err := Receipt(m, "proxy-7", "REJECTD", 11, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	r, err := smpp.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	esm, _ := r.Uint8(smpp.FieldESMClass)
	id, _ := r.TLV(smpp.TagReceiptedMessageID)
	st, _ := r.TLV(smpp.TagMessageState)
	if esm != 0x04 || string(id) != "proxy-7\x00" || st[0] != 8 || r.CString(smpp.FieldSourceAddr) != "447700900001" || r.CString(smpp.FieldDestinationAddr) != "BANK" ||
		!strings.Contains(string(r.ShortMessage()), "stat:REJECTD err:011") {
		t.Fatalf("receipt %q", r.ShortMessage())
	}
	if _, err := Receipt(m, "x", "BOGUS", 0, time.Now()); err == nil {
		t.Fatal("bogus stat accepted")
	}
	_ = errors.New
}

// With a Guard in front of the provider, an OTP whose every look-up is cached is decided at
// once on the caller's goroutine, without calling the provider.
func TestInterceptorCachedFastPath(t *testing.T) {
	prov := &scripted{swapped: map[string]bool{"+447700900001": true}}
	g := checks.NewGuard(prov, checks.GuardConfig{}, nil)
	ic, _ := newTestInterceptor(t, prov, func(_ *Policy, c *Config) { c.Providers = map[string]checks.Provider{"op": g} })
	m, pending := submit(t, ic, smFrame(t, "447700900001", 0, []byte("Your OTP is 1234")))
	if !pending || m.Decision.Action != ActionReject {
		t.Fatalf("first: pending %v %+v", pending, m.Decision)
	}
	calls := prov.calls.Load()
	m, pending = submit(t, ic, smFrame(t, "447700900001", 0, []byte("Your OTP is 9876")))
	if pending || m.Decision.Action != ActionReject || prov.calls.Load() != calls {
		t.Fatalf("cached: pending %v action %s, provider calls %d → %d", pending, m.Decision.Action, calls, prov.calls.Load())
	}
	for _, s := range m.Signals {
		if !s.Cached || s.CorrelationID == "" {
			t.Fatalf("cached signal %+v should name the original call's correlation id", s)
		}
	}
}

// submit_multi: every SME destination is checked; one swapped SIM rejects the message.
func TestInterceptorSubmitMultiAllDestinations(t *testing.T) {
	prov := &scripted{swapped: map[string]bool{"+447700900002": true}}
	ic, _ := newTestInterceptor(t, prov, nil)
	multi := func(dests ...string) *smpp.PDU {
		var ds []smpp.Dest
		for _, d := range dests {
			ds = append(ds, smpp.Dest{TON: 1, NPI: 1, Addr: d})
		}
		ds = append(ds, smpp.Dest{DLName: "friends"})
		p, err := smpp.NewBuilder(smpp.SubmitMulti, 0, 1).CString("").Int(5).Int(0).CString("BANK").Int(byte(len(ds))).Dests(ds).
			Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).ShortMessage([]byte("Your OTP is 1234")).PDU()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	before := prov.calls.Load()
	m, _ := submit(t, ic, multi("447700900001", "447700900003"))
	if m.Decision.Action != ActionAllow || prov.calls.Load()-before != 4 { // 2 destinations × 2 checks
		t.Fatalf("clean destinations: %+v, %d calls", m.Decision, prov.calls.Load()-before)
	}
	m, _ = submit(t, ic, multi("447700900001", "447700900002"))
	if m.Decision.Action != ActionReject || !strings.Contains(m.Decision.Reason, "0002") {
		t.Fatalf("one swapped destination: %+v", m.Decision)
	}
}

// A route's policy overrides the account's, and applies to accounts without one.
func TestInterceptorRoutePolicy(t *testing.T) {
	prov := &scripted{swapped: map[string]bool{"+447700900001": true}}
	ic, _ := newTestInterceptor(t, prov, func(p *Policy, c *Config) {
		shadow := *p
		shadow.Shadow = true
		c.RoutePolicies = map[string]*Policy{"watched": &shadow}
		c.Policies["nopolicy"] = nil
		delete(c.Policies, "nopolicy")
	})
	for _, tc := range []struct {
		account, route string
		shadow, otp    bool
	}{
		{"bank", "", false, true},        // the account's policy
		{"bank", "watched", true, true},  // the route's overrides it
		{"other", "watched", true, true}, // an account without a policy, protected by the route
		{"other", "plain", false, false}, // neither: not intercepted
	} {
		m := &Message{Account: tc.account, Route: tc.route, PDU: smFrame(t, "447700900001", 0, []byte("Your OTP is 1234"))}
		got := make(chan *Message, 1)
		if ic.Submit(context.Background(), m, func(m *Message) { got <- m }) {
			got <- m
		}
		r := <-got
		if r.OTP != tc.otp || r.Decision.Shadow != tc.shadow {
			t.Errorf("%s via %q: otp %v shadow %v (%+v)", tc.account, tc.route, r.OTP, r.Decision.Shadow, r.Decision)
		}
	}
}

// otp.mask_keep: 0 masks every digit of the number in the audit record and the log (it was
// once turned into the default 4); a negative value is refused.
func TestInterceptorMaskKeepZero(t *testing.T) {
	prov := &scripted{swapped: map[string]bool{"+447700900001": true}}
	core, logs := observer.New(zap.InfoLevel)
	ic, audit := newTestInterceptor(t, prov, func(_ *Policy, c *Config) { c.MaskKeep = 0; c.Logger = zap.New(core) })
	if m, _ := submit(t, ic, smFrame(t, "447700900001", 0, []byte("Your OTP is 1234"))); m.Decision.Action != ActionReject {
		t.Fatalf("decision %+v", m.Decision)
	}
	recs := audit.all()
	if len(recs) != 1 || recs[0].Destination != "************" {
		t.Fatalf("audit destination %q, want every digit masked", recs[0].Destination)
	}
	entries := logs.FilterMessage("interceptor: OTP decision").All()
	if len(entries) != 1 || entries[0].ContextMap()["destination"] != "************" {
		t.Fatalf("logged %+v", entries)
	}
	if _, err := New(Config{MaskKeep: -1}); err == nil || !strings.Contains(err.Error(), "mask_keep -1") {
		t.Fatalf("negative mask_keep: %v", err)
	}
}

// Stats().Pending counts held parts and look-ups until they are answered and comes back to 0
// after concatenated messages (it once dropped by 2 per 3-part message and went negative).
func TestInterceptorPendingConcatenated(t *testing.T) {
	prov := &scripted{swapped: map[string]bool{"+447700900001": true}}
	ic, _ := newTestInterceptor(t, prov, nil)
	udh := func(ref byte, seq int) []byte { return []byte{0x05, 0x00, 0x03, ref, 3, byte(seq)} }
	results := make(chan *Message, 9)
	submitPart := func(dest string, ref byte, seq int, text string) {
		t.Helper()
		m := &Message{Account: "bank", PDU: smFrame(t, dest, 0x40, append(udh(ref, seq), text...))}
		if ic.Submit(context.Background(), m, func(m *Message) { results <- m }) {
			results <- m
		}
	}
	wait := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-results:
			case <-time.After(5 * time.Second):
				t.Fatal("part not answered")
			}
		}
	}
	// An OTP (looked up) and a message that is not one (decided inline), both complete.
	for _, msg := range []struct {
		dest  string
		ref   byte
		texts []string
	}{
		{"447700900001", 1, []string{"Your verification ", "code is 48", "2913."}},
		{"447700900003", 2, []string{"Your parcel ", "ships ", "tomorrow."}},
	} {
		for i, text := range msg.texts[:2] {
			submitPart(msg.dest, msg.ref, i+1, text)
		}
		if got := ic.Stats().Pending; got != 2 {
			t.Fatalf("%d pending with two parts held, want 2", got)
		}
		submitPart(msg.dest, msg.ref, 3, msg.texts[2])
		wait(3)
		if got := ic.Stats().Pending; got != 0 {
			t.Fatalf("pending %d (as int64: %d) after the message was answered, want 0", got, int64(got))
		}
	}
	// Two parts of three, answered by the reassembly timeout.
	submitPart("447700900001", 3, 1, "Your verification code is 4829")
	submitPart("447700900001", 3, 2, "13.")
	wait(2)
	if got := ic.Stats().Pending; got != 0 {
		t.Fatalf("pending %d (as int64: %d) after a timed-out message, want 0", got, int64(got))
	}
}

// A concatenated OTP from an application that sends one part at a time, waiting for each
// part's answer (the usual synchronous client), to a swapped SIM: the first part is held
// FirstPartTimeout and decided on its text; the later parts are decided at once on arrival,
// on the text of every part so far, so the part that completes the wording and the code is
// rejected. Parts 2..n are not held at all (the reassembly clock does not move for them);
// they were once held the whole timeout each and allowed one by one.
func TestInterceptorConcatenatedSynchronousSender(t *testing.T) {
	prov := &scripted{swapped: map[string]bool{"+447700900001": true}}
	clk := newFakeClock()
	ic, audit := newTestInterceptor(t, prov, func(_ *Policy, c *Config) {
		c.Reassembly = ReassemblyConfig{Timeout: 5 * time.Second, FirstPartTimeout: time.Second, Now: clk.Now}
	})
	texts := []string{"Your verification ", "code is 48", "2913."}
	udh := func(seq int) []byte { return []byte{0x05, 0x00, 0x03, 0x33, 3, byte(seq)} }
	send := func(seq int) chan *Message {
		res := make(chan *Message, 2)
		m := &Message{Account: "bank", PDU: smFrame(t, "447700900001", 0x40, append(udh(seq), texts[seq-1]...)), Received: time.Now()}
		if ic.Submit(context.Background(), m, func(m *Message) { res <- m }) {
			res <- m
		}
		return res
	}
	answer := func(seq int, res chan *Message, within time.Duration) *Message {
		t.Helper()
		select {
		case m := <-res:
			t.Logf("part %d: %s otp=%v (%s)", seq, m.Decision.Action, m.OTP, m.Decision.Reason)
			return m
		case <-time.After(within):
			t.Fatalf("part %d not answered within %s (reassembly clock at %s)", seq, within, clk.Now().Format(time.TimeOnly))
			return nil
		}
	}

	res := send(1)
	select {
	case m := <-res:
		t.Fatalf("first part answered before its hold ran out: %+v", m.Decision)
	case <-time.After(150 * time.Millisecond): // the sweeper ticks every 100 ms
	}
	clk.Advance(time.Second) // FirstPartTimeout, not the 5 s Timeout
	if m := answer(1, res, 3*time.Second); m.Decision.Action != ActionAllow {
		t.Fatalf("part 1 alone is no OTP: %+v", m.Decision)
	}

	frozen := clk.Now()
	for seq := 2; seq <= 3; seq++ {
		start := time.Now()
		m := answer(seq, send(seq), 3*time.Second)
		if d := time.Since(start); d >= time.Second {
			t.Fatalf("part %d answered after %s: held again", seq, d)
		}
		if seq == 2 && m.Decision.Action != ActionAllow {
			t.Fatalf("part 2: %+v", m.Decision) // "Your verification code is 48": no code yet
		}
		if seq == 3 && (m.Decision.Action != ActionReject || !m.OTP || !strings.Contains(m.Decision.Reason, "3 of 3 parts seen, 2 answered separately")) {
			t.Fatalf("the part completing the OTP to a swapped SIM: otp %v %+v", m.OTP, m.Decision)
		}
	}
	if !clk.Now().Equal(frozen) {
		t.Fatal("the clock moved")
	}
	recs := audit.all()
	if len(recs) != 1 || recs[0].Action != ActionReject || recs[0].Parts != 3 {
		t.Fatalf("audit %+v", recs)
	}
	if p := ic.Stats().Pending; p != 0 {
		t.Fatalf("pending %d", int64(p))
	}
}
