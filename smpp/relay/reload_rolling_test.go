package relay

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/smppguard/smppguard/smpp"
)

// rollCounter counts the binds held per system_id across fake SMSCs, and the most held at
// once.
type rollCounter struct {
	mu        sync.Mutex
	cur, peak map[string]int
}

func newRollCounter() *rollCounter {
	return &rollCounter{cur: map[string]int{}, peak: map[string]int{}}
}

func (c *rollCounter) add(sid string, d int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur[sid] += d
	c.peak[sid] = max(c.peak[sid], c.cur[sid])
}

func (c *rollCounter) get(sid string) (cur, peak int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur[sid], c.peak[sid]
}

// rollSMSC accepts every bind, counts it (in its own counter and the shared one) until its
// unbind is read or its connection ends, answers submit_sm ESME_ROK after delay, and
// answers unbind and enquire_link.
type rollSMSC struct {
	ln      net.Listener
	own     *rollCounter
	shared  *rollCounter
	delay   time.Duration
	submits atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
}

func startRollSMSC(t *testing.T, shared *rollCounter, delay time.Duration) *rollSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &rollSMSC{ln: ln, own: newRollCounter(), shared: shared, delay: delay, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[c] = struct{}{}
			f.mu.Unlock()
			f.wg.Add(1)
			go func() { defer f.wg.Done(); f.serve(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *rollSMSC) binds(sid string) int { n, _ := f.own.get(sid); return n }

func (f *rollSMSC) serve(c net.Conn) {
	defer c.Close()
	var wmu sync.Mutex
	var writes sync.WaitGroup
	defer writes.Wait()
	write := func(b []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		c.Write(b)
	}
	sid := ""
	unbound := func() {
		if sid != "" {
			f.own.add(sid, -1)
			f.shared.add(sid, -1)
			sid = ""
		}
	}
	defer unbound()
	fr := smpp.NewFrameReader(c, 0)
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			return
		}
		p, err := smpp.Parse(frame)
		if err != nil {
			return
		}
		switch id := p.ID(); {
		case id.IsBind():
			sid = p.CString(smpp.FieldSystemID)
			f.own.add(sid, 1)
			f.shared.add(sid, 1)
			resp, _ := smpp.BindResponse(p, smpp.StatusOK, "roll")
			write(resp)
		case id == smpp.SubmitSM:
			n := f.submits.Add(1)
			resp, _ := smpp.Response(p, smpp.StatusOK, f.ln.Addr().String()+"-"+strconv.FormatInt(n, 10))
			writes.Add(1)
			time.AfterFunc(f.delay, func() { defer writes.Done(); write(resp) })
		case id == smpp.Unbind:
			unbound() // before the unbind_resp: the proxy dials its next bind after it
			write(smpp.HeaderOnly(smpp.UnbindResp, smpp.StatusOK, p.Seq()))
			return
		case id == smpp.EnquireLink:
			write(smpp.HeaderOnly(smpp.EnquireLinkResp, smpp.StatusOK, p.Seq()))
		}
	}
}

// rollEnv is a relay with one pooled upstream of 3 binds to a rollSMSC, an ESME bound as
// "bank", and submitters sending over it until stopped.
type rollEnv struct {
	cfg      Config
	relay    *Relay
	old      *rollSMSC
	shared   *rollCounter
	stop     atomic.Bool
	ok, bad  atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	firstErr string
}

const rollBinds = 3

func newRollEnv(t *testing.T, bindTimeout time.Duration) *rollEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &rollEnv{shared: newRollCounter()}
	e.old = startRollSMSC(t, e.shared, 20*time.Millisecond)
	sess := smpp.Config{ResponseTimeout: 3 * time.Second, BindTimeout: bindTimeout, EnquireLinkInterval: -1, Window: 8}
	e.cfg = Config{
		Upstreams: []Upstream{{Name: "carrier", Addr: e.old.ln.Addr().String(), Session: sess, Bind: smpp.BindParams{SystemID: "proxy", Password: "secret"},
			Binds: rollBinds, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}},
		Routes:       map[string]string{"default": "carrier"},
		Accounts:     []Account{{SystemID: "bank", Password: "pw", Route: "default", QueueMax: 1000, QueueTTL: time.Hour}},
		LinkWait:     time.Second,
		Logger:       zaptest.NewLogger(t).Named("relay"),
		MORules:      []MORule{{DestPrefix: "", Account: "bank"}},
		DLRMatchWait: time.Second,
	}
	r, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.relay = r
	addr := serveRelay(t, ctx, r, smpp.Config{ResponseTimeout: 3 * time.Second, EnquireLinkInterval: -1}, 0)
	waitLink(t, r, "carrier", rollBinds)
	bank := mustBind(t, addr, smpp.BindTransceiver, "bank", "pw")
	for range 4 {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for i := 0; i < 100000 && !e.stop.Load(); i++ {
				p, err := smpp.Parse(submitFrame(t, smOpt{text: []byte("x")}))
				if err != nil {
					e.fail(err.Error())
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				resp, err := bank.s.Request(rctx, p)
				rcancel()
				switch {
				case err != nil:
					e.fail(err.Error())
				case resp.Status() != smpp.StatusOK:
					e.fail(resp.Status().String())
				default:
					e.ok.Add(1)
				}
			}
		}()
	}
	t.Cleanup(e.finish)
	return e
}

