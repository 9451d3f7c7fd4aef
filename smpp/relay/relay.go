// Package relay pairs ESME sessions with upstream SMSC sessions: it relays every PDU
// byte-exact (only the sequence number is rewritten), maps sequence numbers, routes
// receipts (DLRs) and MOs back to the right ESME, holds them for offline receivers, and
// offers one hook on the submit path. It knows nothing about OTPs.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/smppguard/smppguard/smpp"
)

// Mode is how an account's sessions reach the SMSC.
type Mode uint8

const (
	// Pooled: the proxy authenticates the ESME and carries its traffic over shared upstream
	// links chosen by route; receipts are correlated by message_id.
	Pooled Mode = iota
	// PassThrough: the ESME's own bind is forwarded; each ESME session gets its own upstream
	// session and the SMSC's bind_resp decides.
	PassThrough
)

func (m Mode) String() string {
	if m == PassThrough {
		return "passthrough"
	}
	return "pooled"
}

// Account is an ESME account as the relay needs it.
type Account struct {
	SystemID string
	// Password is checked for pooled accounts (pass-through forwards it): a bcrypt hash
	// ("$2a$…", "$2b$…", "$2y$…") is verified with bcrypt, anything else is compared in
	// constant time.
	Password string
	Mode     Mode
	// Upstream names the upstream a pass-through account's binds are forwarded to.
	Upstream string
	// BindTypes allowed (BindTransmitter, BindReceiver, BindTransceiver); empty allows all.
	BindTypes []smpp.CommandID
	// MaxBinds bounds concurrent binds; 0 means unlimited.
	MaxBinds int
	// Allow, if set, decides whether a bind from ip is accepted (source CIDRs).
	Allow func(ip net.IP) bool
	// Route is the default route of a pooled account (required in pooled mode), and
	// PrefixRoutes override it by destination prefix, longest first.
	Route        string
	PrefixRoutes []PrefixRoute
	// QueueMax and QueueTTL bound the receipts and MOs held while no receiver is bound.
	QueueMax int
	QueueTTL time.Duration
	// TPS bounds each session's submits per second (submit_sm, data_sm, submit_multi);
	// beyond it they are answered ESME_RTHROTTLED. 0: unlimited.
	TPS float64
}

// Upstream is one SMSC.
type Upstream struct {
	Name string
	Addr string
	// Session configures pass-through upstream sessions and the pooled link's binds.
	Session smpp.Config
	// Pooled link settings; the link is opened only when Pooled is true.
	Pooled       bool
	Bind         smpp.BindParams
	BindType     smpp.CommandID
	Binds        int
	RxBinds      int
	TPS          float64
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// TLS, if set, connects over TLS (pooled links and pass-through sessions). TLSKey
	// identifies the TLS settings for Reload (a changed key redials the upstream).
	TLS    *tls.Config
	TLSKey string
}

// PrefixRoute sends destinations starting with Prefix (a leading '+' is ignored on both
// sides) to Route.
type PrefixRoute struct {
	Prefix string
	Route  string
}

// routeFor returns the route of a destination without allocating.
func (a *Account) routeFor(dest []byte) string {
	if len(dest) > 0 && dest[0] == '+' {
		dest = dest[1:]
	}
	best, bestLen := a.Route, -1
	for _, pr := range a.PrefixRoutes {
		p := strings.TrimPrefix(pr.Prefix, "+")
		if len(p) > bestLen && len(p) <= len(dest) && string(dest[:len(p)]) == p {
			best, bestLen = pr.Route, len(p)
		}
	}
	return best
}

// MORule routes an MO (a deliver_sm that is not a receipt) arriving on a pooled link. The
// longest matching DestPrefix wins, whatever the order of the rules (see moRoute).
type MORule struct {
	DestPrefix string // "" matches every destination
	Upstream   string // "" matches every upstream
	Account    string
}

// Config configures a Relay. Durations of zero take the documented defaults.
type Config struct {
	Accounts  []Account
	Upstreams []Upstream
	// Routes maps a route name to an upstream name.
	Routes  map[string]string
	MORules []MORule
	Hook    SubmitHook
	// Store holds receipts and MOs for offline receivers; nil uses a MemStore bounded by each
	// account's QueueMax/QueueTTL.
	Store Store
	// DLRMatchWait: how long a receipt whose message_id is not known yet is held, waiting
	// for its submit_sm_resp (which may arrive on another bind). Default 2 s.
	DLRMatchWait time.Duration
	// DrainTimeout bounds how long Reload lets the sessions it unbinds finish their requests
	// and deliveries in flight before their unbind. Default 30 s.
	DrainTimeout time.Duration
	// CorrelationTTL and CorrelationMax bound the message_id → account map. Defaults 72 h, 1,000,000.
	CorrelationTTL time.Duration
	CorrelationMax int
	// LinkWait: how long a pooled request waits for an upstream bind with room before the
	// ESME gets ESME_RTHROTTLED. Default 5 s.
	LinkWait time.Duration
	// UnknownReceiptStatus acknowledges a receipt that matched no message after
	// DLRMatchWait (it is logged and counted). Default ESME_ROK.
	UnknownReceiptStatus smpp.Status
	// UnknownMOStatus acknowledges an MO that no rule routes. Default ESME_RX_P_APPN.
	UnknownMOStatus smpp.Status
	// Lockout refuses binds from a source address or for a system_id after repeated
	// authentication failures. Zero Failures disables it.
	Lockout Lockout
	// BindRate bounds bind attempts per source address (a token bucket per address);
	// beyond it binds are refused with ESME_RBINDFAIL. Zero PerSecond: unlimited.
	BindRate BindRate
	// Correlations, if set, persists receipt correlations (durable store): they are written
	// there too and consulted when the in-memory correlator misses (after a restart). A
	// store that also implements CorrCommitter is waited for: the submit_sm_resp reaches
	// the ESME only once its correlation is committed (ESME_RSYSERR if it cannot be).
	Correlations CorrStore
	// ObserveLatency, if set, gets the time from an ESME request's arrival to its response
	// being queued back to the ESME, for every relayed request (metrics).
	ObserveLatency func(id smpp.CommandID, d time.Duration)
	Logger         *zap.Logger

	// bcryptCompare replaces bcrypt.CompareHashAndPassword (tests count the compares).
	bcryptCompare func(hash, password []byte) error
}

// Stats are the relay's counters.
type Stats struct {
	BindsOK, BindsRefused            uint64
	ReceiptsMatched, ReceiptsHeld    uint64
	ReceiptsUnknown, MOsRouted       uint64
	MOsUnknown, Queued, QueueFull    uint64
	QueueDelivered, UpstreamFailures uint64
	// ForeignMessageIDs counts query_sm/cancel_sm/replace_sm refused (ESME_RINVMSGID) because
	// the message_id belongs to another pooled account.
	ForeignMessageIDs uint64

	// RefusedBy splits BindsRefused by reason (index: RefusalReason).
	RefusedBy [NumRefusalReasons]uint64
}

