package smpp

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// stuckWriter dials a bound client whose writer can be held (its Trace hook blocks on a
// written frame while hold is set) and returns it with a function filling its send queue
// (and, with spill, the spill too) to the brim behind the held writer. Holding the writer in Trace makes "the peer is not
// reading" deterministic: nothing drains the queue.
func stuckWriter(t *testing.T, global *InFlightLimit) (s *Session, fill func(spill bool), release func()) {
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
	fill = func(spill bool) {
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
				s.queued.Add(1) // as write does
			default:
			}
		}
		if n, c := s.Queued(); n != c {
			t.Fatalf("queue %d/%d", n, c)
		}
		if spill {
			s.spillMu.Lock()
			for len(s.spill) < s.spillMax() {
				s.spill = append(s.spill, HeaderOnly(EnquireLinkResp, StatusOK, 1))
				s.queued.Add(1)
			}
			s.spillN.Store(int32(len(s.spill)))
			s.spillMu.Unlock()
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

// TrySend never waits for queue room: with the queue and the spill full it closes the session, returns
// ErrQueueFull (an ErrClosed), releases the window slot and never calls the handler (the
// caller answers for the request, so a handler call too would be a second answer).
func TestTrySendQueueFullClosesWithoutAnswer(t *testing.T) {
	s, fill, release := stuckWriter(t, nil)
	fill(true)
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
	fill(true)
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

// A full send queue alone is a writer that has not caught up yet (a burst, a process short
// of CPU), not a peer that stopped reading: writes that must not wait go to the spill, the
// session stays up, and once the writer runs every frame is written, the spilled ones too.
func TestTryWriteSpillsWhenQueueFull(t *testing.T) {
	s, fill, release := stuckWriter(t, nil)
	fill(false)
	queued, _ := s.Queued()
	before := s.Counters().TxPDUs
	const n = 50
	s.peerOutstanding.Add(n)
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if i%2 == 0 {
				if err := s.TryWriteResponse(HeaderOnly(DeliverSMResp, StatusOK, uint32(i+1))); err != nil {
					done <- err
					return
				}
				continue
			}
			if err := s.TrySend(mustPDU(t, submitSM(t, 0, "x")), make(chanHandler, 1), Ref{}); err != nil && !errors.Is(err, ErrWindowTimeout) {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a write with the queue full but the spill not: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a write that must not wait waited")
	}
	s.spillMu.Lock()
	spilled := len(s.spill)
	s.spillMu.Unlock()
	if spilled == 0 || s.State() == StateClosed {
		t.Fatalf("spilled %d, state %s: want frames in the spill and the session up", spilled, s.State())
	}
	release()
	// The queue and the spill are all written (the held frame was counted before it was held).
	want := before + uint64(queued) + uint64(spilled)
	deadline := time.Now().Add(5 * time.Second)
	for s.Counters().TxPDUs < want {
		if time.Now().After(deadline) {
			t.Fatalf("written %d frames, want %d (%d queued + %d spilled)", s.Counters().TxPDUs-before, want-before, queued, spilled)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s.State() == StateClosed || s.Counters().QueueOverflows != 0 {
		t.Fatalf("state %s, %d overflows after a spill that was drained", s.State(), s.Counters().QueueOverflows)
	}
}

// A writer that writes nothing for a second while its queue stays full is stuck on a peer
// that does not read: the next write that must not wait closes the session, spill or not.
func TestTryWriteStuckWriterCloses(t *testing.T) {
	s, fill, release := stuckWriter(t, nil)
	defer release()
	fill(false)
	s.peerOutstanding.Add(2)
	if err := s.TryWriteResponse(HeaderOnly(DeliverSMResp, StatusOK, 1)); err != nil {
		t.Fatalf("first write on a full queue: %v, want it spilled", err)
	}
	time.Sleep(s.stallAfter() + 100*time.Millisecond) // the criterion is time without progress
	if err := s.TryWriteResponse(HeaderOnly(DeliverSMResp, StatusOK, 2)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("write after %s without progress: %v, want ErrQueueFull", s.stallAfter(), err)
	}
	if s.State() != StateClosed || s.Counters().QueueOverflows != 1 {
		t.Fatalf("state %s, %d overflows", s.State(), s.Counters().QueueOverflows)
	}
}
