package smpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The seed corpus lives in testdata/fuzz/FuzzSession (regenerate it with
// SMPPGUARD_WRITE_SESSION_SEEDS=1 go test ./smpp -run TestWriteFuzzSessionSeeds). Run:
//
//	go test ./smpp -run '^$' -fuzz '^FuzzSession$' -fuzztime 60s

const (
	fuzzSessionMax   = 4096       // the session's MaxPDUSize under fuzzing
	fuzzSentinelSeq  = 0x7FFFFFF0 // sequence number of the enquire_link the harness appends
	fuzzSessionBound = 5 * time.Second
)

// FuzzSession feeds an arbitrary byte stream to a server-side session (SideSMSC) over
// net.Pipe whose handler accepts binds and answers every request it is given. It checks
// that the session never panics, terminates once the input ends, writes only well-formed
// responses (generic_nack included), never more responses than requests, answers each
// request at most once with its own sequence number, hands the handler only requests that
// are allowed in the bind state, and that its goroutines exit (Done closes).
func FuzzSession(f *testing.F) {
	for _, s := range sessionSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		runSessionInput(t, data)
	})
}

// runSessionInput is the body of FuzzSession.
func runSessionInput(t *testing.T, data []byte) {
	// What the input can legitimately get back: at most one response per request frame,
	// carrying that frame's sequence number; one generic_nack ESME_RINVCMDLEN for a bad
	// command_length, after which nothing is read.
	budget := map[uint32][]CommandID{} // seq -> request commands not answered yet
	fr := NewFrameReader(bytes.NewReader(data), fuzzSessionMax)
	prefix := 0
	selfClose := false // the tail holds a whole header with a bad command_length
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			var fe *FrameError
			if errors.As(err, &fe) {
				budget[fe.Seq] = append(budget[fe.Seq], GenericNack) // placeholder: a generic_nack
				selfClose = len(data)-prefix >= HeaderLen
			}
			break
		}
		prefix += len(frame)
		h, _ := ParseHeader(frame)
		if !(h.ID.IsResponse() && h.ID.Known()) { // known responses are never answered
			budget[h.Seq] = append(budget[h.Seq], h.ID)
		}
	}
	budget[fuzzSentinelSeq] = append(budget[fuzzSentinelSeq], EnquireLink)

	var violation atomic.Pointer[string]
	bad := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		violation.CompareAndSwap(nil, &s)
	}
	var async sync.WaitGroup
	handler := HandlerFunc(func(s *Session, p *PDU) {
		id := p.ID()
		if !allowed(SideSMSC, s.State(), id) {
			bad("handler got %s in state %s", id, s.State())
		}
		if _, err := Parse(bytes.Clone(p.Bytes())); err != nil {
			bad("handler got a malformed %s: %v", id, err)
		}
		switch {
		case id.IsBind():
			if err := s.AcceptBind(p, StatusOK, p.CString(FieldSystemID)); err != nil && !errors.Is(err, ErrClosed) {
				bad("AcceptBind: %v", err)
			}
		case id == QuerySM: // answered later, from another goroutine
			async.Add(1)
			go func() {
				defer async.Done()
				s.Respond(p, StatusOK, "q")
			}()
		case id.HasResponse():
			if err := s.Respond(p, StatusOK, "id"); err != nil && !errors.Is(err, ErrClosed) {
				bad("Respond %s: %v", id, err)
			}
		}
	})

	srvConn, cliConn := net.Pipe()
	defer cliConn.Close()
	s := NewSession(srvConn, SideSMSC, handler, Config{MaxPDUSize: fuzzSessionMax, EnquireLinkInterval: -1})

	var got [][]byte
	sentinel := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		rd := NewFrameReader(cliConn, DefaultMaxPDUSize)
		seen := false
		for {
			frame, err := rd.ReadFrame()
			if err != nil {
				return
			}
			got = append(got, frame)
			if h, _ := ParseHeader(frame); !seen && h.ID == EnquireLinkResp && h.Seq == fuzzSentinelSeq {
				seen = true
				close(sentinel)
			}
		}
	}()

	write := func(b []byte) {
		cliConn.SetWriteDeadline(time.Now().Add(fuzzSessionBound))
		if _, err := cliConn.Write(b); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("session stopped reading its input for %s\n%s", fuzzSessionBound, stacks())
			}
		}
	}
	// The whole frames, then an enquire_link: once it is answered every earlier request
	// answered synchronously has been answered. Then the rest of the input.
	write(data[:prefix])
	write(HeaderOnly(EnquireLink, StatusOK, fuzzSentinelSeq))
	select {
	case <-sentinel:
	case <-readDone:
	case <-time.After(fuzzSessionBound):
		t.Fatalf("session neither answered the final enquire_link nor closed\n%s", stacks())
	}
	write(data[prefix:])
	if selfClose {
		select {
		case <-s.Done():
		case <-time.After(fuzzSessionBound):
			t.Fatalf("session did not close after a bad command_length\n%s", stacks())
		}
	}
	cliConn.Close()
	select {
	case <-s.Done():
	case <-time.After(fuzzSessionBound):
		t.Fatalf("session did not terminate after its peer closed\n%s", stacks())
	}
	if s.Err() == nil || s.State() != StateClosed {
		t.Fatalf("closed session: err %v, state %s", s.Err(), s.State())
	}
	<-readDone
	waitGroup(t, &async, fuzzSessionBound)
	if v := violation.Load(); v != nil {
		t.Fatal(*v)
	}
	checkSessionOutput(t, got, budget)
}