// Relay is the proxy core. Create it with New, start it with Start, serve ESMEs with Server.
type Relay struct {
	cfg   Config
	log   *zap.Logger
	corr  *correlator
	store Store

	// snap is the configuration in force (accounts, routes, MO rules, upstreams), swapped
	// whole by Reload. upList holds every upstream ever configured, append-only, so the
	// index carried by an in-flight request stays valid across reloads.
	snap     atomic.Pointer[snapshot]
	upList   atomic.Pointer[[]*upstream]
	reloadMu sync.Mutex

	mu    sync.Mutex
	accts map[string]*accountState

	draining atomic.Bool
	lock     *lockout
	bindRate *bindRateLimiter
	auth     *auth

	heldMu sync.Mutex
	held   []heldReceipt
	heldN  atomic.Int64
	wakeM  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	st struct {
		bindsOK, bindsRefused, rMatched, rHeld, rUnknown, moRouted, moUnknown, queued, queueFull, queueDelivered, upFail atomic.Uint64
		foreignIDs                                                                                                       atomic.Uint64

		refused [NumRefusalReasons]atomic.Uint64 // binds refused by reason
	}
}

type upstream struct {
	Upstream
	idx  int
	link *smpp.Link
	// prev: the upstream of the same name this one replaced with a Reload; a pooled link
	// carried over from it is reconfigured bind by bind instead of replaced (Reload).
	prev *upstream
}

type heldReceipt struct {
	up    *smpp.Session
	p     *smpp.PDU
	id    string
	until time.Time
	upN   string
	upSys string // the system_id the upstream binds with (see receiptOrigin)
}

// New validates cfg and builds a relay.
func New(cfg Config) (*Relay, error) {
	if cfg.DLRMatchWait <= 0 {
		cfg.DLRMatchWait = 2 * time.Second
	}
	if cfg.CorrelationTTL <= 0 {
		cfg.CorrelationTTL = 72 * time.Hour
	}
	if cfg.LinkWait <= 0 {
		cfg.LinkWait = 5 * time.Second
	}
	if cfg.UnknownMOStatus == 0 {
		cfg.UnknownMOStatus = smpp.StatusXPAppn
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	r := &Relay{
		cfg: cfg, log: cfg.Logger, corr: newCorrelator(cfg.CorrelationMax, cfg.CorrelationTTL),
		accts: map[string]*accountState{}, wakeM: make(chan struct{}, 1),
	}
	r.corr.durable, r.corr.ttl = cfg.Correlations, cfg.CorrelationTTL
	r.lock = newLockout(cfg.Lockout)
	r.bindRate = newBindRateLimiter(cfg.BindRate)
	r.upList.Store(&[]*upstream{})
	snap, fresh, err := compile(cfg, nil)
	if err != nil {
		return nil, err
	}
	r.auth = newAuth(cfg.bcryptCompare)
	r.auth.dummyFor(snap) // the dummy bcrypt hash is made now, not on the first unknown bind
	r.register(fresh)
	r.snap.Store(snap)
	r.store = cfg.Store
	if r.store == nil {
		r.store = NewMemStore(func(acc string) (int, time.Duration) {
			if a := r.snap.Load().accounts[acc]; a != nil {
				return a.QueueMax, a.QueueTTL
			}
			return 0, 0
		})
	}
	return r, nil
}

// snapshot is one configuration's accounts, routes, MO rules and upstreams.
type snapshot struct {
	accounts  map[string]*Account
	upstreams map[string]*upstream
	routes    map[string]string
	moRules   []MORule
}

// compile validates cfg and builds its snapshot. Upstreams whose settings did not change
// since prev are taken over with their links; fresh lists the new or changed ones.
func compile(cfg Config, prev *snapshot) (*snapshot, []*upstream, error) {
	s := &snapshot{accounts: map[string]*Account{}, upstreams: map[string]*upstream{}, routes: map[string]string{}, moRules: cfg.MORules}
	var fresh []*upstream
	for name, up := range cfg.Routes {
		s.routes[name] = up
	}
	for i := range cfg.Upstreams {
		nu := cfg.Upstreams[i]
		if _, dup := s.upstreams[nu.Name]; dup {
			return nil, nil, fmt.Errorf("relay: upstream %q defined twice", nu.Name)
		}
		nu.Pooled = false
		for _, up := range cfg.Routes {
			if up == nu.Name {
				nu.Pooled = true
			}
		}
		if prev != nil {
			if old := prev.upstreams[nu.Name]; old != nil && old.Upstream.same(nu) {
				s.upstreams[nu.Name] = old
				continue
			}
		}
		u := &upstream{Upstream: nu}
		if prev != nil {
			if old := prev.upstreams[nu.Name]; old != nil {
				u.prev = old
				// The same TLS settings keep their *tls.Config, so that a change elsewhere
				// (tps, say) re-dials no bind of a reconfigured link for them.
				if old.TLSKey == nu.TLSKey && (old.TLS == nil) == (nu.TLS == nil) {
					u.TLS = old.TLS
				}
			}
		}
		s.upstreams[nu.Name] = u
		fresh = append(fresh, u)
	}
	for name, up := range cfg.Routes {
		if s.upstreams[up] == nil {
			return nil, nil, fmt.Errorf("relay: route %q names unknown upstream %q", name, up)
		}
	}
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		if _, dup := s.accounts[a.SystemID]; dup {
			return nil, nil, fmt.Errorf("relay: account %q defined twice", a.SystemID)
		}
		switch a.Mode {
		case PassThrough:
			if s.upstreams[a.Upstream] == nil {
				return nil, nil, fmt.Errorf("relay: account %q: unknown upstream %q", a.SystemID, a.Upstream)
			}
		case Pooled:
			for _, rt := range append([]PrefixRoute{{Route: a.Route}}, a.PrefixRoutes...) {
				if _, ok := cfg.Routes[rt.Route]; !ok {
					return nil, nil, fmt.Errorf("relay: pooled account %q: unknown route %q", a.SystemID, rt.Route)
				}
			}
		}
		s.accounts[a.SystemID] = a
	}
	for _, m := range cfg.MORules {
		if s.accounts[m.Account] == nil {
			return nil, nil, fmt.Errorf("relay: MO rule names unknown account %q", m.Account)
		}
	}
	return s, fresh, nil
}

