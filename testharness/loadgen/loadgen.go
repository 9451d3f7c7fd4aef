// Package loadgen is a fast SMPP 3.4 load-generating ESME, used by the end-to-end tests, the
// benchmarks and `smppguard load`.
//
// It is an ESME of its own, written directly on the wire codec (package smpp: frames,
// index, encoder) and sharing no session code with the proxy it measures. Per bind there is
// one reader goroutine and one sender goroutine. The sender claims a slot of the bind's
// window (a counting semaphore), a global ticket (which bounds Count exactly across binds
// and, with Rate, gives the message its due time on an absolute schedule), patches the
// sequence number and destination counter into the bind's pre-built submit_sm, records the
// send time in the in-flight map and appends the frame to a bufio.Writer shared with the
// reader under a mutex. It flushes only when it is about to wait (window full, ahead of the
// rate schedule, done), so writes batch under load and go out at once when idle. The reader
// matches submit_sm_resp and generic_nack to the in-flight map by sequence number, records
// the latency in a log-linear histogram and frees the window slot; it answers deliver_sm
// (counting receipts and mobile-originated messages) and enquire_link, and tells requests
// from responses by command_id alone, since an SMSC's sequence numbers may equal ours. A
// sweeper turns responses missing after Timeout into timeouts, so every loop ends.
//
// With Config.Mix the run sends several kinds of message (plain text, OTPs to cached or
// fresh numbers, a concatenated OTP in 2 parts, a UCS-2 OTP) in an even weighted round robin
// indexed by the global ticket; each bind pre-builds the frames of every kind and patches
// the sequence number, destination digits, OTP code and concatenation reference in place,
// and the Result has a row per kind.
//
// The steady state allocates nothing per submit (see BenchmarkRun): frames are read as views
// of the reader's buffer and indexed into a reused smpp.PDU; message ids are kept as 64-bit
// hashes.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
)

