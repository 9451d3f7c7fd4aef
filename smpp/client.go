package smpp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// BindError is a bind refused by the peer.
type BindError struct {
	Status Status
}

func (e *BindError) Error() string { return "smpp: bind refused: " + e.Status.String() }

// Unwrap returns the status.
func (e *BindError) Unwrap() error { return e.Status }

// Dial connects to addr and sends bind (a bind request, built or forwarded; its sequence
// number is replaced). It returns the session, bound, and the peer's bind_resp. When the
// peer refuses the bind the session is closed and the error is a *BindError; the response
// is still returned so a relay can forward it.
func Dial(ctx context.Context, addr string, bind *PDU, h Handler, cfg Config) (*Session, *PDU, error) {
	return DialWith(ctx, &net.Dialer{}, addr, bind, h, cfg)
}

// Dialer opens connections; *net.Dialer and *tls.Dialer satisfy it.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialWith is Dial over d: with a *tls.Dialer the TLS handshake is part of DialContext and
// so bounded by ctx, like the bind.
func DialWith(ctx context.Context, d Dialer, addr string, bind *PDU, h Handler, cfg Config) (*Session, *PDU, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("smpp: dial %s: %w", addr, err)
	}
	s := NewSession(c, SideESME, h, cfg)
	resp, err := s.Bind(ctx, bind)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	if st := resp.Status(); st != StatusOK {
		s.Close()
		return nil, resp, &BindError{Status: st}
	}
	return s, resp, nil
}

// LinkConfig configures an upstream link: one or more binds to one SMSC.
type LinkConfig struct {
	Name     string
	Addr     string
	Bind     BindParams
	BindType CommandID // BindTransceiver (default), BindTransmitter or BindReceiver
	// RxBinds adds receiver binds beside the BindType binds (for "one transmitter plus one
	// receiver" set-ups).
	RxBinds int
	Binds   int     // binds of BindType, default 1
	TPS     float64 // submits per second over the whole link; 0 = unlimited
	// ReconnectMin and ReconnectMax bound the wait before a bind is retried (defaults 500 ms
	// and 30 s): it doubles from ReconnectMin at each failed attempt up to ReconnectMax, with
	// full jitter (a random wait in [d/2, d]). A bind that came up and dropped counts as a
	// failed attempt unless it stayed up for StableBind, so an SMSC that accepts binds and
	// drops them at once is not redialled every ReconnectMin for ever.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	Session      Config
	// Handler serves the SMSC's requests (deliver_sm, data_sm, alert_notification) on every bind.
	Handler Handler
	Logger  *zap.Logger
	// OnBind, if set, is called when a bind comes up (err nil) or fails or drops (err set).
	OnBind func(l *Link, s *Session, err error)
	// TLS, if set, wraps every bind's connection in TLS (see ClientTLSConfig); nil = plain
	// TCP. The handshake is bounded by the bind timeout.
	TLS *tls.Config
}

// BindHealth is the state of one bind slot.
type BindHealth struct {
	Slot       int       `json:"slot"`
	BindType   string    `json:"bind_type"`
	State      string    `json:"state"`
	Since      time.Time `json:"since"`
	Reconnects uint64    `json:"reconnects"`
	LastError  string    `json:"last_error,omitempty"`
	InFlight   int       `json:"in_flight"`
}

// Link keeps a set of binds to one SMSC up: it dials, binds, keeps them alive (enquire_link
// is the session's), reconnects with exponential backoff and jitter, and sends requests over
// the bound transmitters with a window that waits and an optional TPS limit. Reconfigure
// changes its settings one bind at a time.
type Link struct {
	name    string
	log     *zap.Logger
	limiter atomic.Pointer[rate.Limiter] // nil: no TPS limit
	// slots is replaced whole (copy on write, under mu) when Reconfigure changes a slot;
	// pick reads it without a lock.
	slots atomic.Pointer[[]*slot]

	rollMu sync.Mutex // one Reconfigure at a time

	mu      sync.Mutex
	cfg     LinkConfig    // the settings in force for new slots
	up      chan struct{} // closed and replaced whenever a transmitter comes up
	roll    *roll         // the rolling reconfiguration still running, if any
	ctx     context.Context
	cancel  context.CancelFunc
	started bool
	closed  bool

	rr atomic.Uint32
	wg sync.WaitGroup

	// Clock and sleep, replaceable by tests before Start.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool
}

