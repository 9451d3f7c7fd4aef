package smpp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Handler serves the requests a peer sends on a session.
//
// ServePDU is called on the session's reader goroutine, one request at a time, in arrival
// order. The session answers enquire_link, unbind, unknown commands, malformed PDUs,
// requests not allowed in the bind state and requests beyond the window itself; every
// other request reaches the handler, which owns p and must answer it exactly once (when
// p.ID().HasResponse()) with Session.Respond or Session.WriteResponse — possibly later,
// from another goroutine. ServePDU must not block for long: the next PDU of the session
// waits for it to return.
type Handler interface {
	ServePDU(s *Session, p *PDU)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(s *Session, p *PDU)

// ServePDU calls f.
func (f HandlerFunc) ServePDU(s *Session, p *PDU) { f(s, p) }

// Ref is a caller's reference stored, by value, with a request sent by Session.Send and
// handed back with its response. Storing it by value keeps the relay's hot path free of
// per-request allocations.
type Ref struct {
	Session *Session
	Seq     uint32
	Aux     uint64
	Value   any
	// Start is when the caller received the request (unix nanos), for latency metrics.
	Start int64
}

// ResponseHandler receives the response to a request sent with Session.Send.
// HandleResponse is called exactly once per request: with the response (generic_nack
// included), or with a nil PDU and ErrTimeout or ErrClosed. It runs on the session's reader
// or timer goroutine and must not block for long.
type ResponseHandler interface {
	HandleResponse(ref Ref, resp *PDU, err error)
}

// Config holds a session's limits and timers. The zero value is usable: each field
// documents its default.
type Config struct {
	// Window bounds our outstanding requests to the peer; Send waits for room. Default 100.
	Window int
	// PeerWindow bounds the peer's requests we have not answered yet; beyond it a request is
	// answered with ThrottleStatus. Default Window.
	PeerWindow int
	// ThrottleStatus answers requests beyond PeerWindow. Default ESME_RTHROTTLED.
	ThrottleStatus Status
	// MaxPDUSize bounds command_length. Default DefaultMaxPDUSize.
	MaxPDUSize int
	// EnquireLinkInterval: when nothing was received for this long, send enquire_link; no
	// answer within ResponseTimeout closes the session. Default 30 s; negative disables.
	EnquireLinkInterval time.Duration
	// InactivityTimeout: nothing received for this long unbinds and closes. Default 0 (off).
	InactivityTimeout time.Duration
	// ResponseTimeout bounds the wait for each response. Default 10 s.
	ResponseTimeout time.Duration
	// BindTimeout: a session not bound after this long is closed. Default 10 s.
	BindTimeout time.Duration
	// WriteTimeout bounds each write to the socket; a peer that does not read is cut off. Default 10 s.
	WriteTimeout time.Duration
	// Logger; default zap.NewNop().
	Logger *zap.Logger
	// OnClose, if set, is called once after the session closed and every pending request
	// got its ErrClosed.
	OnClose func(s *Session, err error)
	// Trace, if set, sees every frame read (rx true) and written, for debug logging. It must
	// not keep or modify the frame and must be cheap: it runs on the reader and the writer.
	Trace func(s *Session, rx bool, frame []byte)
	// Counts, if set, counts every frame read and written by command and status.
	Counts *PDUCounts
	// Global, if set, bounds the peers' unanswered requests over every session sharing it;
	// beyond it a request is answered with ThrottleStatus.
	Global *InFlightLimit
	// NoInlineWrites: every frame goes through the writer goroutine, even a Tail PDU that
	// could be written at once by the goroutine handing it over (see PDU.Tail). For
	// measurements; inline writes are on by default on plain TCP and Unix sockets.
	NoInlineWrites bool
}

// InFlightLimit bounds requests in flight across sessions (Config.Global).
type InFlightLimit struct {
	Max int64
	n   atomic.Int64
}

// InFlight returns the requests in flight now.
func (l *InFlightLimit) InFlight() int64 { return l.n.Load() }

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = 100
	}
	if c.PeerWindow <= 0 {
		c.PeerWindow = c.Window
	}
	if c.ThrottleStatus == 0 {
		c.ThrottleStatus = StatusThrottled
	}
	if c.MaxPDUSize <= 0 {
		c.MaxPDUSize = DefaultMaxPDUSize
	}
	if c.EnquireLinkInterval == 0 {
		c.EnquireLinkInterval = 30 * time.Second
	}
	if c.ResponseTimeout <= 0 {
		c.ResponseTimeout = 10 * time.Second
	}
	if c.BindTimeout <= 0 {
		c.BindTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

type pending struct {
	h        ResponseHandler
	ref      Ref
	id       CommandID
	deadline int64 // unix nanos
}

// ErrQueueFull is returned by TryWriteResponse and TrySend when the session's send queue is
// full and either its spill is full too or the writer has not written a frame for a second:
// the peer stopped reading (a writer merely short of CPU under a burst drains them), and the
// session has been closed. It wraps ErrClosed.
var ErrQueueFull = fmt.Errorf("%w: send queue full (the peer is not reading)", ErrClosed)

// Counters are a session's traffic counts.
type Counters struct {
	RxPDUs, TxPDUs     uint64
	RxRequests         uint64
	Throttled          uint64
	UnmatchedResponses uint64
	ResponseTimeouts   uint64
	ProtocolErrors     uint64
	// QueueOverflows counts frames that found the send queue full in a write that must not
	// block (TryWriteResponse, TrySend); the first one closed the session.
	QueueOverflows uint64
	// InlineWrites counts frames written by the goroutine handing them over rather than by
	// the writer (see PDU.Tail); they are counted in TxPDUs too.
	InlineWrites uint64
}

// Session is one SMPP connection, on either side: bind state machine, sequence numbers, a
// window of outstanding requests, a single writer, enquire_link keepalive, timers and clean
// close. Its methods are safe for concurrent use.
type Session struct {
	conn    net.Conn
	cfg     Config
	side    Side
	handler Handler
	log     *zap.Logger

	state     atomic.Uint32
	seq       atomic.Uint32
	systemID  atomic.Pointer[string]
	createdAt time.Time
	boundAt   atomic.Int64
	lastRecv  atomic.Int64 // unix nanos, to the writer's tick: see recvd
	// clock is a coarse clock (unix nanos) advanced by the writer at every tick. Request
	// deadlines and write deadlines are taken from it, so that no PDU pays for a clock read
	// (time.Now was ~9% of the relay's CPU on a KVM guest).
	clock atomic.Int64
	recvd atomic.Bool // a PDU arrived since the last tick; the tick moves lastRecv

	out chan []byte // nil entry: flush and close; empty entry: look at the spill
	// spill holds frames a write that must not wait (tryWrite) found no room for in out: a
	// burst the writer has not caught up with yet (e.g. an SMSC sending receipts faster than
	// this process gets CPU). The writer drains it whenever out is empty. Bounded by
	// spillMax; past that the peer is taken as not reading and the session closed.
	spillMu sync.Mutex
	spill   [][]byte
	spillN  atomic.Int32 // len(spill), read by the writer without the lock
	// spillTx and spillAt: the writer's frame count when a write last found out full, and
	// when it first had that count. A writer that has not written one frame for stallAfter
	// while out stays full is stuck on a peer that does not read.
	spillTx uint64
	spillAt time.Time
	// Inline writes (writeInline): a frame handed over with nothing behind it (PDU.Tail) is
	// written by the caller's goroutine itself, without blocking, when nothing is queued:
	// at window 1 that saves a goroutine wake-up per hop. wmu is held by whoever writes to
	// the socket: the writer goroutine for a whole batch (bw is empty whenever it is free),
	// or an inline writer for one non-blocking write. queued counts the frames handed to
	// the writer (out, spill, partial, the close marker) and not yet in bw: an inline write
	// needs it at zero, so that it never overtakes a frame handed over before it.
	wmu     sync.Mutex
	raw     syscall.RawConn // nil: no inline writes (TLS, net.Pipe)
	queued  atomic.Int64
	partial []byte // under wmu: the rest of a frame the socket did not take at once; written first
	inlined atomic.Uint64
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
	err     error // why it closed; read after closing

	window  chan struct{}
	mu      sync.Mutex
	pending pendingTable
	// finished: finish() took every pending request; no more are registered (under mu).
	finished bool
	enqSeq   uint32 // outstanding keepalive enquire_link, 0 when none (under mu)

	peerOutstanding atomic.Int64
	loopsDone       atomic.Int32
	peerUnbound     atomic.Bool // the peer sent unbind

	rxPDUs, txPDUs, rxReq, throttled, unmatched, timeouts, protoErrs, overflows atomic.Uint64

	// affinity spreads sessions over a Link's binds (see Link.pick): the server numbers the
	// sessions it accepts. pickCur is the bind a Link sends this session's current read
	// burst over (nil between bursts).
	affinity uint32
	pickCur  atomic.Pointer[slot]

	// Data is free for the owner of the session (the relay keeps its per-session state here).
	Data atomic.Pointer[any]
}

// NewSession starts a session over conn: it spawns the reader and the writer and returns.
// h serves the peer's requests; nil answers them ESME_RSYSERR... except that a nil handler
// on the ESME side is fine when the peer never sends requests besides enquire_link.
func NewSession(conn net.Conn, side Side, h Handler, cfg Config) *Session {
	cfg = cfg.withDefaults()
	s := &Session{
		conn:      conn,
		cfg:       cfg,
		side:      side,
		handler:   h,
		createdAt: time.Now(),
		out:       make(chan []byte, cfg.Window+cfg.PeerWindow+16),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
		window:    make(chan struct{}, cfg.Window),
		pending:   newPendingTable(cfg.Window),
	}
	s.log = cfg.Logger.With(zap.String("peer", conn.RemoteAddr().String()))
	if !cfg.NoInlineWrites {
		s.raw = rawConnOf(conn)
	}
	now := time.Now().UnixNano()
	s.lastRecv.Store(now)
	s.clock.Store(now)
	// Two goroutines per session; whichever loop exits last runs finish (no third
	// goroutine waiting for them: it would cost ~8 KiB per idle session).
	go func() { s.readLoop(); s.loopDone() }()
	go func() { s.writeLoop(); s.loopDone() }()
	return s
}

// State returns the bind state.
func (s *Session) State() State { return State(s.state.Load()) }

// Side returns which end of the protocol this session plays.
func (s *Session) Side() Side { return s.side }

// SystemID returns the system_id the session bound with ("" before a bind).
func (s *Session) SystemID() string {
	if p := s.systemID.Load(); p != nil {
		return *p
	}
	return ""
}

// RemoteAddr returns the peer's address.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// Since returns when the session was created and when it bound (zero when not bound).
func (s *Session) Since() (created, bound time.Time) {
	if b := s.boundAt.Load(); b != 0 {
		bound = time.Unix(0, b)
	}
	return s.createdAt, bound
}

// Logger returns the session's logger.
func (s *Session) Logger() *zap.Logger { return s.log }

// Config returns the session's effective configuration.
func (s *Session) Config() Config { return s.cfg }

// Done is closed when the session has closed and its goroutines have exited.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session closed (nil while open; io.EOF for a clean close).
func (s *Session) Err() error {
	select {
	case <-s.closing:
		return s.err
	default:
		return nil
	}
}

// InFlight returns our outstanding requests and the peer's unanswered requests.
func (s *Session) InFlight() (ours, peers int) {
	return len(s.window), int(s.peerOutstanding.Load())
}

// Counters returns the session's traffic counts.
func (s *Session) Counters() Counters {
	return Counters{
		RxPDUs: s.rxPDUs.Load(), TxPDUs: s.txPDUs.Load(), RxRequests: s.rxReq.Load(), Throttled: s.throttled.Load(),
		UnmatchedResponses: s.unmatched.Load(), ResponseTimeouts: s.timeouts.Load(), ProtocolErrors: s.protoErrs.Load(),
		QueueOverflows: s.overflows.Load(), InlineWrites: s.inlined.Load(),
	}
}

// Queued returns the frames waiting for the writer and the queue's capacity.
func (s *Session) Queued() (n, capacity int) { return len(s.out), cap(s.out) }

// PeerUnbound reports whether the peer sent unbind (the session answered it and closes, or
// closed, cleanly).
func (s *Session) PeerUnbound() bool { return s.peerUnbound.Load() }

// NextSeq returns a fresh sequence number (1..0x7FFFFFFF, wrapping).
func (s *Session) NextSeq() uint32 {
	for {
		n := s.seq.Add(1)
		if n&0x7FFFFFFF != 0 {
			return n & 0x7FFFFFFF
		}
	}
}

// freeSeq returns the next sequence number whose pending slot is free (under mu). The table
// keeps at least half its slots free (it grows, up to twice the window), so it rarely skips one.
func (s *Session) freeSeq() uint32 {
	for {
		if seq := s.NextSeq(); s.pending.free(seq) {
			return seq
		}
	}
}

// SetBound marks the session bound in the state a bind of kind id leads to, with systemID.
func (s *Session) SetBound(id CommandID, systemID string) {
	s.systemID.Store(&systemID)
	s.boundAt.Store(time.Now().UnixNano())
	s.setState(BoundState(id))
}

func (s *Session) setState(st State) {
	for {
		cur := s.state.Load()
		if State(cur) == StateClosed {
			return
		}
		if s.state.CompareAndSwap(cur, uint32(st)) {
			return
		}
	}
}

// write queues one frame for the single writer. It blocks only when the queue is full,
// which the windows prevent in a well-behaved flow, and never past the session's close.
func (s *Session) write(b []byte) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	s.queued.Add(1)
	// A one-channel send first: a two-case select locks both channels on every frame.
	select {
	case s.out <- b:
		return nil
	default:
	}
	select {
	case s.out <- b:
		return nil
	case <-s.closing:
		s.queued.Add(-1)
		return ErrClosed
	}
}

