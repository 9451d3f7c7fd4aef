package loadgen

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/smppguard/smppguard/smpp"
)

// testSMSC is a minimal SMSC on the codec for the load generator's tests and benchmark. It
// accepts any bind (or checks the password), answers submit_sm with a message id (or an
// error status, or a generic_nack, or never), and can send a receipt per successful submit
// from another goroutine, with the sequence number of a submit that may still be in flight.
// It reads like the load generator (frames as views of a bufio buffer) and answers in
// batches: everything read before its input runs dry is answered with one flush, so it is
// cheap enough to benchmark the generator against and allocates nothing per submit.
type testSMSC struct {
	t  testing.TB
	o  smscOpts
	ln net.Listener

	submits      atomic.Int64 // submit_sm received, server-wide
	bindReqs     atomic.Int64
	maxOut       atomic.Int64 // most submits received and not yet answered on one connection
	deliverResps atomic.Int64
	enquireResps atomic.Int64
	unbinds      atomic.Int64
	dlrsSent     atomic.Int64
	mosSent      atomic.Int64

	mu        sync.Mutex
	binds     map[smpp.CommandID]int
	dests     []string
	frames    []recordedSubmit // with recordFrames, in the order read (per connection: as sent)
	nconns    int
	conns     map[*smscConn]struct{}
	receivers []*smscConn

	jobs chan dlrJob
	done chan struct{}
	wg   sync.WaitGroup
}

type smscOpts struct {
	password     string                            // if set, other passwords get ESME_RINVPASWD
	hold         int                               // answer only with this many submits outstanding on the connection
	answer       func(n int64) (smpp.Status, bool) // status for the n-th submit (server-wide, from 1), and whether as generic_nack
	drop         func(n int64) bool                // never answer the n-th submit
	closeAfter   int64                             // close the connection abruptly on this submit
	dlr          bool                              // a receipt per successful submit
	dlrText      bool                              // receipts carry the id only in their text (no receipted_message_id)
	moEvery      int64                             // an MO deliver_sm with every moEvery-th successful submit
	enquire      bool                              // send enquire_link right after each bind, with the first submit's seq (2)
	rejectBind   func(k int) bool                  // refuse the k-th bind (server-wide, from 1) with ESME_RBINDFAIL
	record       bool                              // record destination addresses
	recordFrames bool                              // record a copy of every submit_sm and its connection
	onSubmit     func(n int64)                     // called for each submit_sm read
}

// recordedSubmit is a submit_sm as the SMSC read it, and the connection it came on.
type recordedSubmit struct {
	conn  int // 1, 2, ... in the order connections were accepted
	frame []byte
}

type smscConn struct {
	s       *testSMSC
	id      int
	conn    net.Conn
	fr      frameReader
	kind    smpp.CommandID
	lastSeq atomic.Uint32

	wmu sync.Mutex
	bw  *bufio.Writer
}

type dlrJob struct {
	from  *smscConn
	n     int64
	msgID []byte
}

func newTestSMSC(t testing.TB, o smscOpts) *testSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testSMSC{
		t: t, o: o, ln: ln,
		binds: map[smpp.CommandID]int{},
		conns: map[*smscConn]struct{}{},
		jobs:  make(chan dlrJob, 1<<16),
		done:  make(chan struct{}),
	}
	s.wg.Add(2)
	go s.accept()
	go s.deliverLoop()
	t.Cleanup(s.close)
	return s
}

func (s *testSMSC) addr() string { return s.ln.Addr().String() }

func (s *testSMSC) close() {
	close(s.done)
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *testSMSC) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &smscConn{s: s, conn: conn, fr: newFrameReader(conn, 64*1024, 0), bw: bufio.NewWriterSize(conn, 64*1024)}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.nconns++
		c.id = s.nconns
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

func (c *smscConn) write(b []byte) {
	c.wmu.Lock()
	c.bw.Write(b)
	c.wmu.Unlock()
}

func (c *smscConn) flush() {
	c.wmu.Lock()
	c.bw.Flush()
	c.wmu.Unlock()
}

type pendingSubmit struct {
	seq uint32
	n   int64
}

