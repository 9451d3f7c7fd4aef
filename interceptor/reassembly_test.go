package interceptor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestReassembler has no sweeper goroutine: the tests call sweep with the fake clock.
func newTestReassembler(t *testing.T, cfg ReassemblyConfig, onTimeout func(*Group)) (*Reassembler, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Hour
	}
	r := NewReassembler(cfg, onTimeout)
	r.stopSweeper()
	t.Cleanup(func() { r.Close() })
	return r, clk
}

// mustAdd adds a part; decided reports a group to decide now.
func mustAdd(t *testing.T, r *Reassembler, key string, p Part, text string, v any) (g *Group, decided bool) {
	t.Helper()
	g, err := r.Add(key, p, text, v)
	if err != nil {
		t.Fatalf("add %s %+v: %v", key, p, err)
	}
	return g, g != nil
}

func checkGroup(t *testing.T, g *Group, key string, total int, text string, seqs ...int) {
	t.Helper()
	if g.Key != key || g.Total != total || g.Text() != text || len(g.Parts) != len(seqs) {
		t.Fatalf("group %+v (text %q), want key %q total %d text %q seqs %v", g, g.Text(), key, total, text, seqs)
	}
	for i, s := range seqs {
		if g.Parts[i].Seq != s || g.Parts[i].Value != fmt.Sprintf("h%d", s) {
			t.Fatalf("part %d: %+v, want seq %d", i, g.Parts[i], s)
		}
	}
}

func TestReassemblyInOrderAndOutOfOrder(t *testing.T) {
	texts := map[int]string{1: "Your verification ", 2: "code is 48", 3: "2913."}
	for _, order := range [][]int{{1, 2, 3}, {3, 1, 2}, {2, 3, 1}, {3, 2, 1}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			r, _ := newTestReassembler(t, ReassemblyConfig{}, nil)
			for i, seq := range order {
				g, complete := mustAdd(t, r, "k", Part{Ref: 7, Total: 3, Seq: seq}, texts[seq], fmt.Sprintf("h%d", seq))
				if i < 2 {
					if complete || r.Len() != 1 {
						t.Fatalf("complete after %d parts (len %d)", i+1, r.Len())
					}
					continue
				}
				if !complete || !g.Complete {
					t.Fatal("not complete after all parts")
				}
				checkGroup(t, g, "k", 3, "Your verification code is 482913.", 1, 2, 3)
			}
			if r.Len() != 0 {
				t.Fatal("complete group still held")
			}
		})
	}
}

func TestReassemblySinglePartAndInvalid(t *testing.T) {
	r, _ := newTestReassembler(t, ReassemblyConfig{}, nil)
	g, complete := mustAdd(t, r, "one", Part{Ref: 1, Total: 1, Seq: 1}, "whole", "h1")
	if !complete || !g.Complete || g.Text() != "whole" || r.Len() != 0 {
		t.Fatalf("single part: %+v", g)
	}
	for _, p := range []Part{{Total: 0, Seq: 0}, {Total: 2, Seq: 0}, {Total: 2, Seq: 3}, {Total: 256, Seq: 1}, {Total: -1, Seq: -1}} {
		if _, err := r.Add("bad", p, "", nil); !errors.Is(err, ErrInvalidPart) {
			t.Errorf("%+v: %v", p, err)
		}
	}
	mustAdd(t, r, "k", Part{Total: 3, Seq: 1}, "a", "h1")
	if _, err := r.Add("k", Part{Total: 2, Seq: 2}, "b", "h2"); !errors.Is(err, ErrInvalidPart) {
		t.Errorf("total mismatch: %v", err)
	}
	if _, err := r.Add("k", Part{Total: 1, Seq: 1}, "b", "h2"); !errors.Is(err, ErrInvalidPart) {
		t.Errorf("total mismatch with a single part: %v", err)
	}
}