// roll is a running rolling reconfiguration (see Reconfigure).
type roll struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when its goroutine returned
}

// StableBind is how long a bind must stay up for its drop to restart the reconnect backoff
// from ReconnectMin: ReconnectMax, and at least 30 s.
func (c LinkConfig) StableBind() time.Duration { return max(c.ReconnectMax, 30*time.Second) }

// sleepCtx waits d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// slot is one bind: a goroutine (runSlot) that keeps it bound with the settings cfg.
type slot struct {
	n        int
	rx       bool // one of the RxBinds (else one of the Binds of BindType)
	bindType CommandID
	cfg      atomic.Pointer[LinkConfig]
	sess     atomic.Pointer[Session]
	// draining: pick leaves the slot out (Reconfigure is retiring it).
	draining atomic.Bool
	// link owns the slot (set before the slot is published by setSlots; read by pick).
	link *Link
	// Set by startSlotLocked.
	cancel context.CancelFunc
	done   chan struct{} // closed when runSlot returned
	bound  chan struct{} // closed when the slot's first bind came up

	mu         sync.Mutex
	since      time.Time
	lastErr    string
	reconnects uint64
}

func (c LinkConfig) withDefaults() LinkConfig {
	if c.Binds <= 0 {
		c.Binds = 1
	}
	if c.BindType == 0 {
		c.BindType = BindTransceiver
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = 500 * time.Millisecond
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = 30 * time.Second
		if c.ReconnectMax < c.ReconnectMin {
			c.ReconnectMax = c.ReconnectMin
		}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func newLimiter(tps float64) *rate.Limiter {
	if tps <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(tps), max(1, int(tps/10)))
}

func newSlot(n int, rx bool, cfg *LinkConfig) *slot {
	sl := &slot{n: n, rx: rx, bindType: cfg.BindType}
	if rx {
		sl.bindType = BindReceiver
	}
	sl.cfg.Store(cfg)
	return sl
}

// NewLink returns a link; Start brings it up.
func NewLink(cfg LinkConfig) *Link {
	cfg = cfg.withDefaults()
	l := &Link{name: cfg.Name, cfg: cfg, log: cfg.Logger.With(zap.String("link", cfg.Name)), up: make(chan struct{}), now: time.Now, sleep: sleepCtx}
	l.limiter.Store(newLimiter(cfg.TPS))
	c := &cfg // the slots' own copy: Reconfigure replaces l.cfg
	slots := make([]*slot, 0, cfg.Binds+cfg.RxBinds)
	for i := 0; i < cfg.Binds; i++ {
		slots = append(slots, newSlot(len(slots), false, c))
	}
	for i := 0; i < cfg.RxBinds; i++ {
		slots = append(slots, newSlot(len(slots), true, c))
	}
	l.setSlots(slots)
	return l
}

// setSlots publishes slots as the link's binds.
func (l *Link) setSlots(slots []*slot) {
	for _, sl := range slots {
		if sl.link == nil { // a new slot, not published yet
			sl.link = l
		}
	}
	l.slots.Store(&slots)
}

// Name returns the link's name.
func (l *Link) Name() string { return l.name }

// Start runs the bind slots until ctx is done or Close.
func (l *Link) Start(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.closed {
		return
	}
	l.started = true
	l.ctx, l.cancel = context.WithCancel(ctx)
	for _, sl := range *l.slots.Load() {
		l.startSlotLocked(sl)
	}
}

// startSlotLocked runs sl's goroutine; l.mu is held, the link started and not closed.
func (l *Link) startSlotLocked(sl *slot) {
	var sctx context.Context
	sctx, sl.cancel = context.WithCancel(l.ctx)
	sl.done, sl.bound = make(chan struct{}), make(chan struct{})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(sl.done)
		l.runSlot(sctx, sl)
	}()
}

// Close unbinds every bind (waiting for unbind_resp up to ctx) and stops reconnecting. A
// rolling reconfiguration still running stops.
func (l *Link) Close(ctx context.Context) error {
	l.mu.Lock()
	cancel := l.cancel
	l.closed = true
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	var wg sync.WaitGroup
	for _, sl := range *l.slots.Load() {
		// Whoever takes a session out of its slot unbinds it: here, or runSlot seeing ctx done.
		if s := sl.sess.Load(); s != nil && sl.sess.CompareAndSwap(s, nil) {
			wg.Add(1)
			go func() { defer wg.Done(); s.Unbind(ctx) }()
		}
	}
	wg.Wait()
	l.wg.Wait()
	return nil
}

