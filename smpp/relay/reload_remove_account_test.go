package relay

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// withoutAccount returns a copy of cfg without account sysID.
func withoutAccount(cfg Config, sysID string) Config {
	cfg.Accounts = slices.DeleteFunc(slices.Clone(cfg.Accounts), func(a Account) bool { return a.SystemID == sysID })
	return cfg
}

// A reload removing an account under traffic: its session takes no new submits
// (ESME_RTHROTTLED), the requests in flight get their responses, and then the session is
// unbound. Every request gets exactly one response; other accounts are untouched.
func TestReloadRemovedAccountAnswersInFlight(t *testing.T) {
	var cfg Config
	// The SMSC holds every submit 150 ms: the reload lands with requests in flight.
	e := newEnv(t, fakesmsc.Config{ResponseDelay: 150 * time.Millisecond}, func(c *Config) {
		c.Accounts = append(c.Accounts, Account{SystemID: "gone", Password: "pw", Route: "default", QueueMax: 10, QueueTTL: time.Hour})
		cfg = *c
	})
	gone := mustBind(t, e.addr, smpp.BindTransceiver, "gone", "pw")
	bank := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")

	// Each sender submits until it is refused (an ESME backing off on ESME_RTHROTTLED).
	const senders = 8
	type result struct {
		status smpp.Status
		err    error
	}
	results := make(chan result, senders*50)
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				p, err := smpp.Parse(submitFrame(t, smOpt{dest: "447700900555", text: []byte("x")}))
				if err != nil {
					results <- result{err: err}
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := gone.s.Request(ctx, p)
				cancel()
				if err != nil {
					results <- result{err: err}
					return
				}
				results <- result{status: resp.Status()}
				if resp.Status() != smpp.StatusOK {
					return
				}
			}
		}()
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := e.smsc.WaitRecords(wctx, func(recs []fakesmsc.Record) bool {
		n := 0
		for _, r := range recs {
			if r.Command == smpp.SubmitSM.String() {
				n++
			}
		}
		return n >= senders
	}); err != nil {
		t.Fatalf("submits did not reach the SMSC: %v", err)
	}

	rep, err := e.relay.Reload(wctx, withoutAccount(cfg, "gone"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.AccountsRemoved, []string{"gone"}) || rep.SessionsUnbound != 1 {
		t.Fatalf("report %+v", rep)
	}
	select {
	case <-gone.s.Done():
	case <-wctx.Done():
		t.Fatal("the removed account's session was not unbound")
	}
	wg.Wait()
	close(results)
	var ok, throttled int
	for r := range results {
		switch {
		case r.err != nil:
			t.Errorf("a request got no response: %v", r.err)
		case r.status == smpp.StatusOK:
			ok++
		case r.status == smpp.StatusThrottled:
			throttled++
		default:
			t.Errorf("status %s", r.status)
		}
	}
	if ok < senders || throttled != senders {
		t.Fatalf("%d accepted (want >= %d: those in flight at the reload), %d throttled (want %d: one per sender)", ok, senders, throttled, senders)
	}
	// The session ended with our unbind: beyond its bind_resp and its responses, the ESME
	// read one PDU.
	if rx := gone.s.Counters().RxPDUs; rx != uint64(ok+throttled)+2 {
		t.Fatalf("the ESME read %d PDUs for 1 bind_resp and %d responses: want one unbind more", rx, ok+throttled)
	}
	if r := request(t, bank, submitFrame(t, smOpt{text: []byte("still here")})); r.Status() != smpp.StatusOK {
		t.Fatalf("the remaining account: %s", r.Status())
	}
}
