package relay

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/smppguard/smppguard/smpp"
)

// holdSMSC is a minimal SMSC written on the codec: it accepts any bind, answers submit_sm at
// once — except those whose text is "hold", which it keeps until release — and lets the test
// send deliver_sm and read their responses.
type holdSMSC struct {
	t  *testing.T
	ln net.Listener

	mu    sync.Mutex
	conn  net.Conn // the bound connection (the pooled link has one bind)
	wmu   sync.Mutex
	held  [][]byte
	bound chan struct{}
	heldC chan struct{}  // one token per held submit
	resps chan *smpp.PDU // deliver_sm_resp received
	unbds chan *smpp.PDU // unbind_resp received
	wg    sync.WaitGroup
	quit  chan struct{}
	conns map[net.Conn]struct{}
}

func startHoldSMSC(t *testing.T) *holdSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &holdSMSC{t: t, ln: ln, bound: make(chan struct{}, 16), heldC: make(chan struct{}, 1024),
		resps: make(chan *smpp.PDU, 16), unbds: make(chan *smpp.PDU, 4), quit: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns[c] = struct{}{}
			h.mu.Unlock()
			h.wg.Add(1)
			go func() { defer h.wg.Done(); h.serve(c) }()
		}
	}()
	t.Cleanup(func() {
		close(h.quit)
		ln.Close()
		h.mu.Lock()
		for c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

func (h *holdSMSC) write(c net.Conn, b []byte) {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write(b)
}

func (h *holdSMSC) serve(c net.Conn) {
	fr := smpp.NewFrameReader(c, 0)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		p, err := smpp.Parse(f)
		if err != nil {
			continue
		}
		switch id := p.ID(); {
		case id.IsBind():
			b, _ := smpp.BindResponse(p, smpp.StatusOK, "smsc")
			h.mu.Lock()
			h.conn = c
			h.mu.Unlock()
			h.write(c, b)
			h.bound <- struct{}{}
		case id == smpp.SubmitSM && string(p.ShortMessage()) == "hold":
			h.mu.Lock()
			h.held = append(h.held, f)
			h.mu.Unlock()
			h.heldC <- struct{}{}
		case id == smpp.DeliverSMResp:
			h.resps <- p
		case id == smpp.UnbindResp:
			h.unbds <- p
		case id.IsResponse():
		case id == smpp.Unbind:
			h.write(c, smpp.HeaderOnly(smpp.UnbindResp, smpp.StatusOK, p.Seq()))
			return
		default:
			b, _ := smpp.Response(p, smpp.StatusOK, "id")
			h.write(c, b)
		}
	}
}

// release answers every held submit.
func (h *holdSMSC) release() {
	h.mu.Lock()
	held, c := h.held, h.conn
	h.held = nil
	h.mu.Unlock()
	var out []byte
	for _, f := range held {
		p, _ := smpp.Parse(f)
		b, _ := smpp.Response(p, smpp.StatusOK, "held")
		out = append(out, b...)
	}
	h.write(c, out)
}

// waitHeld waits until n submits are held.
func (h *holdSMSC) waitHeld(n int) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for range n {
		select {
		case <-h.heldC:
		case <-deadline:
			h.t.Fatal("the SMSC did not receive the held submits")
		}
	}
}