func backoff(cfg *LinkConfig, attempt int) time.Duration {
	d := cfg.ReconnectMin << min(attempt, 20)
	if d > cfg.ReconnectMax || d <= 0 {
		d = cfg.ReconnectMax
	}
	// Full jitter in [d/2, d): binds that dropped together do not come back together.
	return d/2 + rand.N(d/2+1)
}

// unbindTimeout bounds an unbind the link makes on its own (a slot stopped by Reconfigure).
func unbindTimeout(cfg *LinkConfig) time.Duration {
	return cfg.Session.withDefaults().ResponseTimeout
}

func (l *Link) runSlot(ctx context.Context, sl *slot) {
	attempt := 0 // failed attempts since the last stable bind
	boundOnce := false
	for ctx.Err() == nil {
		cfg := sl.cfg.Load()
		s, err := l.bindOnce(ctx, sl, cfg)
		if err != nil {
			sl.mu.Lock()
			sl.lastErr = err.Error()
			sl.reconnects++
			sl.mu.Unlock()
			if cfg.OnBind != nil {
				cfg.OnBind(l, nil, err)
			}
			if ctx.Err() != nil {
				return
			}
			d := backoff(cfg, attempt)
			attempt++
			l.log.Warn("smpp: upstream bind failed; retrying", zap.Int("slot", sl.n), zap.Error(err), zap.Duration("in", d))
			if !l.sleep(ctx, d) {
				return
			}
			continue
		}
		upAt := l.now()
		sl.mu.Lock()
		sl.since = time.Now()
		sl.lastErr = ""
		sl.mu.Unlock()
		sl.sess.Store(s)
		if ctx.Err() != nil && sl.sess.CompareAndSwap(s, nil) {
			// Stopped while binding, and whoever stopped it did not see s: unbind it here.
			uctx, cancel := context.WithTimeout(context.Background(), unbindTimeout(cfg))
			s.Unbind(uctx)
			cancel()
			return
		}
		if sl.bindType != BindReceiver {
			l.mu.Lock()
			close(l.up)
			l.up = make(chan struct{})
			l.mu.Unlock()
		}
		if !boundOnce {
			boundOnce = true
			close(sl.bound)
		}
		l.log.Info("smpp: upstream bound", zap.Int("slot", sl.n), zap.Stringer("bind", sl.bindType), zap.String("addr", cfg.Addr))
		if cfg.OnBind != nil {
			cfg.OnBind(l, s, nil)
		}
		select {
		case <-s.Done():
		case <-ctx.Done():
			if sl.sess.CompareAndSwap(s, nil) {
				uctx, cancel := context.WithTimeout(context.Background(), unbindTimeout(cfg))
				s.Unbind(uctx)
				cancel()
			}
			<-s.Done() // Close or Reconfigure unbinds it
		}
		sl.sess.CompareAndSwap(s, nil)
		sl.mu.Lock()
		sl.since = time.Now()
		if err := s.Err(); err != nil {
			sl.lastErr = err.Error()
		}
		sl.reconnects++
		sl.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		up := l.now().Sub(upAt)
		if up >= cfg.StableBind() {
			attempt = 0 // it was a working bind: reconnect soon
		}
		d := backoff(cfg, attempt)
		attempt++
		l.log.Warn("smpp: upstream bind lost; reconnecting", zap.Int("slot", sl.n), zap.Error(s.Err()),
			zap.Duration("was_up", up), zap.Duration("in", d))
		if cfg.OnBind != nil {
			cfg.OnBind(l, s, fmt.Errorf("smpp: bind lost: %w", s.Err()))
		}
		if !l.sleep(ctx, d) {
			return
		}
	}
}

func (l *Link) bindOnce(ctx context.Context, sl *slot, cfg *LinkConfig) (*Session, error) {
	frame, err := cfg.Bind.Encode(sl.bindType, 0)
	if err != nil {
		return nil, err
	}
	p, err := Parse(frame)
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, sessionBindTimeout(cfg))
	defer cancel()
	var d Dialer = &net.Dialer{}
	if cfg.TLS != nil {
		d = &tls.Dialer{Config: cfg.TLS}
	}
	s, _, err := DialWith(bctx, d, cfg.Addr, p, cfg.Handler, cfg.Session)
	return s, err
}

