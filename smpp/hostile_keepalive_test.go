package smpp

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Hostile peers after bind against the keepalive and inactivity timers, over real
// 127.0.0.1 sockets: a bound peer that dribbles bytes (never a whole PDU) or never answers
// enquire_link is closed, with the timer's reason; a bound, idle peer that answers
// enquire_link stays up.

// closeEvent is one server session's OnClose.
type closeEvent struct {
	s   *Session
	err error
	at  time.Time
}

// keepaliveServer runs a Server with cfg whose OnClose reports on the returned channel.
func keepaliveServer(t *testing.T, cfg Config) (string, *Server, <-chan closeEvent) {
	t.Helper()
	closed := make(chan closeEvent, 16)
	cfg.OnClose = func(s *Session, err error) {
		select {
		case closed <- closeEvent{s, err, time.Now()}:
		default:
		}
	}
	addr, srv := runServer(t, cfg, nil)
	return addr, srv, closed
}

func waitClose(t *testing.T, closed <-chan closeEvent, s *Session) closeEvent {
	t.Helper()
	select {
	case ev := <-closed:
		if ev.s != s {
			t.Fatalf("another session closed: %v", ev.err)
		}
		return ev
	case <-time.After(hostileWait):
		t.Fatal("server session not closed")
		return closeEvent{}
	}
}