// Config configures a load run. Addr and one of Count or Duration are required.
type Config struct {
	Addr                           string // SMSC or proxy address (127.0.0.1:port)
	SystemID, Password, SystemType string
	// BindType is "transceiver" (default) or "transmitter"; with "transmitter" and WaitDLRs > 0
	// a separate bind_receiver is opened per bind slot to take the receipts.
	BindType string
	Binds    int           // parallel binds, default 1
	Window   int           // outstanding submits per bind, default 10
	Count    int           // total submits across binds (0 = until Duration)
	Duration time.Duration // stop submitting after this (0 = until Count)
	// Rate is the open-loop submit rate across all binds, per second: submit n is due at
	// (n-1)/Rate after the start whatever the responses do (a concat's second part goes right
	// behind its first). The window still bounds what is outstanding: a message held back by
	// a full window goes as soon as a slot frees (the schedule catches up) and its latency
	// counts from then. 0 = closed loop: as fast as the window allows.
	Rate float64
	// Source and Dest default to "SMPPGUARD" and "447700900000" ("4477009*" with a Mix). A
	// Dest ending in "*" gets a per-message counter of fixed width in place of the star: at
	// least 7 digits, more when Count needs them ("4477009*" → 44770090000001,
	// 44770090000002, ...). With a Mix, see Mix for the numbers each kind uses.
	Source, Dest       string
	Text               string // default "Your code is 123456"; over 254 octets it goes in message_payload
	DataCoding         byte   // 0x08 sends Text as UCS-2
	RegisteredDelivery byte   // 1 to request receipts
	// WaitDLRs: after the last response, wait up to this long for a receipt per successful
	// submit (it does not set RegisteredDelivery). Receipts are matched by
	// receipted_message_id (or the "id:" of the receipt text) to the submit_sm_resp
	// message_id; they are tracked whenever WaitDLRs or RegisteredDelivery is set.
	WaitDLRs time.Duration
	Timeout  time.Duration // per response (also bind and unbind), default 10 s; a missing response counts as a timeout
	// Template is a complete submit_sm frame to send instead of building one; only its
	// sequence number is patched per send (Source, Dest, Text, DataCoding and
	// RegisteredDelivery are then unused). It cannot be combined with Mix.
	Template []byte

	// Mix, when set, makes the run send several kinds of message instead of Text (Text and
	// DataCoding are then unused; Source and RegisteredDelivery apply to every kind). See
	// ParseMix for the flag form. Message n of the run (the global ticket, from 1, across
	// binds) is of the kind at position (n-1) mod C of a smooth weighted round robin (nginx's)
	// over the weights, C being the sum of the weights divided by their greatest common
	// divisor: every kind is spread evenly (after any number of messages each kind's count is
	// within one of its share) and every C consecutive messages hold exactly Weight/gcd of
	// each. Weights count messages. A concat message is 2 submit_sm, and Count, Window, Rate
	// and Result count submits, so a cycle of C messages is C + Weight(concat)/gcd submits and
	// a Count that is a multiple of that gives the weights exactly (plain=70,otp-cached=20,
	// otp-uncached=5,concat=3,ucs2=2: 103 submits per 100 messages). A concat takes two window
	// slots before its first part goes (so Window must be at least 2: an SMSC or proxy may
	// answer neither part before it has both) and its second part is written right behind the
	// first on the same bind; when only one submit of Count is left for a concat, the run ends
	// one short of Count. The kinds (MixKinds):
	//
	//	plain         "Your parcel 4471 will arrive tomorrow between 9 and 12.", GSM 7-bit (data_coding 0)
	//	otp-cached    "Your verification code is NNNNNN. Do not share it.", data_coding 0
	//	otp-uncached  the same
	//	concat        "Your one-time password is NNNNNN. It is valid for 10 minutes ..." (267 characters),
	//	              data_coding 0, esm_class 0x40: part 1 is a UDH 05 00 03 <ref> 02 01 and the
	//	              first 153 characters (the code among them), part 2 the UDH 05 00 03 <ref> 02 02
	//	              and the other 114; ref is the concat message's ordinal (0, 1, ...) modulo 256
	//	ucs2          "Ваш код подтверждения: NNNNNN", UCS-2 (data_coding 0x08)
	//
	// NNNNNN is a 6-digit code that changes with every message: (482913 + 7919(n-1)) mod 10^6
	// for message n, so no two messages of a run below a million messages share one. GSM texts
	// are unpacked, one octet per character, all characters coded as in ASCII.
	//
	// Destinations with a Mix (all TON 1, NPI 1): Dest must be a prefix of digits (a leading
	// "+" allowed) ending in "*" (default DefaultMixDest, "4477009*"); each number is the prefix and a counter of W
	// digits, W the least of 7 or more with Count + K < 10^W, where K is CachedDests when the
	// Mix has otp-cached and 0 otherwise (with "4477009*" and the default 100, W is 7 up to a
	// Count of 9,999,899). The numbers must be E.164, at most 15 digits.
	//   - otp-cached messages go to the K numbers prefix + (10^W - K) ... prefix + (10^W - 1),
	//     in turn (the i-th otp-cached message of the run, from 0, to prefix + (10^W - K + i mod K));
	//     with the defaults 44770099999900 to 44770099999999.
	//   - Every other kind goes to prefix + s, s the submit position of the message's first part
	//     in the run (1, 2, ...; both parts of a concat share it): 44770090000001, ... No two
	//     messages share a number and none is a cached one. Past 10^W - 1 - K submits (only in a
	//     run bounded by Duration) s starts again from 1.
	Mix []MixItem
	// CachedDests is the number of destinations of the otp-cached kind (see Mix), default
	// DefaultCachedDests (100).
	CachedDests int

	Logger *zap.Logger
}

// Result is what a run measured. Sent == Responses + Timeouts; a response that arrives
// after its timeout is not counted again.
type Result struct {
	Sent, Responses, OK, Timeouts int64
	ErrorsByStatus                map[string]int64 // error responses by status name (ESME_RTHROTTLED, ...), generic_nack included
	DLRs, MOs                     int64            // deliver_sm received: receipts (esm_class & 0x04) and mobile-originated
	// Elapsed is from the first submit to the last response (or timeout).
	Elapsed    time.Duration
	Throughput float64     // responses (OK and error) per second over Elapsed
	Latency    Percentiles // submit -> submit_sm_resp
	DLRLatency Percentiles // submit -> receipt, for receipts matched to a submit of this run
	// MessageIDs is the number of distinct message ids in successful responses (compared as
	// 64-bit hashes; past 16 Mi ids per run the rest are assumed distinct).
	MessageIDs int64
	// ByKind has a KindResult per kind of the Mix (nil without a Mix). Its Sent, OK, Errors
	// and Timeouts add up to the totals above.
	ByKind map[string]KindResult `json:",omitempty"`
}

