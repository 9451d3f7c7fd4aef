package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/smppguard/smppguard/smpp"
)

func mustRun(t *testing.T, cfg Config) *Result {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkInvariants(t, res)
	return res
}

func checkInvariants(t *testing.T, res *Result) {
	t.Helper()
	if res.Sent != res.Responses+res.Timeouts {
		t.Errorf("Sent %d != Responses %d + Timeouts %d", res.Sent, res.Responses, res.Timeouts)
	}
	var errs int64
	for _, n := range res.ErrorsByStatus {
		errs += n
	}
	if res.Responses != res.OK+errs {
		t.Errorf("Responses %d != OK %d + errors %d", res.Responses, res.OK, errs)
	}
	if res.Latency.N != res.Responses {
		t.Errorf("Latency.N %d != Responses %d", res.Latency.N, res.Responses)
	}
	if l := res.Latency; l.N > 0 && !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.P50 > 0) {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
}

func TestCountExactAcrossBinds(t *testing.T) {
	s := newTestSMSC(t, smscOpts{record: true, enquire: true})
	const n = 1001
	res := mustRun(t, Config{Addr: s.addr(), SystemID: "bank", Password: "pw", Binds: 4, Window: 8, Count: n, Dest: "4477009*"})
	if res.Sent != n || res.Responses != n || res.OK != n || res.Timeouts != 0 {
		t.Fatalf("sent %d responses %d ok %d timeouts %d, want %d/%d/%d/0", res.Sent, res.Responses, res.OK, res.Timeouts, n, n, n)
	}
	if got := s.submits.Load(); got != n {
		t.Fatalf("SMSC received %d submits, want %d", got, n)
	}
	if res.MessageIDs != n {
		t.Fatalf("MessageIDs %d, want %d", res.MessageIDs, n)
	}
	if res.Throughput <= 0 || res.Elapsed <= 0 {
		t.Fatalf("throughput %v over %v", res.Throughput, res.Elapsed)
	}
	s.mu.Lock()
	dests := slices.Clone(s.dests)
	binds := s.binds[smpp.BindTransceiver]
	s.mu.Unlock()
	slices.Sort(dests)
	if len(slices.Compact(dests)) != n || dests[0] != "44770090000001" || dests[n-1] != fmt.Sprintf("4477009%07d", n) {
		t.Fatalf("destinations: %d distinct, from %q to %q", len(dests), dests[0], dests[len(dests)-1])
	}
	if binds != 4 || s.unbinds.Load() != 4 {
		t.Fatalf("%d binds, %d unbinds, want 4 and 4", binds, s.unbinds.Load())
	}
	// The SMSC's enquire_link (seq 2, like each bind's first submit) was answered, not
	// taken for a response.
	if got := s.enquireResps.Load(); got != 4 {
		t.Fatalf("%d enquire_link_resp, want 4", got)
	}
}

func TestWindowNeverExceeded(t *testing.T) {
	t.Run("filled", func(t *testing.T) {
		// The SMSC answers only once 5 submits are outstanding, after reading everything
		// already buffered: a sixth sent early would show in maxOut.
		s := newTestSMSC(t, smscOpts{hold: 5})
		res := mustRun(t, Config{Addr: s.addr(), Window: 5, Count: 200})
		if res.OK != 200 {
			t.Fatalf("ok %d, want 200", res.OK)
		}
		if got := s.maxOut.Load(); got != 5 {
			t.Fatalf("max outstanding at the SMSC %d, want exactly the window 5", got)
		}
	})
	t.Run("binds", func(t *testing.T) {
		s := newTestSMSC(t, smscOpts{})
		res := mustRun(t, Config{Addr: s.addr(), Binds: 3, Window: 4, Count: 3000})
		if res.OK != 3000 {
			t.Fatalf("ok %d, want 3000", res.OK)
		}
		if got := s.maxOut.Load(); got > 4 || got < 1 {
			t.Fatalf("max outstanding at the SMSC %d, want 1..4", got)
		}
	})
}

