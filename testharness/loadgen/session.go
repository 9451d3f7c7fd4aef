package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
)

const (
	readBufSize  = 64 * 1024
	writeBufSize = 64 * 1024
	// rateSlack: with Rate, a message due less than this ahead is sent at once rather than
	// after a timer (timers are not finer than this anyway); the schedule stays absolute, so
	// the rate is exact on average and never more than rateSlack ahead.
	rateSlack = 50 * time.Microsecond
	// rateEndGrace: with Rate and Duration, a message due before the end is still sent this
	// long after it (a timer wakes late, a busy machine lags).
	rateEndGrace = 10 * time.Millisecond
)

var errPeerUnbind = errors.New("the SMSC unbound the session")

// flight is a submit awaiting its response.
type flight struct {
	at   int64 // send time
	kind int32 // index into run.kinds
}

// kindStats are a session's counters for one kind of the Mix.
type kindStats struct {
	messages, sent int64 // sender
	ok, errs       int64 // reader
	lat            *hist // reader
	timeouts       atomic.Int64
}

// session is one bind: a connection, its reader and (for transmitters and transceivers) its
// sender.
type session struct {
	r    *run
	idx  int
	kind smpp.CommandID
	conn net.Conn
	fr   frameReader
	pdu  smpp.PDU // the reader's, reused for every frame

	wmu sync.Mutex // guards bw and wdl
	bw  *bufio.Writer
	wdl int64 // when the write deadline was last pushed forward

	imu      sync.Mutex
	inflight map[uint32]flight // seq -> submit awaiting a response

	win    chan struct{} // window: a send takes a slot, a response or timeout frees it
	seq    uint32        // last sequence number used; the sender's (bind and unbind too)
	frames [][][]byte    // this bind's copies of the submit_sm frames, per kind and part
	timer  *time.Timer   // the sender's, for Rate

	// Counters. Those read while the run goes on are atomic; the others belong to one
	// goroutine and are read after it ended.
	sent         int64 // sender
	responses    int64 // reader
	errs         map[smpp.Status]int64
	late         int64
	dlrs, mos    int64
	lat, dlrLat  *hist
	ids          []uint64
	untrackedIDs int64
	ok           atomic.Int64
	timeouts     atomic.Int64
	kstats       []kindStats // per kind of the Mix, nil without one (and for receivers)

	readerDone chan struct{}
	unbindResp chan struct{}
	gotUnbind  sync.Once
	closing    atomic.Bool // we are closing: read errors are expected
	closeOnce  sync.Once
	errMu      sync.Mutex
	err        error
}

// bind connects and binds one session of the given kind and starts its reader. The bind
// request takes sequence number 1; the submits follow from 2.
func (r *run) bind(ctx context.Context, idx int, kind smpp.CommandID) (*session, error) {
	cfg := &r.cfg
	fail := func(err error) error {
		return fmt.Errorf("loadgen: bind %d (%s as %q) to %s: %w", idx, kind, cfg.SystemID, cfg.Addr, err)
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fail(err)
	}
	s := &session{
		r:          r,
		idx:        idx,
		kind:       kind,
		conn:       conn,
		fr:         newFrameReader(conn, readBufSize, 0),
		bw:         bufio.NewWriterSize(conn, writeBufSize),
		errs:       map[smpp.Status]int64{},
		lat:        newHist(),
		readerDone: make(chan struct{}),
		unbindResp: make(chan struct{}),
	}
	if r.dlr != nil {
		s.dlrLat = newHist()
	}
	if kind != smpp.BindReceiver {
		s.win = make(chan struct{}, cfg.Window)
		s.inflight = make(map[uint32]flight, min(cfg.Window, 4096))
		s.frames = make([][][]byte, len(r.kinds))
		for k, kt := range r.kinds {
			for _, p := range kt.parts {
				s.frames[k] = append(s.frames[k], bytes.Clone(p.frame))
			}
		}
		if r.mix != nil {
			s.kstats = make([]kindStats, len(r.kinds))
			for k := range s.kstats {
				s.kstats[k].lat = newHist()
			}
		}
		s.timer = time.NewTimer(time.Hour)
		s.timer.Stop()
	}

	// The handshake is synchronous, bounded by Timeout and by ctx.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(time.Now().Add(cfg.Timeout))
	frame, err := smpp.BindParams{SystemID: cfg.SystemID, Password: cfg.Password, SystemType: cfg.SystemType}.Encode(kind, s.nextSeq())
	if err == nil {
		_, err = conn.Write(frame)
	}
	for err == nil {
		var f []byte
		if f, err = s.fr.next(); err != nil {
			break
		}
		h, _ := smpp.ParseHeader(f)
		switch {
		case h.ID == kind.Response() || h.ID == smpp.GenericNack:
			if h.Status != smpp.StatusOK {
				err = h.Status
			} else if h.ID == smpp.GenericNack {
				err = errors.New("generic_nack with status ESME_ROK")
			} else {
				conn.SetDeadline(time.Time{})
				r.log.Debug("loadgen: bound", zap.Int("bind", idx), zap.Stringer("kind", kind), zap.String("addr", cfg.Addr))
				go s.read()
				return s, nil
			}
		case h.ID == smpp.EnquireLink:
			_, err = conn.Write(smpp.HeaderOnly(smpp.EnquireLinkResp, smpp.StatusOK, h.Seq))
		}
	}
	conn.Close()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return nil, fail(err)
}