func sessionBindTimeout(cfg *LinkConfig) time.Duration {
	if t := cfg.Session.BindTimeout; t > 0 {
		return t
	}
	return 10 * time.Second
}

// RollError is a rolling reconfiguration that stopped: slot Slot did not bind with the new
// settings within its bound. The link keeps retrying that slot with backoff; its other
// slots not yet re-dialled stay bound with the previous settings, and the roll resumes once
// the slot binds (or a later Reconfigure starts over).
type RollError struct {
	Slot int
	Err  error
}

func (e *RollError) Error() string {
	return fmt.Sprintf("smpp: bind %d did not come up with the new settings: %v", e.Slot, e.Err)
}

func (e *RollError) Unwrap() error { return e.Err }

// redialNeeded reports whether a slot bound with settings a must be re-dialled to run with
// b: address, TLS, bind parameters, bind type (of the Binds slots) or a session setting
// that a bind fixes changed. Other changes (TPS, reconnect backoff, Handler, OnBind, the
// session's Logger, hooks and counters) take effect without a re-dial (the handler and
// hooks with the slot's next bind).
func redialNeeded(a, b *LinkConfig, rx bool) bool {
	x, y := a.Session, b.Session
	return a.Addr != b.Addr || a.TLS != b.TLS || a.Bind != b.Bind || (!rx && a.BindType != b.BindType) ||
		x.Window != y.Window || x.PeerWindow != y.PeerWindow || x.ThrottleStatus != y.ThrottleStatus ||
		x.MaxPDUSize != y.MaxPDUSize || x.EnquireLinkInterval != y.EnquireLinkInterval ||
		x.InactivityTimeout != y.InactivityTimeout || x.ResponseTimeout != y.ResponseTimeout ||
		x.BindTimeout != y.BindTimeout || x.WriteTimeout != y.WriteTimeout
}