// dribble writes frame one byte every gap until stop, the frame's end or a write error, and
// counts the bytes written. The returned func stops it and waits.
func dribble(r *rawPeer, frame []byte, gap time.Duration, written *atomic.Int64) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(gap)
		defer tk.Stop()
		for i := range frame {
			r.c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := r.c.Write(frame[i : i+1]); err != nil {
				return
			}
			written.Add(1)
			select {
			case <-tk.C:
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

// Slowloris after bind, against the inactivity timer: a byte arrives every 50 ms, eight times
// as often as the 400 ms inactivity timeout, but never a whole PDU. Only complete PDUs count
// as activity, so the session unbinds and closes with "inactivity timeout" about 400 ms after
// the bind, long before the dribbled submit_sm could complete.
func TestHostileKeepaliveSlowlorisAfterBindInactivity(t *testing.T) {
	const (
		inactivity = 400 * time.Millisecond
		gap        = 50 * time.Millisecond
	)
	addr, srv, closed := keepaliveServer(t, Config{InactivityTimeout: inactivity, EnquireLinkInterval: -1, ResponseTimeout: 400 * time.Millisecond})
	r := dialRaw(t, addr)
	r.bind(BindTransceiver)
	boundAt := time.Now()
	ss := serverSession(t, srv, r.c)
	frame := submitSM(t, 2, strings.Repeat("slow ", 30)) // ~190 bytes: 9.5 s at one byte per 50 ms
	var written atomic.Int64
	stop := dribble(r, frame, gap, &written)
	defer stop()

	// The peer sees the server's unbind, then the close.
	if p := r.next(); p.ID() != Unbind {
		t.Fatalf("got %v, want the server's unbind", p.Header())
	}
	r.expectClosed(hostileWait)
	ev := waitClose(t, closed, ss)
	el := ev.at.Sub(boundAt)
	n := written.Load()
	if ev.err == nil || ev.err.Error() != "smpp: inactivity timeout" {
		t.Fatalf("close reason %v, want smpp: inactivity timeout", ev.err)
	}
	if el < inactivity {
		t.Fatalf("closed %s after the bind, before the %s inactivity timeout", el, inactivity)
	}
	if n < int64(inactivity/gap)/2 {
		t.Fatalf("only %d bytes dribbled before the close: the test did not keep bytes coming", n)
	}
	if n >= int64(len(frame)) {
		t.Fatalf("the whole %d-byte frame was written before the close", len(frame))
	}
	if c := ss.Counters(); c.RxPDUs != 1 {
		t.Fatalf("server read %d PDUs, want 1 (the bind)", c.RxPDUs)
	}
	t.Logf("slowloris after bind (1 byte / %s, %d of %d bytes of a submit_sm sent): closed %s after the bind, reason %q",
		gap, n, len(frame), el.Round(time.Millisecond), ev.err)
	waitSessions(t, srv, 0)
}

// Slowloris after bind, against the keepalive: the peer is mid-PDU, so it does not answer the
// enquire_link the session sends when no PDU arrived for EnquireLinkInterval; the session
// closes when the enquire_link's ResponseTimeout runs out (no inactivity timeout configured).
func TestHostileKeepaliveSlowlorisAfterBindEnquireLink(t *testing.T) {
	const (
		interval = 200 * time.Millisecond
		respTO   = 400 * time.Millisecond
		gap      = 50 * time.Millisecond
	)
	addr, srv, closed := keepaliveServer(t, Config{EnquireLinkInterval: interval, ResponseTimeout: respTO})
	r := dialRaw(t, addr)
	r.bind(BindTransceiver)
	boundAt := time.Now()
	ss := serverSession(t, srv, r.c)
	frame := submitSM(t, 2, strings.Repeat("slow ", 30))
	var written atomic.Int64
	stop := dribble(r, frame, gap, &written)
	defer stop()

	p := r.next()
	if p.ID() != EnquireLink {
		t.Fatalf("got %v, want the server's enquire_link", p.Header())
	}
	enqAt := time.Now()
	r.expectClosed(hostileWait) // a second enquire_link would fail here: one is outstanding at a time
	ev := waitClose(t, closed, ss)
	n := written.Load()
	if ev.err == nil || !errors.Is(ev.err, ErrTimeout) || !strings.Contains(ev.err.Error(), "enquire_link") {
		t.Fatalf("close reason %v, want the enquire_link's ErrTimeout", ev.err)
	}
	if wait := ev.at.Sub(enqAt); wait < respTO/2 {
		t.Fatalf("closed %s after the enquire_link, its response timeout is %s", wait, respTO)
	}
	if n >= int64(len(frame)) {
		t.Fatalf("the whole %d-byte frame was written before the close", len(frame))
	}
	if c := ss.Counters(); c.RxPDUs != 1 || c.ResponseTimeouts != 1 {
		t.Fatalf("server counters %+v, want 1 PDU read (the bind) and 1 response timeout", c)
	}
	t.Logf("slowloris after bind (1 byte / %s, %d of %d bytes sent): enquire_link %s after the bind, closed %s later, reason %q",
		gap, n, len(frame), enqAt.Sub(boundAt).Round(time.Millisecond), ev.at.Sub(enqAt).Round(time.Millisecond), ev.err)
	waitSessions(t, srv, 0)
}

// A bound peer that reads everything and never answers enquire_link: exactly one enquire_link
// is sent, and the session closes when its response timeout runs out.
func TestHostileKeepaliveUnansweredEnquireLink(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		respTO   = 400 * time.Millisecond
	)
	addr, srv, closed := keepaliveServer(t, Config{EnquireLinkInterval: interval, ResponseTimeout: respTO})
	r := dialRaw(t, addr)
	r.bind(BindTransceiver)
	boundAt := time.Now()
	ss := serverSession(t, srv, r.c)

	p := r.next()
	if p.ID() != EnquireLink {
		t.Fatalf("got %v, want the server's enquire_link", p.Header())
	}
	enqAt := time.Now()
	r.expectClosed(hostileWait) // any other frame (a second enquire_link) fails here
	ev := waitClose(t, closed, ss)
	if ev.err == nil || !errors.Is(ev.err, ErrTimeout) || !strings.Contains(ev.err.Error(), "enquire_link") {
		t.Fatalf("close reason %v, want the enquire_link's ErrTimeout", ev.err)
	}
	if wait := ev.at.Sub(enqAt); wait < respTO/2 {
		t.Fatalf("closed %s after the enquire_link, its response timeout is %s", wait, respTO)
	}
	if c := ss.Counters(); c.ResponseTimeouts != 1 {
		t.Fatalf("server counted %d response timeouts, want 1", c.ResponseTimeouts)
	}
	t.Logf("unanswered enquire_link: sent %s after the bind, session closed %s later, reason %q",
		enqAt.Sub(boundAt).Round(time.Millisecond), ev.at.Sub(enqAt).Round(time.Millisecond), ev.err)
	waitSessions(t, srv, 0)
}

// A bound peer that sends nothing of its own but answers every enquire_link stays up, with
// an inactivity timeout configured too (as in production: keepalive 30 s, inactivity 120 s):
// answers to keepalives are activity. The peer answers until at least twice the inactivity
// timeout has passed; the session is still bound, no timer fired, and it still serves.
func TestHostileKeepaliveIdleAnsweringStaysUp(t *testing.T) {
	const (
		interval   = 100 * time.Millisecond
		respTO     = 400 * time.Millisecond
		inactivity = 800 * time.Millisecond
		minAnswers = 5
	)
	addr, srv, closed := keepaliveServer(t, Config{EnquireLinkInterval: interval, ResponseTimeout: respTO, InactivityTimeout: inactivity})
	r := dialRaw(t, addr)
	r.bind(BindTransceiver)
	boundAt := time.Now()
	ss := serverSession(t, srv, r.c)

	answered := 0
	deadline := boundAt.Add(10 * time.Second)
	for answered < minAnswers || time.Since(boundAt) < 2*inactivity {
		if time.Now().After(deadline) {
			t.Fatalf("%d enquire_link answered in %s", answered, time.Since(boundAt))
		}
		p := r.next() // fails on a close, or after hostileWait without a frame
		if p.ID() != EnquireLink {
			t.Fatalf("got %v, want only enquire_link from the server", p.Header())
		}
		r.send(HeaderOnly(EnquireLinkResp, StatusOK, p.Seq()))
		answered++
	}
	up := time.Since(boundAt)
	select {
	case ev := <-closed:
		t.Fatalf("session closed: %v", ev.err)
	case <-ss.Done():
		t.Fatalf("session done: %v", ss.Err())
	default:
	}
	if st := ss.State(); st != StateBoundTRX {
		t.Fatalf("server session %s, want BOUND_TRX", st)
	}
	r.ping(9) // it still serves
	if c := ss.Counters(); c.ResponseTimeouts != 0 {
		t.Fatalf("%d response timeouts on a peer that answered every enquire_link", c.ResponseTimeouts)
	}
	t.Logf("idle peer answering enquire_link: up %s (inactivity timeout %s), %d enquire_link answered, session %s",
		up.Round(time.Millisecond), inactivity, answered, ss.State())
}

// silentSMSC accepts binds and then reads everything and answers nothing: a half-dead SMSC.
type silentSMSC struct {
	ln       net.Listener
	accepted chan int // index of each accepted connection
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
	enq   []int           // enquire_link read per connection
	ended []chan struct{} // closed when the connection's reader ends
}

func startSilentSMSC(t *testing.T) *silentSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &silentSMSC{ln: ln, accepted: make(chan int, 64)}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.mu.Lock()
			i := len(m.conns)
			m.conns = append(m.conns, c)
			m.enq = append(m.enq, 0)
			ended := make(chan struct{})
			m.ended = append(m.ended, ended)
			m.mu.Unlock()
			select {
			case m.accepted <- i:
			default:
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				defer close(ended)
				defer c.Close()
				fr := NewFrameReader(c, DefaultMaxPDUSize)
				f, err := fr.ReadFrame()
				if err != nil {
					return
				}
				p, err := Parse(f)
				if err != nil || !p.ID().IsBind() {
					return
				}
				resp, err := BindResponse(p, StatusOK, "silent")
				if err != nil {
					return
				}
				c.SetWriteDeadline(time.Now().Add(hostileWait))
				if _, err := c.Write(resp); err != nil {
					return
				}
				for range 1_000_000 { // ends earlier when the connection is closed
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					if h, err := ParseHeader(f); err == nil && h.ID == EnquireLink {
						m.mu.Lock()
						m.enq[i]++
						m.mu.Unlock()
					}
				}
			}()
		}
	}()
	t.Cleanup(m.close)
	return m
}

