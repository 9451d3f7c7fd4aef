package relay_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/smpp/relay"
	"github.com/smppguard/smppguard/smpp/relay/boltstore"
	"github.com/smppguard/smppguard/testharness/loadgen"
)

// countingSMSC answers binds, enquire_links, unbinds and submit_sm (with a fresh hex
// message_id each, as SMSCs do) and sends no receipts: the relay's submit path alone.
func countingSMSC(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	var next atomic.Uint64
	next.Store(0x1000000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveCounting(c, &next)
		}
	}()
	return ln.Addr().String()
}

func serveCounting(c net.Conn, next *atomic.Uint64) {
	defer c.Close()
	r, w := bufio.NewReaderSize(c, 64*1024), bufio.NewWriterSize(c, 64*1024)
	hdr := make([]byte, 16)
	var body []byte
	for {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
		if _, err := io.ReadFull(r, hdr); err != nil {
			return
		}
		l := int(binary.BigEndian.Uint32(hdr))
		if l < 16 || l > 64*1024 {
			return
		}
		body = append(body[:0], make([]byte, l-16)...)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		id := smpp.CommandID(binary.BigEndian.Uint32(hdr[4:]))
		var out []byte
		switch {
		case id == smpp.SubmitSM:
			out = append(out, 0, 0, 0, 0, 0x80, 0, 0, 4, 0, 0, 0, 0)
			out = append(out, hdr[12:16]...)
			out = strconv.AppendUint(out, next.Add(1), 16)
			out = append(out, 0)
		case id.IsBind():
			out = append(out, 0, 0, 0, 0, 0x80, 0, 0, byte(id), 0, 0, 0, 0)
			out = append(out, hdr[12:16]...)
			out = append(out, 0)
		case id == smpp.EnquireLink || id == smpp.Unbind:
			out = append(out, 0, 0, 0, 0, 0x80, 0, 0, byte(id), 0, 0, 0, 0)
			out = append(out, hdr[12:16]...)
		default:
			continue
		}
		binary.BigEndian.PutUint32(out, uint32(len(out)))
		if _, err := w.Write(out); err != nil {
			return
		}
	}
}

// startRelay runs a relay with one pooled upstream (two binds) to an SMSC at smscAddr and
// account bank/pw, with corr as its durable correlations (nil: memory only). It returns the
// address ESMEs bind to.
func startRelay(tb testing.TB, smscAddr string, corr relay.CorrStore) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sess := smpp.Config{Window: 100, EnquireLinkInterval: -1}
	r, err := relay.New(relay.Config{
		Upstreams:    []relay.Upstream{{Name: "carrier", Addr: smscAddr, Session: sess, Bind: smpp.BindParams{SystemID: "proxy"}, Binds: 2}},
		Routes:       map[string]string{"default": "carrier"},
		Accounts:     []relay.Account{{SystemID: "bank", Password: "pw", Route: "default"}},
		Correlations: corr,
		Logger:       zap.NewNop(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	r.Start(ctx)
	srv := r.Server(sess, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(served) }()
	tb.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Shutdown(sctx)
		r.Close(sctx)
		cancel()
		<-served
	})
	deadline := time.Now().Add(5 * time.Second)
	for l := r.Links()["carrier"]; l == nil || len(l.Sessions()) < 2; l = r.Links()["carrier"] {
		if time.Now().After(deadline) {
			tb.Fatal("pooled link did not come up")
		}
		time.Sleep(time.Millisecond)
	}
	return ln.Addr().String()
}

// openCorr opens a bbolt store in a temporary directory and starts its correlations.
func openCorr(tb testing.TB) *boltstore.Correlations {
	tb.Helper()
	st, err := boltstore.Open(filepath.Join(tb.TempDir(), "store.db"), boltstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	corr := st.Correlations()
	tb.Cleanup(func() {
		corr.Close()
		st.Close()
	})
	return corr
}

type ignoreRequests struct{}

func (ignoreRequests) ServePDU(s *smpp.Session, p *smpp.PDU) {
	if p.ID().HasResponse() {
		s.Respond(p, smpp.StatusOK, "")
	}
}

// checkStored checks, as each submit_sm_resp arrives at the ESME, that its correlation is
// already in the bbolt file.
type checkStored struct {
	corr                  *boltstore.Correlations
	wg                    *sync.WaitGroup
	mu                    sync.Mutex
	ok, missing, notOK    int
	firstMissing, lastErr string
}

func (c *checkStored) HandleResponse(_ smpp.Ref, p *smpp.PDU, err error) {
	defer c.wg.Done()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil:
		c.notOK++
		c.lastErr = err.Error()
	case p.Status() != smpp.StatusOK:
		c.notOK++
		c.lastErr = p.Status().String()
	default:
		id := p.CString(smpp.FieldMessageID)
		if _, _, found := c.corr.Get("carrier\x00" + strings.ToLower(strings.TrimLeft(id, "0"))); found {
			c.ok++
		} else {
			c.missing++
			if c.firstMissing == "" {
				c.firstMissing = id
			}
		}
	}
}

