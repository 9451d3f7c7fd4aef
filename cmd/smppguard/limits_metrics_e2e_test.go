package main

import (
	"context"
	"errors"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// metricValue reads one sample of /metrics: name{labels} (labels as printed, "" for none);
// -1 when absent.
func metricValue(t *testing.T, p *proc, name, labels string) float64 {
	t.Helper()
	_, body := adminCall(t, p, "GET", "/metrics", "")
	sel := regexp.QuoteMeta(name)
	if labels != "" {
		sel += regexp.QuoteMeta("{" + labels + "}")
	}
	m := regexp.MustCompile(`(?m)^` + sel + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitSample polls until the sample has the value.
func waitSample(t *testing.T, p *proc, name, labels string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metricValue(t, p, name, labels)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s} = %v, want %v", name, labels, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Through the binary: bind refusals by reason, the accounts' limits and the connections
// against listen.max_connections, refusals at that limit counted.
func TestE2ELimitsAndRefusalsInMetrics(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{NoRecord: true})
	path := writeConfig(t, smsc.Addr())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "  smpp: 127.0.0.1:0\n", "  smpp: 127.0.0.1:0\n  max_connections: 2\n", 1)
	cfg = strings.Replace(cfg, "    password: bankpw\n", "    password: bankpw\n    tps: 50\n    max_binds: 1\n", 1)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, "serve", "-c", path)

	refused := func(sys, pw string, want smpp.Status) {
		t.Helper()
		f, _ := smpp.BindParams{SystemID: sys, Password: pw}.Encode(smpp.BindTransceiver, 0)
		pdu, _ := smpp.Parse(f)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, _, err := smpp.Dial(ctx, p.addr, pdu, nil, smpp.Config{ResponseTimeout: 5 * time.Second, EnquireLinkInterval: -1})
		var be *smpp.BindError
		if err == nil {
			s.Close()
		}
		if !errors.As(err, &be) || be.Status != want {
			t.Fatalf("bind %s/%s: %v, want %s", sys, pw, err, want)
		}
	}
	refused("bank", "wrong", smpp.StatusInvPaswd)
	refused("nobody", "bankpw", smpp.StatusInvPaswd)
	bindTRX(t, p.addr, "bank", "bankpw")
	refused("bank", "bankpw", smpp.StatusBindFail)

	waitSample(t, p, "smppguard_bind_refusals_total", `reason="bad_credentials"`, 1)
	waitSample(t, p, "smppguard_bind_refusals_total", `reason="unknown_system_id"`, 1)
	waitSample(t, p, "smppguard_bind_refusals_total", `reason="max_binds"`, 1)
	waitSample(t, p, "smppguard_bind_refusals_total", `reason="lockout"`, 0)
	waitSample(t, p, "smppguard_account_tps_limit", `account="bank"`, 50)
	waitSample(t, p, "smppguard_account_max_binds", `account="bank"`, 1)
	waitSample(t, p, "smppguard_account_max_binds", `account="pt"`, 8) // the default
	if v := metricValue(t, p, "smppguard_account_tps_limit", `account="pt"`); v != -1 {
		t.Errorf("pt has no tps, yet smppguard_account_tps_limit{pt} = %v", v)
	}
	waitSample(t, p, "smppguard_esme_connections_limit", "", 2)
	waitSample(t, p, "smppguard_queue_overflows_total", "", -1) // nothing overflowed: no series

	// The bound bank session is one connection; a second, not bound, fills the limit, and
	// a third is closed at once and counted.
	waitSample(t, p, "smppguard_esme_connections", "", 1)
	c2, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	waitSample(t, p, "smppguard_esme_connections", "", 2)
	c3, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c3.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection over listen.max_connections was not closed")
	}
	waitSample(t, p, "smppguard_esme_connections_refused_total", "", 1)
}
