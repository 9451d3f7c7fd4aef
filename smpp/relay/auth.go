package relay

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/smppguard/smppguard/smpp"
)

// RefusalReason says why the relay refused a bind: the reason label of
// smppguard_bind_refusals_total. Stats.RefusedBy counts binds per reason.
type RefusalReason uint8

const (
	// RefusedBadCredentials: a known account, a wrong password (checked by the proxy).
	RefusedBadCredentials RefusalReason = iota
	// RefusedUnknownSystemID: no such account (answered like a wrong password).
	RefusedUnknownSystemID
	// RefusedLockout: the source address or the system_id is locked out (listen.lockout).
	RefusedLockout
	// RefusedBindRate: the source address exceeded listen.bind_rate.
	RefusedBindRate
	// RefusedSourceCIDR: the address is not in the account's allowed CIDRs.
	RefusedSourceCIDR
	// RefusedBindType: the account may not bind so (accounts[].bind_types).
	RefusedBindType
	// RefusedMaxBinds: the account has accounts[].max_binds binds already.
	RefusedMaxBinds
	// RefusedBySMSC: a pass-through bind the SMSC refused (its bind_resp is relayed).
	RefusedBySMSC
	// RefusedUpstreamUnreachable: a pass-through bind whose SMSC could not be reached.
	RefusedUpstreamUnreachable
	// RefusedShuttingDown: the relay is draining.
	RefusedShuttingDown
	// NumRefusalReasons is the number of reasons (the length of Stats.RefusedBy).
	NumRefusalReasons
)

// String returns the reason's label value.
func (r RefusalReason) String() string {
	switch r {
	case RefusedBadCredentials:
		return "bad_credentials"
	case RefusedUnknownSystemID:
		return "unknown_system_id"
	case RefusedLockout:
		return "lockout"
	case RefusedBindRate:
		return "bind_rate"
	case RefusedSourceCIDR:
		return "source_cidr"
	case RefusedBindType:
		return "bind_type"
	case RefusedMaxBinds:
		return "max_binds"
	case RefusedBySMSC:
		return "passthrough_refused_by_smsc"
	case RefusedUpstreamUnreachable:
		return "upstream_unreachable"
	case RefusedShuttingDown:
		return "shutting_down"
	}
	return "unknown"
}

// auth checks bind passwords. A bind for an unknown system_id costs what a wrong password
// of a bcrypt account costs (one bcrypt compare, against a dummy hash of the accounts'
// cost), so response times do not tell which system_ids exist. One per relay.
type auth struct {
	// compare is bcrypt.CompareHashAndPassword (tests count its calls: Config.bcryptCompare);
	// generate is bcrypt.GenerateFromPassword.
	compare  func(hash, password []byte) error
	generate func(password []byte, cost int) ([]byte, error)

	// cur is the dummy hash for the accounts of one snapshot (nil hash: no account uses
	// bcrypt); recomputed when the snapshot changed. Hashes are made once per cost.
	cur    atomic.Pointer[dummyHash]
	mu     sync.Mutex
	hashes map[int][]byte
}

type dummyHash struct {
	snap *snapshot
	hash []byte
}

// newAuth returns an auth comparing with compare (nil: bcrypt.CompareHashAndPassword).
func newAuth(compare func(hash, password []byte) error) *auth {
	if compare == nil {
		compare = bcrypt.CompareHashAndPassword
	}
	return &auth{compare: compare, generate: bcrypt.GenerateFromPassword, hashes: map[int][]byte{}}
}

// passwordOK checks a bind password against the configured one: bcrypt when the configured
// value is a bcrypt hash, else a constant-time comparison.
func passwordOK(configured string, given []byte) bool {
	return checkPassword(bcrypt.CompareHashAndPassword, configured, given)
}

func checkPassword(compare func(hash, password []byte) error, configured string, given []byte) bool {
	if isBcrypt(configured) {
		return compare([]byte(configured), given) == nil
	}
	return subtle.ConstantTimeCompare(given, []byte(configured)) == 1
}

// passwordOK is passwordOK with the relay's compare function.
func (a *auth) passwordOK(configured string, given []byte) bool {
	return checkPassword(a.compare, configured, given)
}

// unknownSystemID spends on a bind for a system_id that s does not have the time a wrong
// password of a bcrypt account takes: one compare against a dummy hash. It does nothing
// when no account of s uses bcrypt (then no known account costs a compare either).
func (a *auth) unknownSystemID(s *snapshot, given []byte) {
	if h := a.dummyFor(s); h != nil {
		_ = a.compare(h, given) // never matches: the dummy's password is random
	}
}