// same reports whether two upstream configurations would open the same binds.
func (u Upstream) same(o Upstream) bool {
	a, b := u.Session, o.Session
	return u.Name == o.Name && u.Addr == o.Addr && u.TLSKey == o.TLSKey && (u.TLS == nil) == (o.TLS == nil) && u.Pooled == o.Pooled && u.Bind == o.Bind && u.BindType == o.BindType &&
		u.Binds == o.Binds && u.RxBinds == o.RxBinds && u.TPS == o.TPS && u.ReconnectMin == o.ReconnectMin &&
		u.ReconnectMax == o.ReconnectMax && a.Window == b.Window && a.PeerWindow == b.PeerWindow && a.MaxPDUSize == b.MaxPDUSize &&
		a.EnquireLinkInterval == b.EnquireLinkInterval && a.InactivityTimeout == b.InactivityTimeout &&
		a.ResponseTimeout == b.ResponseTimeout && a.BindTimeout == b.BindTimeout && a.WriteTimeout == b.WriteTimeout
}

// register gives fresh upstreams their permanent index.
func (r *Relay) register(fresh []*upstream) {
	list := append([]*upstream(nil), *r.upList.Load()...)
	for _, u := range fresh {
		u.idx = len(list)
		list = append(list, u)
	}
	r.upList.Store(&list)
}

func (r *Relay) upstreamAt(idx uint64) *upstream { return (*r.upList.Load())[idx] }

func (r *Relay) startLink(u *upstream) {
	u.link = smpp.NewLink(r.linkConfig(u))
	u.link.Start(r.ctx)
}

// linkConfig is the pooled link configuration of upstream u. Binds made with it serve the
// SMSC's requests as u's (its name and system_id).
func (r *Relay) linkConfig(u *upstream) smpp.LinkConfig {
	return smpp.LinkConfig{
		Name: u.Name, Addr: u.Addr, Bind: u.Bind, BindType: u.BindType, Binds: u.Binds, RxBinds: u.RxBinds,
		TPS: u.TPS, ReconnectMin: u.ReconnectMin, ReconnectMax: u.ReconnectMax, Session: u.Session,
		Handler: &linkHandler{r: r, u: u}, Logger: r.log, TLS: u.TLS,
	}
}

// Start opens the pooled upstream links and the receipt matcher. They run until ctx is done
// or Close.
func (r *Relay) Start(ctx context.Context) {
	r.ctx, r.cancel = context.WithCancel(ctx)
	for _, u := range r.snap.Load().upstreams {
		if u.Pooled {
			r.startLink(u)
		}
	}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.matchLoop() }()
}

// Close stops the links (unbinding them up to ctx) and the relay's goroutines.
func (r *Relay) Close(ctx context.Context) error {
	for _, u := range *r.upList.Load() {
		if u.link != nil {
			u.link.Close(ctx)
		}
	}
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	return nil
}

// Links returns the pooled upstream links by upstream name.
func (r *Relay) Links() map[string]*smpp.Link {
	out := map[string]*smpp.Link{}
	for _, u := range r.snap.Load().upstreams {
		if u.link != nil {
			out[u.Name] = u.link
		}
	}
	return out
}

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	var by [NumRefusalReasons]uint64
	for i := range by {
		by[i] = r.st.refused[i].Load()
	}
	return Stats{
		RefusedBy: by, BindsOK: r.st.bindsOK.Load(), BindsRefused: r.st.bindsRefused.Load(),
		ReceiptsMatched: r.st.rMatched.Load(), ReceiptsHeld: r.st.rHeld.Load(), ReceiptsUnknown: r.st.rUnknown.Load(),
		MOsRouted: r.st.moRouted.Load(), MOsUnknown: r.st.moUnknown.Load(), Queued: r.st.queued.Load(),
		QueueFull: r.st.queueFull.Load(), QueueDelivered: r.st.queueDelivered.Load(), UpstreamFailures: r.st.upFail.Load(),
		ForeignMessageIDs: r.st.foreignIDs.Load(),
	}
}

// Drain makes the relay refuse new work: binds get ESME_RBINDFAIL and requests
// ESME_RTHROTTLED, while requests and deliveries already in flight complete.
func (r *Relay) Drain() { r.draining.Store(true) }

// InFlight counts the ESMEs' requests not answered yet and the deliver_sm (receipts, MOs)
// sent to ESMEs and not acknowledged yet, over all bound ESME sessions.
func (r *Relay) InFlight() (requests, deliveries int) {
	r.mu.Lock()
	states := make([]*accountState, 0, len(r.accts))
	for _, st := range r.accts {
		states = append(states, st)
	}
	r.mu.Unlock()
	for _, st := range states {
		st.mu.Lock()
		for _, e := range st.sessions {
			ours, peers := e.s.InFlight()
			requests += peers
			deliveries += ours
		}
		st.mu.Unlock()
	}
	return requests, deliveries
}

// QueueLen returns the number of receipts and MOs held for an account.
func (r *Relay) QueueLen(account string) int { return r.store.Len(account) }

// Server returns an SMPP server whose sessions are served by the relay.
func (r *Relay) Server(cfg smpp.Config, maxConns int) *smpp.Server {
	userClose := cfg.OnClose
	cfg.OnClose = func(s *smpp.Session, err error) {
		if v := s.Data.Load(); v != nil {
			if e, ok := (*v).(*esme); ok {
				e.closed()
			}
		}
		if userClose != nil {
			userClose(s, err)
		}
	}
	return &smpp.Server{Session: cfg, MaxConns: maxConns, Logger: r.log, NewHandler: r.newESME}
}

// Deliver queues a deliver_sm or data_sm frame (built by the caller, e.g. a receipt for a
// message the hook answered itself) for the account's receivers.
func (r *Relay) Deliver(account string, frame []byte) error {
	if r.snap.Load().accounts[account] == nil {
		return fmt.Errorf("relay: unknown account %q", account)
	}
	if err := r.store.Enqueue(account, frame); err != nil {
		r.st.queueFull.Add(1)
		return err
	}
	r.st.queued.Add(1)
	r.wake(account)
	return nil
}

// Response-handler kinds, in Ref.Aux's low byte. Bits 8–31 carry the upstream index,
// bits 32–63 the request's command_id.
const (
	kindForward uint64 = iota // relay the response to Ref.Session as Ref.Seq
	kindSubmit                // same, after recording the message_id for receipt correlation
	kindDeliver               // the ESME answered a deliver_sm: relay its status to the SMSC session Ref.Session
)

// auxReceipt marks a submit whose registered_delivery asks for a receipt or SME ack.
const auxReceipt uint64 = 1 << 31

func aux(kind uint64, upIdx int, id smpp.CommandID) uint64 {
	return kind | uint64(upIdx)<<8 | uint64(id)<<32
}

