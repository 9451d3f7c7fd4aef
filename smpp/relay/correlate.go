package relay

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
)

// origin is where a message_id came from: the account that submitted it and the upstream
// that accepted it.
type origin struct {
	account  string
	upstream string
}

// corrKey is a message id as one upstream issued it. Two SMSCs may issue the same id (decimal
// counters, or the hex/decimal fallback below turning one carrier's id into another's), so
// an id means something only together with the upstream that issued it, and a receipt is
// matched under the upstream it arrived from (and its siblings: Relay.receiptOrigin).
type corrKey struct {
	upstream string
	id       string // canonical
}

const corrShards = 16

// correlator maps SMSC message ids, per upstream, to their origin for receipt routing. It is
// sharded so that the upstream readers recording ids do not queue on one lock. Each shard
// is a size-bounded LRU whose entries carry their expiry (corrShard): an expired entry is a
// miss, and the relay's match loop sweeps expired entries out (sweep), so memory follows the
// traffic of the last TTL, never more than the size. (golang-lru's expirable LRU did the same
// with a sweeper goroutine per shard and an expiry bucket per entry: ~20% of the proxy's CPU
// on a receipt-per-message load.)
//
// SMSCs do not agree on how a message_id looks in a receipt: the submit_sm_resp may say
// "1A2B3C" (hex) while the receipt text says "id:1715004" (decimal), or the other way round,
// with or without leading zeros. An id is stored once, case-folded and without leading zeros;
// a receipt id is looked up as it is, then as the same number written in the other base,
// always under the receipt's own upstream.
type correlator struct {
	shards  [corrShards]corrShard
	durable CorrStore // optional: survives restarts
	ttl     time.Duration
	now     func() int64 // unix nanoseconds; a field so that tests can move time
	// unstored counts correlations a CorrCommitter could not make durable (their submits
	// were answered ESME_RSYSERR).
	unstored atomic.Uint64

	// names are the upstreams ids were recorded for (copy on write), for lookup.
	namesMu sync.Mutex
	names   atomic.Pointer[[]string]
}

// CorrStore persists receipt correlations across restarts. Put must not block (the submit
// path calls it); Get is called only when the in-memory correlator misses. Keys are opaque
// strings: the relay writes "upstream\x00message_id" (entries written by versions before
// per-upstream keys are "message_id" alone and are still read, checking their upstream).
//
// A CorrStore that is only a CorrStore may write behind: the submit_sm_resp is relayed
// without waiting, and a crash loses what it had not written yet. One that implements
// CorrCommitter is waited for.
type CorrStore interface {
	Put(key, account, upstream string, expires time.Time)
	Get(key string) (account, upstream string, ok bool)
}

// CorrCommitter is a CorrStore that tells when a correlation is durable. With one, the
// relay holds each correlated submit_sm_resp until its correlation is committed, so an
// ESME_ROK that reached the ESME always has its receipt's correlation on disk, whatever
// happens to the process afterwards (boltstore commits everything that arrived during the
// previous commit in one transaction: a group commit).
type CorrCommitter interface {
	CorrStore
	// Commit records a correlation and calls done exactly once: with nil once it is
	// durable, or with an error once it is known it will not be. Commit must not block
	// (the upstream reader calls it); done may run on any goroutine, Commit's caller's
	// included before Commit returns, and must not block either.
	Commit(key, account, upstream string, expires time.Time, done func(error))
}

// corrShard is one shard of the correlator. Entries are added and peeked, never promoted,
// so the list's order is expiry order (one TTL for all): the oldest entry expires first.
type corrShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[corrKey, corrEntry]
}

// corrEntry is an origin and when it expires (unix nanoseconds).
type corrEntry struct {
	o       origin
	expires int64
}

func (s *corrShard) add(k corrKey, o origin, expires int64) {
	s.mu.Lock()
	s.lru.Add(k, corrEntry{o: o, expires: expires})
	s.mu.Unlock()
}

// get returns k's origin unless it expired by now (an expired entry is removed).
func (s *corrShard) get(k corrKey, now int64) (origin, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.lru.Peek(k)
	if !ok {
		return origin{}, false
	}
	if e.expires <= now {
		s.lru.Remove(k)
		return origin{}, false
	}
	return e.o, true
}

// sweepMax bounds the entries one sweep removes from a shard, so that the lock is never held
// long; what is left goes at the next sweep (or is a miss when looked up meanwhile).
const sweepMax = 4096

// sweep removes up to sweepMax expired entries from the oldest end and reports how many.
func (s *corrShard) sweep(now int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < sweepMax {
		_, e, ok := s.lru.GetOldest()
		if !ok || e.expires > now {
			break
		}
		s.lru.RemoveOldest()
		n++
	}
	return n
}

func (s *corrShard) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

