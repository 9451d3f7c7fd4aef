package fakesmsc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
)

// conn is one ESME connection.
type conn struct {
	s       *Server
	id      uint64
	nc      net.Conn
	out     chan []byte   // frames for the writer; nil asks it to flush and half-close
	done    chan struct{} // closed when the connection is closed
	wclosed chan struct{} // closed when the writer has flushed and half-closed after a nil
	once    sync.Once

	mu       sync.Mutex
	sid      string          // written by the reader under mu at bind
	rx       bool            // registered as a receiver
	closed   bool            // no more deliver_sm may be put in flight
	lastSeq  uint32          // our deliver_sm sequence numbers: 1, 2, ...
	inflight map[uint32]pend // deliver_sm awaiting deliver_sm_resp

	// Reader-only state.
	bound    smpp.CommandID // the bind command, 0 before bind
	submits  int
	tpsStart time.Time
	tpsCount int
}

// pend is a deliver_sm in flight: a receipt, or an MO whose sender waits on mo.
type pend struct {
	r    *receipt
	mo   chan smpp.Status
	sent time.Time
}

func newConn(s *Server, id uint64, nc net.Conn) *conn {
	return &conn{
		s: s, id: id, nc: nc,
		out:      make(chan []byte, outQueueLen),
		done:     make(chan struct{}),
		wclosed:  make(chan struct{}),
		inflight: make(map[uint32]pend),
	}
}

// send hands a frame to the writer, waiting for room; false once the connection is closed.
func (c *conn) send(b []byte) bool {
	select {
	case c.out <- b:
		return true
	case <-c.done:
		return false
	}
}

// trySend hands a frame to the writer if there is room now.
func (c *conn) trySend(b []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.out <- b:
		return true
	default:
		return false
	}
}

// retire stops new deliver_sm (receipts, MOs) from being put in flight on c.
func (c *conn) retire() {
	c.mu.Lock()
	c.closed = true
	rx, sid := c.rx, c.sid
	c.rx = false
	c.mu.Unlock()
	if rx {
		c.s.hub.unregister(c, sid)
	}
}

// close closes the connection at once and hands its receipts in flight back to the hub.
func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
		c.retire()
		c.mu.Lock()
		var back []*receipt
		for seq, p := range c.inflight {
			if p.r != nil {
				back = append(back, p.r)
			}
			delete(c.inflight, seq)
		}
		c.mu.Unlock()
		s := c.s
		s.hub.failed(back...)
		s.forget(c)
	})
}

// finish asks the writer to flush and half-close, then reads (and discards) what the client
// still sends until it closes its side, so that nothing we wrote is lost to a reset.
func (c *conn) finish() {
	c.send(nil)
	c.awaitClose()
}

func (c *conn) awaitClose() {
	select {
	case <-c.wclosed:
	case <-c.done:
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(closeDrainLimit))
	io.Copy(io.Discard, c.nc)
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		var b []byte
		select {
		case b = <-c.out:
		case <-c.done:
			return
		}
		for {
			if b == nil {
				c.retire() // graceful close: receipts and MOs go elsewhere from now on
				bw.Flush()
				if tc, ok := c.nc.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				close(c.wclosed)
				return
			}
			if _, err := bw.Write(b); err != nil {
				c.close()
				return
			}
			select {
			case b = <-c.out:
				continue
			default:
			}
			break
		}
		if err := bw.Flush(); err != nil {
			c.close()
			return
		}
	}
}

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer c.close()
	s := c.s
	fr := smpp.NewFrameReader(c.nc, smpp.DefaultMaxPDUSize)
	var p smpp.PDU // reused: nothing keeps a reference to it past one PDU
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			var fe *smpp.FrameError
			if errors.As(err, &fe) {
				s.log.Warn("fakesmsc: frame length out of bounds, closing", zap.Uint64("conn", c.id), zap.Error(err))
				c.send(smpp.HeaderOnly(smpp.GenericNack, smpp.StatusInvCmdLen, fe.Seq))
				c.finish()
			}
			return
		}
		if !s.noRecord {
			s.rec.add(rec{t: time.Now(), conn: c.id, sid: c.sid, frame: frame})
		}
		if err := p.Reset(frame); err != nil {
			c.malformed(frame, err)
			continue
		}
		if !c.handle(&p) {
			return
		}
	}
}

