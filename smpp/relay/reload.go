package relay

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// ReloadReport says what a Reload changed.
type ReloadReport struct {
	UpstreamsAdded    []string `json:"upstreams_added,omitempty"`
	UpstreamsRemoved  []string `json:"upstreams_removed,omitempty"`
	UpstreamsRedialed []string `json:"upstreams_redialed,omitempty"`
	// NotReady lists new or redialed pooled upstreams with no bind up when the new
	// configuration took over (they keep reconnecting).
	NotReady        []string `json:"not_ready,omitempty"`
	AccountsAdded   []string `json:"accounts_added,omitempty"`
	AccountsRemoved []string `json:"accounts_removed,omitempty"`
	SessionsUnbound int      `json:"sessions_unbound"`
	// TPSChanged lists accounts whose tps changed: their bound sessions apply it at once.
	TPSChanged     []string `json:"tps_changed,omitempty"`
	RoutesChanged  bool     `json:"routes_changed"`
	MORulesChanged bool     `json:"mo_rules_changed"`
}

// Reload puts a new configuration of accounts, routes, MO rules and upstreams in force
// without dropping established binds. An invalid cfg is refused and nothing changes. New or
// changed pooled upstreams are dialled and bound first (make before break, up to ctx), then
// the new configuration takes over at once for new PDUs; links of removed or changed
// upstreams are then unbound once the requests in flight on them are answered (retireLink,
// up to Config.DrainTimeout). Sessions of removed accounts, and of accounts whose mode or
// pass-through upstream changed, stop taking work, finish what is in flight and are unbound
// (unbindAccount). A changed accounts[].tps applies to bound sessions at once. Other
// settings of Config (timers, store, hook, lockout, DrainTimeout) keep their values from New.
//
// Bind count during a redial: the changed upstream's new link starts all its binds at once
// (Binds, or 2×Binds for tx+rx) while the old link keeps all of its own; Reload waits for
// the new link's first bind, swaps, and the old binds are unbound after their in-flight
// requests are answered (typically one response time, at most DrainTimeout). For that
// moment the system_id holds up to twice its binds. An SMSC that caps binds per system_id
// refuses the extra ones and those slots retry with backoff (up to ReconnectMax) once the
// old binds are gone; if it refuses all of them, Reload waits until ctx is done, reports the
// upstream in NotReady and swaps anyway, so until a new bind is up that upstream's requests
// wait LinkWait and get ESME_RTHROTTLED. Replacing bind by bind needs a link whose bind
// count can change (smpp.Link has none).
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
	for _, u := range fresh {
		if _, existed := prev.upstreams[u.Name]; existed {
			rep.UpstreamsRedialed = append(rep.UpstreamsRedialed, u.Name)
		} else {
			rep.UpstreamsAdded = append(rep.UpstreamsAdded, u.Name)
		}
		if u.Pooled && r.ctx != nil {
			r.startLink(u)
		}
	}
	// Make before break: wait for the new links' first bind.
	for _, u := range fresh {
		if u.link == nil {
			continue
		}
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
		if snap.upstreams[name] == old {
			continue
		}
		if snap.upstreams[name] == nil {
			rep.UpstreamsRemoved = append(rep.UpstreamsRemoved, name)
		}
		if old.link != nil {
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
	for _, l := range [][]string{rep.UpstreamsAdded, rep.UpstreamsRemoved, rep.UpstreamsRedialed, rep.AccountsAdded, rep.AccountsRemoved, rep.NotReady, rep.TPSChanged} {
		slices.Sort(l)
	}
	r.log.Info("relay: configuration reloaded", zap.Any("changes", rep))
	return rep, nil
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
	deadline := time.NewTimer(r.drainTimeout())
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	inFlight := func() int {
		n := 0
		for _, s := range u.link.Sessions() {
			ours, _ := s.InFlight()
			n += ours
		}
		return n
	}
wait:
	for quiet := 0; quiet < 2; {
		select {
		case <-r.done():
			break wait
		case <-deadline.C:
			r.log.Warn("relay: drain timeout; unbinding a replaced upstream link with requests in flight",
				zap.String("upstream", u.Name), zap.Int("requests_in_flight", inFlight()))
			break wait
		case <-tick.C:
		}
		if inFlight() == 0 {
			quiet++
		} else {
			quiet = 0
		}
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