// writeInline writes b on the caller's goroutine if nothing is queued for the writer and
// no one is writing, and reports whether it did: all of b went to the socket, or what the
// socket did not take at once was handed to the writer (it goes first), or the session was
// closed by a socket error. It never waits for the peer. false: b is the caller's to queue.
func (s *Session) writeInline(b []byte) bool {
	if s.raw == nil || s.queued.Load() != 0 || !s.wmu.TryLock() {
		return false
	}
	if s.queued.Load() != 0 || s.State() == StateClosed {
		s.wmu.Unlock()
		return false
	}
	n, err, rcErr := rawWriteOnce(s.raw, b)
	if rcErr != nil && n == 0 {
		// The descriptor is closed or its write deadline (moved by the writer) has
		// passed: the writer deals with it.
		s.wmu.Unlock()
		return false
	}
	s.countTx(b)
	s.inlined.Add(1)
	if err != nil {
		s.wmu.Unlock()
		s.closeWith(fmt.Errorf("smpp: write: %w", err))
		return true
	}
	if n < len(b) {
		s.partial = b[n:]
		s.queued.Add(1)
		s.wmu.Unlock()
		select { // wake the writer; if out is full it is awake and takes partial first
		case s.out <- []byte{}:
		default:
		}
		return true
	}
	s.wmu.Unlock()
	return true
}

