package smpp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Hostile peers against a Server over real 127.0.0.1 sockets.

const hostileWait = 5 * time.Second

// rawPeer is a hand-driven TCP client: it writes bytes as given and reads frames.
type rawPeer struct {
	t  *testing.T
	c  net.Conn
	fr *FrameReader
}

func dialRaw(t *testing.T, addr string) *rawPeer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, hostileWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, c: c, fr: NewFrameReader(c, DefaultMaxPDUSize)}
}

func (r *rawPeer) send(parts ...[]byte) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(hostileWait))
	if _, err := r.c.Write(bytes.Join(parts, nil)); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *rawPeer) next() *PDU {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(hostileWait))
	f, err := r.fr.ReadFrame()
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return mustPDU(r.t, f)
}

func (r *rawPeer) expect(id CommandID, st Status, seq uint32) *PDU {
	r.t.Helper()
	p := r.next()
	if p.ID() != id || p.Status() != st || p.Seq() != seq {
		r.t.Fatalf("got %v, want %s seq=%d status=%s", p.Header(), id, seq, st.String())
	}
	return p
}

// expectClosed reads until the server closes the connection; it fails on any frame or
// when the connection is still open after d.
func (r *rawPeer) expectClosed(d time.Duration) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(d))
	f, err := r.fr.ReadFrame()
	if err == nil {
		r.t.Fatalf("frame %v instead of a close", mustPDU(r.t, f).Header())
	}
	if isTimeout(err) {
		r.t.Fatalf("connection still open after %s", d)
	}
}

// ping checks the session still serves: enquire_link gets its response.
func (r *rawPeer) ping(seq uint32) {
	r.t.Helper()
	r.send(HeaderOnly(EnquireLink, StatusOK, seq))
	r.expect(EnquireLinkResp, StatusOK, seq)
}

func (r *rawPeer) bind(id CommandID) {
	r.t.Helper()
	r.send(mustB(BindParams{SystemID: "esme", Password: "pw"}.Encode(id, 1)))
	r.expect(id.Response(), StatusOK, 1)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func withLength(b []byte, n uint32) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint32(b, n)
	return b
}