func (c *smscConn) serve() {
	s := c.s
	defer s.wg.Done()
	defer func() {
		c.conn.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	var p smpp.PDU
	var pending []pendingSubmit
	var jobs []dlrJob
	var out []byte
	for {
		f, err := c.fr.next()
		if err != nil {
			return
		}
		h, _ := smpp.ParseHeader(f)
		switch h.ID {
		case smpp.BindTransceiver, smpp.BindTransmitter, smpp.BindReceiver:
			if err := p.Reset(f); err != nil {
				s.t.Errorf("testSMSC: bind does not parse: %v", err)
				return
			}
			st := smpp.StatusOK
			if s.o.password != "" && smpp.BindParamsOf(&p).Password != s.o.password {
				st = smpp.StatusInvPaswd
			}
			if s.o.rejectBind != nil && s.o.rejectBind(int(s.bindReqs.Add(1))) {
				st = smpp.StatusBindFail
			}
			resp, err := smpp.BindResponse(&p, st, "testsmsc")
			if err != nil {
				s.t.Errorf("testSMSC: %v", err)
				return
			}
			c.write(resp)
			if st != smpp.StatusOK {
				c.flush()
				return
			}
			c.kind = h.ID
			s.mu.Lock()
			s.binds[h.ID]++
			if h.ID == smpp.BindReceiver {
				s.receivers = append(s.receivers, c)
			}
			s.mu.Unlock()
			if s.o.enquire {
				c.write(smpp.HeaderOnly(smpp.EnquireLink, smpp.StatusOK, 2))
			}
		case smpp.SubmitSM:
			if err := p.Reset(f); err != nil {
				s.t.Errorf("testSMSC: submit_sm does not parse: %v", err)
				return
			}
			n := s.submits.Add(1)
			c.lastSeq.Store(h.Seq)
			if s.o.record {
				d := p.CString(smpp.FieldDestinationAddr)
				s.mu.Lock()
				s.dests = append(s.dests, d)
				s.mu.Unlock()
			}
			if s.o.recordFrames {
				s.mu.Lock()
				s.frames = append(s.frames, recordedSubmit{conn: c.id, frame: bytes.Clone(f)})
				s.mu.Unlock()
			}
			if s.o.onSubmit != nil {
				s.o.onSubmit(n)
			}
			if s.o.closeAfter > 0 && n == s.o.closeAfter {
				return
			}
			if s.o.drop != nil && s.o.drop(n) {
				break
			}
			pending = append(pending, pendingSubmit{h.Seq, n})
			for m := s.maxOut.Load(); int64(len(pending)) > m && !s.maxOut.CompareAndSwap(m, int64(len(pending))); m = s.maxOut.Load() {
			}
		case smpp.DeliverSMResp:
			s.deliverResps.Add(1)
		case smpp.EnquireLinkResp:
			s.enquireResps.Add(1)
		case smpp.Unbind:
			s.unbinds.Add(1)
			c.write(smpp.HeaderOnly(smpp.UnbindResp, smpp.StatusOK, h.Seq))
			c.flush()
			return
		default:
			if h.ID.HasResponse() {
				c.write(smpp.HeaderOnly(smpp.GenericNack, smpp.StatusInvCmdID, h.Seq))
			}
		}
		if c.fr.buffered() > 0 {
			continue
		}
		if len(pending) > 0 && len(pending) >= s.o.hold {
			c.wmu.Lock()
			for _, ps := range pending {
				st, nack := smpp.StatusOK, false
				if s.o.answer != nil {
					st, nack = s.o.answer(ps.n)
				}
				var id []byte
				out, id = appendSubmitResp(out[:0], ps.seq, st, nack, ps.n)
				c.bw.Write(out)
				if st == smpp.StatusOK && !nack && (s.o.dlr || s.o.moEvery > 0) {
					jobs = append(jobs, dlrJob{from: c, n: ps.n, msgID: append([]byte(nil), id...)})
				}
			}
			c.wmu.Unlock()
			pending = pending[:0]
			// Queued once the responses are in the buffer: a receipt never precedes its
			// response on a transceiver.
			for _, j := range jobs {
				select {
				case s.jobs <- j:
				case <-s.done:
					return
				}
			}
			jobs = jobs[:0]
		}
		c.flush()
	}
}

// appendSubmitResp appends the response to the n-th submit and returns it with its message id.
func appendSubmitResp(b []byte, seq uint32, st smpp.Status, nack bool, n int64) ([]byte, []byte) {
	id := smpp.SubmitSMResp
	if nack {
		id = smpp.GenericNack
	}
	b = binary.BigEndian.AppendUint32(b, smpp.HeaderLen)
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	b = binary.BigEndian.AppendUint32(b, uint32(st))
	b = binary.BigEndian.AppendUint32(b, seq)
	if st != smpp.StatusOK || nack {
		return b, nil
	}
	b = append(b, "msg-"...)
	b = strconv.AppendInt(b, n, 10)
	msgID := b[smpp.HeaderLen:]
	b = append(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b, msgID
}

// deliverLoop sends the receipts and MOs: on the submitting connection when it is a
// transceiver, else on a receiver. A receipt carries the sequence number of the latest
// submit read on the submitting connection, which may still be in flight at the ESME.
func (s *testSMSC) deliverLoop() {
	defer s.wg.Done()
	dirty := map[*smscConn]bool{}
	for {
		var j dlrJob
		select {
		case <-s.done:
			return
		case j = <-s.jobs:
		}
		target := j.from
		if target.kind != smpp.BindTransceiver {
			s.mu.Lock()
			if len(s.receivers) > 0 {
				target = s.receivers[int(j.n)%len(s.receivers)]
			} else {
				target = nil
			}
			s.mu.Unlock()
			if target == nil {
				s.t.Errorf("testSMSC: receipt %d has no receiver bind to go to", j.n)
				continue
			}
		}
		seq := j.from.lastSeq.Load()
		if s.o.moEvery > 0 && j.n%s.o.moEvery == 0 {
			target.write(deliverSM(s.t, seq, 0, []byte("hello from a phone"), nil))
			s.mosSent.Add(1)
		}
		if s.o.dlr {
			text := []byte("id:" + string(j.msgID) + " sub:001 dlvrd:001 submit date:2601011200 done date:2601011200 stat:DELIVRD err:000 text:Your code")
			var tlvID []byte
			if !s.o.dlrText {
				tlvID = j.msgID
			}
			target.write(deliverSM(s.t, seq, 0x04, text, tlvID))
			s.dlrsSent.Add(1)
		}
		dirty[target] = true
		if len(s.jobs) == 0 {
			for c := range dirty {
				c.flush()
			}
			clear(dirty)
		}
	}
}

func deliverSM(t testing.TB, seq uint32, esm byte, text, receipted []byte) []byte {
	b := smpp.NewBuilder(smpp.DeliverSM, smpp.StatusOK, seq).
		CString("").Int(1).Int(1).CString("447700900123").
		Int(5).Int(0).CString("SMPPGUARD").
		Int(esm).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).
		ShortMessage(text)
	if receipted != nil {
		b.TLVString(smpp.TagReceiptedMessageID, string(receipted)).TLVByte(smpp.TagMessageState, 2)
	}
	f, err := b.Bytes()
	if err != nil {
		t.Errorf("testSMSC: deliver_sm: %v", err)
	}
	return f
}
