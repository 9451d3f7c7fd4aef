package relay

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/smppguard/smppguard/smpp"
)

// ReloadReport says what a Reload changed.
type ReloadReport struct {
	UpstreamsAdded    []string `json:"upstreams_added,omitempty"`
	UpstreamsRemoved  []string `json:"upstreams_removed,omitempty"`
	UpstreamsRedialed []string `json:"upstreams_redialed,omitempty"`
	// NotReady lists new or redialed pooled upstreams with no bind up when the new
	// configuration took over (they keep reconnecting).
	NotReady []string `json:"not_ready,omitempty"`
	// RedialFailed lists changed pooled upstreams whose bind-by-bind re-dial did not finish
	// within the reload: a re-dialled bind that did not come up with the new settings (the
	// binds not yet re-dialled stay up with the old ones; the failed bind keeps retrying and
	// the re-dial resumes when it binds), or the reload's own deadline.
	RedialFailed    []RedialFailure `json:"redial_failed,omitempty"`
	AccountsAdded   []string        `json:"accounts_added,omitempty"`
	AccountsRemoved []string        `json:"accounts_removed,omitempty"`
	SessionsUnbound int             `json:"sessions_unbound"`
	// TPSChanged lists accounts whose tps changed: their bound sessions apply it at once.
	TPSChanged     []string `json:"tps_changed,omitempty"`
	RoutesChanged  bool     `json:"routes_changed"`
	MORulesChanged bool     `json:"mo_rules_changed"`
}

// RedialFailure is a changed upstream whose re-dial stopped or did not finish in time.
type RedialFailure struct {
	Upstream string `json:"upstream"`
	// Slot is the bind that did not come up with the new settings (-1: the reload's
	// deadline came first; the re-dial goes on).
	Slot  int    `json:"slot"`
	Error string `json:"error"`
}

// Reload puts a new configuration of accounts, routes, MO rules and upstreams in force
// without dropping established binds. An invalid cfg is refused and nothing changes. New
// pooled upstreams are dialled and bound first (up to ctx), then the new configuration takes
// over at once for new PDUs; links of removed upstreams (or of upstreams no longer pooled)
// are then unbound once the requests in flight on them are answered (retireLink, up to
// Config.DrainTimeout). Sessions of removed accounts, and of accounts whose mode or
// pass-through upstream changed, stop taking work, finish what is in flight and are unbound
// (unbindAccount). A changed accounts[].tps applies to bound sessions at once. Other
// settings of Config (timers, store, hook, lockout, DrainTimeout) keep their values from New.
//
// A changed pooled upstream keeps its link, which is reconfigured in place
// (smpp.Link.Reconfigure) after the swap: a bind whose settings changed (address, TLS,
// credentials, bind type, session settings) stops taking new requests, its requests in
// flight are answered (up to the upstream session's response timeout), it is unbound and
// re-dialled with the new settings, and the next bind follows once it is bound (up to the
// bind timeout). The other binds carry the traffic meanwhile, so the SMSC never sees more
// binds of the system_id than the old or the new configuration asks for, and requests in
// flight get their own response. A changed bind count adds or removes binds; a changed tps
// applies at once. Reload waits for the re-dials (up to ctx). A re-dialled bind that does not
// come up in time stops that upstream's re-dial: it is reported in RedialFailed and logged,
// the binds not yet re-dialled stay up with the old settings and carry the traffic, the failed
// bind keeps retrying with backoff and the re-dial resumes when it binds; a later Reload
// starts over from the binds as they are. When ctx is done first the re-dial goes on and is
// reported in RedialFailed (slot -1).
func (r *Relay) Reload(ctx context.Context, cfg Config) (ReloadReport, error) {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	var rep ReloadReport
	prev := r.snap.Load()
	snap, fresh, err := compile(cfg, prev)
	if err != nil {
		return rep, err
	}
	r.register(fresh)
	var started, rolled []*upstream
	for _, u := range fresh {
		old := u.prev
		u.prev = nil
		if old != nil {
			rep.UpstreamsRedialed = append(rep.UpstreamsRedialed, u.Name)
		} else {
			rep.UpstreamsAdded = append(rep.UpstreamsAdded, u.Name)
		}
		if !u.Pooled || r.ctx == nil {
			continue
		}
		if old != nil && old.link != nil {
			u.link = old.link // reconfigured bind by bind below
			rolled = append(rolled, u)
			continue
		}
		r.startLink(u)
		started = append(started, u)
	}
	// Make before break: wait for the new links' first bind.
	for _, u := range started {
		for !u.link.Ready() && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
		if !u.link.Ready() {
			rep.NotReady = append(rep.NotReady, u.Name)
		}
	}
	r.snap.Store(snap)

	// Break: links no longer in force.
	for name, old := range prev.upstreams {
		cur := snap.upstreams[name]
		if cur == old {
			continue
		}
		if cur == nil {
			rep.UpstreamsRemoved = append(rep.UpstreamsRemoved, name)
		}
		if old.link != nil && (cur == nil || cur.link != old.link) {
			go r.retireLink(old)
		}
	}
	// Accounts.
	for id, a := range prev.accounts {
		na := snap.accounts[id]
		if na == nil {
			rep.AccountsRemoved = append(rep.AccountsRemoved, id)
		}
		if accountReplaced(a, na) {
			rep.SessionsUnbound += r.unbindAccount(id)
		}
	}
	for id, a := range snap.accounts {
		if prev.accounts[id] == nil {
			rep.AccountsAdded = append(rep.AccountsAdded, id)
		} else if a.TPS != prev.accounts[id].TPS {
			rep.TPSChanged = append(rep.TPSChanged, id)
		}
		r.applyTPS(id, a.TPS)
	}
	rep.RoutesChanged = !mapsEqual(prev.routes, snap.routes)
	rep.MORulesChanged = !slices.Equal(prev.moRules, snap.moRules)
	// Changed links, bind by bind (each link on its own: they never exceed their own binds).
	rep.RedialFailed, rep.NotReady = r.rollLinks(ctx, rolled), append(rep.NotReady, notReady(rolled)...)
	for _, l := range [][]string{rep.UpstreamsAdded, rep.UpstreamsRemoved, rep.UpstreamsRedialed, rep.AccountsAdded, rep.AccountsRemoved, rep.NotReady, rep.TPSChanged} {
		slices.Sort(l)
	}
	r.log.Info("relay: configuration reloaded", zap.Any("changes", rep))
	return rep, nil
}