func TestReassemblyDuplicate(t *testing.T) {
	r, _ := newTestReassembler(t, ReassemblyConfig{}, nil)
	mustAdd(t, r, "k", Part{Total: 2, Seq: 1}, "first ", "h1")
	g, err := r.Add("k", Part{Total: 2, Seq: 1}, "replacement ", "other")
	if !errors.Is(err, ErrDuplicatePart) || g != nil {
		t.Fatalf("duplicate: %v %v", g, err)
	}
	// The same text again (the sender's response timer ran out while the part was held):
	// decided now on the text so far, alone; the original stays held.
	g, decided := mustAdd(t, r, "k", Part{Total: 2, Seq: 1}, "first ", "again")
	if !decided || g.Complete || g.Text() != "first " || g.Parts[0].Value != "again" || g.Released() != 0 || r.Len() != 1 {
		t.Fatalf("retransmitted held part: %+v", g)
	}
	g, _ = mustAdd(t, r, "k", Part{Total: 2, Seq: 2}, "second", "h2")
	checkGroup(t, g, "k", 2, "first second", 1, 2) // the duplicates replaced nothing
}

func TestReassemblyTimeout(t *testing.T) {
	var timedOut []*Group
	var mu sync.Mutex
	var r *Reassembler
	r, clk := newTestReassembler(t, ReassemblyConfig{Timeout: 5 * time.Second}, func(g *Group) {
		r.Len() // called outside the lock: this would deadlock otherwise
		mu.Lock()
		timedOut = append(timedOut, g)
		mu.Unlock()
	})
	mustAdd(t, r, "old", Part{Total: 3, Seq: 2}, "b", "h2")
	clk.Advance(2 * time.Second)
	mustAdd(t, r, "new", Part{Total: 2, Seq: 1}, "x", "h1")
	mustAdd(t, r, "old", Part{Total: 3, Seq: 1}, "a", "h1") // does not extend old's deadline

	clk.Advance(2999 * time.Millisecond)
	r.sweep()
	if len(timedOut) != 0 || r.Len() != 2 {
		t.Fatalf("expired early: %d, held %d", len(timedOut), r.Len())
	}
	clk.Advance(time.Millisecond) // old: 5s since its first part
	r.sweep()
	if len(timedOut) != 1 || r.Len() != 2 { // old is remembered
		t.Fatalf("timed out %d, held %d", len(timedOut), r.Len())
	}
	g := timedOut[0]
	if g.Complete || !g.TimedOut {
		t.Fatal("a timed-out group is complete, or not marked timed out")
	}
	checkGroup(t, g, "old", 3, "ab", 1, 2)
	// A late part of a timed-out message is decided at once on the whole text; the parts
	// answered before are there for their text only.
	g, decided := mustAdd(t, r, "old", Part{Total: 3, Seq: 3}, "c", "h3")
	if !decided || !g.Complete || !g.TimedOut || g.Text() != "abc" || g.Released() != 2 || g.Parts[2].Value != "h3" || g.Parts[0].Value != nil || r.Len() != 1 {
		t.Fatalf("late part: %+v, held %d", g, r.Len())
	}
	clk.Advance(2 * time.Second)
	r.sweep()
	if len(timedOut) != 2 || timedOut[1].Key != "new" {
		t.Fatalf("timed out %d", len(timedOut))
	}
}