// With a bbolt store, every ESME_ROK submit_sm_resp an ESME receives has its correlation
// in the file already (what a SIGKILL right then would leave): submits pipelined over a
// window of 100, so that correlations are committed in groups.
func TestDurableBoltResponseMeansStored(t *testing.T) {
	corr := openCorr(t)
	addr := startRelay(t, countingSMSC(t), corr)
	bind, _ := smpp.BindParams{SystemID: "bank", Password: "pw"}.Encode(smpp.BindTransceiver, 0)
	bp, _ := smpp.Parse(bind)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _, err := smpp.Dial(ctx, addr, bp, ignoreRequests{}, smpp.Config{Window: 100, ResponseTimeout: 10 * time.Second, EnquireLinkInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 1000
	var wg sync.WaitGroup
	chk := &checkStored{corr: corr, wg: &wg}
	for i := range n {
		f, err := smpp.NewBuilder(smpp.SubmitSM, smpp.StatusOK, 0).CString("").Int(5).Int(0).CString("BANK").Int(1).Int(1).
			CString("4477009" + strconv.Itoa(100000+i)).Int(0).Int(0).Int(0).CString("").CString("").Int(1).Int(0).Int(0).Int(0).
			ShortMessage([]byte("code")).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		p, _ := smpp.Parse(f)
		wg.Add(1)
		if err := s.Send(ctx, p, chk, smpp.Ref{}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if chk.ok != n || chk.missing != 0 || chk.notOK != 0 {
		t.Fatalf("%d stored, %d answered ESME_ROK before their correlation was stored (first %s), %d failed (%s)",
			chk.ok, chk.missing, chk.firstMissing, chk.notOK, chk.lastErr)
	}
	if c := corr.Commits(); c >= n {
		t.Fatalf("%d commits for %d correlations: not grouped", c, n)
	} else {
		t.Logf("%d correlations in %d commits", n, c)
	}
}

// BenchmarkDurableSubmits: pooled submits asking for a receipt (registered_delivery 1) through
// an in-process relay, correlations in memory only ("mem") or also in a bbolt file ("bolt":
// each submit_sm_resp waits for the group commit of its correlation, one fsync per group).
// The bolt figure depends on the disk under TMPDIR. The load is closed-loop with 200
// submits in flight, so the throughput is 200 / (round trip + commit): more ESME binds or
// a larger window make larger groups, not more commits.
func BenchmarkDurableSubmits(b *testing.B) {
	for _, mode := range []string{"mem", "bolt"} {
		b.Run(mode, func(b *testing.B) {
			var corr relay.CorrStore
			var bolt *boltstore.Correlations
			if mode == "bolt" {
				bolt = openCorr(b)
				corr = bolt
			}
			addr := startRelay(b, countingSMSC(b), corr)
			ctx := context.Background()
			cfg := loadgen.Config{Addr: addr, SystemID: "bank", Password: "pw", Binds: 2, Window: 100, RegisteredDelivery: 1, Logger: zap.NewNop()}
			cfg.Count = 2000 // warm-up
			if _, err := loadgen.Run(ctx, cfg); err != nil {
				b.Fatal(err)
			}
			cfg.Count = b.N
			b.ReportAllocs()
			b.ResetTimer()
			res, err := loadgen.Run(ctx, cfg)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if res.OK != int64(b.N) {
				b.Fatalf("ok %d of %d: %v", res.OK, b.N, res.ErrorsByStatus)
			}
			b.ReportMetric(res.Throughput, "submits/s")
			b.ReportMetric(float64(res.Latency.P50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(res.Latency.P99.Microseconds()), "p99-µs")
			if bolt != nil {
				b.ReportMetric(float64(b.N+2000)/float64(bolt.Commits()), "corr/commit")
			}
		})
	}
}
