package relay

import (
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// origin is where a message_id came from: the account that submitted it and the upstream
// that accepted it.
type origin struct {
	account  string
	upstream string
}

const corrShards = 16

// correlator maps SMSC message ids to their origin for receipt routing. It is created once
// per relay (each expirable LRU's sweeper goroutine never exits) and sharded so that the
// upstream readers recording ids do not queue on one lock.
//
// SMSCs do not agree on how a message_id looks in a receipt: the submit_sm_resp may say
// "1A2B3C" (hex) while the receipt text says "id:1715004" (decimal), or the other way round,
// with or without leading zeros. An id is stored once, case-folded and without leading zeros;
// a receipt id is looked up as it is, then as the same number written in the other base.
type correlator struct {
	shards  [corrShards]*expirable.LRU[string, origin]
	durable CorrStore // optional: survives restarts
	ttl     time.Duration
}

// CorrStore persists receipt correlations across restarts. Put must not block (the submit
// path calls it); Get is called only when the in-memory correlator misses.
type CorrStore interface {
	Put(key, account, upstream string, expires time.Time)
	Get(key string) (account, upstream string, ok bool)
}

func newCorrelator(size int, ttl time.Duration) *correlator {
	if size <= 0 {
		size = 1_000_000
	}
	c := &correlator{}
	for i := range c.shards {
		c.shards[i] = expirable.NewLRU[string, origin](size/corrShards+1, nil, ttl)
	}
	return c
}

func (c *correlator) shard(key string) *expirable.LRU[string, origin] {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return c.shards[h%corrShards]
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

func (c *correlator) add(id string, o origin) {
	if id == "" {
		return
	}
	k := canonical(id)
	c.shard(k).Add(k, o)
	if c.durable != nil {
		c.durable.Put(k, o.account, o.upstream, time.Now().Add(c.ttl))
	}
}

func (c *correlator) get(k string) (origin, bool) {
	if o, ok := c.shard(k).Get(k); ok {
		return o, true
	}
	if c.durable != nil {
		if a, u, ok := c.durable.Get(k); ok {
			o := origin{account: a, upstream: u}
			c.shard(k).Add(k, o)
			return o, true
		}
	}
	return origin{}, false
}

func (c *correlator) lookup(id string) (origin, bool) {
	if id == "" {
		return origin{}, false
	}
	k := canonical(id)
	if o, ok := c.get(k); ok {
		return o, true
	}
	if n, ok := parseDec(k); ok { // a decimal receipt id for a hex message_id
		if o, ok := c.get(strconv.FormatUint(n, 16)); ok {
			return o, true
		}
	}
	if n, ok := parseHex(k); ok { // a hex receipt id for a decimal message_id
		if o, ok := c.get(strconv.FormatUint(n, 10)); ok {
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