// tryWrite queues one frame for the single writer without blocking. A full queue means
// the peer is not reading (see ErrQueueFull): the session is closed. A closed session
// returns ErrClosed.
func (s *Session) tryWrite(b []byte, tail bool) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	if tail && s.writeInline(b) {
		return nil
	}
	s.queued.Add(1)
	// While frames wait in the spill, later ones go behind them: the writer empties the
	// channel before the spill, so a frame put in the channel now would overtake them (a
	// receipt its submit_sm_resp, say).
	if s.spillN.Load() == 0 {
		select {
		case s.out <- b:
			return nil
		default:
		}
	}
	s.spillMu.Lock()
	now := time.Now()
	if tx := s.txPDUs.Load(); tx != s.spillTx || s.spillAt.IsZero() {
		s.spillTx, s.spillAt = tx, now // the writer moved since the last look: not stuck
	}
	if len(s.spill) >= s.spillMax() || now.Sub(s.spillAt) > s.stallAfter() {
		s.spillMu.Unlock()
		s.queued.Add(-1)
		s.overflow()
		return ErrQueueFull
	}
	s.spill = append(s.spill, b)
	s.spillN.Store(int32(len(s.spill)))
	s.spillMu.Unlock()
	// Wake the writer if it is idle. If out is full it is not: it looks at the spill once
	// it has emptied out.
	select {
	case s.out <- []byte{}:
	default:
	}
	return nil
}