// wantsReceipt reports whether a submit's registered_delivery asks for an SMSC receipt,
// an SME acknowledgement or an intermediate notification: the only cases where receipts
// come back and the message_id must be remembered.
func wantsReceipt(p *smpp.PDU) bool {
	rd, _ := p.Uint8(smpp.FieldRegisteredDelivery)
	return rd&0x1F != 0
}

// HandleResponse implements smpp.ResponseHandler for relayed requests.
//
// It runs on another session's reader or writer goroutine (an upstream bind shared by every
// pooled account, or the ESME session for a deliver_sm_resp), so it never waits: the
// response is queued with TryWriteResponse, and a session whose send queue is full is not
// reading and is closed rather than allowed to stall that goroutine.
func (r *Relay) HandleResponse(ref smpp.Ref, resp *smpp.PDU, err error) {
	kind := ref.Aux & 0xFF
	reqID := smpp.CommandID(ref.Aux >> 32)
	upIdx := (ref.Aux >> 8) & 0x7FFFFF
	switch kind {
	case kindSubmit:
		// Only a message that asked for a receipt (registered_delivery) is correlated.
		if err == nil && resp.Status() == smpp.StatusOK && ref.Aux&auxReceipt != 0 {
			if e, ok := ref.Value.(*esme); ok && e.acct != nil {
				u := r.upstreamAt(upIdx)
				id, o := resp.CString(smpp.FieldMessageID), origin{account: e.acct.SystemID, upstream: u.Name}
				if r.corr.durable != nil && id != "" {
					if cc, ok := r.corr.durable.(CorrCommitter); ok {
						// Relayed once the correlation is durable (see relayAfterCommit).
						r.relayAfterCommit(ref, resp, reqID, cc, id, o)
						return
					}
				}
				r.corr.add(id, o)
				if r.heldN.Load() > 0 {
					select {
					case r.wakeM <- struct{}{}:
					default:
					}
				}
			}
		}
		fallthrough
	case kindForward:
		if r.cfg.ObserveLatency != nil && ref.Start != 0 {
			defer func() { r.cfg.ObserveLatency(reqID, time.Duration(time.Now().UnixNano()-ref.Start)) }()
		}
		if err != nil {
			r.st.upFail.Add(1)
			// The upstream dropped or did not answer: the ESME gets exactly one error response.
			r.relayResponse(ref.Session, smpp.HeaderOnly(reqID.Response(), smpp.StatusSysErr, ref.Seq))
			return
		}
		resp.SetSeq(ref.Seq)
		r.relayResponsePDU(ref.Session, resp)
	case kindDeliver:
		if err != nil {
			// The ESME did not answer in time (or went away): the SMSC keeps the message and retries.
			r.relayResponse(ref.Session, smpp.HeaderOnly(reqID.Response(), smpp.StatusXTAppn, ref.Seq))
			return
		}
		resp.SetSeq(ref.Seq)
		r.relayResponsePDU(ref.Session, resp)
	}
}

// relayResponse queues a relayed response to s without waiting (see HandleResponse). A full
// queue closed s (the session logs and counts it: Counters.QueueOverflows).
func (r *Relay) relayResponse(s *smpp.Session, frame []byte) {
	r.relayed(s, s.TryWriteResponse(frame))
}

// relayResponsePDU is relayResponse of resp's frame: written at once on this goroutine when
// nothing was read behind it and s has nothing queued (see smpp.PDU.Tail).
func (r *Relay) relayResponsePDU(s *smpp.Session, resp *smpp.PDU) {
	r.relayed(s, s.TryWriteResponsePDU(resp))
}

func (r *Relay) relayed(s *smpp.Session, err error) {
	if errors.Is(err, smpp.ErrQueueFull) {
		r.log.Warn("relay: session not reading its responses; closed", zap.String("system_id", s.SystemID()),
			zap.Stringer("peer", s.RemoteAddr()), zap.Bool("upstream", s.Side() == smpp.SideESME))
	}
}

func errStatus(err error) smpp.Status {
	switch {
	case errors.Is(err, smpp.ErrNoLink), errors.Is(err, smpp.ErrWindowTimeout):
		return smpp.StatusThrottled
	default:
		return smpp.StatusSysErr
	}
}

// accountState tracks an account's bound sessions and its queue drainer.
type accountState struct {
	mu       sync.Mutex
	sessions []*esme
	rr       int
	binding  int // pass-through binds in progress (count against MaxBinds)
	wake     chan struct{}
	running  bool
	// draining: sessions Reload is about to unbind (account removed, or its mode or
	// pass-through upstream changed). They admit no new submits, get no new deliver_sm, and
	// are unbound once their requests in flight are answered (see Relay.unbindAccount).
	draining map[*esme]struct{}
}

func (r *Relay) state(account string) *accountState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.accts[account]
	if st == nil {
		st = &accountState{wake: make(chan struct{}, 1)}
		r.accts[account] = st
	}
	return st
}

// Sessions returns the ESME sessions bound to account.
func (r *Relay) Sessions(account string) []*smpp.Session {
	st := r.state(account)
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]*smpp.Session, 0, len(st.sessions))
	for _, e := range st.sessions {
		out = append(out, e.s)
	}
	return out
}

// receiver returns a bound receiver of the account with window room (or any bound receiver
// when wait is true), round robin, leaving out sessions being drained for an unbind.
func (st *accountState) receiver(wait bool) *esme {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := len(st.sessions)
	var any *esme
	for i := 0; i < n; i++ {
		st.rr++
		e := st.sessions[st.rr%n]
		if !e.s.State().CanReceive() {
			continue
		}
		if len(st.draining) > 0 {
			if _, draining := st.draining[e]; draining {
				continue
			}
		}
		if ours, _ := e.s.InFlight(); ours < e.s.Config().Window {
			return e
		}
		if any == nil {
			any = e
		}
	}
	if wait {
		return any
	}
	return nil
}

func (r *Relay) wake(account string) {
	st := r.state(account)
	st.mu.Lock()
	start := !st.running
	st.running = true
	st.mu.Unlock()
	if start {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.drain(account, st) }()
	}
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// linkHandler serves requests from a pooled link's SMSC binds: receipts and MOs.
type linkHandler struct {
	r *Relay
	u *upstream
}

