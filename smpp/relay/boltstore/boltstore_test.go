package boltstore_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp/relay"
	"github.com/smppguard/smppguard/smpp/relay/boltstore"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func limits(max int, ttl time.Duration) func(string) (int, time.Duration) {
	return func(string) (int, time.Duration) { return max, ttl }
}

func open(t testing.TB, path string, opts boltstore.Options) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tempStore(t testing.TB, opts boltstore.Options) (*boltstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "queue.db")
	return open(t, path, opts), path
}

func enqueue(t testing.TB, s relay.Store, account string, frames ...string) {
	t.Helper()
	for _, f := range frames {
		if err := s.Enqueue(account, []byte(f)); err != nil {
			t.Fatalf("Enqueue(%q, %q): %v", account, f, err)
		}
	}
}

// drain peeks and removes until the account is empty and returns the frames in order,
// checking that IDs increase.
func drain(t testing.TB, s relay.Store, account string) []string {
	t.Helper()
	var out []string
	var last uint64
	for i := 0; ; i++ {
		it, ok := s.Peek(account)
		if !ok {
			break
		}
		if i > 0 && it.ID <= last {
			t.Fatalf("ID %d after %d: not increasing", it.ID, last)
		}
		last = it.ID
		out = append(out, string(it.Frame))
		s.Remove(account, it.ID)
		if i > 1e6 {
			t.Fatal("drain does not end")
		}
	}
	if n := s.Len(account); n != 0 {
		t.Fatalf("Len after drain = %d", n)
	}
	return out
}

func eq(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") || len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFIFO(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{Limits: limits(100, 0)})
	enqueue(t, s, "acc", "1", "2", "3", "4", "5")
	if n := s.Len("acc"); n != 5 {
		t.Fatalf("Len = %d, want 5", n)
	}
	// Peek without Remove keeps returning the head.
	a, _ := s.Peek("acc")
	b, _ := s.Peek("acc")
	if a.ID != b.ID || string(b.Frame) != "1" {
		t.Fatalf("repeated Peek: %+v then %+v", a, b)
	}
	eq(t, drain(t, s, "acc"), []string{"1", "2", "3", "4", "5"})
	if _, ok := s.Peek("acc"); ok {
		t.Fatal("Peek on an empty queue returned an item")
	}
	if _, ok := s.Peek("never-seen"); ok {
		t.Fatal("Peek on an unknown account returned an item")
	}
}

func TestFrameIsCopied(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{Limits: limits(10, 0)})
	f := []byte("frame")
	if err := s.Enqueue("acc", f); err != nil {
		t.Fatal(err)
	}
	f[0] = 'X'
	it, _ := s.Peek("acc")
	if string(it.Frame) != "frame" {
		t.Fatalf("stored frame changed with the caller's slice: %q", it.Frame)
	}
	it.Frame[0] = 'Y'
	it2, _ := s.Peek("acc")
	if string(it2.Frame) != "frame" {
		t.Fatalf("stored frame changed with the returned slice: %q", it2.Frame)
	}
	// An empty frame round-trips.
	s.Remove("acc", it.ID)
	enqueue(t, s, "acc", "")
	if it, ok := s.Peek("acc"); !ok || len(it.Frame) != 0 {
		t.Fatalf("empty frame: %+v %v", it, ok)
	}
}

func TestBound(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{Limits: func(acc string) (int, time.Duration) {
		if acc == "zero" {
			return 0, 0
		}
		return 3, 0
	}})
	enqueue(t, s, "acc", "a", "b", "c")
	if err := s.Enqueue("acc", []byte("d")); !errors.Is(err, relay.ErrQueueFull) {
		t.Fatalf("Enqueue at bound: %v, want ErrQueueFull", err)
	}
	if n := s.Len("acc"); n != 3 {
		t.Fatalf("Len = %d", n)
	}
	it, _ := s.Peek("acc")
	s.Remove("acc", it.ID)
	enqueue(t, s, "acc", "d")
	if err := s.Enqueue("zero", []byte("x")); !errors.Is(err, relay.ErrQueueFull) {
		t.Fatalf("Enqueue with bound 0: %v, want ErrQueueFull", err)
	}
	eq(t, drain(t, s, "acc"), []string{"b", "c", "d"})
}

