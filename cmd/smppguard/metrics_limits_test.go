package main

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
)

// overflow makes a session whose peer never reads close for a full send queue, with
// onClose as its OnClose, and waits until it closed.
func overflow(t *testing.T, onClose func(*smpp.Session, error)) {
	t.Helper()
	a, b := net.Pipe() // b is never read: the writer blocks on its first frame
	defer b.Close()
	s := smpp.NewSession(a, smpp.SideSMSC, smpp.HandlerFunc(func(*smpp.Session, *smpp.PDU) {}),
		smpp.Config{Window: 1, PeerWindow: 1, EnquireLinkInterval: -1, WriteTimeout: time.Minute, OnClose: onClose, Logger: zap.NewNop()})
	frame := smpp.HeaderOnly(smpp.EnquireLinkResp, smpp.StatusOK, 1)
	var err error
	for i := 0; i < 10_000 && err == nil; i++ {
		err = s.TryWriteResponse(frame)
	}
	if !errors.Is(err, smpp.ErrQueueFull) {
		t.Fatalf("writes to a peer that does not read: %v, want ErrQueueFull", err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the overflowing session did not close")
	}
}

// Sessions closed for not reading are counted once each, per upstream and per account;
// sessions that close otherwise are not.
func TestQueueOverflowsCounted(t *testing.T) {
	h := newHotMetrics(prometheus.NewRegistry())
	overflow(t, h.upstreamClosed("smsc-a"))
	overflow(t, h.upstreamClosed("smsc-a"))
	overflow(t, h.upstreamClosed("smsc-b"))
	a, b := net.Pipe()
	s := smpp.NewSession(a, smpp.SideESME, smpp.HandlerFunc(func(*smpp.Session, *smpp.PDU) {}),
		smpp.Config{EnquireLinkInterval: -1, OnClose: h.upstreamClosed("smsc-c"), Logger: zap.NewNop()})
	b.Close()
	<-s.Done()
	if got := h.upstreamOverflows(); len(got) != 2 || got["smsc-a"] != 2 || got["smsc-b"] != 1 {
		t.Errorf("upstream overflows %v, want smsc-a 2, smsc-b 1", got)
	}

	e := newESMETotals()
	overflow(t, func(s *smpp.Session, _ error) { e.sessionClosed(s) })
	e.mu.Lock()
	n := e.overflows[""] // never bound: no account
	e.mu.Unlock()
	if n != 1 {
		t.Errorf("ESME overflows %d, want 1", n)
	}
}