func (h *linkHandler) ServePDU(up *smpp.Session, p *smpp.PDU) {
	r := h.r
	switch p.ID() {
	case smpp.DeliverSM, smpp.DataSM:
	default: // alert_notification: nothing to relay it to in pooled mode
		r.log.Info("relay: alert_notification from upstream not relayed (pooled mode)", zap.String("upstream", h.u.Name))
		return
	}
	esm, _ := p.Uint8(smpp.FieldESMClass)
	tlv, hasTLV := p.TLV(smpp.TagReceiptedMessageID)
	if esm&0x3C != 0 || hasTLV {
		id := receiptID(tlv, p.ShortMessage())
		if o, ok := r.receiptOrigin(h.u.Name, h.u.Bind.SystemID, id); ok {
			r.st.rMatched.Add(1)
			r.deliver(o.account, up, p)
			return
		}
		r.st.rHeld.Add(1)
		r.heldMu.Lock()
		r.held = append(r.held, heldReceipt{up: up, p: p, id: id, until: time.Now().Add(r.cfg.DLRMatchWait), upN: h.u.Name, upSys: h.u.Bind.SystemID})
		r.heldMu.Unlock()
		r.heldN.Add(1)
		return
	}
	dest := p.CString(smpp.FieldDestinationAddr)
	if acct, ok := moRoute(r.snap.Load().moRules, h.u.Name, dest); ok {
		r.st.moRouted.Add(1)
		r.deliver(acct, up, p)
		return
	}
	r.st.moUnknown.Add(1)
	r.log.Warn("relay: MO matches no mo_rule; refused", zap.String("upstream", h.u.Name), zap.String("destination", dest), zap.Stringer("status", r.cfg.UnknownMOStatus))
	up.WriteResponse(smpp.HeaderOnly(p.ID().Response(), r.cfg.UnknownMOStatus, p.Seq()))
}

// moRoute picks the account of an MO that arrived on upstream for destination dest, like
// prefix_routes: the rule with the longest matching destination prefix wins ('+' ignored on
// both sides; "" matches everything), and between two rules with the same prefix the one
// naming this upstream beats the one for every upstream. Rules for another upstream never
// match. The file order does not matter (config validation refuses two rules with the same
// prefix and upstream).
func moRoute(rules []MORule, upstream, dest string) (account string, ok bool) {
	dest = strings.TrimPrefix(dest, "+")
	bestLen, bestUp := -1, false
	for _, m := range rules {
		if m.Upstream != "" && m.Upstream != upstream {
			continue
		}
		pfx := strings.TrimPrefix(m.DestPrefix, "+")
		if !strings.HasPrefix(dest, pfx) {
			continue
		}
		named := m.Upstream != ""
		if len(pfx) > bestLen || (len(pfx) == bestLen && named && !bestUp) {
			account, bestLen, bestUp, ok = m.Account, len(pfx), named, true
		}
	}
	return account, ok
}

// deliver hands an SMSC's deliver_sm/data_sm to one of the account's receivers, or queues it.
// The SMSC is answered with the ESME's own status, or ESME_ROK once the item is queued.
func (r *Relay) deliver(account string, up *smpp.Session, p *smpp.PDU) {
	st := r.state(account)
	orig := p.Seq()
	if r.store.Len(account) == 0 {
		for range 2 {
			e := st.receiver(false)
			if e == nil {
				break
			}
			err := e.s.TrySend(p, r, smpp.Ref{Session: up, Seq: orig, Aux: aux(kindDeliver, 0, p.ID())})
			if err == nil {
				return
			}
		}
	}
	frame := append([]byte(nil), p.Bytes()...)
	if err := r.store.Enqueue(account, frame); err != nil {
		r.st.queueFull.Add(1)
		r.log.Warn("relay: receiver queue full; SMSC asked to retry", zap.String("account", account), zap.Error(err))
		up.WriteResponse(smpp.HeaderOnly(p.ID().Response(), smpp.StatusXTAppn, orig))
		return
	}
	r.st.queued.Add(1)
	up.WriteResponse(smpp.HeaderOnly(p.ID().Response(), smpp.StatusOK, orig))
	r.wake(account)
}

type queuedResult struct {
	status smpp.Status
	err    error
}

type queuedHandler chan queuedResult

func (q queuedHandler) HandleResponse(_ smpp.Ref, p *smpp.PDU, err error) {
	if err != nil {
		q <- queuedResult{err: err}
		return
	}
	q <- queuedResult{status: p.Status()}
}

// drain delivers an account's queue, in order, one item at a time, whenever a receiver is
// bound; an item leaves the queue only when the ESME acknowledged it.
func (r *Relay) drain(account string, st *accountState) {
	ch := make(queuedHandler, 1)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-st.wake:
		case <-retry.C:
		case <-r.ctx.Done():
			return
		}
		for r.ctx.Err() == nil {
			item, ok := r.store.Peek(account)
			if !ok {
				break
			}
			e := st.receiver(true)
			if e == nil {
				break // woken again when a receiver binds
			}
			p, err := smpp.Parse(item.Frame)
			if err != nil {
				r.log.Error("relay: queued PDU unparsable; dropped", zap.String("account", account), zap.Error(err))
				r.store.Remove(account, item.ID)
				continue
			}
			ctx, cancel := context.WithTimeout(r.ctx, e.s.Config().ResponseTimeout)
			err = e.s.Send(ctx, p, ch, smpp.Ref{})
			cancel()
			var res queuedResult
			if err != nil {
				res.err = err
			} else {
				res = <-ch
			}
			switch {
			case res.err == nil && res.status == smpp.StatusOK:
				r.store.Remove(account, item.ID)
				r.st.queueDelivered.Add(1)
				continue
			case res.err == nil && (res.status == smpp.StatusXPAppn || res.status == smpp.StatusXRAppn):
				r.log.Warn("relay: ESME refused a queued PDU permanently; dropped", zap.String("account", account), zap.Stringer("status", res.status))
				r.store.Remove(account, item.ID)
				continue
			}
			r.log.Info("relay: queued delivery failed; will retry", zap.String("account", account), zap.Error(res.err), zap.Stringer("status", res.status))
			retry.Reset(time.Second)
			break
		}
	}
}

// matchLoop retries held receipts as submit_sm_resps arrive and gives up on them after
// DLRMatchWait.
func (r *Relay) matchLoop() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	ticks := 0
	for {
		select {
		case <-t.C:
			if ticks++; ticks%20 == 0 {
				r.corr.sweep() // expired receipt correlations, once a second
			}
		case <-r.wakeM:
		case <-r.ctx.Done():
			return
		}
		if r.heldN.Load() == 0 {
			continue
		}
		now := time.Now()
		r.heldMu.Lock()
		held := r.held
		r.held = nil
		r.heldMu.Unlock()
		var keep []heldReceipt
		for _, h := range held {
			if o, ok := r.receiptOrigin(h.upN, h.upSys, h.id); ok {
				r.st.rMatched.Add(1)
				r.heldN.Add(-1)
				r.deliver(o.account, h.up, h.p)
				continue
			}
			if now.After(h.until) {
				r.heldN.Add(-1)
				r.st.rUnknown.Add(1)
				r.log.Warn("relay: receipt for an unknown message_id",
					zap.String("message_id", h.id), zap.String("upstream", h.upN), zap.Stringer("acked_with", r.cfg.UnknownReceiptStatus))
				h.up.WriteResponse(smpp.HeaderOnly(h.p.ID().Response(), r.cfg.UnknownReceiptStatus, h.p.Seq()))
				continue
			}
			keep = append(keep, h)
		}
		if len(keep) > 0 {
			r.heldMu.Lock()
			r.held = append(r.held, keep...)
			r.heldMu.Unlock()
		}
	}
}

