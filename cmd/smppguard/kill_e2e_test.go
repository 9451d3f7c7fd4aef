package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smppguard/smppguard/cmd/smppguard/admin"
	"github.com/smppguard/smppguard/smpp"
)

// Real-process fault test: the fake SMSC and smppguard each run as their own process, and the
// SMSC is SIGKILLed with 1,000 submit_sm in flight through the proxy.

const (
	killInFlight     = 1000
	killReconnectMin = 100 * time.Millisecond
	killReconnectMax = 800 * time.Millisecond
	killBinds        = 2
)

func killConfig(t *testing.T, smscAddr string) string {
	t.Helper()
	// response_timeout is far beyond the test, so the in-flight requests can only end by
	// the kill; link_wait is short so a submit during the outage is answered quickly.
	cfg := fmt.Sprintf(`listen:
  smpp: 127.0.0.1:0
session:
  window: 2000
  response_timeout: 60s
upstreams:
  - name: carrier
    address: %s
    system_id: proxy
    password: secret
    binds: %d
    reconnect_min: %s
    reconnect_max: %s
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
relay:
  link_wait: 500ms
  drain_timeout: 2s
admin:
  listen: 127.0.0.1:0
log:
  level: warn
`, smscAddr, killBinds, killReconnectMin, killReconnectMax)
	path := filepath.Join(t.TempDir(), "smppguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// killESME is a raw ESME on the codec: it pipelines submit_sm and counts every response per
// sequence number. It answers the proxy's enquire_link and deliver_sm itself.
type killESME struct {
	t  *testing.T
	c  net.Conn
	wm sync.Mutex // serialises writes

	mu      sync.Mutex
	resps   map[uint32][]smpp.Status // statuses per sequence number, in arrival order
	nacks   int                      // generic_nack among them
	total   int
	other   []string // PDUs that are neither responses to our submits nor keepalives
	changed chan struct{}
	readErr error
	done    chan struct{}
}

func killDialESME(t *testing.T, addr string) *killESME {
	t.Helper()
	return killDialESMEAs(t, addr, "bank", "bankpw")
}

func killDialESMEAs(t *testing.T, addr, systemID, password string) *killESME {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e := &killESME{t: t, c: c, resps: map[uint32][]smpp.Status{}, changed: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { c.Close(); <-e.done })
	bind, err := smpp.BindParams{SystemID: systemID, Password: password}.Encode(smpp.BindTransceiver, 1)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(bind); err != nil {
		t.Fatal(err)
	}
	fr := smpp.NewFrameReader(c, smpp.DefaultMaxPDUSize)
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	if h, err := smpp.ParseHeader(f); err != nil || h.ID != smpp.BindTransceiverResp || h.Status != smpp.StatusOK {
		t.Fatalf("bind: %v %v", h, err)
	}
	c.SetDeadline(time.Time{})
	go e.read(fr)
	return e
}

func (e *killESME) write(b []byte) error {
	e.wm.Lock()
	defer e.wm.Unlock()
	e.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := e.c.Write(b)
	return err
}

func (e *killESME) read(fr *smpp.FrameReader) {
	defer close(e.done)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			e.mu.Lock()
			e.readErr = err
			close(e.changed)
			e.changed = make(chan struct{})
			e.mu.Unlock()
			return
		}
		h, err := smpp.ParseHeader(f)
		if err != nil {
			e.mu.Lock()
			e.other = append(e.other, fmt.Sprintf("unparsable header % x", f[:min(len(f), 16)]))
			e.mu.Unlock()
			continue
		}
		switch h.ID {
		case smpp.SubmitSMResp, smpp.GenericNack:
			e.mu.Lock()
			e.resps[h.Seq] = append(e.resps[h.Seq], h.Status)
			e.total++
			if h.ID == smpp.GenericNack {
				e.nacks++
			}
			close(e.changed)
			e.changed = make(chan struct{})
			e.mu.Unlock()
		case smpp.EnquireLink:
			e.write(smpp.HeaderOnly(smpp.EnquireLinkResp, smpp.StatusOK, h.Seq))
		case smpp.EnquireLinkResp:
		case smpp.DeliverSM:
			resp, _ := smpp.NewBuilder(smpp.DeliverSMResp, smpp.StatusOK, h.Seq).CString("").Bytes()
			e.write(resp)
			fallthrough
		default:
			e.mu.Lock()
			e.other = append(e.other, fmt.Sprintf("%s seq=%d status=%s", h.ID, h.Seq, h.Status))
			e.mu.Unlock()
		}
	}
}