func (s *session) nextSeq() uint32 {
	s.seq++
	if s.seq == 0 || s.seq > 0x7FFFFFFF {
		s.seq = 1
	}
	return s.seq
}

// fail records the session's first failure and closes the connection. Once we are closing
// the session, failures are expected and not recorded.
func (s *session) fail(err error) {
	s.errMu.Lock()
	if s.err == nil && !s.closing.Load() {
		s.err = fmt.Errorf("loadgen: bind %d (%s): %w", s.idx, s.kind, err)
		s.r.log.Warn("loadgen: session failed", zap.Int("bind", s.idx), zap.Stringer("kind", s.kind), zap.Error(err))
	}
	s.errMu.Unlock()
	s.close()
}

func (s *session) failure() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *session) close() {
	s.closeOnce.Do(func() { s.conn.Close() })
}

// writeLocked appends b to the write buffer; s.wmu is held. The write deadline is kept at
// least Timeout/2 ahead of any write that can reach the socket, so a peer that stops reading
// fails the session instead of hanging it.
func (s *session) writeLocked(b []byte) error {
	if len(b) > s.bw.Available() {
		s.pushDeadlineLocked()
	}
	_, err := s.bw.Write(b)
	return err
}

func (s *session) flushLocked() error {
	if s.bw.Buffered() == 0 {
		return nil
	}
	s.pushDeadlineLocked()
	return s.bw.Flush()
}

func (s *session) pushDeadlineLocked() {
	if now := s.r.now(); now-s.wdl > s.r.timeoutNs/2 {
		s.conn.SetWriteDeadline(time.Now().Add(s.r.cfg.Timeout))
		s.wdl = now
	}
}

func (s *session) write(b []byte, flush bool) {
	s.wmu.Lock()
	err := s.writeLocked(b)
	if err == nil && flush {
		err = s.flushLocked()
	}
	s.wmu.Unlock()
	if err != nil {
		s.fail(fmt.Errorf("write: %w", err))
	}
}

func (s *session) flush() {
	s.wmu.Lock()
	err := s.flushLocked()
	s.wmu.Unlock()
	if err != nil {
		s.fail(fmt.Errorf("write: %w", err))
	}
}

// takeSlot takes a window slot, flushing what is buffered before waiting for one. It returns
// false when submitting must stop or the connection is lost.
func (s *session) takeSlot() bool {
	select {
	case s.win <- struct{}{}:
		return true
	default:
	}
	s.flush()
	select {
	case s.win <- struct{}{}:
		return true
	case <-s.r.stopped:
		return false
	case <-s.readerDone:
		return false
	}
}

// freeSlots gives back n window slots taken for submits that are not sent.
func (s *session) freeSlots(n int) {
	for range n {
		<-s.win
	}
}

