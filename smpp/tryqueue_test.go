package smpp

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// stuckWriter dials a bound client whose writer can be held (its Trace hook blocks on a
// written frame while hold is set) and returns it with a function filling its send queue
// to the brim behind the held writer. Holding the writer in Trace makes "the peer is not
// reading" deterministic: nothing drains the queue.
func stuckWriter(t *testing.T, global *InFlightLimit) (s *Session, fill func(), release func()) {
	t.Helper()
	addr, _ := runServer(t, Config{}, nil)
	var hold atomic.Bool
	held := make(chan struct{}, 1)
	rel := make(chan struct{})
	cfg := Config{Window: 4, EnquireLinkInterval: -1, Global: global, Trace: func(_ *Session, rx bool, _ []byte) {
		if !rx && hold.Load() {
			select {
			case held <- struct{}{}:
			default:
			}
			<-rel
		}
	}}
	s = dialBound(t, addr, BindTransceiver, cfg)
	fill = func() {
		hold.Store(true)
		if err := s.write(HeaderOnly(EnquireLinkResp, StatusOK, 1)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-held:
		case <-time.After(5 * time.Second):
			t.Fatal("writer not held")
		}
		for range cap(s.out) {
			select {
			case s.out <- HeaderOnly(EnquireLinkResp, StatusOK, 1):
			default:
			}
		}
		if n, c := s.Queued(); n != c {
			t.Fatalf("queue %d/%d", n, c)
		}
	}
	var once atomic.Bool
	release = func() {
		if once.CompareAndSwap(false, true) {
			close(rel)
		}
	}
	t.Cleanup(release)
	return s, fill, release
}

// TrySend never waits for queue room: with the queue full it closes the session, returns
// ErrQueueFull (an ErrClosed), releases the window slot and never calls the handler (the
// caller answers for the request, so a handler call too would be a second answer).
func TestTrySendQueueFullClosesWithoutAnswer(t *testing.T) {
	s, fill, release := stuckWriter(t, nil)
	fill()
	h := make(chanHandler, 1)
	returned := make(chan error, 1)
	go func() { returned <- s.TrySend(mustPDU(t, submitSM(t, 0, "x")), h, Ref{}) }()
	var err error
	select {
	case err = <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("TrySend waited for queue room")
	}
	if !errors.Is(err, ErrQueueFull) || !errors.Is(err, ErrClosed) {
		t.Fatalf("TrySend: %v, want ErrQueueFull", err)
	}
	if ours, _ := s.InFlight(); ours != 0 {
		t.Fatalf("%d window slots held after a withdrawn request", ours)
	}
	if err := s.TryWriteResponse(HeaderOnly(DeliverSMResp, StatusOK, 9)); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryWriteResponse after the close: %v", err)
	}
	release()
	<-s.Done()
	select {
	case r := <-h:
		t.Fatalf("the handler of a failed TrySend was called: %v %v", r.p, r.err)
	default:
	}
	if !errors.Is(s.Err(), ErrQueueFull) || s.Counters().QueueOverflows != 1 {
		t.Fatalf("closed with %v, %d overflows", s.Err(), s.Counters().QueueOverflows)
	}
}

// TryWriteResponse never waits either, and the response still leaves the peer's window
// (and the shared Global limit) whether it was queued or the session closed.
func TestTryWriteResponseQueueFull(t *testing.T) {
	global := &InFlightLimit{Max: 10}
	s, fill, release := stuckWriter(t, global)
	// Two requests of the peer admitted (as handleRequest does).
	s.peerOutstanding.Add(2)
	global.n.Add(2)
	if err := s.TryWriteResponse(HeaderOnly(DeliverSMResp, StatusOK, 1)); err != nil {
		t.Fatalf("with room: %v", err)
	}
	fill()
	returned := make(chan error, 1)
	go func() { returned <- s.TryWriteResponse(HeaderOnly(DeliverSMResp, StatusOK, 2)) }()
	select {
	case err := <-returned:
		if !errors.Is(err, ErrQueueFull) {
			t.Fatalf("queue full: %v, want ErrQueueFull", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("TryWriteResponse waited for queue room")
	}
	if _, peers := s.InFlight(); peers != 0 || global.InFlight() != 0 {
		t.Fatalf("peer window %d, global %d after both responses", peers, global.InFlight())
	}
	release()
	<-s.Done()
	if global.InFlight() != 0 {
		t.Fatalf("global %d after close", global.InFlight())
	}
}
