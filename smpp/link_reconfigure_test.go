package smpp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// bindCounter counts the binds held per system_id across fake SMSCs, and the most ever held
// at once.
type bindCounter struct {
	mu   sync.Mutex
	cur  map[string]int // by system_id
	peak map[string]int
}

func newBindCounter() *bindCounter {
	return &bindCounter{cur: map[string]int{}, peak: map[string]int{}}
}

func (c *bindCounter) add(sid string, d int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur[sid] += d
	c.peak[sid] = max(c.peak[sid], c.cur[sid])
}

func (c *bindCounter) get(sid string) (cur, peak int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur[sid], c.peak[sid]
}

// countingSMSC accepts binds of any system_id, counts them in its own counter and in the
// shared one, answers submit_sm ESME_ROK after delay, and answers unbind and enquire_link.
// A bind ends (is uncounted) when its unbind is read or its connection ends.
type countingSMSC struct {
	ln      net.Listener
	own     *bindCounter
	shared  *bindCounter
	delay   time.Duration
	submits atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
}

func startCountingSMSC(t *testing.T, shared *bindCounter, delay time.Duration) *countingSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &countingSMSC{ln: ln, own: newBindCounter(), shared: shared, delay: delay, conns: map[net.Conn]struct{}{}}
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

func (f *countingSMSC) addr() string { return f.ln.Addr().String() }

func (f *countingSMSC) binds(sid string) int { n, _ := f.own.get(sid); return n }

func (f *countingSMSC) serve(c net.Conn) {
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
	unbind := func() {
		if sid != "" {
			f.own.add(sid, -1)
			f.shared.add(sid, -1)
			sid = ""
		}
	}
	defer unbind()
	fr := NewFrameReader(c, 0)
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			return
		}
		p, err := Parse(frame)
		if err != nil {
			return
		}
		switch id := p.ID(); {
		case id.IsBind():
			sid = p.CString(FieldSystemID)
			f.own.add(sid, 1)
			f.shared.add(sid, 1)
			resp, _ := BindResponse(p, StatusOK, "counting")
			write(resp)
		case id == SubmitSM:
			f.submits.Add(1)
			resp, _ := Response(p, StatusOK, "id")
			writes.Add(1)
			time.AfterFunc(f.delay, func() { defer writes.Done(); write(resp) })
		case id == Unbind:
			unbind() // before the unbind_resp: the client dials its next bind after it
			write(HeaderOnly(UnbindResp, StatusOK, p.Seq()))
			return
		case id == EnquireLink:
			write(HeaderOnly(EnquireLinkResp, StatusOK, p.Seq()))
		}
	}
}

func testSubmit(t *testing.T) *PDU {
	t.Helper()
	p, err := NewBuilder(SubmitSM, 0, 1).CString("").Int(1).Int(1).CString("A").Int(1).Int(1).CString("B").
		Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).ShortMessage([]byte("x")).PDU()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sender submits over l from several goroutines until stopped, and counts the answers.
type sender struct {
	stop            atomic.Bool
	ok, failed, all atomic.Int64
	wg              sync.WaitGroup
	mu              sync.Mutex
	firstErr        error
}

func startSender(ctx context.Context, t *testing.T, l *Link, workers int) *sender {
	sd := &sender{}
	for range workers {
		sd.wg.Add(1)
		go func() {
			defer sd.wg.Done()
			for i := 0; i < 100000 && !sd.stop.Load(); i++ {
				p := testSubmit(t)
				ch := make(chanHandler, 1)
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := l.Send(rctx, p, ch, Ref{})
				if err == nil {
					select {
					case r := <-ch:
						if err = r.err; err == nil && r.p.Status() != StatusOK {
							err = r.p.Status()
						}
					case <-rctx.Done():
						err = rctx.Err()
					}
				}
				cancel()
				sd.all.Add(1)
				if err != nil {
					sd.failed.Add(1)
					sd.mu.Lock()
					if sd.firstErr == nil {
						sd.firstErr = err
					}
					sd.mu.Unlock()
					continue
				}
				sd.ok.Add(1)
			}
		}()
	}
	return sd
}

