package relay

import (
	"errors"
	"sync"
	"time"
)

// Item is a deliver_sm or data_sm held for an account with no receiver able to take it.
type Item struct {
	ID       uint64
	Frame    []byte // the PDU as received from the SMSC (its sequence number is replaced on delivery)
	Enqueued time.Time
}

// Store holds receipts and MOs per account until a receiver takes them. The in-memory store
// is the default; a durable one (bbolt, Redis) implements the same interface.
type Store interface {
	// Enqueue appends an item to the account's queue; ErrQueueFull when it is at its bound.
	Enqueue(account string, frame []byte) error
	// Peek returns the oldest item of the account, dropping (and counting) expired ones.
	Peek(account string) (Item, bool)
	// Remove deletes the item once its receiver acknowledged it.
	Remove(account string, id uint64)
	// Len returns the number of items held for the account.
	Len(account string) int
}

// ErrQueueFull is returned by Store.Enqueue when the account's queue is at its bound.
var ErrQueueFull = errors.New("relay: receiver queue full")

// MemStore is a bounded in-memory Store: at most Max items per account, each kept at most
// TTL (expired items are dropped and counted in Expired).
type MemStore struct {
	// Limits returns the bound and TTL of an account's queue.
	Limits func(account string) (max int, ttl time.Duration)

	mu      sync.Mutex
	queues  map[string][]Item
	nextID  uint64
	expired uint64
	now     func() time.Time
}

// NewMemStore returns an empty store.
func NewMemStore(limits func(account string) (int, time.Duration)) *MemStore {
	return &MemStore{Limits: limits, queues: make(map[string][]Item), now: time.Now}
}

// Enqueue implements Store.
func (m *MemStore) Enqueue(account string, frame []byte) error {
	max, _ := m.Limits(account)
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queues[account]
	if len(q) >= max {
		return ErrQueueFull
	}
	m.nextID++
	m.queues[account] = append(q, Item{ID: m.nextID, Frame: frame, Enqueued: m.now()})
	return nil
}

// Peek implements Store.
func (m *MemStore) Peek(account string) (Item, bool) {
	_, ttl := m.Limits(account)
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queues[account]
	now := m.now()
	for len(q) > 0 && ttl > 0 && now.Sub(q[0].Enqueued) > ttl {
		q[0] = Item{}
		q = q[1:]
		m.expired++
	}
	m.queues[account] = q
	if len(q) == 0 {
		return Item{}, false
	}
	return q[0], true
}

// Remove implements Store.
func (m *MemStore) Remove(account string, id uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queues[account]
	for i := range q {
		if q[i].ID == id {
			copy(q[i:], q[i+1:])
			q[len(q)-1] = Item{}
			m.queues[account] = q[:len(q)-1]
			return
		}
	}
}

// Len implements Store.
func (m *MemStore) Len(account string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queues[account])
}

// Expired returns how many items were dropped for exceeding their TTL.
func (m *MemStore) Expired() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.expired
}