// spillMax bounds the spill: four send queues' worth of frames.
func (s *Session) spillMax() int { return 4 * cap(s.out) }

// stallAfter is how long a writer may go without writing a frame, its queue full, before a
// write that must not wait takes the peer as not reading: a second, or WriteTimeout if
// shorter. (Without such writes, WriteTimeout closes the session anyway.)
func (s *Session) stallAfter() time.Duration { return min(time.Second, s.cfg.WriteTimeout) }

// takeSpill returns the spilled frames in the order they came and empties the spill.
func (s *Session) takeSpill() [][]byte {
	s.spillMu.Lock()
	sp := s.spill
	s.spill = nil
	s.spillN.Store(0)
	s.spillMu.Unlock()
	return sp
}

// writeFrames writes frames to bw (no flush), counting and tracing each.
func (s *Session) writeFrames(bw *bufio.Writer, frames ...[]byte) bool {
	for _, b := range frames {
		if len(b) == 0 {
			continue // a wake-up for the spill
		}
		if _, err := bw.Write(b); err != nil {
			s.closeWith(fmt.Errorf("smpp: write: %w", err))
			return false
		}
		s.queued.Add(-1)
		s.countTx(b)
	}
	return true
}

// countTx counts and traces a frame written.
func (s *Session) countTx(b []byte) {
	s.txPDUs.Add(1)
	if s.cfg.Trace != nil {
		s.cfg.Trace(s, false, b)
	}
	if s.cfg.Counts != nil {
		s.cfg.Counts.add(false, b)
	}
}

// overflow closes a session whose queue was found full by a write that must not wait.
func (s *Session) overflow() {
	if s.overflows.Add(1) == 1 {
		s.log.Warn("smpp: send queue full, the peer is not reading; closing", zap.Int("queue", cap(s.out)))
	}
	s.closeWith(ErrQueueFull)
}

// WriteResponse writes a response frame to a request the handler was given. It counts
// against the peer's window. It waits while the send queue is full, so it is meant for the
// session's own reader (the handler answering at once): a response relayed from another
// session's goroutine uses TryWriteResponse.
func (s *Session) WriteResponse(frame []byte) error {
	s.releasePeer()
	return s.write(frame)
}

// TryWriteResponse is WriteResponse that never blocks: when the send queue is full the
// peer is not reading, and rather than stall the caller (an upstream reader shared by
// every account, say) the session is closed and ErrQueueFull returned. Either way the
// request no longer counts against the peer's window.
func (s *Session) TryWriteResponse(frame []byte) error {
	s.releasePeer()
	return s.tryWrite(frame, false)
}

// TryWriteResponsePDU is TryWriteResponse of p's frame. When p is a Tail (nothing was
// read behind it) and nothing is queued, it is written at once on the caller's goroutine.
func (s *Session) TryWriteResponsePDU(p *PDU) error {
	s.releasePeer()
	return s.tryWrite(p.raw, p.tail)
}

// releasePeer releases one admitted request of the peer's window (and Global).
func (s *Session) releasePeer() {
	// Each admitted request is released once: here, or by finish() when the session closes
	// first (it zeroes the count, so a late response finds it negative and releases nothing).
	if s.peerOutstanding.Add(-1) >= 0 && s.cfg.Global != nil {
		s.cfg.Global.n.Add(-1)
	}
}

// Respond answers req with status and, for responses that carry one, messageID.
func (s *Session) Respond(req *PDU, status Status, messageID string) error {
	b, err := Response(req, status, messageID)
	if err != nil {
		return err
	}
	return s.WriteResponse(b)
}

