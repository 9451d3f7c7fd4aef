package interceptor

import (
	"hash/maphash"
	"regexp/syntax"
	"strings"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Text memo: OTPs from one application share a template and differ in their digits ("Your
// code is 482913", "Your code is 730166"), and evaluating the text regexps is by far the
// costliest part of classifying a message. The memo remembers, per text, which text regexps
// matched, and is keyed by the text with its ASCII digits replaced by a representative: two
// digits get the same representative when every character atom (literal, class, "any") of
// every text regexp treats them alike. Regexp matching only ever asks whether a character
// belongs to an atom, so texts equal up to such replacements match exactly the same
// regexps (and contain the same prefilter literals, which are built from the same atoms): a
// memo hit gives the answer evaluation would have given. With the default rules the digits
// fall into {2} (the literal in "2fa", "2-step") and {0,1,3,...,9}, so a template has at
// most 2^k entries for a k-digit code.

const (
	memoShards   = 16
	memoPerShard = 256 // entries per shard: 4096 in all
	memoMaxText  = 512 // longer texts are not memoised (bounds memory: ~2 MiB of keys)
	digitsN      = 10  // ASCII '0'..'9'
)

// textMemo is a sharded LRU of per-text regexp results. Safe for concurrent use; it has no
// goroutines (plain golang-lru, not the expirable one).
type textMemo struct {
	seed   maphash.Seed
	digit  [digitsN]byte // digit → its representative
	canon  [256]byte     // octet → itself, or a digit's representative
	shards [memoShards]*memoShard
}

// memoShard is one LRU of the memo. Look-ups peek under its read lock; an entry moves to
// the front (the write lock) only once half a shard of other entries were added or moved
// since it last did, so a text read at least that often stays, as with an exact LRU.
type memoShard struct {
	lru   *lru.Cache[uint64, memoEntry]
	moves atomic.Uint64 // adds and moves to the front
}

// Len is the number of entries.
func (s *memoShard) Len() int { return s.lru.Len() }

// memoEntry is what Match learnt about one canonical text: which text regexps (by index <
// maxMemo) were evaluated and which of those matched, and the prefilter hits.
type memoEntry struct {
	text      string // canonical text (guards against hash collisions)
	done, res uint64
	hits      uint64
	hitsDone  bool
	stamp     uint64 // the shard's moves when the entry last moved to the front
}

func newTextMemo(patterns []string) (*textMemo, error) {
	m := &textMemo{seed: maphash.MakeSeed()}
	m.digit = digitClasses(patterns)
	for c := range m.canon {
		m.canon[c] = byte(c)
	}
	for d, r := range m.digit {
		m.canon['0'+d] = r
	}
	for i := range m.shards {
		c, err := lru.New[uint64, memoEntry](memoPerShard)
		if err != nil {
			return nil, err
		}
		m.shards[i] = &memoShard{lru: c}
	}
	return m, nil
}

// digitClasses partitions the ASCII digits by how the patterns' character atoms treat them
// and maps each digit to the smallest digit of its class. A pattern that does not parse (it
// compiled, so this does not happen) makes every digit its own class.
func digitClasses(patterns []string) [digitsN]byte {
	var sig [digitsN]strings.Builder
	var ident [digitsN]byte
	for d := range ident {
		ident[d] = byte('0' + d)
	}
	atom := func(in func(r rune) bool) {
		for d := range sig {
			if in(rune('0' + d)) {
				sig[d].WriteByte('1')
			} else {
				sig[d].WriteByte('0')
			}
		}
	}
	var walk func(re *syntax.Regexp)
	walk = func(re *syntax.Regexp) {
		switch re.Op {
		case syntax.OpLiteral:
			for _, lr := range re.Rune {
				atom(func(r rune) bool {
					return r == lr || re.Flags&syntax.FoldCase != 0 && foldRune(r) == foldRune(lr)
				})
			}
		case syntax.OpCharClass:
			ranges := re.Rune
			atom(func(r rune) bool {
				for i := 0; i+1 < len(ranges); i += 2 {
					if ranges[i] <= r && r <= ranges[i+1] {
						return true
					}
				}
				return false
			})
			// OpAnyChar, OpAnyCharNotNL accept every digit; word boundaries see every digit as a
			// word character; anchors see none: they cannot tell digits apart.
		}
		for _, s := range re.Sub {
			walk(s)
		}
	}
	for _, p := range patterns {
		re, err := syntax.Parse(p, syntax.Perl)
		if err != nil {
			return ident
		}
		walk(re)
	}
	var out [digitsN]byte
	for d := range out {
		out[d] = byte('0' + d)
		for e := range d {
			if sig[e].String() == sig[d].String() {
				out[d] = byte('0' + e)
				break
			}
		}
	}
	return out
}

// key writes text's canonical form into buf and returns it with its hash; ok is false when
// the text is too long to memoise.
func (m *textMemo) key(text string, buf *[memoMaxText]byte) (k []byte, h uint64, ok bool) {
	if len(text) > memoMaxText {
		return nil, 0, false
	}
	k = buf[:len(text)]
	for i := 0; i < len(text); i++ {
		k[i] = m.canon[text[i]]
	}
	return k, maphash.Bytes(m.seed, k), true
}

func (m *textMemo) get(k []byte, h uint64) (memoEntry, bool) {
	s := m.shards[h%memoShards]
	e, ok := s.lru.Peek(h)
	if !ok || e.text != string(k) {
		return memoEntry{}, false
	}
	if s.moves.Load()-e.stamp >= memoPerShard/2 {
		// Drifted into the older half: move it to the front. A put of the same text
		// meanwhile may be overwritten by this older entry; both are true of the text.
		e.stamp = s.moves.Add(1)
		s.lru.Add(h, e)
	}
	return e, true
}

func (m *textMemo) put(k []byte, h uint64, e memoEntry) {
	s := m.shards[h%memoShards]
	e.text = string(k)
	e.stamp = s.moves.Add(1)
	s.lru.Add(h, e)
}
