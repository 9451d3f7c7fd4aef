package main

import (
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakecarrier"
)

// slowProvider is a CAMARA provider whose per-call timeout (10 s) is longer than any policy
// deadline of these tests, so that only the policy's deadline can cut a look-up short.
const slowProvider = `  - name: slow
    type: camara
    base_url: {{api}}
    timeout: 10s
    error_ttl: 1ms
    breaker_failures: 1000
    auth: {token_url: "{{token}}", client_id: smppguard, client_secret: sandbox-secret, scopes: [sim-swap:check], purpose: dpv:FraudPreventionAndDetection}`

// A carrier slower than the policy's deadline: the OTP is decided by the fail policy at
// about the deadline (500 ms), not when the carrier answers (5 s) nor at the provider's
// timeout (10 s). The bound is generous for a loaded machine and still far below both.
func TestE2EOTPDeadline(t *testing.T) {
	e := startOTPEnvWith(t, otpEnvOptions{
		providers: slowProvider,
		accounts: `  - {system_id: dlclosed, password: pw, route: default, policy: dlclosed}
  - {system_id: dlopen, password: pw, route: default, policy: dlopen}`,
		policies: `  - name: dlclosed
    deadline: 500ms
    checks:
      - {signal: sim_swap, provider: slow, on_error: {action: reject, status: ESME_RX_T_APPN}}
  - name: dlopen
    deadline: 500ms
    checks:
      - {signal: sim_swap, provider: slow, on_error: {action: allow}}`,
	})
	const carrierLatency = 5 * time.Second
	for _, c := range []struct {
		account, num string
		want         smpp.Status
	}{
		{"dlclosed", "447700901201", smpp.StatusXTAppn},
		{"dlopen", "447700901202", smpp.StatusOK},
	} {
		t.Run(c.account, func(t *testing.T) {
			// Swapped, so an answer that waited for the carrier would be a reject with
			// ESME_RSUBMITFAIL, not the fail policy.
			e.carrier.SetNumber("+"+c.num, fakecarrier.Number{SimChangedAgo: dur(time.Hour), Latency: fakecarrier.Duration(carrierLatency)})
			es := bindTRX(t, e.proc.addr, c.account, "pw")
			start := time.Now()
			r := es.submit(t, sm{dest: c.num, text: []byte(otpText)})
			took := time.Since(start)
			t.Logf("%s: %s after %s", c.account, r.Status(), took.Round(time.Millisecond))
			if r.Status() != c.want {
				t.Fatalf("status %s, want %s (the fail policy)", r.Status(), c.want)
			}
			if took < 450*time.Millisecond || took > 3*time.Second {
				t.Fatalf("decided after %s: want about the 500ms deadline (carrier %s, provider timeout 10s)", took, carrierLatency)
			}
			calls := callsFor(e.carrier, c.num)
			if len(calls) != 1 || calls[0].Status != 0 {
				t.Fatalf("carrier calls %+v: want one, still unanswered when the OTP was decided", calls)
			}
			if c.want == smpp.StatusOK && submitsTo(e.smsc, c.num) != 1 {
				t.Fatal("the fail-open OTP was not relayed")
			}
		})
	}
}

// otp.max_in_flight bounds the look-ups in flight: with both slots held by OTPs waiting on a
// slow carrier, a third OTP is answered at once without a look-up, with ESME_RTHROTTLED
// (on_saturated: throttle) or the policy's fail action (on_saturated: fail_policy). Once the
// slots are free, the same OTP is looked up as usual.
func TestE2EOTPSaturation(t *testing.T) {
	e := startOTPEnvWith(t, otpEnvOptions{
		providers: slowProvider,
		otp:       "  max_in_flight: 2",
		accounts: `  - {system_id: satthr, password: pw, route: default, policy: satthr}
  - {system_id: satfail, password: pw, route: default, policy: satfail}`,
		policies: `  - name: satthr
    deadline: 4s
    on_saturated: throttle
    checks:
      - {signal: sim_swap, provider: slow, on_error: {action: allow}}
  - name: satfail
    deadline: 4s
    on_saturated: fail_policy
    checks:
      - {signal: sim_swap, provider: slow, on_error: {action: reject, status: ESME_RX_T_APPN}}`,
	})
	for _, c := range []struct {
		account         string
		fillers         [2]string
		excess          string
		wantExcess      smpp.Status // answered while saturated
		wantFillers     smpp.Status // their look-ups run out at the deadline: the fail policy
		wantExcessLater smpp.Status // the excess number (clean) looked up once slots are free
	}{
		{"satthr", [2]string{"447700901301", "447700901302"}, "447700901303", smpp.StatusThrottled, smpp.StatusOK, smpp.StatusOK},
		{"satfail", [2]string{"447700901311", "447700901312"}, "447700901313", smpp.StatusXTAppn, smpp.StatusXTAppn, smpp.StatusOK},
	} {
		t.Run(c.account, func(t *testing.T) {
			es := bindTRX(t, e.proc.addr, c.account, "pw")
			type result struct {
				r   *smpp.PDU
				err error
			}
			filled := make(chan result, len(c.fillers))
			for _, num := range c.fillers {
				e.carrier.SetNumber("+"+num, fakecarrier.Number{Latency: fakecarrier.Duration(10 * time.Second)})
				go func() {
					r, err := es.submitErr(sm{dest: num, text: []byte(otpText)})
					filled <- result{r, err}
				}()
			}
			// Both slots are held once the carrier has both calls.
			waitUntil(t, 10*time.Second, "the carrier did not receive both fillers' look-ups", func() bool {
				return len(callsFor(e.carrier, c.fillers[0])) == 1 && len(callsFor(e.carrier, c.fillers[1])) == 1
			})
			start := time.Now()
			r := es.submit(t, sm{dest: c.excess, text: []byte(otpText)})
			took := time.Since(start)
			if len(filled) != 0 {
				t.Fatalf("a filler was answered before the excess OTP (%s after %s): the slots were not held", r.Status(), took)
			}
			if r.Status() != c.wantExcess {
				t.Fatalf("excess OTP: %s after %s, want %s", r.Status(), took, c.wantExcess)
			}
			if n := len(callsFor(e.carrier, c.excess)); n != 0 {
				t.Fatalf("the excess OTP was looked up (%d carrier calls)", n)
			}
			if submitsTo(e.smsc, c.excess) != 0 {
				t.Fatal("the excess OTP was relayed")
			}
			for range c.fillers {
				select {
				case res := <-filled:
					if res.err != nil || res.r.Status() != c.wantFillers {
						t.Fatalf("filler: %v %v, want %s", res.r, res.err, c.wantFillers)
					}
				case <-time.After(15 * time.Second):
					t.Fatal("a filler was never answered")
				}
			}
			if r := es.submit(t, sm{dest: c.excess, text: []byte(otpText)}); r.Status() != c.wantExcessLater {
				t.Fatalf("the same OTP with free slots: %s, want %s", r.Status(), c.wantExcessLater)
			}
			if n := len(callsFor(e.carrier, c.excess)); n != 1 {
				t.Fatalf("%d carrier calls for the OTP sent with free slots, want 1", n)
			}
		})
	}
}
