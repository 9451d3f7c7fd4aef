package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/smppguard/smppguard/config"
	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakecarrier"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// Numbers of the OTP scenario.
const (
	numSwapped  = "447700900001"
	numDiverted = "447700900002"
	numClean    = "447700900003"
	numUnknown  = "447700900004"
	numSlow     = "447700900005"
	numFlaky    = "447700900006" // errors injected per test
)

type otpEnv struct {
	smsc, voice *fakesmsc.Server
	carrier     *fakecarrier.Server
	proc        *proc
	audit       string
}

func dur(d time.Duration) *fakecarrier.Duration {
	v := fakecarrier.Duration(d)
	return &v
}

func startOTPEnv(t *testing.T, extraPolicies string) *otpEnv {
	t.Helper()
	return startOTPEnvWith(t, otpEnvOptions{policies: extraPolicies})
}

// otpEnvOptions extend the OTP environment's configuration. The YAML fragments are
// appended to their lists (accounts, providers, policies: list items indented two spaces)
// or to the otp: section (keys indented two spaces); {{api}} and {{token}} in them become
// the fake carrier's API root and token URL.
type otpEnvOptions struct {
	accounts, providers, policies, otp string
	// scenario adjusts the fake carrier's scenario before it starts.
	scenario func(*fakecarrier.Scenario)
}