// esme is the relay's state for one ESME session.
type esme struct {
	r       *Relay
	s       *smpp.Session
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	acct    *Account
	binding bool
	up      *smpp.Session // pass-through pair
	tps     *rate.Limiter // per-session submit limit, nil: none
	// tpsOn: tps limits (false when unlimited, so the hot path reads no clock for it).
	// Set before a new limit is put in force.
	tpsOn atomic.Bool
	// view: this session's account as the current snapshot has it, resolved once per
	// snapshot (see esme.view).
	viewC atomic.Pointer[esmeView]
}

// esmeView is a bound session's account resolved in one snapshot: what the submit path
// would otherwise look up in the snapshot's maps for every message.
type esmeView struct {
	snap *snapshot
	acct *Account // the snapshot's version of the account; the bound one when a reload removed it
	// inSnap: the account is in snap (a removed account's sessions drain: their messages go
	// by the routes they bound with, never by a route chosen from another account).
	inSnap bool
	defUp  *upstream // the upstream of acct.Route in snap; nil when none
}

// view returns e's account resolved in the current snapshot, computing it only when the
// snapshot changed (a reload) since the last message.
func (e *esme) view() *esmeView {
	snap := e.r.snap.Load()
	if v := e.viewC.Load(); v != nil && v.snap == snap {
		return v
	}
	v := &esmeView{snap: snap, acct: e.acct}
	if cur := snap.accounts[e.acct.SystemID]; cur != nil {
		v.acct, v.inSnap = cur, true
	}
	v.defUp = snap.upstreams[snap.routes[v.acct.Route]]
	e.viewC.Store(v)
	return v
}

func (r *Relay) newESME(s *smpp.Session) smpp.Handler {
	e := &esme{r: r, s: s}
	base := r.ctx
	if base == nil {
		base = context.Background()
	}
	e.ctx, e.cancel = context.WithCancel(base)
	var v any = e
	s.Data.Store(&v)
	return e
}

func (e *esme) ServePDU(s *smpp.Session, p *smpp.PDU) {
	if e.r.draining.Load() {
		if p.ID().IsBind() {
			e.refuseBind(p, smpp.StatusBindFail, RefusedShuttingDown, "shutting down")
		} else {
			s.Respond(p, smpp.StatusThrottled, "")
		}
		return
	}
	switch id := p.ID(); {
	case id.IsBind():
		e.bind(p)
	case id == smpp.SubmitSM || id == smpp.DataSM || id == smpp.SubmitMulti:
		e.submit(p)
	default: // query_sm, cancel_sm, replace_sm
		// Pooled: the message's own upstream when the correlator knows it (messages that asked
		// for a receipt), else the default route. A message_id known only as another
		// account's message is refused: one bank must not query, cancel or replace another's
		// messages over the shared binds. Pass-through: the paired session (the SMSC decides).
		route := ""
		e.mu.Lock()
		a := e.acct
		e.mu.Unlock()
		if a != nil && a.Mode == Pooled {
			o, mine, other := e.r.corr.lookupFor(a.SystemID, p.CString(smpp.FieldMessageID))
			switch {
			case mine:
				route = "@" + o.upstream
			case other:
				e.r.st.foreignIDs.Add(1)
				s.Respond(p, smpp.StatusInvMsgID, "")
				return
			}
		}
		e.forward(p, route, kindForward, time.Time{})
	}
}

// refused counts a refused bind.
func (r *Relay) refused(why RefusalReason) {
	r.st.bindsRefused.Add(1)
	r.st.refused[why].Add(1)
}

func (e *esme) refuseBind(p *smpp.PDU, status smpp.Status, reason RefusalReason, why string, fields ...zap.Field) {
	e.r.refused(reason)
	e.r.log.Info("relay: bind refused", append(fields, zap.String("reason", why), zap.Stringer("status", status),
		zap.String("system_id", p.CString(smpp.FieldSystemID)), zap.Stringer("peer", e.s.RemoteAddr()))...)
	e.s.AcceptBind(p, status, "")
}

