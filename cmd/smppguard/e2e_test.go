package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gosmpp "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
	"github.com/smppguard/smppguard/testharness/loadgen"
)

// binPath is the smppguard binary built once for the end-to-end tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "smppguard-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "smppguard")
	if out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building smppguard: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binCommand runs the test binary without the race detector's one-second pause at exit.
func binCommand(args ...string) *exec.Cmd {
	c := exec.Command(binPath, args...)
	c.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	return c
}

// proc is a running smppguard binary.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	admin  string // admin API address, when the banner printed one
	mu     sync.Mutex
	stderr strings.Builder
	exited chan error
}

var (
	listenRE = regexp.MustCompile(`listening on (\S+)`)
	adminRE  = regexp.MustCompile(`admin API: http://(\S+)`)
)

// startBinary runs smppguard with args and waits for its "listening on" banner line.
func startBinary(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := binCommand(args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan error, 1)}
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.stderr.Write(b)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrCh := make(chan string, 1)
	adminCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrCh <- m[1]:
				default:
				}
			}
			if m := adminRE.FindStringSubmatch(sc.Text()); m != nil {
				adminCh <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("smppguard stderr:\n%s", p.logs())
		}
	})
	select {
	case p.addr = <-addrCh:
		select { // the admin line follows the listening line when there is one
		case p.admin = <-adminCh:
		case <-time.After(200 * time.Millisecond):
		}
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("smppguard exited before listening: %v\n%s", err, p.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("smppguard did not start\n%s", p.logs())
	}
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// stop sends SIGTERM and returns the exit error (nil for exit status 0).
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("smppguard did not exit within 20 s of SIGTERM")
		return nil
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// startSMSC runs a fake SMSC in the test process.
func startSMSC(t *testing.T, cfg fakesmsc.Config) *fakesmsc.Server {
	t.Helper()
	cfg.Accounts = map[string]string{"proxy": "secret", "pt": "ptpw"}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := fakesmsc.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); cancel() })
	return s
}