func (e *rollEnv) fail(msg string) {
	e.bad.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.firstErr == "" {
		e.firstErr = msg
	}
}

func (e *rollEnv) finish() {
	e.stop.Store(true)
	e.wg.Wait()
}

// check stops the submitters and fails the test if any request was not answered ESME_ROK.
func (e *rollEnv) check(t *testing.T) {
	t.Helper()
	e.finish()
	if n := e.bad.Load(); n != 0 {
		t.Fatalf("%d submits not answered ESME_ROK (first: %s), %d were", n, e.firstErr, e.ok.Load())
	}
	if e.ok.Load() == 0 {
		t.Fatal("no submit answered")
	}
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A reload that moves a pooled upstream to another address re-dials its binds one at a
// time: the SMSC's system_id never holds more than the upstream's binds across both
// addresses, every submit sent throughout is answered ESME_ROK, and in the end the old
// address holds no bind and the new one all of them.
func TestReloadRollsUpstreamBindByBind(t *testing.T) {
	e := newRollEnv(t, 2*time.Second)
	nw := startRollSMSC(t, e.shared, 5*time.Millisecond)
	waitCond(t, "traffic on the old SMSC", func() bool { return e.old.submits.Load() >= 20 })

	nc := e.cfg
	nc.Upstreams = slices.Clone(e.cfg.Upstreams)
	nc.Upstreams[0].Addr = nw.ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := e.relay.Reload(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.UpstreamsRedialed, []string{"carrier"}) || len(rep.NotReady) != 0 || len(rep.RedialFailed) != 0 || len(rep.UpstreamsAdded) != 0 {
		t.Fatalf("report %+v", rep)
	}
	mark := nw.submits.Load()
	waitCond(t, "traffic on the new SMSC", func() bool { return nw.submits.Load() >= mark+20 })
	e.check(t)
	if o, n := e.old.binds("proxy"), nw.binds("proxy"); o != 0 || n != rollBinds {
		t.Fatalf("binds: old SMSC %d, new %d; want 0 and %d", o, n, rollBinds)
	}
	if _, peak := e.shared.get("proxy"); peak > rollBinds {
		t.Fatalf("the system_id held %d binds at once across both SMSCs, want at most %d", peak, rollBinds)
	}
	waitLink(t, e.relay, "carrier", rollBinds)
}

// A re-dialled bind that cannot bind at the new address stops the re-dial: the reload
// reports it in RedialFailed, the binds not yet re-dialled stay up at the old address and
// carry every submit.
func TestReloadRollStopsOnFailedBind(t *testing.T) {
	e := newRollEnv(t, 300*time.Millisecond)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there
	waitCond(t, "traffic on the old SMSC", func() bool { return e.old.submits.Load() >= 20 })

	nc := e.cfg
	nc.Upstreams = slices.Clone(e.cfg.Upstreams)
	nc.Upstreams[0].Addr = deadAddr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := e.relay.Reload(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.RedialFailed) != 1 || rep.RedialFailed[0].Upstream != "carrier" || rep.RedialFailed[0].Slot < 0 {
		t.Fatalf("report %+v", rep)
	}
	if n := e.old.binds("proxy"); n != rollBinds-1 {
		t.Fatalf("old SMSC holds %d binds after the failed re-dial, want %d", n, rollBinds-1)
	}
	mark := e.old.submits.Load()
	waitCond(t, "traffic on the binds left up", func() bool { return e.old.submits.Load() >= mark+20 })
	e.check(t)
}
