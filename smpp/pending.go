package smpp

// pendingTable holds a session's requests awaiting their responses, indexed by sequence
// number: the slot of seq is seq & mask, in a table of at least twice the window. A
// sequence number whose slot is taken (a request still unanswered a whole table of
// requests later) is skipped by the sender, so look-ups never probe. It replaces a map:
// no hashing, no growth, one slot written per request; and it is allocated at the first
// request, so a session that never sends one (most ESME sessions) holds nothing. Not safe
// for concurrent use: the session guards it with its mutex.
type pendingTable struct {
	slots []pendingSlot
	n     int // slots in use
	size  int // table size once allocated: a power of two >= 2 × window
}

type pendingSlot struct {
	seq  uint32
	used bool
	p    pending
}

// newPendingTable returns a table for a window of window requests (allocated on first use).
func newPendingTable(window int) pendingTable {
	size := 16
	for size < 2*window {
		size <<= 1
	}
	return pendingTable{size: size}
}

// free reports whether seq can be registered: its slot is not in use.
func (t *pendingTable) free(seq uint32) bool {
	if t.slots == nil {
		return true
	}
	return !t.slots[int(seq)&(len(t.slots)-1)].used
}

// put registers p under seq, whose slot must be free.
func (t *pendingTable) put(seq uint32, p pending) {
	if t.slots == nil {
		t.slots = make([]pendingSlot, t.size)
	}
	sl := &t.slots[int(seq)&(len(t.slots)-1)]
	*sl = pendingSlot{seq: seq, used: true, p: p}
	t.n++
}

// take removes and returns the request registered under seq.
func (t *pendingTable) take(seq uint32) (pending, bool) {
	if t.slots == nil {
		return pending{}, false
	}
	sl := &t.slots[int(seq)&(len(t.slots)-1)]
	if !sl.used || sl.seq != seq {
		return pending{}, false
	}
	p := sl.p
	*sl = pendingSlot{}
	t.n--
	return p, true
}

// len is the number of requests registered.
func (t *pendingTable) len() int { return t.n }

// takeIf removes and appends to out every request for which f is true, in table order.
func (t *pendingTable) takeIf(out []pending, f func(*pending) bool) []pending {
	if t.n == 0 {
		return out
	}
	for i := range t.slots {
		sl := &t.slots[i]
		if sl.used && f(&sl.p) {
			out = append(out, sl.p)
			*sl = pendingSlot{}
			t.n--
		}
	}
	return out
}
