package interceptor

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors Add returns; the part was not taken and the caller decides it on its own.
var (
	// ErrDuplicatePart: the group already holds a part with this sequence number.
	ErrDuplicatePart = errors.New("interceptor: reassembly: duplicate part")
	// ErrTooManyGroups: MaxGroups incomplete messages are already held.
	ErrTooManyGroups = errors.New("interceptor: reassembly: too many incomplete messages held")
	// ErrInvalidPart: Total outside 1..255, Seq outside 1..Total, or a Total that differs from
	// the one of the group's earlier parts.
	ErrInvalidPart = errors.New("interceptor: reassembly: invalid part")
	// ErrReassemblerClosed: Add after Close.
	ErrReassemblerClosed = errors.New("interceptor: reassembly: closed")
)

// maxParts is the most parts a concatenated message can have (8-bit total).
const maxParts = 255

// GroupPart is one held part of a concatenated message.
type GroupPart struct {
	Seq  int
	Text string
	// Value is the caller's handle for the held request.
	Value any
}

// Group is a concatenated message being (or having been) reassembled.
type Group struct {
	Key   string
	Total int
	// Parts are the parts present, in Seq order.
	Parts []GroupPart
	// Complete: all Total parts are present.
	Complete bool
}

// Text returns the parts' texts joined in Seq order; missing parts are simply absent.
func (g *Group) Text() string {
	n := 0
	for _, p := range g.Parts {
		n += len(p.Text)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, p := range g.Parts {
		sb.WriteString(p.Text)
	}
	return sb.String()
}

// ReassemblyConfig configures a Reassembler.
type ReassemblyConfig struct {
	// Timeout is how long a message's parts are held, counted from its first part. Default 5s.
	Timeout time.Duration
	// MaxGroups bounds the incomplete messages held; beyond it Add returns ErrTooManyGroups.
	// Default 100000.
	MaxGroups int
	// Now is the clock deadlines are computed and checked with. Default time.Now.
	Now func() time.Time
}

// Reassembler holds the parts of concatenated messages until all have arrived or Timeout
// has passed since the first, so that all parts get one decision on the whole text. It is
// safe for concurrent use. Memory is bounded by MaxGroups × 255 parts.
type Reassembler struct {
	cfg       ReassemblyConfig
	onTimeout func(*Group)

	mu     sync.Mutex
	groups map[string]*heldGroup
	// head/tail: the held groups in order of arrival of their first part, which is the order
	// of their deadlines as long as the clock does not go backwards.
	head, tail *heldGroup
	closed     bool

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// heldGroup is a group in the Reassembler, on its deadline list.
type heldGroup struct {
	g          Group
	deadline   time.Time
	prev, next *heldGroup
}

// NewReassembler starts a Reassembler and its one sweeper goroutine. onTimeout is called,
// from the sweeper goroutine and outside any lock, with each group whose Timeout passed
// before it was complete; the group has been removed. A nil onTimeout drops such groups.
// Close stops the sweeper.
func NewReassembler(cfg ReassemblyConfig, onTimeout func(*Group)) *Reassembler {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Reassembler{cfg: cfg, onTimeout: onTimeout, groups: map[string]*heldGroup{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go r.sweeper(sweepInterval(cfg.Timeout))
	return r
}

// sweepInterval is how often the sweeper looks for expired groups: a tenth of the timeout,
// within [1ms, 500ms]. A group is answered at most that much after its deadline.
func sweepInterval(timeout time.Duration) time.Duration {
	return min(max(timeout/10, time.Millisecond), 500*time.Millisecond)
}

func (r *Reassembler) sweeper(every time.Duration) {
	defer close(r.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.sweep()
		}
	}
}

// stopSweeper stops the sweeper goroutine and waits for it.
func (r *Reassembler) stopSweeper() {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
}

// sweep removes the groups whose deadline has passed and hands them to onTimeout.
func (r *Reassembler) sweep() {
	now := r.cfg.Now()
	var expired []*Group
	r.mu.Lock()
	for h := r.head; h != nil && !now.Before(h.deadline); h = r.head {
		r.remove(h)
		expired = append(expired, &h.g)
	}
	r.mu.Unlock()
	if r.onTimeout == nil {
		return
	}
	for _, g := range expired {
		r.onTimeout(g)
	}
}

// remove unlinks h and forgets its key. r.mu must be held.
func (r *Reassembler) remove(h *heldGroup) {
	delete(r.groups, h.g.Key)
	if h.prev != nil {
		h.prev.next = h.next
	} else {
		r.head = h.next
	}
	if h.next != nil {
		h.next.prev = h.prev
	} else {
		r.tail = h.prev
	}
	h.prev, h.next = nil, nil
}

// Add holds one part, with text its decoded text and v the caller's handle for it. key
// identifies the message (build it with GroupKey). Parts may arrive in any order.
//
// When the part completes its message, the group is removed and returned with complete set
// (and Group.Complete). Otherwise g is nil: the group stays held until its last part or its
// timeout. A part is not taken, and an error returned, when its Seq is already held
// (ErrDuplicatePart: nothing is replaced), when it would start one group too many
// (ErrTooManyGroups), when it is invalid (ErrInvalidPart) or after Close.
func (r *Reassembler) Add(key string, part Part, text string, v any) (g *Group, complete bool, err error) {
	if part.Total < 1 || part.Total > maxParts || part.Seq < 1 || part.Seq > part.Total {
		return nil, false, ErrInvalidPart
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false, ErrReassemblerClosed
	}
	h := r.groups[key]
	if h == nil {
		if part.Total == 1 {
			return &Group{Key: key, Total: 1, Parts: []GroupPart{{Seq: 1, Text: text, Value: v}}, Complete: true}, true, nil
		}
		if len(r.groups) >= r.cfg.MaxGroups {
			return nil, false, ErrTooManyGroups
		}
		h = &heldGroup{g: Group{Key: key, Total: part.Total, Parts: make([]GroupPart, 0, min(part.Total, 8))},
			deadline: r.cfg.Now().Add(r.cfg.Timeout)}
		r.groups[key] = h
		h.prev = r.tail
		if r.tail != nil {
			r.tail.next = h
		} else {
			r.head = h
		}
		r.tail = h
	} else if h.g.Total != part.Total {
		return nil, false, ErrInvalidPart
	}
	// Insert in Seq order.
	ps := h.g.Parts
	i := len(ps)
	for i > 0 && ps[i-1].Seq > part.Seq {
		i--
	}
	if i > 0 && ps[i-1].Seq == part.Seq {
		return nil, false, ErrDuplicatePart
	}
	ps = append(ps, GroupPart{})
	copy(ps[i+1:], ps[i:])
	ps[i] = GroupPart{Seq: part.Seq, Text: text, Value: v}
	h.g.Parts = ps
	if len(ps) < h.g.Total {
		return nil, false, nil
	}
	r.remove(h)
	h.g.Complete = true
	return &h.g, true, nil
}

// Len returns the number of incomplete messages held.
func (r *Reassembler) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.groups)
}

// Close stops the sweeper and returns the groups still held, oldest first, removed: the
// caller must still answer their parts. Add fails after Close; a second Close returns nil.
// A sweep in progress finishes (its onTimeout calls included) before Close returns, so Close
// must not be called from onTimeout.
func (r *Reassembler) Close() []*Group {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.stopSweeper() // a sweep in progress finishes (and calls onTimeout) before Close returns

	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Group, 0, len(r.groups))
	for h := r.head; h != nil; h = r.head {
		r.remove(h)
		out = append(out, &h.g)
	}
	return out
}

// GroupKey identifies the concatenated message m is a part of: account, destination,
// source, reference number and total number of parts (NUL-separated: none of them can hold
// a NUL). Parts with 8-bit, 16-bit and sar_* references key alike. Decode must have run.
func GroupKey(m *Message) string {
	var ref uint16
	var total int
	if m.Part != nil {
		ref, total = m.Part.Ref, m.Part.Total
	}
	var sb strings.Builder
	sb.Grow(len(m.Account) + len(m.Dest) + len(m.Source) + 3 + 5 + 1 + 3)
	sb.WriteString(m.Account)
	sb.WriteByte(0)
	sb.WriteString(m.Dest)
	sb.WriteByte(0)
	sb.WriteString(m.Source)
	sb.WriteByte(0)
	var num [8]byte
	sb.Write(strconv.AppendUint(num[:0], uint64(ref), 10))
	sb.WriteByte('/')
	sb.Write(strconv.AppendUint(num[:0], uint64(total), 10))
	return sb.String()
}