func TestErrorsByStatus(t *testing.T) {
	s := newTestSMSC(t, smscOpts{answer: func(n int64) (smpp.Status, bool) {
		switch {
		case n%25 == 0:
			return smpp.StatusSysErr, true // generic_nack
		case n%5 == 0:
			return smpp.StatusThrottled, false
		case n%7 == 0:
			return smpp.StatusMsgQFul, false
		}
		return smpp.StatusOK, false
	}})
	res := mustRun(t, Config{Addr: s.addr(), Binds: 2, Window: 7, Count: 100})
	want := map[string]int64{"ESME_RSYSERR": 4, "ESME_RTHROTTLED": 16, "ESME_RMSGQFUL": 12}
	if fmt.Sprint(res.ErrorsByStatus) != fmt.Sprint(want) {
		t.Fatalf("errors %v, want %v", res.ErrorsByStatus, want)
	}
	if res.OK != 68 || res.Responses != 100 || res.MessageIDs != 68 {
		t.Fatalf("ok %d responses %d ids %d, want 68/100/68", res.OK, res.Responses, res.MessageIDs)
	}
	var table bytes.Buffer
	res.WriteTable(&table)
	if !strings.Contains(table.String(), "ESME_RTHROTTLED 16") {
		t.Fatalf("table lacks the errors:\n%s", table.String())
	}
}

func TestTimeoutsCounted(t *testing.T) {
	s := newTestSMSC(t, smscOpts{drop: func(n int64) bool { return n%10 == 0 }})
	start := time.Now()
	res := mustRun(t, Config{Addr: s.addr(), Window: 10, Count: 100, Timeout: 300 * time.Millisecond})
	if res.Sent != 100 || res.Timeouts != 10 || res.Responses != 90 || res.OK != 90 {
		t.Fatalf("sent %d timeouts %d responses %d ok %d, want 100/10/90/90", res.Sent, res.Timeouts, res.Responses, res.OK)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 20*time.Second {
		t.Fatalf("run took %v", el)
	}
}

func TestReceipts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bindType string
		textOnly bool
	}{
		{"transceiver", BindTransceiver, false},
		{"text id", BindTransceiver, true},
		{"transmitter+receiver", BindTransmitter, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSMSC(t, smscOpts{dlr: true, dlrText: tc.textOnly, moEvery: 10})
			const n = 200
			res := mustRun(t, Config{Addr: s.addr(), BindType: tc.bindType, Binds: 2, Window: 10, Count: n,
				RegisteredDelivery: 1, WaitDLRs: 30 * time.Second})
			if res.OK != n || res.DLRs != n || res.DLRLatency.N != n || res.MOs != n/10 {
				t.Fatalf("ok %d receipts %d matched %d MOs %d, want %d/%d/%d/%d", res.OK, res.DLRs, res.DLRLatency.N, res.MOs, n, n, n, n/10)
			}
			if res.DLRLatency.P50 <= 0 || res.DLRLatency.Max < res.DLRLatency.P99 {
				t.Fatalf("receipt latency %+v", res.DLRLatency)
			}
			if got, want := s.deliverResps.Load(), int64(n+n/10); got != want {
				t.Fatalf("SMSC got %d deliver_sm_resp, want %d", got, want)
			}
			s.mu.Lock()
			binds := fmt.Sprint(s.binds)
			s.mu.Unlock()
			want := fmt.Sprint(map[smpp.CommandID]int{smpp.BindTransceiver: 2})
			if tc.bindType == BindTransmitter {
				want = fmt.Sprint(map[smpp.CommandID]int{smpp.BindTransmitter: 2, smpp.BindReceiver: 2})
			}
			if binds != want {
				t.Fatalf("binds %s, want %s", binds, want)
			}
		})
	}
}

func TestRateHonoured(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		s := newTestSMSC(t, smscOpts{})
		res := mustRun(t, Config{Addr: s.addr(), Binds: 2, Count: 200, Rate: 1000})
		// Message n is due (n-1)/Rate after the start: 200 messages take at least 199 ms.
		if res.OK != 200 || res.Elapsed < 190*time.Millisecond || res.Elapsed > 5*time.Second {
			t.Fatalf("ok %d in %v, want 200 in about 200ms", res.OK, res.Elapsed)
		}
	})
	t.Run("duration", func(t *testing.T) {
		s := newTestSMSC(t, smscOpts{})
		res := mustRun(t, Config{Addr: s.addr(), Duration: 300 * time.Millisecond, Rate: 2000})
		if res.Sent > 600 || res.Sent < 200 {
			t.Fatalf("sent %d in 300ms at 2000/s, want about 600 and never more", res.Sent)
		}
	})
}

