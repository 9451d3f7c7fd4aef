package relay

import (
	"crypto/subtle"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/smppguard/smppguard/smpp"
)

// passwordOK checks a bind password against the configured one: bcrypt when the configured
// value is a bcrypt hash, else a constant-time comparison.
func passwordOK(configured string, given []byte) bool {
	if isBcrypt(configured) {
		return bcrypt.CompareHashAndPassword([]byte(configured), given) == nil
	}
	return subtle.ConstantTimeCompare(given, []byte(configured)) == 1
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
