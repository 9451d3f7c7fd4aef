package loadgen

import "sync"

const dlrShards = 16

// dlrTracker matches receipts to submits across all binds of a run (an SMSC may deliver a
// receipt on any receiver or transceiver bind of the system_id, and before the
// submit_sm_resp it refers to has been read). Keys are 64-bit hashes of the message id.
type dlrTracker struct {
	shards [dlrShards]dlrShard
}

type dlrShard struct {
	mu    sync.Mutex
	sent  map[uint64]int64 // message id -> submit time, awaiting its receipt
	early map[uint64]int64 // message id -> receipt time, for receipts that beat their response
	_     [64]byte         // keep shards on separate cache lines
}

func newDLRTracker() *dlrTracker {
	t := new(dlrTracker)
	for i := range t.shards {
		t.shards[i].sent = make(map[uint64]int64)
		t.shards[i].early = make(map[uint64]int64)
	}
	return t
}

// dlrShardCap bounds each shard's maps, so that a long run whose receipts never come does
// not grow without end (16 Mi submits awaiting receipts in all, about 0.5 GiB).
const dlrShardCap = maxTrackedIDs / dlrShards

// response records that message id h was submitted at sentAt. If its receipt came first it
// returns the submit-to-receipt latency and matched; else tracked says whether the submit is
// now awaiting its receipt (false once the tracker is full).
func (t *dlrTracker) response(h uint64, sentAt int64) (lat int64, matched, tracked bool) {
	sh := &t.shards[h>>60]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if at, ok := sh.early[h]; ok {
		delete(sh.early, h)
		return at - sentAt, true, true
	}
	if len(sh.sent) >= dlrShardCap {
		return 0, false, false
	}
	sh.sent[h] = sentAt
	return 0, false, true
}

// receipt records the receipt for message id h at time at and returns the submit-to-receipt
// latency when the submit is known.
func (t *dlrTracker) receipt(h uint64, at int64) (int64, bool) {
	sh := &t.shards[h>>60]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sentAt, ok := sh.sent[h]; ok {
		delete(sh.sent, h)
		return at - sentAt, true
	}
	if _, dup := sh.early[h]; !dup && len(sh.early) < dlrShardCap {
		sh.early[h] = at
	}
	return 0, false
}