// AcceptBind answers a bind request the handler was given: on ESME_ROK the session becomes
// bound as systemID and the response carries sc_interface_version.
func (s *Session) AcceptBind(req *PDU, status Status, systemID string) error {
	b, err := BindResponse(req, status, "smppguard")
	if err != nil {
		return err
	}
	return s.CompleteBind(req, b, systemID)
}

// CompleteBind answers a bind request with a ready bind_resp frame (the pass-through relay
// forwards the SMSC's own), patching its sequence number to the request's. The session
// becomes bound when the response's status is ESME_ROK.
func (s *Session) CompleteBind(req *PDU, resp []byte, systemID string) error {
	if len(resp) < HeaderLen {
		return ErrShortHeader
	}
	rp := PDU{raw: resp}
	rp.SetSeq(req.Seq())
	if rp.Status() == StatusOK {
		s.SetBound(req.ID(), systemID)
	}
	return s.WriteResponse(resp)
}

// Send assigns the next sequence number to request p (patching its bytes in place), waits
// for room in the window (until ctx is done: ErrWindowTimeout), registers h to receive the
// response with ref, and queues p. A request without a response (outbind,
// alert_notification) is written without registration.
func (s *Session) Send(ctx context.Context, p *PDU, h ResponseHandler, ref Ref) error {
	return s.sendFrame(ctx, p.raw, h, ref, p.tail)
}

// SendFrame is Send for a raw request frame.
func (s *Session) SendFrame(ctx context.Context, frame []byte, h ResponseHandler, ref Ref) error {
	return s.sendFrame(ctx, frame, h, ref, false)
}

func (s *Session) sendFrame(ctx context.Context, frame []byte, h ResponseHandler, ref Ref, tail bool) error {
	rp := PDU{raw: frame}
	id := rp.ID()
	if !id.HasResponse() {
		rp.SetSeq(s.NextSeq())
		return s.write(frame)
	}
	select {
	case s.window <- struct{}{}:
	default:
		select {
		case s.window <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrWindowTimeout, ctx.Err())
		case <-s.closing:
			return ErrClosed
		}
	}
	return s.sendAcquired(frame, h, ref, false, tail)
}

// sendAcquired sends a request frame for which a window slot is already held. With
// nowait, a full send queue closes the session (see tryWrite) and the request is withdrawn:
// h is not called and ErrQueueFull is returned.
func (s *Session) sendAcquired(frame []byte, h ResponseHandler, ref Ref, nowait, tail bool) error {
	rp := PDU{raw: frame}
	id := rp.ID()
	s.mu.Lock()
	if s.State() == StateClosed || s.finished {
		s.mu.Unlock()
		<-s.window
		return ErrClosed
	}
	seq := s.freeSeq()
	rp.SetSeq(seq)
	s.pending.put(seq, pending{h: h, ref: ref, id: id, deadline: s.deadline(s.cfg.ResponseTimeout)})
	s.mu.Unlock()
	// If the session closes meanwhile, finish() delivers ErrClosed to h: one answer either way.
	if !nowait {
		if !tail || !s.writeInline(frame) {
			s.write(frame)
		}
		return nil
	}
	if err := s.tryWrite(frame, tail); !errors.Is(err, ErrQueueFull) {
		return nil // queued, or closed: finish() answers h
	}
	s.mu.Lock()
	_, mine := s.pending.take(seq)
	s.mu.Unlock()
	if !mine {
		return nil // finish() took it first and answers h
	}
	<-s.window
	return ErrQueueFull
}

// TrySend is Send that never waits: it fails with ErrWindowTimeout at once when the window
// is full, and when the send queue is full (the peer is not reading) it closes the session
// and fails with ErrQueueFull; h is not called when it fails. It allocates nothing.
func (s *Session) TrySend(p *PDU, h ResponseHandler, ref Ref) error {
	select {
	case s.window <- struct{}{}:
	default:
		return ErrWindowTimeout
	}
	return s.sendAcquired(p.raw, h, ref, true, p.tail)
}

type result struct {
	p   *PDU
	err error
}

type chanHandler chan result

func (c chanHandler) HandleResponse(_ Ref, p *PDU, err error) { c <- result{p, err} }

// Request sends p and waits for its response. A response with a non-zero status is
// returned as the PDU, not as an error.
func (s *Session) Request(ctx context.Context, p *PDU) (*PDU, error) {
	ch := make(chanHandler, 1)
	if err := s.Send(ctx, p, ch, Ref{}); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.p, r.err
	case <-ctx.Done():
		return nil, ctx.Err() // the pending entry expires by ResponseTimeout
	}
}

// Bind sends a bind request (built or forwarded) and waits for the bind_resp. On
// ESME_ROK the session is bound. The response is returned whatever its status.
func (s *Session) Bind(ctx context.Context, req *PDU) (*PDU, error) {
	if !req.ID().IsBind() {
		return nil, fmt.Errorf("smpp: Bind with %s", req.ID())
	}
	sys := req.CString(FieldSystemID)
	s.systemID.Store(&sys) // the reader marks the session bound as it reads an ESME_ROK bind_resp
	resp, err := s.Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("smpp: %s: %w", req.ID(), err)
	}
	return resp, nil
}

