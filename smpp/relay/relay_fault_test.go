package relay

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

func TestBindAuthentication(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Accounts = append(c.Accounts,
			Account{SystemID: "rxonly", Password: "pw", Route: "default", BindTypes: []smpp.CommandID{smpp.BindReceiver}},
			Account{SystemID: "one", Password: "pw", Route: "default", MaxBinds: 1},
			Account{SystemID: "far", Password: "pw", Route: "default", Allow: func(ip net.IP) bool { return !ip.IsLoopback() }},
		)
	})
	mustBind(t, e.addr, smpp.BindTransceiver, "one", "pw")
	cases := []struct {
		name    string
		bind    smpp.CommandID
		sys, pw string
		want    smpp.Status
	}{
		{"unknown system_id (answered like a wrong password)", smpp.BindTransceiver, "nobody", "pw", smpp.StatusInvPaswd},
		{"wrong password", smpp.BindTransceiver, "bank", "nope", smpp.StatusInvPaswd},
		{"bind type not allowed", smpp.BindTransmitter, "rxonly", "pw", smpp.StatusBindFail},
		{"max binds", smpp.BindTransceiver, "one", "pw", smpp.StatusBindFail},
		{"source address not allowed", smpp.BindTransceiver, "far", "pw", smpp.StatusBindFail},
		{"passthrough refused by the SMSC itself", smpp.BindTransceiver, "pt", "wrong", smpp.StatusInvPaswd},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := bindESME(t, e.addr, tc.bind, tc.sys, tc.pw)
			var be *smpp.BindError
			if !errors.As(err, &be) || be.Status != tc.want {
				t.Fatalf("err %v, want bind refused with %s", err, tc.want)
			}
			if resp == nil || resp.ID() != tc.bind.Response() {
				t.Fatalf("resp %v", resp)
			}
		})
	}
}

// The hook can pass, reject, answer or reroute, and a pending decision does not hold up
// other PDUs of the same session.
func TestSubmitHook(t *testing.T) {
	var pending sync.Map // dest -> *SubmitRequest
	hook := SubmitHookFunc(func(req *SubmitRequest) Verdict {
		switch d := req.PDU.CString(smpp.FieldDestinationAddr); d {
		case "1000":
			return Verdict{Action: Reject, Status: smpp.StatusSubmitFail}
		case "2000":
			return Verdict{Action: Answer, Status: smpp.StatusOK, MessageID: "proxy-1"}
		case "3000":
			return Verdict{Action: Reroute, Route: "voice"}
		case "4000":
			pending.Store(d, req)
			return Verdict{Action: Pending}
		}
		return Verdict{Action: Pass}
	})
	var voiceSubmits atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	voice, err := fakesmsc.Start(ctx, fakesmsc.Config{Accounts: map[string]string{"proxy": "secret"}, MessageIDFormat: "decimal"})
	if err != nil {
		t.Fatal(err)
	}
	defer voice.Close()
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Hook = hook
		c.Upstreams = append(c.Upstreams, Upstream{Name: "voicegw", Addr: voice.Addr(), Bind: smpp.BindParams{SystemID: "proxy", Password: "secret"}})
		c.Routes["voice"] = "voicegw"
	})
	c := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")

	// Start a pending one first.
	slow := make(chan *smpp.PDU, 1)
	go func() {
		p, _ := smpp.Parse(submitFrame(t, smOpt{dest: "4000", text: []byte("slow")}))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, _ := c.s.Request(ctx, p)
		slow <- r
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := pending.Load("4000"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hook never saw the pending submit")
		}
		time.Sleep(2 * time.Millisecond)
	}
	// While it is pending, the others are answered.
	if r := request(t, c, submitFrame(t, smOpt{dest: "1000", text: []byte("x")})); r.Status() != smpp.StatusSubmitFail {
		t.Fatalf("reject: %v", r.Header())
	}
	if r := request(t, c, submitFrame(t, smOpt{dest: "2000", text: []byte("x")})); r.Status() != smpp.StatusOK || r.CString(smpp.FieldMessageID) != "proxy-1" {
		t.Fatalf("answer: %v %q", r.Header(), r.CString(smpp.FieldMessageID))
	}
	if r := request(t, c, submitFrame(t, smOpt{dest: "5000", text: []byte("x")})); r.Status() != smpp.StatusOK {
		t.Fatalf("pass: %v", r.Header())
	}
	before := len(voice.Records())
	if r := request(t, c, submitFrame(t, smOpt{dest: "3000", regDel: 1, text: []byte("x")})); r.Status() != smpp.StatusOK {
		t.Fatalf("reroute: %v", r.Header())
	}
	for _, rec := range voice.Records()[before:] {
		if rec.Command == "submit_sm" {
			voiceSubmits.Add(1)
		}
	}
	if voiceSubmits.Load() != 1 {
		t.Fatalf("voice gateway got %d submits", voiceSubmits.Load())
	}
	// The rerouted message's receipt comes back from the voice route.
	got := c.waitDelivered(t, 1)
	if got[0].CString(smpp.FieldSourceAddr) != "3000" {
		t.Fatalf("receipt from %q", got[0].CString(smpp.FieldSourceAddr))
	}
	select {
	case <-slow:
		t.Fatal("pending submit answered before it was resolved")
	default:
	}
	v, _ := pending.Load("4000")
	v.(*SubmitRequest).Resolve(Verdict{Action: Pass})
	v.(*SubmitRequest).Resolve(Verdict{Action: Reject}) // ignored
	if r := <-slow; r == nil || r.Status() != smpp.StatusOK {
		t.Fatalf("resolved pending: %v", r)
	}
}