// close stops accepting, closes every connection and waits for the goroutines; it may be
// called more than once.
func (m *silentSMSC) close() {
	m.ln.Close()
	m.mu.Lock()
	for _, c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *silentSMSC) waitAccepted(t *testing.T) int {
	t.Helper()
	select {
	case i := <-m.accepted:
		return i
	case <-time.After(hostileWait):
		t.Fatal("no connection accepted")
		return -1
	}
}

// The other direction: an upstream SMSC that accepts the bind and then never answers
// enquire_link (nor anything else). The link's bind is closed by its keepalive (the
// enquire_link's response timeout), and the link redials and binds again.
func TestHostileKeepaliveSilentSMSCLinkRedials(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		respTO   = 400 * time.Millisecond
	)
	type bindEvent struct {
		err error
		at  time.Time
	}
	events := make(chan bindEvent, 64)
	smsc := startSilentSMSC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	l := NewLink(LinkConfig{Name: "silent", Addr: smsc.ln.Addr().String(), Bind: BindParams{SystemID: "p"}, Binds: 1,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond,
		Session: Config{EnquireLinkInterval: interval, ResponseTimeout: respTO},
		OnBind: func(_ *Link, _ *Session, err error) {
			select {
			case events <- bindEvent{err, time.Now()}:
			default:
			}
		}})
	t.Cleanup(func() {
		smsc.close() // first, so the link's unbinds end at once instead of waiting for an answer
		cctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		l.Close(cctx)
		cancel()
	})
	l.Start(ctx)

	next := func(what string) bindEvent {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(hostileWait):
			t.Fatalf("no bind event (%s)", what)
			return bindEvent{}
		}
	}
	first := smsc.waitAccepted(t)
	up := next("bound")
	if up.err != nil {
		t.Fatalf("first bind: %v", up.err)
	}
	drop := next("dropped")
	if drop.err == nil || !errors.Is(drop.err, ErrTimeout) || !strings.Contains(drop.err.Error(), "enquire_link") {
		t.Fatalf("bind dropped with %v, want the enquire_link's ErrTimeout", drop.err)
	}
	if d := drop.at.Sub(up.at); d < interval+respTO/2 {
		t.Fatalf("bind dropped %s after it came up: before keepalive interval + response timeout", d)
	}
	smsc.mu.Lock()
	ended := smsc.ended[first]
	smsc.mu.Unlock()
	select {
	case <-ended:
	case <-time.After(hostileWait):
		t.Fatal("the dropped bind's connection is still open at the SMSC")
	}
	second := smsc.waitAccepted(t)
	again := next("bound again")
	if again.err != nil {
		t.Fatalf("redial: %v", again.err)
	}
	smsc.mu.Lock()
	enq := smsc.enq[first]
	smsc.mu.Unlock()
	if enq != 1 {
		t.Fatalf("the SMSC read %d enquire_link on the first bind, want 1 (one outstanding at a time)", enq)
	}
	h := l.Health()
	t.Logf("silent SMSC: bind up, dropped %s later (%q) after %d unanswered enquire_link, redialled (connection %d) and bound %s after the drop; health %+v",
		drop.at.Sub(up.at).Round(time.Millisecond), drop.err, enq, second, again.at.Sub(drop.at).Round(time.Millisecond), h)
}