func newCorrelator(size int, ttl time.Duration) *correlator {
	if size <= 0 {
		size = 1_000_000
	}
	c := &correlator{ttl: ttl, now: func() int64 { return time.Now().UnixNano() }}
	for i := range c.shards {
		lru, err := simplelru.NewLRU[corrKey, corrEntry](size/corrShards+1, nil)
		if err != nil {
			panic(err) // only for a size <= 0, excluded above
		}
		c.shards[i].lru = lru
	}
	c.names.Store(&[]string{})
	return c
}

// sweep removes expired correlations (at most sweepMax per shard per call).
func (c *correlator) sweep() int {
	now, n := c.now(), 0
	for i := range c.shards {
		n += c.shards[i].sweep(now)
	}
	return n
}

// len is the number of correlations held, expired ones not yet swept included.
func (c *correlator) len() int {
	n := 0
	for i := range c.shards {
		n += c.shards[i].len()
	}
	return n
}

func (c *correlator) shard(k corrKey) *corrShard {
	h := uint32(2166136261) // FNV-1a over the id, then the upstream
	for i := 0; i < len(k.id); i++ {
		h = (h ^ uint32(k.id[i])) * 16777619
	}
	for i := 0; i < len(k.upstream); i++ {
		h = (h ^ uint32(k.upstream[i])) * 16777619
	}
	return &c.shards[h%corrShards]
}

// canonical folds case and strips leading zeros ("00A1b2" → "a1b2", "000" → "0").
func canonical(id string) string {
	i := 0
	for i < len(id)-1 && id[i] == '0' {
		i++
	}
	id = id[i:]
	for j := 0; j < len(id); j++ {
		if c := id[j]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(id)
		}
	}
	return id
}

// durableKey is the CorrStore key of an id issued by upstream.
func durableKey(upstream, id string) string { return upstream + "\x00" + id }

// add records that o.upstream issued id for o.account.
func (c *correlator) add(id string, o origin) {
	if id == "" {
		return
	}
	k := corrKey{upstream: o.upstream, id: canonical(id)}
	c.remember(k, o)
	if c.durable != nil {
		c.durable.Put(durableKey(k.upstream, k.id), o.account, o.upstream, time.Now().Add(c.ttl))
	}
}

// remember records in memory that k.upstream issued k.id for o.account.
func (c *correlator) remember(k corrKey, o origin) {
	c.shard(k).add(k, o, c.now()+int64(c.ttl))
	c.known(o.upstream)
}

// relayAfterCommit is HandleResponse for a correlated submit_sm_resp when the durable
// store is a CorrCommitter: the response goes to the ESME only once the correlation is
// committed, and the in-memory correlator learns the id at that moment too, so a receipt
// that overtakes the commit is held (DLRMatchWait) instead of reaching the ESME before its
// submit_sm_resp. Nothing here waits: the upstream reader goes on with its next PDU, and
// the ESME's request stays in flight (its window slot and relay.max_in_flight taken) until
// done runs; that is the back-pressure of a slow disk on the ESMEs.
//
// A correlation that cannot be made durable (the commit failed, the store's backlog is
// full, the store is closed) is not relayed as ESME_ROK: the ESME gets ESME_RSYSERR, the
// answer it gets when an upstream does not answer, meaning the SMSC may or may not have
// the message. Its receipt, if one comes, is acknowledged as unknown. Exactly one response
// either way: done is called once.
func (r *Relay) relayAfterCommit(ref smpp.Ref, resp *smpp.PDU, reqID smpp.CommandID, cc CorrCommitter, id string, o origin) {
	k := corrKey{upstream: o.upstream, id: canonical(id)}
	cc.Commit(durableKey(k.upstream, k.id), o.account, o.upstream, time.Now().Add(r.corr.ttl), func(err error) {
		if r.cfg.ObserveLatency != nil && ref.Start != 0 {
			defer func() { r.cfg.ObserveLatency(reqID, time.Duration(time.Now().UnixNano()-ref.Start)) }()
		}
		if err != nil {
			// Logged at 1, 2, 4, 8 ... failures: a broken disk fails every submit.
			if n := r.corr.unstored.Add(1); n&(n-1) == 0 {
				r.log.Error("relay: receipt correlation not stored: the ESME gets ESME_RSYSERR for a message the SMSC accepted",
					zap.String("account", o.account), zap.String("upstream", o.upstream), zap.String("message_id", id),
					zap.Uint64("unstored_so_far", n), zap.Error(err))
			}
			r.relayResponse(ref.Session, smpp.HeaderOnly(reqID.Response(), smpp.StatusSysErr, ref.Seq))
			return
		}
		r.corr.remember(k, o)
		resp.SetSeq(ref.Seq)
		r.relayResponse(ref.Session, resp.Bytes())
		if r.heldN.Load() > 0 {
			select {
			case r.wakeM <- struct{}{}:
			default:
			}
		}
	})
}

