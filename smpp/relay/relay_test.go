package relay

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// env is a proxy between test ESMEs and a real fake SMSC, all on 127.0.0.1.
type env struct {
	t     *testing.T
	smsc  *fakesmsc.Server
	relay *Relay
	addr  string
	binds int // the pooled upstream's binds
}

func newEnv(t *testing.T, fc fakesmsc.Config, mutate func(*Config)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fc.Accounts = map[string]string{"proxy": "secret", "pt": "ptpw"}
	if fc.Logger == nil {
		fc.Logger = zaptest.NewLogger(t).Named("smsc")
	}
	smsc, err := fakesmsc.Start(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smsc.Close() })
	sess := smpp.Config{ResponseTimeout: 3 * time.Second, EnquireLinkInterval: -1}
	cfg := Config{
		Upstreams: []Upstream{{Name: "carrier", Addr: smsc.Addr(), Session: sess, Bind: smpp.BindParams{SystemID: "proxy", Password: "secret"},
			Binds: 2, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}},
		Routes: map[string]string{"default": "carrier"},
		Accounts: []Account{
			{SystemID: "bank", Password: "pw", Route: "default", QueueMax: 1000, QueueTTL: time.Hour},
			{SystemID: "pt", Mode: PassThrough, Upstream: "carrier", QueueMax: 10},
		},
		MORules:      []MORule{{DestPrefix: "", Account: "bank"}},
		DLRMatchWait: time.Second,
		LinkWait:     time.Second,
		Logger:       zaptest.NewLogger(t).Named("relay"),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveRelay(t, ctx, r, sess, 0)
	e := &env{t: t, smsc: smsc, relay: r, addr: addr, binds: max(cfg.Upstreams[0].Binds, 1)}
	e.waitLinks()
	return e
}

func (e *env) waitLinks() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l := e.relay.Links()["carrier"]; l != nil && len(l.Sessions()) == e.binds {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatal("pooled link did not come up")
}

// esmeClient is a test ESME on our own session type; it answers deliver_sm with ack
// (ESME_ROK by default) and collects them.
type esmeClient struct {
	s         *smpp.Session
	mu        sync.Mutex
	delivered []*smpp.PDU
	got       chan struct{}
	ack       smpp.Status
}

func (c *esmeClient) ServePDU(s *smpp.Session, p *smpp.PDU) {
	c.mu.Lock()
	c.delivered = append(c.delivered, p.Copy())
	ack := c.ack
	c.mu.Unlock()
	select {
	case c.got <- struct{}{}:
	default:
	}
	if p.ID().HasResponse() {
		s.Respond(p, ack, "")
	}
}

func (c *esmeClient) waitDelivered(t *testing.T, n int) []*smpp.PDU {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.delivered) >= n {
			out := append([]*smpp.PDU(nil), c.delivered...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.got:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("got %d deliveries, want %d", len(c.delivered), n)
		}
	}
}