// malformed answers a request whose body does not parse with the error's status.
func (c *conn) malformed(frame []byte, err error) {
	h, _ := smpp.ParseHeader(frame)
	var st smpp.Status
	if !errors.As(err, &st) || st == smpp.StatusOK {
		st = smpp.StatusSysErr
	}
	c.s.log.Debug("fakesmsc: malformed PDU", zap.Uint64("conn", c.id), zap.Stringer("pdu", h), zap.Error(err))
	if h.ID.HasResponse() && h.ID.Known() && st != smpp.StatusInvCmdID {
		c.send(smpp.HeaderOnly(h.ID.Response(), st, h.Seq))
		return
	}
	c.send(smpp.HeaderOnly(smpp.GenericNack, st, h.Seq))
}

func (c *conn) reply(p *smpp.PDU, st smpp.Status) {
	if p.ID().HasResponse() {
		c.send(smpp.HeaderOnly(p.ID().Response(), st, p.Seq()))
		return
	}
	c.send(smpp.HeaderOnly(smpp.GenericNack, st, p.Seq()))
}

// handle answers one well-formed PDU; false stops the reader.
func (c *conn) handle(p *smpp.PDU) bool {
	id := p.ID()
	switch {
	case id.IsBind():
		c.bind(p)
		return true
	case id == smpp.DeliverSMResp:
		c.onDeliverResp(p.Seq(), p.Status())
		return true
	case id == smpp.GenericNack:
		c.onDeliverResp(p.Seq(), nackStatus(p.Status()))
		return true
	case id.IsResponse():
		return true // nothing of ours it could answer
	case c.bound == 0:
		c.reply(p, smpp.StatusInvBndSts)
		return true
	}
	switch id {
	case smpp.EnquireLink:
		c.send(smpp.HeaderOnly(smpp.EnquireLinkResp, smpp.StatusOK, p.Seq()))
	case smpp.Unbind:
		c.send(smpp.HeaderOnly(smpp.UnbindResp, smpp.StatusOK, p.Seq()))
		c.finish()
		return false
	case smpp.SubmitSM, smpp.DataSM, smpp.SubmitMulti:
		if c.bound == smpp.BindReceiver {
			c.reply(p, smpp.StatusInvBndSts)
			return true
		}
		return c.submit(p)
	case smpp.QuerySM, smpp.CancelSM, smpp.ReplaceSM:
		if c.bound == smpp.BindReceiver {
			c.reply(p, smpp.StatusInvBndSts)
			return true
		}
		c.manage(p)
	default: // deliver_sm, outbind, alert_notification: not for an SMSC to receive
		c.reply(p, smpp.StatusInvCmdID)
	}
	return true
}

func nackStatus(st smpp.Status) smpp.Status {
	if st == smpp.StatusOK {
		return smpp.StatusSysErr
	}
	return st
}

func (c *conn) bind(p *smpp.PDU) {
	s := c.s
	st := smpp.StatusOK
	sid := p.CString(smpp.FieldSystemID)
	if c.bound != 0 {
		st = smpp.StatusAlyBnd
	} else if len(s.cfg.Accounts) > 0 {
		pw, ok := s.cfg.Accounts[sid]
		switch {
		case !ok:
			st = smpp.StatusInvSysID
		case pw != p.CString(smpp.FieldPassword):
			st = smpp.StatusInvPaswd
		}
	}
	resp, err := smpp.BindResponse(p, st, "fakesmsc")
	if err != nil { // cannot happen: p is a bind
		s.log.Error("fakesmsc: encoding bind_resp", zap.Error(err))
		return
	}
	if st != smpp.StatusOK {
		s.log.Info("fakesmsc: bind refused", zap.Uint64("conn", c.id), zap.String("system_id", sid), zap.Stringer("status", st))
		c.send(resp)
		return
	}
	c.bound = p.ID()
	rx := c.bound != smpp.BindTransmitter
	c.mu.Lock()
	c.sid, c.rx = sid, rx
	c.mu.Unlock()
	s.st.binds.Add(1)
	s.log.Info("fakesmsc: bound", zap.Uint64("conn", c.id), zap.String("system_id", sid), zap.Stringer("as", p.ID()))
	if rx {
		s.hub.register(c, sid, resp)
		return
	}
	c.send(resp)
}