func startOTPEnvWith(t *testing.T, o otpEnvOptions) *otpEnv {
	t.Helper()
	e := &otpEnv{smsc: startSMSC(t, fakesmsc.Config{DLRDelay: 20 * time.Millisecond}), voice: startSMSC(t, fakesmsc.Config{Seed: 7})}
	sc := fakecarrier.DefaultScenario()
	sc.Numbers["+"+numSlow] = fakecarrier.Number{Latency: fakecarrier.Duration(1500 * time.Millisecond)}
	if o.scenario != nil {
		o.scenario(&sc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var err error
	e.carrier, err = fakecarrier.Start(ctx, fakecarrier.Config{Scenario: sc, RequirePurpose: "dpv:FraudPreventionAndDetection"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.carrier.Close() })
	dir := t.TempDir()
	e.audit = filepath.Join(dir, "audit.jsonl")
	cfg := fmt.Sprintf(`listen:
  smpp: 127.0.0.1:0
session:
  response_timeout: 5s
upstreams:
  - {name: carrier, address: %s, system_id: proxy, password: secret, binds: 2, reconnect_min: 50ms}
  - {name: voicegw, address: %s, system_id: proxy, password: secret, reconnect_min: 50ms}
routes:
  - {name: default, upstream: carrier}
  - {name: voice, upstream: voicegw}
  - {name: guarded, upstream: carrier, policy: closed}
accounts:
  - {system_id: bank, password: bankpw, route: default, policy: open}
  - {system_id: closed, password: pw, route: default, policy: closed}
  - {system_id: dropper, password: pw, route: default, policy: dropper}
  - {system_id: shadow, password: pw, route: default, policy: shadow}
  - {system_id: plain, password: pw, route: default, prefix_routes: [{prefix: "447700900009", route: guarded}]}
  - {system_id: packer, password: pw, route: default, policy: packed}
%s
providers:
  - name: op
    type: camara
    base_url: %s
    timeout: 1s
    error_ttl: 1ms
    breaker_failures: 1000
    cache_ttl: {sim_swap: 1m, call_forwarding: 1m}
    auth:
      token_url: %s
      client_id: smppguard
      client_secret: sandbox-secret
      scopes: [sim-swap:check, call-forwarding-signal:unconditional-call-forwardings:read]
      purpose: dpv:FraudPreventionAndDetection
%s
policies:
  - name: open
    deadline: 700ms
    default_country_code: "44"
    checks:
      - {signal: sim_swap, provider: op, max_age: 72h, on_risk: {action: reject, status: ESME_RSUBMITFAIL}, on_error: {action: allow}}
      - {signal: call_forwarding, provider: op, on_risk: {action: reroute, route: voice}, on_error: {action: allow}}
  - name: closed
    deadline: 700ms
    checks:
      - {signal: sim_swap, provider: op, on_error: {action: reject, status: ESME_RTHROTTLED}}
  - name: dropper
    checks:
      - {signal: sim_swap, provider: op, on_risk: {action: drop, receipt_stat: UNDELIV, receipt_err: 11}}
      - {signal: call_forwarding, provider: op, on_risk: {action: flag}}
  - name: shadow
    shadow: true
    checks:
      - {signal: sim_swap, provider: op}
  - name: packed
    gsm_packed: true
    checks:
      - {signal: sim_swap, provider: op}
%s
otp:
  audit_file: %s
  concat_timeout: 2s
%s
admin:
  listen: 127.0.0.1:0
log:
  level: warn
`, e.smsc.Addr(), e.voice.Addr(), o.accounts, e.carrier.URL(), e.carrier.TokenURL(), o.providers, o.policies, e.audit, o.otp)
	cfg = strings.NewReplacer("{{api}}", e.carrier.URL(), "{{token}}", e.carrier.TokenURL()).Replace(cfg)
	path := filepath.Join(dir, "smppguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	e.proc = startBinary(t, "serve", "-c", path)
	return e
}

// esme is a test ESME bound to the proxy.
type esme struct {
	s   *smpp.Session
	mu  sync.Mutex
	got []*smpp.PDU
}

func (c *esme) ServePDU(s *smpp.Session, p *smpp.PDU) {
	c.mu.Lock()
	c.got = append(c.got, p.Copy())
	c.mu.Unlock()
	s.Respond(p, smpp.StatusOK, "")
}

func (c *esme) receipts() []*smpp.PDU {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*smpp.PDU(nil), c.got...)
}

func (c *esme) waitReceipt(t *testing.T, id string) *smpp.PDU {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range c.receipts() {
			if v, ok := p.TLV(smpp.TagReceiptedMessageID); ok && strings.TrimRight(string(v), "\x00") == id {
				return p
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no receipt for %s", id)
	return nil
}

func bindTRX(t *testing.T, addr, sys, pw string) *esme {
	t.Helper()
	return bindTRXAs(t, addr, sys, pw, smpp.BindTransceiver)
}

func bindTRXAs(t *testing.T, addr, sys, pw string, kind smpp.CommandID) *esme {
	t.Helper()
	c := &esme{}
	f, _ := smpp.BindParams{SystemID: sys, Password: pw}.Encode(kind, 0)
	p, _ := smpp.Parse(f)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, _, err := smpp.Dial(ctx, addr, p, c, smpp.Config{ResponseTimeout: 10 * time.Second, EnquireLinkInterval: -1})
	if err != nil {
		t.Fatalf("bind %s: %v", sys, err)
	}
	c.s = s
	t.Cleanup(func() { s.Close() })
	return c
}

type sm struct {
	dest string
	dc   byte
	esm  byte
	text []byte
	tlvs []smpp.TLV
	rd   *byte // registered_delivery; nil = 1 (a receipt requested)
}

func regDelivery(v byte) *byte { return &v }

func (c *esme) submit(t *testing.T, m sm) *smpp.PDU {
	t.Helper()
	resp, err := c.submitErr(m)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (c *esme) submitErr(m sm) (*smpp.PDU, error) {
	rd := byte(1)
	if m.rd != nil {
		rd = *m.rd
	}
	b := smpp.NewBuilder(smpp.SubmitSM, 0, 0).CString("").Int(5).Int(0).CString("BANK").Int(1).Int(1).CString(m.dest).
		Int(m.esm).Int(0).Int(0).CString("").CString("").Int(rd).Int(0).Int(m.dc).Int(0).ShortMessage(m.text)
	for _, tlv := range m.tlvs {
		b.TLV(tlv.Tag, tlv.Value)
	}
	p, err := b.PDU()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return c.s.Request(ctx, p)
}

func (e *otpEnv) auditRecords(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(e.audit)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func submitsTo(s *fakesmsc.Server, dest string) int { return recordsTo(s, "submit_sm", dest) }

// recordsTo counts the PDUs of a command (as fakesmsc records name it) the SMSC received
// that carry dest.
func recordsTo(s *fakesmsc.Server, command, dest string) int {
	n := 0
	for _, r := range s.Records() {
		if r.Command == command && strings.Contains(string(r.Bytes), dest) {
			n++
		}
	}
	return n
}

const otpText = "Your verification code is 482913"

func TestE2EOTPActions(t *testing.T) {
	e := startOTPEnv(t, "")
	bank := bindTRX(t, e.proc.addr, "bank", "bankpw")

	t.Run("swapped SIM: rejected, nothing relayed", func(t *testing.T) {
		r := bank.submit(t, sm{dest: numSwapped, text: []byte(otpText)})
		if r.Status() != smpp.StatusSubmitFail {
			t.Fatalf("status %s", r.Status())
		}
		if submitsTo(e.smsc, numSwapped) != 0 {
			t.Fatal("a rejected OTP reached the SMSC")
		}
	})
	t.Run("diverted: rerouted to the voice route, receipt comes back", func(t *testing.T) {
		r := bank.submit(t, sm{dest: numDiverted, text: []byte(otpText)})
		if r.Status() != smpp.StatusOK {
			t.Fatalf("status %s", r.Status())
		}
		if submitsTo(e.voice, numDiverted) != 1 || submitsTo(e.smsc, numDiverted) != 0 {
			t.Fatal("not rerouted to the voice gateway")
		}
		bank.waitReceipt(t, r.CString(smpp.FieldMessageID))
	})
	t.Run("clean: allowed", func(t *testing.T) {
		r := bank.submit(t, sm{dest: numClean, text: []byte(otpText)})
		if r.Status() != smpp.StatusOK || submitsTo(e.smsc, numClean) != 1 {
			t.Fatalf("status %s", r.Status())
		}
	})
	t.Run("unknown number: allowed (not swapped)", func(t *testing.T) {
		if r := bank.submit(t, sm{dest: numUnknown, text: []byte(otpText)}); r.Status() != smpp.StatusOK {
			t.Fatalf("status %s", r.Status())
		}
	})
	t.Run("not an OTP: relayed without a look-up", func(t *testing.T) {
		before := len(e.carrier.Calls())
		if r := bank.submit(t, sm{dest: numSwapped, text: []byte("Your parcel is on its way")}); r.Status() != smpp.StatusOK {
			t.Fatalf("status %s", r.Status())
		}
		if len(e.carrier.Calls()) != before {
			t.Fatal("a non-OTP caused an API call")
		}
	})
	t.Run("drop: success, proxy message_id, failed receipt", func(t *testing.T) {
		d := bindTRX(t, e.proc.addr, "dropper", "pw")
		before := submitsTo(e.smsc, numSwapped)
		r := d.submit(t, sm{dest: numSwapped, text: []byte(otpText)})
		id := r.CString(smpp.FieldMessageID)
		if r.Status() != smpp.StatusOK || !strings.HasPrefix(id, "sg") {
			t.Fatalf("status %s id %q", r.Status(), id)
		}
		rc := d.waitReceipt(t, id)
		if txt := string(rc.ShortMessage()); !strings.Contains(txt, "stat:UNDELIV") || !strings.Contains(txt, "err:011") {
			t.Fatalf("receipt %q", txt)
		}
		if submitsTo(e.smsc, numSwapped) != before {
			t.Fatal("a dropped OTP reached the SMSC")
		}
	})
	t.Run("flag: allowed and recorded", func(t *testing.T) {
		d := bindTRX(t, e.proc.addr, "dropper", "pw")
		if r := d.submit(t, sm{dest: numDiverted, text: []byte(otpText)}); r.Status() != smpp.StatusOK {
			t.Fatalf("status %s", r.Status())
		}
	})
	t.Run("shadow: relayed, recorded as reject", func(t *testing.T) {
		s := bindTRX(t, e.proc.addr, "shadow", "pw")
		before := submitsTo(e.smsc, numSwapped)
		if r := s.submit(t, sm{dest: numSwapped, text: []byte(otpText)}); r.Status() != smpp.StatusOK {
			t.Fatalf("status %s", r.Status())
		}
		if submitsTo(e.smsc, numSwapped) != before+1 {
			t.Fatal("shadow mode did not relay")
		}
	})
	t.Run("account without policy: never intercepted", func(t *testing.T) {
		p := bindTRX(t, e.proc.addr, "plain", "pw")
		if r := p.submit(t, sm{dest: numSwapped, text: []byte(otpText)}); r.Status() != smpp.StatusOK {
			t.Fatalf("status %s", r.Status())
		}
	})
	t.Run("route policy protects an account without one", func(t *testing.T) {
		e.carrier.SetNumber("+447700900009", fakecarrier.Number{SimChangedAgo: dur(time.Hour)})
		p := bindTRX(t, e.proc.addr, "plain", "pw")
		if r := p.submit(t, sm{dest: "447700900009", text: []byte(otpText)}); r.Status() != smpp.StatusSubmitFail {
			t.Fatalf("OTP to a swapped SIM over the guarded route: %s", r.Status())
		}
	})
	// The audit file has one record per OTP decision, masked, with the correlation id the
	// carrier received.
	e.proc.cmd.Process.Signal(os.Interrupt)
	<-e.proc.exited
	e.proc.exited <- nil
	recs := e.auditRecords(t)
	byAction := map[string]int{}
	correlators := map[string]bool{}
	for _, c := range e.carrier.Calls() {
		correlators[c.CorrelationID] = true
	}
	for _, r := range recs {
		byAction[fmt.Sprint(r["action"])]++
		if strings.Contains(fmt.Sprint(r), "447700900001") {
			t.Fatalf("unmasked number in audit: %v", r)
		}
		// Every look-up names the x-correlator of the carrier call that answered it: the
		// record's own, or (cached or shared answers) the original call's.
		for _, s := range r["signals"].([]any) {
			id := fmt.Sprint(r["correlation_id"])
			if own, ok := s.(map[string]any)["correlation_id"]; ok {
				id = fmt.Sprint(own)
			}
			if !correlators[id] {
				t.Fatalf("audit correlation id %s never reached the carrier: %v", id, r)
			}
		}
	}
	want := map[string]int{"reject": 3, "reroute": 1, "allow": 2, "drop": 1, "flag": 1}
	for a, n := range want {
		if byAction[a] != n {
			t.Fatalf("audit actions %v, want %v", byAction, want)
		}
	}
}

// Every injected carrier error: fail-open accounts relay, fail-closed accounts reject with
// their configured status, within the deadline.
func TestE2EOTPFailPolicy(t *testing.T) {
	e := startOTPEnv(t, "")
	open := bindTRX(t, e.proc.addr, "bank", "bankpw")
	closed := bindTRX(t, e.proc.addr, "closed", "pw")
	for _, inj := range []struct {
		name    string
		status  int
		code    string
		timeout bool
	}{
		{"401", 401, "UNAUTHENTICATED", false}, {"422", 422, "UNPROCESSABLE_ENTITY", false}, {"429", 429, "TOO_MANY_REQUESTS", false},
		{"500", 500, "INTERNAL", false}, {"timeout", 0, "", true},
	} {
		t.Run(inj.name, func(t *testing.T) {
			n := fakecarrier.Number{Timeout: inj.timeout}
			if !inj.timeout {
				n.Error = &fakecarrier.InjectedError{Status: inj.status, Code: inj.code, Message: "injected"}
			}
			e.carrier.SetNumber("+"+numFlaky, n)
			start := time.Now()
			if r := open.submit(t, sm{dest: numFlaky, text: []byte(otpText)}); r.Status() != smpp.StatusOK {
				t.Fatalf("fail open: status %s", r.Status())
			}
			if r := closed.submit(t, sm{dest: numFlaky, text: []byte(otpText)}); r.Status() != smpp.StatusThrottled {
				t.Fatalf("fail closed: status %s", r.Status())
			}
			if el := time.Since(start); el > 8*time.Second {
				t.Fatalf("decisions took %s", el)
			}
		})
	}
}

// Token expiry: the carrier forgets every token; the next look-up refreshes once and succeeds.
func TestE2EOTPTokenRefresh(t *testing.T) {
	e := startOTPEnv(t, "")
	bank := bindTRX(t, e.proc.addr, "bank", "bankpw")
	if r := bank.submit(t, sm{dest: numSwapped, text: []byte(otpText)}); r.Status() != smpp.StatusSubmitFail {
		t.Fatalf("status %s", r.Status())
	}
	tokens := e.carrier.CallCount("token")
	e.carrier.ExpireTokens()
	// A number not in the cache, so the API is called with the expired token.
	e.carrier.SetNumber("+447700900077", fakecarrier.Number{SimChangedAgo: dur(time.Hour)})
	if r := bank.submit(t, sm{dest: "447700900077", text: []byte(otpText)}); r.Status() != smpp.StatusSubmitFail {
		t.Fatalf("after token expiry: status %s (want the swap detected, not the fail policy)", r.Status())
	}
	if got := e.carrier.CallCount("token"); got != tokens+1 {
		t.Fatalf("%d token requests after expiry, want exactly 1", got-tokens)
	}
}

// N concurrent OTPs to one number: one API call per signal (singleflight + cache).
func TestE2EOTPSingleflight(t *testing.T) {
	e := startOTPEnv(t, "")
	bank := bindTRX(t, e.proc.addr, "bank", "bankpw")
	e.carrier.SetNumber("+447700900055", fakecarrier.Number{Latency: fakecarrier.Duration(200 * time.Millisecond)})
	before := e.carrier.CallCount("sim-swap")
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, err := bank.submitErr(sm{dest: "447700900055", text: []byte(otpText)}); err != nil || r.Status() != smpp.StatusOK {
				t.Errorf("submit: %v %v", r, err)
			}
		}()
	}
	wg.Wait()
	if got := e.carrier.CallCount("sim-swap") - before; got != 1 {
		t.Fatalf("%d sim-swap calls for %d concurrent OTPs to one number", got, n)
	}
}

// A slow look-up does not delay non-OTP traffic on the same bind.
func TestE2EOTPSlowLookupDoesNotBlock(t *testing.T) {
	e := startOTPEnv(t, "")
	bank := bindTRX(t, e.proc.addr, "bank", "bankpw")
	otpDone := make(chan time.Time, 1)
	go func() {
		bank.submitErr(sm{dest: numSlow, text: []byte(otpText)})
		otpDone <- time.Now()
	}()
	time.Sleep(50 * time.Millisecond) // the OTP is in its look-up (1.5 s latency, 700 ms deadline)
	start := time.Now()
	for i := range 20 {
		if r := bank.submit(t, sm{dest: numClean, text: []byte(fmt.Sprintf("Newsletter %d", i))}); r.Status() != smpp.StatusOK {
			t.Fatalf("status %s", r.Status())
		}
	}
	plainDone := time.Now()
	if (<-otpDone).Before(plainDone) {
		t.Fatal("the non-OTP traffic waited for the OTP's look-up")
	}
	_ = start
}

func ucs2(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

// packGSM7 packs GSM 7-bit septets (ASCII subset) into octets.
func packGSM7(s string) []byte {
	var out []byte
	var acc uint32
	bits := 0
	for i := 0; i < len(s); i++ {
		acc |= uint32(s[i]&0x7F) << bits
		bits += 7
		for bits >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			bits -= 8
		}
	}
	if bits > 0 {
		out = append(out, byte(acc))
	}
	return out
}

// Concatenated OTPs (8- and 16-bit UDH references, sar TLVs, parts out of order) and UCS2
// OTPs are recognised on the reassembled text and every part gets the same decision.
func TestE2EOTPEncodingsAndConcatenation(t *testing.T) {
	e := startOTPEnv(t, "")
	bank := bindTRX(t, e.proc.addr, "bank", "bankpw")
	parts := []string{"Your verifi", "cation code is 48", "2913"}
	type partPDU struct{ m sm }
	udh8 := func(ref byte, i int) []byte { return []byte{5, 0, 3, ref, 3, byte(i + 1)} }
	udh16 := func(ref uint16, i int) []byte { return []byte{6, 8, 4, byte(ref >> 8), byte(ref), 3, byte(i + 1)} }
	sar := func(ref uint16, i int) []smpp.TLV {
		return []smpp.TLV{{Tag: smpp.TagSarMsgRefNum, Value: []byte{byte(ref >> 8), byte(ref)}}, {Tag: smpp.TagSarTotalSegments, Value: []byte{3}}, {Tag: smpp.TagSarSegmentSeqnum, Value: []byte{byte(i + 1)}}}
	}
	for _, kind := range []string{"udh8", "udh16", "sar"} {
		for _, dest := range []string{numSwapped, numClean} {
			t.Run(kind+"_"+dest, func(t *testing.T) {
				var msgs []sm
				for i, p := range parts {
					switch kind {
					case "udh8":
						msgs = append(msgs, sm{dest: dest, esm: 0x40, text: append(udh8(0x11, i), p...)})
					case "udh16":
						msgs = append(msgs, sm{dest: dest, esm: 0x40, text: append(udh16(0x1234, i), p...)})
					case "sar":
						msgs = append(msgs, sm{dest: dest, text: []byte(p), tlvs: sar(0x99, i)})
					}
				}
				want := smpp.StatusOK
				if dest == numSwapped {
					want = smpp.StatusSubmitFail
				}
				var wg sync.WaitGroup
				for _, i := range []int{2, 0, 1} { // out of order
					wg.Add(1)
					go func() {
						defer wg.Done()
						r, err := bank.submitErr(msgs[i])
						if err != nil || r.Status() != want {
							t.Errorf("part %d: %v %v, want %s", i+1, r, err, want)
						}
					}()
					time.Sleep(10 * time.Millisecond)
				}
				wg.Wait()
			})
		}
	}
	t.Run("ucs2", func(t *testing.T) {
		if r := bank.submit(t, sm{dest: numSwapped, dc: 0x08, text: ucs2("Ваш код подтверждения: 482913")}); r.Status() != smpp.StatusSubmitFail {
			t.Fatalf("UCS2 OTP to a swapped SIM: %s", r.Status())
		}
	})
	t.Run("packed_gsm7", func(t *testing.T) {
		p := bindTRX(t, e.proc.addr, "packer", "pw")
		if r := p.submit(t, sm{dest: numSwapped, text: packGSM7("@Your code is 482913")}); r.Status() != smpp.StatusSubmitFail {
			t.Fatalf("packed GSM7 OTP to a swapped SIM: %s", r.Status())
		}
	})
	_ = partPDU{}
}
