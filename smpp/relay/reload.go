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
// upstreams are then unbound (their in-flight requests still get their responses until the
// unbind completes). Sessions of removed accounts, and of accounts whose mode or pass-through
// upstream changed, are unbound cleanly. Other settings of Config (timers, store, hook,
// lockout) keep their values from New.
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
			go func(l interface{ Close(context.Context) error }) {
				cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				l.Close(cctx)
			}(old.link)
		}
	}
	// Accounts.
	for id, a := range prev.accounts {
		na := snap.accounts[id]
		if na == nil {
			rep.AccountsRemoved = append(rep.AccountsRemoved, id)
		}
		if na == nil || na.Mode != a.Mode || (na.Mode == PassThrough && na.Upstream != a.Upstream) {
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

// unbindAccount unbinds every session of an account and reports how many there were.
func (r *Relay) unbindAccount(id string) int {
	st := r.state(id)
	st.mu.Lock()
	sessions := append([]*esme(nil), st.sessions...)
	st.mu.Unlock()
	for _, e := range sessions {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e.s.Unbind(ctx)
		}()
	}
	return len(sessions)
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
		if e.tps != nil {
			e.tps.SetLimit(lim)
			e.tps.SetBurst(burst)
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