// Reconfigure puts cfg (its Name is ignored) in force without ever holding more binds than
// the old or the new configuration asks for, and without stopping traffic:
//
//   - Slots beyond the new Binds or RxBinds are removed first: they stop being picked, their
//     requests in flight are answered (up to the session's ResponseTimeout) and they are
//     unbound. New slots are then added and dialled.
//   - Slots whose bind changes (see redialNeeded) are re-dialled one at a time: the slot
//     stops being picked for new requests, its requests in flight are answered (up to its
//     session's ResponseTimeout), it is unbound, re-dialled with cfg, and Reconfigure waits
//     until it is bound (up to cfg's bind timeout) before the next. The other slots carry
//     the traffic meanwhile (with a single bind, requests wait for the new one: Send up to
//     its ctx, TrySend fails with ErrNoLink).
//   - Other changes apply at once (TPS) or at the slot's next bind.
//
// When a re-dialled slot does not bind within its bound, the roll stops there and
// Reconfigure returns a *RollError: the slots not yet re-dialled stay bound with the old
// settings and keep carrying traffic, the failed slot keeps retrying with backoff, and the
// roll resumes when it binds. ctx bounds only the wait: when it is done first, Reconfigure
// returns its error and the roll goes on. A later Reconfigure stops a roll still running
// and starts over from the slots as they are. Before Start it only replaces the settings.
func (l *Link) Reconfigure(ctx context.Context, cfg LinkConfig) error {
	cfg = cfg.withDefaults()
	cfg.Name = l.name
	nc := &cfg
	l.rollMu.Lock()
	defer l.rollMu.Unlock()

	l.mu.Lock()
	prev := l.roll
	l.roll = nil
	l.mu.Unlock()
	if prev != nil {
		prev.cancel()
		<-prev.done
	}

	l.mu.Lock()
	if cfg.TPS != l.cfg.TPS {
		l.limiter.Store(newLimiter(cfg.TPS))
	}
	l.cfg = cfg
	if !l.started || l.closed {
		defer l.mu.Unlock()
		if l.closed {
			return fmt.Errorf("smpp: reconfigure link %s: %w", l.name, ErrClosed)
		}
		slots := make([]*slot, 0, cfg.Binds+cfg.RxBinds)
		for i := 0; i < cfg.Binds; i++ {
			slots = append(slots, newSlot(len(slots), false, nc))
		}
		for i := 0; i < cfg.RxBinds; i++ {
			slots = append(slots, newSlot(len(slots), true, nc))
		}
		l.setSlots(slots)
		return nil
	}
	linkCtx := l.ctx
	l.mu.Unlock()

	// Removed slots: drained and unbound together (the bind count only goes down).
	var keep, removed []*slot
	var nTx, nRx int
	for _, sl := range *l.slots.Load() {
		if sl.rx && nRx < cfg.RxBinds {
			nRx++
			keep = append(keep, sl)
		} else if !sl.rx && nTx < cfg.Binds {
			nTx++
			keep = append(keep, sl)
		} else {
			removed = append(removed, sl)
		}
	}
	if len(removed) > 0 {
		l.log.Info("smpp: reconfigure: removing binds", zap.Int("binds", len(removed)))
		var wg sync.WaitGroup
		for _, sl := range removed {
			wg.Add(1)
			go func() { defer wg.Done(); l.retireSlot(linkCtx, sl) }()
		}
		wg.Wait()
	}
	// Added slots, and the kept ones' new settings.
	var stale []*slot
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("smpp: reconfigure link %s: %w", l.name, ErrClosed)
	}
	slots := make([]*slot, 0, cfg.Binds+cfg.RxBinds)
	for _, sl := range keep {
		if !sl.rx {
			slots = append(slots, sl)
		}
	}
	for i := nTx; i < cfg.Binds; i++ {
		slots = append(slots, newSlot(0, false, nc))
	}
	for _, sl := range keep {
		if sl.rx {
			slots = append(slots, sl)
		}
	}
	for i := nRx; i < cfg.RxBinds; i++ {
		slots = append(slots, newSlot(0, true, nc))
	}
	for i, sl := range slots {
		if sl.done == nil { // added
			sl.n = i
			l.startSlotLocked(sl)
			continue
		}
		if redialNeeded(sl.cfg.Load(), nc, sl.rx) {
			stale = append(stale, sl)
		} else {
			sl.cfg.Store(nc)
		}
	}
	l.setSlots(slots)
	if len(stale) == 0 {
		l.mu.Unlock()
		return nil
	}
	rctx, cancel := context.WithCancel(linkCtx)
	ro := &roll{cancel: cancel, done: make(chan struct{})}
	l.roll = ro
	res := make(chan error, 1)
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		defer close(ro.done)
		defer cancel()
		l.rollSlots(rctx, stale, nc, res)
	}()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return fmt.Errorf("smpp: reconfigure link %s: waiting for the re-dial: %w", l.name, ctx.Err())
	}
}

// rollSlots re-dials the stale slots one at a time with cfg (see Reconfigure) and reports
// on res once: nil when every slot is re-dialled, a *RollError when one did not bind in
// time (it then waits for that slot and goes on), or the error of ctx.
func (l *Link) rollSlots(ctx context.Context, stale []*slot, cfg *LinkConfig, res chan<- error) {
	report := func(err error) {
		select {
		case res <- err:
		default: // reported already
		}
	}
	l.log.Info("smpp: reconfigure: re-dialling binds one at a time", zap.Int("binds", len(stale)), zap.String("addr", cfg.Addr))
	for _, old := range stale {
		if !l.retireSlot(ctx, old) {
			report(fmt.Errorf("smpp: reconfigure link %s: %w", l.name, ctx.Err()))
			return
		}
		// Retired: its replacement runs even if this roll is stopped now, so no slot is
		// left without a goroutine.
		ns := newSlot(old.n, old.rx, cfg)
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			report(fmt.Errorf("smpp: reconfigure link %s: %w", l.name, ErrClosed))
			return
		}
		slots := slices.Clone(*l.slots.Load())
		if i := slices.Index(slots, old); i >= 0 {
			slots[i] = ns
		}
		l.startSlotLocked(ns)
		l.setSlots(slots)
		l.mu.Unlock()

		wait := time.NewTimer(sessionBindTimeout(cfg))
		select {
		case <-ns.bound:
		case <-ctx.Done():
		case <-wait.C:
			ns.mu.Lock()
			last := ns.lastErr
			ns.mu.Unlock()
			err := &RollError{Slot: ns.n, Err: errors.New(last)}
			if last == "" {
				err.Err = ErrTimeout
			}
			l.log.Error("smpp: reconfigure: a re-dialled bind did not come up with the new settings; the binds not yet re-dialled stay up with the old ones, the roll resumes when it binds",
				zap.Int("slot", ns.n), zap.String("addr", cfg.Addr), zap.Error(err.Err))
			report(err)
			select {
			case <-ns.bound:
				l.log.Info("smpp: reconfigure: the re-dialled bind came up; resuming", zap.Int("slot", ns.n))
			case <-ctx.Done():
			}
		}
		wait.Stop()
		if ctx.Err() != nil {
			report(fmt.Errorf("smpp: reconfigure link %s: %w", l.name, ctx.Err()))
			return
		}
	}
	l.log.Info("smpp: reconfigure: every bind re-dialled", zap.String("addr", cfg.Addr))
	report(nil)
}