// The sweeper goroutine fires on its own (real clock, short timeout).
func TestReassemblySweeper(t *testing.T) {
	got := make(chan *Group, 1)
	r := NewReassembler(ReassemblyConfig{Timeout: 2 * time.Millisecond}, func(g *Group) { got <- g })
	defer r.Close()
	if _, err := r.Add("k", Part{Total: 2, Seq: 2}, "late", "h2"); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-got:
		if g.Key != "k" || g.Complete || len(g.Parts) != 1 {
			t.Fatalf("%+v", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sweeper never fired")
	}
	if sweepInterval(5*time.Second) != 500*time.Millisecond || sweepInterval(time.Microsecond) != time.Millisecond || sweepInterval(time.Second) != 100*time.Millisecond {
		t.Fatal("sweep interval bounds")
	}
}

func TestReassemblyMaxGroups(t *testing.T) {
	r, _ := newTestReassembler(t, ReassemblyConfig{MaxGroups: 2}, nil)
	mustAdd(t, r, "a", Part{Total: 2, Seq: 1}, "", "h1")
	mustAdd(t, r, "b", Part{Total: 2, Seq: 1}, "", "h1")
	if _, err := r.Add("c", Part{Total: 2, Seq: 1}, "", "h1"); !errors.Is(err, ErrTooManyGroups) {
		t.Fatalf("third group: %v", err)
	}
	// A single-part message needs no slot.
	if g, err := r.Add("d", Part{Total: 1, Seq: 1}, "", "h1"); err != nil || g == nil || !g.Complete {
		t.Fatalf("single part at the limit: %v", err)
	}
	// Parts of held groups are still taken; completing one frees a slot.
	if _, complete := mustAdd(t, r, "a", Part{Total: 2, Seq: 2}, "", "h2"); !complete {
		t.Fatal("not complete")
	}
	mustAdd(t, r, "c", Part{Total: 2, Seq: 1}, "", "h1")
	if r.Len() != 2 {
		t.Fatal(r.Len())
	}
}

func TestReassemblyClose(t *testing.T) {
	var calls atomic.Int32
	r, clk := newTestReassembler(t, ReassemblyConfig{}, func(*Group) { calls.Add(1) })
	mustAdd(t, r, "first", Part{Total: 3, Seq: 3}, "c", "h3")
	clk.Advance(time.Second)
	mustAdd(t, r, "second", Part{Total: 2, Seq: 1}, "x", "h1")
	mustAdd(t, r, "first", Part{Total: 3, Seq: 1}, "a", "h1")
	left := r.Close()
	if len(left) != 2 || left[0].Key != "first" || left[1].Key != "second" || left[0].Complete {
		t.Fatalf("close returned %+v", left)
	}
	checkGroup(t, left[0], "first", 3, "ac", 1, 3)
	if _, err := r.Add("x", Part{Total: 2, Seq: 1}, "", nil); !errors.Is(err, ErrReassemblerClosed) {
		t.Fatalf("add after close: %v", err)
	}
	if r.Close() != nil || r.Len() != 0 || calls.Load() != 0 {
		t.Fatal("second close, or onTimeout called for closed groups")
	}
}

func TestGroupText(t *testing.T) {
	g := &Group{Total: 4, Parts: []GroupPart{{Seq: 1, Text: "a"}, {Seq: 3, Text: "c"}, {Seq: 4, Text: "d"}}}
	if g.Text() != "acd" {
		t.Fatal(g.Text())
	}
	if (&Group{}).Text() != "" {
		t.Fatal("empty")
	}
}

// GroupKey works the same for 8-bit, 16-bit and sar_* references: the parts of one message
// share a key; another account, destination, source, reference or total gives another.
func TestGroupKey(t *testing.T) {
	type msgPart func(ref uint16, total, seq byte) dtSM
	kinds := map[string]msgPart{
		"udh8": func(ref uint16, total, seq byte) dtSM {
			return dtSM{esm: 0x40, sm: append([]byte{5, 0x00, 3, byte(ref), total, seq}, fmt.Sprintf("p%d ", seq)...)}
		},
		"udh16": func(ref uint16, total, seq byte) dtSM {
			return dtSM{esm: 0x40, sm: append([]byte{6, 0x08, 4, byte(ref >> 8), byte(ref), total, seq}, fmt.Sprintf("p%d ", seq)...)}
		},
		"sar": func(ref uint16, total, seq byte) dtSM {
			return dtSM{sm: fmt.Appendf(nil, "p%d ", seq), tlvs: []smpp.TLV{
				{Tag: smpp.TagSarMsgRefNum, Value: binary.BigEndian.AppendUint16(nil, ref)},
				{Tag: smpp.TagSarTotalSegments, Value: []byte{total}},
				{Tag: smpp.TagSarSegmentSeqnum, Value: []byte{seq}},
			}}
		},
	}
	for name, mk := range kinds {
		t.Run(name, func(t *testing.T) {
			msg := func(account, src, dst string, ref uint16, total, seq byte) *Message {
				s := mk(ref, total, seq)
				s.src, s.dst = src, dst
				m := &Message{Account: account, PDU: dtSubmit(t, s)}
				if err := Decode(m); err != nil || m.Part == nil {
					t.Fatalf("decode: %v %+v", err, m.Part)
				}
				return m
			}
			base := GroupKey(msg("bank", "ACME", "447700900001", 200, 3, 1))
			if GroupKey(msg("bank", "ACME", "447700900001", 200, 3, 3)) != base {
				t.Fatal("parts of one message have different keys")
			}
			for _, other := range []*Message{
				msg("shop", "ACME", "447700900001", 200, 3, 1),
				msg("bank", "ACME", "447700900002", 200, 3, 1),
				msg("bank", "ACMF", "447700900001", 200, 3, 1),
				msg("bank", "ACME", "447700900001", 201, 3, 1),
				msg("bank", "ACME", "447700900001", 200, 2, 1),
			} {
				if GroupKey(other) == base {
					t.Fatalf("%+v shares the key %q", other.Part, base)
				}
			}
			// Address boundaries cannot be shifted to forge a key.
			if GroupKey(msg("bank", "ACME1", "2", 200, 3, 1)) == GroupKey(msg("bank", "ACME", "12", 200, 3, 1)) {
				t.Fatal("ambiguous key")
			}
			// And the parts reassemble, out of order.
			r, _ := newTestReassembler(t, ReassemblyConfig{}, nil)
			var g *Group
			for _, seq := range []byte{2, 3, 1} {
				m := msg("bank", "ACME", "447700900001", 200, 3, seq)
				g, _ = mustAdd(t, r, GroupKey(m), *m.Part, m.Text, fmt.Sprintf("h%d", seq))
			}
			checkGroup(t, g, base, 3, "p1 p2 p3 ", 1, 2, 3)
		})
	}
	if GroupKey(&Message{Account: "a"}) != "a\x00\x00\x000/0" {
		t.Fatal("key without a part")
	}
}

// Concurrent Adds from many goroutines: every message completes exactly once with all its
// parts, under -race.
func TestReassemblyConcurrent(t *testing.T) {
	const (
		workers  = 8
		messages = 300
	)
	var timeouts atomic.Int32
	r := NewReassembler(ReassemblyConfig{Timeout: time.Minute}, func(*Group) { timeouts.Add(1) })
	defer r.Close()
	type job struct {
		key  string
		part Part
	}
	var jobs []job
	for i := range messages {
		total := 1 + i%5
		for seq := 1; seq <= total; seq++ {
			jobs = append(jobs, job{fmt.Sprintf("m%d", i), Part{Ref: uint16(i), Total: total, Seq: seq}})
		}
	}
	rand.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	var (
		mu       sync.Mutex
		complete = map[string]*Group{}
		wg       sync.WaitGroup
	)
	ch := make(chan job)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				g, err := r.Add(j.key, j.part, fmt.Sprintf("%d,", j.part.Seq), j.part.Seq)
				if err != nil {
					t.Error(err)
					continue
				}
				if g != nil {
					if !g.Complete {
						t.Errorf("%s decided before it was complete", j.key)
					}
					mu.Lock()
					if complete[j.key] != nil {
						t.Errorf("%s completed twice", j.key)
					}
					complete[j.key] = g
					mu.Unlock()
				}
				_ = r.Len()
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	if len(complete) != messages || r.Len() != 0 || timeouts.Load() != 0 {
		t.Fatalf("%d complete, %d held, %d timed out", len(complete), r.Len(), timeouts.Load())
	}
	for key, g := range complete {
		for i, p := range g.Parts {
			if p.Seq != i+1 || p.Value != i+1 {
				t.Fatalf("%s: parts %+v", key, g.Parts)
			}
		}
	}
}

// Concurrent Adds, sweeps and Close together, under -race.
func TestReassemblyConcurrentClose(t *testing.T) {
	var answered atomic.Int64
	held := func(g *Group) int64 { return int64(len(g.Parts) - g.Released()) }
	r := NewReassembler(ReassemblyConfig{Timeout: time.Millisecond}, func(g *Group) { answered.Add(held(g)) })
	var wg sync.WaitGroup
	var taken atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				g, err := r.Add(fmt.Sprintf("w%d-%d", w, i/2), Part{Total: 3, Seq: 1 + i%2}, "", nil)
				if err == nil && g == nil {
					taken.Add(1)
				}
			}
		}()
	}
	time.Sleep(3 * time.Millisecond)
	left := r.Close()
	wg.Wait()
	for _, g := range left {
		answered.Add(held(g))
	}
	if answered.Load() != taken.Load() {
		t.Fatalf("%d parts taken, %d answered (timed out or returned by Close)", taken.Load(), answered.Load())
	}
}

