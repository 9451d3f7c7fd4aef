package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakecarrier"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
	"github.com/smppguard/smppguard/testharness/loadgen"
)

const opsToken = "t0ken"

func opsConfig(smscAddr, carrierURL, onRisk string) string {
	return fmt.Sprintf(`listen:
  smpp: 127.0.0.1:0
upstreams:
  - {name: carrier, address: %s, system_id: proxy, password: secret, binds: 2, reconnect_min: 20ms, reconnect_max: 100ms}
routes:
  - {name: default, upstream: carrier}
accounts:
  - {system_id: bank, password: bankpw, route: default, policy: otp}
providers:
  - {name: op, type: camara, base_url: %s, auth: {none: true}}
policies:
  - name: otp
    checks:
      - {signal: sim_swap, provider: op, on_risk: {action: %s}}
admin:
  listen: 127.0.0.1:0
  token: %s
log:
  level: warn
`, smscAddr, carrierURL, onRisk, opsToken)
}

func startNoAuthCarrier(t *testing.T) *fakecarrier.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := fakecarrier.Start(ctx, fakecarrier.Config{Scenario: fakecarrier.DefaultScenario(), NoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func adminCall(t *testing.T, p *proc, method, path string, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+p.admin+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Reload under traffic: the load generator keeps submitting OTPs to a swapped SIM while the
// policy flips from allow to reject. No bind drops, every request gets a response, and the
// new policy applies from the reload on. A broken config is refused and changes nothing.
func TestE2EReloadUnderTraffic(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{NoRecord: true})
	carrier := startNoAuthCarrier(t)
	path := filepath.Join(t.TempDir(), "smppguard.yaml")
	os.WriteFile(path, []byte(opsConfig(smsc.Addr(), carrier.URL(), "allow")), 0o600)
	p := startBinary(t, "serve", "-c", path)
	if p.admin == "" {
		t.Fatal("no admin address in the banner")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	var res *loadgen.Result
	var runErr error
	go func() {
		defer close(done)
		res, runErr = loadgen.Run(ctx, loadgen.Config{Addr: p.addr, SystemID: "bank", Password: "bankpw", Binds: 2, Window: 10,
			Duration: 2 * time.Second, Dest: "447700900001", Text: "Your verification code is 482913"})
	}()
	time.Sleep(700 * time.Millisecond)
	os.WriteFile(path, []byte(opsConfig(smsc.Addr(), carrier.URL(), "reject")), 0o600)
	code, body := adminCall(t, p, "POST", "/api/v1/reload", opsToken)
	if code != 200 || !strings.Contains(string(body), "policies_changed") {
		t.Fatalf("reload: %d %s", code, body)
	}
	<-done
	if runErr != nil {
		t.Fatalf("load generator (a bind dropped?): %v", runErr)
	}
	rejected := res.ErrorsByStatus["ESME_RSUBMITFAIL"]
	if res.Sent != res.Responses || res.Timeouts != 0 || res.OK == 0 || rejected == 0 || res.OK+rejected != res.Sent {
		t.Fatalf("sent %d responses %d ok %d rejected %d timeouts %d other %v", res.Sent, res.Responses, res.OK, rejected, res.Timeouts, res.ErrorsByStatus)
	}
	// From the reload on, every OTP to the swapped SIM is rejected.
	after, err := loadgen.Run(ctx, loadgen.Config{Addr: p.addr, SystemID: "bank", Password: "bankpw", Count: 50, Window: 10,
		Dest: "447700900001", Text: "Your verification code is 482913"})
	if err != nil || after.ErrorsByStatus["ESME_RSUBMITFAIL"] != 50 {
		t.Fatalf("after reload: %+v %v", after, err)
	}
	// A broken config is refused with the reason; the running one stays.
	os.WriteFile(path, []byte("listen:\n  smpp: 127.0.0.1:0\naccounts:\n  - {system_id: bank, policy: nope}\n"), 0o600)
	code, body = adminCall(t, p, "POST", "/api/v1/reload", opsToken)
	if code != 400 || !strings.Contains(string(body), "smppguard.yaml:") {
		t.Fatalf("broken reload: %d %s", code, body)
	}
	again, err := loadgen.Run(ctx, loadgen.Config{Addr: p.addr, SystemID: "bank", Password: "bankpw", Count: 10, Dest: "447700900001", Text: "Your verification code is 482913"})
	if err != nil || again.ErrorsByStatus["ESME_RSUBMITFAIL"] != 10 {
		t.Fatalf("after a refused reload: %+v %v", again, err)
	}
	_, body = adminCall(t, p, "GET", "/metrics", opsToken)
	for _, want := range []string{`smppguard_config_reloads_total{result="ok"} 1`, `smppguard_config_reloads_total{result="refused"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
}

// The admin API: JSON shapes, metrics with their labels after traffic, decisions, checks,
// and readiness following the SMSC going away and coming back.
func TestE2EAdminAPI(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{})
	smscAddr := smsc.Addr()
	carrier := startNoAuthCarrier(t)
	path := filepath.Join(t.TempDir(), "smppguard.yaml")
	os.WriteFile(path, []byte(opsConfig(smscAddr, carrier.URL(), "reject")), 0o600)
	p := startBinary(t, "serve", "-c", path)
	c := bindTRX(t, p.addr, "bank", "bankpw")
	if r := c.submit(t, sm{dest: numSwapped, text: []byte(otpText)}); r.Status() != smpp.StatusSubmitFail {
		t.Fatalf("OTP: %s", r.Status())
	}
	if code, _ := adminCall(t, p, "GET", "/healthz", ""); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := adminCall(t, p, "GET", "/api/v1/sessions", ""); code != 401 {
		t.Fatalf("sessions without token: %d", code)
	}
	var sessions struct {
		Count    int `json:"count"`
		Sessions []struct {
			Account string `json:"account"`
			State   string `json:"state"`
			RxPDUs  uint64 `json:"rx_pdus"`
		} `json:"sessions"`
	}
	code, body := adminCall(t, p, "GET", "/api/v1/sessions", opsToken)
	if code != 200 || json.Unmarshal(body, &sessions) != nil || sessions.Count != 1 || sessions.Sessions[0].Account != "bank" || sessions.Sessions[0].State != "BOUND_TRX" {
		t.Fatalf("sessions: %d %s", code, body)
	}
	code, body = adminCall(t, p, "GET", "/api/v1/links", opsToken)
	if code != 200 || !strings.Contains(string(body), `"upstream":"carrier"`) {
		t.Fatalf("links: %d %s", code, body)
	}
	code, body = adminCall(t, p, "GET", "/api/v1/decisions?account=bank&action=reject", opsToken)
	if code != 200 || !strings.Contains(string(body), `"action":"reject"`) || strings.Contains(string(body), numSwapped) {
		t.Fatalf("decisions (masked): %d %s", code, body)
	}
	// /api/v1/check behaves as `smppguard check`: the account is optional (every account
	// with a policy) and the status is named as in /api/v1/decisions.
	for _, q := range []string{"account=bank&msisdn=%2B447700900001", "msisdn=%2B447700900001"} {
		var res struct {
			Count  int `json:"count"`
			Checks []struct {
				Account  string `json:"account"`
				Policy   string `json:"policy"`
				Decision struct {
					Action string `json:"action"`
					Status string `json:"status"`
				} `json:"decision"`
			} `json:"checks"`
		}
		code, body = adminCall(t, p, "GET", "/api/v1/check?"+q, opsToken)
		if err := json.Unmarshal(body, &res); code != 200 || err != nil || res.Count != 1 || len(res.Checks) != 1 {
			t.Fatalf("check ?%s: %d %s (%v)", q, code, body, err)
		}
		if c := res.Checks[0]; c.Account != "bank" || c.Policy != "otp" || c.Decision.Action != "reject" || c.Decision.Status != "ESME_RSUBMITFAIL" {
			t.Fatalf("check ?%s: %s", q, body)
		}
	}
	if code, body = adminCall(t, p, "GET", "/api/v1/check?account=nobody&msisdn=%2B447700900001", opsToken); code != 404 {
		t.Fatalf("check for an account without a policy: %d %s", code, body)
	}
	// Both upstream binds up before the metrics are read (the second may still be binding).
	waitMetric(t, p, `smppguard_upstream_binds{state="BOUND_TRX",upstream="carrier"} 2`)
	code, body = adminCall(t, p, "GET", "/metrics", opsToken)
	for _, want := range []string{
		`smppguard_relay_events_total{event="binds_ok"} 1`,
		`smppguard_otp_decisions_total{action="reject"}`,
		`smppguard_lookups_total{outcome="call",provider="op"}`,
		`smppguard_upstream_binds{state="BOUND_TRX",upstream="carrier"} 2`,
		`smppguard_esme_sessions{account="bank",bind_type="BOUND_TRX"} 1`,
		`smppguard_ready 1`,
		`smppguard_pdus_total{command="submit_sm",direction="rx",side="esme",status="ESME_ROK"} 1`,
		`smppguard_pdus_total{command="submit_sm_resp",direction="tx",side="esme",status="ESME_RSUBMITFAIL"} 1`,
		`smppguard_pdus_total{command="bind_transceiver",direction="tx",side="upstream",status="ESME_ROK"} 2`,
		`smppguard_relay_latency_seconds_count{command="submit_sm"}`,
		`smppguard_lookup_duration_seconds_count{outcome="risky",provider="op",signal="sim_swap"} 1`,
		`smppguard_otp_rule_matches_total{rule="otp-en"} 1`,
		`smppguard_otp_decision_causes_total{action="reject",cause="sim_swap:risky"} 1`,
		`smppguard_esme_requests_in_flight{account="bank"} 0`,
		`smppguard_requests_in_flight 0`,
		`smppguard_requests_in_flight_limit 50000`,
	} {
		if code != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %s:\n%s", want, body)
		}
	}
	waitReady := func(want int) {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if code, _ := adminCall(t, p, "GET", "/readyz", opsToken); code == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("readyz never %d", want)
	}
	waitReady(200)
	smsc.Close()
	waitReady(503)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	back, err := fakesmsc.Start(ctx, fakesmsc.Config{Addr: smscAddr, Accounts: map[string]string{"proxy": "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	waitReady(200)
}