func bindESME(t *testing.T, addr string, id smpp.CommandID, sysID, pw string) (*esmeClient, *smpp.PDU, error) {
	t.Helper()
	c := &esmeClient{got: make(chan struct{}, 1)}
	frame, err := smpp.BindParams{SystemID: sysID, Password: pw}.Encode(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := smpp.Parse(frame)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, resp, err := smpp.Dial(ctx, addr, p, c, smpp.Config{ResponseTimeout: 5 * time.Second, EnquireLinkInterval: -1})
	if err != nil {
		return nil, resp, err
	}
	c.s = s
	t.Cleanup(func() { s.Close() })
	return c, resp, nil
}

func mustBind(t *testing.T, addr string, id smpp.CommandID, sysID, pw string) *esmeClient {
	t.Helper()
	c, _, err := bindESME(t, addr, id, sysID, pw)
	if err != nil {
		t.Fatalf("bind %s as %s: %v", id, sysID, err)
	}
	return c
}

type smOpt struct {
	dest    string
	esm     byte
	dc      byte
	regDel  byte
	text    []byte
	tlvs    []smpp.TLV
	payload []byte
}

func submitFrame(t testing.TB, o smOpt) []byte {
	t.Helper()
	if o.dest == "" {
		o.dest = "447700900123"
	}
	b := smpp.NewBuilder(smpp.SubmitSM, smpp.StatusOK, 0).CString("").Int(5).Int(0).CString("BANK").Int(1).Int(1).CString(o.dest).
		Int(o.esm).Int(0).Int(0).CString("").CString("").Int(o.regDel).Int(0).Int(o.dc).Int(0).ShortMessage(o.text)
	if o.payload != nil {
		b.TLV(smpp.TagMessagePayload, o.payload)
	}
	for _, tlv := range o.tlvs {
		b.TLV(tlv.Tag, tlv.Value)
	}
	f, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func request(t *testing.T, c *esmeClient, frame []byte) *smpp.PDU {
	t.Helper()
	p, err := smpp.Parse(frame)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.s.Request(ctx, p)
	if err != nil {
		t.Fatalf("%s: %v", p.ID(), err)
	}
	return resp
}

// lastRecord returns the fake SMSC's last received PDU of command id.
func (e *env) records(id smpp.CommandID) []fakesmsc.Record {
	var out []fakesmsc.Record
	for _, r := range e.smsc.Records() {
		if r.Command == id.String() {
			out = append(out, r)
		}
	}
	return out
}

// sameButSeq reports whether two frames are identical except for bytes 12–16.
func sameButSeq(a, b []byte) bool {
	return len(a) == len(b) && len(a) >= 16 && bytes.Equal(a[:12], b[:12]) && bytes.Equal(a[16:], b[16:])
}

func TestByteExactRelay(t *testing.T) {
	udh := []byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x01}
	ucs2 := []byte{0x04, 0x1A, 0x04, 0x3E, 0x04, 0x34, 0xD8, 0x3D, 0xDE, 0x00} // "Код😀"
	big := bytes.Repeat([]byte("0123456789"), 1024)                            // 10 KiB
	vendor := []smpp.TLV{{Tag: 0x3FFF, Value: []byte{9}}, {Tag: 0x1400, Value: []byte("x")}, {Tag: smpp.TagUserMessageReference, Value: []byte{0, 7}}, {Tag: 0x1400, Value: []byte("dup")}}
	cases := []struct {
		name string
		o    smOpt
	}{
		{"udh", smOpt{esm: 0x40, text: append(append([]byte{}, udh...), "part one"...)}},
		{"ucs2", smOpt{dc: 0x08, text: ucs2}},
		{"message_payload_10k", smOpt{payload: big}},
		{"vendor_tlvs_order_and_duplicates", smOpt{text: []byte("hi"), tlvs: vendor}},
	}
	for _, mode := range []struct{ sys, pw string }{{"bank", "pw"}, {"pt", "ptpw"}} {
		t.Run(mode.sys, func(t *testing.T) {
			e := newEnv(t, fakesmsc.Config{}, nil)
			c := mustBind(t, e.addr, smpp.BindTransceiver, mode.sys, mode.pw)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					sent := submitFrame(t, tc.o)
					orig := append([]byte(nil), sent...)
					n := len(e.records(smpp.SubmitSM))
					resp := request(t, c, sent)
					if resp.Status() != smpp.StatusOK || resp.CString(smpp.FieldMessageID) == "" {
						t.Fatalf("resp %v", resp.Header())
					}
					recs := e.records(smpp.SubmitSM)
					if len(recs) != n+1 {
						t.Fatalf("SMSC got %d submits, want %d", len(recs), n+1)
					}
					if got := recs[n].Bytes; !sameButSeq(got, orig) {
						t.Fatalf("relayed bytes differ:\n got %x\nwant %x", got, orig)
					}
				})
			}
		})
	}
}

// Every other request type is relayed as well, and the response comes back to its request.
func TestOtherCommandsRelayed(t *testing.T) {
	for _, acct := range []struct{ sys, pw string }{{"bank", "pw"}, {"pt", "ptpw"}} {
		t.Run(acct.sys, func(t *testing.T) { testOtherCommands(t, acct.sys, acct.pw) })
	}
}

func testOtherCommands(t *testing.T, sys, pw string) {
	e := newEnv(t, fakesmsc.Config{}, nil)
	c := mustBind(t, e.addr, smpp.BindTransceiver, sys, pw)
	resp := request(t, c, submitFrame(t, smOpt{text: []byte("x")}))
	id := resp.CString(smpp.FieldMessageID)
	frames := map[smpp.CommandID][]byte{}
	mk := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	frames[smpp.DataSM] = mk(smpp.NewBuilder(smpp.DataSM, 0, 0).CString("").Int(1).Int(1).CString("BANK").Int(1).Int(1).CString("447700900123").
		Int(0).Int(0).Int(0).TLV(smpp.TagMessagePayload, []byte("data")).Bytes())
	frames[smpp.QuerySM] = mk(smpp.NewBuilder(smpp.QuerySM, 0, 0).CString(id).Int(5).Int(0).CString("BANK").Bytes())
	frames[smpp.ReplaceSM] = mk(smpp.NewBuilder(smpp.ReplaceSM, 0, 0).CString(id).Int(5).Int(0).CString("BANK").CString("").CString("").Int(0).Int(0).ShortMessage([]byte("new")).Bytes())
	frames[smpp.CancelSM] = mk(smpp.NewBuilder(smpp.CancelSM, 0, 0).CString("").CString(id).Int(5).Int(0).CString("BANK").Int(1).Int(1).CString("447700900123").Bytes())
	frames[smpp.SubmitMulti] = mk(smpp.NewBuilder(smpp.SubmitMulti, 0, 0).CString("").Int(5).Int(0).CString("BANK").Int(2).
		Dests([]smpp.Dest{{TON: 1, NPI: 1, Addr: "447700900001"}, {DLName: "friends"}}).Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).ShortMessage([]byte("multi")).Bytes())
	for _, id := range []smpp.CommandID{smpp.DataSM, smpp.QuerySM, smpp.ReplaceSM, smpp.CancelSM, smpp.SubmitMulti} {
		t.Run(id.String(), func(t *testing.T) {
			orig := append([]byte(nil), frames[id]...)
			resp := request(t, c, frames[id])
			if resp.ID() != id.Response() || resp.Status() != smpp.StatusOK {
				t.Fatalf("resp %v", resp.Header())
			}
			recs := e.records(id)
			if len(recs) == 0 || !sameButSeq(recs[len(recs)-1].Bytes, orig) {
				t.Fatalf("SMSC did not receive the %s byte-exact", id)
			}
		})
	}
}

