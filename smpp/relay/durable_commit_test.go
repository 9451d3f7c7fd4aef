package relay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// holdCorr is a CorrCommitter whose commits the test releases: Commit announces the key on
// commits and waits, without blocking its caller, for release.
type holdCorr struct {
	mu      sync.Mutex
	m       map[string]origin
	held    []heldCommit
	commits chan string
}

type heldCommit struct {
	key  string
	o    origin
	done func(error)
}

func newHoldCorr() *holdCorr {
	return &holdCorr{m: map[string]origin{}, commits: make(chan string, 64)}
}

func (h *holdCorr) Put(key, account, upstream string, _ time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m[key] = origin{account: account, upstream: upstream}
}

func (h *holdCorr) Get(key string) (string, string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	o, ok := h.m[key]
	return o.account, o.upstream, ok
}

func (h *holdCorr) Commit(key, account, upstream string, _ time.Time, done func(error)) {
	h.mu.Lock()
	h.held = append(h.held, heldCommit{key: key, o: origin{account: account, upstream: upstream}, done: done})
	h.mu.Unlock()
	h.commits <- key
}

// release completes the held commits with err (nil: stored).
func (h *holdCorr) release(err error) {
	h.mu.Lock()
	held := h.held
	h.held = nil
	if err == nil {
		for _, c := range held {
			h.m[c.key] = c.o
		}
	}
	h.mu.Unlock()
	for _, c := range held {
		c.done(err)
	}
}

// respTo collects the responses of requests sent with Session.Send, noting how many
// deliver_sm the ESME had received when each arrived (both are read in wire order).
type respTo struct {
	c  *esmeClient
	ch chan respSeen
}

type respSeen struct {
	p         *smpp.PDU
	err       error
	delivered int
}

func (r respTo) HandleResponse(_ smpp.Ref, p *smpp.PDU, err error) {
	r.c.mu.Lock()
	n := len(r.c.delivered)
	r.c.mu.Unlock()
	r.ch <- respSeen{p, err, n}
}

func sendAsync(t *testing.T, c *esmeClient, frame []byte) chan respSeen {
	t.Helper()
	p, err := smpp.Parse(frame)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan respSeen, 2)
	if err := c.s.Send(context.Background(), p, respTo{c, ch}, smpp.Ref{}); err != nil {
		t.Fatal(err)
	}
	return ch
}

// barrier makes an enquire_link round trip through the proxy's ESME session: whatever the
// proxy had queued to the ESME before answering it has been read once it returns.
func barrier(t *testing.T, c *esmeClient) {
	t.Helper()
	if r := request(t, c, smpp.HeaderOnly(smpp.EnquireLink, smpp.StatusOK, 0)); r.ID() != smpp.EnquireLinkResp {
		t.Fatalf("barrier: %s", r.ID())
	}
}

func waitCommit(t *testing.T, h *holdCorr) string {
	t.Helper()
	select {
	case k := <-h.commits:
		return k
	case <-time.After(5 * time.Second):
		t.Fatal("no correlation commit")
		return ""
	}
}