func (e *esme) bind(p *smpp.PDU) {
	r := e.r
	e.mu.Lock()
	if e.binding {
		e.mu.Unlock()
		e.s.AcceptBind(p, smpp.StatusAlyBnd, "")
		return
	}
	e.binding = true
	e.mu.Unlock()
	done := func() { e.mu.Lock(); e.binding = false; e.mu.Unlock() }
	sysID := p.CString(smpp.FieldSystemID)
	ip := remoteIP(e.s.RemoteAddr())
	if !r.bindRate.allow(ip) {
		done()
		e.refuseBind(p, smpp.StatusBindFail, RefusedBindRate, "bind rate from this address exceeded")
		return
	}
	if why := r.lock.locked(ip, sysID); why != "" {
		done()
		e.refuseBind(p, smpp.StatusBindFail, RefusedLockout, why)
		return
	}
	snap := r.snap.Load()
	a := snap.accounts[sysID]
	if a == nil {
		// Answered like a wrong password, and as late (a bcrypt compare when accounts use
		// bcrypt), so a prober cannot tell which system_ids exist; the log says which it was.
		r.auth.unknownSystemID(snap, p.Field(smpp.FieldPassword))
		done()
		r.lock.failed(ip, sysID)
		e.refuseBind(p, smpp.StatusInvPaswd, RefusedUnknownSystemID, "unknown system_id")
		return
	}
	// Pooled accounts are authenticated here; a pass-through account with a password set is
	// checked here too, before its bind is forwarded. The password comes before the source
	// address and bind type checks: a refusal for those (ESME_RBINDFAIL) would otherwise tell
	// a prober without the password that the system_id exists.
	if (a.Mode == Pooled || a.Password != "") && !r.auth.passwordOK(a.Password, p.Field(smpp.FieldPassword)) {
		done()
		r.lock.failed(ip, sysID)
		e.refuseBind(p, smpp.StatusInvPaswd, RefusedBadCredentials, "wrong password")
		return
	}
	if a.Allow != nil {
		if ta, ok := e.s.RemoteAddr().(*net.TCPAddr); ok && !a.Allow(ta.IP) {
			done()
			e.refuseBind(p, smpp.StatusBindFail, RefusedSourceCIDR, "source address not allowed for account")
			return
		}
	}
	if !bindTypeAllowed(a, p.ID()) {
		done()
		e.refuseBind(p, smpp.StatusBindFail, RefusedBindType, "bind type not allowed for account", zap.Stringer("bind", p.ID()))
		return
	}
	if a.Mode == Pooled {
		r.lock.succeeded(ip) // pass-through: only once the SMSC accepted the bind
	}
	st := r.state(a.SystemID)
	st.mu.Lock()
	if a.MaxBinds > 0 && len(st.sessions)+st.binding >= a.MaxBinds {
		st.mu.Unlock()
		done()
		e.refuseBind(p, smpp.StatusBindFail, RefusedMaxBinds, "max_binds reached", zap.Int("max_binds", a.MaxBinds))
		return
	}
	st.binding++
	st.mu.Unlock()
	if a.Mode == Pooled {
		e.bound(a, st, nil)
		e.s.AcceptBind(p, smpp.StatusOK, a.SystemID)
		done()
		r.wake(a.SystemID)
		return
	}
	// Pass-through: forward the ESME's own bind; the SMSC's bind_resp decides. Dialling must
	// not hold the reader, so it runs on its own goroutine.
	go func() {
		defer done()
		u := r.snap.Load().upstreams[a.Upstream]
		esmeSeq := p.Seq()
		ctx, cancel := context.WithTimeout(e.ctx, bindTimeout(u.Session))
		defer cancel()
		var dialer smpp.Dialer = &net.Dialer{}
		if u.TLS != nil {
			dialer = &tls.Dialer{Config: u.TLS}
		}
		// The SMSC may send deliver_sm right behind its bind_resp: the pair handler holds it
		// until the ESME has its bind_resp (or the bind failed, then it is refused).
		ready := make(chan struct{})
		var once sync.Once
		markReady := func() { once.Do(func() { close(ready) }) }
		defer markReady()
		ph := &pairHandler{e: e, ready: ready}
		up, resp, err := smpp.DialWith(ctx, dialer, u.Addr, p, ph, u.Session)
		p.SetSeq(esmeSeq)
		if resp == nil {
			st.mu.Lock()
			st.binding--
			st.mu.Unlock()
			r.st.upFail.Add(1)
			e.refuseBind(p, smpp.StatusBindFail, RefusedUpstreamUnreachable, "upstream unreachable", zap.String("upstream", u.Name), zap.Error(err))
			return
		}
		if err != nil { // refused by the SMSC: relay its answer as it is
			st.mu.Lock()
			st.binding--
			st.mu.Unlock()
			r.refused(RefusedBySMSC)
			if authRefusal(resp.Status()) {
				// The SMSC judged the credentials: a failure toward the lockout like ours.
				r.lock.failed(ip, sysID)
			}
			r.log.Info("relay: pass-through bind refused by the SMSC", zap.String("system_id", sysID),
				zap.String("upstream", u.Name), zap.Stringer("status", resp.Status()), zap.Stringer("peer", e.s.RemoteAddr()))
			e.s.CompleteBind(p, resp.Bytes(), "")
			return
		}
		r.lock.succeeded(ip)
		e.bound(a, st, up)
		if err := e.s.CompleteBind(p, resp.Bytes(), a.SystemID); err != nil || e.ctx.Err() != nil {
			up.Close()
			return
		}
		markReady()
		r.wake(a.SystemID)
		go e.watchPair(up)
	}()
}

// watchPair ends a pass-through ESME session when its upstream session ends, the way its
// carrier would have ended it. By then every request in flight on the upstream session has
// its one response queued (ESME_RSYSERR: the upstream session's close answers its pending
// requests before Done), and those responses are written before the ESME session closes:
//   - the SMSC unbound: the ESME is sent an unbind, and its unbind_resp (or its response
//     timeout) closes the session; the SMSC's unbind was answered by the upstream session;
//   - the SMSC dropped the connection: the ESME session is closed once what is queued is
//     flushed (bounded by its WriteTimeout).
func (e *esme) watchPair(up *smpp.Session) {
	select {
	case <-up.Done():
	case <-e.ctx.Done():
		return // the ESME went first: closed() unbinds the upstream session
	}
	log := e.r.log.With(zap.String("system_id", e.s.SystemID()), zap.Stringer("peer", e.s.RemoteAddr()))
	if up.PeerUnbound() {
		log.Info("relay: pass-through upstream unbound by the SMSC; unbinding the ESME")
		ctx, cancel := context.WithTimeout(context.Background(), e.s.Config().ResponseTimeout)
		defer cancel()
		if err := e.s.Unbind(ctx); err != nil {
			log.Info("relay: ESME did not answer its unbind", zap.Error(err))
		}
		return
	}
	log.Info("relay: pass-through upstream closed; closing the ESME", zap.Error(up.Err()))
	e.s.CloseFlushed()
}

func bindTimeout(c smpp.Config) time.Duration {
	if c.BindTimeout > 0 {
		return c.BindTimeout
	}
	return 10 * time.Second
}

func bindTypeAllowed(a *Account, id smpp.CommandID) bool {
	if len(a.BindTypes) == 0 {
		return true
	}
	for _, t := range a.BindTypes {
		if t == id {
			return true
		}
	}
	return false
}

func (e *esme) bound(a *Account, st *accountState, up *smpp.Session) {
	e.r.st.bindsOK.Add(1)
	// Every session has a limiter (rate.Inf when the account has no tps), so that Reload can
	// change the limit of bound sessions. The account's tps is read under st.mu, where Reload
	// applies a new one after swapping the snapshot: a session binding during a reload gets
	// the new limit either here or from Reload.
	//
	// A bind that began before a Reload removed or changed its account (a pass-through dial
	// takes a while) ends after unbindAccount looked at the sessions: it sees the new
	// snapshot here, under the same lock, and is drained and unbound like the others.
	st.mu.Lock()
	cur := e.r.snap.Load().accounts[a.SystemID]
	tps := a.TPS
	if cur != nil {
		tps = cur.TPS
	}
	stale := accountReplaced(a, cur)
	lim := rate.NewLimiter(tpsLimit(tps))
	if stale {
		lim = rate.NewLimiter(0, 0) // admits nothing: the session is being unbound
	}
	e.mu.Lock()
	e.acct = a
	e.up = up
	e.tps = lim
	e.tpsOn.Store(tps > 0 || stale)
	e.mu.Unlock()
	st.binding--
	st.sessions = append(st.sessions, e)
	if stale {
		st.markDraining(e)
	}
	st.mu.Unlock()
	if stale {
		e.r.log.Info("relay: bind completed for an account a reload removed or changed; unbinding it", zap.String("system_id", a.SystemID))
		go e.r.drainAndUnbind(e, e.r.drainTimeout())
	}
}

