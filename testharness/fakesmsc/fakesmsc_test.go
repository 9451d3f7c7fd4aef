package fakesmsc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gsmpp "github.com/fiorix/go-smpp/smpp"
	gpdu "github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/smppguard/smppguard/smpp"
)

const ioTimeout = 10 * time.Second

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// raw is a codec-level ESME: it writes frames and reads PDUs, nothing automatic.
type raw struct {
	t   *testing.T
	c   net.Conn
	fr  *smpp.FrameReader
	seq uint32
}

func dial(t *testing.T, s *Server) *raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, fr: smpp.NewFrameReader(c, 0)}
}

func (r *raw) nextSeq() uint32 { r.seq++; return r.seq }

func (r *raw) send(frames ...[]byte) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := r.c.Write(bytes.Join(frames, nil)); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *raw) read() *smpp.PDU {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(ioTimeout))
	f, err := r.fr.ReadFrame()
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	p, err := smpp.Parse(f)
	if err != nil {
		r.t.Fatalf("parse %x: %v", f, err)
	}
	return p
}

// expect reads one PDU and checks its command, status and (if non-zero) sequence number.
func (r *raw) expect(id smpp.CommandID, st smpp.Status, seq uint32) *smpp.PDU {
	r.t.Helper()
	p := r.read()
	if p.ID() != id || p.Status() != st || (seq != 0 && p.Seq() != seq) {
		r.t.Fatalf("got %v, want %s %s seq=%d", p.Header(), id, st, seq)
	}
	return p
}

func (r *raw) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(ioTimeout))
	f, err := r.fr.ReadFrame()
	if err == nil {
		r.t.Fatalf("got frame %x, want the connection closed", f)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("connection still open: %v", err)
	}
}

func (r *raw) bindAs(id smpp.CommandID, sid, pw string) smpp.Status {
	r.t.Helper()
	seq := r.nextSeq()
	f, err := smpp.BindParams{SystemID: sid, Password: pw}.Encode(id, seq)
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(f)
	p := r.read()
	if p.ID() != id.Response() || p.Seq() != seq {
		r.t.Fatalf("bind answered with %v", p.Header())
	}
	return p.Status()
}

func (r *raw) bind(id smpp.CommandID, sid string) {
	r.t.Helper()
	if st := r.bindAs(id, sid, "pw"); st != smpp.StatusOK {
		r.t.Fatalf("bind: %s", st)
	}
}

// sync round-trips an enquire_link: everything sent before it has been handled.
func (r *raw) sync() {
	r.t.Helper()
	seq := r.nextSeq()
	r.send(smpp.HeaderOnly(smpp.EnquireLink, smpp.StatusOK, seq))
	r.expect(smpp.EnquireLinkResp, smpp.StatusOK, seq)
}

func (r *raw) ack(p *smpp.PDU, st smpp.Status) {
	r.t.Helper()
	f, err := smpp.Response(p, st, "")
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(f)
}