func TestDurationClosedLoop(t *testing.T) {
	s := newTestSMSC(t, smscOpts{})
	start := time.Now()
	res := mustRun(t, Config{Addr: s.addr(), Binds: 2, Duration: 200 * time.Millisecond})
	if res.Sent == 0 || res.Timeouts != 0 || time.Since(start) > 10*time.Second {
		t.Fatalf("sent %d timeouts %d in %v", res.Sent, res.Timeouts, time.Since(start))
	}
}

func TestBindFailureNamesStatus(t *testing.T) {
	s := newTestSMSC(t, smscOpts{password: "secret"})
	res, err := Run(context.Background(), Config{Addr: s.addr(), SystemID: "bank", Password: "wrong", Binds: 2, Count: 10, Logger: zaptest.NewLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "ESME_RINVPASWD") {
		t.Fatalf("err %v, want one naming ESME_RINVPASWD", err)
	}
	var st smpp.Status
	if !errors.As(err, &st) || st != smpp.StatusInvPaswd {
		t.Fatalf("errors.As status %v", st)
	}
	if res != nil || s.submits.Load() != 0 {
		t.Fatalf("result %v, %d submits after a failed bind", res, s.submits.Load())
	}
}

func TestPartialBindFailureUnbindsTheOthers(t *testing.T) {
	s := newTestSMSC(t, smscOpts{rejectBind: func(k int) bool { return k == 2 }})
	res, err := Run(context.Background(), Config{Addr: s.addr(), Binds: 3, Count: 10, Logger: zaptest.NewLogger(t)})
	var st smpp.Status
	if res != nil || !errors.As(err, &st) || st != smpp.StatusBindFail || !strings.Contains(err.Error(), "ESME_RBINDFAIL") {
		t.Fatalf("res %v err %v, want ESME_RBINDFAIL", res, err)
	}
	if s.unbinds.Load() != 2 || s.submits.Load() != 0 {
		t.Fatalf("%d unbinds and %d submits, want the 2 good binds unbound and nothing sent", s.unbinds.Load(), s.submits.Load())
	}
}

func TestTemplate(t *testing.T) {
	s := newTestSMSC(t, smscOpts{record: true})
	tmpl, err := smpp.NewBuilder(smpp.SubmitSM, smpp.StatusOK, 99).CString("").Int(1).Int(1).CString("BANK").
		Int(1).Int(1).CString("441234567890").Int(0).Int(0).Int(0).CString("").CString("").
		Int(0).Int(0).Int(0).Int(0).ShortMessage([]byte("from a template")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(tmpl)
	res := mustRun(t, Config{Addr: s.addr(), Binds: 2, Count: 50, Template: tmpl})
	if res.OK != 50 {
		t.Fatalf("ok %d", res.OK)
	}
	if !bytes.Equal(tmpl, orig) {
		t.Fatal("Run modified the caller's Template")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dests {
		if d != "441234567890" {
			t.Fatalf("destination %q", d)
		}
	}
}

func TestCancelReturnsPartialResult(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newTestSMSC(t, smscOpts{onSubmit: func(n int64) {
		if n == 500 {
			cancel()
		}
	}})
	res, err := Run(ctx, Config{Addr: s.addr(), Binds: 2, Duration: time.Hour, Logger: zaptest.NewLogger(t)})
	if !errors.Is(err, context.Canceled) || res == nil {
		t.Fatalf("res %v err %v, want a result and context.Canceled", res, err)
	}
	checkInvariants(t, res)
	if res.Sent < 500 {
		t.Fatalf("sent %d, want at least 500", res.Sent)
	}
}

func TestConnectionLost(t *testing.T) {
	s := newTestSMSC(t, smscOpts{closeAfter: 50})
	res, err := Run(context.Background(), Config{Addr: s.addr(), Count: 1000, Timeout: 5 * time.Second, Logger: zaptest.NewLogger(t)})
	if err == nil || res == nil {
		t.Fatalf("res %v err %v, want a result and an error", res, err)
	}
	checkInvariants(t, res)
	if res.Sent >= 1000 || res.Responses >= 50 {
		t.Fatalf("sent %d responses %d after the SMSC closed at submit 50", res.Sent, res.Responses)
	}
}

func TestNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res, err := Run(context.Background(), Config{Addr: addr, Binds: 2, Count: 1, Timeout: time.Second})
	if res != nil || err == nil || !strings.Contains(err.Error(), "bind 0") {
		t.Fatalf("res %v err %v", res, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Count: 1}, "Addr"},
		{Config{Addr: "127.0.0.1:1"}, "Count or Duration"},
		{Config{Addr: "127.0.0.1:1", Count: 1, BindType: "receiver"}, "BindType"},
		{Config{Addr: "127.0.0.1:1", Count: 1, Rate: -1}, "Rate"},
		{Config{Addr: "127.0.0.1:1", Count: 1, Dest: "4477009000000000*"}, "20 characters"},
		{Config{Addr: "127.0.0.1:1", Count: 1, Template: []byte{0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1}}, "not a submit_sm"},
		{Config{Addr: "127.0.0.1:1", Count: 1, Source: strings.Repeat("9", 21)}, "source_addr"},
	} {
		_, err := Run(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want one mentioning %q", tc.cfg, err, tc.want)
		}
	}
}

func TestMainFlags(t *testing.T) {
	s := newTestSMSC(t, smscOpts{dlr: true, record: true})
	log := zaptest.NewLogger(t)
	var out bytes.Buffer
	err := Main(context.Background(), []string{"-addr", s.addr(), "-n", "50", "-binds", "2", "-window", "3",
		"-dst", "4477*", "-dlr=10s", "-json"}, &out, log)
	if err != nil {
		t.Fatalf("Main: %v", err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out.String())
	}
	if res.Sent != 50 || res.OK != 50 || res.DLRs != 50 || res.DLRLatency.N != 50 {
		t.Fatalf("result %+v", res)
	}
	s.mu.Lock()
	if !slices.Contains(s.dests, "44770000001") {
		t.Errorf("destinations %v lack 44770000001", s.dests[:5])
	}
	s.mu.Unlock()

	out.Reset()
	if err := Main(context.Background(), []string{"-addr", s.addr(), "-n", "7", "-text", "hi"}, &out, log); err != nil {
		t.Fatalf("Main: %v", err)
	}
	for _, want := range []string{"sent", "7", "latency", "p99"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := Main(context.Background(), []string{"-h"}, &out, log); err != nil || !strings.Contains(out.String(), "-system-id") {
		t.Fatalf("-h: err %v, usage:\n%s", err, out.String())
	}

	for _, args := range [][]string{
		{"-bogus"},
		{"-binds", "x"},
		{"-dlr=soon"},
		{"-addr", s.addr(), "-n", "1", "extra"},
		{"-addr", s.addr(), "-n", "1", "-bind-type", "receiver"},
	} {
		if err := Main(context.Background(), args, &out, log); err == nil {
			t.Errorf("Main(%q) succeeded, want an error", args)
		}
	}
}

func TestMainDurationDefaultsCountToZero(t *testing.T) {
	s := newTestSMSC(t, smscOpts{})
	var out bytes.Buffer
	if err := Main(context.Background(), []string{"-addr", s.addr(), "-duration", "100ms", "-json"}, &out, zaptest.NewLogger(t)); err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	// -n's default (1000) does not apply with -duration: the run is bounded by time only.
	if res.Sent == 0 || res.Elapsed < 100*time.Millisecond {
		t.Fatalf("sent %d in %v", res.Sent, res.Elapsed)
	}
}

func TestHistogramAccuracy(t *testing.T) {
	// Every value lands in a bucket whose reported value is within 0.4 % of it.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		v := rng.Int64N(1 << uint(rng.IntN(62)+1))
		low, width := bucketRange(bucketOf(v))
		if v < low || v >= low+width {
			t.Fatalf("value %d in bucket [%d, %d)", v, low, low+width)
		}
		mid := low + (width-1)/2
		if d := float64(mid-v) / float64(max(v, 1)); d > 0.004 || d < -0.004 {
			t.Fatalf("value %d reported as %d (%.3f%%)", v, mid, 100*d)
		}
	}
	if b := bucketOf(1<<63 - 1); b != numBuckets-1 {
		t.Fatalf("max int64 in bucket %d of %d", b, numBuckets)
	}
	for i := 1; i < numBuckets; i++ { // contiguous
		lo, w := bucketRange(i - 1)
		if next, _ := bucketRange(i); next != lo+w {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, next, lo+w)
		}
	}

	h := newHist()
	for v := int64(1); v <= 100000; v++ {
		h.Record(v * 1000) // 1 µs .. 100 ms, uniform
	}
	p := h.Percentiles()
	for _, c := range []struct {
		got  time.Duration
		want float64
	}{{p.P50, 50e6}, {p.P90, 90e6}, {p.P99, 99e6}, {p.P999, 99.9e6}, {p.Max, 100e6}} {
		if d := (float64(c.got) - c.want) / c.want; d > 0.01 || d < -0.01 {
			t.Errorf("percentile %v, want %v within 1%%", c.got, time.Duration(c.want))
		}
	}
	if p.N != 100000 || p.Max != 100*time.Millisecond {
		t.Errorf("%+v", p)
	}
}

