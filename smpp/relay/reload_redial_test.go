package relay

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

func countCmd(recs []fakesmsc.Record, id smpp.CommandID) int {
	n := 0
	for _, r := range recs {
		if r.Command == id.String() {
			n++
		}
	}
	return n
}

// A reload that changes an upstream's address re-dials its binds one at a time (each old
// bind is unbound after its requests in flight were answered, then dialled at the new
// address): traffic submitted throughout gets ESME_ROK every time, and goes to the new SMSC
// after. TestReloadRollsUpstreamBindByBind checks the bind count on the way.
func TestReloadUpstreamAddressRedials(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cfg Config
	// The old SMSC answers after 100 ms, so the reload finds requests in flight on it.
	e := newEnv(t, fakesmsc.Config{ResponseDelay: 100 * time.Millisecond}, func(c *Config) { cfg = *c })
	smsc2, err := fakesmsc.Start(ctx, fakesmsc.Config{Accounts: map[string]string{"proxy": "secret"}, Logger: zaptest.NewLogger(t).Named("smsc2")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smsc2.Close() })
	bank := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")

	var stop atomic.Bool
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500 && !stop.Load(); i++ {
				p, err := smpp.Parse(submitFrame(t, smOpt{text: []byte("x")}))
				if err != nil {
					failed.Add(1)
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				resp, err := bank.s.Request(rctx, p)
				rcancel()
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					t.Errorf("submit during the redial: %v", err)
					return
				}
				if resp.Status() != smpp.StatusOK {
					failed.Add(1)
					t.Errorf("submit during the redial: %s", resp.Status())
					return
				}
			}
		}()
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := e.smsc.WaitRecords(wctx, func(r []fakesmsc.Record) bool { return countCmd(r, smpp.SubmitSM) >= 4 }); err != nil {
		t.Fatal(err)
	}
	nc := cfg
	nc.Upstreams = slices.Clone(cfg.Upstreams)
	nc.Upstreams[0].Addr = smsc2.Addr()
	rep, err := e.relay.Reload(wctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.UpstreamsRedialed, []string{"carrier"}) || len(rep.NotReady) != 0 || rep.SessionsUnbound != 0 {
		t.Fatalf("report %+v", rep)
	}
	// The new SMSC takes the traffic...
	if err := smsc2.WaitRecords(wctx, func(r []fakesmsc.Record) bool { return countCmd(r, smpp.SubmitSM) >= 4 }); err != nil {
		t.Fatalf("no traffic reached the new address: %v", err)
	}
	// ...and the old binds are unbound (both of them), cleanly.
	if err := e.smsc.WaitRecords(wctx, func(r []fakesmsc.Record) bool { return countCmd(r, smpp.Unbind) == e.binds }); err != nil {
		t.Fatalf("old binds not unbound: %v", err)
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d submits failed across the redial", failed.Load(), sent.Load())
	}
	before := countCmd(e.smsc.Records(), smpp.SubmitSM)
	if r := request(t, bank, submitFrame(t, smOpt{text: []byte("after")})); r.Status() != smpp.StatusOK {
		t.Fatalf("after the redial: %s", r.Status())
	}
	if after := countCmd(e.smsc.Records(), smpp.SubmitSM); after != before {
		t.Fatal("a submit after the redial reached the old address")
	}
	waitLink(t, e.relay, "carrier", e.binds)
}