// stallEnv is a relay with one pooled upstream bind shared by accounts "a" and "b", in front
// of a holdSMSC. ESME sessions have small windows and a long write timeout, so that a
// non-reading ESME fills its send queue quickly and is not cut off by the timeout during
// the test.
func stallEnv(t *testing.T) (*holdSMSC, *Relay, string, smpp.Config) {
	t.Helper()
	smsc := startHoldSMSC(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	esmeSess := smpp.Config{Window: 4, PeerWindow: 8, ResponseTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, EnquireLinkInterval: -1}
	upSess := smpp.Config{ResponseTimeout: 30 * time.Second, EnquireLinkInterval: -1}
	r, err := New(Config{
		Upstreams: []Upstream{{Name: "carrier", Addr: smsc.ln.Addr().String(), Session: upSess,
			Bind: smpp.BindParams{SystemID: "proxy", Password: "secret"}, Binds: 1,
			ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}},
		Routes: map[string]string{"default": "carrier"},
		Accounts: []Account{
			{SystemID: "a", Password: "pw", Route: "default", QueueMax: 100, QueueTTL: time.Hour},
			{SystemID: "b", Password: "pw", Route: "default", QueueMax: 100, QueueTTL: time.Hour},
		},
		MORules:  []MORule{{DestPrefix: "1000", Account: "a"}, {Account: "b"}},
		LinkWait: time.Second,
		Logger:   zaptest.NewLogger(t).Named("relay"),
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveRelay(t, ctx, r, esmeSess, 0)
	select {
	case <-smsc.bound:
	case <-time.After(5 * time.Second):
		t.Fatal("pooled link did not bind")
	}
	return smsc, r, addr, esmeSess
}

// stallESME binds a raw ESME as account "a" (transceiver) with a tiny receive buffer, and
// returns its connection and the proxy's session for it.
func stallESME(t *testing.T, r *Relay, addr string) (net.Conn, *smpp.Session) {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	bind, _ := smpp.BindParams{SystemID: "a", Password: "pw"}.Encode(smpp.BindTransceiver, 1)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(bind); err != nil {
		t.Fatal(err)
	}
	f, err := smpp.NewFrameReader(c, 0).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := smpp.Parse(f); p == nil || p.ID() != smpp.BindTransceiverResp || p.Status() != smpp.StatusOK {
		t.Fatalf("bind as a: %x", f)
	}
	c.SetDeadline(time.Time{})
	ss := r.Sessions("a")
	if len(ss) != 1 {
		t.Fatalf("%d sessions of account a", len(ss))
	}
	return c, ss[0]
}

// floodUntilFull writes enquire_links to c without ever reading, until the proxy's session
// s is stalled for good: its writer blocked on the full socket and its send queue full (its
// reader then blocks on its own enquire_link_resp and stops reading). The flood goes on in
// the background until c is closed.
//
// A full queue alone is not enough: until the socket buffers are full the writer still
// drains it and the reader refills it. There is no event for "the kernel buffers are
// full", so the stall is taken as reached when the queue is full and the writer has not
// written a frame for stable consecutive checks (a running writer writes thousands of
// frames in that time).
func floodUntilFull(t *testing.T, c net.Conn, s *smpp.Session) {
	t.Helper()
	enq := smpp.HeaderOnly(smpp.EnquireLink, smpp.StatusOK, 7)
	batch := bytes.Repeat(enq, 256)
	go func() {
		for range 1 << 20 { // bounded: 4 GiB at most; a write error (c closed) ends it first
			if _, err := c.Write(batch); err != nil {
				return
			}
		}
	}()
	const stable = 20 // checks 25 ms apart: half a second without a frame written
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var lastTx uint64
	same := 0
	for same < stable {
		if time.Now().After(deadline) {
			n, capacity := s.Queued()
			t.Fatalf("the non-reading ESME's session never stalled: queue %d/%d, counters %+v", n, capacity, s.Counters())
		}
		select {
		case <-s.Done():
			t.Fatalf("the non-reading ESME's session closed before it stalled: %v", s.Err())
		case <-tick.C:
		}
		n, capacity := s.Queued()
		tx := s.Counters().TxPDUs
		if n == capacity && tx == lastTx {
			same++
		} else {
			same = 0
		}
		lastTx = tx
	}
}

// roundTrips runs n submits on c and fails unless each one is answered ESME_ROK within a
// few seconds (without the fix they wait for the stalled ESME's write timeout, 30 s).
func roundTrips(t *testing.T, c *esmeClient, n int) {
	t.Helper()
	for i := range n {
		p, _ := smpp.Parse(submitFrame(t, smOpt{text: []byte("b")}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := c.s.Request(ctx, p)
		cancel()
		if err != nil || resp.Status() != smpp.StatusOK {
			t.Fatalf("account b round trip %d while account a is stalled: %v %v", i, resp, err)
		}
	}
}

func waitClosed(t *testing.T, s *smpp.Session, what string) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s not closed", what)
	}
}

// An ESME that stops reading and floods enquire_link fills its own send queue. A
// submit_sm_resp relayed to it by the upstream reader — shared by every pooled account —
// must not wait for room: it goes to the session's bounded spill, and another account's
// traffic on the same upstream bind goes on. The next relayed write after a second without
// progress closes the stalled session (its write timeout would, later, anyway).
func TestStalledESMEDoesNotBlockUpstreamResponses(t *testing.T) {
	smsc, r, addr, _ := stallEnv(t)
	b := mustBind(t, addr, smpp.BindTransceiver, "b", "pw")
	roundTrips(t, b, 1)

	c, sa := stallESME(t, r, addr)
	const held = 4
	var reqs []byte
	for i := range held {
		f := submitFrame(t, smOpt{text: []byte("hold")})
		binary32(f[12:], uint32(100+i))
		reqs = append(reqs, f...)
	}
	if _, err := c.Write(reqs); err != nil {
		t.Fatal(err)
	}
	smsc.waitHeld(held)
	floodUntilFull(t, c, sa)

	// The SMSC answers a's submits first, then b's on the same bind.
	smsc.release()
	roundTrips(t, b, 5)
	// a's responses left its window when they were spilled.
	if _, peers := sa.InFlight(); peers != 0 {
		t.Fatalf("the stalled session counts %d requests in flight after their responses", peers)
	}
	// A further relayed write to a, more than a second later, finds its writer stuck.
	time.Sleep(1100 * time.Millisecond)
	sa.TryWriteResponse(smpp.HeaderOnly(smpp.SubmitSMResp, smpp.StatusOK, 999))
	waitClosed(t, sa, "the stalled ESME session")
	if !errors.Is(sa.Err(), smpp.ErrQueueFull) {
		t.Fatalf("stalled session closed with %v, want ErrQueueFull", sa.Err())
	}
	if n := sa.Counters().QueueOverflows; n == 0 {
		t.Fatal("overflow not counted")
	}
	if _, peers := b.s.InFlight(); peers != 0 {
		t.Fatalf("b has %d requests in flight", peers)
	}
	if reqs, _ := r.InFlight(); reqs != 0 {
		t.Fatalf("relay counts %d ESME requests in flight after the stalled session closed", reqs)
	}
}

// The same for a deliver_sm (an MO here) relayed to a non-reading ESME by the upstream
// reader: TrySend does not wait for queue room either (the MO goes to the session's spill)
// and b's traffic goes on. When the stalled receiver goes away, the SMSC is answered
// ESME_RX_T_APPN once: it keeps the MO and retries.
func TestStalledESMEDoesNotBlockUpstreamDeliver(t *testing.T) {
	smsc, r, addr, _ := stallEnv(t)
	b := mustBind(t, addr, smpp.BindTransceiver, "b", "pw")
	c, sa := stallESME(t, r, addr)
	floodUntilFull(t, c, sa)

	mo, err := smpp.NewBuilder(smpp.DeliverSM, smpp.StatusOK, 4242).CString("").Int(1).Int(1).CString("447700900999").
		Int(0).Int(0).CString("1000").Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).
		ShortMessage([]byte("to a")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	smsc.mu.Lock()
	up := smsc.conn
	smsc.mu.Unlock()
	smsc.write(up, mo)
	roundTrips(t, b, 5)
	c.Close()
	waitClosed(t, sa, "the stalled ESME session")
	select {
	case p := <-smsc.resps:
		if p.Seq() != 4242 || p.Status() != smpp.StatusXTAppn {
			t.Fatalf("MO answered %s seq %d, want ESME_RX_T_APPN (the SMSC retries)", p.Status(), p.Seq())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the SMSC got no deliver_sm_resp")
	}
	select {
	case p := <-smsc.resps:
		t.Fatalf("a second answer to the MO: %s seq %d", p.Status(), p.Seq())
	case <-time.After(200 * time.Millisecond):
	}
}

func binary32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}