func (e *esme) closed() {
	e.cancel()
	e.mu.Lock()
	a, up := e.acct, e.up
	e.mu.Unlock()
	if a != nil {
		st := e.r.state(a.SystemID)
		st.mu.Lock()
		for i, x := range st.sessions {
			if x == e {
				st.sessions = append(st.sessions[:i], st.sessions[i+1:]...)
				break
			}
		}
		if _, ok := st.draining[e]; ok {
			delete(st.draining, e)
		}
		st.mu.Unlock()
	}
	if up != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), bindTimeout(up.Config()))
			defer cancel()
			up.Unbind(ctx)
		}()
	}
}

func (e *esme) submit(p *smpp.PDU) {
	if e.tpsOn.Load() && !e.tps.Allow() {
		e.s.Respond(p, smpp.StatusThrottled, "")
		return
	}
	h := e.r.cfg.Hook
	if h == nil {
		e.forward(p, "", kindSubmit, time.Time{})
		return
	}
	route := ""
	if v := e.view(); v.inSnap && v.acct.Mode == Pooled {
		route = v.acct.routeFor(p.Field(smpp.FieldDestinationAddr))
	}
	if in, ok := h.(Interests); ok && !in.Intercepts(e.acct.SystemID, route) {
		e.forward(p, route, kindSubmit, time.Time{}) // the route is resolved once
		return
	}
	var start time.Time
	if e.r.cfg.ObserveLatency != nil {
		start = time.Now()
	}
	req := &SubmitRequest{Ctx: e.ctx, Account: e.acct.SystemID, Route: route, Session: e.s, PDU: p, e: e, start: start, route: route}
	v := h.Submit(req)
	if v.Action == Pending {
		return
	}
	req.once.Do(func() {}) // later Resolve calls are ignored
	e.apply(p, v, start, route)
}

// apply carries out a hook's verdict. start (zero unless latency is observed) is when the
// request arrived; answers the hook gives itself are observed here, relayed ones on their
// response.
func (e *esme) apply(p *smpp.PDU, v Verdict, start time.Time, route string) {
	if !start.IsZero() && (v.Action == Reject || v.Action == Answer) {
		defer func() { e.r.cfg.ObserveLatency(p.ID(), time.Since(start)) }()
	}
	switch v.Action {
	case Pass:
		e.forward(p, route, kindSubmit, start)
	case Reroute:
		e.forward(p, v.Route, kindSubmit, start)
	case Reject:
		st := v.Status
		if st == smpp.StatusOK {
			st = smpp.StatusSysErr
		}
		e.s.Respond(p, st, "")
	case Answer:
		e.s.Respond(p, v.Status, v.MessageID)
		if v.AfterAnswer != nil {
			v.AfterAnswer()
		}
	default:
		e.s.Respond(p, smpp.StatusSysErr, "")
	}
}

// forward relays request p: over the pass-through pair, or over the pooled link of route
// (a route name, or "@upstream" for a known upstream). The response comes back through
// HandleResponse with the ESME's sequence number restored.
//
// start is when the request arrived (zero: now), for the latency metric.
func (e *esme) forward(p *smpp.PDU, route string, kind uint64, start time.Time) {
	r := e.r
	seq := p.Seq()
	up := e.up
	v := e.view()
	a, snap := v.acct, v.snap // routes as reloaded
	if a.Mode == PassThrough && route == "" {
		if up == nil {
			e.s.Respond(p, smpp.StatusSysErr, "")
			return
		}
		pref := smpp.Ref{Session: e.s, Seq: seq, Aux: aux(kindForward, 0, p.ID())}
		if r.cfg.ObserveLatency != nil {
			pref.Start = startNanos(start)
		}
		if err := up.Send(e.ctx, p, r, pref); err != nil {
			p.SetSeq(seq)
			e.s.Respond(p, errStatus(err), "")
		}
		return
	}
	var u *upstream
	if strings.HasPrefix(route, "@") {
		u = snap.upstreams[route[1:]]
	} else {
		if route == "" {
			route = a.routeFor(p.Field(smpp.FieldDestinationAddr))
		}
		if route == a.Route {
			u = v.defUp
		} else {
			u = snap.upstreams[snap.routes[route]]
		}
	}
	if u == nil || u.link == nil {
		r.log.Warn("relay: no pooled upstream for route", zap.String("account", a.SystemID), zap.String("route", route))
		e.s.Respond(p, smpp.StatusSysErr, "")
		return
	}
	ref := smpp.Ref{Session: e.s, Seq: seq, Aux: aux(kind, u.idx, p.ID()), Value: e}
	if kind == kindSubmit && wantsReceipt(p) {
		ref.Aux |= auxReceipt
	}
	if r.cfg.ObserveLatency != nil {
		ref.Start = startNanos(start)
	}
	err := u.link.TrySend(p, r, ref)
	if err != nil {
		ctx, cancel := context.WithTimeout(e.ctx, r.cfg.LinkWait)
		err = u.link.Send(ctx, p, r, ref)
		cancel()
	}
	if err != nil {
		p.SetSeq(seq)
		e.s.Respond(p, errStatus(err), "")
	}
}

func startNanos(t time.Time) int64 {
	if t.IsZero() {
		return time.Now().UnixNano()
	}
	return t.UnixNano()
}

// pairHandler serves the SMSC's requests on a pass-through upstream session: everything goes
// to the paired ESME session, and the ESME's answer goes back.
type pairHandler struct {
	e     *esme
	ready <-chan struct{} // closed once the ESME's bind is answered
}

func (h *pairHandler) ServePDU(up *smpp.Session, p *smpp.PDU) {
	e := h.e
	seq := p.Seq()
	select {
	case <-h.ready:
	case <-e.ctx.Done():
	}
	if !e.s.State().Bound() {
		if p.ID().HasResponse() {
			up.WriteResponse(smpp.HeaderOnly(p.ID().Response(), smpp.StatusXTAppn, seq))
		}
		return
	}
	if !p.ID().HasResponse() { // alert_notification
		e.s.Send(e.ctx, p, nil, smpp.Ref{})
		return
	}
	ref := smpp.Ref{Session: up, Seq: seq, Aux: aux(kindDeliver, 0, p.ID())}
	// TrySend does not wait for queue room (an ESME that does not read is closed); only a
	// full window is waited for, as flow control toward this ESME's own upstream session.
	err := e.s.TrySend(p, e.r, ref)
	if errors.Is(err, smpp.ErrWindowTimeout) {
		err = e.s.Send(e.ctx, p, e.r, ref)
	}
	if err != nil {
		up.WriteResponse(smpp.HeaderOnly(p.ID().Response(), smpp.StatusXTAppn, seq))
	}
}