// checkSessionOutput checks what the session wrote against what the input allowed.
func checkSessionOutput(t *testing.T, got [][]byte, budget map[uint32][]CommandID) {
	t.Helper()
	for i, frame := range got {
		p, err := Parse(frame)
		if err != nil {
			t.Fatalf("response %d does not parse: %v (%x)", i, err, frame)
		}
		id := p.ID()
		if !id.IsResponse() {
			t.Fatalf("session wrote request %s", id)
		}
		if id == GenericNack && (p.Len() != HeaderLen || p.Status() == StatusOK) {
			t.Fatalf("generic_nack of %d bytes, status %s", p.Len(), p.Status())
		}
		reqs := budget[p.Seq()]
		j := -1
		for k, r := range reqs {
			// A known request with a response is answered with that response, errors
			// included; generic_nack answers the rest (unknown commands, outbind,
			// alert_notification, a bad command_length: the GenericNack placeholder).
			if hasOwnResponse := r.Known() && r.HasResponse(); (hasOwnResponse && r.Response() == id) || (!hasOwnResponse && id == GenericNack) {
				j = k
				break
			}
		}
		if j < 0 {
			t.Fatalf("response %d (%s seq %d) answers no request (requests with that seq: %v)", i, id, p.Seq(), reqs)
		}
		budget[p.Seq()] = append(reqs[:j], reqs[j+1:]...)
	}
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func waitGroup(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatal("goroutines still running")
	}
}

type sessionSeed struct {
	name string
	data []byte
}