// Unbind sends unbind, waits for unbind_resp (or ctx, or ResponseTimeout) and closes.
func (s *Session) Unbind(ctx context.Context) error {
	if s.State() == StateClosed {
		return nil
	}
	s.setState(StateUnbinding)
	p, _ := Parse(HeaderOnly(Unbind, StatusOK, 0))
	_, err := s.Request(ctx, p)
	s.closeWith(io.EOF)
	<-s.done
	if err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("smpp: unbind: %w", err)
	}
	return nil
}

// Close closes the session at once: queued frames not yet written are dropped and every
// pending request gets ErrClosed.
func (s *Session) Close() error {
	s.closeWith(ErrClosed)
	<-s.done
	return nil
}

// CloseAfterFlush writes what is queued, then closes. It does not wait for the close, but
// waits for room in the send queue.
func (s *Session) CloseAfterFlush() {
	s.queued.Add(1) // nothing is written inline behind the close
	select {
	case s.out <- nil:
	case <-s.closing:
	}
}

// CloseFlushed writes what is queued (responses, say), then closes, and waits until the
// session is done. It is bounded by WriteTimeout: a queue that stays full that long, or a
// flush that takes longer (a peer that does not read), closes the session at once and the
// rest is dropped. Pending requests get ErrClosed.
func (s *Session) CloseFlushed() {
	t := time.NewTimer(s.cfg.WriteTimeout)
	defer t.Stop()
	s.queued.Add(1) // nothing is written inline behind the close
	select {
	case s.out <- nil:
	case <-s.closing:
	case <-t.C:
		s.closeWith(ErrClosed)
	}
	// The writer's deadline bounds the flush already; the second bound only guards it.
	t.Reset(s.cfg.WriteTimeout + 2*s.tick())
	select {
	case <-s.done:
		return
	case <-t.C:
		s.closeWith(ErrClosed)
	}
	<-s.done
}

func (s *Session) closeWith(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.err = err
		s.state.Store(uint32(StateClosed))
		s.mu.Unlock()
		close(s.closing)
		s.conn.Close()
	})
}

func (s *Session) loopDone() {
	if s.loopsDone.Add(1) == 2 {
		s.finish()
	}
}

// finish runs once both loops exited: it fails what is pending and calls OnClose.
func (s *Session) finish() {
	s.mu.Lock()
	left := s.pending.takeIf(nil, func(*pending) bool { return true })
	s.finished = true
	s.mu.Unlock()
	for _, pe := range left {
		<-s.window
		if pe.h != nil {
			pe.h.HandleResponse(pe.ref, nil, ErrClosed)
		}
	}
	if s.cfg.Global != nil {
		// Requests the peer will never get an answer to no longer count.
		if n := s.peerOutstanding.Swap(0); n > 0 {
			s.cfg.Global.n.Add(-n)
		}
	}
	if s.cfg.OnClose != nil {
		s.cfg.OnClose(s, s.err)
	}
	close(s.done)
}

func (s *Session) readLoop() {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("smpp: panic in session reader", zap.Any("panic", r), zap.Stack("stack"))
			s.closeWith(fmt.Errorf("smpp: panic: %v", r))
		}
	}()
	fr := NewFrameReader(s.conn, s.cfg.MaxPDUSize)
	for {
		p, frame, err := fr.ReadPDU()
		if err != nil {
			var fe *FrameError
			if errors.As(err, &fe) {
				s.protoErrs.Add(1)
				s.log.Warn("smpp: bad command_length, closing", zap.Uint32("command_length", fe.Length))
				s.write(HeaderOnly(GenericNack, StatusInvCmdLen, fe.Seq))
				s.CloseAfterFlush()
				<-s.closing
				return
			}
			s.closeWith(err)
			return
		}
		s.rxPDUs.Add(1)
		if !s.recvd.Load() { // a load, not a store, per PDU under load
			s.recvd.Store(true)
		}
		if s.cfg.Trace != nil {
			s.cfg.Trace(s, true, frame)
		}
		if s.cfg.Counts != nil {
			s.cfg.Counts.add(true, frame)
		}
		tail := fr.Buffered() == 0
		if err := p.Reset(frame); err != nil {
			s.rejectMalformed(p, err)
			s.endBurst(tail)
			continue
		}
		p.tail = tail
		if p.ID().IsResponse() {
			s.handleResponse(p)
		} else {
			s.handleRequest(p)
			if s.State() == StateClosed {
				return
			}
		}
		s.endBurst(tail)
	}
}

// endBurst: when tail, the reader reached the end of what it read, whatever its last PDU was
// (a deliver_sm_resp behind submits, a request another link took, a malformed one): the next
// request picks its bind afresh (Link.pick).
func (s *Session) endBurst(tail bool) {
	if tail && s.pickCur.Load() != nil {
		s.pickCur.Store(nil)
	}
}

