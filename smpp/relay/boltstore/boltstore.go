// Package boltstore is a durable relay.Store on bbolt: receipts and MOs held for an account
// with no receiver bound survive a proxy restart, including a SIGKILL, once Enqueue returned.
//
// Layout of the file:
//
//	meta          bucket: "version" = 1; its sequence (NextSequence) numbers the items
//	q/<account>   bucket per account: key = 8-byte big-endian item ID, value = 8-byte
//	              big-endian enqueue time (unix nanos) + frame
//
// Item IDs come from one store-wide sequence, like MemStore's: unique across accounts and
// increasing across restarts, so a cursor over an account's bucket is its FIFO order.
//
// Every write is one bbolt transaction committed with fsync (bbolt's default): Enqueue
// returns only once the item is on disk, which is what allows the relay to acknowledge the
// SMSC right after it. Receipt correlations (corr bucket, see Correlations) are group
// commits that the relay awaits before it answers the ESME.
//
// The freelist is not written by each commit (NoFreelistSync, as etcd does): Open rebuilds
// it by scanning the file (about 50 ms for a million correlations), and a commit writes only
// the pages it changed, which doubled the correlation commit rate.
package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp/relay"
)

// Options configures a Store.
type Options struct {
	// Limits returns the bound (items) and TTL of an account's queue, like relay.MemStore.
	// A bound <= 0 refuses every Enqueue; a TTL <= 0 keeps items until removed. Nil means
	// unbounded and no TTL.
	Limits func(account string) (max int, ttl time.Duration)
	// Now is the clock used for enqueue times and expiry; nil uses time.Now.
	Now func() time.Time
	// Logger reports storage errors of Peek and Remove (which have no error result); nil
	// discards them.
	Logger *zap.Logger
}

// LockTimeout is how long Open waits for the file lock held by another process.
const LockTimeout = time.Second

// ErrLocked is wrapped by Open's error when another process holds the store file.
var ErrLocked = errors.New("store is locked by another smppguard")

const (
	schemaVersion = 1
	bucketPrefix  = "q/"
	headerLen     = 8 // enqueue time, unix nanos, big-endian
	expireBatch   = 4096
)

var (
	metaBucket = []byte("meta")
	versionKey = []byte("version")
)

// Store is a durable relay.Store. It is safe for concurrent use.
type Store struct {
	db     *bolt.DB
	limits func(string) (int, time.Duration)
	now    func() time.Time
	log    *zap.Logger

	wmu sync.Mutex // serialises write transactions with the count updates that follow them

	cmu    sync.RWMutex
	counts map[string]int // items per account; changed only under wmu (and cmu)

	expired atomic.Uint64
}

var _ relay.Store = (*Store)(nil)

// Open opens (or creates, mode 0600) the store file at path. If another process holds
// it, Open fails after LockTimeout with an error wrapping ErrLocked.
func Open(path string, opts Options) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: LockTimeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("boltstore: open %s: %w (waited %s for its lock)", path, ErrLocked, LockTimeout)
		}
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s := &Store{
		db:     db,
		limits: opts.Limits,
		now:    opts.Now,
		log:    opts.Logger,
		counts: make(map[string]int),
	}
	if s.limits == nil {
		s.limits = func(string) (int, time.Duration) { return math.MaxInt, 0 }
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return s, nil
}

// load checks the schema version (writing it into a new file) and rebuilds the per-account
// counts.
func (s *Store) load() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		mb, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		v := mb.Get(versionKey)
		switch {
		case v == nil:
			return mb.Put(versionKey, binary.BigEndian.AppendUint64(nil, schemaVersion))
		case len(v) != 8 || binary.BigEndian.Uint64(v) != schemaVersion:
			return fmt.Errorf("unsupported store schema version %x (want %d)", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if len(name) < len(bucketPrefix) || string(name[:len(bucketPrefix)]) != bucketPrefix {
				return nil
			}
			if n := b.Stats().KeyN; n > 0 {
				s.counts[string(name[len(bucketPrefix):])] = n
			}
			return nil
		})
	})
}

// Close closes the file. Calls after Close fail (Enqueue) or find nothing (Peek).
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.db.Close()
}

// Expired returns how many items were dropped for exceeding their TTL since Open.
func (s *Store) Expired() uint64 { return s.expired.Load() }

// Len implements relay.Store. It reads an in-memory count and never touches the file.
func (s *Store) Len(account string) int {
	s.cmu.RLock()
	defer s.cmu.RUnlock()
	return s.counts[account]
}

func bucketName(account string) []byte {
	return append([]byte(bucketPrefix), account...)
}

