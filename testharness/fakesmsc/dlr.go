package fakesmsc

import (
	"bytes"
	"encoding/binary"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
)

// receipt is a delivery receipt waiting to be delivered: its deliver_sm is encoded once
// (sequence number 0) and stamped with the receiving connection's next sequence number on
// every attempt.
type receipt struct {
	sid   string
	n     uint64
	state byte
	frame []byte
}

// deque is a FIFO of receipts that can also put a receipt back at the front.
type deque struct {
	buf  []*receipt
	head int
	n    int
}

func (d *deque) len() int { return d.n }

func (d *deque) grow() {
	nb := make([]*receipt, max(16, 2*len(d.buf)))
	for i := 0; i < d.n; i++ {
		nb[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = nb, 0
}

func (d *deque) pushBack(r *receipt) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.buf[(d.head+d.n)%len(d.buf)] = r
	d.n++
}

func (d *deque) pushFront(r *receipt) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.head = (d.head - 1 + len(d.buf)) % len(d.buf)
	d.buf[d.head] = r
	d.n++
}

func (d *deque) front() *receipt { return d.buf[d.head] }

func (d *deque) popFront() *receipt {
	r := d.buf[d.head]
	d.buf[d.head] = nil
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	if d.n == 0 {
		d.head = 0
	}
	return r
}

// rxSet is the receivers and transceivers bound with one system_id, served round-robin.
type rxSet struct {
	conns []*conn
	next  int
}

// hub holds the receipts of every system_id until a bound receiver acknowledges them.
type hub struct {
	s       *Server
	mu      sync.Mutex
	queues  map[string]*deque     // ready to send
	retry   map[string][]*receipt // failed attempts, back in their queue at the next tick
	queued  int                   // receipts in queues and retry
	rx      map[string]*rxSet     // bound receivers
	kick    chan struct{}         // a dispatch stopped on a full connection queue
	dropped int64                 // for rate-limited logging
	maxPend int
	timeout time.Duration
	every   time.Duration
}

func (s *Server) initHub() {
	s.hub = hub{
		s:       s,
		queues:  make(map[string]*deque),
		retry:   make(map[string][]*receipt),
		rx:      make(map[string]*rxSet),
		kick:    make(chan struct{}, 1),
		maxPend: maxPendingDLRs,
		timeout: dlrRespTimeout,
		every:   dlrRetryEvery,
	}
}

// ready queues a generated receipt (its final state becomes visible to query_sm) and tries to
// send it at once.
func (h *hub) ready(r *receipt) {
	h.s.ids.setState(r.n, r.state, true)
	h.mu.Lock()
	q := h.queues[r.sid]
	if q == nil {
		q = &deque{}
		h.queues[r.sid] = q
	}
	if h.queued >= h.maxPend {
		h.dropOldestLocked(q)
	}
	q.pushBack(r)
	h.queued++
	starved := h.dispatchLocked(r.sid)
	h.mu.Unlock()
	if starved {
		h.kickSoon()
	}
}

// dropOldestLocked makes room for one receipt, taking the oldest of q (or of any queue).
func (h *hub) dropOldestLocked(q *deque) {
	var victim *receipt
	if q.len() > 0 {
		victim = q.popFront()
	} else {
		for _, o := range h.queues {
			if o.len() > 0 {
				victim = o.popFront()
				break
			}
		}
	}
	if victim == nil {
		for sid, l := range h.retry {
			if len(l) > 0 {
				victim = l[0]
				h.retry[sid] = l[1:]
				break
			}
		}
	}
	if victim == nil {
		return
	}
	h.queued--
	h.s.st.dlrsPending.Add(-1)
	h.s.st.dlrsDropped.Add(1)
	h.dropped++
	if h.dropped == 1 || h.dropped%10000 == 0 {
		h.s.log.Error("fakesmsc: pending receipt bound exceeded, dropping the oldest",
			zap.Int("bound", h.maxPend), zap.String("system_id", victim.sid),
			zap.String("message_id", h.s.ids.id(victim.n)), zap.Int64("dropped_total", h.dropped))
	}
}

// dispatchLocked sends the queued receipts of sid to its receivers, round-robin. It reports
// whether it stopped because every receiver's outbound queue was full.
func (h *hub) dispatchLocked(sid string) (starved bool) {
	q := h.queues[sid]
	rs := h.rx[sid]
	if q == nil || q.len() == 0 || rs == nil || len(rs.conns) == 0 {
		return false
	}
	fails := 0
	for q.len() > 0 {
		if fails >= len(rs.conns) {
			return true
		}
		c := rs.conns[rs.next%len(rs.conns)]
		rs.next++
		if c.sendReceipt(q.front()) {
			q.popFront()
			h.queued--
			fails = 0
		} else {
			fails++
		}
	}
	return false
}