// submit answers submit_sm, data_sm and submit_multi; false stops the reader (scheduled
// disconnect).
func (c *conn) submit(p *smpp.PDU) bool {
	s := c.s
	s.st.submits.Add(1)
	c.submits++
	closeAfter := s.cfg.DisconnectAfter > 0 && c.submits >= s.cfg.DisconnectAfter
	st := smpp.StatusOK
	var now time.Time
	if s.cfg.TPS > 0 {
		now = time.Now()
		if c.tpsStart.IsZero() || now.Sub(c.tpsStart) >= time.Second {
			c.tpsStart, c.tpsCount = now, 0
		}
		if c.tpsCount >= s.cfg.TPS {
			st = smpp.StatusThrottled
			s.st.throttled.Add(1)
		} else {
			c.tpsCount++
		}
	}
	if st == smpp.StatusOK && s.cfg.ErrorRate > 0 {
		k := s.errN.Add(1)
		if unit(s.rand(saltError, k)) < s.cfg.ErrorRate {
			st = s.cfg.ErrorStatus
			s.st.errors.Add(1)
		}
	}
	rid := p.ID().Response()
	var frame []byte
	var rcpts []*receipt
	if st != smpp.StatusOK {
		frame = smpp.HeaderOnly(rid, st, p.Seq())
	} else {
		n := s.ids.next()
		frame = make([]byte, smpp.HeaderLen, smpp.HeaderLen+40)
		frame = s.ids.appendID(frame, n)
		idEnd := len(frame)
		frame = append(frame, 0)
		if rid == smpp.SubmitMultiResp {
			frame = append(frame, 0) // no_unsuccess
		}
		binary.BigEndian.PutUint32(frame[0:], uint32(len(frame)))
		binary.BigEndian.PutUint32(frame[4:], uint32(rid))
		binary.BigEndian.PutUint32(frame[12:], p.Seq())
		state := s.drawState(n)
		if rd, _ := p.Uint8(smpp.FieldRegisteredDelivery); rd&0x03 != 0 {
			s.ids.setState(n, StateEnroute, false)
			if now.IsZero() {
				now = time.Now()
			}
			rcpts = s.makeReceipts(c, p, n, string(frame[smpp.HeaderLen:idEnd]), state, now)
			s.st.dlrsPending.Add(int64(len(rcpts)))
		} else {
			s.ids.setState(n, state, false)
		}
	}
	if d := s.respDelay(); d > 0 {
		s.sched.add(&task{due: time.Now().Add(d), c: c, frame: frame, rcpts: rcpts, closeAfter: closeAfter})
		if closeAfter {
			c.awaitClose()
			return false
		}
		return true
	}
	c.sendSubmitResp(frame, rcpts, closeAfter)
	if closeAfter {
		c.awaitClose()
		return false
	}
	return true
}

func (s *Server) respDelay() time.Duration {
	d := s.cfg.ResponseDelay
	if j := s.cfg.ResponseJitter; j > 0 {
		d += time.Duration(s.rand(saltJitter, s.jitN.Add(1)) % uint64(j))
	}
	return d
}

// drawState picks message n's final state from the mix.
func (s *Server) drawState(n uint64) byte {
	if s.mixTotal == 0 {
		return StateDelivered
	}
	r := int(s.rand(saltMix, n) % uint64(s.mixTotal))
	for i, c := range s.mixCum {
		if r < c {
			return dlrStats[i].state
		}
	}
	return StateDelivered
}