// send submits until the run's Count is claimed, its Duration is over, ctx ends or the
// connection fails.
func (s *session) send() {
	r := s.r
	defer s.flush()
	for {
		// A window slot first: the ticket's due time must not pass while waiting for one.
		if !s.takeSlot() {
			return
		}
		if r.aborted.Load() {
			<-s.win
			return
		}
		// The message: its kind, the submit position of its first part and, with a Mix, its
		// ordinal among the messages of its kind.
		n := r.tickets.Add(1)
		kind, pos, ord := 0, n, int64(0)
		if r.mix != nil {
			kind, pos, ord = r.mix.locate(n)
		}
		kt := &r.kinds[kind]
		parts := len(kt.parts)
		if r.count > 0 && pos+int64(parts)-1 > r.count {
			<-s.win
			return
		}
		// A message of several parts has all its slots before its first part goes: an SMSC or
		// proxy may answer no part before it has them all.
		for held := 1; held < parts; held++ {
			if !s.takeSlot() {
				s.freeSlots(held)
				return
			}
		}
		now := r.now()
		var due int64
		if r.intervalN > 0 {
			due = r.startNs + int64(float64(pos-1)*r.intervalN)
			if r.endNs > 0 && due >= r.endNs {
				s.freeSlots(parts)
				return
			}
			if d := due - now; d > int64(rateSlack) {
				s.flush()
				if !s.sleep(time.Duration(d)) {
					s.freeSlots(parts)
					return
				}
				now = r.now()
			}
		}
		// A message due before the end is still sent if the timer woke a little late.
		if r.endNs > 0 && now >= r.endNs && (r.intervalN == 0 || now >= r.endNs+int64(rateEndGrace)) {
			s.freeSlots(parts)
			return
		}

		var dest int64
		switch {
		case r.mix == nil:
			dest = n % r.destMod
		case kt.cached:
			dest = r.mix.cachedBase + ord%r.mix.cached
		default:
			dest = (pos-1)%r.mix.span + 1
		}
		frames := s.frames[kind]
		var seqs [2]uint32 // at most 2 parts
		for i := range parts {
			pt, f := &kt.parts[i], frames[i]
			seqs[i] = s.nextSeq()
			binary.BigEndian.PutUint32(f[12:16], seqs[i])
			if pt.destOff > 0 {
				putCounter(f[pt.destOff:pt.destOff+r.destWidth], dest)
			}
			if pt.codeOff > 0 {
				putCode(f, pt.codeOff, pt.codeStep, otpCode(n))
			}
			if pt.refOff > 0 {
				f[pt.refOff] = byte(ord)
			}
		}
		s.imu.Lock()
		for _, seq := range seqs[:parts] {
			s.inflight[seq] = flight{at: now, kind: int32(kind)}
		}
		s.imu.Unlock()
		s.wmu.Lock()
		var err error
		for i := 0; i < parts && err == nil; i++ {
			err = s.writeLocked(frames[i])
		}
		// With Rate, send at once unless behind schedule (then batch to catch up).
		if err == nil && r.intervalN > 0 && now-due < int64(rateSlack) {
			err = s.flushLocked()
		}
		s.wmu.Unlock()
		s.sent += int64(parts)
		if s.kstats != nil {
			s.kstats[kind].messages++
			s.kstats[kind].sent += int64(parts)
		}
		if err != nil {
			s.fail(fmt.Errorf("write: %w", err))
			return
		}
	}
}

// sleep waits d (until a message due before the end of Duration), or returns false when
// the run is aborted or the connection lost.
func (s *session) sleep(d time.Duration) bool {
	s.timer.Reset(d)
	select {
	case <-s.timer.C:
		return true
	case <-s.r.abort:
		s.timer.Stop()
		return false
	case <-s.readerDone:
		s.timer.Stop()
		return false
	}
}

// drain waits until every submit has its response or has timed out. When the connection is
// gone or ctx ends, what is still outstanding counts as timed out at once.
func (s *session) drain(ctx context.Context) {
	s.flush()
	for range cap(s.win) {
		select {
		case s.win <- struct{}{}:
			continue
		case <-s.readerDone:
		case <-ctx.Done():
		}
		s.imu.Lock()
		n := len(s.inflight)
		if s.kstats != nil {
			for _, f := range s.inflight {
				s.kstats[f.kind].timeouts.Add(1)
			}
		}
		clear(s.inflight)
		s.imu.Unlock()
		s.timeouts.Add(int64(n))
		return
	}
}