// Receipts reach the ESME in both modes and for transmitter+receiver pairs and transceivers.
func TestReceiptsReachESME(t *testing.T) {
	type tc struct {
		name      string
		sys, pw   string
		pair      bool // separate transmitter and receiver
		textIDDec bool
		noTLVs    bool
		early     bool
	}
	for _, c := range []tc{
		{name: "pooled_trx", sys: "bank", pw: "pw"},
		{name: "pooled_tx_rx_pair", sys: "bank", pw: "pw", pair: true},
		{name: "pooled_hex_resp_decimal_receipt_text", sys: "bank", pw: "pw", textIDDec: true, noTLVs: true},
		{name: "pooled_receipt_before_resp", sys: "bank", pw: "pw", early: true},
		{name: "passthrough_trx", sys: "pt", pw: "ptpw"},
		{name: "passthrough_tx_rx_pair", sys: "pt", pw: "ptpw", pair: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			fc := fakesmsc.Config{DLRNoTLVs: c.noTLVs, DLRBeforeResp: c.early}
			if c.textIDDec {
				fc.DLRTextIDFormat = "decimal"
			}
			e := newEnv(t, fc, nil)
			var tx, rx *esmeClient
			if c.pair {
				tx = mustBind(t, e.addr, smpp.BindTransmitter, c.sys, c.pw)
				rx = mustBind(t, e.addr, smpp.BindReceiver, c.sys, c.pw)
			} else {
				tx = mustBind(t, e.addr, smpp.BindTransceiver, c.sys, c.pw)
				rx = tx
			}
			const n = 5
			ids := map[string]bool{}
			for i := range n {
				resp := request(t, tx, submitFrame(t, smOpt{regDel: 1, text: []byte("code " + string(rune('0'+i)))}))
				ids[resp.CString(smpp.FieldMessageID)] = true
			}
			got := rx.waitDelivered(t, n)
			for _, p := range got {
				esm, _ := p.Uint8(smpp.FieldESMClass)
				if esm&0x04 == 0 {
					t.Fatalf("delivered a non-receipt: esm_class %#x", esm)
				}
				rid := receiptID(nil, p.ShortMessage())
				if v, ok := p.TLV(smpp.TagReceiptedMessageID); ok {
					rid = receiptID(v, nil)
				}
				if !c.textIDDec && !ids[rid] {
					t.Fatalf("receipt for %q, not one of ours %v", rid, ids)
				}
			}
			if c.pair && len(tx.delivered) != 0 {
				t.Fatal("receipt delivered to the transmitter")
			}
			if s := e.relay.Stats(); s.ReceiptsUnknown != 0 {
				t.Fatalf("unknown receipts: %+v", s)
			}
		})
	}
}

func TestMORouting(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, nil)
	rx := mustBind(t, e.addr, smpp.BindReceiver, "bank", "pw")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.smsc.SendMO(ctx, "proxy", "447700900999", "12345", 0, []byte("STOP")); err != nil {
		t.Fatal(err)
	}
	got := rx.waitDelivered(t, 1)
	if string(got[0].ShortMessage()) != "STOP" || got[0].CString(smpp.FieldSourceAddr) != "447700900999" {
		t.Fatalf("MO %q from %q", got[0].ShortMessage(), got[0].CString(smpp.FieldSourceAddr))
	}
}

