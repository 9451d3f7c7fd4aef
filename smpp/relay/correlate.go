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

// correlator maps SMSC message ids to their origin for receipt routing. It is created once
// per relay (the expirable LRU's sweeper goroutine never exits).
//
// SMSCs do not agree on how a message_id looks in a receipt: the submit_sm_resp may say
// "1A2B3C" (hex) while the receipt text says "id:1715004" (decimal), or the other way round.
// Each id is stored under its exact (case-folded) form and under the number it denotes when
// read as hex and as decimal; a receipt id is looked up the same way, exact form first.
type correlator struct {
	c *expirable.LRU[string, origin]
}

func newCorrelator(size int, ttl time.Duration) *correlator {
	if size <= 0 {
		size = 1_000_000
	}
	return &correlator{c: expirable.NewLRU[string, origin](size*3, nil, ttl)}
}

func (c *correlator) add(id string, o origin) {
	if id == "" {
		return
	}
	c.c.Add("s:"+strings.ToLower(id), o)
	if n, ok := parseHex(id); ok {
		c.c.Add("n:"+strconv.FormatUint(n, 10), o)
	}
	if n, ok := parseDec(id); ok {
		c.c.Add("n:"+strconv.FormatUint(n, 10), o)
	}
}

func (c *correlator) lookup(id string) (origin, bool) {
	if id == "" {
		return origin{}, false
	}
	if o, ok := c.c.Get("s:" + strings.ToLower(id)); ok {
		return o, true
	}
	if n, ok := parseDec(id); ok {
		if o, ok := c.c.Get("n:" + strconv.FormatUint(n, 10)); ok {
			return o, true
		}
	}
	if n, ok := parseHex(id); ok {
		if o, ok := c.c.Get("n:" + strconv.FormatUint(n, 10)); ok {
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