// Pooled: the SMSC dies with requests in flight. Each request gets exactly one response,
// the link reconnects and traffic resumes.
func TestUpstreamKilledInFlightPooled(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{ResponseDelay: 300 * time.Millisecond}, nil)
	c := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	const n = 50
	results := make(chan *smpp.PDU, n*2)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, _ := smpp.Parse(submitFrame(t, smOpt{text: []byte("x")}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := c.s.Request(ctx, p)
			if err != nil {
				t.Errorf("no response: %v", err)
				return
			}
			results <- r
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.smsc.Stats().Submits < n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	e.smsc.DropConnections()
	wg.Wait()
	close(results)
	got := 0
	for r := range results {
		got++
		if r.Status() != smpp.StatusSysErr && r.Status() != smpp.StatusOK {
			t.Errorf("status %s", r.Status())
		}
	}
	if got != n {
		t.Fatalf("%d responses for %d requests", got, n)
	}
	if _, peers := c.s.InFlight(); peers != 0 {
		t.Fatal("ESME still has requests in flight")
	}
	e.waitLinks()
	if r := request(t, c, submitFrame(t, smOpt{text: []byte("after")})); r.Status() != smpp.StatusOK {
		t.Fatalf("after reconnect: %v", r.Header())
	}
}

// Pooled: with no upstream bind, a submit waits LinkWait and then gets ESME_RTHROTTLED.
func TestNoUpstreamThrottles(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) { c.LinkWait = 100 * time.Millisecond })
	c := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	e.smsc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for e.relay.Links()["carrier"].Ready() && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if r := request(t, c, submitFrame(t, smOpt{text: []byte("x")})); r.Status() != smpp.StatusThrottled {
		t.Fatalf("status %s, want ESME_RTHROTTLED", r.Status())
	}
}

// Pass-through: the upstream session dropping drops the ESME session, after every in-flight
// request got exactly one response (ESME_RSYSERR, or ESME_ROK if the SMSC answered first).
func TestUpstreamKilledPassThrough(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{ResponseDelay: 2 * time.Second}, nil)
	c := mustBind(t, e.addr, smpp.BindTransceiver, "pt", "ptpw")
	const n = 20
	results := requestsInFlight(t, c, n, "x")
	deadline := time.Now().Add(5 * time.Second)
	for e.smsc.Stats().Submits < n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	e.smsc.DropConnections()
	select {
	case <-c.s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("ESME session not closed after its upstream dropped")
	}
	answered := 0
	for range n {
		r := <-results // each Request ends: with its response, or ErrClosed when the session closed first
		if r.err != nil {
			t.Errorf("in-flight request without a response: %v", r.err)
			continue
		}
		if st := r.resp.Status(); st != smpp.StatusSysErr && st != smpp.StatusOK {
			t.Errorf("status %s", st)
		}
		answered++
	}
	if answered != n {
		t.Fatalf("%d of %d in-flight requests answered before the close", answered, n)
	}
	if u := c.s.Counters().UnmatchedResponses; u != 0 {
		t.Fatalf("%d responses matched no request (duplicates)", u)
	}
}