// dummyFor returns the dummy hash for s's accounts: of the bcrypt cost most of them use
// (the higher on a tie), nil when none uses bcrypt. Accounts with other costs still
// differ in time from an unknown system_id; the usual configuration has one cost.
func (a *auth) dummyFor(s *snapshot) []byte {
	if d := a.cur.Load(); d != nil && d.snap == s {
		return d.hash
	}
	n := map[int]int{}
	for _, acc := range s.accounts {
		if isBcrypt(acc.Password) {
			if c, err := bcrypt.Cost([]byte(acc.Password)); err == nil {
				n[c]++
			}
		}
	}
	cost := 0
	for c, k := range n {
		if k > n[cost] || k == n[cost] && c > cost {
			cost = c
		}
	}
	var h []byte
	if cost > 0 {
		a.mu.Lock()
		h = a.hashes[cost]
		if h == nil {
			var pw [18]byte
			if _, err := rand.Read(pw[:]); err == nil {
				h, _ = a.generate([]byte(base64.RawStdEncoding.EncodeToString(pw[:])), cost)
			}
			if h != nil {
				a.hashes[cost] = h
			}
		}
		a.mu.Unlock()
	}
	a.cur.Store(&dummyHash{snap: s, hash: h})
	return h
}

func isBcrypt(s string) bool {
	return len(s) == 60 && (strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$"))
}

// Lockout configures the bind lockout: after Failures failed binds within Window from one
// source address, or for one system_id, binds from that address (or for that system_id) are
// refused for Duration. Other addresses and accounts are unaffected.
type Lockout struct {
	Failures int
	Window   time.Duration
	Duration time.Duration
}

type lockEntry struct {
	first    time.Time
	failures int
	until    time.Time
}

// lockout tracks failures per "ip:" and "sys:" key in a bounded expirable LRU, created once.
type lockout struct {
	cfg Lockout
	c   *expirable.LRU[string, *lockEntry]
	now func() time.Time
}

func newLockout(cfg Lockout) *lockout {
	if cfg.Failures <= 0 {
		return &lockout{}
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Minute
	}
	return &lockout{cfg: cfg, c: expirable.NewLRU[string, *lockEntry](100_000, nil, max(cfg.Window, cfg.Duration)), now: time.Now}
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// locked returns why a bind is refused, or "".
func (l *lockout) locked(ip, sysID string) string {
	if l.c == nil {
		return ""
	}
	now := l.now()
	if e, ok := l.c.Get("ip:" + ip); ok && now.Before(e.until) {
		return "source address locked out after repeated failed binds"
	}
	if e, ok := l.c.Get("sys:" + sysID); ok && now.Before(e.until) {
		return "system_id locked out after repeated failed binds"
	}
	return ""
}

// failed records a failed bind for the address and the system_id. Entries are replaced, never
// mutated, so the LRU's lock is the only one needed; two binds failing at the same instant
// for one key may count once, which only delays the lockout by one attempt.
func (l *lockout) failed(ip, sysID string) {
	if l.c == nil {
		return
	}
	now := l.now()
	for _, k := range []string{"ip:" + ip, "sys:" + sysID} {
		e, ok := l.c.Get(k)
		if !ok || now.Sub(e.first) > l.cfg.Window {
			e = &lockEntry{first: now}
		}
		e = &lockEntry{first: e.first, failures: e.failures + 1, until: e.until}
		if e.failures >= l.cfg.Failures {
			e.until = now.Add(l.cfg.Duration)
		}
		l.c.Add(k, e)
	}
}

// succeeded forgets the address's failures.
func (l *lockout) succeeded(ip string) {
	if l.c != nil {
		l.c.Remove("ip:" + ip)
	}
}

// authRefusal reports whether an SMSC's bind_resp status says the credentials were wrong
// (ESME_RINVPASWD, ESME_RINVSYSID): a pass-through bind refused so counts toward the
// lockout like a wrong password of a pooled account. Other refusals (ESME_RBINDFAIL for the
// SMSC's own bind limit, ESME_RALYBND ...) are not the ESME guessing and do not count.
func authRefusal(st smpp.Status) bool {
	return st == smpp.StatusInvPaswd || st == smpp.StatusInvSysID
}

// BindRate is a token bucket per source address for bind attempts.
type BindRate struct {
	PerSecond float64
	Burst     int
}

type bindRateLimiter struct {
	cfg BindRate
	c   *expirable.LRU[string, *rate.Limiter]
}

func newBindRateLimiter(cfg BindRate) *bindRateLimiter {
	if cfg.PerSecond <= 0 {
		return &bindRateLimiter{}
	}
	if cfg.Burst < 1 {
		cfg.Burst = 1
	}
	return &bindRateLimiter{cfg: cfg, c: expirable.NewLRU[string, *rate.Limiter](100_000, nil, 10*time.Minute)}
}

// allow takes a token for a bind from ip. Limiters live in a bounded LRU: an address not
// seen for ten minutes starts with a full bucket again.
func (b *bindRateLimiter) allow(ip string) bool {
	if b.c == nil {
		return true
	}
	l, ok := b.c.Get(ip)
	if !ok {
		l = rate.NewLimiter(rate.Limit(b.cfg.PerSecond), b.cfg.Burst)
		b.c.Add(ip, l)
	}
	return l.Allow()
}