func (s *Session) rejectMalformed(p *PDU, err error) {
	s.protoErrs.Add(1)
	var st Status
	if !errors.As(err, &st) {
		st = StatusSysErr
	}
	id := p.ID()
	s.log.Debug("smpp: malformed PDU", zap.Stringer("command", id), zap.Error(err))
	if !id.Known() || !id.HasResponse() {
		s.write(HeaderOnly(GenericNack, st, p.Seq()))
		return
	}
	s.write(HeaderOnly(id.Response(), st, p.Seq()))
}

func (s *Session) handleResponse(p *PDU) {
	seq := p.Seq()
	// A response with the wrong command for the sequence number leaves the request waiting
	// for the right one: it is taken only when it matches, under one lock (taking it first
	// and putting it back would free its slot for a moment, for a new request to take).
	s.mu.Lock()
	pe, ok := s.pending.peek(seq)
	ok = ok && (p.ID() == GenericNack || p.ID().Request() == pe.id)
	if ok {
		s.pending.take(seq)
	}
	s.mu.Unlock()
	if !ok {
		s.unmatched.Add(1)
		s.log.Debug("smpp: response matches no request", zap.Stringer("command", p.ID()), zap.Uint32("seq", seq))
		return
	}
	<-s.window
	if pe.id.IsBind() && p.ID() != GenericNack && p.Status() == StatusOK {
		// Bound before the next PDU is read: an SMSC may send deliver_sm right behind its
		// bind_resp, and it must not be refused with ESME_RINVBNDSTS.
		sys := ""
		if v := s.systemID.Load(); v != nil {
			sys = *v
		}
		s.SetBound(pe.id, sys)
	}
	if pe.h != nil {
		pe.h.HandleResponse(pe.ref, p, nil)
	}
}

func (s *Session) handleRequest(p *PDU) {
	id := p.ID()
	switch id {
	case EnquireLink:
		s.write(HeaderOnly(EnquireLinkResp, StatusOK, p.Seq()))
		return
	case Unbind:
		if !s.State().Bound() {
			s.write(HeaderOnly(UnbindResp, StatusInvBndSts, p.Seq()))
			return
		}
		s.setState(StateUnbinding)
		s.peerUnbound.Store(true)
		s.write(HeaderOnly(UnbindResp, StatusOK, p.Seq()))
		s.CloseAfterFlush()
		return
	}
	st := s.State()
	if !allowed(s.side, st, id) {
		s.protoErrs.Add(1)
		status := StatusInvBndSts
		if id.IsBind() && st.Bound() {
			status = StatusAlyBnd
		}
		if id.HasResponse() {
			s.write(HeaderOnly(id.Response(), status, p.Seq()))
		} else {
			s.write(HeaderOnly(GenericNack, status, p.Seq()))
		}
		return
	}
	if id.HasResponse() {
		s.rxReq.Add(1)
		if s.peerOutstanding.Add(1) > int64(s.cfg.PeerWindow) {
			s.peerOutstanding.Add(-1)
			s.throttled.Add(1)
			s.write(HeaderOnly(id.Response(), s.cfg.ThrottleStatus, p.Seq()))
			return
		}
		if g := s.cfg.Global; g != nil && g.n.Add(1) > g.Max {
			g.n.Add(-1)
			s.peerOutstanding.Add(-1)
			s.throttled.Add(1)
			s.write(HeaderOnly(id.Response(), s.cfg.ThrottleStatus, p.Seq()))
			return
		}
	}
	if s.handler == nil {
		if id.HasResponse() {
			s.WriteResponse(HeaderOnly(id.Response(), StatusSysErr, p.Seq()))
		}
		return
	}
	s.handler.ServePDU(s, p)
}

// deadline returns the coarse clock plus d plus one tick: never earlier than now+d, at most
// two ticks later (the timers check deadlines once a tick anyway).
func (s *Session) deadline(d time.Duration) int64 {
	return s.clock.Load() + int64(d) + int64(s.tick())
}

// yieldBatch is the batch size from which the writer yields once before it flushes.
const yieldBatch = 4

func (s *Session) tick() time.Duration {
	t := s.cfg.ResponseTimeout / 4
	if t > time.Second {
		t = time.Second
	}
	if t < 10*time.Millisecond {
		t = 10 * time.Millisecond
	}
	return t
}

func (s *Session) writeLoop() {
	bw := bufio.NewWriterSize(s.conn, 16*1024)
	ticker := time.NewTicker(s.tick())
	defer ticker.Stop()
	var wdlAt int64 // the coarse clock when the write deadline was last set
	for {
		select {
		case b := <-s.out:
			// The write deadline is moved once a tick, not once a batch: a write may
			// take WriteTimeout to WriteTimeout + two ticks before it fails.
			if c := s.clock.Load(); c != wdlAt {
				wdlAt = c
				s.conn.SetWriteDeadline(time.Unix(0, s.deadline(s.cfg.WriteTimeout)))
			}
			s.wmu.Lock()
			ok := s.writePartial(bw) && s.writeBatch(bw, b)
			s.wmu.Unlock()
			if !ok {
				return
			}
		case now := <-ticker.C:
			s.clock.Store(now.UnixNano())
			if s.recvd.Swap(false) {
				s.lastRecv.Store(now.UnixNano())
			}
			if !s.timers(now, bw) {
				return
			}
		case <-s.closing:
			return
		}
	}
}