// The ESME does not answer a deliver_sm: the SMSC gets ESME_RX_T_APPN and redelivers later.
func TestDeliverTimeoutTellsSMSCToRetry(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, nil)
	silent := &silentESME{}
	frame, _ := smpp.BindParams{SystemID: "bank", Password: "pw"}.Encode(smpp.BindReceiver, 0)
	p, _ := smpp.Parse(frame)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, _, err := smpp.Dial(ctx, e.addr, p, silent, smpp.Config{EnquireLinkInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	moCtx, moCancel := context.WithTimeout(ctx, 8*time.Second)
	defer moCancel()
	err = e.smsc.SendMO(moCtx, "proxy", "447700900999", "12345", 0, []byte("hello"))
	var st smpp.Status
	if !errors.As(err, &st) || st != smpp.StatusXTAppn {
		t.Fatalf("SMSC got %v, want ESME_RX_T_APPN", err)
	}
}

type silentESME struct{}

func (silentESME) ServePDU(*smpp.Session, *smpp.PDU) {}

// A receipt for a message the proxy never saw is held, then logged, counted and acked.
func TestUnknownReceiptCounted(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) { c.DLRMatchWait = 100 * time.Millisecond })
	mustBind(t, e.addr, smpp.BindReceiver, "bank", "pw")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := e.smsc.SendMO(ctx, "proxy", "447700900999", "BANK", 0, []byte("id:DEADBEEF sub:001 dlvrd:001 submit date:2611250000 done date:2611250000 stat:DELIVRD err:000 text:"),
		smpp.TLV{Tag: smpp.TagReceiptedMessageID, Value: []byte("DEADBEEF\x00")})
	if err != nil {
		t.Fatal(err)
	}
	if s := e.relay.Stats(); s.ReceiptsUnknown != 1 || s.ReceiptsHeld != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// The SMSC's deliver_sm is answered with the ESME's own status, in both modes.
func TestDeliverStatusFromESME(t *testing.T) {
	for _, acct := range []struct{ sys, pw, smscAcct string }{{"bank", "pw", "proxy"}, {"pt", "ptpw", "pt"}} {
		t.Run(acct.sys, func(t *testing.T) {
			e := newEnv(t, fakesmsc.Config{}, nil)
			rx := mustBind(t, e.addr, smpp.BindTransceiver, acct.sys, acct.pw)
			rx.mu.Lock()
			rx.ack = smpp.StatusXPAppn
			rx.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := e.smsc.SendMO(ctx, acct.smscAcct, "447700900999", "12345", 0, []byte("hi"))
			var st smpp.Status
			if !errors.As(err, &st) || st != smpp.StatusXPAppn {
				t.Fatalf("SMSC got %v, want the ESME's ESME_RX_P_APPN", err)
			}
		})
	}
}

// Passwords may be bcrypt hashes; repeated failures lock out the source address and the
// system_id, and other accounts are unaffected.
func TestBindBcryptAndLockout(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Accounts = append(c.Accounts, Account{SystemID: "hashed", Password: string(hash), Route: "default"})
		c.Lockout = Lockout{Failures: 3, Window: time.Minute, Duration: time.Minute}
	})
	mustBind(t, e.addr, smpp.BindTransceiver, "hashed", "s3cret")
	refused := func(sys, pw string) smpp.Status {
		_, _, err := bindESME(t, e.addr, smpp.BindTransceiver, sys, pw)
		var be *smpp.BindError
		if !errors.As(err, &be) {
			t.Fatalf("bind %s/%s: %v, want refused", sys, pw, err)
		}
		return be.Status
	}
	for range 3 {
		if st := refused("hashed", "wrong"); st != smpp.StatusInvPaswd {
			t.Fatalf("wrong password: %s", st)
		}
	}
	// Locked: even the right password is refused now, from this address and for this system_id.
	if st := refused("hashed", "s3cret"); st != smpp.StatusBindFail {
		t.Fatalf("after 3 failures: %s, want ESME_RBINDFAIL", st)
	}
	// The whole source address is locked, so another account from 127.0.0.1 is refused too;
	// the lockout of one address does not touch other addresses (checked by the per-key unit test).
	if st := refused("bank", "pw"); st != smpp.StatusBindFail {
		t.Fatalf("other account from the locked address: %s", st)
	}
}