// rollLinks reconfigures the links of changed pooled upstreams bind by bind (see Reload),
// all at once, and returns the ones that did not finish, sorted by upstream.
func (r *Relay) rollLinks(ctx context.Context, rolled []*upstream) []RedialFailure {
	errs := make([]error, len(rolled))
	var wg sync.WaitGroup
	for i, u := range rolled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = u.link.Reconfigure(ctx, r.linkConfig(u))
		}()
	}
	wg.Wait()
	var out []RedialFailure
	for i, err := range errs {
		if err == nil {
			continue
		}
		f := RedialFailure{Upstream: rolled[i].Name, Slot: -1, Error: err.Error()}
		var re *smpp.RollError
		if errors.As(err, &re) {
			f.Slot = re.Slot
		}
		r.log.Error("relay: reload: an upstream's bind-by-bind re-dial did not finish; its binds not yet re-dialled keep the old settings",
			zap.String("upstream", f.Upstream), zap.Int("slot", f.Slot), zap.Error(err))
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b RedialFailure) int { return strings.Compare(a.Upstream, b.Upstream) })
	return out
}

// notReady returns the names of the upstreams whose link has no transmitter bound.
func notReady(ups []*upstream) []string {
	var out []string
	for _, u := range ups {
		if !u.link.Ready() {
			out = append(out, u.Name)
		}
	}
	return out
}

// done is closed when the relay stops (nil before Start: never).
func (r *Relay) done() <-chan struct{} {
	if r.ctx == nil {
		return nil
	}
	return r.ctx.Done()
}