func key(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// Enqueue implements relay.Store: one fsynced bbolt transaction; relay.ErrQueueFull at the
// account's bound.
func (s *Store) Enqueue(account string, frame []byte) error {
	max, _ := s.limits(account)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.Len(account) >= max {
		return relay.ErrQueueFull
	}
	now := s.now().UnixNano()
	err := s.db.Update(func(tx *bolt.Tx) error {
		mb := tx.Bucket(metaBucket)
		if mb == nil {
			return errors.New("meta bucket missing")
		}
		id, err := mb.NextSequence()
		if err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(bucketName(account))
		if err != nil {
			return err
		}
		v := make([]byte, headerLen, headerLen+len(frame))
		binary.BigEndian.PutUint64(v, uint64(now))
		return b.Put(key(id), append(v, frame...))
	})
	if err != nil {
		return fmt.Errorf("boltstore: enqueue for %q: %w", account, err)
	}
	s.cmu.Lock()
	s.counts[account]++
	s.cmu.Unlock()
	return nil
}

// Peek implements relay.Store. It reads in a read-only transaction; only when the oldest
// items are expired (or unreadable) does it delete them in a write transaction.
func (s *Store) Peek(account string) (relay.Item, bool) {
	if s.Len(account) == 0 {
		return relay.Item{}, false
	}
	_, ttl := s.limits(account)
	for {
		item, ok, stale, err := s.peek(account, ttl)
		if err != nil {
			s.log.Error("boltstore: peek failed", zap.String("account", account), zap.Error(err))
			return relay.Item{}, false
		}
		if !stale {
			return item, ok
		}
		dropped, err := s.dropStale(account, ttl)
		if err != nil {
			s.log.Error("boltstore: dropping expired items failed", zap.String("account", account), zap.Error(err))
			return relay.Item{}, false
		}
		if dropped == 0 {
			// The head changed between the read and the write (a concurrent Remove) or the
			// clock went back: look once more and do not spin.
			item, ok, stale, err := s.peek(account, ttl)
			if err != nil || stale {
				return relay.Item{}, false
			}
			return item, ok
		}
	}
}

// expiredAt reports whether an item enqueued at nanos is past ttl at now (MemStore's rule:
// strictly older than ttl).
func expiredAt(now time.Time, nanos int64, ttl time.Duration) bool {
	return ttl > 0 && now.Sub(time.Unix(0, nanos)) > ttl
}

// peek returns the oldest item, or stale when the oldest item must be dropped first.
func (s *Store) peek(account string, ttl time.Duration) (item relay.Item, ok, stale bool, err error) {
	now := s.now()
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName(account))
		if b == nil {
			return nil
		}
		k, v := b.Cursor().First()
		if k == nil {
			return nil
		}
		if len(k) != 8 || len(v) < headerLen {
			stale = true
			return nil
		}
		nanos := int64(binary.BigEndian.Uint64(v))
		if expiredAt(now, nanos, ttl) {
			stale = true
			return nil
		}
		item = relay.Item{
			ID:       binary.BigEndian.Uint64(k),
			Frame:    append([]byte(nil), v[headerLen:]...),
			Enqueued: time.Unix(0, nanos),
		}
		ok = true
		return nil
	})
	return item, ok, stale, err
}

// dropStale deletes up to expireBatch expired or unreadable items from the head of the
// account's queue in one write transaction and returns how many it deleted.
func (s *Store) dropStale(account string, ttl time.Duration) (dropped int, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	now := s.now()
	var expired, corrupt int
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName(account))
		if b == nil {
			return nil
		}
		var drop [][]byte
		c := b.Cursor()
	scan:
		for k, v := c.First(); k != nil && len(drop) < expireBatch; k, v = c.Next() {
			switch {
			case len(k) != 8 || len(v) < headerLen:
				corrupt++
			case expiredAt(now, int64(binary.BigEndian.Uint64(v)), ttl):
				expired++
			default:
				break scan // the oldest live item
			}
			drop = append(drop, append([]byte(nil), k...))
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if corrupt > 0 {
		s.log.Error("boltstore: dropped unreadable queued items", zap.String("account", account), zap.Int("count", corrupt))
	}
	s.expired.Add(uint64(expired))
	s.cmu.Lock()
	s.sub(account, expired+corrupt)
	s.cmu.Unlock()
	return expired + corrupt, nil
}

// sub lowers the account's count; the caller holds cmu.
func (s *Store) sub(account string, n int) {
	if c := s.counts[account] - n; c > 0 {
		s.counts[account] = c
	} else {
		delete(s.counts, account)
	}
}

// Remove implements relay.Store: one fsynced bbolt transaction; an unknown id is a no-op.
func (s *Store) Remove(account string, id uint64) {
	if s.Len(account) == 0 {
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var found bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName(account))
		if b == nil {
			return nil
		}
		k := key(id)
		if b.Get(k) == nil {
			return nil
		}
		found = true
		return b.Delete(k)
	})
	if err != nil {
		s.log.Error("boltstore: remove failed", zap.String("account", account), zap.Uint64("id", id), zap.Error(err))
		return
	}
	if found {
		s.cmu.Lock()
		s.sub(account, 1)
		s.cmu.Unlock()
	}
}