// sendSubmitResp sends a submit response with its receipts in the configured order; with
// closeAfter it then closes the connection gracefully.
func (c *conn) sendSubmitResp(frame []byte, rcpts []*receipt, closeAfter bool) {
	s := c.s
	if s.cfg.DLRBeforeResp {
		for _, r := range rcpts {
			s.hub.ready(r)
		}
	}
	s.st.responses.Add(1) // counted first: whoever reads the response sees it counted
	if !c.send(frame) {
		s.st.responses.Add(-1)
	}
	if !s.cfg.DLRBeforeResp {
		for _, r := range rcpts {
			if s.cfg.DLRDelay > 0 {
				s.sched.add(&task{due: time.Now().Add(s.cfg.DLRDelay), dlr: r})
			} else {
				s.hub.ready(r)
			}
		}
	}
	if closeAfter {
		s.log.Info("fakesmsc: scheduled disconnect", zap.Uint64("conn", c.id), zap.Int("after_submits", s.cfg.DisconnectAfter))
		c.send(nil)
	}
}

// manage answers query_sm, cancel_sm and replace_sm.
func (c *conn) manage(p *smpp.PDU) {
	s := c.s
	id := p.Field(smpp.FieldMessageID)
	var state byte
	n, ok := s.ids.parse(string(id))
	if ok {
		state, ok = s.ids.state(n)
	}
	switch p.ID() {
	case smpp.QuerySM:
		if !ok {
			c.send(smpp.HeaderOnly(smpp.QuerySMResp, smpp.StatusQueryFail, p.Seq()))
			return
		}
		resp, err := smpp.NewBuilder(smpp.QuerySMResp, smpp.StatusOK, p.Seq()).
			CString(string(id)).CString("").Int(state).Int(0).Bytes()
		if err != nil {
			c.send(smpp.HeaderOnly(smpp.QuerySMResp, smpp.StatusSysErr, p.Seq()))
			return
		}
		c.send(resp)
	case smpp.CancelSM:
		st := smpp.StatusOK
		if !ok {
			st = smpp.StatusCancelFail
		}
		c.send(smpp.HeaderOnly(smpp.CancelSMResp, st, p.Seq()))
	case smpp.ReplaceSM:
		st := smpp.StatusOK
		if !ok {
			st = smpp.StatusReplaceFail
		}
		c.send(smpp.HeaderOnly(smpp.ReplaceSMResp, st, p.Seq()))
	}
}

// nextSeqLocked returns our next deliver_sm sequence number (1..0x7FFFFFFF, then 1 again).
func (c *conn) nextSeqLocked() uint32 {
	c.lastSeq++
	if c.lastSeq == 0 || c.lastSeq > 0x7FFFFFFF {
		c.lastSeq = 1
	}
	return c.lastSeq
}

// sendReceipt puts a receipt in flight on c if its writer has room. Called under hub.mu.
func (c *conn) sendReceipt(r *receipt) bool {
	frame := bytes.Clone(r.frame)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	seq := c.nextSeqLocked()
	c.inflight[seq] = pend{r: r, sent: time.Now()}
	c.mu.Unlock()
	putSeq(frame, seq)
	c.s.st.dlrsSent.Add(1) // counted first: whoever reads the receipt sees it counted
	if c.trySend(frame) {
		return true
	}
	c.s.st.dlrsSent.Add(-1)
	c.mu.Lock()
	delete(c.inflight, seq)
	c.mu.Unlock()
	return false
}

// onDeliverResp settles the deliver_sm in flight with sequence number seq.
func (c *conn) onDeliverResp(seq uint32, st smpp.Status) {
	c.mu.Lock()
	p, ok := c.inflight[seq]
	delete(c.inflight, seq)
	c.mu.Unlock()
	if !ok {
		return // late (timed out and retried) or not ours
	}
	s := c.s
	if p.mo != nil {
		p.mo <- st // buffered
		return
	}
	if st == smpp.StatusOK {
		s.st.dlrsAcked.Add(1)
		s.st.dlrsPending.Add(-1)
		return
	}
	s.log.Debug("fakesmsc: receipt refused, will retry", zap.Uint64("conn", c.id), zap.Stringer("status", st))
	s.hub.failed(p.r)
}

// expireReceipts takes back the receipts in flight for longer than timeout.
func (c *conn) expireReceipts(now time.Time, timeout time.Duration) []*receipt {
	var out []*receipt
	c.mu.Lock()
	for seq, p := range c.inflight {
		if p.r != nil && now.Sub(p.sent) >= timeout {
			out = append(out, p.r)
			delete(c.inflight, seq)
		}
	}
	c.mu.Unlock()
	return out
}