func TestReceiptID(t *testing.T) {
	mk := func(text string, tlv string) *smpp.PDU {
		b := smpp.NewBuilder(smpp.DeliverSM, smpp.StatusOK, 1).CString("").Int(1).Int(1).CString("1").Int(1).Int(1).CString("2").
			Int(4).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).ShortMessage([]byte(text))
		if tlv != "" {
			b.TLVString(smpp.TagReceiptedMessageID, tlv)
		}
		p, err := b.PDU()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ text, tlv, want string }{
		{"id:abc sub:001 stat:DELIVRD", "", "abc"},
		{"id:abc", "", "abc"},
		{"xid:no id:yes stat:DELIVRD", "", "yes"},
		{"id:text stat:DELIVRD", "tlv", "tlv"},
		{"no id here", "", ""},
	} {
		if got := string(receiptID(mk(tc.text, tc.tlv))); got != tc.want {
			t.Errorf("receiptID(%q, %q) = %q, want %q", tc.text, tc.tlv, got, tc.want)
		}
	}
}

// BenchmarkRun measures the generator against the in-test SMSC over loopback: b.N submits
// per run, both sides on the same machine (the SMSC batches and allocates nothing per
// submit, so allocs/op is the generator's). The mix variants send benchMix (a concat is 2 of
// the b.N submits; when b.N would split one, the run ends a submit short).
func BenchmarkRun(b *testing.B) {
	const benchMix = "plain=70,otp-cached=20,otp-uncached=5,concat=3,ucs2=2"
	mix, err := ParseMix(benchMix)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		binds, window int
		mix           bool
	}{{1, 10, false}, {1, 100, false}, {2, 100, false}, {4, 50, false}, {1, 100, true}, {4, 50, true}} {
		name := fmt.Sprintf("binds=%d/window=%d", bc.binds, bc.window)
		cfg := Config{Binds: bc.binds, Window: bc.window, Dest: "4477009*"}
		if bc.mix {
			name += "/mix"
			cfg.Mix = mix
		}
		b.Run(name, func(b *testing.B) {
			s := newTestSMSC(b, smscOpts{})
			cfg.Addr, cfg.Count = s.addr(), b.N
			b.ReportAllocs()
			b.ResetTimer()
			res, err := Run(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if res.OK != res.Sent || res.Sent < int64(b.N)-1 || (!bc.mix && res.Sent != int64(b.N)) {
				b.Fatalf("ok %d, sent %d of %d", res.OK, res.Sent, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
			b.ReportMetric(float64(res.Latency.P99.Microseconds()), "p99-µs")
		})
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		999:                     "999ns",
		32895:                   "32.9µs",
		2367487:                 "2.367ms",
		12984356:                "12.98ms",
		90*time.Second + 123456: "1m30s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%d) = %q, want %q", int64(d), got, want)
		}
	}
}