// IdleResult is how WaitIdle ended.
type IdleResult int

// WaitIdle results.
const (
	Idle         IdleResult = iota // inFlight was 0 on two ticks in a row
	IdleTimedOut                   // timeout passed first
	IdleStopped                    // stop was closed first
)

// WaitIdle waits until inFlight() reports 0 on two consecutive 10 ms ticks (so a request
// sent just after one look is seen), up to timeout or until stop is closed. It is how a bind
// or link being retired lets the requests in flight on it be answered before its unbind.
func WaitIdle(stop <-chan struct{}, timeout time.Duration, inFlight func() int) IdleResult {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for quiet := 0; quiet < 2; {
		select {
		case <-stop:
			return IdleStopped
		case <-deadline.C:
			return IdleTimedOut
		case <-tick.C:
		}
		if inFlight() == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	return Idle
}

// retireSlot stops picking sl, waits until its requests in flight are answered (up to its
// session's ResponseTimeout), then stops its goroutine and unbinds it. It reports false,
// leaving sl in service, when ctx is done before the unbind.
func (l *Link) retireSlot(ctx context.Context, sl *slot) bool {
	cfg := sl.cfg.Load()
	sl.draining.Store(true)
	inFlight := func() int {
		if s := sl.sess.Load(); s != nil {
			n, _ := s.InFlight()
			return n
		}
		return 0
	}
	switch WaitIdle(ctx.Done(), cfg.Session.withDefaults().ResponseTimeout, inFlight) {
	case IdleStopped:
		sl.draining.Store(false)
		return false
	case IdleTimedOut:
		l.log.Warn("smpp: reconfigure: unbinding a bind with requests still in flight",
			zap.Int("slot", sl.n), zap.Int("requests_in_flight", inFlight()))
	}
	sl.cancel()
	if s := sl.sess.Load(); s != nil && sl.sess.CompareAndSwap(s, nil) {
		uctx, cancel := context.WithTimeout(context.Background(), unbindTimeout(cfg))
		if err := s.Unbind(uctx); err != nil {
			l.log.Info("smpp: reconfigure: unbind", zap.Int("slot", sl.n), zap.Error(err))
		}
		cancel()
	}
	<-sl.done // bounded: runSlot returns once its session is closed or its dial cancelled
	return true
}

// ErrNoLink is returned by Link.Send when no transmitter bind came up before ctx was done.
var ErrNoLink = errors.New("smpp: no upstream bind available")

// Send sends request p over one of the link's bound transmitters (round robin), waiting for
// the TPS limiter, for a bind to be up and for window room until ctx is done. The response
// reaches h with ref, exactly once, as with Session.Send.
func (l *Link) Send(ctx context.Context, p *PDU, h ResponseHandler, ref Ref) error {
	if lim := l.limiter.Load(); lim != nil {
		if err := lim.Wait(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrWindowTimeout, err)
		}
	}
	for {
		s, up := l.pick(ref.Session, p.tail)
		if s != nil {
			err := s.Send(ctx, p, h, ref)
			if errors.Is(err, ErrClosed) {
				continue // that bind just dropped: try another
			}
			return err
		}
		select {
		case <-up:
		case <-ctx.Done():
			return ErrNoLink
		}
	}
}