func writeConfig(t *testing.T, smscAddr string) string {
	t.Helper()
	cfg := fmt.Sprintf(`listen:
  smpp: 127.0.0.1:0
session:
  response_timeout: 5s
upstreams:
  - name: carrier
    address: %s
    system_id: proxy
    password: secret
    binds: 2
    reconnect_min: 50ms
    reconnect_max: 500ms
routes:
  - name: default
    upstream: carrier
accounts:
  - system_id: bank
    password: bankpw
    route: default
  - system_id: pt
    mode: passthrough
    upstream: carrier
mo_rules:
  - destination_prefix: ""
    account: bank
relay:
  drain_timeout: 5s
admin:
  listen: 127.0.0.1:0
log:
  level: warn
`, smscAddr)
	path := filepath.Join(t.TempDir(), "smppguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// An SMPP client we did not write (go-smpp) binds to the proxy, submits and gets its receipt,
// in both account modes.
func TestE2EGoSMPPInterop(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{DLRDelay: 50 * time.Millisecond})
	p := startBinary(t, "serve", "-c", writeConfig(t, smsc.Addr()))
	for _, acct := range []struct{ user, pw string }{{"bank", "bankpw"}, {"pt", "ptpw"}} {
		t.Run(acct.user, func(t *testing.T) {
			receipts := make(chan pdu.Body, 4)
			tc := &gosmpp.Transceiver{Addr: p.addr, User: acct.user, Passwd: acct.pw, RespTimeout: 5 * time.Second,
				Handler: func(b pdu.Body) {
					if b.Header().ID == pdu.DeliverSMID {
						receipts <- b
					}
				}}
			status := tc.Bind()
			select {
			case st := <-status:
				if st.Status() != gosmpp.Connected {
					t.Fatalf("go-smpp bind: %v", st.Error())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("go-smpp bind timed out")
			}
			defer tc.Close()
			sm, err := tc.Submit(&gosmpp.ShortMessage{Src: "BANK", Dst: "447700900123", Text: pdutext.Raw("Your code is 123456"),
				Register: pdufield.FinalDeliveryReceipt})
			if err != nil {
				t.Fatalf("submit: %v", err)
			}
			id := sm.RespID()
			if id == "" {
				t.Fatal("no message_id")
			}
			select {
			case b := <-receipts:
				v := b.TLVFields()[pdutlv.TagReceiptedMessageID]
				if v == nil || !strings.HasPrefix(string(v.Bytes()), id) {
					t.Fatalf("receipt for %v, want %s", v, id)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no receipt")
			}
		})
	}
}

// The load generator through the real binary: every submit answered, every receipt back,
// and the SMSC got exactly what was sent.
func TestE2ELoadThroughBinary(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{})
	p := startBinary(t, "serve", "-c", writeConfig(t, smsc.Addr()))
	for _, acct := range []struct{ user, pw string }{{"bank", "bankpw"}, {"pt", "ptpw"}} {
		t.Run(acct.user, func(t *testing.T) {
			before := smsc.Stats().Submits
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const n = 2000
			res, err := loadgen.Run(ctx, loadgen.Config{Addr: p.addr, SystemID: acct.user, Password: acct.pw, Binds: 2, Window: 50,
				Count: n, RegisteredDelivery: 1, WaitDLRs: 20 * time.Second, Dest: "4477009*"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != n || res.OK != n || res.Timeouts != 0 || res.MessageIDs != n {
				t.Fatalf("sent %d ok %d timeouts %d ids %d errors %v", res.Sent, res.OK, res.Timeouts, res.MessageIDs, res.ErrorsByStatus)
			}
			if res.DLRs != n {
				t.Fatalf("%d receipts for %d messages", res.DLRs, n)
			}
			if got := smsc.Stats().Submits - before; got != n {
				t.Fatalf("SMSC got %d submits, want %d", got, n)
			}
		})
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// Protocol errors at the proxy's port, through the real binary.
func TestE2EProtocolErrors(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{})
	p := startBinary(t, "serve", "-c", writeConfig(t, smsc.Addr()))
	dial := func(t *testing.T) (net.Conn, *smpp.FrameReader) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, smpp.NewFrameReader(c, 0)
	}
	read := func(t *testing.T, fr *smpp.FrameReader) smpp.Header {
		t.Helper()
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		h, _ := smpp.ParseHeader(f)
		return h
	}
	t.Run("submit before bind", func(t *testing.T) {
		c, fr := dial(t)
		f, _ := smpp.NewBuilder(smpp.SubmitSM, 0, 7).CString("").Int(0).Int(0).CString("A").Int(0).Int(0).CString("B").
			Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).ShortMessage([]byte("x")).Bytes()
		c.Write(f)
		if h := read(t, fr); h.ID != smpp.SubmitSMResp || h.Status != smpp.StatusInvBndSts || h.Seq != 7 {
			t.Fatalf("got %v", h)
		}
	})
	t.Run("unknown command then session continues", func(t *testing.T) {
		c, fr := dial(t)
		c.Write(smpp.HeaderOnly(0x00000099, 0, 8))
		if h := read(t, fr); h.ID != smpp.GenericNack || h.Status != smpp.StatusInvCmdID || h.Seq != 8 {
			t.Fatalf("got %v", h)
		}
		c.Write(smpp.HeaderOnly(smpp.EnquireLink, 0, 9))
		if h := read(t, fr); h.ID != smpp.EnquireLinkResp || h.Seq != 9 {
			t.Fatalf("got %v", h)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		c, fr := dial(t)
		f, _ := smpp.BindParams{SystemID: "bank", Password: "nope"}.Encode(smpp.BindTransceiver, 10)
		c.Write(f)
		if h := read(t, fr); h.ID != smpp.BindTransceiverResp || h.Status != smpp.StatusInvPaswd || h.Seq != 10 {
			t.Fatalf("got %v", h)
		}
	})
	t.Run("truncated body", func(t *testing.T) {
		c, fr := dial(t)
		f, _ := smpp.BindParams{SystemID: "bank", Password: "bankpw"}.Encode(smpp.BindTransceiver, 11)
		f = f[:20] // cut inside system_id, length fixed up: a complete but malformed frame
		f[3] = 20
		c.Write(f)
		if h := read(t, fr); h.ID != smpp.BindTransceiverResp || h.Status != smpp.StatusInvSysID || h.Seq != 11 {
			t.Fatalf("got %v", h)
		}
	})
	t.Run("oversized frame", func(t *testing.T) {
		c, fr := dial(t)
		h := smpp.HeaderOnly(smpp.SubmitSM, 0, 12)
		h[0] = 0x7F // command_length ~2 GB
		c.Write(h)
		if got := read(t, fr); got.ID != smpp.GenericNack || got.Status != smpp.StatusInvCmdLen || got.Seq != 12 {
			t.Fatalf("got %v", got)
		}
		if _, err := fr.ReadFrame(); !errors.Is(err, io.EOF) && err == nil {
			t.Fatal("connection not closed")
		}
	})
}

func TestE2ECheckConfig(t *testing.T) {
	good := writeConfig(t, "127.0.0.1:2776")
	out, err := binCommand("check-config", "-c", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("valid config: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen:\n  smpp: 127.0.0.1:2775\nsession:\n  windw: 10\n"), 0o600)
	out, err = binCommand("check-config", "-c", bad).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "bad.yaml:4") || !strings.Contains(string(out), "windw") {
		t.Fatalf("invalid config: %v\n%s", err, out)
	}
}

// The README's first command: `smppguard serve` with no flags is a working sandbox on
// 127.0.0.1:2775 with an in-process fake SMSC; SIGTERM stops it with exit status 0.
func TestE2ESandboxDefault(t *testing.T) {
	for _, a := range []string{"127.0.0.1:2775", "127.0.0.1:2776", "127.0.0.1:8080", "127.0.0.1:8089"} {
		if ln, err := net.Listen("tcp", a); err != nil {
			t.Skipf("sandbox port %s busy on this machine: %v", a, err)
		} else {
			ln.Close()
		}
	}
	p := startBinary(t, "serve")
	if p.addr != "127.0.0.1:2775" {
		t.Fatalf("sandbox listens on %s", p.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := loadgen.Run(ctx, loadgen.Config{Addr: p.addr, SystemID: "bank", Password: "bankpw", Count: 100, Window: 10,
		RegisteredDelivery: 1, WaitDLRs: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 100 || res.DLRs != 100 {
		t.Fatalf("sandbox: ok %d receipts %d errors %v", res.OK, res.DLRs, res.ErrorsByStatus)
	}
	// The three demo OTPs the banner suggests, and what the admin API recorded for them.
	for _, demo := range []struct{ dst, want string }{
		{"447700900003", "ESME_ROK"}, {"447700900001", "ESME_RSUBMITFAIL"}, {"447700900002", "ESME_ROK"},
	} {
		out, err := binCommand("send", "-dst", demo.dst, "-dlr", "0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), demo.want) {
			t.Fatalf("send to %s: %v\n%s", demo.dst, err, out)
		}
	}
	resp, err := http.Get("http://127.0.0.1:8080/api/v1/decisions?account=bank")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"destination":"********0003"`, `"action":"reject"`, `"action":"reroute"`, `"route":"voice"`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("sandbox decisions lack %s:\n%s", want, body)
		}
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// Graceful drain: SIGTERM with requests in flight. Each gets its real response, new requests
// on an existing bind get ESME_RTHROTTLED, new connections are refused, and the process
// exits 0 within the drain timeout.
func TestE2EDrain(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{ResponseDelay: 700 * time.Millisecond})
	p := startBinary(t, "serve", "-c", writeConfig(t, smsc.Addr()))
	c := bindTRX(t, p.addr, "bank", "bankpw")
	const n = 50
	results := make(chan *smpp.PDU, n)
	for range n {
		go func() {
			r, err := c.submitErr(sm{dest: numClean, text: []byte("hello")})
			if err != nil {
				t.Errorf("in-flight request: %v", err)
			}
			results <- r
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for smsc.Stats().Submits < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	for time.Now().Before(deadline) { // the listener closes first
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			break
		}
		conn.Close()
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if r, err := c.submitErr(sm{dest: numClean, text: []byte("late")}); err != nil || r.Status() != smpp.StatusThrottled {
		t.Fatalf("submit during drain: %v %v, want ESME_RTHROTTLED", r, err)
	}
	for range n {
		r := <-results
		if r == nil || r.Status() != smpp.StatusOK {
			t.Fatalf("in-flight request answered %v", r)
		}
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after drain")
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("drain took %s", el)
	}
}

// A second signal during a drain exits at once.
func TestE2ESecondSignalExitsAtOnce(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{ResponseDelay: 20 * time.Second})
	p := startBinary(t, "serve", "-c", writeConfig(t, smsc.Addr()))
	c := bindTRX(t, p.addr, "bank", "bankpw")
	go c.submitErr(sm{dest: numClean, text: []byte("stuck")})
	deadline := time.Now().Add(5 * time.Second)
	for smsc.Stats().Submits < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("exit %v, want status 2", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("second signal did not exit at once")
	}
	_ = start
}
