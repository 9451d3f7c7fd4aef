package smpp

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// CloseFlushed writes every frame queued before it, then closes cleanly (Close would drop
// them). The writer is held in its Trace hook while the frames and the close are queued,
// so the order is deterministic.
func TestCloseFlushedWritesQueued(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fr := NewFrameReader(c, 0)
		f, err := fr.ReadFrame()
		if err != nil {
			got <- -1
			return
		}
		bind, _ := Parse(f)
		c.Write(mustB(BindResponse(bind, StatusOK, "smsc")))
		n := 0
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				got <- n // io.EOF once the session closed
				return
			}
			if p, err := Parse(f); err == nil && p.ID() == GenericNack {
				n++
			}
		}
	}()
	var hold atomic.Bool
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	cfg := Config{EnquireLinkInterval: -1, Trace: func(_ *Session, rx bool, _ []byte) {
		if !rx && hold.Load() {
			select {
			case held <- struct{}{}:
			default:
			}
			<-release
		}
	}}
	s := dialBound(t, ln.Addr().String(), BindTransceiver, cfg)
	hold.Store(true)
	const n = 10
	for i := range n {
		if err := s.write(HeaderOnly(GenericNack, StatusSysErr, uint32(i+1))); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			select {
			case <-held:
			case <-time.After(5 * time.Second):
				t.Fatal("writer not held")
			}
		}
	}
	closed := make(chan struct{})
	go func() { s.CloseFlushed(); close(closed) }()
	deadline := time.Now().Add(5 * time.Second)
	for q, _ := s.Queued(); q != n; q, _ = s.Queued() { // n-1 frames and the close marker
		if time.Now().After(deadline) {
			t.Fatalf("close not queued: %d queued", q)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("CloseFlushed did not return")
	}
	if c := <-got; c != n {
		t.Fatalf("peer got %d of the %d frames queued before the close", c, n)
	}
	if !errors.Is(s.Err(), io.EOF) {
		t.Fatalf("closed with %v, want a clean close", s.Err())
	}
}
