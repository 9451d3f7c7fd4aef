package relay

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// Connections refused at listen.max_connections are counted (Server.Refused); Conns counts
// the open ones, bound or not.
func TestServerCountsRefusalsAtMaxConns(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := e.relay.Server(smpp.Config{ResponseTimeout: 3 * time.Second, EnquireLinkInterval: -1}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Shutdown(sctx)
		<-done
	}()
	mustBind(t, ln.Addr().String(), smpp.BindTransceiver, "bank", "pw")
	if n := srv.Conns(); n != 1 {
		t.Fatalf("Conns %d, want 1", n)
	}
	for i := range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("connection %d over the limit was not closed", i+2)
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Refused() != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.Refused(); n != 2 {
		t.Fatalf("Refused %d, want 2", n)
	}
	if s := e.relay.Stats(); s.BindsRefused != 0 {
		t.Errorf("a refused connection counted as a refused bind (%d)", s.BindsRefused)
	}
}
