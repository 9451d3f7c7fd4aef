package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/smppguard/smppguard/config"
	"github.com/smppguard/smppguard/smpp"
)

func TestComponentLevels(t *testing.T) {
	var buf bytes.Buffer
	log, err := newConfiguredLogger(config.Log{Level: "warn", Format: "json", Levels: config.LogLevels{Relay: "debug", OTP: "error"}}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Named("relay").Debug("relay-debug")
	log.Named("relay").Named("session").Debug("relay-session-debug")
	log.Named("otp").Warn("otp-warn")
	log.Named("admin").Info("admin-info")
	log.Named("admin").Warn("admin-warn")
	out := buf.String()
	for _, want := range []string{"relay-debug", "relay-session-debug", "admin-warn"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s:\n%s", want, out)
		}
	}
	for _, not := range []string{"otp-warn", "admin-info"} {
		if strings.Contains(out, not) {
			t.Errorf("%s logged despite its level:\n%s", not, out)
		}
	}
}

func TestPDUTracerRedactsBinds(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger("debug", "json", &buf)
	if err != nil {
		t.Fatal(err)
	}
	trace := pduTracer(log, 1)
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	s := smpp.NewSession(c1, smpp.SideSMSC, nil, smpp.Config{})
	defer s.Close()
	bind, _ := smpp.BindParams{SystemID: "bank", Password: "s3cret"}.Encode(smpp.BindTransmitter, 1)
	trace(s, true, bind)
	trace(s, false, smpp.HeaderOnly(smpp.EnquireLink, 0, 2))
	out := buf.String()
	if strings.Contains(out, "733363726574") || !strings.Contains(out, "bind: not dumped") { // hex of "s3cret"
		t.Fatalf("bind dumped:\n%s", out)
	}
	if !strings.Contains(out, `"hex":"00000010000000150000000000000002"`) {
		t.Fatalf("enquire_link not dumped:\n%s", out)
	}
	quiet, _ := newLogger("info", "json", &buf)
	if pduTracer(quiet, 1) != nil {
		t.Fatal("tracer installed with debug off")
	}
}
