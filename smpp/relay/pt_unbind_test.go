package relay

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/smppguard/smppguard/smpp"
)

// ptEnv is a relay with one pass-through account "pt" in front of a holdSMSC (no pooled
// link).
func ptEnv(t *testing.T) (*holdSMSC, string) {
	t.Helper()
	smsc := startHoldSMSC(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sess := smpp.Config{ResponseTimeout: 5 * time.Second, EnquireLinkInterval: -1}
	r, err := New(Config{
		Upstreams: []Upstream{{Name: "carrier", Addr: smsc.ln.Addr().String(), Session: sess}},
		Accounts:  []Account{{SystemID: "pt", Mode: PassThrough, Upstream: "carrier"}},
		Logger:    zaptest.NewLogger(t).Named("relay"),
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveRelay(t, ctx, r, sess, 0)
	return smsc, addr
}

// Pass-through: the SMSC unbinds the ESME's upstream session with requests in flight. Each
// of them gets exactly one response (ESME_RSYSERR) and then the ESME is sent an unbind, as
// its carrier would have done, instead of a bare TCP close; the SMSC gets its unbind_resp.
func TestPassThroughSMSCUnbind(t *testing.T) {
	smsc, addr := ptEnv(t)
	c := mustBind(t, addr, smpp.BindTransceiver, "pt", "pw")
	const n = 5
	results := requestsInFlight(t, c, n, "hold")
	smsc.waitHeld(n)
	smsc.mu.Lock()
	up := smsc.conn
	smsc.mu.Unlock()
	smsc.write(up, smpp.HeaderOnly(smpp.Unbind, smpp.StatusOK, 999))
	select {
	case p := <-smsc.unbds:
		if p.Seq() != 999 || p.Status() != smpp.StatusOK {
			t.Fatalf("SMSC's unbind answered %s seq %d", p.Status(), p.Seq())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the SMSC's unbind was not answered")
	}
	select {
	case <-c.s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("ESME session not closed after the SMSC unbound its upstream")
	}
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("in-flight request without a response: %v", r.err)
		}
		if r.resp.Status() != smpp.StatusSysErr {
			t.Fatalf("in-flight request answered %s, want ESME_RSYSERR", r.resp.Status())
		}
	}
	if !c.s.PeerUnbound() {
		t.Fatalf("the ESME was not sent an unbind (session ended with %v)", c.s.Err())
	}
	if u := c.s.Counters().UnmatchedResponses; u != 0 {
		t.Fatalf("%d responses matched no request (duplicates)", u)
	}
}
