package interceptor

import (
	"cmp"
	"container/heap"
	"errors"
	"slices"
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

// GroupPart is one part of a concatenated message.
type GroupPart struct {
	Seq  int
	Text string
	// Value is the caller's handle for the held request; nil when Released.
	Value any
	// Released: the part is not this decision's to answer (an earlier decision of its
	// message answered it, or it is still held for a later one). It is in the group for its
	// text only.
	Released bool
}

// Group is a concatenated message being (or having been) reassembled, as handed to a
// decision: decide its held (not Released) parts on Text, the text of every part seen.
type Group struct {
	Key   string
	Total int
	// Parts are the parts seen so far, in Seq order, those answered earlier included.
	Parts []GroupPart
	// Complete: all Total parts have been seen.
	Complete bool
	// TimedOut: the message's hold ran out before it was complete, now or at an earlier part
	// (a sender that waits for each part's answer before sending the next).
	TimedOut bool
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

// Released returns how many of the group's parts were answered by earlier decisions.
func (g *Group) Released() int {
	n := 0
	for _, p := range g.Parts {
		if p.Released {
			n++
		}
	}
	return n
}

// ReassemblyConfig configures a Reassembler.
type ReassemblyConfig struct {
	// Timeout is the longest a message's parts are held, counted from its first part.
	// Default 5s.
	Timeout time.Duration
	// FirstPartTimeout is how long a message's first part is held alone, waiting for a second
	// one; once a second part arrives, the parts are held until Timeout. A sender that waits
	// for each part's answer before sending the next pays it once per message. Default (and
	// at most) Timeout.
	FirstPartTimeout time.Duration
	// Remember is how long the text of a message whose hold ran out is kept, counted from its
	// last part, so that its later parts are decided at once on the text seen so far.
	// Default 30s, at least Timeout.
	Remember time.Duration
	// MaxGroups bounds the incomplete messages held or remembered; beyond it Add returns
	// ErrTooManyGroups. Default 100000.
	MaxGroups int
	// Now is the clock deadlines are computed and checked with. Default time.Now.
	Now func() time.Time
}

// Reassembler holds the parts of concatenated messages until all have arrived or their hold
// ran out, so that parts get one decision on the whole text. A message whose hold ran out
// (its sender waits for each answer) is remembered: its held parts are decided on the text
// seen so far, and each later part is decided at once, on arrival, on the text of every part
// seen (the parts answered earlier included), so the part that completes an OTP is
// recognised. It is safe for concurrent use. Memory is bounded by MaxGroups × 255 parts.
type Reassembler struct {
	cfg       ReassemblyConfig
	onTimeout func(*Group)

	mu     sync.Mutex
	groups map[string]*heldGroup
	// q orders the groups by deadline (a hold's end, or a remembered group's expiry).
	q      groupQueue
	made   uint64 // groups started, numbering them in order of their first part
	closed bool

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// heldGroup is a group in the Reassembler.
type heldGroup struct {
	g     Group
	first time.Time // when its first part arrived
	// deadline: the end of the hold while parts are held; the expiry of the memory once
	// g.TimedOut.
	deadline time.Time
	idx      int    // in the queue
	order    uint64 // r.made when it was started
}

// groupQueue is a min-heap of groups by deadline (container/heap).
type groupQueue []*heldGroup

func (q groupQueue) Len() int           { return len(q) }
func (q groupQueue) Less(i, j int) bool { return q[i].deadline.Before(q[j].deadline) }
func (q groupQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}
func (q *groupQueue) Push(x any) {
	h := x.(*heldGroup)
	h.idx = len(*q)
	*q = append(*q, h)
}
func (q *groupQueue) Pop() any {
	old := *q
	h := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	h.idx = -1
	return h
}

// NewReassembler starts a Reassembler and its one sweeper goroutine. onTimeout is called,
// from the sweeper goroutine and outside any lock, with each group whose hold ran out before
// it was complete (TimedOut set; its held parts are to be answered, its other parts were
// answered before). A nil onTimeout drops such parts. Close stops the sweeper.
func NewReassembler(cfg ReassemblyConfig, onTimeout func(*Group)) *Reassembler {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.FirstPartTimeout <= 0 || cfg.FirstPartTimeout > cfg.Timeout {
		cfg.FirstPartTimeout = cfg.Timeout
	}
	if cfg.Remember <= 0 {
		cfg.Remember = 30 * time.Second
	}
	cfg.Remember = max(cfg.Remember, cfg.Timeout)
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Reassembler{cfg: cfg, onTimeout: onTimeout, groups: map[string]*heldGroup{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go r.sweeper(sweepInterval(cfg.FirstPartTimeout))
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

// sweep hands the groups whose hold ran out to onTimeout and remembers them; it forgets the
// remembered groups whose memory expired.
func (r *Reassembler) sweep() {
	now := r.cfg.Now()
	var expired []*Group
	r.mu.Lock()
	// Bounded: every iteration removes a group or moves its deadline past now.
	for len(r.q) > 0 && !now.Before(r.q[0].deadline) {
		h := r.q[0]
		if h.g.TimedOut {
			r.remove(h)
			continue
		}
		h.g.TimedOut = true
		expired = append(expired, h.take(-1, nil))
		h.deadline = now.Add(r.cfg.Remember)
		heap.Fix(&r.q, h.idx)
	}
	r.mu.Unlock()
	if r.onTimeout == nil {
		return
	}
	for _, g := range expired {
		r.onTimeout(g)
	}
}

// take returns a copy of the group for a decision and marks every part of the live group
// Released (dropping its handle). With i >= 0, part i of the copy is set to the held handle
// v; the others keep their state (take(-1, nil) hands over every held part).
func (h *heldGroup) take(i int, v any) *Group {
	g := h.g
	g.Parts = append([]GroupPart(nil), h.g.Parts...)
	for j := range h.g.Parts {
		h.g.Parts[j].Value, h.g.Parts[j].Released = nil, true
	}
	if i >= 0 {
		g.Parts[i].Value, g.Parts[i].Released = v, false
	}
	return &g
}

// remove forgets h. r.mu must be held.
func (r *Reassembler) remove(h *heldGroup) {
	delete(r.groups, h.g.Key)
	if h.idx >= 0 {
		heap.Remove(&r.q, h.idx)
	}
}

// newGroup starts holding a group. r.mu must be held.
func (r *Reassembler) newGroup(key string, total int, now time.Time) *heldGroup {
	h := &heldGroup{g: Group{Key: key, Total: total, Parts: make([]GroupPart, 0, min(total, 8))},
		first: now, deadline: now.Add(r.cfg.FirstPartTimeout), order: r.made}
	r.made++
	r.groups[key] = h
	heap.Push(&r.q, h)
	return h
}

// Add takes one part, with text its decoded text and v the caller's handle for it. key
// identifies the message (build it with GroupKey). Parts may arrive in any order.
//
// A nil group means the part is held: it is answered later, with the other held parts of
// its message, when its last part arrives, when its hold runs out (onTimeout) or by Close.
// A non-nil group is to be decided now, the caller answering its held parts (this one, and
// the others held with it) on its Text:
//   - the part completed its message (Complete): the group is removed;
//   - the message's hold ran out before (TimedOut): the group is remembered, and the part is
//     the group's only held one; its Text is the text of every part seen so far;
//   - the part repeats a part seen before, with the same text (a retransmission): it is
//     decided alone now, on the text so far; a held original stays held.
//
// A part whose Seq was answered before with another text starts the message over (a new
// message under a reused reference). A part is not taken, and an error returned, when its
// Seq is held already with another text (ErrDuplicatePart: nothing is replaced), when it
// would start one group
// too many (ErrTooManyGroups), when it is invalid (ErrInvalidPart) or after Close.
func (r *Reassembler) Add(key string, part Part, text string, v any) (*Group, error) {
	if part.Total < 1 || part.Total > maxParts || part.Seq < 1 || part.Seq > part.Total {
		return nil, ErrInvalidPart
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrReassemblerClosed
	}
	h := r.groups[key]
	if h != nil && h.g.Total != part.Total {
		return nil, ErrInvalidPart
	}
	var now time.Time
	if h == nil {
		if part.Total == 1 {
			return &Group{Key: key, Total: 1, Parts: []GroupPart{{Seq: 1, Text: text, Value: v}}, Complete: true}, nil
		}
		if len(r.groups) >= r.cfg.MaxGroups {
			return nil, ErrTooManyGroups
		}
		now = r.cfg.Now()
		h = r.newGroup(key, part.Total, now)
	}
	// Find the part's place in Seq order.
	ps := h.g.Parts
	i := len(ps)
	for i > 0 && ps[i-1].Seq > part.Seq {
		i--
	}
	if i > 0 && ps[i-1].Seq == part.Seq {
		seen := ps[i-1]
		switch {
		case !seen.Released && seen.Text == text:
			// A retransmission of a part still held (the sender's response timer is shorter
			// than the hold): decided now on the text so far; the held parts stay held.
			g := h.g
			g.Parts = append([]GroupPart(nil), ps...)
			for j := range g.Parts {
				g.Parts[j].Value, g.Parts[j].Released = nil, true
			}
			g.Parts[i-1].Value, g.Parts[i-1].Released = v, false
			return &g, nil
		case !seen.Released:
			return nil, ErrDuplicatePart
		case seen.Text == text: // a retransmission of a part answered before
			h.deadline = r.cfg.Now().Add(r.cfg.Remember)
			heap.Fix(&r.q, h.idx)
			return h.take(i-1, v), nil
		}
		// Another message under the same reference: forget the one remembered.
		r.remove(h)
		now = r.cfg.Now()
		h = r.newGroup(key, part.Total, now)
		ps, i = h.g.Parts, 0
	}
	ps = append(ps, GroupPart{})
	copy(ps[i+1:], ps[i:])
	ps[i] = GroupPart{Seq: part.Seq, Text: text, Value: v}
	h.g.Parts = ps
	switch {
	case len(ps) == h.g.Total:
		r.remove(h)
		h.g.Complete = true
		return &h.g, nil
	case h.g.TimedOut:
		if now.IsZero() {
			now = r.cfg.Now()
		}
		h.deadline = now.Add(r.cfg.Remember)
		heap.Fix(&r.q, h.idx)
		return h.take(i, v), nil
	case len(ps) == 2 && r.cfg.FirstPartTimeout < r.cfg.Timeout:
		// A second part: the sender does not wait for answers; hold for the whole Timeout.
		h.deadline = h.first.Add(r.cfg.Timeout)
		heap.Fix(&r.q, h.idx)
	}
	return nil, nil
}

// Len returns the number of incomplete messages held or remembered.
func (r *Reassembler) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.groups)
}

// Close stops the sweeper and returns the groups that still hold parts, oldest first,
// removed: the caller must still answer their held parts. Remembered groups are forgotten.
// Add fails after Close; a second Close returns nil. A sweep in progress finishes (its
// onTimeout calls included) before Close returns, so Close must not be called from onTimeout.
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
	hs := make([]*heldGroup, 0, len(r.groups))
	for _, h := range r.groups {
		if !h.g.TimedOut {
			hs = append(hs, h)
		}
	}
	slices.SortFunc(hs, func(a, b *heldGroup) int { return cmp.Compare(a.order, b.order) })
	out := make([]*Group, len(hs))
	for i, h := range hs {
		out[i] = &h.g
	}
	clear(r.groups)
	r.q = nil
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
