package smpp

import (
	"sync/atomic"
	"testing"
	"time"
)

// The pending table registers, finds and removes requests by sequence number; a slot still
// in use makes its sequence number skipped (freeSeq), so an old unanswered request is never
// overwritten; nothing is allocated before the first request.
func TestPendingTable(t *testing.T) {
	tab := newPendingTable(4) // 16 slots
	if tab.slots != nil || !tab.free(1) {
		t.Fatal("allocated before the first request")
	}
	steps := []struct {
		op   string
		seq  uint32
		want bool // put: slot was free; take: found
	}{
		{"put", 1, true},
		{"put", 2, true},
		{"put", 17, false}, // same slot as 1, still in use
		{"take", 17, false},
		{"take", 3, false},
		{"take", 1, true},
		{"take", 1, false}, // taken once
		{"put", 17, true},  // slot of 1 free again
		{"take", 1, false}, // 1 is not 17
		{"take", 17, true},
	}
	for i, st := range steps {
		switch st.op {
		case "put":
			free := tab.free(st.seq)
			if free != st.want {
				t.Fatalf("step %d: free(%d) = %v", i, st.seq, free)
			}
			if free {
				tab.put(st.seq, pending{id: SubmitSM, deadline: int64(st.seq)})
			}
		case "take":
			p, ok := tab.take(st.seq)
			if ok != st.want || (ok && p.deadline != int64(st.seq)) {
				t.Fatalf("step %d: take(%d) = %+v, %v", i, st.seq, p, ok)
			}
		}
	}
	if tab.len() != 1 {
		t.Fatalf("%d registered, want 1 (seq 2)", tab.len())
	}
	for _, seq := range []uint32{5, 6, 7} {
		tab.put(seq, pending{deadline: int64(seq)})
	}
	got := tab.takeIf(nil, func(p *pending) bool { return p.deadline >= 6 })
	if len(got) != 2 || tab.len() != 2 {
		t.Fatalf("takeIf took %d, %d left", len(got), tab.len())
	}
}

// A session never reuses the sequence number of a request still unanswered, even after a
// whole table of others: freeSeq skips it.
func TestFreeSeqSkipsUnanswered(t *testing.T) {
	s := &Session{pending: newPendingTable(4)} // 16 slots
	s.mu.Lock()
	defer s.mu.Unlock()
	stuck := s.freeSeq()
	s.pending.put(stuck, pending{id: SubmitSM})
	for range 100 {
		seq := s.freeSeq()
		if seq == stuck || int(seq)&15 == int(stuck)&15 {
			t.Fatalf("sequence number %d shares the slot of unanswered %d", seq, stuck)
		}
		s.pending.put(seq, pending{id: SubmitSM})
		if _, ok := s.pending.take(seq); !ok {
			t.Fatal("lost")
		}
	}
	if _, ok := s.pending.take(stuck); !ok {
		t.Fatal("the unanswered request was overwritten")
	}
}

// A table starts small (a quiet session's keepalive needs one slot) and doubles while more
// than half its slots are in use, up to twice the window; every request survives a growth.
func TestPendingTableGrows(t *testing.T) {
	tab := newPendingTable(100) // up to 256 slots
	for seq := uint32(1); seq <= 100; seq++ {
		if !tab.free(seq) {
			t.Fatalf("seq %d not free", seq)
		}
		tab.put(seq, pending{deadline: int64(seq)})
		want := minPendingSlots
		for 2*int(seq) > want {
			want *= 2
		}
		if len(tab.slots) != want {
			t.Fatalf("%d in flight: %d slots, want %d", seq, len(tab.slots), want)
		}
	}
	for seq := uint32(1); seq <= 100; seq++ {
		if p, ok := tab.take(seq); !ok || p.deadline != int64(seq) {
			t.Fatalf("seq %d lost in a growth", seq)
		}
	}
	small := newPendingTable(100)
	small.put(7, pending{})
	if len(small.slots) != minPendingSlots {
		t.Fatalf("one request: %d slots, want %d", len(small.slots), minPendingSlots)
	}
}

// WaitIdle ends when nothing is in flight on two ticks in a row, at its timeout, or when
// stopped, whichever comes first.
func TestWaitIdle(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	var calls atomic.Int32
	cases := []struct {
		name     string
		stop     <-chan struct{}
		timeout  time.Duration
		inFlight func() int
		want     IdleResult
	}{
		{"idle", nil, 5 * time.Second, func() int { return 0 }, Idle},
		{"busy then idle", nil, 5 * time.Second, func() int {
			if calls.Add(1) < 3 {
				return 1
			}
			return 0
		}, Idle},
		{"never idle", nil, 100 * time.Millisecond, func() int { return 1 }, IdleTimedOut},
		{"stopped", closed, 5 * time.Second, func() int { return 1 }, IdleStopped},
	}
	for _, c := range cases {
		if got := WaitIdle(c.stop, c.timeout, c.inFlight); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if calls.Load() < 4 {
		t.Errorf("busy then idle: idle after %d looks, want two idle looks after two busy ones", calls.Load())
	}
}
