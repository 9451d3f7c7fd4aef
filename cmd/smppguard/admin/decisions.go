package admin

import (
	"slices"
	"sync"

	"github.com/smppguard/smppguard/interceptor"
)

// DefaultDecisionLogSize is the ring size NewDecisionLog uses for a size <= 0.
const DefaultDecisionLogSize = 1000

// DecisionLog keeps the most recent OTP decisions in a bounded ring. It is an
// interceptor.AuditSink; chain it with the audit file sink. Safe for concurrent use.
type DecisionLog struct {
	mu    sync.Mutex
	ring  []interceptor.AuditRecord
	next  int // where the next record goes
	full  bool
	total uint64
}

var _ interceptor.AuditSink = (*DecisionLog)(nil)

// NewDecisionLog keeps the last size decisions (DefaultDecisionLogSize when size <= 0).
func NewDecisionLog(size int) *DecisionLog {
	if size <= 0 {
		size = DefaultDecisionLogSize
	}
	return &DecisionLog{ring: make([]interceptor.AuditRecord, size)}
}

// Record keeps r, dropping the oldest record when the ring is full. It does not block
// beyond a short critical section.
func (d *DecisionLog) Record(r interceptor.AuditRecord) {
	r.Signals = slices.Clone(r.Signals) // the caller's slice may be reused
	d.mu.Lock()
	d.ring[d.next] = r
	d.next++
	if d.next == len(d.ring) {
		d.next, d.full = 0, true
	}
	d.total++
	d.mu.Unlock()
}

// Size returns the ring's capacity.
func (d *DecisionLog) Size() int { return len(d.ring) }

// Total returns how many records were ever recorded.
func (d *DecisionLog) Total() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}

// Recent returns up to limit records, newest first, matching account and action (an empty
// filter matches all). limit <= 0 means all the ring holds.
func (d *DecisionLog) Recent(account, action string, limit int) []interceptor.AuditRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.next
	if d.full {
		n = len(d.ring)
	}
	if limit <= 0 || limit > n {
		limit = n
	}
	out := make([]interceptor.AuditRecord, 0, min(limit, 64))
	for i := 0; i < n && len(out) < limit; i++ {
		r := &d.ring[(d.next-1-i+len(d.ring))%len(d.ring)]
		if account != "" && r.Account != account {
			continue
		}
		if action != "" && string(r.Action) != action {
			continue
		}
		c := *r
		c.Signals = slices.Clone(r.Signals)
		out = append(out, c)
	}
	return out
}