// submitFrame is a submit_sm without a receipt request, with sequence number seq.
func killSubmitFrame(t *testing.T, seq uint32) []byte {
	t.Helper()
	b, err := smpp.NewBuilder(smpp.SubmitSM, smpp.StatusOK, seq).CString("").Int(5).Int(0).CString("BANK").Int(1).Int(1).
		CString(fmt.Sprintf("4477009%05d", seq%100000)).Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).
		ShortMessage([]byte(fmt.Sprintf("kill test %d", seq))).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// counts returns the number of responses so far.
func (e *killESME) counts() (total int, changed <-chan struct{}, readErr error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total, e.changed, e.readErr
}

// waitTotal waits until n responses arrived in all, or fails after d.
func (e *killESME) waitTotal(n int, d time.Duration) {
	e.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		total, changed, readErr := e.counts()
		if total >= n {
			return
		}
		if readErr != nil {
			e.t.Fatalf("ESME connection ended after %d of %d responses: %v", total, n, readErr)
		}
		select {
		case <-changed:
		case <-timer.C:
			e.t.Fatalf("%d of %d responses after %s", total, n, d)
		}
	}
}

// statuses returns the statuses received for seq.
func (e *killESME) statuses(seq uint32) []smpp.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]smpp.Status(nil), e.resps[seq]...)
}

// request sends one submit_sm with sequence number seq and returns its first response status.
// tally counts the responses to sequence numbers 1..n: requests with none (lost), with more
// than one (duplicated), and responses by status.
func (e *killESME) tally(n uint32) (lost, dup int, byStatus map[smpp.Status]int) {
	byStatus = map[smpp.Status]int{}
	for seq := uint32(1); seq <= n; seq++ {
		sts := e.statuses(seq)
		switch {
		case len(sts) == 0:
			lost++
		case len(sts) > 1:
			dup++
		}
		for _, st := range sts {
			byStatus[st]++
		}
	}
	return lost, dup, byStatus
}

func (e *killESME) request(seq uint32, d time.Duration) smpp.Status {
	e.t.Helper()
	if err := e.write(killSubmitFrame(e.t, seq)); err != nil {
		e.t.Fatalf("submit seq %d: %v", seq, err)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		e.mu.Lock()
		got, changed, readErr := e.resps[seq], e.changed, e.readErr
		e.mu.Unlock()
		if len(got) > 0 {
			return got[0]
		}
		if readErr != nil {
			e.t.Fatalf("submit seq %d: connection ended: %v", seq, readErr)
		}
		select {
		case <-changed:
		case <-timer.C:
			e.t.Fatalf("submit seq %d: no response within %s", seq, d)
		}
	}
}

// startFakeSMSCProcess runs `smppguard fake-smsc` as its own process on listen (127.0.0.1:0
// for any port); startBinary stops it in t.Cleanup.
func startFakeSMSCProcess(t *testing.T, listen string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"fake-smsc", "-listen", listen, "-account", "proxy:secret", "-account", "pt:ptpw"}, extra...)
	p := startBinary(t, args...)
	if !strings.HasPrefix(p.addr, "127.0.0.1:") {
		t.Fatalf("fake-smsc listens on %s, want 127.0.0.1", p.addr)
	}
	return p
}

