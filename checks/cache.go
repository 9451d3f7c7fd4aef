package checks

import (
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// cacheEntry is a cached answer: a result or an error, with its expiry on the Guard's clock.
// It is never modified once stored, except stamp (under its shard's write lock).
type cacheEntry struct {
	res     Result // as a hit returns it: Cached, no Latency
	err     error  // the error as the provider's call returned it
	cerr    error  // err marked as cached (cachedError), built once when stored
	expires time.Time
	stamp   uint64 // the shard's move count when the entry last moved to the front
}

// Cache sizing: a cache of at least minShardSize*2 entries is split into up to maxShards
// shards (a power of two), each an LRU of an equal share of the size.
const (
	maxShards    = 16
	minShardSize = 256
)

// lruCache is a size-bounded LRU split into shards by a hash of the number, so that
// concurrent look-ups of different numbers rarely meet on a lock. Look-ups take the shard's
// read lock and peek; an entry moves to the front (under the write lock) only when it has
// drifted into the older half of its shard — that is, once half the shard's capacity of
// other entries were added or moved to the front since its own last move. An entry read
// at least that often is never evicted, as with an exact LRU; one read less often is
// evicted, in the worst case, after half a shard of other moves rather than a whole one.
// Expiry is each entry's own, checked by the caller on its clock.
type lruCache[K shardKey] struct {
	seed   maphash.Seed
	mask   uint64
	shards []lruShard[K]
}

// shardKey is a cache key; its number picks the shard.
type shardKey interface {
	comparable
	number() string
}

type lruShard[K shardKey] struct {
	mu    sync.RWMutex
	lru   *simplelru.LRU[K, *cacheEntry]
	moves uint64 // adds and moves to the front, under mu (write)
	size  int    // the shard's share of the cache's size
	half  uint64 // promote an entry after this many moves since its last one
	_     [64]byte
}

// newLRUCache returns a cache of size entries in all (size > 0).
func newLRUCache[K shardKey](size int) (*lruCache[K], error) {
	if size <= 0 {
		return nil, fmt.Errorf("checks: cache size %d: must be positive", size)
	}
	n := 1
	for n < maxShards && size/(n*2) >= minShardSize {
		n *= 2
	}
	c := &lruCache[K]{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]lruShard[K], n)}
	for i := range c.shards {
		per := size / n
		if i < size%n {
			per++
		}
		l, err := simplelru.NewLRU[K, *cacheEntry](per, nil)
		if err != nil {
			return nil, fmt.Errorf("checks: cache shard of %d: %w", per, err)
		}
		c.shards[i].lru, c.shards[i].size = l, per
		c.shards[i].half = uint64(max(1, per/2))
	}
	return c, nil
}

func (c *lruCache[K]) shard(k K) *lruShard[K] {
	if c.mask == 0 {
		return &c.shards[0]
	}
	return &c.shards[maphash.String(c.seed, k.number())&c.mask]
}

// get returns k's entry if it has not expired at now. An expired entry is removed.
func (c *lruCache[K]) get(k K, now time.Time) (*cacheEntry, bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.lru.Peek(k)
	stale := ok && s.moves-e.stamp >= s.half
	s.mu.RUnlock()
	switch {
	case !ok:
		return nil, false
	case !now.Before(e.expires):
		s.mu.Lock()
		if cur, ok := s.lru.Peek(k); ok && cur == e { // not replaced meanwhile
			s.lru.Remove(k)
		}
		s.mu.Unlock()
		return nil, false
	case stale:
		s.mu.Lock()
		if cur, ok := s.lru.Get(k); ok && cur == e {
			s.moves++
			e.stamp = s.moves
		}
		s.mu.Unlock()
	}
	return e, true
}

// add stores e under k, replacing any entry, and evicts the shard's least recently used
// entry when the shard is full.
func (c *lruCache[K]) add(k K, e *cacheEntry) {
	s := c.shard(k)
	s.mu.Lock()
	s.moves++
	e.stamp = s.moves
	s.lru.Add(k, e)
	s.mu.Unlock()
}

// len is the number of entries, expired ones not yet removed included.
func (c *lruCache[K]) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += s.lru.Len()
		s.mu.RUnlock()
	}
	return n
}

// contains reports whether k is cached, expired or not, without moving it.
func (c *lruCache[K]) contains(k K) bool {
	s := c.shard(k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lru.Contains(k)
}