func (h *hub) kickSoon() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// register sends c's bind_resp, makes c a receiver of its system_id and delivers what waits
// for it, retries included. Both happen under the hub lock: whoever sees the bind_resp finds
// the receiver registered (SendMO right after a bind works), and every deliver_sm follows the
// bind_resp on the wire.
func (h *hub) register(c *conn, sid string, bindResp []byte) {
	h.mu.Lock()
	if !c.trySend(bindResp) { // a full queue (a client that does not read): no lock while waiting
		h.mu.Unlock()
		c.send(bindResp)
		h.mu.Lock()
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		h.mu.Unlock()
		return
	}
	rs := h.rx[sid]
	if rs == nil {
		rs = &rxSet{}
		h.rx[sid] = rs
	}
	rs.conns = append(rs.conns, c)
	h.requeueRetriesLocked(sid)
	starved := h.dispatchLocked(sid)
	h.mu.Unlock()
	if starved {
		h.kickSoon()
	}
}

func (h *hub) unregister(c *conn, sid string) {
	h.mu.Lock()
	if rs := h.rx[sid]; rs != nil {
		for i, x := range rs.conns {
			if x == c {
				rs.conns = append(rs.conns[:i], rs.conns[i+1:]...)
				break
			}
		}
		if len(rs.conns) == 0 {
			delete(h.rx, sid)
		}
	}
	h.mu.Unlock()
}

// failed puts receipts whose attempt failed (negative resp, timeout, connection lost) aside
// for the next retry tick.
func (h *hub) failed(rs ...*receipt) {
	if len(rs) == 0 {
		return
	}
	h.mu.Lock()
	for _, r := range rs {
		if h.queued >= h.maxPend {
			q := h.queues[r.sid]
			if q == nil {
				q = &deque{}
				h.queues[r.sid] = q
			}
			h.dropOldestLocked(q)
		}
		h.retry[r.sid] = append(h.retry[r.sid], r)
		h.queued++
	}
	h.mu.Unlock()
}

func (h *hub) requeueRetriesLocked(sid string) {
	l := h.retry[sid]
	if len(l) == 0 {
		return
	}
	q := h.queues[sid]
	if q == nil {
		q = &deque{}
		h.queues[sid] = q
	}
	for i := len(l) - 1; i >= 0; i-- {
		q.pushFront(l[i])
	}
	delete(h.retry, sid)
}

// dispatchAll retries everything: failed receipts go back to the front of their queue.
func (h *hub) dispatchAll(withRetries bool) (starved bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if withRetries {
		for sid := range h.retry {
			h.requeueRetriesLocked(sid)
		}
	}
	for sid := range h.queues {
		if h.dispatchLocked(sid) {
			starved = true
		}
	}
	return starved
}

// expire moves receipts in flight for longer than the timeout to the retry list.
func (h *hub) expire(now time.Time) {
	h.mu.Lock()
	var conns []*conn
	for _, rs := range h.rx {
		conns = append(conns, rs.conns...)
	}
	h.mu.Unlock()
	for _, c := range conns {
		h.failed(c.expireReceipts(now, h.timeout)...)
	}
}

func (s *Server) runHub() {
	defer s.wg.Done()
	h := &s.hub
	tick := time.NewTicker(h.every)
	defer tick.Stop()
	soon := time.NewTimer(time.Hour)
	soon.Stop()
	armed := false
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			h.expire(now)
			if h.dispatchAll(true) && !armed {
				soon.Reset(2 * time.Millisecond)
				armed = true
			}
		case <-h.kick:
			if !armed {
				soon.Reset(2 * time.Millisecond)
				armed = true
			}
		case <-soon.C:
			armed = false
			if h.dispatchAll(false) {
				soon.Reset(2 * time.Millisecond)
				armed = true
			}
		}
	}
}

// makeReceipts builds the receipts of an accepted submit_sm, data_sm or submit_multi: one per
// destination address (distribution lists of submit_multi get none).
func (s *Server) makeReceipts(c *conn, p *smpp.PDU, n uint64, id string, state byte, submitted time.Time) []*receipt {
	src := p.Field(smpp.FieldSourceAddr)
	srcTON, _ := p.Uint8(smpp.FieldSourceAddrTON)
	srcNPI, _ := p.Uint8(smpp.FieldSourceAddrNPI)
	text := p.ShortMessage()
	if esm, _ := p.Uint8(smpp.FieldESMClass); esm&0x40 != 0 && len(text) > 0 && int(text[0])+1 <= len(text) {
		text = text[1+int(text[0]):] // skip the UDH
	}
	if len(text) == 0 {
		if v, ok := p.TLV(smpp.TagMessagePayload); ok {
			text = v
		}
	}
	done := submitted
	if !s.cfg.DLRBeforeResp {
		done = done.Add(s.cfg.DLRDelay)
	}
	mk := func(dstTON, dstNPI byte, dst []byte) *receipt {
		frame, err := s.receiptFrame(n, id, state, dstTON, dstNPI, dst, srcTON, srcNPI, src, text, submitted, done)
		if err != nil {
			s.log.Error("fakesmsc: cannot encode receipt", zap.String("message_id", id), zap.Error(err))
			return nil
		}
		return &receipt{sid: c.sid, n: n, state: state, frame: frame}
	}
	var out []*receipt
	if p.ID() == smpp.SubmitMulti {
		l := p.Field(smpp.FieldDestAddresses)
		for len(l) > 0 {
			flag := l[0]
			l = l[1:]
			switch flag {
			case 1:
				if len(l) < 3 {
					return out
				}
				ton, npi := l[0], l[1]
				end := bytes.IndexByte(l[2:], 0)
				if end < 0 {
					return out
				}
				if r := mk(ton, npi, l[2:2+end]); r != nil {
					out = append(out, r)
				}
				l = l[2+end+1:]
			case 2:
				end := bytes.IndexByte(l, 0)
				if end < 0 {
					return out
				}
				l = l[end+1:]
			default:
				return out
			}
		}
		return out
	}
	dstTON, _ := p.Uint8(smpp.FieldDestAddrTON)
	dstNPI, _ := p.Uint8(smpp.FieldDestAddrNPI)
	if r := mk(dstTON, dstNPI, p.Field(smpp.FieldDestinationAddr)); r != nil {
		out = append(out, r)
	}
	return out
}

