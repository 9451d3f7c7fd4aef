package smpp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
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
// the bound transmitters with a window that waits and an optional TPS limit.
type Link struct {
	cfg     LinkConfig
	log     *zap.Logger
	limiter *rate.Limiter

	mu      sync.Mutex
	slots   []*slot
	up      chan struct{} // closed and replaced whenever a transmitter comes up
	rr      atomic.Uint32
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	started bool

	// Clock and sleep, replaceable by tests before Start.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool
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

type slot struct {
	n          int
	bindType   CommandID
	sess       atomic.Pointer[Session]
	mu         sync.Mutex
	since      time.Time
	lastErr    string
	reconnects uint64
}

// NewLink returns a link; Start brings it up.
func NewLink(cfg LinkConfig) *Link {
	if cfg.Binds <= 0 {
		cfg.Binds = 1
	}
	if cfg.BindType == 0 {
		cfg.BindType = BindTransceiver
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 500 * time.Millisecond
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = 30 * time.Second
		if cfg.ReconnectMax < cfg.ReconnectMin {
			cfg.ReconnectMax = cfg.ReconnectMin
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	l := &Link{cfg: cfg, log: cfg.Logger.With(zap.String("link", cfg.Name)), up: make(chan struct{}), now: time.Now, sleep: sleepCtx}
	if cfg.TPS > 0 {
		burst := int(cfg.TPS / 10)
		if burst < 1 {
			burst = 1
		}
		l.limiter = rate.NewLimiter(rate.Limit(cfg.TPS), burst)
	}
	for i := 0; i < cfg.Binds; i++ {
		l.slots = append(l.slots, &slot{n: len(l.slots), bindType: cfg.BindType})
	}
	for i := 0; i < cfg.RxBinds; i++ {
		l.slots = append(l.slots, &slot{n: len(l.slots), bindType: BindReceiver})
	}
	return l
}

// Name returns the link's name.
func (l *Link) Name() string { return l.cfg.Name }

// Start runs the bind slots until ctx is done or Close.
func (l *Link) Start(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return
	}
	l.started = true
	ctx, l.cancel = context.WithCancel(ctx)
	for _, sl := range l.slots {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.runSlot(ctx, sl)
		}()
	}
}

// Close unbinds every bind (waiting for unbind_resp up to ctx) and stops reconnecting.
func (l *Link) Close(ctx context.Context) error {
	l.mu.Lock()
	cancel := l.cancel
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	var wg sync.WaitGroup
	for _, sl := range l.slots {
		if s := sl.sess.Load(); s != nil {
			wg.Add(1)
			go func() { defer wg.Done(); s.Unbind(ctx) }()
		}
	}
	wg.Wait()
	l.wg.Wait()
	return nil
}

func (l *Link) backoff(attempt int) time.Duration {
	d := l.cfg.ReconnectMin << min(attempt, 20)
	if d > l.cfg.ReconnectMax || d <= 0 {
		d = l.cfg.ReconnectMax
	}
	// Full jitter in [d/2, d): binds that dropped together do not come back together.
	return d/2 + rand.N(d/2+1)
}

func (l *Link) runSlot(ctx context.Context, sl *slot) {
	attempt := 0 // failed attempts since the last stable bind
	for ctx.Err() == nil {
		s, err := l.bindOnce(ctx, sl)
		if err != nil {
			sl.mu.Lock()
			sl.lastErr = err.Error()
			sl.reconnects++
			sl.mu.Unlock()
			if l.cfg.OnBind != nil {
				l.cfg.OnBind(l, nil, err)
			}
			if ctx.Err() != nil {
				return
			}
			d := l.backoff(attempt)
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
		if sl.bindType != BindReceiver {
			l.mu.Lock()
			close(l.up)
			l.up = make(chan struct{})
			l.mu.Unlock()
		}
		l.log.Info("smpp: upstream bound", zap.Int("slot", sl.n), zap.Stringer("bind", sl.bindType), zap.String("addr", l.cfg.Addr))
		if l.cfg.OnBind != nil {
			l.cfg.OnBind(l, s, nil)
		}
		select {
		case <-s.Done():
		case <-ctx.Done():
			<-s.Done() // Close unbinds it
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
		if up >= l.cfg.StableBind() {
			attempt = 0 // it was a working bind: reconnect soon
		}
		d := l.backoff(attempt)
		attempt++
		l.log.Warn("smpp: upstream bind lost; reconnecting", zap.Int("slot", sl.n), zap.Error(s.Err()),
			zap.Duration("was_up", up), zap.Duration("in", d))
		if l.cfg.OnBind != nil {
			l.cfg.OnBind(l, s, fmt.Errorf("smpp: bind lost: %w", s.Err()))
		}
		if !l.sleep(ctx, d) {
			return
		}
	}
}

func (l *Link) bindOnce(ctx context.Context, sl *slot) (*Session, error) {
	frame, err := l.cfg.Bind.Encode(sl.bindType, 0)
	if err != nil {
		return nil, err
	}
	p, err := Parse(frame)
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, l.sessionBindTimeout())
	defer cancel()
	var d Dialer = &net.Dialer{}
	if l.cfg.TLS != nil {
		d = &tls.Dialer{Config: l.cfg.TLS}
	}
	s, _, err := DialWith(bctx, d, l.cfg.Addr, p, l.cfg.Handler, l.cfg.Session)
	return s, err
}

func (l *Link) sessionBindTimeout() time.Duration {
	if t := l.cfg.Session.BindTimeout; t > 0 {
		return t
	}
	return 10 * time.Second
}

// ErrNoLink is returned by Link.Send when no transmitter bind came up before ctx was done.
var ErrNoLink = errors.New("smpp: no upstream bind available")

// Send sends request p over one of the link's bound transmitters (round robin), waiting for
// the TPS limiter, for a bind to be up and for window room until ctx is done. The response
// reaches h with ref, exactly once, as with Session.Send.
func (l *Link) Send(ctx context.Context, p *PDU, h ResponseHandler, ref Ref) error {
	if l.limiter != nil {
		if err := l.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrWindowTimeout, err)
		}
	}
	for {
		s, up := l.pick(ref.Session)
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
	if l.limiter != nil {
		res = l.limiter.Reserve()
		if !res.OK() || res.Delay() > 0 {
			res.Cancel()
			return ErrWindowTimeout
		}
	}
	err := ErrNoLink
	for range len(l.slots) + 1 {
		s, _ := l.pick(ref.Session)
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

// pickRun is how many consecutive requests pick sends over the same bind (for one
// origin) before it moves to the next.
//
// Round robin per request spread every ESME's burst over all binds, and every bind's
// responses over all ESMEs, so each writer flushed a smaller batch: pooled made 4× the
// write syscalls of pass-through. Now requests from the same origin session (the Ref's
// Session: the ESME) go over the same bind for a run, origins start at different binds
// (their Affinity), and all move on together. Over any stretch longer than binds ×
// pickRun every bind still gets an equal share (a carrier's per-bind rate limit sees the
// same average), and a full window still moves on at once.
const pickRun = 64

// pick returns a bound transmitter, preferring one with window room, or the channel that
// is closed when one comes up. origin is the requesting session (may be nil).
func (l *Link) pick(origin *Session) (*Session, chan struct{}) {
	n := uint32(len(l.slots))
	start := l.rr.Add(1) / pickRun
	if origin != nil {
		start += origin.affinity
	}
	var fallback *Session
	for i := uint32(0); i < n; i++ {
		sl := l.slots[(start+i)%n]
		s := sl.sess.Load()
		if s == nil || !s.State().CanTransmit() {
			continue
		}
		if len(s.window) < cap(s.window) {
			return s, nil
		}
		if fallback == nil {
			fallback = s
		}
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
	for _, sl := range l.slots {
		if s := sl.sess.Load(); s != nil && s.State().CanTransmit() {
			return true
		}
	}
	return false
}

// Sessions returns the link's bound sessions.
func (l *Link) Sessions() []*Session {
	var out []*Session
	for _, sl := range l.slots {
		if s := sl.sess.Load(); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Health returns the state of each bind slot.
func (l *Link) Health() []BindHealth {
	out := make([]BindHealth, 0, len(l.slots))
	for _, sl := range l.slots {
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
