// Package tcprelay is the simplest possible TCP relay: every accepted connection is paired
// with one dialled to a fixed address and bytes are copied both ways (io.Copy, which
// splices on Linux). It knows nothing about SMPP.
//
// It exists only as a yardstick for `smppguard bench`: the throughput of "load generator →
// tcprelay → fake SMSC" is the ceiling of any proxy that adds one more process and two more
// sockets to the path on the same machine, so smppguard's rows can be read against it as
// well as against the direct baseline.
package tcprelay

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
)

// Relay copies every connection accepted on its listener to a new connection to To.
type Relay struct {
	To string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool // Serve is ending: new pairs are refused
	wg     sync.WaitGroup
}

// Serve accepts on ln until ctx is done or ln fails, then closes every relayed connection
// and returns once all copies have ended.
func (r *Relay) Serve(ctx context.Context, ln net.Listener) error {
	r.mu.Lock()
	r.conns = make(map[net.Conn]struct{})
	r.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			break
		}
		r.wg.Add(1)
		go r.pair(ctx, c)
	}
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("tcprelay: accept: %w", err)
}

// track registers a pair's connections so Serve can close them; false once Serve is ending.
func (r *Relay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	for _, c := range cs {
		r.conns[c] = struct{}{}
	}
	return true
}

func (r *Relay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		delete(r.conns, c)
	}
}

func (r *Relay) pair(ctx context.Context, in net.Conn) {
	defer r.wg.Done()
	defer in.Close()
	var d net.Dialer
	out, err := d.DialContext(ctx, "tcp", r.To)
	if err != nil {
		return
	}
	defer out.Close()
	if !r.track(in, out) {
		return
	}
	defer r.untrack(in, out)
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		// Pass the half-close on, as a transparent relay must.
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(out, in)
	go cp(in, out)
	<-done
	// One side ended: end the other too.
	in.Close()
	out.Close()
	<-done
}
