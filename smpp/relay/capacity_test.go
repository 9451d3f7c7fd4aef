package relay

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// capacityEnv is a relay in front of a fake SMSC whose ESME-side sessions use sess.
type capacityEnv struct {
	smsc  *fakesmsc.Server
	relay *Relay
	addr  string
}

func newCapacityEnv(t *testing.T, fc fakesmsc.Config, sess, upSess smpp.Config, maxConns int, linkWait time.Duration) *capacityEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fc.Accounts = map[string]string{"proxy": "secret"}
	fc.NoRecord = true
	smsc, err := fakesmsc.Start(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smsc.Close() })
	cfg := Config{
		Upstreams: []Upstream{{Name: "carrier", Addr: smsc.Addr(), Session: upSess, Bind: smpp.BindParams{SystemID: "proxy", Password: "secret"},
			Binds: 2, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}},
		Routes: map[string]string{"default": "carrier"},
		Accounts: []Account{
			// MaxBinds 0: unlimited.
			{SystemID: "bank", Password: "pw", Route: "default", QueueMax: 1000, QueueTTL: time.Hour},
		},
		DLRMatchWait: time.Second,
		LinkWait:     linkWait,
		Logger:       zap.NewNop(), // tens of thousands of sessions: keep the test log quiet
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveRelay(t, ctx, r, sess, maxConns)
	e := &capacityEnv{smsc: smsc, relay: r, addr: addr}
	e.waitLinks(t)
	return e
}

func (e *capacityEnv) waitLinks(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l := e.relay.Links()["carrier"]; l != nil && len(l.Sessions()) == 2 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("pooled link did not come up")
}

// capacityEnsureFDs makes sure this process may open need file descriptors, raising the soft (and,
// if allowed, the hard) RLIMIT_NOFILE. It reports the limit it ended with.
func capacityEnsureFDs(need uint64) (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	if rl.Cur >= need {
		return rl.Cur, true
	}
	want := rl
	want.Cur = need
	if want.Max < need {
		want.Max = need
	}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
		return need, true
	}
	if rl.Max > rl.Cur { // the hard limit could not be raised: take what it allows
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur, rl.Cur >= need
}

// capacityReadFrame reads one SMPP frame from a raw connection without a buffered reader.
func capacityReadFrame(c net.Conn) ([]byte, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 16 || n > 64*1024 {
		return nil, fmt.Errorf("bad command_length %d", n)
	}
	f := make([]byte, n)
	copy(f, hdr[:])
	if _, err := io.ReadFull(c, f[16:]); err != nil {
		return nil, err
	}
	return f, nil
}

// capacityRawBind opens a TCP connection to addr, sends one bind_transceiver and returns the
// connection once the relay accepted it.
func capacityRawBind(addr string, frame []byte) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(frame); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := capacityReadFrame(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	if h, _ := smpp.ParseHeader(resp); h.ID != smpp.BindTransceiverResp || h.Status != smpp.StatusOK {
		c.Close()
		return nil, fmt.Errorf("bind refused: %v", h)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

const (
	idleHelperAddr = "SMPPGUARD_IDLE_HELPER_ADDR"
	idleHelperN    = "SMPPGUARD_IDLE_HELPER_N"
)

// TestIdleSessionsClientHelper is not a test: TestIdleSessionsMemory runs the test binary
// again with it as the process holding the ESME ends of the connections, so that the
// memory and goroutines measured in the relay's process are the relay's alone (and the
// two ends do not share one file-descriptor limit). It binds N raw connections, prints
// "BOUND n", and holds them until its stdin closes.
func TestIdleSessionsClientHelper(t *testing.T) {
	addr := os.Getenv(idleHelperAddr)
	if addr == "" {
		t.Skip("helper process of TestIdleSessionsMemory")
	}
	n, err := strconv.Atoi(os.Getenv(idleHelperN))
	if err != nil || n <= 0 {
		fmt.Printf("ERROR bad %s\n", idleHelperN)
		os.Exit(2)
	}
	if lim, ok := capacityEnsureFDs(uint64(n) + 256); !ok {
		fmt.Printf("ERROR fd limit %d < %d\n", lim, n+256)
		os.Exit(2)
	}
	frame, err := smpp.BindParams{SystemID: "bank", Password: "pw"}.Encode(smpp.BindTransceiver, 1)
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		os.Exit(2)
	}
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				c, err := capacityRawBind(addr, frame)
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Sprintf("bind %d: %v", i, err))
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		fmt.Printf("ERROR %s\n", e)
		os.Exit(2)
	}
	fmt.Printf("BOUND %d\n", n)
	io.Copy(io.Discard, os.Stdin) // until the parent closes our stdin (or dies)
	for _, c := range conns {
		c.Close()
	}
	os.Exit(0) // do not print the test framework's PASS lines into the parent's scanner
}

func capacityHeapStackInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// capacitySettleGoroutines waits (bounded) until the goroutine count is at most want, and returns
// the last count seen.
func capacitySettleGoroutines(want int, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// N idle bound ESME sessions: what each costs in memory and goroutines, and everything is
// given back when they go.
func TestIdleSessionsMemory(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	if lim, ok := capacityEnsureFDs(uint64(n) + 512); !ok {
		t.Skipf("need %d file descriptors for %d sessions; RLIMIT_NOFILE allows %d and could not be raised", n+512, n, lim)
	}
	sess := smpp.Config{EnquireLinkInterval: -1, ResponseTimeout: 5 * time.Second}
	e := newCapacityEnv(t, fakesmsc.Config{}, sess, smpp.Config{ResponseTimeout: 3 * time.Second, EnquireLinkInterval: -1}, n+100, time.Second)

	time.Sleep(50 * time.Millisecond) // let the links' start-up goroutines settle
	g0 := runtime.NumGoroutine()
	m0 := capacityHeapStackInUse()

	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleSessionsClientHelper$", "-test.count=1", "-test.timeout=120s")
	cmd.Env = append(os.Environ(), idleHelperAddr+"="+e.addr, idleHelperN+"="+strconv.Itoa(n), "GORACE=atexit_sleep_ms=0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stopHelper := func() {
		if stopped {
			return
		}
		stopped = true
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stopHelper)

	start := time.Now()
	timeout := time.After(90 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("client helper ended before binding:\n%s", stderr.String())
			}
			if strings.HasPrefix(l, "ERROR") {
				t.Fatalf("client helper: %s", l)
			}
			if l == fmt.Sprintf("BOUND %d", n) {
				break wait
			}
		case <-timeout:
			t.Fatalf("client helper did not bind %d sessions in 90 s", n)
		}
	}
	bindTime := time.Since(start)
	if got := len(e.relay.Sessions("bank")); got != n {
		t.Fatalf("relay has %d bound sessions, want %d", got, n)
	}
	g1 := runtime.NumGoroutine()
	m1 := capacityHeapStackInUse()
	perMem := float64(int64(m1)-int64(m0)) / float64(n)
	perG := float64(g1-g0) / float64(n)
	t.Logf("%d idle bound sessions (bound in %s): heap+stack in use %.1f MiB -> %.1f MiB = %.0f bytes (%.1f KiB) per session; goroutines %d -> %d = %.2f per session",
		n, bindTime.Round(time.Millisecond), float64(m0)/(1<<20), float64(m1)/(1<<20), perMem, perMem/1024, g0, g1, perG)
	// Today a session costs about 96 KiB: its reader's and writer's 32 KiB buffers, three
	// goroutine stacks and its queues. The bound is generous; it catches a regression (a
	// fourth goroutine, a per-session buffer) rather than asserting the current figure.
	if perMem >= 128*1024 {
		t.Errorf("%.0f bytes per idle session, want < 128 KiB", perMem)
	}
	if g1-g0 > 3*n+16 { // a few unrelated goroutines (timers, GC workers) may come and go
		t.Errorf("%.2f goroutines per idle session, want <= 3", perG)
	}

	// Everything is given back when the ESMEs hang up.
	stopHelper()
	deadline := time.Now().Add(20 * time.Second)
	for len(e.relay.Sessions("bank")) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(e.relay.Sessions("bank")); got != 0 {
		t.Fatalf("%d sessions still bound after the clients hung up", got)
	}
	if g := capacitySettleGoroutines(g0+5, 20*time.Second); g > g0+5 {
		t.Fatalf("goroutines %d after close, baseline %d", g, g0)
	}
}