// retireLink closes the link of an upstream no longer in force. New requests already go to
// the new snapshot's links; the requests in flight on the old binds are answered first (up
// to Config.DrainTimeout), since an SMSC may answer them after its unbind_resp, which would
// turn them into ESME_RSYSERR. Then every bind is unbound.
func (r *Relay) retireLink(u *upstream) {
	inFlight := func() int {
		n := 0
		for _, s := range u.link.Sessions() {
			ours, _ := s.InFlight()
			n += ours
		}
		return n
	}
	if smpp.WaitIdle(r.done(), r.drainTimeout(), inFlight) == smpp.IdleTimedOut {
		r.log.Warn("relay: drain timeout; unbinding a replaced upstream link with requests in flight",
			zap.String("upstream", u.Name), zap.Int("requests_in_flight", inFlight()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u.link.Close(ctx)
}

// unbindAccount unbinds every session of an account and reports how many there were. The
// sessions first stop taking work: new submits are answered ESME_RTHROTTLED (their limiter
// is closed), no new deliver_sm is sent to them (receipts and MOs go to other receivers or
// the queue). Each is unbound once its requests and deliveries in flight are answered and no
// request came in for two polls (~20 ms), or after Config.DrainTimeout: a request in flight
// gets its response before the unbind instead of being cut off by it. query_sm, cancel_sm
// and replace_sm are still relayed meanwhile (and waited for).
func (r *Relay) unbindAccount(id string) int {
	st := r.state(id)
	st.mu.Lock()
	var sessions []*esme
	for _, e := range st.sessions {
		if _, already := st.draining[e]; already {
			continue
		}
		sessions = append(sessions, e)
		st.markDraining(e)
		if e.tps != nil {
			e.tpsOn.Store(true)
			e.tps.SetLimit(0)
			e.tps.SetBurst(0)
		}
	}
	st.mu.Unlock()
	timeout := r.drainTimeout()
	for _, e := range sessions {
		go r.drainAndUnbind(e, timeout)
	}
	return len(sessions)
}

// accountReplaced reports whether sessions bound as account a must go under the account's
// configuration now, cur (nil: removed): a changed mode or pass-through upstream.
func accountReplaced(a, cur *Account) bool {
	return cur == nil || cur.Mode != a.Mode || (cur.Mode == PassThrough && cur.Upstream != a.Upstream)
}

// markDraining records e as being drained for an unbind; st.mu is held.
func (st *accountState) markDraining(e *esme) {
	if st.draining == nil {
		st.draining = map[*esme]struct{}{}
	}
	st.draining[e] = struct{}{}
}

func (r *Relay) drainTimeout() time.Duration {
	if r.cfg.DrainTimeout > 0 {
		return r.cfg.DrainTimeout
	}
	return 30 * time.Second
}

// drainAndUnbind waits, up to timeout, until session e has nothing in flight and takes no
// more requests, then unbinds it.
func (r *Relay) drainAndUnbind(e *esme, timeout time.Duration) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var lastRx uint64
wait:
	for quiet := 0; quiet < 2; {
		select {
		case <-e.s.Done():
			return
		case <-r.done():
			break wait
		case <-deadline.C:
			ours, peers := e.s.InFlight()
			r.log.Warn("relay: drain timeout; unbinding a session of a removed or changed account with work in flight",
				zap.String("system_id", e.s.SystemID()), zap.Int("requests_in_flight", peers), zap.Int("deliveries_in_flight", ours))
			break wait
		case <-tick.C:
		}
		ours, peers := e.s.InFlight()
		rx := e.s.Counters().RxRequests
		if ours == 0 && peers == 0 && rx == lastRx {
			quiet++
		} else {
			quiet = 0
		}
		lastRx = rx
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.s.Unbind(ctx); err != nil {
		r.log.Info("relay: unbind of a removed or changed account's session", zap.String("system_id", e.s.SystemID()), zap.Error(err))
	}
}

// tpsLimit returns a session limiter's limit and burst for an account's tps (0: unlimited).
func tpsLimit(tps float64) (rate.Limit, int) {
	if tps <= 0 {
		return rate.Inf, 0
	}
	return rate.Limit(tps), max(1, int(tps/10))
}

// applyTPS puts an account's tps in force on its bound sessions (bound() reads it under the
// same lock, so a session binding meanwhile is not missed).
func (r *Relay) applyTPS(id string, tps float64) {
	st := r.state(id)
	lim, burst := tpsLimit(tps)
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, e := range st.sessions {
		if _, draining := st.draining[e]; draining {
			continue // stays closed until its unbind
		}
		if e.tps != nil {
			if tps > 0 {
				e.tpsOn.Store(true) // before the limit: no submit slips past it
			}
			e.tps.SetLimit(lim)
			e.tps.SetBurst(burst)
			e.tpsOn.Store(tps > 0)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