// sessionSeeds: a valid bind followed by each command, every command unbound, and
// malformed variants (bad lengths, truncations, garbage TLVs, unknown commands).
func sessionSeeds() []sessionSeed {
	bindTRX := mustB(BindParams{SystemID: "esme", Password: "pw"}.Encode(BindTransceiver, 1))
	bindTX := mustB(BindParams{SystemID: "esme", Password: "pw"}.Encode(BindTransmitter, 1))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	withLen := func(b []byte, n uint32) []byte {
		b = bytes.Clone(b)
		binary.BigEndian.PutUint32(b, n)
		return b
	}
	var seeds []sessionSeed
	add := func(name string, b []byte) { seeds = append(seeds, sessionSeed{name, b}) }
	var all []byte
	for _, c := range commandCases() {
		fr := c.frame()
		name := strings.ReplaceAll(c.name, "/", "-")
		if len(fr) > fuzzSessionMax {
			add("oversized-"+name, cat(bindTRX, fr))
			continue
		}
		add("bound-"+name, cat(bindTRX, fr))
		add("unbound-"+name, fr)
		all = append(all, fr...)
	}
	add("bound-all-commands", cat(bindTRX, all))
	add("bound_tx-all-commands", cat(bindTX, all))
	sub := mustB(NewBuilder(SubmitSM, StatusOK, 5).CString("").Int(1).Int(1).CString("BANK").Int(1).Int(1).CString("447700900123").
		Int(0).Int(0).Int(0).CString("").CString("").Int(1).Int(0).Int(0).Int(0).ShortMessage([]byte("hello")).Bytes())
	add("bind-twice", cat(bindTRX, bindTX))
	add("submit-before-bind", sub)
	add("unbind-then-more", cat(bindTRX, HeaderOnly(Unbind, StatusOK, 2), sub))
	add("length-0", cat(bindTRX, withLen(sub, 0)))
	add("length-15", cat(bindTRX, withLen(sub, 15)))
	add("length-max-plus-1", cat(bindTRX, withLen(sub, fuzzSessionMax+1)))
	add("length-16MiB", cat(bindTRX, withLen(sub, 16<<20)))
	add("length-ffffffff-partial-header", cat(bindTRX, []byte{0xff, 0xff, 0xff, 0xff, 0, 0}))
	add("length-short-of-frame", cat(bindTRX, withLen(sub, uint32(len(sub)-3))[:len(sub)-3], HeaderOnly(EnquireLink, StatusOK, 9)))
	add("truncated-mid-frame", cat(bindTRX, sub[:len(sub)/2]))
	add("truncated-length", cat(bindTRX, []byte{0, 0}))
	add("garbage-tlv-3-bytes", cat(bindTRX, withLen(cat(sub, []byte{1, 2, 3}), uint32(len(sub)+3))))
	add("garbage-tlv-length-past-end", cat(bindTRX, withLen(cat(sub, []byte{0x14, 0x01, 0x00, 0x20, 'x'}), uint32(len(sub)+5))))
	add("unknown-command", cat(bindTRX, HeaderOnly(0x00000077, StatusOK, 3), HeaderOnly(EnquireLink, StatusOK, 4)))
	add("unknown-response", cat(bindTRX, HeaderOnly(0x80000077, StatusOK, 3)))
	add("response-to-nothing", cat(bindTRX, mustB(NewBuilder(SubmitSMResp, StatusOK, 99).CString("x").Bytes()), HeaderOnly(GenericNack, StatusInvCmdID, 98)))
	add("truncated-body-bind", cat(withLen(bindTRX[:20], 20)))
	add("duplicate-seqs", cat(bindTRX, sub, sub, sub))
	return seeds
}

// TestWriteFuzzSessionSeeds regenerates testdata/fuzz/FuzzSession from sessionSeeds.
func TestWriteFuzzSessionSeeds(t *testing.T) {
	if os.Getenv("SMPPGUARD_WRITE_SESSION_SEEDS") == "" {
		t.Skip("set SMPPGUARD_WRITE_SESSION_SEEDS=1 to regenerate the FuzzSession corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSession")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range sessionSeeds() {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s.data)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFuzzSessionSeedCorpus checks that the committed corpus holds a valid frame of every
// command after a bind, and malformed input.
func TestFuzzSessionSeedCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzSession", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	valid := map[CommandID]bool{}
	bad := 0
	for _, path := range files {
		data := readCorpusFile(t, path)
		fr := NewFrameReader(bytes.NewReader(data), fuzzSessionMax)
		for i := 0; ; i++ {
			frame, err := fr.ReadFrame()
			if err != nil {
				if err != io.EOF {
					bad++
				}
				break
			}
			p, err := Parse(frame)
			if err != nil {
				bad++
				continue
			}
			if i > 0 && strings.HasPrefix(filepath.Base(path), "bound-") {
				valid[p.ID()] = true
			}
		}
	}
	for id := range commandNames {
		if !valid[id] {
			t.Errorf("no bound-* seed with a valid %s", id)
		}
	}
	if bad < 5 {
		t.Errorf("only %d malformed seeds", bad)
	}
}