// known remembers an upstream name (a handful: checked without a lock, added on change).
func (c *correlator) known(upstream string) {
	for _, n := range *c.names.Load() {
		if n == upstream {
			return
		}
	}
	c.namesMu.Lock()
	defer c.namesMu.Unlock()
	cur := *c.names.Load()
	if slices.Contains(cur, upstream) {
		return
	}
	next := append(slices.Clone(cur), upstream)
	c.names.Store(&next)
}

func (c *correlator) get(k corrKey) (origin, bool) {
	if o, ok := c.shard(k).get(k, c.now()); ok {
		return o, true
	}
	if c.durable == nil {
		return origin{}, false
	}
	a, u, ok := c.durable.Get(durableKey(k.upstream, k.id))
	if !ok {
		// Written before keys carried the upstream: valid only for the same upstream.
		if a, u, ok = c.durable.Get(k.id); ok && u != k.upstream {
			ok = false
		}
	}
	if !ok {
		return origin{}, false
	}
	o := origin{account: a, upstream: u}
	c.remember(k, o)
	return o, true
}

// lookupFrom finds the origin of a receipt id that arrived from upstream: the id as it is, then
// as the same number in the other base, only among the ids that upstream issued.
func (c *correlator) lookupFrom(upstream, id string) (origin, bool) {
	if id == "" {
		return origin{}, false
	}
	k := corrKey{upstream: upstream, id: canonical(id)}
	if o, ok := c.get(k); ok {
		return o, true
	}
	if n, ok := parseDec(k.id); ok { // a decimal receipt id for a hex message_id
		if o, ok := c.get(corrKey{upstream: upstream, id: strconv.FormatUint(n, 16)}); ok {
			return o, true
		}
	}
	if n, ok := parseHex(k.id); ok { // a hex receipt id for a decimal message_id
		if o, ok := c.get(corrKey{upstream: upstream, id: strconv.FormatUint(n, 10)}); ok {
			return o, true
		}
	}
	return origin{}, false
}

// receiptOrigin finds the submit a receipt from upstream name refers to: among the ids that
// upstream issued, then among those of the other pooled upstreams that bind with the same
// system_id. One SMSC account delivers a receipt on any of its receiver binds, whichever bind
// took the submit: two upstream entries for one SMSC (the sandbox's carrier and voicegw), or
// one per address of an SMSC cluster, share their ids. Upstreams with another system_id are
// another SMSC account, whose ids may collide with these: never consulted.
func (r *Relay) receiptOrigin(name, systemID, id string) (origin, bool) {
	if o, ok := r.corr.lookupFrom(name, id); ok {
		return o, true
	}
	for _, u := range r.snap.Load().upstreams {
		if u.Name != name && u.link != nil && u.Bind.SystemID == systemID {
			if o, ok := r.corr.lookupFrom(u.Name, id); ok {
				return o, true
			}
		}
	}
	return origin{}, false
}

// lookup finds a message id whose upstream is not known (an ESME's query_sm, cancel_sm or
// replace_sm names only the id): it is tried under every upstream ids were recorded for, and
// the first that knows it answers. Receipts never use it.
// lookupFor finds the origin of id submitted by account, on any upstream. other reports
// that id is known only as another account's message.
func (c *correlator) lookupFor(account, id string) (o origin, mine, other bool) {
	for _, u := range *c.names.Load() {
		if f, ok := c.lookupFrom(u, id); ok {
			if f.account == account {
				return f, true, false
			}
			other = true
		}
	}
	return origin{}, false, other
}

func (c *correlator) lookup(id string) (origin, bool) {
	for _, u := range *c.names.Load() {
		if o, ok := c.lookupFrom(u, id); ok {
			return o, true
		}
	}
	return origin{}, false
}

func parseHex(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	return n, err == nil
}

func parseDec(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// receiptID returns the message id a receipt refers to: the receipted_message_id TLV, else
// the "id:" field of the receipt text.
func receiptID(tlv []byte, text []byte) string {
	if len(tlv) > 0 {
		if tlv[len(tlv)-1] == 0 {
			tlv = tlv[:len(tlv)-1]
		}
		return string(tlv)
	}
	i := indexFold(text, "id:")
	if i < 0 {
		return ""
	}
	rest := text[i+3:]
	j := 0
	for j < len(rest) && rest[j] != ' ' && rest[j] != 0 {
		j++
	}
	return string(rest[:j])
}

// indexFold finds the first "id:" that starts the text or follows a space.
func indexFold(b []byte, sub string) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		if (i == 0 || b[i-1] == ' ') && strings.EqualFold(string(b[i:i+len(sub)]), sub) {
			return i
		}
	}
	return -1
}