// expire times out the submits sent before limit.
func (s *session) expire(limit int64) {
	var n int
	s.imu.Lock()
	for seq, f := range s.inflight {
		if f.at <= limit {
			delete(s.inflight, seq)
			n++
			if s.kstats != nil {
				s.kstats[f.kind].timeouts.Add(1)
			}
		}
	}
	s.imu.Unlock()
	if n == 0 {
		return
	}
	for range n {
		<-s.win
	}
	s.timeouts.Add(int64(n))
	s.r.log.Debug("loadgen: submits timed out", zap.Int("bind", s.idx), zap.Int("n", n))
}

// unbind sends unbind, waits up to grace for unbind_resp, closes the connection and waits
// for the reader to end.
func (s *session) unbind(grace time.Duration) {
	s.closing.Store(true)
	select {
	case <-s.readerDone:
	default:
		// The sender has ended, so the sequence numbers are ours.
		s.write(smpp.HeaderOnly(smpp.Unbind, smpp.StatusOK, s.nextSeq()), true)
		t := time.NewTimer(grace)
		select {
		case <-s.unbindResp:
		case <-s.readerDone:
		case <-t.C:
			s.r.log.Info("loadgen: no unbind_resp", zap.Int("bind", s.idx), zap.Duration("waited", grace))
		}
		t.Stop()
	}
	s.close()
	<-s.readerDone
}

// read is the reader goroutine: it runs until the connection closes.
func (s *session) read() {
	defer close(s.readerDone)
	r := s.r
	dirty := false // responses written but not flushed
	var small [smpp.HeaderLen + 1]byte
	for {
		frame, err := s.fr.next()
		if err != nil {
			if !s.closing.Load() {
				s.fail(fmt.Errorf("read: %w", err))
			}
			s.close()
			return
		}
		now := r.now()
		id := smpp.CommandID(binary.BigEndian.Uint32(frame[4:8]))
		seq := binary.BigEndian.Uint32(frame[12:16])
		// Requests and responses are told apart by command_id: the SMSC's sequence numbers
		// are its own and may equal those of our submits in flight.
		switch id {
		case smpp.SubmitSMResp, smpp.GenericNack:
			s.onResponse(frame, now)
		case smpp.DeliverSM:
			// Answer first, count after: counting the last receipt ends the run's wait, and
			// its deliver_sm_resp must already be queued ahead of the unbind that follows.
			err := s.pdu.Reset(frame)
			st := deliverStatus(err)
			b := small[:smpp.HeaderLen+1]
			putHeader(b, smpp.DeliverSMResp, st, seq) // message_id: empty C-string
			s.write(b, false)
			dirty = true
			if err == nil {
				s.onDeliver(now)
			} else {
				r.log.Debug("loadgen: malformed deliver_sm", zap.Int("bind", s.idx), zap.Error(err))
			}
		case smpp.EnquireLink:
			b := small[:smpp.HeaderLen]
			putHeader(b, smpp.EnquireLinkResp, smpp.StatusOK, seq)
			s.write(b, false)
			dirty = true
		case smpp.EnquireLinkResp:
		case smpp.UnbindResp:
			s.gotUnbind.Do(func() { close(s.unbindResp) })
		case smpp.Unbind:
			b := small[:smpp.HeaderLen]
			putHeader(b, smpp.UnbindResp, smpp.StatusOK, seq)
			s.write(b, true)
			if !s.closing.Load() {
				s.fail(errPeerUnbind)
			}
			s.close()
			return
		default:
			if id.HasResponse() {
				s.onOtherRequest(frame)
				dirty = true
			} else {
				r.log.Debug("loadgen: unexpected PDU ignored", zap.Int("bind", s.idx), zap.Stringer("command", id), zap.Uint32("seq", seq))
			}
		}
		if dirty && s.fr.buffered() == 0 {
			s.flush()
			dirty = false
		}
	}
}

