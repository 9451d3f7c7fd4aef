package smpp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Server accepts ESME connections and runs a session (SideSMSC) for each. The zero value
// plus NewHandler is usable; Serve until ctx is done or Shutdown.
type Server struct {
	// NewHandler returns the handler for a new session (called before the session reads).
	NewHandler func(s *Session) Handler
	// Session configures each session.
	Session Config
	// MaxConns bounds concurrent connections; beyond it a new connection is closed at once.
	// Default 10000.
	MaxConns int
	// AcceptConn, if set, may refuse a connection before any byte is read.
	AcceptConn func(c net.Conn) bool
	// Logger; default zap.NewNop().
	Logger *zap.Logger

	refused atomic.Uint64 // connections closed at once: MaxConns were open

	mu       sync.Mutex
	sessions map[*Session]struct{}
	accepted uint32 // sessions started, numbering them for Link affinity (under mu)
	ln       net.Listener
	wg       sync.WaitGroup
	closed   bool
}

// Serve accepts connections on ln until ctx is done or Shutdown is called. It closes ln.
func (srv *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := srv.Logger
	if log == nil {
		log = zap.NewNop()
	}
	max := srv.MaxConns
	if max <= 0 {
		max = 10000
	}
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	srv.ln = ln
	if srv.sessions == nil {
		srv.sessions = make(map[*Session]struct{})
	}
	srv.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || srv.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Temporary accept failure (EMFILE...): back off like net/http.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			log.Warn("smpp: accept failed; retrying", zap.Error(err), zap.Duration("delay", delay))
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
		if srv.AcceptConn != nil && !srv.AcceptConn(c) {
			c.Close()
			continue
		}
		srv.mu.Lock()
		if srv.closed || len(srv.sessions) >= max {
			n, closed := len(srv.sessions), srv.closed
			srv.mu.Unlock()
			if closed {
				c.Close()
				continue
			}
			srv.refused.Add(1)
			log.Warn("smpp: connection refused: limit reached", zap.Int("max_connections", max), zap.Int("open", n), zap.Stringer("peer", c.RemoteAddr()))
			c.Close()
			continue
		}
		srv.wg.Add(1)
		srv.mu.Unlock()
		srv.start(c, log)
	}
}

func (srv *Server) start(c net.Conn, log *zap.Logger) {
	cfg := srv.Session
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	userClose := cfg.OnClose
	cfg.OnClose = func(s *Session, err error) {
		if userClose != nil {
			userClose(s, err)
		}
		srv.mu.Lock()
		delete(srv.sessions, s)
		srv.mu.Unlock()
		srv.wg.Done()
	}
	// The handler must exist before the reader starts: build the session in two steps.
	var h lateHandler
	s := NewSession(c, SideSMSC, &h, cfg)
	srv.mu.Lock()
	srv.accepted++
	s.affinity = srv.accepted
	// A peer that hangs up at once can close the session, and run OnClose's delete, before
	// this line: registering it then would leave a ghost counting against MaxConns for ever.
	// OnClose runs only after closing is closed, so checking it under mu is race-free.
	select {
	case <-s.closing:
	default:
		srv.sessions[s] = struct{}{}
	}
	srv.mu.Unlock()
	if srv.NewHandler != nil {
		h.set(srv.NewHandler(s))
	} else {
		h.set(nil)
	}
}

// lateHandler lets a session start before its handler is known; PDUs wait for it. Once
// set, a PDU costs one atomic load (no lock, no channel).
type lateHandler struct {
	once  sync.Once
	ready chan struct{}
	h     atomic.Pointer[handlerBox]
}

// handlerBox holds a Handler (nil included) for an atomic.Pointer.
type handlerBox struct{ h Handler }

func (l *lateHandler) init() { l.once.Do(func() { l.ready = make(chan struct{}) }) }

func (l *lateHandler) set(h Handler) {
	l.init()
	l.h.Store(&handlerBox{h})
	close(l.ready)
}

func (l *lateHandler) ServePDU(s *Session, p *PDU) {
	hb := l.h.Load()
	if hb == nil {
		l.init()
		<-l.ready
		hb = l.h.Load()
	}
	if hb.h == nil {
		if p.ID().HasResponse() {
			s.WriteResponse(HeaderOnly(p.ID().Response(), StatusSysErr, p.Seq()))
		}
		return
	}
	hb.h.ServePDU(s, p)
}

// ListenAndServe listens on addr and serves. notify, if set, is called with the bound
// address once the listener is ready.
func (srv *Server) ListenAndServe(ctx context.Context, addr string, notify func(net.Addr)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smpp: listen %s: %w", addr, err)
	}
	if notify != nil {
		notify(ln.Addr())
	}
	return srv.Serve(ctx, ln)
}

// Refused counts the connections closed at once because MaxConns connections were open.
func (srv *Server) Refused() uint64 { return srv.refused.Load() }

// Conns returns the number of open connections (bound or not).
func (srv *Server) Conns() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

func (srv *Server) isClosed() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closed
}

// Sessions returns the open sessions.
func (srv *Server) Sessions() []*Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := make([]*Session, 0, len(srv.sessions))
	for s := range srv.sessions {
		out = append(out, s)
	}
	return out
}

// Shutdown stops accepting, unbinds every session (each waits for its unbind_resp) and
// waits until all are closed or ctx is done, then closes the rest.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.closed = true
	if srv.ln != nil {
		srv.ln.Close()
	}
	sessions := make([]*Session, 0, len(srv.sessions))
	for s := range srv.sessions {
		sessions = append(sessions, s)
	}
	srv.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.State().Bound() {
				s.Unbind(ctx)
			} else {
				s.Close()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); srv.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, s := range srv.Sessions() {
			s.closeWith(ErrClosed)
		}
		<-done
		return ctx.Err()
	}
}