// receiptFrame encodes the receipt deliver_sm: the submit's destination becomes its source and
// vice versa.
func (s *Server) receiptFrame(n uint64, id string, state byte, fromTON, fromNPI byte, from []byte,
	toTON, toNPI byte, to []byte, text []byte, submitted, done time.Time) ([]byte, error) {
	st := dlrStats[0]
	for _, x := range dlrStats {
		if x.state == state {
			st = x
		}
	}
	dlvrd := "000"
	if state == StateDelivered {
		dlvrd = "001"
	}
	if len(text) > 20 {
		text = text[:20]
	}
	sm := make([]byte, 0, 160)
	sm = append(sm, "id:"...)
	sm = append(sm, s.textID(n, id)...)
	sm = append(sm, " sub:001 dlvrd:"...)
	sm = append(sm, dlvrd...)
	sm = append(sm, " submit date:"...)
	sm = submitted.UTC().AppendFormat(sm, "0601021504")
	sm = append(sm, " done date:"...)
	sm = done.UTC().AppendFormat(sm, "0601021504")
	sm = append(sm, " stat:"...)
	sm = append(sm, st.name...)
	sm = append(sm, " err:"...)
	sm = append(sm, st.err...)
	sm = append(sm, " text:"...)
	for _, ch := range text {
		if ch < 0x20 || ch > 0x7e {
			ch = '?'
		}
		sm = append(sm, ch)
	}
	b := smpp.NewBuilder(smpp.DeliverSM, smpp.StatusOK, 0).
		CString("").Int(fromTON).Int(fromNPI).CString(addr20(from)).
		Int(toTON).Int(toNPI).CString(addr20(to)).
		Int(0x04).Int(0).Int(0).CString("").CString("").
		Int(0).Int(0).Int(0).Int(0).ShortMessage(sm)
	if !s.cfg.DLRNoTLVs {
		b.TLVString(smpp.TagReceiptedMessageID, id).TLVByte(smpp.TagMessageState, state)
	}
	return b.Bytes()
}

// addr20 fits an address (data_sm allows 64 characters) into deliver_sm's 20.
func addr20(a []byte) string {
	if len(a) > 20 {
		a = a[:20]
	}
	return string(a)
}

// moFrame encodes an MO deliver_sm (esm_class 0) with sequence number 0.
func moFrame(src, dst string, dataCoding byte, text []byte, tlvs []smpp.TLV) ([]byte, error) {
	sm := text
	if len(text) > 254 {
		sm = nil
	}
	b := smpp.NewBuilder(smpp.DeliverSM, smpp.StatusOK, 0).
		CString("").Int(addrTON(src)).Int(addrNPI(src)).CString(src).
		Int(addrTON(dst)).Int(addrNPI(dst)).CString(dst).
		Int(0).Int(0).Int(0).CString("").CString("").
		Int(0).Int(0).Int(dataCoding).Int(0).ShortMessage(sm)
	if sm == nil {
		b.TLV(smpp.TagMessagePayload, text)
	}
	for _, t := range tlvs {
		b.TLV(t.Tag, t.Value)
	}
	return b.Bytes()
}

// addrTON guesses a type of number: international for digits, alphanumeric otherwise.
func addrTON(a string) byte {
	if a == "" {
		return 0
	}
	for i := 0; i < len(a); i++ {
		if a[i] < '0' || a[i] > '9' {
			return 5
		}
	}
	return 1
}

// addrNPI is ISDN for a number, unknown otherwise.
func addrNPI(a string) byte {
	if addrTON(a) == 1 {
		return 1
	}
	return 0
}

func putSeq(frame []byte, seq uint32) { binary.BigEndian.PutUint32(frame[12:16], seq) }