func putHeader(b []byte, id smpp.CommandID, st smpp.Status, seq uint32) {
	clear(b[smpp.HeaderLen:])
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.BigEndian.PutUint32(b[4:8], uint32(id))
	binary.BigEndian.PutUint32(b[8:12], uint32(st))
	binary.BigEndian.PutUint32(b[12:16], seq)
}

// onResponse handles submit_sm_resp and generic_nack.
func (s *session) onResponse(frame []byte, now int64) {
	seq := binary.BigEndian.Uint32(frame[12:16])
	st := smpp.Status(binary.BigEndian.Uint32(frame[8:12]))
	if s.inflight == nil { // a receiver has no submits
		s.late++
		return
	}
	s.imu.Lock()
	f, ok := s.inflight[seq]
	if ok {
		delete(s.inflight, seq)
	}
	s.imu.Unlock()
	sentAt := f.at
	if !ok {
		s.late++ // timed out already, or not ours
		s.r.log.Debug("loadgen: response for no submit in flight", zap.Int("bind", s.idx), zap.Uint32("seq", seq))
		return
	}
	<-s.win
	s.lat.Record(now - sentAt)
	s.responses++
	var ks *kindStats
	if s.kstats != nil {
		ks = &s.kstats[f.kind]
		ks.lat.Record(now - sentAt)
	}
	id := smpp.CommandID(binary.BigEndian.Uint32(frame[4:8]))
	if st != smpp.StatusOK || id == smpp.GenericNack {
		s.errs[st]++
		if ks != nil {
			ks.errs++
		}
		return
	}
	s.ok.Add(1)
	if ks != nil {
		ks.ok++
	}
	if s.pdu.Reset(frame) != nil {
		return
	}
	mid := s.pdu.Field(smpp.FieldMessageID)
	if len(mid) == 0 {
		return
	}
	h := maphash.Bytes(s.r.seed, mid)
	if len(s.ids) < s.r.idCap {
		s.ids = append(s.ids, h)
	} else {
		s.untrackedIDs++
	}
	if t := s.r.dlr; t != nil {
		lat, matched, tracked := t.response(h, sentAt)
		if matched {
			s.r.dlrPending.Add(1) // matched takes it back
			s.matched(lat)
		} else if tracked {
			s.r.dlrPending.Add(1)
		}
	}
}

func deliverStatus(parseErr error) smpp.Status {
	if parseErr == nil {
		return smpp.StatusOK
	}
	var st smpp.Status
	if !errors.As(parseErr, &st) {
		st = smpp.StatusSysErr
	}
	return st
}

// onDeliver counts the deliver_sm indexed in s.pdu: a receipt (matched to its submit when
// receipts are tracked) or a mobile-originated message.
func (s *session) onDeliver(now int64) {
	esm, _ := s.pdu.Uint8(smpp.FieldESMClass)
	if esm&0x04 == 0 {
		s.mos++
		return
	}
	s.dlrs++
	if t := s.r.dlr; t != nil {
		if id := receiptID(&s.pdu); len(id) > 0 {
			if lat, ok := t.receipt(maphash.Bytes(s.r.seed, id), now); ok {
				s.matched(lat)
			}
		}
	}
}

func (s *session) matched(lat int64) {
	s.dlrLat.Record(lat)
	s.r.dlrPending.Add(-1)
	select {
	case s.r.dlrNotify <- struct{}{}:
	default:
	}
}

// onOtherRequest answers a request the load generator does not expect from an SMSC:
// data_sm gets data_sm_resp ESME_ROK, anything else generic_nack ESME_RINVCMDID.
func (s *session) onOtherRequest(frame []byte) {
	p, err := smpp.Parse(frame)
	var resp []byte
	if err == nil && p.ID() == smpp.DataSM {
		resp, err = smpp.Response(p, smpp.StatusOK, "")
	}
	if resp == nil || err != nil {
		resp = smpp.HeaderOnly(smpp.GenericNack, smpp.StatusInvCmdID, binary.BigEndian.Uint32(frame[12:16]))
	}
	s.write(resp, false)
}