func TestTTL(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	opts := boltstore.Options{Limits: limits(100, 10*time.Second), Now: clk.Now}
	s := open(t, path, opts)
	enqueue(t, s, "acc", "a") // t0
	clk.Add(5 * time.Second)
	enqueue(t, s, "acc", "b") // t0+5s
	clk.Add(5 * time.Second)
	enqueue(t, s, "acc", "c") // t0+10s

	// At t0+10s "a" is exactly TTL old: kept (expired means strictly older, like MemStore).
	if it, ok := s.Peek("acc"); !ok || string(it.Frame) != "a" {
		t.Fatalf("Peek at TTL: %q %v", it.Frame, ok)
	}
	if !it0(s).Enqueued.Equal(clk.Now().Add(-10 * time.Second)) {
		t.Fatalf("Enqueued = %v, want %v", it0(s).Enqueued, clk.Now().Add(-10*time.Second))
	}
	clk.Add(time.Nanosecond)
	if it, ok := s.Peek("acc"); !ok || string(it.Frame) != "b" {
		t.Fatalf("Peek after a's TTL: %q %v", it.Frame, ok)
	}
	if s.Expired() != 1 || s.Len("acc") != 2 {
		t.Fatalf("Expired = %d, Len = %d; want 1, 2", s.Expired(), s.Len("acc"))
	}
	// Expiry is on disk: a reopened store does not see "a" again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, opts)
	if n := s.Len("acc"); n != 2 {
		t.Fatalf("Len after reopen = %d, want 2", n)
	}
	clk.Add(time.Hour)
	if it, ok := s.Peek("acc"); ok {
		t.Fatalf("Peek after every TTL: %q", it.Frame)
	}
	if s.Expired() != 2 || s.Len("acc") != 0 {
		t.Fatalf("Expired = %d, Len = %d; want 2 (since reopen), 0", s.Expired(), s.Len("acc"))
	}
}

func it0(s *boltstore.Store) relay.Item { it, _ := s.Peek("acc"); return it }

// TestTTLManyExpired drops more expired items than one write transaction takes.
func TestTTLManyExpired(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: thousands of fsyncs")
	}
	clk := newClock()
	s, _ := tempStore(t, boltstore.Options{Limits: limits(1<<20, time.Minute), Now: clk.Now})
	const n = 5000
	for i := range n {
		enqueue(t, s, "acc", strconv.Itoa(i))
	}
	clk.Add(2 * time.Minute)
	enqueue(t, s, "acc", "fresh")
	if it, ok := s.Peek("acc"); !ok || string(it.Frame) != "fresh" {
		t.Fatalf("Peek: %q %v", it.Frame, ok)
	}
	if s.Expired() != n || s.Len("acc") != 1 {
		t.Fatalf("Expired = %d, Len = %d", s.Expired(), s.Len("acc"))
	}
}

func TestRemove(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{Limits: limits(10, 0)})
	enqueue(t, s, "acc", "a", "b", "c")
	a, _ := s.Peek("acc")
	// IDs are consecutive numbers of one store-wide sequence: "b" is a.ID+1.
	s.Remove("acc", a.ID+1)
	if n := s.Len("acc"); n != 2 {
		t.Fatalf("Len after removing the middle = %d", n)
	}
	s.Remove("acc", a.ID+1)   // already gone
	s.Remove("acc", 1<<60)    // never existed
	s.Remove("other", a.ID)   // other account
	s.Remove("missing", 1<<2) // unknown account
	if n := s.Len("acc"); n != 2 {
		t.Fatalf("Len after no-op removes = %d", n)
	}
	eq(t, drain(t, s, "acc"), []string{"a", "c"})
}

