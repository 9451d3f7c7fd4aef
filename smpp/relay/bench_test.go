package relay

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/loadgen"
)

// zeroAllocSMSC answers binds, enquire_links and submit_sm from preallocated buffers, so a
// benchmark's allocations are the relay's own.
func zeroAllocSMSC(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveZeroAlloc(c)
		}
	}()
	return ln.Addr().String()
}

func serveZeroAlloc(c net.Conn) {
	defer c.Close()
	in := make([]byte, 256*1024)
	out := make([]byte, 0, 256*1024)
	resp := []byte{0, 0, 0, 0x1A, 0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 'm', 's', 'g', '-', '0', '0', '0', '0', '1', 0}
	var have int
	for {
		n, err := c.Read(in[have:])
		if err != nil {
			return
		}
		have += n
		off := 0
		out = out[:0]
		for have-off >= 16 {
			l := int(binary.BigEndian.Uint32(in[off:]))
			if l < 16 || l > len(in) {
				return
			}
			if have-off < l {
				break
			}
			id := smpp.CommandID(binary.BigEndian.Uint32(in[off+4:]))
			seq := in[off+12 : off+16]
			switch {
			case id == smpp.SubmitSM:
				start := len(out)
				out = append(out, resp...)
				copy(out[start+12:], seq)
			case id.IsBind():
				start := len(out)
				out = append(out, 0, 0, 0, 0x11, 0x80, 0, 0, byte(id), 0, 0, 0, 0, 0, 0, 0, 0, 0)
				copy(out[start+12:], seq)
			case id == smpp.EnquireLink || id == smpp.Unbind:
				start := len(out)
				out = append(out, 0, 0, 0, 16, 0x80, 0, 0, byte(id), 0, 0, 0, 0, 0, 0, 0, 0)
				copy(out[start+12:], seq)
			}
			off += l
		}
		copy(in, in[off:have])
		have -= off
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}
}

// BenchmarkRelay drives submits through an in-process relay with the zero-allocation load
// generator and SMSC; allocs/op are the relay's per submit (a submit_sm and its response:
// two relayed PDUs).
func BenchmarkRelay(b *testing.B) {
	for _, mode := range []struct{ name, sys, pw string }{{"pooled", "bank", "pw"}, {"passthrough", "pt", "ptpw"}} {
		b.Run(mode.name, func(b *testing.B) {
			smscAddr := zeroAllocSMSC(b)
			sess := smpp.Config{Window: 100, EnquireLinkInterval: -1}
			r, err := New(Config{
				Upstreams: []Upstream{{Name: "carrier", Addr: smscAddr, Session: sess, Bind: smpp.BindParams{SystemID: "proxy"}, Binds: 2}},
				Routes:    map[string]string{"default": "carrier"},
				Accounts: []Account{
					{SystemID: "bank", Password: "pw", Route: "default"},
					{SystemID: "pt", Mode: PassThrough, Upstream: "carrier"},
				},
				Logger: zap.NewNop(),
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r.Start(ctx)
			defer r.Close(context.Background())
			srv := r.Server(sess, 0)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(ctx, ln)
			defer srv.Shutdown(context.Background())
			for l := r.Links()["carrier"]; !l.Ready(); {
				time.Sleep(time.Millisecond)
			}
			cfg := loadgen.Config{Addr: ln.Addr().String(), SystemID: mode.sys, Password: mode.pw, Binds: 2, Window: 100, Logger: zap.NewNop()}
			cfg.Count = 2000 // warm-up: binds, maps and buffers at their steady size
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
		})
	}
}

var _ = io.EOF