func (sd *sender) finish(t *testing.T) {
	t.Helper()
	sd.stop.Store(true)
	sd.wg.Wait()
	if n := sd.failed.Load(); n != 0 {
		t.Fatalf("%d of %d submits not answered ESME_ROK (first: %v)", n, sd.all.Load(), sd.firstErr)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func boundSlots(l *Link) int {
	n := 0
	for _, h := range l.Health() {
		if h.State == StateBoundTRX.String() {
			n++
		}
	}
	return n
}

// Reconfiguring a link's address re-dials it one bind at a time: a sender keeps getting
// ESME_ROK for every request, the old SMSC ends with no bind and the new one with all of
// them, and the system_id never holds more binds than the link's count across both.
func TestLinkReconfigureRollsOneBindAtATime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 3
	shared := newBindCounter()
	old := startCountingSMSC(t, shared, 20*time.Millisecond)
	nw := startCountingSMSC(t, shared, 5*time.Millisecond)
	cfg, l := startBoundLink(ctx, t, old, n, 2*time.Second)

	sd := startSender(ctx, t, l, 6)
	waitFor(t, "traffic on the old SMSC", 5*time.Second, func() bool { return old.submits.Load() >= 20 })

	nc := cfg
	nc.Addr = nw.addr()
	if err := l.Reconfigure(ctx, nc); err != nil {
		t.Fatalf("reconfigure: %v", err)
	}
	before := nw.submits.Load()
	waitFor(t, "traffic on the new SMSC", 5*time.Second, func() bool { return nw.submits.Load() >= before+20 })
	sd.finish(t)

	if got := old.binds("proxy"); got != 0 {
		t.Errorf("old SMSC still holds %d binds", got)
	}
	if got := nw.binds("proxy"); got != n {
		t.Errorf("new SMSC holds %d binds, want %d", got, n)
	}
	if _, peak := shared.get("proxy"); peak > n {
		t.Errorf("the system_id held %d binds at once across both SMSCs, want at most %d", peak, n)
	}
	if sd.ok.Load() == 0 {
		t.Fatal("no submit answered")
	}
	t.Logf("%d submits answered ESME_ROK across the roll", sd.ok.Load())
}

// A re-dialled bind that cannot bind with the new settings stops the roll: Reconfigure
// reports a *RollError, the binds not yet re-dialled stay up and carry the traffic, and a
// later Reconfigure (the address fixed) rolls every bind, the failed one included.
func TestLinkReconfigureStopsOnFailedBind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 3
	shared := newBindCounter()
	old := startCountingSMSC(t, shared, 5*time.Millisecond)
	nw := startCountingSMSC(t, shared, 5*time.Millisecond)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there: the dial is refused

	cfg, l := startBoundLink(ctx, t, old, n, 300*time.Millisecond)
	sd := startSender(ctx, t, l, 4)

	bad := cfg
	bad.Addr = deadAddr
	err = l.Reconfigure(ctx, bad)
	var re *RollError
	if !errors.As(err, &re) {
		t.Fatalf("reconfigure to a dead address: %v, want a *RollError", err)
	}
	if got := old.binds("proxy"); got != n-1 {
		t.Fatalf("old SMSC holds %d binds after the failed roll, want %d", got, n-1)
	}
	mark := old.submits.Load()
	waitFor(t, "traffic on the binds left up", 5*time.Second, func() bool { return old.submits.Load() >= mark+20 })

	good := cfg
	good.Addr = nw.addr()
	if err := l.Reconfigure(ctx, good); err != nil {
		t.Fatalf("reconfigure to the new SMSC: %v", err)
	}
	mark = nw.submits.Load()
	waitFor(t, "traffic on the new SMSC", 5*time.Second, func() bool { return nw.submits.Load() >= mark+20 })
	sd.finish(t)
	if o, w := old.binds("proxy"), nw.binds("proxy"); o != 0 || w != n {
		t.Fatalf("binds old %d new %d, want 0 and %d", o, w, n)
	}
	if _, peak := shared.get("proxy"); peak > n {
		t.Fatalf("the system_id held %d binds at once, want at most %d", peak, n)
	}
}

// A changed bind count adds or removes slots without re-dialling the others.
func TestLinkReconfigureBindCount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shared := newBindCounter()
	smsc := startCountingSMSC(t, shared, 5*time.Millisecond)
	cfg, l := startBoundLink(ctx, t, smsc, 3, 2*time.Second)
	kept := l.Sessions()[0]
	sd := startSender(ctx, t, l, 4)

	cfg.Binds = 1
	if err := l.Reconfigure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if got := smsc.binds("proxy"); got != 1 {
		t.Fatalf("%d binds after shrinking to 1", got)
	}
	cfg.Binds = 4
	if err := l.Reconfigure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 binds", 5*time.Second, func() bool { return smsc.binds("proxy") == 4 && boundSlots(l) == 4 })
	sd.finish(t)
	if l.Sessions()[0] != kept {
		t.Fatal("the first bind was re-dialled by a bind count change")
	}
	if _, peak := shared.get("proxy"); peak > 4 {
		t.Fatalf("peak %d binds", peak)
	}
}

// startBoundLink starts a link of n binds to smsc (bind timeout bindTimeout; closed when the
// test ends) and waits until all n are bound there.
func startBoundLink(ctx context.Context, t *testing.T, smsc *countingSMSC, n int, bindTimeout time.Duration) (LinkConfig, *Link) {
	t.Helper()
	cfg := LinkConfig{
		Name: "carrier", Addr: smsc.addr(), Bind: BindParams{SystemID: "proxy", Password: "pw"}, Binds: n,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond,
		Session: Config{Window: 8, ResponseTimeout: 2 * time.Second, BindTimeout: bindTimeout},
		Logger:  zaptest.NewLogger(t),
	}
	l := NewLink(cfg)
	l.Start(ctx)
	t.Cleanup(func() { l.Close(context.Background()) })
	waitFor(t, fmt.Sprintf("%d binds", n), 5*time.Second, func() bool { return smsc.binds("proxy") == n && boundSlots(l) == n })
	return cfg, l
}