func TestLockoutKeys(t *testing.T) {
	l := newLockout(Lockout{Failures: 2, Window: time.Minute, Duration: time.Minute})
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	l.failed("10.0.0.1", "bank")
	if l.locked("10.0.0.1", "bank") != "" {
		t.Fatal("locked after one failure")
	}
	l.failed("10.0.0.1", "bank")
	if l.locked("10.0.0.1", "other") == "" || l.locked("10.0.0.2", "bank") == "" {
		t.Fatal("address or system_id not locked after two failures")
	}
	if l.locked("10.0.0.2", "other") != "" {
		t.Fatal("an unrelated address and account are locked")
	}
	now = now.Add(2 * time.Minute)
	if l.locked("10.0.0.1", "bank") != "" {
		t.Fatal("still locked after the lockout duration")
	}
	if !passwordOK("plain", []byte("plain")) || passwordOK("plain", []byte("plaiN")) {
		t.Fatal("plain password comparison")
	}
}

// Per-session TPS: submits beyond it are answered ESME_RTHROTTLED at once. Bind rate per
// source address: binds beyond it are refused.
func TestSessionTPSAndBindRate(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Accounts = append(c.Accounts, Account{SystemID: "slow", Password: "pw", Route: "default", TPS: 2})
		c.BindRate = BindRate{PerSecond: 0.001, Burst: 3} // the env's own binds come from the relay, not this listener
	})
	c := mustBind(t, e.addr, smpp.BindTransceiver, "slow", "pw")
	var ok, throttled int
	for range 5 {
		switch r := request(t, c, submitFrame(t, smOpt{text: []byte("x")})); r.Status() {
		case smpp.StatusOK:
			ok++
		case smpp.StatusThrottled:
			throttled++
		default:
			t.Fatalf("status %s", r.Status())
		}
	}
	if ok < 1 || ok > 2 || throttled != 5-ok {
		t.Fatalf("ok %d throttled %d with TPS 2 (burst 1) over 5 immediate submits", ok, throttled)
	}
	mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw") // the 2nd bind from 127.0.0.1
	mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw") // the 3rd
	_, _, err := bindESME(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	var be *smpp.BindError
	if !errors.As(err, &be) || be.Status != smpp.StatusBindFail {
		t.Fatalf("4th bind within the burst of 3: %v, want ESME_RBINDFAIL", err)
	}
}

// Pass-through: a receipt the SMSC kept while no receiver was bound is written right behind
// the new receiver's bind_resp. It reaches the ESME on the first attempt (not refused as
// "not bound" and retried).
func TestPassThroughQueuedReceiptOnRebind(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, nil)
	for i := range 5 {
		tx := mustBind(t, e.addr, smpp.BindTransmitter, "pt", "ptpw")
		request(t, tx, submitFrame(t, smOpt{regDel: 1, text: []byte("x")}))
		tx.s.Close()
		deadline := time.Now().Add(5 * time.Second)
		for e.smsc.Stats().DLRsPending < 1 && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		rx := mustBind(t, e.addr, smpp.BindReceiver, "pt", "ptpw")
		rx.waitDelivered(t, 1)
		for e.smsc.Stats().DLRsAcked < int64(i+1) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if st := e.smsc.Stats(); st.DLRsSent != int64(i+1) || st.DLRsAcked != int64(i+1) {
			t.Fatalf("round %d: receipts sent %d, acked %d (a refused first attempt is resent)", i, st.DLRsSent, st.DLRsAcked)
		}
		rx.s.Close()
	}
}

// reqResult is one request's end: its response, or the error that ended it.
type reqResult struct {
	resp *smpp.PDU
	err  error
}

// requestsInFlight sends n submit_sm with text on c concurrently; each one's end arrives on
// the channel returned.
func requestsInFlight(t *testing.T, c *esmeClient, n int, text string) <-chan reqResult {
	t.Helper()
	results := make(chan reqResult, n)
	for range n {
		go func() {
			p, _ := smpp.Parse(submitFrame(t, smOpt{text: []byte(text)}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := c.s.Request(ctx, p)
			results <- reqResult{r, err}
		}()
	}
	return results
}