// killSubmitsRecorded counts the submit_sm lines in a fake-smsc -record file.
func killSubmitsRecorded(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r struct {
			Command string `json:"command"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Command == "submit_sm" { // a partly flushed last line is skipped
			n++
		}
	}
	return n
}

func killLinks(t *testing.T, p *proc) []admin.LinkInfo {
	t.Helper()
	code, body := adminCall(t, p, "GET", "/api/v1/links", "")
	if code != http.StatusOK {
		t.Fatalf("/api/v1/links: %d %s", code, body)
	}
	var lr admin.LinksResponse
	if err := json.Unmarshal(body, &lr); err != nil {
		t.Fatalf("/api/v1/links: %v: %s", err, body)
	}
	return lr.Links
}

// killWaitLinks polls the links until ok holds for every slot, or fails after d.
func killWaitLinks(t *testing.T, p *proc, d time.Duration, what string, ok func(admin.LinkInfo) bool) []admin.LinkInfo {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		links := killLinks(t, p)
		all := len(links) == killBinds
		for _, l := range links {
			all = all && ok(l)
		}
		if all {
			return links
		}
		if time.Now().After(deadline) {
			t.Fatalf("links not %s after %s: %+v", what, d, links)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killMetric sums the samples of the metric name (any labels) on /metrics.
func killMetric(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	code, body := adminCall(t, p, "GET", "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	sum, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		sum += v
		found = true
	}
	if !found {
		t.Fatalf("/metrics has no %s", name)
	}
	return sum
}

// killWaitMetric polls the metric until it equals want, or fails after d.
func killWaitMetric(t *testing.T, p *proc, name string, want float64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for v := killMetric(t, p, name); v != want; v = killMetric(t, p, name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after %s, want %v", name, v, d, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killMaxDials bounds the dials a slot can make within d when each wait before a dial is at
// least half the exponential backoff (full jitter in [b/2, b)).
func killMaxDials(d time.Duration) int {
	n, spent := 0, time.Duration(0)
	for i := 0; i < 1000; i++ {
		b := killReconnectMin << min(i, 20)
		if b > killReconnectMax {
			b = killReconnectMax
		}
		spent += b / 2
		if spent > d {
			break
		}
		n++
	}
	return n
}

// The fake SMSC process is SIGKILLed while it holds 1,000 submit_sm relayed by the smppguard
// process. Every one of the 1,000 gets exactly one response, ESME_RSYSERR (the documented
// status for a request in flight on an upstream bind that drops); a submit during the outage
// gets ESME_RTHROTTLED after relay.link_wait; the link redials with backoff (not in a tight
// loop) and rebinds as soon as a new fake SMSC process listens on the same address, and
// traffic resumes with ESME_ROK.
func TestE2EKillSMSCProcessWithRequestsInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes and relays 1,000 requests")
	}
	record := filepath.Join(t.TempDir(), "smsc1.jsonl")
	// The first SMSC holds every submit_sm_resp for 10 minutes: nothing is answered before the kill.
	smsc := startFakeSMSCProcess(t, "127.0.0.1:0", "-response-delay", "10m", "-record", record, "-no-record")
	smscAddr := smsc.addr
	p := startBinary(t, "serve", "-c", killConfig(t, smscAddr))
	if p.admin == "" {
		t.Fatal("no admin address in the smppguard banner")
	}
	killWaitLinks(t, p, 15*time.Second, "bound", func(l admin.LinkInfo) bool { return l.State == "BOUND_TRX" })

	esme := killDialESME(t, p.addr)
	var burst bytes.Buffer
	for seq := uint32(1); seq <= killInFlight; seq++ {
		burst.Write(killSubmitFrame(t, seq))
	}
	if err := esme.write(burst.Bytes()); err != nil {
		t.Fatalf("writing %d submit_sm: %v", killInFlight, err)
	}

	// Event: the SMSC process has received (and recorded) all 1,000 submit_sm.
	deadline := time.Now().Add(30 * time.Second)
	received := 0
	for received = killSubmitsRecorded(t, record); received < killInFlight; received = killSubmitsRecorded(t, record) {
		if time.Now().After(deadline) {
			t.Fatalf("the SMSC process received %d of %d submit_sm within 30 s", received, killInFlight)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if received != killInFlight {
		t.Fatalf("the SMSC process received %d submit_sm, %d were sent", received, killInFlight)
	}
	before, _, _ := esme.counts()
	if before != 0 {
		t.Fatalf("%d responses before the kill: the requests were not all in flight", before)
	}
	upstreamInFlight := 0
	for _, l := range killLinks(t, p) {
		upstreamInFlight += l.InFlight
	}
	if upstreamInFlight != killInFlight {
		t.Fatalf("smppguard has %d requests in flight upstream, want %d", upstreamInFlight, killInFlight)
	}
	// The proxy's own accounting of the ESME's requests (relay.max_in_flight, per account).
	for _, m := range []string{"smppguard_requests_in_flight", "smppguard_esme_requests_in_flight"} {
		if v := killMetric(t, p, m); v != killInFlight {
			t.Fatalf("%s = %v before the kill, want %d", m, v, killInFlight)
		}
	}

	// SIGKILL the SMSC process.
	killedAt := time.Now()
	if err := smsc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-smsc.exited:
		smsc.exited <- err // for the cleanup
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("fake SMSC exit: %v, want killed by SIGKILL", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fake SMSC process not dead 10 s after SIGKILL")
	}

	esme.waitTotal(killInFlight, 30*time.Second)
	answeredIn := time.Since(killedAt)
	// Every answer released its in-flight slot, exactly once (a leak would throttle the
	// proxy for good after relay.max_in_flight failures; a double release would let it overrun).
	for _, m := range []string{"smppguard_requests_in_flight", "smppguard_esme_requests_in_flight"} {
		killWaitMetric(t, p, m, 0, 5*time.Second)
	}

	// The links go down, and a submit during the outage is throttled (the SMSC never saw it).
	killWaitLinks(t, p, 10*time.Second, "down", func(l admin.LinkInfo) bool { return l.State == "DOWN" })
	const outageSeq = killInFlight + 1
	if st := esme.request(outageSeq, 10*time.Second); st != smpp.StatusThrottled {
		t.Fatalf("submit during the outage: %s, want ESME_RTHROTTLED", st)
	}
	// Each slot redials and fails at least twice (the drop counts once) before the SMSC is back.
	killWaitLinks(t, p, 10*time.Second, "redialling", func(l admin.LinkInfo) bool {
		return l.State == "DOWN" && l.Reconnects >= 3 && l.LastError != ""
	})
	downLinks := killLinks(t, p)

	// A new SMSC process on the same address; the link rebinds with no intervention.
	restartAt := time.Now()
	smsc2 := startFakeSMSCProcess(t, smscAddr)
	if smsc2.addr != smscAddr {
		t.Fatalf("second fake SMSC on %s, want %s", smsc2.addr, smscAddr)
	}
	upLinks := killWaitLinks(t, p, 15*time.Second, "bound again", func(l admin.LinkInfo) bool { return l.State == "BOUND_TRX" })
	rebindIn := time.Since(restartAt)
	outage := time.Since(killedAt)
	if code, body := adminCall(t, p, "GET", "/readyz", ""); code != http.StatusOK {
		t.Fatalf("/readyz after the rebind: %d %s", code, body)
	}

	// Backoff, not a tight loop: no slot dialled more often than the minimum waits allow.
	maxReconnects := uint64(1 + killMaxDials(outage) + 1) // the drop, the failed dials, slack for one
	for _, l := range upLinks {
		if l.Reconnects > maxReconnects {
			t.Errorf("slot %d: %d reconnects in a %s outage, backoff allows at most %d", l.Slot, l.Reconnects, outage.Round(time.Millisecond), maxReconnects)
		}
	}

	// Traffic resumes.
	const afterSeq = killInFlight + 2
	if st := esme.request(afterSeq, 10*time.Second); st != smpp.StatusOK {
		t.Fatalf("submit after the rebind: %s, want ESME_ROK", st)
	}
	for _, m := range []string{"smppguard_requests_in_flight", "smppguard_esme_requests_in_flight"} {
		killWaitMetric(t, p, m, 0, 5*time.Second)
	}

	// Count per sequence number, after the last response: a late duplicate would be here.
	lost, dup, bySt := esme.tally(killInFlight)
	byStatus := map[string]int{}
	for st, n := range bySt {
		byStatus[st.String()] = n
	}
	for _, seq := range []uint32{outageSeq, afterSeq} {
		if n := len(esme.statuses(seq)); n != 1 {
			t.Errorf("seq %d: %d responses, want 1", seq, n)
		}
	}
	total, _, _ := esme.counts()
	responded := killInFlight - lost
	esme.mu.Lock()
	nacks, other := esme.nacks, append([]string(nil), esme.other...)
	esme.mu.Unlock()
	statuses := make([]string, 0, len(byStatus))
	for st, n := range byStatus {
		statuses = append(statuses, fmt.Sprintf("%s=%d", st, n))
	}
	sort.Strings(statuses)
	reconnects := func(links []admin.LinkInfo) string {
		var s []string
		for _, l := range links {
			s = append(s, fmt.Sprintf("slot %d: %d", l.Slot, l.Reconnects))
		}
		return strings.Join(s, ", ")
	}
	t.Logf("SIGKILL of the fake SMSC process with %d submit_sm in flight (all %d recorded by the SMSC, %d in flight upstream in smppguard, 0 answered before the kill; smppguard_requests_in_flight 1000 -> 0): sent=%d responded=%d lost=%d duplicated=%d statuses: %s; all answered %s after the kill",
		killInFlight, received, upstreamInFlight, killInFlight, responded, lost, dup, strings.Join(statuses, " "), answeredIn.Round(time.Millisecond))
	t.Logf("outage: submit answered ESME_RTHROTTLED; reconnects while down (%s), at rebind (%s; backoff bound %d); rebound %s after starting the new SMSC process (its start included), outage %s; submit after: ESME_ROK; responses on the connection: %d",
		reconnects(downLinks), reconnects(upLinks), maxReconnects, rebindIn.Round(time.Millisecond), outage.Round(time.Millisecond), total)

	if lost != 0 || dup != 0 {
		t.Errorf("lost=%d duplicated=%d, want 0 and 0", lost, dup)
	}
	if n := byStatus[smpp.StatusSysErr.String()]; n != killInFlight {
		t.Errorf("%d of %d in-flight requests answered ESME_RSYSERR (statuses: %s)", n, killInFlight, strings.Join(statuses, " "))
	}
	if nacks != 0 || len(other) != 0 {
		t.Errorf("unexpected PDUs: %d generic_nack, other: %v", nacks, other)
	}
	if total != killInFlight+2 {
		t.Errorf("%d responses on the connection, want %d", total, killInFlight+2)
	}
}

// The fake SMSC process answers with random delays (0-3 s, out of order) and is SIGKILLed
// once 300 of 1,000 submit_sm were answered: the answers racing the kill are relayed once
// and the rest get ESME_RSYSERR once; nothing is lost or duplicated.
func TestE2EKillSMSCProcessMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two processes and relays 1,000 requests")
	}
	const answeredBeforeKill = 300
	smsc := startFakeSMSCProcess(t, "127.0.0.1:0", "-response-jitter", "3s", "-no-record")
	p := startBinary(t, "serve", "-c", killConfig(t, smsc.addr))
	if p.admin == "" {
		t.Fatal("no admin address in the smppguard banner")
	}
	killWaitLinks(t, p, 15*time.Second, "bound", func(l admin.LinkInfo) bool { return l.State == "BOUND_TRX" })
	esme := killDialESME(t, p.addr)
	var burst bytes.Buffer
	for seq := uint32(1); seq <= killInFlight; seq++ {
		burst.Write(killSubmitFrame(t, seq))
	}
	if err := esme.write(burst.Bytes()); err != nil {
		t.Fatalf("writing %d submit_sm: %v", killInFlight, err)
	}
	esme.waitTotal(answeredBeforeKill, 30*time.Second)
	atKill, _, _ := esme.counts()
	if err := smsc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-smsc.exited:
		smsc.exited <- err
	case <-time.After(10 * time.Second):
		t.Fatal("fake SMSC process not dead 10 s after SIGKILL")
	}
	esme.waitTotal(killInFlight, 30*time.Second)
	// A late duplicate would be queued before the answer to this probe on the same connection.
	killWaitLinks(t, p, 10*time.Second, "down", func(l admin.LinkInfo) bool { return l.State == "DOWN" })
	if st := esme.request(killInFlight+1, 10*time.Second); st != smpp.StatusThrottled {
		t.Fatalf("submit during the outage: %s, want ESME_RTHROTTLED", st)
	}
	lost, dup, byStatus := esme.tally(killInFlight)
	total, _, _ := esme.counts()
	t.Logf("SIGKILL after %d of %d answered: sent=%d responded=%d lost=%d duplicated=%d ESME_ROK=%d ESME_RSYSERR=%d other=%d",
		atKill, killInFlight, killInFlight, killInFlight-lost, lost, dup, byStatus[smpp.StatusOK], byStatus[smpp.StatusSysErr],
		killInFlight-byStatus[smpp.StatusOK]-byStatus[smpp.StatusSysErr])
	if lost != 0 || dup != 0 {
		t.Errorf("lost=%d duplicated=%d, want 0 and 0", lost, dup)
	}
	if byStatus[smpp.StatusOK] < atKill || byStatus[smpp.StatusOK]+byStatus[smpp.StatusSysErr] != killInFlight {
		t.Errorf("statuses %v: want ESME_ROK (at least the %d answered before the kill) or ESME_RSYSERR", byStatus, atKill)
	}
	if total != killInFlight+1 {
		t.Errorf("%d responses on the connection, want %d", total, killInFlight+1)
	}
}

// Pass-through: the fake SMSC process holding 1,000 submit_sm of a pass-through ESME session
// is SIGKILLed. The ESME gets exactly one ESME_RSYSERR per request, then its session is
// closed (as its carrier's would be).
func TestE2EKillSMSCProcessPassThrough(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two processes and relays 1,000 requests")
	}
	record := filepath.Join(t.TempDir(), "smsc.jsonl")
	smsc := startFakeSMSCProcess(t, "127.0.0.1:0", "-response-delay", "10m", "-record", record, "-no-record")
	p := startBinary(t, "serve", "-c", killConfig(t, smsc.addr))
	esme := killDialESMEAs(t, p.addr, "pt", "ptpw")
	var burst bytes.Buffer
	for seq := uint32(1); seq <= killInFlight; seq++ {
		burst.Write(killSubmitFrame(t, seq))
	}
	if err := esme.write(burst.Bytes()); err != nil {
		t.Fatalf("writing %d submit_sm: %v", killInFlight, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for received := killSubmitsRecorded(t, record); received < killInFlight; received = killSubmitsRecorded(t, record) {
		if time.Now().After(deadline) {
			t.Fatalf("the SMSC process received %d of %d submit_sm within 30 s", received, killInFlight)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if before, _, _ := esme.counts(); before != 0 {
		t.Fatalf("%d responses before the kill", before)
	}
	if err := smsc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-smsc.exited:
		smsc.exited <- err
	case <-time.After(10 * time.Second):
		t.Fatal("fake SMSC process not dead 10 s after SIGKILL")
	}
	esme.waitTotal(killInFlight, 30*time.Second)
	// Then the proxy closes the ESME's connection: wait for the reader to end.
	select {
	case <-esme.done:
	case <-time.After(10 * time.Second):
		t.Fatal("ESME connection still open 10 s after its upstream was killed")
	}
	lost, dup, byStatus := esme.tally(killInFlight)
	syserr := byStatus[smpp.StatusSysErr]
	total, _, readErr := esme.counts()
	esme.mu.Lock()
	other := append([]string(nil), esme.other...)
	esme.mu.Unlock()
	t.Logf("pass-through SIGKILL with %d in flight: sent=%d responded=%d lost=%d duplicated=%d ESME_RSYSERR=%d; then the ESME connection ended (%v); other PDUs: %v",
		killInFlight, killInFlight, killInFlight-lost, lost, dup, syserr, readErr, other)
	if lost != 0 || dup != 0 || syserr != killInFlight || total != killInFlight {
		t.Errorf("lost=%d duplicated=%d ESME_RSYSERR=%d responses=%d, want 0, 0, %d, %d", lost, dup, syserr, total, killInFlight, killInFlight)
	}
}