func submitFrame(t testing.TB, seq uint32, src, dst, text string, rd byte, tlvs ...smpp.TLV) []byte {
	t.Helper()
	b := smpp.NewBuilder(smpp.SubmitSM, smpp.StatusOK, seq).CString("").Int(5).Int(0).CString(src).Int(1).Int(1).CString(dst).
		Int(0).Int(0).Int(0).CString("").CString("").Int(rd).Int(0).Int(0).Int(0).ShortMessage([]byte(text))
	for _, tlv := range tlvs {
		b.TLV(tlv.Tag, tlv.Value)
	}
	f, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (r *raw) submit(src, dst, text string, rd byte) (seq uint32) {
	r.t.Helper()
	seq = r.nextSeq()
	r.send(submitFrame(r.t, seq, src, dst, text, rd))
	return seq
}

func (r *raw) submitOK(src, dst, text string, rd byte) string {
	r.t.Helper()
	seq := r.submit(src, dst, text, rd)
	return r.expect(smpp.SubmitSMResp, smpp.StatusOK, seq).CString(smpp.FieldMessageID)
}

func tlvByte(t *testing.T, p *smpp.PDU, tag smpp.Tag) byte {
	t.Helper()
	v, ok := p.TLV(tag)
	if !ok || len(v) != 1 {
		t.Fatalf("TLV 0x%04x = %x, %v", uint16(tag), v, ok)
	}
	return v[0]
}

var receiptRE = regexp.MustCompile(`^id:(\S+) sub:001 dlvrd:(\d{3}) submit date:(\d{10}) done date:(\d{10}) stat:([A-Z]{7}) err:(\d{3}) text:(.*)$`)

// checkReceipt checks a receipt deliver_sm and returns the parts of its text.
func checkReceipt(t *testing.T, p *smpp.PDU, from, to string) []string {
	t.Helper()
	if p.ID() != smpp.DeliverSM {
		t.Fatalf("got %v, want a receipt", p.Header())
	}
	if esm, _ := p.Uint8(smpp.FieldESMClass); esm != 0x04 {
		t.Fatalf("esm_class 0x%02x", esm)
	}
	if got := p.CString(smpp.FieldSourceAddr); got != from {
		t.Fatalf("receipt source %q, want %q", got, from)
	}
	if got := p.CString(smpp.FieldDestinationAddr); got != to {
		t.Fatalf("receipt destination %q, want %q", got, to)
	}
	m := receiptRE.FindStringSubmatch(string(p.ShortMessage()))
	if m == nil {
		t.Fatalf("receipt text %q", p.ShortMessage())
	}
	return m
}

func TestBindRaw(t *testing.T) {
	s := start(t, Config{Accounts: map[string]string{"bank": "secret", "other": "pw2"}})
	for _, tc := range []struct {
		sid, pw string
		want    smpp.Status
	}{
		{"nobody", "secret", smpp.StatusInvSysID},
		{"bank", "wrong", smpp.StatusInvPaswd},
		{"bank", "pw2", smpp.StatusInvPaswd},
	} {
		r := dial(t, s)
		if st := r.bindAs(smpp.BindTransceiver, tc.sid, tc.pw); st != tc.want {
			t.Errorf("bind %s/%s: %s, want %s", tc.sid, tc.pw, st, tc.want)
		}
	}
	r := dial(t, s)
	r.seq = 41
	f, _ := smpp.BindParams{SystemID: "bank", Password: "secret"}.Encode(smpp.BindTransmitter, 42)
	r.send(f)
	p := r.expect(smpp.BindTransmitterResp, smpp.StatusOK, 42)
	if got := p.CString(smpp.FieldSystemID); got != "fakesmsc" {
		t.Errorf("bind_resp system_id %q", got)
	}
	if v := tlvByte(t, p, smpp.TagSCInterfaceVersion); v != 0x34 {
		t.Errorf("sc_interface_version 0x%02x", v)
	}
	if st := r.bindAs(smpp.BindTransmitter, "bank", "secret"); st != smpp.StatusAlyBnd {
		t.Errorf("second bind: %s", st)
	}
	// Empty accounts accept anything.
	any := start(t, Config{})
	if st := dial(t, any).bindAs(smpp.BindReceiver, "whoever", "x"); st != smpp.StatusOK {
		t.Errorf("open server refused a bind: %s", st)
	}
	if got := s.Stats().Binds; got != 1 {
		t.Errorf("Binds = %d", got)
	}
}

func waitStatus(t *testing.T, ch <-chan gsmpp.ConnStatus) gsmpp.ConnStatus {
	t.Helper()
	select {
	case st := <-ch:
		return st
	case <-time.After(ioTimeout):
		t.Fatal("no connection status from go-smpp")
		return nil
	}
}

func TestGoSMPPClient(t *testing.T) {
	s := start(t, Config{Accounts: map[string]string{"bank": "secret"}})

	bad := &gsmpp.Transceiver{Addr: s.Addr(), User: "bank", Passwd: "wrong", BindInterval: time.Hour}
	st := waitStatus(t, bad.Bind())
	if st.Status() != gsmpp.BindFailed || st.Error() == nil || st.Error().Error() != gpdu.Status(smpp.StatusInvPaswd).Error() {
		t.Fatalf("wrong password: %v %v", st.Status(), st.Error())
	}
	bad.Close()

	mo := make(chan gpdu.Body, 4)
	tx := &gsmpp.Transceiver{Addr: s.Addr(), User: "bank", Passwd: "secret", RespTimeout: ioTimeout,
		Handler: func(p gpdu.Body) { mo <- p }}
	if st := waitStatus(t, tx.Bind()); st.Status() != gsmpp.Connected {
		t.Fatalf("bind: %v %v", st.Status(), st.Error())
	}
	defer tx.Close()

	sm, err := tx.Submit(&gsmpp.ShortMessage{Src: "BANK", Dst: "447700900123", Text: pdutext.Raw("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9A-F]{8}$`).MatchString(sm.RespID()) {
		t.Fatalf("message_id %q", sm.RespID())
	}
	qr, err := tx.QuerySM("BANK", sm.RespID(), 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if qr.MsgState != "DELIVERED" {
		t.Errorf("query_sm state %s", qr.MsgState)
	}
	if _, err := tx.QuerySM("BANK", "00000001", 5, 0); err == nil || err.Error() != gpdu.Status(smpp.StatusQueryFail).Error() {
		t.Errorf("query_sm of an unknown id: %v", err)
	}

	multi, err := tx.Submit(&gsmpp.ShortMessage{Src: "BANK", DstList: []string{"447700900001", "447700900002"}, DLs: []string{"staff"}, Text: pdutext.Raw("hi all")})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := multi.NumbUnsuccess(); err != nil || n != 0 || multi.RespID() == "" {
		t.Fatalf("submit_multi_resp: id %q no_unsuccess %d %v", multi.RespID(), n, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.SendMO(ctx, "bank", "447700900555", "BANK", 0, []byte("STOP")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-mo:
		f := p.Fields()
		if p.Header().ID != gpdu.DeliverSMID || f[pdufield.ShortMessage].String() != "STOP" ||
			f[pdufield.SourceAddr].String() != "447700900555" || f[pdufield.DestinationAddr].String() != "BANK" {
			t.Fatalf("MO %v %v", p.Header(), f)
		}
	case <-time.After(ioTimeout):
		t.Fatal("no MO")
	}
	if st := s.Stats(); st.Submits != 2 || st.Responses != 2 || st.MOsSent != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestMessageIDFormats(t *testing.T) {
	for format, re := range map[string]string{
		"":        `^[0-9A-F]{8}$`,
		"hex":     `^[0-9A-F]{8}$`,
		"decimal": `^[1-9][0-9]{8,9}$`,
		"uuid":    `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`,
	} {
		t.Run(format, func(t *testing.T) {
			s := start(t, Config{MessageIDFormat: format, Seed: 3})
			r := dial(t, s)
			r.bind(smpp.BindTransceiver, "bank")
			seen := map[string]bool{}
			for range 5 {
				id := r.submitOK("BANK", "447700900123", "hi", 0)
				if !regexp.MustCompile(re).MatchString(id) || seen[id] {
					t.Fatalf("id %q (seen before: %v)", id, seen[id])
				}
				seen[id] = true
				if st, ok := s.MessageState(id); !ok || st != StateDelivered {
					t.Fatalf("MessageState(%s) = %d, %v", id, st, ok)
				}
			}
		})
	}
	if _, err := Start(context.Background(), Config{MessageIDFormat: "base64"}); err == nil {
		t.Fatal("bad MessageIDFormat accepted")
	}
}

func TestReceipt(t *testing.T) {
	s := start(t, Config{})
	r := dial(t, s)
	r.bind(smpp.BindTransceiver, "bank")
	r.seq = 0 // the client's next submit uses seq 1: our deliver_sm seq 1 collides on purpose
	id := r.submitOK("BANK", "447700900123", "Your code is 123456, do not share it", 1)
	p := r.read()
	m := checkReceipt(t, p, "447700900123", "BANK")
	if p.Seq() != 1 {
		t.Errorf("first deliver_sm seq %d, want 1", p.Seq())
	}
	if m[1] != id || m[2] != "001" || m[5] != "DELIVRD" || m[6] != "000" || m[7] != "Your code is 123456," {
		t.Errorf("receipt text %q", p.ShortMessage())
	}
	now := time.Now().UTC().Format("0601021504")
	if m[3] > now || m[4] > now {
		t.Errorf("dates %s %s after %s", m[3], m[4], now)
	}
	if v, ok := p.TLV(smpp.TagReceiptedMessageID); !ok || string(v) != id+"\x00" {
		t.Errorf("receipted_message_id %q", v)
	}
	if st := tlvByte(t, p, smpp.TagMessageState); st != StateDelivered {
		t.Errorf("message_state %d", st)
	}
	if st := s.Stats(); st.DLRsSent != 1 || st.DLRsPending != 1 || st.DLRsAcked != 0 {
		t.Errorf("before ack: %+v", st)
	}
	r.ack(p, smpp.StatusOK)
	r.sync()
	if st := s.Stats(); st.DLRsAcked != 1 || st.DLRsPending != 0 {
		t.Errorf("after ack: %+v", st)
	}
	if st, ok := s.MessageState(id); !ok || st != StateDelivered {
		t.Errorf("MessageState %d %v", st, ok)
	}
	// registered_delivery 0: no receipt (the enquire_link_resp comes right after the resp).
	r.submitOK("BANK", "447700900123", "no receipt", 0)
	r.sync()
	// The next receipt gets our next sequence number.
	r.submitOK("BANK", "447700900123", "again", 1)
	if p := r.read(); p.ID() != smpp.DeliverSM || p.Seq() != 2 {
		t.Fatalf("second receipt %v", p.Header())
	}
}

func TestReceiptVariants(t *testing.T) {
	t.Run("mix", func(t *testing.T) {
		s := start(t, Config{DLRStatusMix: map[string]int{"UNDELIV": 1}})
		r := dial(t, s)
		r.bind(smpp.BindTransceiver, "bank")
		id := r.submitOK("BANK", "447700900123", "x", 1)
		p := r.read()
		m := checkReceipt(t, p, "447700900123", "BANK")
		if m[2] != "000" || m[5] != "UNDELIV" || m[6] == "000" || tlvByte(t, p, smpp.TagMessageState) != StateUndeliverable {
			t.Fatalf("receipt %q", p.ShortMessage())
		}
		if st, _ := s.MessageState(id); st != StateUndeliverable {
			t.Fatalf("state %d", st)
		}
	})
	t.Run("mix spread", func(t *testing.T) {
		s := start(t, Config{DLRStatusMix: map[string]int{"DELIVRD": 50, "EXPIRED": 25, "REJECTD": 25}, Seed: 9})
		r := dial(t, s)
		r.bind(smpp.BindTransceiver, "bank")
		counts := map[string]int{}
		for range 200 {
			r.submitOK("BANK", "447700900123", "x", 1)
			p := r.read()
			counts[checkReceipt(t, p, "447700900123", "BANK")[5]]++
			r.ack(p, smpp.StatusOK)
		}
		if counts["DELIVRD"] < 70 || counts["EXPIRED"] < 25 || counts["REJECTD"] < 25 || counts["UNDELIV"] != 0 {
			t.Fatalf("states %v", counts)
		}
	})
	t.Run("no TLVs", func(t *testing.T) {
		s := start(t, Config{DLRNoTLVs: true})
		r := dial(t, s)
		r.bind(smpp.BindTransceiver, "bank")
		r.submitOK("BANK", "447700900123", "x", 1)
		p := r.read()
		checkReceipt(t, p, "447700900123", "BANK")
		if it := p.TLVs(); func() bool { _, ok := it.Next(); return ok }() {
			t.Fatalf("receipt has TLVs: %x", p.Bytes())
		}
	})
	t.Run("text id decimal", func(t *testing.T) {
		s := start(t, Config{DLRTextIDFormat: "decimal"})
		r := dial(t, s)
		r.bind(smpp.BindTransceiver, "bank")
		id := r.submitOK("BANK", "447700900123", "x", 1)
		p := r.read()
		m := checkReceipt(t, p, "447700900123", "BANK")
		n, err := strconv.ParseUint(id, 16, 64)
		if err != nil || m[1] != strconv.FormatUint(n, 10) {
			t.Fatalf("hex id %s, text id %s", id, m[1])
		}
		if v, _ := p.TLV(smpp.TagReceiptedMessageID); string(v) != id+"\x00" {
			t.Fatalf("receipted_message_id %q, want the hex id %s", v, id)
		}
	})
	t.Run("before resp", func(t *testing.T) {
		s := start(t, Config{DLRBeforeResp: true})
		r := dial(t, s)
		r.bind(smpp.BindTransceiver, "bank")
		seq := r.submit("BANK", "447700900123", "x", 1)
		p := r.read()
		m := checkReceipt(t, p, "447700900123", "BANK")
		resp := r.expect(smpp.SubmitSMResp, smpp.StatusOK, seq)
		if id := resp.CString(smpp.FieldMessageID); m[1] != id {
			t.Fatalf("receipt for %s before resp with %s", m[1], id)
		}
	})
	t.Run("delay", func(t *testing.T) {
		s := start(t, Config{DLRDelay: 150 * time.Millisecond})
		r := dial(t, s)
		r.bind(smpp.BindTransceiver, "bank")
		id := r.submitOK("BANK", "447700900123", "x", 1)
		t0 := time.Now()
		if st, _ := s.MessageState(id); st != StateEnroute {
			t.Errorf("state before the receipt %d, want ENROUTE", st)
		}
		p := r.read()
		checkReceipt(t, p, "447700900123", "BANK")
		if d := time.Since(t0); d < 100*time.Millisecond {
			t.Fatalf("receipt after %v", d)
		}
		if st, _ := s.MessageState(id); st != StateDelivered {
			t.Errorf("state after the receipt %d", st)
		}
	})
	t.Run("failure only flag and UDH", func(t *testing.T) {
		s := start(t, Config{})
		r := dial(t, s)
		r.bind(smpp.BindTransceiver, "bank")
		seq := r.nextSeq()
		f, _ := smpp.NewBuilder(smpp.SubmitSM, smpp.StatusOK, seq).CString("").Int(1).Int(1).CString("447700900999").Int(1).Int(1).CString("447700900123").
			Int(0x40).Int(0).Int(0).CString("").CString("").Int(0x12).Int(0).Int(0).Int(0).
			ShortMessage(append([]byte{5, 0, 3, 7, 2, 1}, "part one\x01"...)).Bytes()
		r.send(f)
		r.expect(smpp.SubmitSMResp, smpp.StatusOK, seq)
		m := checkReceipt(t, r.read(), "447700900123", "447700900999")
		if m[7] != "part one?" {
			t.Fatalf("text %q", m[7])
		}
	})
}

func TestReceiptQueuedUntilReceiverAndRetried(t *testing.T) {
	s := start(t, Config{})
	tx := dial(t, s)
	tx.bind(smpp.BindTransmitter, "bank")
	id := tx.submitOK("BANK", "447700900123", "queued", 1)
	tx.sync()
	if st := s.Stats(); st.DLRsPending != 1 || st.DLRsSent != 0 {
		t.Fatalf("with no receiver: %+v", st)
	}
	// Another system_id's receiver does not get it.
	other := dial(t, s)
	other.bind(smpp.BindReceiver, "other")
	other.sync()

	rx := dial(t, s)
	rx.bind(smpp.BindReceiver, "bank")
	p := rx.read()
	if m := checkReceipt(t, p, "447700900123", "BANK"); m[1] != id {
		t.Fatalf("receipt for %s", m[1])
	}
	rx.ack(p, smpp.StatusSysErr) // refused: retried
	p2 := rx.read()
	if m := checkReceipt(t, p2, "447700900123", "BANK"); m[1] != id || p2.Seq() == p.Seq() {
		t.Fatalf("retry %v for %s", p2.Header(), m[1])
	}
	// The receiver dies with the receipt in flight: a new one gets it.
	rx.c.Close()
	rx2 := dial(t, s)
	rx2.bind(smpp.BindTransceiver, "bank")
	p3 := rx2.read()
	if m := checkReceipt(t, p3, "447700900123", "BANK"); m[1] != id {
		t.Fatalf("re-delivery for %s", m[1])
	}
	rx2.ack(p3, smpp.StatusOK)
	rx2.sync()
	if st := s.Stats(); st.DLRsPending != 0 || st.DLRsAcked != 1 || st.DLRsSent != 3 {
		t.Fatalf("after delivery: %+v", st)
	}
	other.sync() // still nothing for "other"
}

func TestReceiptTimeoutRetried(t *testing.T) {
	old := dlrRespTimeout
	dlrRespTimeout = 300 * time.Millisecond
	defer func() { dlrRespTimeout = old }()
	s := start(t, Config{})
	r := dial(t, s)
	r.bind(smpp.BindTransceiver, "bank")
	r.submitOK("BANK", "447700900123", "x", 1)
	p := r.read() // not answered
	p2 := r.read()
	if p2.ID() != smpp.DeliverSM || p2.Seq() == p.Seq() || !bytes.Equal(p2.ShortMessage(), p.ShortMessage()) {
		t.Fatalf("retry %v", p2.Header())
	}
	r.ack(p, smpp.StatusOK) // late: ignored
	r.ack(p2, smpp.StatusOK)
	r.sync()
	if st := s.Stats(); st.DLRsAcked != 1 || st.DLRsPending != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestPendingBound(t *testing.T) {
	old := maxPendingDLRs
	maxPendingDLRs = 3
	defer func() { maxPendingDLRs = old }()
	s := start(t, Config{Logger: zap.NewNop()})
	tx := dial(t, s)
	tx.bind(smpp.BindTransmitter, "bank")
	var ids []string
	for i := range 5 {
		ids = append(ids, tx.submitOK("BANK", "447700900123", fmt.Sprint("m", i), 1))
	}
	tx.sync()
	if st := s.Stats(); st.DLRsDropped != 2 || st.DLRsPending != 3 {
		t.Fatalf("%+v", st)
	}
	rx := dial(t, s)
	rx.bind(smpp.BindReceiver, "bank")
	for _, want := range ids[2:] {
		if m := checkReceipt(t, rx.read(), "447700900123", "BANK"); m[1] != want {
			t.Fatalf("got %s, want %s (the oldest are dropped)", m[1], want)
		}
	}
}

func TestErrorRate(t *testing.T) {
	run := func() []uint32 {
		s := start(t, Config{ErrorRate: 0.3, ErrorStatus: smpp.StatusMsgQFul, Seed: 7})
		r := dial(t, s)
		r.bind(smpp.BindTransmitter, "bank")
		const n = 1000
		var frames [][]byte
		for range n {
			frames = append(frames, submitFrame(t, r.nextSeq(), "BANK", "447700900123", "x", 0))
		}
		go func() { r.c.Write(bytes.Join(frames, nil)) }()
		var failed []uint32
		for range n {
			p := r.read()
			switch p.Status() {
			case smpp.StatusOK:
			case smpp.StatusMsgQFul:
				if p.Len() != smpp.HeaderLen {
					t.Fatalf("error resp with a body: %x", p.Bytes())
				}
				failed = append(failed, p.Seq())
			default:
				t.Fatalf("status %s", p.Status())
			}
		}
		if st := s.Stats(); st.Errors != int64(len(failed)) || st.Submits != n || st.Responses != n {
			t.Fatalf("stats %+v, %d failed", st, len(failed))
		}
		if len(failed) < 220 || len(failed) > 380 {
			t.Fatalf("%d of %d failed, want about 300", len(failed), n)
		}
		return failed
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different errors")
	}
}

func TestTPS(t *testing.T) {
	s := start(t, Config{TPS: 5})
	r := dial(t, s)
	r.bind(smpp.BindTransmitter, "bank")
	var frames [][]byte
	for range 20 {
		frames = append(frames, submitFrame(t, r.nextSeq(), "BANK", "447700900123", "x", 0))
	}
	r.send(frames...)
	ok, throttled := 0, 0
	for range 20 {
		switch p := r.read(); p.Status() {
		case smpp.StatusOK:
			ok++
		case smpp.StatusThrottled:
			throttled++
		default:
			t.Fatalf("status %s", p.Status())
		}
	}
	if ok != 5 || throttled != 15 || s.Stats().Throttled != 15 {
		t.Fatalf("%d ok, %d throttled", ok, throttled)
	}
	// Per bind: another connection has its own budget.
	r2 := dial(t, s)
	r2.bind(smpp.BindTransmitter, "bank")
	r2.submitOK("BANK", "447700900123", "x", 0)
}

func TestResponseDelayAndJitter(t *testing.T) {
	s := start(t, Config{ResponseDelay: 20 * time.Millisecond, ResponseJitter: 60 * time.Millisecond, Seed: 5})
	r := dial(t, s)
	r.bind(smpp.BindTransmitter, "bank")
	const n = 40
	var frames [][]byte
	for range n {
		frames = append(frames, submitFrame(t, r.nextSeq(), "BANK", "447700900123", "x", 0))
	}
	t0 := time.Now()
	r.send(frames...)
	var order []uint32
	for range n {
		p := r.expect(smpp.SubmitSMResp, smpp.StatusOK, 0)
		if len(order) == 0 && time.Since(t0) < 20*time.Millisecond {
			t.Fatalf("first response after %v", time.Since(t0))
		}
		order = append(order, p.Seq())
	}
	if slices.IsSorted(order) {
		t.Fatalf("responses in order: %v", order)
	}
	slices.Sort(order)
	for i, seq := range order {
		if seq != uint32(i+2) {
			t.Fatalf("responses %v", order)
		}
	}
}

func TestManageAndOtherSubmits(t *testing.T) {
	s := start(t, Config{DLRDelay: time.Hour})
	r := dial(t, s)
	r.bind(smpp.BindTransceiver, "bank")
	id := r.submitOK("BANK", "447700900123", "x", 1) // receipt far away: ENROUTE

	query := func(id string) *smpp.PDU {
		seq := r.nextSeq()
		f, err := smpp.NewBuilder(smpp.QuerySM, smpp.StatusOK, seq).CString(id).Int(5).Int(0).CString("BANK").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		r.send(f)
		p := r.read()
		if p.ID() != smpp.QuerySMResp || p.Seq() != seq {
			t.Fatalf("query answered %v", p.Header())
		}
		return p
	}
	p := query(id)
	if p.Status() != smpp.StatusOK || p.CString(smpp.FieldMessageID) != id || p.CString(smpp.FieldFinalDate) != "" {
		t.Fatalf("query_sm_resp %x", p.Bytes())
	}
	if st, _ := p.Uint8(smpp.FieldMessageState); st != StateEnroute {
		t.Fatalf("message_state %d", st)
	}
	if ec, ok := p.Uint8(smpp.FieldErrorCode); !ok || ec != 0 {
		t.Fatalf("error_code %d %v", ec, ok)
	}
	if p := query("00000001"); p.Status() != smpp.StatusQueryFail {
		t.Fatalf("unknown id: %s", p.Status())
	}

	for _, tc := range []struct {
		id   string
		want smpp.Status
	}{{id, smpp.StatusOK}, {"nope", smpp.StatusCancelFail}} {
		seq := r.nextSeq()
		f, _ := smpp.NewBuilder(smpp.CancelSM, smpp.StatusOK, seq).CString("").CString(tc.id).Int(5).Int(0).CString("BANK").Int(1).Int(1).CString("447700900123").Bytes()
		r.send(f)
		r.expect(smpp.CancelSMResp, tc.want, seq)
	}
	for _, tc := range []struct {
		id   string
		want smpp.Status
	}{{id, smpp.StatusOK}, {"ABCDEF", smpp.StatusReplaceFail}} {
		seq := r.nextSeq()
		f, _ := smpp.NewBuilder(smpp.ReplaceSM, smpp.StatusOK, seq).CString(tc.id).Int(5).Int(0).CString("BANK").CString("").CString("").Int(0).Int(0).ShortMessage([]byte("new")).Bytes()
		r.send(f)
		r.expect(smpp.ReplaceSMResp, tc.want, seq)
	}

	// data_sm: the receipt text comes from message_payload.
	s2 := start(t, Config{})
	r2 := dial(t, s2)
	r2.bind(smpp.BindTransceiver, "bank")
	seq := r2.nextSeq()
	f, _ := smpp.NewBuilder(smpp.DataSM, smpp.StatusOK, seq).CString("").Int(5).Int(0).CString("BANK").Int(1).Int(1).CString("447700900123").
		Int(0).Int(1).Int(0).TLV(smpp.TagMessagePayload, []byte("payload text that is long")).Bytes()
	r2.send(f)
	did := r2.expect(smpp.DataSMResp, smpp.StatusOK, seq).CString(smpp.FieldMessageID)
	if m := checkReceipt(t, r2.read(), "447700900123", "BANK"); m[1] != did || m[7] != "payload text that is" {
		t.Fatalf("data_sm receipt %v", m)
	}

	// submit_multi: one receipt per SME destination, none for the distribution list.
	seq = r2.nextSeq()
	f, err := smpp.NewBuilder(smpp.SubmitMulti, smpp.StatusOK, seq).CString("").Int(5).Int(0).CString("BANK").Int(3).
		Dests([]smpp.Dest{{TON: 1, NPI: 1, Addr: "447700900001"}, {DLName: "staff"}, {TON: 1, NPI: 1, Addr: "447700900002"}}).
		Int(0).Int(0).Int(0).CString("").CString("").Int(1).Int(0).Int(0).Int(0).ShortMessage([]byte("to all")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	r2.send(f)
	mp := r2.expect(smpp.SubmitMultiResp, smpp.StatusOK, seq)
	mid := mp.CString(smpp.FieldMessageID)
	if nu, ok := mp.Uint8(smpp.FieldNoUnsuccess); !ok || nu != 0 || mid == "" {
		t.Fatalf("submit_multi_resp %x", mp.Bytes())
	}
	for _, dst := range []string{"447700900001", "447700900002"} {
		if m := checkReceipt(t, r2.read(), dst, "BANK"); m[1] != mid {
			t.Fatalf("multi receipt for %s", m[1])
		}
	}
}

func TestProtocolErrors(t *testing.T) {
	s := start(t, Config{})
	r := dial(t, s)
	// Before bind.
	seq := r.submit("BANK", "447700900123", "x", 0)
	r.expect(smpp.SubmitSMResp, smpp.StatusInvBndSts, seq)
	r.send(smpp.HeaderOnly(smpp.EnquireLink, smpp.StatusOK, 77))
	r.expect(smpp.EnquireLinkResp, smpp.StatusInvBndSts, 77)
	// Unknown command.
	r.send(smpp.HeaderOnly(0x00000077, smpp.StatusOK, 78))
	r.expect(smpp.GenericNack, smpp.StatusInvCmdID, 78)

	r.bind(smpp.BindTransceiver, "bank")
	r.send(smpp.HeaderOnly(0x00000077, smpp.StatusOK, 79))
	r.expect(smpp.GenericNack, smpp.StatusInvCmdID, 79)
	// Malformed body: answered with the parse error's status.
	bad := submitFrame(t, 80, "BANK", "447700900123", "hi", 0)
	bad[len(bad)-3] = 200 // sm_length beyond the body
	r.send(bad)
	r.expect(smpp.SubmitSMResp, smpp.StatusInvMsgLen, 80)
	noNul := smpp.HeaderOnly(smpp.BindTransmitter, smpp.StatusOK, 81)
	noNul = append(noNul, "abc"...)
	binary.BigEndian.PutUint32(noNul, uint32(len(noNul)))
	r.send(noNul)
	r.expect(smpp.BindTransmitterResp, smpp.StatusInvSysID, 81)
	// An ESME does not send deliver_sm, outbind or alert_notification.
	dl, _ := moFrame("447700900001", "BANK", 0, []byte("x"), nil)
	putSeq(dl, 82)
	r.send(dl)
	r.expect(smpp.DeliverSMResp, smpp.StatusInvCmdID, 82)
	// Stray responses are ignored.
	r.send(smpp.HeaderOnly(smpp.SubmitSMResp, smpp.StatusOK, 83), smpp.HeaderOnly(smpp.DeliverSMResp, smpp.StatusOK, 999))
	r.sync()
	// Unbind: answered, then closed.
	r.send(smpp.HeaderOnly(smpp.Unbind, smpp.StatusOK, 84))
	r.expect(smpp.UnbindResp, smpp.StatusOK, 84)
	r.expectClosed()

	// A receiver may not submit.
	rx := dial(t, s)
	rx.bind(smpp.BindReceiver, "bank")
	seq = rx.submit("BANK", "447700900123", "x", 0)
	rx.expect(smpp.SubmitSMResp, smpp.StatusInvBndSts, seq)

	// Frame length out of bounds: generic_nack ESME_RINVCMDLEN, then closed.
	for _, n := range []uint32{8, smpp.DefaultMaxPDUSize + 1} {
		c := dial(t, s)
		h := smpp.HeaderOnly(smpp.SubmitSM, smpp.StatusOK, 85)
		binary.BigEndian.PutUint32(h, n)
		c.send(h)
		c.expect(smpp.GenericNack, smpp.StatusInvCmdLen, 85)
		c.expectClosed()
	}
	// The biggest frame allowed is read (and answered for what it is).
	c := dial(t, s)
	c.bind(smpp.BindTransmitter, "bank")
	pad := smpp.DefaultMaxPDUSize - len(submitFrame(t, 86, "BANK", "447700900123", "x", 0)) - 4
	big := submitFrame(t, 86, "BANK", "447700900123", "x", 0, smpp.TLV{Tag: 0x1400, Value: make([]byte, pad)})
	if len(big) != smpp.DefaultMaxPDUSize {
		t.Fatalf("built %d bytes", len(big))
	}
	c.send(big)
	c.expect(smpp.SubmitSMResp, smpp.StatusOK, 86)
}

func TestRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.jsonl")
	s := start(t, Config{RecordPath: path})
	r := dial(t, s)
	var sent [][]byte
	bindF, _ := smpp.BindParams{SystemID: "bank", Password: "pw"}.Encode(smpp.BindTransceiver, 1)
	sent = append(sent, bindF)
	r.send(bindF)
	r.read()
	sub := submitFrame(t, 2, "BANK", "447700900123", "record me", 0, smpp.TLV{Tag: 0x1401, Value: []byte{1, 2}})
	sent = append(sent, sub)
	r.send(sub)
	r.read()
	unk := smpp.HeaderOnly(0x00000077, smpp.StatusOK, 3)
	sent = append(sent, unk)
	r.send(unk)
	r.read()

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- s.WaitRecords(ctx, func(rs []Record) bool {
			return len(rs) > 0 && rs[len(rs)-1].Command == "enquire_link"
		})
	}()
	el := smpp.HeaderOnly(smpp.EnquireLink, smpp.StatusOK, 4)
	sent = append(sent, el)
	r.send(el)
	r.read()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	recs := s.Records()
	if len(recs) != len(sent) {
		t.Fatalf("%d records, want %d", len(recs), len(sent))
	}
	wantCmd := []string{"bind_transceiver", "submit_sm", "command_0x77", "enquire_link"}
	wantSID := []string{"", "bank", "bank", "bank"}
	for i, rc := range recs {
		if !bytes.Equal(rc.Bytes, sent[i]) || rc.Hex != hex.EncodeToString(sent[i]) {
			t.Errorf("record %d: %s, want %x", i, rc.Hex, sent[i])
		}
		if rc.Command != wantCmd[i] || rc.Seq != uint32(i+1) || rc.Status != 0 || rc.SystemID != wantSID[i] || rc.Conn != 1 || rc.Time.IsZero() {
			t.Errorf("record %d: %+v", i, rc)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != len(sent) {
		t.Fatalf("%d lines in the record file", len(lines))
	}
	for i, line := range lines {
		var rc Record
		if err := json.Unmarshal([]byte(line), &rc); err != nil {
			t.Fatal(err)
		}
		if rc.Hex != recs[i].Hex || rc.Command != recs[i].Command || rc.SystemID != recs[i].SystemID || !rc.Time.Equal(recs[i].Time) {
			t.Errorf("line %d: %s", i, line)
		}
	}
	if err := s.WaitRecords(context.Background(), func([]Record) bool { return false }); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitRecords after Close: %v", err)
	}

	t.Run("limit", func(t *testing.T) {
		s := start(t, Config{RecordLimit: 3})
		r := dial(t, s)
		r.bind(smpp.BindTransceiver, "bank")
		for range 4 {
			r.sync()
		}
		recs := s.Records()
		if len(recs) != 3 || recs[0].Seq != 3 || recs[2].Seq != 5 {
			t.Fatalf("records %+v", recs)
		}
	})
	t.Run("off", func(t *testing.T) {
		s := start(t, Config{NoRecord: true})
		r := dial(t, s)
		r.bind(smpp.BindTransceiver, "bank")
		r.sync()
		if n := len(s.Records()); n != 0 {
			t.Fatalf("%d records with NoRecord", n)
		}
	})
}

func TestSendMORaw(t *testing.T) {
	s := start(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.SendMO(ctx, "bank", "447700900001", "BANK", 0, []byte("x")); !errors.Is(err, ErrNoReceiver) {
		t.Fatalf("no receiver: %v", err)
	}
	tx := dial(t, s)
	tx.bind(smpp.BindTransmitter, "bank") // a transmitter is no receiver
	if err := s.SendMO(ctx, "bank", "447700900001", "BANK", 0, []byte("x")); !errors.Is(err, ErrNoReceiver) {
		t.Fatalf("transmitter only: %v", err)
	}
	r := dial(t, s)
	r.bind(smpp.BindReceiver, "bank")
	long := bytes.Repeat([]byte("é"), 150) // 300 octets: message_payload
	errc := make(chan error, 1)
	go func() {
		errc <- s.SendMO(ctx, "bank", "447700900001", "BANK", 8, long, smpp.TLV{Tag: smpp.TagSourcePort, Value: []byte{0, 9}})
	}()
	p := r.read()
	if p.ID() != smpp.DeliverSM || len(p.ShortMessage()) != 0 {
		t.Fatalf("MO %x", p.Bytes())
	}
	if v, _ := p.TLV(smpp.TagMessagePayload); !bytes.Equal(v, long) {
		t.Fatalf("message_payload %x", v)
	}
	if v, _ := p.TLV(smpp.TagSourcePort); !bytes.Equal(v, []byte{0, 9}) {
		t.Fatalf("source_port %x", v)
	}
	if esm, _ := p.Uint8(smpp.FieldESMClass); esm != 0 {
		t.Fatalf("esm_class %d", esm)
	}
	if dc, _ := p.Uint8(smpp.FieldDataCoding); dc != 8 {
		t.Fatalf("data_coding %d", dc)
	}
	r.ack(p, smpp.StatusXTAppn)
	var st smpp.Status
	if err := <-errc; !errors.As(err, &st) || st != smpp.StatusXTAppn {
		t.Fatalf("SendMO returned %v", err)
	}
	// An MO that is never answered ends with ctx.
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if err := s.SendMO(short, "bank", "447700900001", "BANK", 0, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered MO: %v", err)
	}
	r.read()
}

func TestDropConnections(t *testing.T) {
	s := start(t, Config{})
	tx := dial(t, s)
	tx.bind(smpp.BindTransmitter, "bank")
	rx := dial(t, s)
	rx.bind(smpp.BindReceiver, "bank")
	id := tx.submitOK("BANK", "447700900123", "x", 1)
	checkReceipt(t, rx.read(), "447700900123", "BANK") // in flight, not acknowledged
	if n := s.Stats().Conns; n != 2 {
		t.Fatalf("Conns = %d", n)
	}
	s.DropConnections()
	if n := s.Stats().Conns; n != 0 {
		t.Fatalf("Conns after drop = %d", n)
	}
	tx.expectClosed()
	rx.expectClosed()
	// Still listening; the receipt in flight is delivered again.
	rx2 := dial(t, s)
	rx2.bind(smpp.BindReceiver, "bank")
	if m := checkReceipt(t, rx2.read(), "447700900123", "BANK"); m[1] != id {
		t.Fatalf("receipt for %s", m[1])
	}
	if st := s.Stats(); st.Accepted != 3 || st.Conns != 1 {
		t.Fatalf("%+v", st)
	}
}

func TestDisconnectAfter(t *testing.T) {
	for _, delay := range []time.Duration{0, 10 * time.Millisecond} {
		s := start(t, Config{DisconnectAfter: 3, ResponseDelay: delay})
		r := dial(t, s)
		r.bind(smpp.BindTransmitter, "bank")
		var frames [][]byte
		for range 5 {
			frames = append(frames, submitFrame(t, r.nextSeq(), "BANK", "447700900123", "x", 0))
		}
		r.send(frames...)
		for i := range 3 {
			r.expect(smpp.SubmitSMResp, smpp.StatusOK, uint32(i+2))
		}
		r.expectClosed()
	}
}

func TestStartErrorsAndContext(t *testing.T) {
	for _, cfg := range []Config{
		{DLRStatusMix: map[string]int{"LOST": 1}},
		{DLRStatusMix: map[string]int{"DELIVRD": 0}},
		{ErrorRate: 1.5},
		{TPS: -1},
		{DLRTextIDFormat: "octal"},
		{Addr: "127.0.0.1:notaport"},
		{RecordPath: filepath.Join(t.TempDir(), "missing", "x.jsonl")},
	} {
		if s, err := Start(context.Background(), cfg); err == nil {
			s.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Config{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	r := dial(t, s)
	r.bind(smpp.BindTransceiver, "bank")
	cancel()
	r.expectClosed()
	if err := s.WaitRecords(context.Background(), func([]Record) bool { return false }); !errors.Is(err, ErrClosed) {
		t.Fatalf("after cancel: %v", err)
	}
	s.Close()
}

// lineWriter hands the lines Main prints to the test.
type lineWriter struct{ lines chan string }

func (w lineWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.lines <- l
	}
	return len(b), nil
}

func TestMainCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-id-format", "base64"}, "-id-format"},
		{[]string{"-dlr-text-id", "octal"}, "-dlr-text-id"},
		{[]string{"-response-delay", "-1s"}, "-response-delay"},
		{[]string{"-disconnect-after", "-1"}, "-disconnect-after"},
		{[]string{"-dlr-mix", "DELIVRD=90,LOST=10"}, `unknown state "LOST"`},
		{[]string{"-dlr-mix", "DELIVRD=lots"}, "not a non-negative integer"},
		{[]string{"-dlr-mix", "DELIVRD"}, "want STATE=weight"},
		{[]string{"-dlr-mix", "DELIVRD=0"}, "add up to 0"},
		{[]string{"-error-rate", "1.5"}, "-error-rate"},
		{[]string{"-error-rate", "half"}, "-error-rate"},
		{[]string{"-error-status", "ESME_RNOPE"}, "unknown status"},
		{[]string{"-error-status", "0"}, "not an error"},
		{[]string{"-tps", "-3"}, "-tps"},
		{[]string{"-account", "bank"}, "want system_id:password"},
		{[]string{"-account", "bank:muchtoolongpassword"}, "at most 8"},
		{[]string{"-dlr-delay", "soon"}, "-dlr-delay"},
		{[]string{"-mo-every", "1s"}, "needs -mo-to"},
		{[]string{"-mo-to", "bank"}, "needs -mo-every"},
		{[]string{"-nope"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		err := Main(context.Background(), tc.args, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Main(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	var help bytes.Buffer
	if err := Main(context.Background(), []string{"-h"}, &help, nil); err != nil || !strings.Contains(help.String(), "-dlr-mix") {
		t.Errorf("-h: %v %q", err, help.String())
	}
	for _, tc := range []struct {
		in   string
		want smpp.Status
	}{{"ESME_RSUBMITFAIL", smpp.StatusSubmitFail}, {"rthrottled", smpp.StatusThrottled}, {"0x58", smpp.StatusThrottled}, {"1025", 1025}} {
		if st, err := parseStatus(tc.in); err != nil || st != tc.want {
			t.Errorf("parseStatus(%q) = %v, %v", tc.in, st, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := lineWriter{lines: make(chan string, 4)}
	errc := make(chan error, 1)
	go func() {
		errc <- Main(ctx, []string{"-listen", "127.0.0.1:0", "-account", "bank:pw", "-mo-every", "20ms", "-mo-to", "bank",
			"-mo-text", "periodic", "-error-status", "ESME_RTHROTTLED", "-error-rate", "1", "-dlr-mix", "DELIVRD=90,UNDELIV=10"}, out, nil)
	}()
	var addr string
	select {
	case l := <-out.lines:
		addr = strings.TrimPrefix(l, "fake-smsc listening on ")
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(ioTimeout):
		t.Fatal("Main printed no address")
	}
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &raw{t: t, c: c, fr: smpp.NewFrameReader(c, 0)}
	if st := r.bindAs(smpp.BindTransceiver, "bank", "pw"); st != smpp.StatusOK {
		t.Fatalf("bind: %s", st)
	}
	seq := r.submit("BANK", "447700900123", "x", 0)
	for {
		p := r.read()
		if p.ID() == smpp.DeliverSM {
			if string(p.ShortMessage()) != "periodic" {
				t.Fatalf("MO %q", p.ShortMessage())
			}
			r.ack(p, smpp.StatusOK)
			continue
		}
		if p.ID() != smpp.SubmitSMResp || p.Seq() != seq || p.Status() != smpp.StatusThrottled {
			t.Fatalf("submit answered %v", p.Header())
		}
		break
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Main did not return after cancel")
	}
}

// BenchmarkSubmit measures pipelined submit_sm throughput over one connection.
func BenchmarkSubmit(b *testing.B) {
	s, err := Start(context.Background(), Config{NoRecord: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	bf, _ := smpp.BindParams{SystemID: "bench"}.Encode(smpp.BindTransmitter, 1)
	c.Write(bf)
	fr := smpp.NewFrameReader(c, 0)
	if _, err := fr.ReadFrame(); err != nil {
		b.Fatal(err)
	}
	frame := submitFrame(b, 2, "BANK", "447700900123", "Your code is 123456", 0)
	const batch = 256
	buf := bytes.Repeat(frame, batch)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := fr.ReadFrame(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	w := bufio.NewWriterSize(c, 64<<10)
	for sent := 0; sent < b.N; sent += batch {
		n := min(batch, b.N-sent)
		w.Write(buf[:n*len(frame)])
	}
	w.Flush()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
}

// BenchmarkSubmitWithReceipts measures submit_sm with registered_delivery over one
// transceiver that acknowledges every receipt, with in-memory recording on. The client keeps
// at most 2048 submits outstanding so that neither side's queues fill up.
func BenchmarkSubmitWithReceipts(b *testing.B) {
	s, err := Start(context.Background(), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	bf, _ := smpp.BindParams{SystemID: "bench"}.Encode(smpp.BindTransceiver, 1)
	c.Write(bf)
	fr := smpp.NewFrameReader(c, 0)
	if _, err := fr.ReadFrame(); err != nil {
		b.Fatal(err)
	}
	frame := submitFrame(b, 2, "BANK", "447700900123", "Your code is 123456", 1)
	const batch = 128
	buf := bytes.Repeat(frame, batch)
	window := make(chan struct{}, 2048)
	var mu sync.Mutex
	w := bufio.NewWriterSize(c, 64<<10)
	done := make(chan error, 1)
	go func() {
		var p smpp.PDU
		acks := make([]byte, 0, 64<<10)
		for resps, rcpts := 0, 0; resps < b.N || rcpts < b.N; {
			f, err := fr.ReadFrame()
			if err == nil {
				err = p.Reset(f)
			}
			if err != nil {
				done <- err
				return
			}
			if p.ID() == smpp.DeliverSM {
				rcpts++
				ack := smpp.HeaderOnly(smpp.DeliverSMResp, 0, p.Seq())
				binary.BigEndian.PutUint32(ack, 17)
				acks = append(append(acks, ack...), 0)
			} else {
				resps++
				<-window
			}
			if len(acks) > 0 && (fr.Buffered() == 0 || len(acks) > 60<<10) {
				mu.Lock()
				w.Write(acks)
				w.Flush()
				mu.Unlock()
				acks = acks[:0]
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += batch {
		n := min(batch, b.N-sent)
		for range n {
			window <- struct{}{}
		}
		mu.Lock()
		w.Write(buf[:n*len(frame)])
		w.Flush()
		mu.Unlock()
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
	if st := s.Stats(); st.DLRsAcked != int64(b.N) {
		b.Logf("stats %+v", st)
	}
}
