package fakesmsc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
)

// Server is a running fake SMSC.
type Server struct {
	cfg      Config
	log      *zap.Logger
	ln       net.Listener
	noRecord bool

	stop      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	connN  uint64

	ids      ids
	errN     atomic.Uint64 // submits considered for ErrorRate
	jitN     atomic.Uint64 // responses considered for ResponseJitter
	mixCum   [4]int
	mixTotal int

	rec   recorder
	hub   hub
	sched scheduler
	st    counters
}

type counters struct {
	binds, submits, responses, errors, throttled  atomic.Int64
	dlrsSent, dlrsAcked, dlrsPending, dlrsDropped atomic.Int64
	mosSent, conns, accepted                      atomic.Int64
}

// Start listens on cfg.Addr and serves until Close or until ctx is cancelled. It returns once
// the listener is ready.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		noRecord: cfg.NoRecord,
		stop:     make(chan struct{}),
		conns:    make(map[*conn]struct{}),
	}
	s.mixCum, s.mixTotal, _ = mixTable(cfg.DLRStatusMix)
	s.initIDs()
	s.initHub()
	s.sched.wake = make(chan struct{}, 1)
	if err := s.initRecorder(); err != nil {
		return nil, err
	}
	s.noRecord = cfg.NoRecord && s.rec.file == nil
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		s.rec.close()
		return nil, fmt.Errorf("fakesmsc: listen: %w", err)
	}
	s.ln = ln
	s.wg.Add(3)
	go s.acceptLoop()
	go s.runHub()
	go s.runScheduler()
	if ctx != nil && ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				s.Close()
			case <-s.stop:
			}
		}()
	}
	s.log.Info("fakesmsc: listening", zap.String("addr", ln.Addr().String()))
	return s, nil
}

// Addr returns the listen address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			var ne net.Error
			if (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("fakesmsc: accept", zap.Error(err), zap.Duration("retry_in", backoff))
				select {
				case <-time.After(backoff):
					continue
				case <-s.stop:
					return
				}
			}
			s.log.Error("fakesmsc: accept failed, no longer listening", zap.Error(err))
			return
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.connN++
		c := newConn(s, s.connN, nc)
		s.conns[c] = struct{}{}
		s.wg.Add(2)
		s.mu.Unlock()
		s.st.conns.Add(1)
		s.st.accepted.Add(1)
		go c.readLoop()
		go c.writeLoop()
	}
}

// forget removes a closed connection.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	_, ok := s.conns[c]
	delete(s.conns, c)
	s.mu.Unlock()
	if ok {
		s.st.conns.Add(-1)
	}
}

func (s *Server) connList() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Close closes the listener and every connection and waits for all goroutines. Receipts not
// yet delivered are lost with the server. Calling it again returns the first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		err := s.ln.Close()
		for _, c := range s.connList() {
			c.close()
		}
		s.wg.Wait()
		if rerr := s.rec.close(); err == nil {
			err = rerr
		}
		s.closeErr = err
		s.log.Info("fakesmsc: closed")
	})
	return s.closeErr
}

// DropConnections closes every client connection abruptly (TCP reset, nothing flushed). The
// server keeps listening; receipts in flight are queued again.
func (s *Server) DropConnections() {
	for _, c := range s.connList() {
		if tc, ok := c.nc.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.close()
	}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Binds:       s.st.binds.Load(),
		Submits:     s.st.submits.Load(),
		Responses:   s.st.responses.Load(),
		Errors:      s.st.errors.Load(),
		Throttled:   s.st.throttled.Load(),
		DLRsSent:    s.st.dlrsSent.Load(),
		DLRsAcked:   s.st.dlrsAcked.Load(),
		DLRsPending: s.st.dlrsPending.Load(),
		DLRsDropped: s.st.dlrsDropped.Load(),
		MOsSent:     s.st.mosSent.Load(),
		Conns:       s.st.conns.Load(),
		Accepted:    s.st.accepted.Load(),
	}
}

// MessageState returns the message_state query_sm would answer for id: ENROUTE (1) until the
// receipt is generated, then its state (DELIVRD 2, EXPIRED 3, UNDELIV 5, REJECTD 8); for a
// message without receipt, its final state at once. ok is false for an id this server did not
// issue or has forgotten (it remembers the last 262144 ids).
func (s *Server) MessageState(id string) (state byte, ok bool) {
	n, ok := s.ids.parse(id)
	if !ok {
		return 0, false
	}
	return s.ids.state(n)
}

// SendMO sends a mobile-originated deliver_sm (esm_class 0) to a receiver or transceiver bound
// with systemID (round-robin), and waits for its deliver_sm_resp. A non-zero response status
// is returned as the error (an smpp.Status). A text longer than 254 octets goes in
// message_payload. ErrNoReceiver when none is bound.
func (s *Server) SendMO(ctx context.Context, systemID, src, dst string, dataCoding byte, text []byte, tlvs ...smpp.TLV) error {
	frame, err := moFrame(src, dst, dataCoding, text, tlvs)
	if err != nil {
		return fmt.Errorf("fakesmsc: MO: %w", err)
	}
	select {
	case <-s.stop:
		return ErrClosed
	default:
	}
	h := &s.hub
	h.mu.Lock()
	var c *conn
	if rs := h.rx[systemID]; rs != nil && len(rs.conns) > 0 {
		c = rs.conns[rs.next%len(rs.conns)]
		rs.next++
	}
	h.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%w for system_id %q", ErrNoReceiver, systemID)
	}
	ch := make(chan smpp.Status, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("fakesmsc: MO: connection %d closed", c.id)
	}
	seq := c.nextSeqLocked()
	c.inflight[seq] = pend{mo: ch, sent: time.Now()}
	c.mu.Unlock()
	putSeq(frame, seq)
	forget := func() {
		c.mu.Lock()
		delete(c.inflight, seq)
		c.mu.Unlock()
	}
	s.st.mosSent.Add(1) // counted first: whoever reads the MO sees it counted
	select {
	case c.out <- frame:
	case <-c.done:
		s.st.mosSent.Add(-1)
		return fmt.Errorf("fakesmsc: MO: connection %d closed", c.id)
	case <-ctx.Done():
		s.st.mosSent.Add(-1)
		forget()
		return ctx.Err()
	}
	select {
	case st := <-ch:
		if st != smpp.StatusOK {
			return st
		}
		return nil
	case <-c.done:
		select {
		case st := <-ch:
			if st != smpp.StatusOK {
				return st
			}
			return nil
		default:
		}
		return fmt.Errorf("fakesmsc: MO: connection %d closed before deliver_sm_resp", c.id)
	case <-ctx.Done():
		forget()
		return ctx.Err()
	}
}