// TrySend is Send without waiting: it fails at once with ErrWindowTimeout when the TPS
// limit or every window is full, or ErrNoLink when no transmitter is bound. The relay tries
// it first so its fast path allocates no context.
func (l *Link) TrySend(p *PDU, h ResponseHandler, ref Ref) error {
	var res *rate.Reservation
	if lim := l.limiter.Load(); lim != nil {
		res = lim.Reserve()
		if !res.OK() || res.Delay() > 0 {
			res.Cancel()
			return ErrWindowTimeout
		}
	}
	err := ErrNoLink
	for range len(*l.slots.Load()) + 1 {
		s, _ := l.pick(ref.Session, p.tail)
		if s == nil {
			break
		}
		// ErrClosed: that bind just dropped, or TrySend closed it (ErrQueueFull): try another.
		if err = s.TrySend(p, h, ref); !errors.Is(err, ErrClosed) {
			break
		}
	}
	if err != nil && res != nil {
		res.Cancel() // Send will wait for its own token
	}
	return err
}

// pick returns a bound transmitter, preferring one with window room, or the channel that
// is closed when one comes up. origin is the requesting session (may be nil); tail says the
// request was the last its reader had read (PDU.Tail).
//
// Requests without an origin go round robin. Requests of an origin session (the ESME) go
// over one bind for a whole read burst: the bind is chosen when a burst starts — the one
// with the fewest requests in flight, ties broken in turn — and kept until the burst ends
// (a Tail request, or the origin's reader reaching the end of what it read whatever its last
// PDU was: Session.readLoop clears pickCur) or the bind's window is full. Spreading a burst over every bind split it, and every
// bind's responses, into smaller write batches: round robin per request made 4× the write
// syscalls of pass-through, runs of 64 requests per bind still ~2× (pooled
// 0.045 writes per submit vs 0.024 pass-through, 0.028 with whole bursts). At a low rate
// every request is its own burst, so requests still alternate over the binds (a carrier's
// per-bind rate limit sees an even share at any time scale), and a busier bind gets fewer
// bursts.
func (l *Link) pick(origin *Session, tail bool) (*Session, chan struct{}) {
	if origin != nil {
		if sl := origin.pickCur.Load(); sl != nil && sl.link == l && !sl.draining.Load() {
			if s := sl.sess.Load(); s != nil && s.State().CanTransmit() && len(s.window) < cap(s.window) {
				if tail {
					origin.pickCur.CompareAndSwap(sl, nil) // the burst ends here
				}
				return s, nil
			}
		}
	}
	slots := *l.slots.Load()
	n := uint32(len(slots))
	start := l.rr.Add(1)
	if origin != nil {
		start += origin.affinity
	}
	var (
		best     *slot
		bestS    *Session
		bestLoad int
		fallback *Session
	)
	for i := uint32(0); i < n; i++ {
		sl := slots[(start+i)%n]
		s := sl.sess.Load()
		if s == nil || !s.State().CanTransmit() || sl.draining.Load() {
			continue
		}
		if load := len(s.window); load < cap(s.window) {
			if origin == nil {
				return s, nil
			}
			if best == nil || load < bestLoad {
				best, bestS, bestLoad = sl, s, load
			}
			continue
		}
		if fallback == nil {
			fallback = s
		}
	}
	if bestS != nil {
		if tail {
			origin.pickCur.Store(nil) // a one-request burst, or the end of one: nothing to keep
		} else {
			origin.pickCur.Store(best)
		}
		return bestS, nil
	}
	if fallback != nil {
		return fallback, nil
	}
	l.mu.Lock()
	up := l.up
	l.mu.Unlock()
	return nil, up
}

// Ready reports whether at least one transmitter bind is up.
func (l *Link) Ready() bool {
	for _, sl := range *l.slots.Load() {
		if s := sl.sess.Load(); s != nil && s.State().CanTransmit() {
			return true
		}
	}
	return false
}

// Sessions returns the link's bound sessions.
func (l *Link) Sessions() []*Session {
	var out []*Session
	for _, sl := range *l.slots.Load() {
		if s := sl.sess.Load(); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Health returns the state of each bind slot.
func (l *Link) Health() []BindHealth {
	slots := *l.slots.Load()
	out := make([]BindHealth, 0, len(slots))
	for _, sl := range slots {
		sl.mu.Lock()
		h := BindHealth{Slot: sl.n, BindType: sl.bindType.String(), Since: sl.since, Reconnects: sl.reconnects, LastError: sl.lastErr, State: "DOWN"}
		sl.mu.Unlock()
		if s := sl.sess.Load(); s != nil {
			h.State = s.State().String()
			h.InFlight, _ = s.InFlight()
		}
		out = append(out, h)
	}
	return out
}
