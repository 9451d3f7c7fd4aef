package boltstore

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

var corrBucket = []byte("corr")

// corrEntry is one message_id → (account, upstream) correlation waiting to be written.
type corrEntry struct {
	key, account, upstream string
	expires                time.Time
}

// Correlations persists receipt correlations (message_id → account, upstream) in the store's
// file, so receipts for messages submitted before a restart still find their account. Writes
// are behind: Put queues and a writer goroutine commits batches (one fsync per batch, at most
// every FlushEvery), so the submit path never waits for the disk; what a crash loses is the
// last batch. It implements relay.CorrStore.
type Correlations struct {
	s       *Store
	ch      chan corrEntry
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	dropped atomic.Uint64
	every   time.Duration
}

// FlushEvery is how long a correlation may wait in memory before it is written.
const FlushEvery = 10 * time.Millisecond

// Correlations starts the correlation writer; call it once per Store. Close stops it
// (flushing what is queued) before the Store is closed.
func (s *Store) Correlations() *Correlations {
	c := &Correlations{s: s, ch: make(chan corrEntry, 65536), done: make(chan struct{}), every: FlushEvery}
	c.wg.Add(1)
	go c.writer()
	return c
}

// Put queues a correlation; if the queue is full it is dropped and counted (the in-memory
// correlation still works until a restart).
func (c *Correlations) Put(key, account, upstream string, expires time.Time) {
	select {
	case c.ch <- corrEntry{key, account, upstream, expires}:
	default:
		c.dropped.Add(1)
	}
}

// Get returns a stored correlation that has not expired.
func (c *Correlations) Get(key string) (account, upstream string, ok bool) {
	c.s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(corrBucket)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(key))
		if len(v) < 8 || time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(c.s.now()) {
			return nil
		}
		a, u, found := bytes.Cut(v[8:], []byte{0})
		if found {
			account, upstream, ok = string(a), string(u), true
		}
		return nil
	})
	return account, upstream, ok
}

// Dropped counts correlations not written because the queue was full.
func (c *Correlations) Dropped() uint64 { return c.dropped.Load() }

// Close writes what is queued and stops the writer.
func (c *Correlations) Close() {
	c.once.Do(func() { close(c.done) })
	c.wg.Wait()
}

func (c *Correlations) writer() {
	defer c.wg.Done()
	t := time.NewTicker(c.every)
	defer t.Stop()
	sweep := time.NewTicker(10 * time.Minute)
	defer sweep.Stop()
	batch := make([]corrEntry, 0, 1024)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		err := c.s.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(corrBucket)
			if err != nil {
				return err
			}
			for _, e := range batch {
				v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(e.account)+1+len(e.upstream)), uint64(e.expires.UnixNano()))
				v = append(append(append(v, e.account...), 0), e.upstream...)
				if err := b.Put([]byte(e.key), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			c.s.log.Error("boltstore: correlations not written", zap.Int("count", len(batch)), zap.Error(err))
		}
		batch = batch[:0]
	}
	for {
		select {
		case e := <-c.ch:
			batch = append(batch, e)
			if len(batch) == cap(batch) {
				flush()
			}
		case <-t.C:
			flush()
		case <-sweep.C:
			flush()
			c.expire()
		case <-c.done:
			for {
				select {
				case e := <-c.ch:
					batch = append(batch, e)
					if len(batch) == cap(batch) {
						flush()
					}
					continue
				default:
				}
				break
			}
			flush()
			return
		}
	}
}

// expire deletes expired correlations, a bounded batch per transaction.
func (c *Correlations) expire() {
	now := c.s.now()
	for {
		n := 0
		err := c.s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(corrBucket)
			if b == nil {
				return nil
			}
			cur := b.Cursor()
			for k, v := cur.First(); k != nil && n < expireBatch; k, v = cur.Next() {
				if len(v) < 8 || time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(now) {
					if err := cur.Delete(); err != nil {
						return err
					}
					n++
				}
			}
			return nil
		})
		if err != nil || n < expireBatch {
			return
		}
	}
}