// withTail appends tail to frame and fixes command_length.
func withTail(frame, tail []byte) []byte {
	b := append(bytes.Clone(frame), tail...)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

// serverSession returns the server's session for the client connection c.
func serverSession(t *testing.T, srv *Server, c net.Conn) *Session {
	t.Helper()
	deadline := time.Now().Add(hostileWait)
	for time.Now().Before(deadline) {
		for _, s := range srv.Sessions() {
			if s.RemoteAddr().String() == c.LocalAddr().String() {
				return s
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no server session for the connection")
	return nil
}

func waitSessions(t *testing.T, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(hostileWait)
	for len(srv.Sessions()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d server sessions, want %d", len(srv.Sessions()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Every malformed frame gets generic_nack or the right error status, or a clean close.
func TestHostileMalformedFrames(t *testing.T) {
	sub := submitSM(t, 7, "hello")
	type want struct {
		id  CommandID
		st  Status
		seq uint32
	}
	cases := []struct {
		name  string
		bind  bool   // bind (transceiver) first
		send  []byte // the hostile bytes
		want  []want // responses, in order
		close bool   // the server then closes; otherwise the session keeps serving
		check func(t *testing.T, s *Session)
	}{
		{name: "length 0", bind: true, send: withLength(sub, 0), want: []want{{GenericNack, StatusInvCmdLen, 7}}, close: true},
		{name: "length 15", bind: true, send: withLength(sub, 15), want: []want{{GenericNack, StatusInvCmdLen, 7}}, close: true},
		{name: "length 8 unbound", send: withLength(HeaderOnly(EnquireLink, StatusOK, 3), 8), want: []want{{GenericNack, StatusInvCmdLen, 3}}, close: true},
		{name: "length max+1", bind: true, send: withLength(sub, 1025), want: []want{{GenericNack, StatusInvCmdLen, 7}}, close: true},
		{name: "length 0xFFFFFFFF", send: withLength(sub, 0xFFFFFFFF), want: []want{{GenericNack, StatusInvCmdLen, 7}}, close: true},
		{name: "unknown command_id", bind: true, send: HeaderOnly(0x00000077, StatusOK, 5), want: []want{{GenericNack, StatusInvCmdID, 5}}},
		{name: "unknown command_id unbound", send: HeaderOnly(0x0000FFFF, StatusOK, 5), want: []want{{GenericNack, StatusInvCmdID, 5}}},
		{name: "unknown response id", bind: true, send: HeaderOnly(0x80000077, StatusOK, 5), want: []want{{GenericNack, StatusInvCmdID, 5}}},
		{name: "unknown command with body", bind: true, send: withTail(HeaderOnly(0x00000042, StatusOK, 6), []byte("garbage")), want: []want{{GenericNack, StatusInvCmdID, 6}}},
		{name: "truncated body submit_sm", bind: true, send: withLength(sub[:30], 30), want: []want{{SubmitSMResp, StatusInvDstAdr, 7}}},
		{name: "header-only submit_sm", bind: true, send: HeaderOnly(SubmitSM, StatusOK, 8), want: []want{{SubmitSMResp, StatusInvSerTyp, 8}}},
		{name: "sm_length past end", bind: true, send: withLength(sub[:len(sub)-2], uint32(len(sub)-2)), want: []want{{SubmitSMResp, StatusInvMsgLen, 7}}},
		{name: "truncated body bind", send: withLength(mustB(BindParams{SystemID: "esme"}.Encode(BindTransmitter, 4))[:21], 21), want: []want{{BindTransmitterResp, StatusInvPaswd, 4}}},
		{name: "system_id too long", send: withTail(HeaderOnly(BindTransmitter, StatusOK, 4), []byte("abcdefghijklmnop\x00pw\x00\x00\x34\x00\x00\x00")), want: []want{{BindTransmitterResp, StatusInvSysID, 4}}},
		{name: "garbage TLV trailing bytes", bind: true, send: withTail(sub, []byte{1, 2, 3}), want: []want{{SubmitSMResp, StatusInvOptParStream, 7}}},
		{name: "garbage TLV length past end", bind: true, send: withTail(sub, []byte{0x14, 0x01, 0x00, 0x40, 'x', 'y'}), want: []want{{SubmitSMResp, StatusInvParLen, 7}}},
		{name: "garbage TLV stream", bind: true, send: withTail(sub, bytes.Repeat([]byte{0xff}, 40)), want: []want{{SubmitSMResp, StatusInvParLen, 7}}},
		{name: "response to nothing", bind: true,
			send: bytes.Join([][]byte{mustB(NewBuilder(SubmitSMResp, StatusOK, 999).CString("x").Bytes()), HeaderOnly(GenericNack, StatusInvCmdID, 998), HeaderOnly(EnquireLinkResp, StatusOK, 997)}, nil),
			check: func(t *testing.T, s *Session) {
				if c := s.Counters(); c.UnmatchedResponses != 3 {
					t.Fatalf("unmatched responses %d, want 3", c.UnmatchedResponses)
				}
			}},
		{name: "bind twice", bind: true, send: mustB(BindParams{SystemID: "again"}.Encode(BindTransmitter, 2)), want: []want{{BindTransmitterResp, StatusAlyBnd, 2}}},
		{name: "bind twice in one write", send: bytes.Join([][]byte{mustB(BindParams{SystemID: "a"}.Encode(BindReceiver, 2)), mustB(BindParams{SystemID: "b"}.Encode(BindTransceiver, 3))}, nil),
			want: []want{{BindReceiverResp, StatusOK, 2}, {BindTransceiverResp, StatusAlyBnd, 3}}},
		{name: "submit before bind", send: sub, want: []want{{SubmitSMResp, StatusInvBndSts, 7}}},
		{name: "unbind before bind", send: HeaderOnly(Unbind, StatusOK, 9), want: []want{{UnbindResp, StatusInvBndSts, 9}}},
		{name: "outbind from ESME", send: mustB(NewBuilder(Outbind, StatusOK, 10).CString("x").CString("").Bytes()), want: []want{{GenericNack, StatusInvBndSts, 10}}},
		{name: "deliver_sm from ESME", bind: true, send: mustB(NewBuilder(DeliverSM, StatusOK, 11).CString("").Int(0).Int(0).CString("a").Int(0).Int(0).CString("b").
			Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).ShortMessage(nil).Bytes()), want: []want{{DeliverSMResp, StatusInvBndSts, 11}}},
		{name: "submit on a receiver bind", send: bytes.Join([][]byte{mustB(BindParams{SystemID: "rx"}.Encode(BindReceiver, 1)), sub}, nil),
			want: []want{{BindReceiverResp, StatusOK, 1}, {SubmitSMResp, StatusInvBndSts, 7}}},
		{name: "unbind closes", bind: true, send: HeaderOnly(Unbind, StatusOK, 12), want: []want{{UnbindResp, StatusOK, 12}}, close: true},
		{name: "truncated stream", bind: true, send: sub[:len(sub)-5], close: true},
	}
	addr, srv := runServer(t, Config{MaxPDUSize: 1024}, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			if tc.bind {
				r.bind(BindTransceiver)
			}
			ss := serverSession(t, srv, r.c)
			r.send(tc.send)
			if tc.name == "truncated stream" { // the peer gives up mid-frame: a clean close
				r.c.(*net.TCPConn).CloseWrite()
			}
			for _, w := range tc.want {
				r.expect(w.id, w.st, w.seq)
			}
			if tc.close {
				r.expectClosed(hostileWait)
				select {
				case <-ss.Done():
				case <-time.After(hostileWait):
					t.Fatal("server session not done")
				}
				return
			}
			r.ping(0x100)
			if tc.check != nil {
				tc.check(t, ss)
			}
			if ss.State() == StateClosed {
				t.Fatal("server session closed")
			}
		})
	}
	waitSessions(t, srv, 0) // every client closed: no session left behind
}

// A header claiming 16 MiB against a 64 KiB maximum: generic_nack ESME_RINVCMDLEN and a
// close, and nothing near the claimed size is ever allocated or retained.
func TestHostileHugeCommandLength(t *testing.T) {
	const conns = 200
	addr, srv := runServer(t, Config{}, nil) // MaxPDUSize: DefaultMaxPDUSize (64 KiB + header)
	huge := withLength(submitSM(t, 77, "x"), 16<<20)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// 200 peers that sent only the 4-byte length: their sessions wait for the rest of the
	// header, alive, each holding what a connection costs.
	peers := make([]*rawPeer, conns)
	for i := range peers {
		peers[i] = dialRaw(t, addr)
		peers[i].send(huge[:4])
	}
	waitSessions(t, srv, conns)
	runtime.GC()
	runtime.ReadMemStats(&after)
	live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap with %d sessions waiting on a 16 MiB header: %+d bytes (%d per connection); allocated %d",
		conns, live, live/conns, after.TotalAlloc-before.TotalAlloc)
	if live > conns*256<<10 {
		t.Fatalf("heap grew by %d bytes for %d connections", live, conns)
	}
	// The rest of the header: each gets its generic_nack and is closed.
	for _, r := range peers {
		r.send(huge[4:])
	}
	for _, r := range peers {
		r.expect(GenericNack, StatusInvCmdLen, 77)
		r.expectClosed(hostileWait)
	}
	waitSessions(t, srv, 0)
	// The same again, the whole header at once, one connection after the other.
	for range conns {
		r := dialRaw(t, addr)
		r.send(huge)
		r.expect(GenericNack, StatusInvCmdLen, 77)
		r.expectClosed(hostileWait)
		r.c.Close()
	}
	waitSessions(t, srv, 0)
	runtime.GC()
	runtime.ReadMemStats(&after)
	total := after.TotalAlloc - before.TotalAlloc
	retained := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("after %d connections: allocated %d bytes (%d per connection), retained %+d", 2*conns, total, total/(2*conns), retained)
	if total > 2*conns*512<<10 { // one 16 MiB buffer alone would be 32x this per connection
		t.Fatalf("allocated %d bytes over %d connections", total, 2*conns)
	}
	if retained > 4<<20 {
		t.Fatalf("retained %d bytes after every connection closed", retained)
	}
}

// Slowloris: a peer dribbling a bind one byte every 100 ms is closed by BindTimeout.
func TestHostileSlowlorisBind(t *testing.T) {
	const bindTimeout = 300 * time.Millisecond
	addr, srv := runServer(t, Config{BindTimeout: bindTimeout, ResponseTimeout: 400 * time.Millisecond}, nil)
	bind := mustB(BindParams{SystemID: "slowloris", Password: "password"}.Encode(BindTransmitter, 1))
	start := time.Now()
	r := dialRaw(t, addr)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for i := range bind {
			r.c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := r.c.Write(bind[i : i+1]); err != nil {
				return
			}
			select {
			case <-tk.C:
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	r.expectClosed(3 * time.Second) // a bind_resp would fail here
	el := time.Since(start)
	if el < bindTimeout {
		t.Fatalf("closed after %s, before the %s bind timeout", el, bindTimeout)
	}
	t.Logf("slowloris closed after %s", el)
	waitSessions(t, srv, 0)
}

// A peer that stops reading its responses and keeps sending submits is cut off by
// WriteTimeout; meanwhile another client of the same server is served as usual.
func TestHostileNonReadingPeer(t *testing.T) {
	const writeTimeout = 1500 * time.Millisecond
	addr, srv := runServer(t, Config{WriteTimeout: writeTimeout}, nil)
	// Small socket buffers so that the stall comes after a few hundred responses. The
	// listener's AcceptConn cannot be set once serving, so shrink the server side through
	// its session's connection.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &rawPeer{t: t, c: c, fr: NewFrameReader(c, 0)}
	r.bind(BindTransceiver)
	stalled := serverSession(t, srv, c)
	stalled.conn.(*net.TCPConn).SetWriteBuffer(4096)

	// The other client, bound before the stall.
	other := dialBound(t, addr, BindTransmitter, Config{})

	// Flood submits without ever reading again.
	flood := make(chan error, 1)
	sub := submitSM(t, 1, "flood")
	go func() {
		batch := bytes.Repeat(sub, 64)
		deadline := time.Now().Add(4 * writeTimeout)
		for time.Now().Before(deadline) {
			c.SetWriteDeadline(deadline)
			if _, err := c.Write(batch); err != nil {
				flood <- err
				return
			}
		}
		flood <- nil
	}()
	// The stall: the server session's queue is full and its writer blocked.
	stallDeadline := time.Now().Add(hostileWait)
	for len(stalled.out) < cap(stalled.out) {
		if time.Now().After(stallDeadline) {
			t.Fatalf("no stall: queue %d/%d, counters %+v", len(stalled.out), cap(stalled.out), stalled.Counters())
		}
		select {
		case <-stalled.Done():
			t.Fatalf("stalled session closed before its queue filled: %v", stalled.Err())
		case <-time.After(time.Millisecond):
		}
	}
	stallAt := time.Now()
	// Round trips on the other session while the first one is stuck.
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout/3)
		t0 := time.Now()
		resp, err := other.Request(ctx, mustPDU(t, submitSM(t, 0, "during stall")))
		cancel()
		if err != nil || resp.Status() != StatusOK {
			t.Fatalf("round trip %d during the stall: %v %v", i, resp, err)
		}
		t.Logf("round trip %d during the stall: %s", i, time.Since(t0))
	}
	select {
	case <-stalled.Done():
		t.Fatalf("the stalled session closed before the round trips were done (after %s)", time.Since(stallAt))
	default:
	}
	select {
	case <-stalled.Done():
	case <-time.After(writeTimeout + hostileWait):
		t.Fatal("non-reading peer not cut off")
	}
	t.Logf("non-reading peer cut off %s after the stall: %v", time.Since(stallAt), stalled.Err())
	if !errors.Is(stalled.Err(), os.ErrDeadlineExceeded) {
		t.Fatalf("closed with %v, want a write timeout", stalled.Err())
	}
	c.Close()
	<-flood
	// The other session still works after the cut.
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	if resp, err := other.Request(ctx, mustPDU(t, submitSM(t, 0, "after"))); err != nil || resp.Status() != StatusOK {
		t.Fatalf("after the cut: %v %v", resp, err)
	}
}

// A flood beyond PeerWindow is answered ESME_RTHROTTLED at once; the handler never holds
// more than PeerWindow requests.
func TestHostilePeerWindowFlood(t *testing.T) {
	const window, flood = 5, 200
	var mu sync.Mutex
	var held []*PDU
	addr, srv := runServer(t, Config{PeerWindow: window}, func(s *Session, p *PDU) {
		if p.ID().IsBind() {
			s.AcceptBind(p, StatusOK, "x")
			return
		}
		mu.Lock()
		held = append(held, p)
		mu.Unlock()
	})
	r := dialRaw(t, addr)
	r.bind(BindTransceiver)
	ss := serverSession(t, srv, r.c)
	var all []byte
	for i := range flood {
		all = append(all, submitSM(t, uint32(100+i), "x")...)
	}
	r.send(all)
	for i := window; i < flood; i++ {
		r.expect(SubmitSMResp, StatusThrottled, uint32(100+i))
	}
	mu.Lock()
	n := len(held)
	mu.Unlock()
	if _, peers := ss.InFlight(); n != window || peers != window {
		t.Fatalf("handler holds %d, session counts %d, want %d", n, peers, window)
	}
	if c := ss.Counters(); c.Throttled != flood-window {
		t.Fatalf("throttled %d, want %d", c.Throttled, flood-window)
	}
	mu.Lock()
	for _, p := range held {
		ss.Respond(p, StatusOK, "ok")
	}
	held = nil
	mu.Unlock()
	for i := range window {
		r.expect(SubmitSMResp, StatusOK, uint32(100+i))
	}
	// With the window free again, submits reach the handler.
	r.send(submitSM(t, 500, "x"))
	deadline := time.Now().Add(hostileWait)
	for {
		mu.Lock()
		n := len(held)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("submit after the flood did not reach the handler")
		}
		time.Sleep(time.Millisecond)
	}
}

// MaxConns: the (N+1)th connection is closed at once while the N stay up.
func TestHostileMaxConns(t *testing.T) {
	const n = 3
	srv2 := &Server{MaxConns: n, NewHandler: func(*Session) Handler {
		return HandlerFunc(func(s *Session, p *PDU) { s.AcceptBind(p, StatusOK, "x") })
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv2.Serve(ctx, ln); close(served) }()
	t.Cleanup(func() { // after the peers' cleanups: bound sessions would wait for unbind_resp
		sctx, c := context.WithTimeout(context.Background(), hostileWait)
		defer c()
		srv2.Shutdown(sctx)
		cancel()
		<-served
	})
	addr := ln.Addr().String()
	peers := make([]*rawPeer, n)
	for i := range peers {
		peers[i] = dialRaw(t, addr)
		peers[i].bind(BindTransceiver)
	}
	waitSessions(t, srv2, n)
	extra := dialRaw(t, addr)
	t0 := time.Now()
	extra.expectClosed(time.Second)
	t.Logf("connection %d closed after %s", n+1, time.Since(t0))
	for i, r := range peers {
		r.ping(uint32(10 + i))
	}
	// Freeing a slot admits a new connection.
	peers[0].c.Close()
	waitSessions(t, srv2, n-1)
	again := dialRaw(t, addr)
	again.ping(20)
	waitSessions(t, srv2, n)
}

// Regression: a connection that closes at once must not stay in Server.sessions (its
// OnClose could run before Serve registered it), or MaxConns fills with ghosts.
func TestHostileConnectCloseChurn(t *testing.T) {
	srv := &Server{MaxConns: 4}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(served) }()
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), hostileWait)
		defer c()
		srv.Shutdown(sctx)
		cancel()
		<-served
	}()
	addr := ln.Addr().String()
	stop := make(chan struct{})
	var spin sync.WaitGroup
	// Contention on srv.mu widens the window between NewSession and registration; with a
	// single P the spinners would only starve Serve.
	for range min(4, runtime.GOMAXPROCS(0)-1) {
		spin.Add(1)
		go func() {
			defer spin.Done()
			for {
				select {
				case <-stop:
					return
				default:
					for _, s := range srv.Sessions() {
						select {
						case <-s.Done():
							// registered only after it finished: a ghost (checked below)
						default:
						}
					}
				}
			}
		}()
	}
	for range 1000 {
		c, err := net.DialTimeout("tcp", addr, hostileWait)
		if err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0) // RST: the server's first read fails at once
		c.Close()
	}
	close(stop)
	spin.Wait()
	// Connections still in the accept queue are refused while the churn drains; once it
	// has, a new connection must be served. Ghost entries would refuse it for ever.
	deadline := time.Now().Add(hostileWait)
	for {
		c, err := net.DialTimeout("tcp", addr, hostileWait)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(hostileWait))
		c.Write(HeaderOnly(EnquireLink, StatusOK, 1))
		f, err := NewFrameReader(c, 0).ReadFrame()
		c.Close()
		if err == nil && mustPDU(t, f).ID() == EnquireLinkResp {
			break
		}
		if time.Now().After(deadline) {
			ghosts := 0
			for _, s := range srv.Sessions() {
				select {
				case <-s.Done():
					ghosts++
				default:
				}
			}
			t.Fatalf("new connections refused after the churn: %d sessions registered, %d of them done; read %v", len(srv.Sessions()), ghosts, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitSessions(t, srv, 0)
}

// A peer closing in the middle of everything never leaves a session behind.
func TestHostileAbruptCloses(t *testing.T) {
	addr, srv := runServer(t, Config{}, nil)
	sub := submitSM(t, 3, "x")
	cuts := [][]byte{
		nil,
		{0, 0},
		sub[:10],
		sub[:20],
		append(mustB(BindParams{SystemID: "e"}.Encode(BindTransceiver, 1)), sub[:25]...),
		append(mustB(BindParams{SystemID: "e"}.Encode(BindTransceiver, 1)), bytes.Repeat(sub, 50)...),
	}
	for _, cut := range cuts {
		r := dialRaw(t, addr)
		if len(cut) > 0 {
			r.send(cut)
		}
		r.c.Close()
	}
	waitSessions(t, srv, 0)
}

// A peer that streams the body it announced in a 16 MiB header still gets its generic_nack
// before the close.
func TestHostileHugeCommandLengthWithBody(t *testing.T) {
	addr, _ := runServer(t, Config{}, nil)
	huge := withLength(submitSM(t, 78, "x"), 16<<20)
	for range 20 {
		r := dialRaw(t, addr)
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.c.SetWriteDeadline(time.Now().Add(hostileWait))
			r.c.Write(append(bytes.Clone(huge), make([]byte, 256<<10)...))
		}()
		r.expect(GenericNack, StatusInvCmdLen, 78)
		r.expectClosed(hostileWait)
		r.c.Close()
		<-done
	}
}