// KindResult is what a run measured for one kind of its Mix. Sent == OK + Errors + Timeouts.
type KindResult struct {
	Weight   int   // as configured
	Messages int64 // messages sent: Sent, or Sent/2 for concat
	Sent     int64 // submit_sm sent
	OK       int64 // ESME_ROK responses
	Errors   int64 // error responses and generic_nack
	Timeouts int64
	Latency  Percentiles // submit -> submit_sm_resp
}

// Percentiles summarises a latency histogram (values within 0.4 %).
type Percentiles struct {
	P50, P90, P99, P999, Max time.Duration
	N                        int64
}

// Bind types.
const (
	BindTransceiver = "transceiver"
	BindTransmitter = "transmitter"
)

// Defaults.
const (
	DefaultSource  = "SMPPGUARD"
	DefaultDest    = "447700900000"
	DefaultText    = "Your code is 123456"
	DefaultWindow  = 10
	DefaultTimeout = 10 * time.Second
)

// maxWindow bounds Window (the drain at the end of a run takes the window's slots one by one).
const maxWindow = 1 << 20

// maxTrackedIDs bounds the memory spent on counting distinct message ids (8 bytes each).
const maxTrackedIDs = 1 << 24

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		return c, errors.New("loadgen: Addr is required")
	}
	switch c.BindType {
	case "":
		c.BindType = BindTransceiver
	case BindTransceiver, BindTransmitter:
	default:
		return c, fmt.Errorf("loadgen: BindType %q: want %q or %q", c.BindType, BindTransceiver, BindTransmitter)
	}
	if c.Binds < 0 || c.Window < 0 || c.Count < 0 || c.Duration < 0 || c.WaitDLRs < 0 || c.Timeout < 0 {
		return c, errors.New("loadgen: Binds, Window, Count, Duration, WaitDLRs and Timeout must not be negative")
	}
	if c.Window > maxWindow {
		return c, fmt.Errorf("loadgen: Window %d: at most %d", c.Window, maxWindow)
	}
	if c.Count == 0 && c.Duration == 0 {
		return c, errors.New("loadgen: one of Count or Duration is required")
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return c, fmt.Errorf("loadgen: Rate %v: want a finite rate >= 0", c.Rate)
	}
	if c.CachedDests < 0 {
		return c, fmt.Errorf("loadgen: CachedDests %d: must not be negative", c.CachedDests)
	}
	if c.CachedDests == 0 {
		c.CachedDests = DefaultCachedDests
	}
	if len(c.Mix) > 0 {
		if err := validateMix(c.Mix); err != nil {
			return c, err
		}
		if len(c.Template) > 0 {
			return c, errors.New("loadgen: Template and Mix cannot be combined")
		}
		if c.Window == 1 && mixHas(c.Mix, KindConcat) {
			return c, errors.New("loadgen: a Mix with concat needs a Window of at least 2: both parts of a message are outstanding together")
		}
	}
	if c.Binds == 0 {
		c.Binds = 1
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.Dest == "" {
		c.Dest = DefaultDest
		if len(c.Mix) > 0 {
			c.Dest = DefaultMixDest
		}
	}
	if c.Text == "" {
		c.Text = DefaultText
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

// run is the state the sessions of one Run share.
type run struct {
	cfg   Config
	log   *zap.Logger
	kinds []kindTmpl // the kinds of message; one, unnamed, without a Mix
	mix   *mixPlan   // nil without a Mix
	// The destination counter: destWidth digits at each part's destOff (0 = none); without a
	// Mix its value is the ticket modulo destMod.
	destWidth int
	destMod   int64
	seed      maphash.Seed
	base      time.Time // monotonic origin of every timestamp (ns since base)

	timeoutNs int64
	startNs   int64   // when submitting started
	endNs     int64   // when submitting stops (Duration), 0 = no limit
	intervalN float64 // ns between messages with Rate, 0 = closed loop
	count     int64

	tickets atomic.Int64    // messages claimed across binds (submits too, without a Mix)
	aborted atomic.Bool     // the caller's context is done
	stopped chan struct{}   // closed when submitting must stop (Duration over or aborted)
	abort   <-chan struct{} // the caller's ctx.Done()
	idCap   int             // message id hashes kept per session

	dlr        *dlrTracker   // nil unless receipts are tracked
	dlrNotify  chan struct{} // a receipt was matched
	dlrPending atomic.Int64  // receipts still expected: OK responses minus matched receipts
}

func (r *run) now() int64 { return int64(time.Since(r.base)) }

// Run binds all binds, submits until Count or Duration (or ctx) ends, waits for the
// outstanding responses (at most Timeout) and, with WaitDLRs, for the receipts, unbinds
// cleanly and returns what it measured. A bind failure is an error naming the bind's status
// (errors.As finds the smpp.Status). When ctx ends early Run still unbinds and returns the
// partial Result together with ctx's error; a connection lost mid-run is likewise an error
// returned with the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &run{
		cfg:       cfg,
		log:       cfg.Logger,
		seed:      maphash.MakeSeed(),
		base:      time.Now(),
		timeoutNs: int64(cfg.Timeout),
		count:     int64(cfg.Count),
		stopped:   make(chan struct{}),
		abort:     ctx.Done(),
	}
	if len(cfg.Mix) > 0 {
		r.kinds, r.mix, r.destWidth, r.destMod, err = buildMix(&cfg)
	} else {
		var tmpl submitTemplate
		tmpl, err = buildSubmit(&cfg)
		part := partTmpl{frame: tmpl.frame}
		if tmpl.destWidth > 0 {
			part.destOff = tmpl.destOff
		}
		r.kinds, r.destWidth, r.destMod = []kindTmpl{{parts: []partTmpl{part}}}, tmpl.destWidth, tmpl.mod
	}
	if err != nil {
		return nil, err
	}
	if cfg.Rate > 0 {
		r.intervalN = 1e9 / cfg.Rate
	}
	if cfg.WaitDLRs > 0 || cfg.RegisteredDelivery&0x03 != 0 || templateWantsReceipts(cfg.Template) {
		r.dlr = newDLRTracker()
		r.dlrNotify = make(chan struct{}, 1)
	}
	r.idCap = maxTrackedIDs / cfg.Binds

	// Bind everything before the first submit.
	senderKind := smpp.BindTransceiver
	if cfg.BindType == BindTransmitter {
		senderKind = smpp.BindTransmitter
	}
	kinds := make([]smpp.CommandID, 0, 2*cfg.Binds)
	for range cfg.Binds {
		kinds = append(kinds, senderKind)
	}
	if senderKind == smpp.BindTransmitter && cfg.WaitDLRs > 0 {
		for range cfg.Binds {
			kinds = append(kinds, smpp.BindReceiver)
		}
	}
	sessions := make([]*session, len(kinds))
	errs := make([]error, len(kinds))
	var wg sync.WaitGroup
	for i, k := range kinds {
		wg.Go(func() { sessions[i], errs[i] = r.bind(ctx, i%cfg.Binds, k) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		var bound []*session
		for _, s := range sessions {
			if s != nil {
				bound = append(bound, s)
			}
		}
		r.unbindAll(bound, min(cfg.Timeout, time.Second))
		return nil, err
	}
	senders := sessions[:cfg.Binds]

	// Submit.
	stopAbort := context.AfterFunc(ctx, func() { r.aborted.Store(true) })
	defer stopAbort()
	r.startNs = r.now()
	if cfg.Duration > 0 {
		r.endNs = r.startNs + int64(cfg.Duration)
	}
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(r.stopped) }) }
	stopTimer := context.AfterFunc(ctx, stop)
	defer stopTimer()
	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration, stop)
		defer t.Stop()
	}
	sweepDone := make(chan struct{})
	sweepExit := make(chan struct{})
	go r.sweep(senders, sweepDone, sweepExit)
	for _, s := range senders {
		wg.Go(func() {
			s.send()
			s.drain(ctx)
		})
	}
	wg.Wait()
	elapsed := time.Duration(r.now() - r.startNs)
	stop()

	// Receipts.
	if cfg.WaitDLRs > 0 && r.dlr != nil && ctx.Err() == nil {
		r.waitDLRs(ctx, cfg.WaitDLRs)
	}

	// Unbind.
	grace := cfg.Timeout
	if ctx.Err() != nil {
		grace = min(grace, time.Second)
	}
	r.unbindAll(sessions, grace)
	close(sweepDone)
	<-sweepExit

	res := r.collect(sessions, elapsed)
	var late int64
	for _, s := range sessions {
		late += s.late
	}
	r.log.Info("loadgen: run done", zap.Int64("sent", res.Sent), zap.Int64("responses", res.Responses),
		zap.Int64("ok", res.OK), zap.Int64("timeouts", res.Timeouts), zap.Int64("late_responses", late),
		zap.Int64("receipts", res.DLRs), zap.Duration("elapsed", res.Elapsed), zap.Float64("throughput", res.Throughput))
	var runErrs []error
	if err := ctx.Err(); err != nil {
		runErrs = append(runErrs, fmt.Errorf("loadgen: run interrupted: %w", err))
	}
	for _, s := range sessions {
		if err := s.failure(); err != nil {
			runErrs = append(runErrs, err)
		}
	}
	return res, errors.Join(runErrs...)
}