// writePartial writes what an inline write left (under wmu), ahead of everything queued.
func (s *Session) writePartial(bw *bufio.Writer) bool {
	if s.partial == nil {
		return true
	}
	rest := s.partial
	s.partial = nil
	if _, err := bw.Write(rest); err != nil {
		s.closeWith(fmt.Errorf("smpp: write: %w", err))
		return false
	}
	s.queued.Add(-1)
	return true
}

// writeBatch writes b and whatever else is queued (the spill too), then flushes once.
func (s *Session) writeBatch(bw *bufio.Writer, b []byte) bool {
	n, yielded := 0, false
	for {
		if b == nil { // flush and close, after what was spilled
			if !s.writeFrames(bw, s.takeSpill()...) {
				return false
			}
			if err := bw.Flush(); err != nil {
				s.closeWith(err)
				return false
			}
			s.closeWith(io.EOF)
			return false
		}
		if !s.writeFrames(bw, b) {
			return false
		}
		n++
		select {
		case b = <-s.out:
			continue
		default:
		}
		if s.spillN.Load() > 0 {
			if !s.writeFrames(bw, s.takeSpill()...) {
				return false
			}
			select {
			case b = <-s.out:
				continue
			default:
			}
		}
		if n >= yieldBatch && !yielded {
			// Under load (a batch this big), let the producers run once before the
			// flush: the batch grows instead of the writer racing them frame by frame.
			// A lone frame (window 1) is flushed at once.
			yielded = true
			runtime.Gosched()
			select {
			case b = <-s.out:
				continue
			default:
			}
		}
		if err := bw.Flush(); err != nil {
			s.closeWith(fmt.Errorf("smpp: write: %w", err))
			return false
		}
		return true
	}
}

type keepalive struct{ s *Session }

func (k keepalive) HandleResponse(_ Ref, _ *PDU, err error) {
	k.s.mu.Lock()
	k.s.enqSeq = 0
	k.s.mu.Unlock()
	if errors.Is(err, ErrTimeout) {
		k.s.log.Warn("smpp: enquire_link unanswered, closing")
		k.s.closeWith(fmt.Errorf("smpp: enquire_link: %w", err))
	}
}

// timers runs on the writer goroutine: response timeouts, bind timeout, inactivity and
// keepalive. It writes to bw itself (queueing to s.out from here could deadlock) and reports
// whether the session goes on.
func (s *Session) timers(now time.Time, bw *bufio.Writer) bool {
	nowNs := now.UnixNano()
	s.mu.Lock()
	expired := s.pending.takeIf(nil, func(pe *pending) bool { return pe.deadline <= nowNs })
	s.mu.Unlock()
	for _, pe := range expired {
		<-s.window
		s.timeouts.Add(1)
		if pe.h != nil {
			pe.h.HandleResponse(pe.ref, nil, ErrTimeout)
		}
	}
	st := s.State()
	if st == StateOpen && now.Sub(s.createdAt) > s.cfg.BindTimeout {
		s.log.Info("smpp: not bound within bind timeout, closing", zap.Duration("bind_timeout", s.cfg.BindTimeout))
		s.closeWith(errors.New("smpp: bind timeout"))
		return false
	}
	if !st.Bound() {
		return true
	}
	idle := time.Duration(nowNs - s.lastRecv.Load())
	if s.cfg.InactivityTimeout > 0 && idle > s.cfg.InactivityTimeout {
		s.log.Info("smpp: inactivity timeout, unbinding", zap.Duration("idle", idle))
		s.setState(StateUnbinding)
		s.directWrite(bw, HeaderOnly(Unbind, StatusOK, s.NextSeq()))
		s.closeWith(errors.New("smpp: inactivity timeout"))
		return false
	}
	if s.cfg.EnquireLinkInterval > 0 && idle > s.cfg.EnquireLinkInterval {
		s.mu.Lock()
		if s.enqSeq != 0 || s.finished {
			s.mu.Unlock()
			return true
		}
		select {
		case s.window <- struct{}{}:
		default: // window full of requests: their responses will prove the peer alive
			s.mu.Unlock()
			return true
		}
		seq := s.freeSeq()
		s.enqSeq = seq
		s.pending.put(seq, pending{h: keepalive{s}, id: EnquireLink, deadline: nowNs + int64(s.cfg.ResponseTimeout)})
		s.mu.Unlock()
		return s.directWrite(bw, HeaderOnly(EnquireLink, StatusOK, seq))
	}
	return true
}

func (s *Session) directWrite(bw *bufio.Writer, b []byte) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if !s.writePartial(bw) {
		return false
	}
	if _, err := bw.Write(b); err != nil {
		s.closeWith(fmt.Errorf("smpp: write: %w", err))
		return false
	}
	if err := bw.Flush(); err != nil {
		s.closeWith(fmt.Errorf("smpp: write: %w", err))
		return false
	}
	s.txPDUs.Add(1)
	if s.cfg.Counts != nil {
		s.cfg.Counts.add(false, b)
	}
	return true
}