// Pooled, 1000 requests in flight when the SMSC drops every connection: each request gets
// exactly one response (none lost, none duplicated), ESME_ROK or ESME_RSYSERR, and the link
// comes back.
func TestUpstreamKilled1000InFlight(t *testing.T) {
	const n = 1000
	// The ESME side must accept 1000 outstanding requests, and each upstream bind must be
	// able to carry them all at once.
	sess := smpp.Config{EnquireLinkInterval: -1, ResponseTimeout: 5 * time.Second, Window: n + 100, PeerWindow: n + 100}
	up := smpp.Config{EnquireLinkInterval: -1, ResponseTimeout: 5 * time.Second, Window: n}
	e := newCapacityEnv(t, fakesmsc.Config{ResponseDelay: 300 * time.Millisecond}, sess, up, 0, 5*time.Second)

	bind, err := smpp.BindParams{SystemID: "bank", Password: "pw"}.Encode(smpp.BindTransceiver, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := capacityRawBind(e.addr, bind)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The reader counts responses per sequence number until told to stop.
	var mu sync.Mutex
	counts := map[uint32]int{}
	statuses := map[smpp.Status]int{}
	var others []string
	readerDone := make(chan error, 1)
	got := make(chan struct{}, 1)
	go func() {
		for {
			f, err := capacityReadFrame(c)
			if err != nil {
				readerDone <- err
				return
			}
			h, _ := smpp.ParseHeader(f)
			mu.Lock()
			if h.ID == smpp.SubmitSMResp {
				counts[h.Seq]++
				statuses[h.Status]++
			} else {
				others = append(others, h.String())
			}
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}()
	responded := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(counts)
	}
	waitResponded := func(want int, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for responded() < want {
			select {
			case <-got:
			case <-time.After(20 * time.Millisecond):
			case err := <-readerDone:
				t.Fatalf("ESME connection: %v (%d of %d answered)", err, responded(), want)
			case <-deadline:
				t.Fatalf("%d of %d requests answered within %s", responded(), want, within)
			}
		}
	}

	// All 1000 go out at once, one write.
	var out []byte
	for i := 1; i <= n; i++ {
		f := submitFrame(t, smOpt{text: []byte("x")})
		binary.BigEndian.PutUint32(f[12:16], uint32(i))
		out = append(out, f...)
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.smsc.Stats().Submits < n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	atSMSC := e.smsc.Stats().Submits
	if atSMSC < n {
		t.Fatalf("the SMSC received %d of %d submits", atSMSC, n)
	}
	answeredBeforeDrop := responded()
	e.smsc.DropConnections()

	waitResponded(n, 15*time.Second)
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive by now
	mu.Lock()
	lost, dup := 0, 0
	for i := 1; i <= n; i++ {
		switch k := counts[uint32(i)]; {
		case k == 0:
			lost++
		case k > 1:
			dup += k - 1
		}
	}
	stray := len(counts) - (n - lost)
	ok, sysErr := statuses[smpp.StatusOK], statuses[smpp.StatusSysErr]
	st := fmt.Sprint(statuses)
	otherPDUs := append([]string(nil), others...)
	mu.Unlock()
	t.Logf("sent %d, at the SMSC %d, answered before the drop %d; responses %d (ESME_ROK %d, ESME_RSYSERR %d; all statuses %s); lost %d, duplicated %d, unknown seq %d",
		n, atSMSC, answeredBeforeDrop, ok+sysErr+dup, ok, sysErr, st, lost, dup, stray)
	if lost != 0 || dup != 0 || stray != 0 {
		t.Fatalf("lost %d, duplicated %d, unknown %d", lost, dup, stray)
	}
	if ok+sysErr != n {
		t.Fatalf("statuses %s: want only ESME_ROK and ESME_RSYSERR", st)
	}
	if len(otherPDUs) > 0 {
		t.Fatalf("unexpected PDUs: %v", otherPDUs)
	}
	if sysErr == 0 {
		t.Fatal("no request was in flight when the SMSC dropped")
	}

	// The link reconnects (with backoff) and a new submit succeeds.
	e.waitLinks(t)
	f := submitFrame(t, smOpt{text: []byte("after")})
	binary.BigEndian.PutUint32(f[12:16], n+1)
	if _, err := c.Write(f); err != nil {
		t.Fatal(err)
	}
	waitResponded(n+1, 10*time.Second)
	mu.Lock()
	k, okAfter, stAfter := counts[n+1], statuses[smpp.StatusOK], fmt.Sprint(statuses)
	mu.Unlock()
	if k != 1 {
		t.Fatalf("after reconnect: %d responses", k)
	}
	if okAfter != ok+1 {
		t.Fatalf("after reconnect: not ESME_ROK (statuses %s)", stAfter)
	}
}
