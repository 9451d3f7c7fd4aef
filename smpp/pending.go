package smpp

// pendingTable holds a session's requests awaiting their responses, indexed by sequence
// number: the slot of seq is seq & mask. A sequence number whose slot is taken (a request
// still unanswered a whole table of requests later) is skipped by the sender, so look-ups
// never probe. It replaces a map: no hashing, one slot written per request. It starts at
// 16 slots when the first request is registered (an ESME session's keepalive enquire_link,
// say) and doubles whenever more than half the slots are in use, up to twice the window
// rounded up to a power of two, so a busy bind gets a table of ~2 × window slots and a
// quiet session keeps a small one. Not safe for concurrent use: the session guards it with
// its mutex.
type pendingTable struct {
	slots []pendingSlot
	n     int // slots in use
	max   int // the largest table: a power of two >= 2 × window
}

type pendingSlot struct {
	seq  uint32
	used bool
	p    pending
}

// minPendingSlots is a table's first size.
const minPendingSlots = 16

// newPendingTable returns a table for a window of window requests (allocated on first use).
func newPendingTable(window int) pendingTable {
	size := minPendingSlots
	for size < 2*window {
		size <<= 1
	}
	return pendingTable{max: size}
}

// free reports whether seq can be registered: its slot is not in use.
func (t *pendingTable) free(seq uint32) bool {
	if t.slots == nil {
		return true
	}
	return !t.slots[int(seq)&(len(t.slots)-1)].used
}

// put registers p under seq, whose slot must be free (free(seq) reported true, and nothing
// was put since). Growing keeps every slot distinct: entries whose low bits differ still
// differ with more bits, and seq's slot was free in the smaller table.
func (t *pendingTable) put(seq uint32, p pending) {
	if t.slots == nil {
		t.slots = make([]pendingSlot, min(minPendingSlots, t.max))
	} else if 2*(t.n+1) > len(t.slots) && len(t.slots) < t.max {
		t.grow()
	}
	sl := &t.slots[int(seq)&(len(t.slots)-1)]
	*sl = pendingSlot{seq: seq, used: true, p: p}
	t.n++
}

// grow doubles the table.
func (t *pendingTable) grow() {
	old := t.slots
	t.slots = make([]pendingSlot, 2*len(old))
	for i := range old {
		if old[i].used {
			t.slots[int(old[i].seq)&(len(t.slots)-1)] = old[i]
		}
	}
}

// at returns seq's slot if it holds seq's request, else nil.
func (t *pendingTable) at(seq uint32) *pendingSlot {
	if t.slots == nil {
		return nil
	}
	if sl := &t.slots[int(seq)&(len(t.slots)-1)]; sl.used && sl.seq == seq {
		return sl
	}
	return nil
}

// peek returns the request registered under seq, leaving it there.
func (t *pendingTable) peek(seq uint32) (pending, bool) {
	if sl := t.at(seq); sl != nil {
		return sl.p, true
	}
	return pending{}, false
}

// take removes and returns the request registered under seq.
func (t *pendingTable) take(seq uint32) (pending, bool) {
	sl := t.at(seq)
	if sl == nil {
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
