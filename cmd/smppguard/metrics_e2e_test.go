package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/smppguard/smppguard/testharness/fakesmsc"
	"github.com/smppguard/smppguard/testharness/loadgen"
)

// esmePDUs reads smppguard_esme_pdus_total for an account and direction (-1: absent).
func esmePDUs(t *testing.T, p *proc, account, dir string) int {
	t.Helper()
	_, body := adminCall(t, p, "GET", "/metrics", "")
	m := regexp.MustCompile(`smppguard_esme_pdus_total\{account="` + account + `",direction="` + dir + `"\} (\d+)`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// waitNoSessions polls /api/v1/sessions (not /metrics) until no ESME session is bound.
func waitNoSessions(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var s struct {
			Count int `json:"count"`
		}
		if code, body := adminCall(t, p, "GET", "/api/v1/sessions", ""); code == 200 && json.Unmarshal(body, &s) == nil && s.Count == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("ESME sessions still bound after 10 s")
}

// smppguard_esme_pdus_total counts sessions that bind, send and unbind between two scrapes:
// the Grafana panel's rate would otherwise miss short-lived ESMEs entirely.
func TestE2EESMEPDUsCountClosedSessions(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{NoRecord: true})
	p := startBinary(t, "serve", "-c", writeConfig(t, smsc.Addr()))
	if p.admin == "" {
		t.Fatal("no admin address in the banner")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(n int) {
		res, err := loadgen.Run(ctx, loadgen.Config{Addr: p.addr, SystemID: "bank", Password: "bankpw", Count: n, Window: 5})
		if err != nil || res.OK != int64(n) {
			t.Fatalf("load of %d: %+v %v", n, res, err)
		}
	}
	// Two sessions come and go before the first scrape: bind, N submits, unbind each way.
	run(7)
	run(5)
	waitNoSessions(t, p)
	for _, dir := range []string{"rx", "tx"} {
		if got, want := esmePDUs(t, p, "bank", dir), (7+2)+(5+2); got != want {
			t.Fatalf("esme_pdus_total{bank,%s} = %d, want %d", dir, got, want)
		}
	}
	// One more between scrapes: the counter goes on from there.
	run(3)
	waitNoSessions(t, p)
	if got, want := esmePDUs(t, p, "bank", "rx"), 16+3+2; got != want {
		t.Fatalf("esme_pdus_total{bank,rx} after a third session = %d, want %d", got, want)
	}
}
