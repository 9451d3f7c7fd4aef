package smpp

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flappySMSC accepts every bind and closes the connection right behind its bind_resp,
// except while hold is set: then the bind stays up until drop is called.
type flappySMSC struct {
	ln   net.Listener
	hold atomic.Bool
	mu   sync.Mutex
	kept net.Conn
	wg   sync.WaitGroup
}

func startFlappySMSC(t *testing.T) *flappySMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flappySMSC{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.drop()
		f.wg.Wait()
	})
	return f
}

func (f *flappySMSC) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fr := NewFrameReader(c, 0)
	b, err := fr.ReadFrame()
	if err != nil {
		c.Close()
		return
	}
	bind, err := Parse(b)
	if err != nil {
		c.Close()
		return
	}
	resp, _ := BindResponse(bind, StatusOK, "smsc")
	if !f.hold.Load() {
		c.Write(resp)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	f.mu.Lock()
	f.kept = c
	f.mu.Unlock()
	c.Write(resp)
}

// isKept reports whether s is the client end of the held connection.
func (f *flappySMSC) isKept(s *Session) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kept != nil && f.kept.RemoteAddr().String() == s.conn.LocalAddr().String()
}

func (f *flappySMSC) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.kept != nil {
		f.kept.Close()
		f.kept = nil
	}
}

// A bind that drops at once counts as a failed attempt: the reconnect backoff grows (with
// full jitter, within [d/2, d]) up to ReconnectMax instead of restarting from ReconnectMin
// after each bind. A bind that stayed up for StableBind restarts it. The clock and the
// sleep are injected: the test sees every backoff as an event and waits for none.
func TestLinkBackoffGrowsUntilStableBind(t *testing.T) {
	smsc := startFlappySMSC(t)
	const minD, maxD = 100 * time.Millisecond, 1600 * time.Millisecond
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	bound := make(chan *Session, 64)
	l := NewLink(LinkConfig{Addr: smsc.ln.Addr().String(), Bind: BindParams{SystemID: "proxy"},
		ReconnectMin: minD, ReconnectMax: maxD, Session: Config{EnquireLinkInterval: -1},
		OnBind: func(_ *Link, s *Session, err error) {
			if err == nil {
				bound <- s
			}
		}})
	waits := make(chan time.Duration)
	l.now = func() time.Time { return time.Unix(0, clock.Load()) }
	l.sleep = func(ctx context.Context, d time.Duration) bool {
		select {
		case waits <- d:
			return true
		case <-ctx.Done():
			return false
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); l.Close(context.Background()) }()
	l.Start(ctx)

	next := func() time.Duration {
		t.Helper()
		select {
		case d := <-waits:
			return d
		case <-time.After(5 * time.Second):
			t.Fatal("no reconnect")
			return 0
		}
	}
	inJitter := func(i int, d, base time.Duration) {
		t.Helper()
		if d < base/2 || d > base {
			t.Fatalf("backoff %d: %s, want within [%s, %s]", i, d, base/2, base)
		}
	}
	// Binds dropped at once: 100, 200, 400, 800, 1600 ms, then capped at 1600 ms.
	base := minD
	for i := range 7 {
		d := next()
		inJitter(i, d, base)
		base = min(2*base, maxD)
	}
	// A bind that stays up for StableBind, then drops: back to ReconnectMin.
	smsc.hold.Store(true)
	// A reconnect already under way may still be dropped at once: wait for the held bind
	// (OnBind runs once the link took the bind's start time).
	for held := false; !held; {
		select {
		case s := <-bound:
			held = smsc.isKept(s)
		case d := <-waits:
			inJitter(-1, d, maxD)
		case <-time.After(5 * time.Second):
			t.Fatal("no bind held")
		}
	}
	smsc.hold.Store(false)
	clock.Add(int64(l.cfg.StableBind()))
	smsc.drop()
	inJitter(100, next(), minD)
	inJitter(101, next(), 2*minD) // and it grows again from there
	if got := l.cfg.StableBind(); got != 30*time.Second {
		t.Fatalf("StableBind %s with ReconnectMax %s, want 30 s", got, maxD)
	}
}
