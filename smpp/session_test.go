package smpp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"testing"
	"time"
)

// runServer starts a Server on 127.0.0.1:0 whose sessions accept any bind and answer
// submit_sm with "id-<seq>" through serve (nil: default behaviour).
func runServer(t *testing.T, cfg Config, serve HandlerFunc) (string, *Server) {
	t.Helper()
	if serve == nil {
		serve = func(s *Session, p *PDU) {
			switch {
			case p.ID().IsBind():
				s.AcceptBind(p, StatusOK, p.CString(FieldSystemID))
			case p.ID() == SubmitSM:
				s.Respond(p, StatusOK, "id-"+p.CString(FieldDestinationAddr))
			default:
				s.Respond(p, StatusOK, "")
			}
		}
	}
	srv := &Server{Session: cfg, NewHandler: func(*Session) Handler { return serve }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Shutdown(sctx)
		cancel()
		<-done
	})
	return ln.Addr().String(), srv
}

// mustB unwraps an encoder result in tests; encoding errors are test bugs.
func mustB(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func mustPDU(t testing.TB, b []byte) *PDU {
	t.Helper()
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dialBound(t *testing.T, addr string, id CommandID, cfg Config) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bind := mustPDU(t, mustB(BindParams{SystemID: "bank", Password: "pw"}.Encode(id, 0)))
	s, resp, err := Dial(ctx, addr, bind, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Seq() != bind.Seq() {
		t.Fatalf("bind_resp seq %d, request %d", resp.Seq(), bind.Seq())
	}
	if v, ok := resp.TLV(TagSCInterfaceVersion); !ok || v[0] != 0x34 {
		t.Fatal("bind_resp lacks sc_interface_version 0x34")
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSessionSubmitAndStates(t *testing.T) {
	addr, _ := runServer(t, Config{}, nil)
	s := dialBound(t, addr, BindTransmitter, Config{})
	if s.State() != StateBoundTX {
		t.Fatalf("state %s", s.State())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.Request(ctx, mustPDU(t, submitSM(t, 0, "hello")))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ID() != SubmitSMResp || resp.Status() != StatusOK || resp.CString(FieldMessageID) != "id-447700900123" {
		t.Fatalf("resp %v %q", resp.Header(), resp.CString(FieldMessageID))
	}
	// deliver_sm from an ESME is not allowed on the SMSC side: ESME_RINVBNDSTS.
	dl := mustPDU(t, mustB(NewBuilder(DeliverSM, StatusOK, 0).CString("").Int(0).Int(0).CString("a").Int(0).Int(0).CString("b").
		Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).ShortMessage(nil).Bytes()))
	resp, err = s.Request(ctx, dl)
	if err != nil || resp.Status() != StatusInvBndSts {
		t.Fatalf("deliver_sm from ESME: %v %v", resp, err)
	}
	// a second bind: ESME_RALYBND.
	resp, err = s.Request(ctx, mustPDU(t, mustB(BindParams{SystemID: "x"}.Encode(BindTransmitter, 0))))
	if err != nil || resp.Status() != StatusAlyBnd {
		t.Fatalf("rebind: %v %v", resp, err)
	}
	if err := s.Unbind(ctx); err != nil {
		t.Fatal(err)
	}
	if s.State() != StateClosed {
		t.Fatalf("after unbind: %s", s.State())
	}
}

func TestSessionRequestBeforeBind(t *testing.T) {
	addr, _ := runServer(t, Config{}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSession(c, SideESME, nil, Config{})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.Request(ctx, mustPDU(t, submitSM(t, 0, "x")))
	if err != nil || resp.Status() != StatusInvBndSts {
		t.Fatalf("submit before bind: %v %v", resp, err)
	}
	// unknown command id → generic_nack ESME_RINVCMDID, session continues.
	resp, err = s.Request(ctx, &PDU{raw: HeaderOnly(0x00000077, StatusOK, 0)})
	if err != nil || resp.ID() != GenericNack || resp.Status() != StatusInvCmdID {
		t.Fatalf("unknown command: %v %v", resp, err)
	}
	resp, err = s.Request(ctx, mustPDU(t, HeaderOnly(EnquireLink, StatusOK, 0)))
	if err != nil || resp.ID() != EnquireLinkResp {
		t.Fatalf("enquire_link after unknown command: %v %v", resp, err)
	}
}

// The peer's window: requests beyond it are answered ESME_RTHROTTLED without reaching the handler.
func TestSessionPeerWindowThrottles(t *testing.T) {
	var mu sync.Mutex
	var held []*PDU
	release := make(chan struct{})
	addr, _ := runServer(t, Config{Window: 2}, func(s *Session, p *PDU) {
		if p.ID().IsBind() {
			s.AcceptBind(p, StatusOK, "x")
			return
		}
		mu.Lock()
		held = append(held, p)
		mu.Unlock()
		go func() { <-release; s.Respond(p, StatusOK, "ok") }()
	})
	s := dialBound(t, addr, BindTransceiver, Config{Window: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type res struct {
		p   *PDU
		err error
	}
	results := make(chan res, 3)
	for range 3 {
		go func() {
			p, err := s.Request(ctx, mustPDU(t, submitSM(t, 0, "x")))
			results <- res{p, err}
		}()
	}
	r := <-results // the third one, throttled at once
	if r.err != nil || r.p.Status() != StatusThrottled {
		t.Fatalf("want ESME_RTHROTTLED first, got %v %v", r.p, r.err)
	}
	close(release)
	for range 2 {
		if r := <-results; r.err != nil || r.p.Status() != StatusOK {
			t.Fatalf("held: %v %v", r.p, r.err)
		}
	}
}

// A request with no response gets ErrTimeout after ResponseTimeout, exactly once.
func TestSessionResponseTimeout(t *testing.T) {
	addr, _ := runServer(t, Config{}, func(s *Session, p *PDU) {
		if p.ID().IsBind() {
			s.AcceptBind(p, StatusOK, "x")
		} // submits are never answered
	})
	s := dialBound(t, addr, BindTransceiver, Config{ResponseTimeout: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.Request(ctx, mustPDU(t, submitSM(t, 0, "x")))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	// Deadlines come from the session's coarse clock: never before ResponseTimeout.
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("timed out after %v, before the 100ms response timeout", el)
	}
	if ours, _ := s.InFlight(); ours != 0 {
		t.Fatalf("window not released: %d", ours)
	}
}

func TestSessionOversizedFrame(t *testing.T) {
	addr, _ := runServer(t, Config{MaxPDUSize: 1024}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hdr := HeaderOnly(SubmitSM, StatusOK, 42)
	hdr[0], hdr[1], hdr[2], hdr[3] = 0, 1, 0, 0 // 65536 > 1024
	c.Write(hdr)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	fr := NewFrameReader(c, 0)
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	p := mustPDU(t, f)
	if p.ID() != GenericNack || p.Status() != StatusInvCmdLen || p.Seq() != 42 {
		t.Fatalf("got %v", p.Header())
	}
	if _, err := fr.ReadFrame(); err == nil {
		t.Fatal("connection not closed after bad command_length")
	}
}

func TestSessionEnquireLinkKeepalive(t *testing.T) {
	addr, srv := runServer(t, Config{}, nil)
	s := dialBound(t, addr, BindTransceiver, Config{EnquireLinkInterval: 50 * time.Millisecond, ResponseTimeout: time.Second})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ss := range srv.Sessions() {
			if ss.Counters().RxPDUs >= 3 { // bind + at least two enquire_links
				if c := s.Counters(); c.ResponseTimeouts != 0 {
					t.Fatalf("keepalive timeouts %d", c.ResponseTimeouts)
				}
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no enquire_link keepalive seen")
}

func TestLinkReconnects(t *testing.T) {
	addr, srv := runServer(t, Config{}, nil)
	l := NewLink(LinkConfig{Name: "t", Addr: addr, Bind: BindParams{SystemID: "p"}, Binds: 2, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.Start(ctx)
	defer l.Close(ctx)
	waitUp := func(n int, reconnects uint64) {
		for ctx.Err() == nil {
			up := 0
			for _, h := range l.Health() {
				if h.State == "BOUND_TRX" && h.Reconnects >= reconnects {
					up++
				}
			}
			if up == n {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("binds not up: %+v", l.Health())
	}
	waitUp(2, 0)
	for _, s := range srv.Sessions() {
		s.Close()
	}
	waitUp(2, 1)
	ch := make(chanHandler, 1)
	if err := l.Send(ctx, mustPDU(t, submitSM(t, 0, "x")), ch, Ref{}); err != nil {
		t.Fatal(err)
	}
	if r := <-ch; r.err != nil || r.p.Status() != StatusOK {
		t.Fatalf("send after reconnect: %v", r)
	}
}

func TestSessionBindTimeout(t *testing.T) {
	addr, _ := runServer(t, Config{BindTimeout: 100 * time.Millisecond}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read data from a connection that never bound")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server did not close an unbound connection after its bind timeout")
	}
}

func TestSessionInactivityUnbinds(t *testing.T) {
	addr, _ := runServer(t, Config{InactivityTimeout: 100 * time.Millisecond, EnquireLinkInterval: -1}, nil)
	s := dialBound(t, addr, BindTransceiver, Config{EnquireLinkInterval: -1})
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("idle session not unbound")
	}
	if c := s.Counters(); c.RxPDUs < 2 { // bind_resp and the server's unbind
		t.Fatalf("client saw %d PDUs, want bind_resp and unbind", c.RxPDUs)
	}
}

// Link.Send waits for window room instead of failing, and the TPS limit spaces submits.
func TestLinkWindowWaitsAndTPS(t *testing.T) {
	release := make(chan struct{})
	addr, _ := runServer(t, Config{}, func(s *Session, p *PDU) {
		if p.ID().IsBind() {
			s.AcceptBind(p, StatusOK, "x")
			return
		}
		go func() { <-release; s.Respond(p, StatusOK, "id") }()
	})
	l := NewLink(LinkConfig{Name: "w", Addr: addr, Bind: BindParams{SystemID: "p"}, Session: Config{Window: 2}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.Start(ctx)
	defer l.Close(ctx)
	ch := make(chanHandler, 3)
	for range 2 {
		if err := l.Send(ctx, mustPDU(t, submitSM(t, 0, "x")), ch, Ref{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.TrySend(mustPDU(t, submitSM(t, 0, "x")), ch, Ref{}); !errors.Is(err, ErrWindowTimeout) {
		t.Fatalf("TrySend with a full window: %v", err)
	}
	third := make(chan error, 1)
	go func() { third <- l.Send(ctx, mustPDU(t, submitSM(t, 0, "x")), ch, Ref{}) }()
	select {
	case err := <-third:
		t.Fatalf("Send returned with a full window: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}

	// TPS: 20/s with a burst of 2: 8 submits take at least 6/20 s.
	addr2, _ := runServer(t, Config{}, nil)
	lt := NewLink(LinkConfig{Name: "tps", Addr: addr2, Bind: BindParams{SystemID: "p"}, TPS: 20})
	lt.Start(ctx)
	defer lt.Close(ctx)
	start := time.Now()
	got := make(chanHandler, 8)
	for range 8 {
		if err := lt.Send(ctx, mustPDU(t, submitSM(t, 0, "x")), got, Ref{}); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("8 submits at 20 TPS took %s", el)
	}
}

func TestPDUCounts(t *testing.T) {
	var counts PDUCounts
	addr, _ := runServer(t, Config{Counts: &counts}, nil)
	s := dialBound(t, addr, BindTransceiver, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 3 {
		if _, err := s.Request(ctx, mustPDU(t, submitSM(t, 0, "x"))); err != nil {
			t.Fatal(err)
		}
	}
	s.Request(ctx, &PDU{raw: HeaderOnly(0x00000077, StatusOK, 0)})
	got := map[string]uint64{}
	counts.Each(func(rx bool, id CommandID, st Status, n uint64) {
		got[fmt.Sprintf("%v %s %s", rx, id, st.String())] = n
	})
	for k, want := range map[string]uint64{
		"true bind_transceiver ESME_ROK": 1, "false bind_transceiver_resp ESME_ROK": 1,
		"true submit_sm ESME_ROK": 3, "false submit_sm_resp ESME_ROK": 3,
		"true command_0x0 ESME_ROK": 1, "false generic_nack ESME_RINVCMDID": 1,
	} {
		if got[k] != want {
			t.Errorf("%s: %d, want %d (all: %v)", k, got[k], want, got)
		}
	}
}

// A limit shared by sessions bounds their peers' unanswered requests together, and slots are
// released by responses and by sessions closing.
func TestGlobalInFlightLimit(t *testing.T) {
	limit := &InFlightLimit{Max: 3}
	release := make(chan struct{})
	addr, _ := runServer(t, Config{Global: limit}, func(s *Session, p *PDU) {
		if p.ID().IsBind() {
			s.AcceptBind(p, StatusOK, "x")
			return
		}
		go func() { <-release; s.Respond(p, StatusOK, "id") }()
	})
	a := dialBound(t, addr, BindTransceiver, Config{})
	b := dialBound(t, addr, BindTransceiver, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	results := make(chan Status, 4)
	send := func(s *Session) {
		r, err := s.Request(ctx, mustPDU(t, submitSM(t, 0, "x")))
		if err != nil {
			results <- StatusSysErr
			return
		}
		results <- r.Status()
	}
	go send(a)
	go send(a)
	go send(b)
	for limit.InFlight() < 3 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	go send(b) // the fourth, over the shared limit
	if st := <-results; st != StatusThrottled {
		t.Fatalf("fourth request: %s, want ESME_RTHROTTLED", st)
	}
	close(release)
	for range 3 {
		if st := <-results; st != StatusOK {
			t.Fatalf("held request: %s", st)
		}
	}
	for limit.InFlight() != 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	if n := limit.InFlight(); n != 0 {
		t.Fatalf("%d slots still taken after all responses", n)
	}
}

// An SMSC that writes a deliver_sm right behind its bind_resp (in the same TCP segment) must
// get ESME_ROK for it: the client is bound before it reads the next PDU.
func TestDeliverRightAfterBindResp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan Status, 1)
	// The fake SMSC holds its connection until the test ends: closing it right after the
	// deliver_sm_resp would let the client read EOF and go CLOSED before the final check.
	testDone := make(chan struct{})
	srvDone := make(chan struct{})
	t.Cleanup(func() { close(testDone); <-srvDone })
	go func() {
		defer close(srvDone)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() {
			<-testDone
			c.Close()
		}()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fr := NewFrameReader(c, 4096)
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		bind, err := Parse(f)
		if err != nil {
			return
		}
		out := mustB(BindResponse(bind, StatusOK, "smsc"))
		out = append(out, mustB(NewBuilder(DeliverSM, StatusOK, 77).CString("").Int(1).Int(1).CString("447700900123").
			Int(1).Int(1).CString("BANK").Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).
			ShortMessage([]byte("hello")).Bytes())...)
		if _, err := c.Write(out); err != nil {
			return
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if p, err := Parse(f); err == nil && p.ID() == DeliverSMResp && p.Seq() == 77 {
				got <- p.Status()
				return
			}
		}
	}()
	served := make(chan struct{}, 1)
	h := HandlerFunc(func(s *Session, p *PDU) {
		served <- struct{}{}
		s.Respond(p, StatusOK, "")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bind := mustPDU(t, mustB(BindParams{SystemID: "bank", Password: "pw"}.Encode(BindTransceiver, 0)))
	s, _, err := Dial(ctx, ln.Addr().String(), bind, h, Config{ResponseTimeout: 5 * time.Second, EnquireLinkInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	select {
	case st := <-got:
		if st != StatusOK {
			t.Fatalf("deliver_sm behind bind_resp answered %s", st)
		}
	case <-ctx.Done():
		t.Fatal("no deliver_sm_resp")
	}
	select {
	case <-served:
	default:
		t.Fatal("handler never saw the deliver_sm")
	}
	if s.SystemID() != "bank" || s.State() != StateBoundTRX {
		t.Fatalf("session %q in %s", s.SystemID(), s.State())
	}
}

// A link spreads requests without an origin over all its binds in turn: each bind gets
// its share exactly.
func TestLinkSpreadsOverBinds(t *testing.T) {
	l, per, mu := spreadLink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = spreadBinds * 128
	ch := make(chanHandler, n)
	for range n {
		if err := l.Send(ctx, mustPDU(t, submitSM(t, 0, "x")), ch, Ref{}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(per) != spreadBinds {
		t.Fatalf("requests went over %d binds, want %d: %v", len(per), spreadBinds, per)
	}
	for _, c := range per {
		if c != n/spreadBinds {
			t.Fatalf("requests per bind %v, want %d each", per, n/spreadBinds)
		}
	}
}

const spreadBinds = 4

// spreadLink is a link of spreadBinds binds to a server counting the requests each bind got.
func spreadLink(t *testing.T) (*Link, map[*Session]int, *sync.Mutex) {
	t.Helper()
	mu := new(sync.Mutex)
	per := map[*Session]int{}
	addr, _ := runServer(t, Config{}, func(s *Session, p *PDU) {
		if p.ID().IsBind() {
			s.AcceptBind(p, StatusOK, "x")
			return
		}
		mu.Lock()
		per[s]++
		mu.Unlock()
		s.Respond(p, StatusOK, "id")
	})
	l := NewLink(LinkConfig{Name: "spread", Addr: addr, Bind: BindParams{SystemID: "p"}, Binds: spreadBinds, Session: Config{Window: 1000}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	l.Start(ctx)
	t.Cleanup(func() { l.Close(context.Background()) })
	for len(l.Sessions()) < spreadBinds {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d binds up", len(l.Sessions()), spreadBinds)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return l, per, mu
}

// Requests of one origin session go over one bind for a whole read burst (up to its Tail
// request), and the next burst may take another; one-request bursts (a low rate) alternate
// over every bind evenly.
func TestLinkKeepsBurstOnOneBind(t *testing.T) {
	l, per, mu := spreadLink(t)
	origin := &Session{}
	send := func(n int, lastTail, allTail bool) {
		t.Helper()
		ch := make(chanHandler, n)
		for i := range n {
			p := mustPDU(t, submitSM(t, 0, "x"))
			p.tail = allTail || (lastTail && i == n-1)
			if err := l.TrySend(p, ch, Ref{Session: origin}); err != nil {
				t.Fatal(err)
			}
			if allTail { // one at a time: every bind is idle when the next is picked
				if r := <-ch; r.err != nil {
					t.Fatal(r.err)
				}
			}
		}
		if !allTail {
			for range n {
				if r := <-ch; r.err != nil {
					t.Fatal(r.err)
				}
			}
		}
	}
	snapshot := func() map[*Session]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(per)
	}
	for burst := range 3 {
		before := snapshot()
		send(60, true, false)
		after := snapshot()
		used := 0
		for s, c := range after {
			if d := c - before[s]; d != 0 {
				used++
				if d != 60 {
					t.Fatalf("burst %d: %d of 60 requests on one bind", burst, d)
				}
			}
		}
		if used != 1 {
			t.Fatalf("burst %d went over %d binds, want 1", burst, used)
		}
	}
	before := snapshot()
	send(spreadBinds*25, false, true)
	after := snapshot()
	for s, c := range after {
		if d := c - before[s]; d != 25 {
			t.Fatalf("one-request bursts: %d on one bind, want 25 on each (%v → %v)", d, before, after)
		}
	}
}

// relayBack answers the origin of a request relayed over a link with the link's response.
type relayBack struct{}

func (relayBack) HandleResponse(ref Ref, resp *PDU, err error) {
	if err != nil {
		ref.Session.TryWriteResponse(HeaderOnly(SubmitSMResp, StatusSysErr, ref.Seq))
		return
	}
	resp.SetSeq(ref.Seq)
	ref.Session.TryWriteResponsePDU(resp)
}

// A burst whose last PDU never reaches the link (here an enquire_link behind each submit,
// answered by the session itself, as a deliver_sm_resp behind submits would be) still ends
// there: the next burst picks its bind afresh, so one ESME sending one submit at a time
// spreads them evenly over the binds instead of sticking to the first one.
func TestLinkBurstEndsOnAnyLastPDU(t *testing.T) {
	l, per, mu := spreadLink(t)
	addr, _ := runServer(t, Config{}, func(s *Session, p *PDU) {
		switch {
		case p.ID().IsBind():
			s.AcceptBind(p, StatusOK, "esme")
		case p.ID() == SubmitSM:
			if err := l.TrySend(p, relayBack{}, Ref{Session: s, Seq: p.Seq()}); err != nil {
				s.Respond(p, StatusThrottled, "")
			}
		default:
			s.Respond(p, StatusOK, "")
		}
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fr := NewFrameReader(c, 0)
	if _, err := c.Write(mustB(BindParams{SystemID: "esme", Password: "pw"}.Encode(BindTransceiver, 1))); err != nil {
		t.Fatal(err)
	}
	if f, err := fr.ReadFrame(); err != nil || mustPDU(t, f).Status() != StatusOK {
		t.Fatalf("bind: %v", err)
	}
	const n = spreadBinds * 25
	for i := range n {
		// One write: the session reads the submit_sm with the enquire_link behind it.
		burst := append(submitSM(t, uint32(2+i), "x"), HeaderOnly(EnquireLink, StatusOK, uint32(100000+i))...)
		if _, err := c.Write(burst); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if p := mustPDU(t, f); p.Status() != StatusOK {
				t.Fatalf("%s %s", p.ID(), p.Status())
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for s, c := range per {
		if c != n/spreadBinds {
			t.Fatalf("bind %p got %d of %d submits, want %d each: %v", s, c, n, n/spreadBinds, per)
		}
	}
	if len(per) != spreadBinds {
		t.Fatalf("submits went over %d binds, want %d", len(per), spreadBinds)
	}
}