func templateWantsReceipts(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	p, err := smpp.Parse(t)
	if err != nil {
		return false
	}
	v, _ := p.Uint8(smpp.FieldRegisteredDelivery)
	return v&0x03 != 0
}

// sweep turns in-flight submits older than Timeout into timeouts until done is closed.
func (r *run) sweep(sessions []*session, done <-chan struct{}, exit chan<- struct{}) {
	defer close(exit)
	period := min(max(r.cfg.Timeout/8, time.Millisecond), 250*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		limit := r.now() - r.timeoutNs
		for _, s := range sessions {
			s.expire(limit)
		}
	}
}

// waitDLRs waits until every successful submit has its receipt, or for at most d.
func (r *run) waitDLRs(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for r.dlrPending.Load() > 0 {
		select {
		case <-r.dlrNotify:
		case <-t.C:
			r.log.Info("loadgen: receipts still missing after WaitDLRs", zap.Int64("missing", r.dlrPending.Load()), zap.Duration("wait", d))
			return
		case <-ctx.Done():
			return
		}
	}
}

func (r *run) unbindAll(sessions []*session, grace time.Duration) {
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() { s.unbind(grace) })
	}
	wg.Wait()
}

func (r *run) collect(sessions []*session, elapsed time.Duration) *Result {
	res := &Result{ErrorsByStatus: map[string]int64{}, Elapsed: elapsed}
	lat, dlrLat := newHist(), newHist()
	var ids []uint64
	var untracked int64
	for _, s := range sessions {
		res.Sent += s.sent
		res.Responses += s.responses
		res.OK += s.ok.Load()
		res.Timeouts += s.timeouts.Load()
		res.DLRs += s.dlrs
		res.MOs += s.mos
		for st, n := range s.errs {
			res.ErrorsByStatus[st.String()] += n
		}
		lat.Merge(s.lat)
		dlrLat.Merge(s.dlrLat)
		if ids == nil {
			ids = s.ids
		} else {
			ids = append(ids, s.ids...)
		}
		untracked += s.untrackedIDs
	}
	slices.Sort(ids)
	res.MessageIDs = int64(len(slices.Compact(ids))) + untracked
	res.Latency = lat.Percentiles()
	res.DLRLatency = dlrLat.Percentiles()
	if r.mix != nil {
		res.ByKind = make(map[string]KindResult, len(r.kinds))
		for k, kt := range r.kinds {
			kr := KindResult{Weight: kt.weight}
			klat := newHist()
			for _, s := range sessions {
				if s.kstats == nil {
					continue
				}
				st := &s.kstats[k]
				kr.Messages += st.messages
				kr.Sent += st.sent
				kr.OK += st.ok
				kr.Errors += st.errs
				kr.Timeouts += st.timeouts.Load()
				klat.Merge(st.lat)
			}
			kr.Latency = klat.Percentiles()
			res.ByKind[kt.name] = kr
		}
	}
	if elapsed > 0 {
		res.Throughput = float64(res.Responses) / elapsed.Seconds()
	}
	return res
}
