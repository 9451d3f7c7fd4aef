package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp/relay"
)

var corrBucket = []byte("corr")

// corrEntry is one message_id → (account, upstream) correlation waiting to be written, and
// who to tell once it is (nil: nobody).
type corrEntry struct {
	key, account, upstream string
	expires                time.Time
	done                   func(error)
}

// DefaultMaxPending bounds the correlations waiting for a commit (see Correlations.Commit).
// The relay holds each one's submit_sm_resp, so its ESME's request stays in flight: the
// ESMEs' windows and relay.max_in_flight (default 50,000) keep the backlog well below this.
const DefaultMaxPending = 1 << 18

// ErrBacklog is passed to Commit's done when MaxPending correlations are already waiting.
var ErrBacklog = errors.New("boltstore: correlation backlog full")

// ErrClosed is passed to Commit's done after Close.
var ErrClosed = errors.New("boltstore: correlations closed")

// Correlations persists receipt correlations (message_id → account, upstream) in the store's
// file, so receipts for messages submitted before a restart still find their account.
//
// Writes are group commits: a writer goroutine takes every correlation that arrived while
// its previous transaction ran and commits them in one bbolt transaction (one fsync), then
// calls their done functions. Commit never waits for the disk, so the relay can hold a
// submit_sm_resp until its correlation is durable without blocking the upstream reader
// (relay.CorrCommitter). Under load the batches grow with the commit latency: the fsync
// rate stays at what the disk can do and the throughput follows the batch size.
type Correlations struct {
	s   *Store
	log *zap.Logger

	mu      sync.Mutex
	pending []corrEntry // waiting for the next transaction
	spare   []corrEntry // the writer's previous batch, reused
	closed  bool
	max     int

	kick chan struct{} // cap 1: something is pending
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	refused, failed, commits atomic.Uint64

	// beforeCommit, if set (tests), is called by the writer with the size of each batch
	// before its transaction.
	beforeCommit func(n int)
}

var _ relay.CorrCommitter = (*Correlations)(nil)

// Correlations starts the correlation writer; call it once per Store. Close stops it
// (committing what is pending) before the Store is closed.
func (s *Store) Correlations() *Correlations { return s.correlations(DefaultMaxPending, nil) }

// correlations is Correlations with a backlog bound and a test hook (see beforeCommit).
func (s *Store) correlations(max int, beforeCommit func(n int)) *Correlations {
	c := &Correlations{s: s, log: s.log, max: max, kick: make(chan struct{}, 1), stop: make(chan struct{}), beforeCommit: beforeCommit}
	c.wg.Add(1)
	go c.writer()
	return c
}

// Commit queues a correlation for the next transaction and calls done exactly once: with
// nil after the transaction that wrote it committed (fsynced), or with an error when it was
// not written (the transaction failed, ErrBacklog when MaxPending correlations are already
// waiting, ErrClosed after Close). Commit never blocks on the disk; done runs on the writer
// goroutine, or on the caller's before Commit returns when the correlation is refused at
// once. done must not block for long: the next batch waits for it.
func (c *Correlations) Commit(key, account, upstream string, expires time.Time, done func(error)) {
	c.mu.Lock()
	if c.closed || len(c.pending) >= c.max {
		closed := c.closed
		c.mu.Unlock()
		c.refused.Add(1)
		if done != nil {
			if closed {
				done(ErrClosed)
			} else {
				done(ErrBacklog)
			}
		}
		return
	}
	c.pending = append(c.pending, corrEntry{key: key, account: account, upstream: upstream, expires: expires, done: done})
	first := len(c.pending) == 1
	c.mu.Unlock()
	if first {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// Put queues a correlation without waiting for it (relay.CorrStore): it is written by the
// next transaction, like Commit's; one refused (backlog full, closed) is counted in Refused.
func (c *Correlations) Put(key, account, upstream string, expires time.Time) {
	c.Commit(key, account, upstream, expires, nil)
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

// Refused counts correlations not queued: the backlog was full or the writer closed.
func (c *Correlations) Refused() uint64 { return c.refused.Load() }

// Failed counts correlations whose transaction failed.
func (c *Correlations) Failed() uint64 { return c.failed.Load() }

// Commits counts the transactions that wrote correlations.
func (c *Correlations) Commits() uint64 { return c.commits.Load() }

// Close commits what is pending, stops the writer, and refuses later correlations
// (ErrClosed).
func (c *Correlations) Close() {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.stop)
	})
	c.wg.Wait()
}

func (c *Correlations) writer() {
	defer c.wg.Done()
	sweep := time.NewTicker(10 * time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-c.kick:
			c.flush()
		case <-sweep.C:
			c.expire()
		case <-c.stop:
			c.flush() // Close set closed first: nothing is added after this batch
			return
		}
	}
}

// flush commits what is pending in one transaction and reports to each entry's done.
// Entries added meanwhile kicked the writer again.
func (c *Correlations) flush() {
	c.mu.Lock()
	batch := c.pending
	c.pending, c.spare = c.spare[:0], nil
	c.mu.Unlock()
	if len(batch) == 0 {
		c.mu.Lock()
		c.spare = batch
		c.mu.Unlock()
		return
	}
	if c.beforeCommit != nil {
		c.beforeCommit(len(batch))
	}
	err := c.write(batch)
	if err != nil {
		c.failed.Add(uint64(len(batch)))
		c.log.Error("boltstore: correlations not written", zap.Int("count", len(batch)), zap.Error(err))
	} else {
		c.commits.Add(1)
	}
	for i := range batch {
		if batch[i].done != nil {
			c.report(batch[i].done, err)
		}
		batch[i] = corrEntry{}
	}
	c.mu.Lock()
	c.spare = batch[:0]
	c.mu.Unlock()
}

// report calls done; a panic in it is logged so that the other entries of the batch, and
// the later batches, are still reported.
func (c *Correlations) report(done func(error), err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("boltstore: panic in a correlation's done", zap.Any("panic", p), zap.Stack("stack"))
		}
	}()
	done(err)
}

func (c *Correlations) write(batch []corrEntry) error {
	err := c.s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(corrBucket)
		if err != nil {
			return fmt.Errorf("bucket: %w", err)
		}
		for _, e := range batch {
			v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(e.account)+1+len(e.upstream)), uint64(e.expires.UnixNano()))
			v = append(append(append(v, e.account...), 0), e.upstream...)
			if err := b.Put([]byte(e.key), v); err != nil {
				return fmt.Errorf("put: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: commit %d correlations: %w", len(batch), err)
	}
	return nil
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
		select { // correlations waiting for a commit go first
		case <-c.kick:
			c.flush()
		default:
		}
	}
}