func TestAccountsIndependent(t *testing.T) {
	clk := newClock()
	s, _ := tempStore(t, boltstore.Options{Now: clk.Now, Limits: func(acc string) (int, time.Duration) {
		if acc == "short" {
			return 2, time.Second
		}
		return 5, 0
	}})
	enqueue(t, s, "short", "s1", "s2")
	enqueue(t, s, "long", "l1", "l2", "l3")
	if err := s.Enqueue("short", []byte("s3")); !errors.Is(err, relay.ErrQueueFull) {
		t.Fatalf("short at bound: %v", err)
	}
	enqueue(t, s, "long", "l4") // unaffected by short's bound
	if s.Len("short") != 2 || s.Len("long") != 4 || s.Len("none") != 0 {
		t.Fatalf("Len short=%d long=%d none=%d", s.Len("short"), s.Len("long"), s.Len("none"))
	}
	clk.Add(time.Minute)
	if _, ok := s.Peek("short"); ok {
		t.Fatal("short items should have expired")
	}
	if s.Expired() != 2 || s.Len("long") != 4 {
		t.Fatalf("Expired = %d, long Len = %d", s.Expired(), s.Len("long"))
	}
	eq(t, drain(t, s, "long"), []string{"l1", "l2", "l3", "l4"})
	// Account names that are prefixes of each other or contain the separator stay apart.
	enqueue(t, s, "a", "x")
	enqueue(t, s, "a/b", "y")
	enqueue(t, s, "", "z")
	eq(t, drain(t, s, "a"), []string{"x"})
	eq(t, drain(t, s, "a/b"), []string{"y"})
	eq(t, drain(t, s, ""), []string{"z"})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	opts := boltstore.Options{Limits: limits(100, 0)}
	s := open(t, path, opts)
	enqueue(t, s, "a", "a1", "a2", "a3", "a4")
	enqueue(t, s, "b", "b1")
	first, _ := s.Peek("a")
	s.Remove("a", first.ID)
	second, _ := s.Peek("a")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, opts)
	if s.Len("a") != 3 || s.Len("b") != 1 {
		t.Fatalf("Len after reopen: a=%d b=%d", s.Len("a"), s.Len("b"))
	}
	if it, _ := s.Peek("a"); it.ID != second.ID || string(it.Frame) != "a2" {
		t.Fatalf("head after reopen %+v, want ID %d a2", it, second.ID)
	}
	enqueue(t, s, "a", "a5")
	got := drain(t, s, "a")
	eq(t, got, []string{"a2", "a3", "a4", "a5"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// IDs keep increasing across a reopen even once the queue was emptied.
	s = open(t, path, opts)
	if s.Len("a") != 0 {
		t.Fatalf("Len = %d", s.Len("a"))
	}
	enqueue(t, s, "a", "a6")
	if it, _ := s.Peek("a"); it.ID <= second.ID+3 {
		t.Fatalf("ID %d after reopen, want > %d", it.ID, second.ID+3)
	}
	eq(t, drain(t, s, "b"), []string{"b1"})
}

func TestFileMode(t *testing.T) {
	_, path := tempStore(t, boltstore.Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestNotClosed: a process that dies without Close loses nothing Enqueue returned for. The
// file is copied while the first store is still open (as a crash would leave it) and the
// copy opened.
func TestNotClosed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	opts := boltstore.Options{Limits: limits(100, 0)}
	s := open(t, path, opts)
	enqueue(t, s, "acc", "1", "2", "3")
	it, _ := s.Peek("acc")
	s.Remove("acc", it.ID)
	enqueue(t, s, "other", "x")

	snap, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(cp, snap, 0o600); err != nil {
		t.Fatal(err)
	}
	c := open(t, cp, opts)
	if c.Len("acc") != 2 || c.Len("other") != 1 {
		t.Fatalf("Len in the copy: acc=%d other=%d", c.Len("acc"), c.Len("other"))
	}
	eq(t, drain(t, c, "acc"), []string{"2", "3"})
	eq(t, drain(t, c, "other"), []string{"x"})
}

// TestSIGKILL runs a child process that enqueues and reports each Enqueue that returned,
// kills it with SIGKILL mid-stream and checks every reported item is in the file, in order.
func TestSIGKILL(t *testing.T) {
	if path := os.Getenv("BOLTSTORE_CHILD"); path != "" {
		childEnqueue(path)
		return
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs a killable child process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "q.db")
	cmd := exec.Command(exe, "-test.run=^TestSIGKILL$")
	cmd.Env = append(os.Environ(), "BOLTSTORE_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const want = 40
	acked := 0
	sc := bufio.NewScanner(out)
	for acked < want && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "acked ") {
			acked++
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatal(err)
	}
	cmd.Wait()
	if acked < want {
		t.Fatalf("child acknowledged only %d items before it ended", acked)
	}

	s := open(t, path, boltstore.Options{})
	if n := s.Len("acc"); n < acked {
		t.Fatalf("Len after SIGKILL = %d, child had acknowledged %d", n, acked)
	}
	got := drain(t, s, "acc")
	for i := range acked {
		if got[i] != fmt.Sprintf("frame-%d", i) {
			t.Fatalf("item %d = %q after SIGKILL", i, got[i])
		}
	}
	// The store is usable after the crash.
	enqueue(t, s, "acc", "after")
	eq(t, drain(t, s, "acc"), []string{"after"})
}

func childEnqueue(path string) {
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		if err := s.Enqueue("acc", []byte(fmt.Sprintf("frame-%d", i))); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		fmt.Fprintf(w, "acked %d\n", i)
		w.Flush()
	}
}

func TestLocked(t *testing.T) {
	_, path := tempStore(t, boltstore.Options{})
	start := time.Now()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err == nil {
		s.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !errors.Is(err, boltstore.ErrLocked) || !strings.Contains(err.Error(), "store is locked by another smppguard") {
		t.Fatalf("error %q, want one about the lock", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the file", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open took %v to give up", d)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := boltstore.Open(filepath.Join(t.TempDir(), "no", "such", "dir", "q.db"), boltstore.Options{}); err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
	bad := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(bad, bytes.Repeat([]byte("junk"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := boltstore.Open(bad, boltstore.Options{}); err == nil {
		t.Fatal("Open of a file that is not a bbolt database succeeded")
	}
}

func TestClosed(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{})
	enqueue(t, s, "acc", "a")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue("acc", []byte("b")); err == nil || errors.Is(err, relay.ErrQueueFull) {
		t.Fatalf("Enqueue after Close: %v", err)
	}
	if _, ok := s.Peek("acc"); ok {
		t.Fatal("Peek after Close returned an item")
	}
	s.Remove("acc", 1) // logged, no panic
}

func TestConcurrent(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{Limits: limits(1000, time.Hour)})
	const workers, each = 4, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acc := fmt.Sprintf("acc%d", w%2)
			for i := range each {
				if err := s.Enqueue(acc, []byte(fmt.Sprintf("%d-%d", w, i))); err != nil {
					t.Error(err)
					return
				}
				s.Len(acc)
				if it, ok := s.Peek(acc); ok && i%3 == 0 {
					s.Remove(acc, it.ID)
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, acc := range []string{"acc0", "acc1"} {
		n := s.Len(acc)
		got := drain(t, s, acc)
		if len(got) != n {
			t.Fatalf("%s: Len %d but drained %d", acc, n, len(got))
		}
		// Each worker's items come out in the order it enqueued them.
		last := map[string]int{}
		for _, f := range got {
			w, i, _ := strings.Cut(f, "-")
			k, _ := strconv.Atoi(i)
			if p, ok := last[w]; ok && k <= p {
				t.Fatalf("%s: worker %s item %d after %d", acc, w, k, p)
			}
			last[w] = k
		}
		total += n
	}
	if total == 0 || total >= workers*each {
		t.Fatalf("%d items left, want some removed and some kept", total)
	}
}
