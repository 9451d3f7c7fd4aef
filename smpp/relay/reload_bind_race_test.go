package relay

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// heldSMSC accepts one connection, reports the bind it reads, answers it ESME_ROK when
// release is closed, then answers unbind and enquire_link and ignores the rest.
func heldSMSC(t *testing.T) (addr string, gotBind <-chan struct{}, release chan<- struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got, rel := make(chan struct{}), make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fr := smpp.NewFrameReader(c, 0)
		for first := true; ; first = false {
			frame, err := fr.ReadFrame()
			if err != nil {
				return
			}
			p, err := smpp.Parse(frame)
			if err != nil {
				return
			}
			var resp []byte
			switch {
			case first && p.ID().IsBind():
				close(got)
				select {
				case <-rel:
				case <-time.After(10 * time.Second):
					return
				}
				resp, _ = smpp.BindResponse(p, smpp.StatusOK, "held")
			case p.ID() == smpp.Unbind || p.ID() == smpp.EnquireLink:
				resp = smpp.HeaderOnly(p.ID().Response(), smpp.StatusOK, p.Seq())
			}
			if resp != nil {
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}
	}()
	return ln.Addr().String(), got, rel
}

// A pass-through bind still being dialled when a reload removes its account completes and
// is then unbound, like the sessions that were already bound: it does not stay bound to an
// account that no longer exists.
func TestReloadRemovesAccountWhileItBinds(t *testing.T) {
	addr, gotBind, release := heldSMSC(t)
	var cfg Config
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Upstreams = append(c.Upstreams, Upstream{Name: "held", Addr: addr, Session: c.Upstreams[0].Session})
		c.Accounts = append(c.Accounts, Account{SystemID: "late", Mode: PassThrough, Upstream: "held", QueueMax: 10})
		cfg = *c
	})
	type bindResult struct {
		c   *esmeClient
		err error
	}
	res := make(chan bindResult, 1)
	go func() {
		c, _, err := bindESME(t, e.addr, smpp.BindTransceiver, "late", "any")
		res <- bindResult{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-gotBind:
	case <-ctx.Done():
		t.Fatal("the bind was not forwarded")
	}
	rep, err := e.relay.Reload(ctx, withoutAccount(cfg, "late"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.SessionsUnbound != 0 {
		t.Fatalf("report %+v: the bind was not complete yet", rep)
	}
	close(release)
	var r bindResult
	select {
	case r = <-res:
	case <-ctx.Done():
		t.Fatal("no bind_resp")
	}
	if r.err != nil {
		t.Fatalf("bind: %v (the SMSC accepted it)", r.err)
	}
	select {
	case <-r.c.s.Done():
	case <-ctx.Done():
		t.Fatal("a session of the removed account stayed bound")
	}
	// Unbound (bind_resp, then our unbind), not dropped.
	if rx := r.c.s.Counters().RxPDUs; rx != 2 {
		t.Fatalf("the ESME read %d PDUs, want its bind_resp and an unbind", rx)
	}
}