// With no receiver bound, receipts are queued (the SMSC is acked) and delivered in order on rebind.
// One upstream bind: receipts arriving over two binds have no order between them.
func TestOfflineReceiverQueue(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) { c.Upstreams[0].Binds = 1 })
	tx := mustBind(t, e.addr, smpp.BindTransmitter, "bank", "pw")
	const n = 4
	var order []string
	for i := range n {
		resp := request(t, tx, submitFrame(t, smOpt{regDel: 1, text: []byte{'a' + byte(i)}}))
		order = append(order, resp.CString(smpp.FieldMessageID))
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.relay.QueueLen("bank") < n {
		if time.Now().After(deadline) {
			t.Fatalf("queued %d of %d receipts", e.relay.QueueLen("bank"), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rx := mustBind(t, e.addr, smpp.BindReceiver, "bank", "pw")
	got := rx.waitDelivered(t, n)
	for i, p := range got {
		v, _ := p.TLV(smpp.TagReceiptedMessageID)
		if id := receiptID(v, p.ShortMessage()); id != order[i] {
			t.Fatalf("receipt %d is for %q, want %q (in order)", i, id, order[i])
		}
	}
	// The ESME's last deliver_sm_resp is on its way: the queue empties once it is read.
	for e.relay.QueueLen("bank") != 0 {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("queue not empty after delivery")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Responses come back to the right requests even when the SMSC answers out of order.
func TestOutOfOrderResponses(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{ResponseJitter: 30 * time.Millisecond}, nil)
	c := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	type res struct {
		dest string
		resp *smpp.PDU
		err  error
	}
	const n = 40
	out := make(chan res, n)
	for i := range n {
		dest := "4477009" + strings.Repeat("0", 4) + string(rune('0'+i/10)) + string(rune('0'+i%10))
		go func() {
			p, _ := smpp.Parse(submitFrame(t, smOpt{dest: dest, regDel: 1, text: []byte(dest)}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := c.s.Request(ctx, p)
			out <- res{dest, r, err}
		}()
	}
	byID := map[string]string{}
	for range n {
		r := <-out
		if r.err != nil || r.resp.Status() != smpp.StatusOK {
			t.Fatalf("%s: %v %v", r.dest, r.resp, r.err)
		}
		byID[r.resp.CString(smpp.FieldMessageID)] = r.dest
	}
	if len(byID) != n {
		t.Fatalf("%d distinct message ids for %d submits", len(byID), n)
	}
	// A receipt's source_addr is the submit's destination: each message id must have been
	// returned to the request for that destination.
	for _, p := range c.waitDelivered(t, n) {
		v, _ := p.TLV(smpp.TagReceiptedMessageID)
		id := receiptID(v, p.ShortMessage())
		if want, got := byID[id], p.CString(smpp.FieldSourceAddr); want != got {
			t.Fatalf("message id %s was returned to the request for %s, but the SMSC gave it to %s", id, want, got)
		}
	}
}

func TestRouteForLongestPrefix(t *testing.T) {
	a := &Account{Route: "default", PrefixRoutes: []PrefixRoute{{Prefix: "44", Route: "uk"}, {Prefix: "+447700", Route: "test"}, {Prefix: "1", Route: "us"}}}
	for _, tc := range []struct{ dest, want string }{
		{"447700900123", "test"}, {"+447700900123", "test"}, {"441234", "uk"}, {"15551234", "us"}, {"33123", "default"}, {"", "default"}, {"4", "default"},
	} {
		if got := a.routeFor([]byte(tc.dest)); got != tc.want {
			t.Errorf("routeFor(%q) = %q, want %q", tc.dest, got, tc.want)
		}
	}
}

func TestCorrelatorHexDecimal(t *testing.T) {
	c := newCorrelator(100, time.Hour)
	o := origin{account: "bank", upstream: "carrier"}
	c.add("00A1B2C3", o) // hex message_id, zero-padded
	c.add("987654321", origin{account: "other"})
	for _, tc := range []struct {
		id   string
		want string
	}{
		{"00A1B2C3", "bank"}, {"a1b2c3", "bank"}, {"10597059", "bank"}, // 0xA1B2C3 in decimal
		{"987654321", "other"}, {"3ade68b1", "other"}, // 987654321 in hex
		{"unknown", ""},
	} {
		got, ok := c.lookup(tc.id)
		if got.account != tc.want || ok != (tc.want != "") {
			t.Errorf("lookup(%q) = %q %v, want %q", tc.id, got.account, ok, tc.want)
		}
	}
}

// serveRelay starts r and serves ESMEs on a 127.0.0.1 port; cleanup shuts both down.
func serveRelay(t testing.TB, ctx context.Context, r *Relay, sess smpp.Config, maxConns int) string {
	t.Helper()
	r.Start(ctx)
	srv := r.Server(sess, maxConns)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		srv.Shutdown(sctx)
		r.Close(sctx)
		<-done
	})
	return ln.Addr().String()
}