func waitStat(t *testing.T, r *Relay, what string, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(r.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats %+v", what, r.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// With a CorrCommitter the submit_sm_resp reaches the ESME only after its correlation is
// committed. The receipt, which the SMSC sends right behind the response, is held until
// then and reaches the ESME after its submit_sm_resp.
func TestDurableResponseWaitsForCommit(t *testing.T) {
	hc := newHoldCorr()
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) { c.Correlations = hc })
	bank := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")

	resp := sendAsync(t, bank, submitFrame(t, smOpt{regDel: 1, text: []byte("code 1")}))
	key := waitCommit(t, hc) // the SMSC answered; the correlation waits for its commit
	waitStat(t, e.relay, "receipt held", func(s Stats) bool { return s.ReceiptsHeld == 1 })
	// The upstream reader is not held with it: a submit that wants no receipt (not
	// correlated) is answered meanwhile.
	if r := request(t, bank, submitFrame(t, smOpt{text: []byte("no receipt")})); r.Status() != smpp.StatusOK {
		t.Fatalf("no-receipt submit: %s", r.Status())
	}
	barrier(t, bank)
	select {
	case r := <-resp:
		t.Fatalf("submit_sm_resp (%v) relayed before its correlation was committed", r.p.Status())
	default:
	}
	if n := len(bank.waitDelivered(t, 0)); n != 0 {
		t.Fatalf("%d deliveries before the commit", n)
	}

	hc.release(nil)
	r := <-resp
	if r.err != nil || r.p.Status() != smpp.StatusOK {
		t.Fatalf("response %v %v", r.p, r.err)
	}
	if id := r.p.CString(smpp.FieldMessageID); key != "carrier\x00"+canonical(id) {
		t.Fatalf("committed %q for message_id %q", key, id)
	}
	if r.delivered != 0 {
		t.Fatal("the receipt reached the ESME before its submit_sm_resp")
	}
	got := bank.waitDelivered(t, 1)
	v, _ := got[0].TLV(smpp.TagReceiptedMessageID)
	if rid := receiptID(v, nil); rid != r.p.CString(smpp.FieldMessageID) {
		t.Fatalf("receipt for %q, want %q", rid, r.p.CString(smpp.FieldMessageID))
	}
	if s := e.relay.Stats(); s.ReceiptsMatched != 1 || s.ReceiptsUnknown != 0 {
		t.Fatalf("stats %+v", s)
	}

	select {
	case k := <-hc.commits:
		t.Fatalf("commit %q for a submit without registered_delivery", k)
	default:
	}
}

// A correlation that cannot be made durable is not answered ESME_ROK: the ESME gets exactly
// one ESME_RSYSERR, and the receipt that comes for the message is acknowledged as unknown.
func TestDurableCommitFailureAnswersSysErr(t *testing.T) {
	hc := newHoldCorr()
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Correlations = hc
		c.DLRMatchWait = 200 * time.Millisecond
	})
	bank := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	resp := sendAsync(t, bank, submitFrame(t, smOpt{regDel: 1, text: []byte("code 2")}))
	waitCommit(t, hc)
	hc.release(errors.New("disk gone"))
	r := <-resp
	if r.err != nil || r.p.ID() != smpp.SubmitSMResp || r.p.Status() != smpp.StatusSysErr {
		t.Fatalf("response %v %v, want submit_sm_resp ESME_RSYSERR", r.p, r.err)
	}
	if n := e.relay.corr.unstored.Load(); n != 1 {
		t.Fatalf("unstored %d, want 1", n)
	}
	waitStat(t, e.relay, "receipt unknown", func(s Stats) bool { return s.ReceiptsUnknown == 1 })
	barrier(t, bank)
	if c := bank.s.Counters(); c.UnmatchedResponses != 0 {
		t.Fatalf("%d extra responses", c.UnmatchedResponses)
	}
	if n := len(bank.waitDelivered(t, 0)); n != 0 {
		t.Fatalf("%d receipts delivered for a message answered ESME_RSYSERR", n)
	}
}

// An ESME that goes away while its responses wait for their commit: the commit's done
// finds the session closed; nothing panics and later sessions are served.
func TestDurableCommitAfterESMEGone(t *testing.T) {
	hc := newHoldCorr()
	e := newEnv(t, fakesmsc.Config{DLRDelay: time.Hour}, func(c *Config) { c.Correlations = hc })
	bank := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	sendAsync(t, bank, submitFrame(t, smOpt{regDel: 1, text: []byte("code 3")}))
	waitCommit(t, hc)
	bank.s.Close()
	hc.release(nil)
	again := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	resp := sendAsync(t, again, submitFrame(t, smOpt{regDel: 1, text: []byte("code 4")}))
	if k := waitCommit(t, hc); !strings.HasPrefix(k, "carrier\x00") {
		t.Fatalf("key %q", k)
	}
	hc.release(nil)
	if r := <-resp; r.err != nil || r.p.Status() != smpp.StatusOK {
		t.Fatalf("response %v %v", r.p, r.err)
	}
}