func BenchmarkReassemblyAdd(b *testing.B) {
	r := NewReassembler(ReassemblyConfig{}, nil)
	defer r.Close()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("bank\x00447700900%03d\x00ACME\x00%d/2", i, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		r.Add(k, Part{Total: 2, Seq: 1}, "a", nil)
		r.Add(k, Part{Total: 2, Seq: 2}, "b", nil)
		i++
	}
}

// A sender that waits for each part's answer before sending the next: the first part's hold
// runs out, then every later part is decided at once, on the text of every part seen so far,
// and the part that completes the message completes the group.
func TestReassemblySynchronousSender(t *testing.T) {
	var timedOut []*Group
	var mu sync.Mutex
	r, clk := newTestReassembler(t, ReassemblyConfig{Timeout: 5 * time.Second, FirstPartTimeout: time.Second}, func(g *Group) {
		mu.Lock()
		timedOut = append(timedOut, g)
		mu.Unlock()
	})
	if _, decided := mustAdd(t, r, "k", Part{Total: 3, Seq: 1}, "Your verification ", "h1"); decided {
		t.Fatal("first part decided at once")
	}
	clk.Advance(999 * time.Millisecond)
	r.sweep()
	if len(timedOut) != 0 {
		t.Fatal("first part released before FirstPartTimeout")
	}
	clk.Advance(time.Millisecond)
	r.sweep()
	if len(timedOut) != 1 || !timedOut[0].TimedOut || timedOut[0].Released() != 0 {
		t.Fatalf("first part not released after FirstPartTimeout: %+v", timedOut)
	}
	checkGroup(t, timedOut[0], "k", 3, "Your verification ", 1)
	if r.Len() != 1 {
		t.Fatal("the timed-out message is not remembered")
	}

	clk.Advance(300 * time.Millisecond) // the answer went back, the next part comes
	g, decided := mustAdd(t, r, "k", Part{Total: 3, Seq: 2}, "code is 48", "h2")
	if !decided || g.Complete || !g.TimedOut || g.Text() != "Your verification code is 48" {
		t.Fatalf("second part: decided %v %+v", decided, g)
	}
	if !g.Parts[0].Released || g.Parts[0].Value != nil || g.Parts[1].Released || g.Parts[1].Value != "h2" {
		t.Fatalf("second part: only it is to be answered: %+v", g.Parts)
	}
	clk.Advance(300 * time.Millisecond)
	g, decided = mustAdd(t, r, "k", Part{Total: 3, Seq: 3}, "2913.", "h3")
	if !decided || !g.Complete || !g.TimedOut || g.Text() != "Your verification code is 482913." || g.Released() != 2 || g.Parts[2].Value != "h3" {
		t.Fatalf("last part: decided %v %+v", decided, g)
	}
	if r.Len() != 0 || len(timedOut) != 1 {
		t.Fatalf("complete message still remembered (%d) or timed out again (%d)", r.Len(), len(timedOut))
	}
}

// Parts that arrive together are held for the whole Timeout, not FirstPartTimeout: a second
// part extends the hold.
func TestReassemblySecondPartExtendsHold(t *testing.T) {
	var timedOut atomic.Int32
	r, clk := newTestReassembler(t, ReassemblyConfig{Timeout: 5 * time.Second, FirstPartTimeout: time.Second}, func(*Group) { timedOut.Add(1) })
	mustAdd(t, r, "k", Part{Total: 3, Seq: 1}, "a", "h1")
	clk.Advance(500 * time.Millisecond)
	mustAdd(t, r, "k", Part{Total: 3, Seq: 3}, "c", "h3")
	clk.Advance(4499 * time.Millisecond)
	r.sweep()
	if timedOut.Load() != 0 {
		t.Fatal("released before Timeout although two parts arrived")
	}
	clk.Advance(time.Millisecond)
	r.sweep()
	if timedOut.Load() != 1 {
		t.Fatal("not released at Timeout")
	}
}

// A remembered message: a retransmitted part is decided at once on the text so far; a part
// with a Seq answered before but another text starts a new message; memory expires Remember
// after the last part.
func TestReassemblyRemembered(t *testing.T) {
	var timedOut atomic.Int32
	r, clk := newTestReassembler(t, ReassemblyConfig{Timeout: time.Second, Remember: 10 * time.Second}, func(*Group) { timedOut.Add(1) })
	mustAdd(t, r, "k", Part{Total: 3, Seq: 1}, "Your code is ", "h1")
	clk.Advance(time.Second)
	r.sweep()
	g, decided := mustAdd(t, r, "k", Part{Total: 3, Seq: 2}, "4829", "h2")
	if !decided || g.Text() != "Your code is 4829" {
		t.Fatalf("second part %+v", g)
	}
	g, decided = mustAdd(t, r, "k", Part{Total: 3, Seq: 2}, "4829", "h2 again")
	if !decided || g.Text() != "Your code is 4829" || g.Parts[1].Value != "h2 again" || g.Released() != 1 {
		t.Fatalf("retransmission %+v", g)
	}
	// 8-bit references wrap: the same key, a Seq seen before, another text.
	if _, decided := mustAdd(t, r, "k", Part{Total: 3, Seq: 1}, "Hello ", "n1"); decided || r.Len() != 1 {
		t.Fatal("a new message under a reused reference was not started over")
	}
	clk.Advance(time.Second)
	r.sweep()
	if timedOut.Load() != 2 {
		t.Fatalf("%d timeouts", timedOut.Load())
	}
	g, _ = mustAdd(t, r, "k", Part{Total: 3, Seq: 3}, "!", "n3")
	if g == nil || g.Text() != "Hello !" {
		t.Fatalf("the old message's text was kept: %+v", g)
	}
	clk.Advance(9999 * time.Millisecond)
	r.sweep()
	if r.Len() != 1 {
		t.Fatal("forgotten before Remember")
	}
	clk.Advance(time.Millisecond)
	r.sweep()
	if r.Len() != 0 || timedOut.Load() != 2 {
		t.Fatalf("not forgotten after Remember (%d), or answered again (%d)", r.Len(), timedOut.Load())
	}
	if _, decided := mustAdd(t, r, "k", Part{Total: 3, Seq: 2}, "x", "m2"); decided {
		t.Fatal("a part of a forgotten message was decided at once")
	}
}
