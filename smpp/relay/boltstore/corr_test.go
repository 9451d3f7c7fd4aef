package boltstore

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

func TestCorrelationsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	s, err := Open(path, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Correlations()
	c.Put("a1b2", "bank", "carrier", now.Add(time.Hour))
	c.Put("old", "bank", "carrier", now.Add(-time.Second))
	c.Close() // flushes
	if a, u, ok := c.Get("a1b2"); !ok || a != "bank" || u != "carrier" {
		t.Fatalf("before reopen: %q %q %v", a, u, ok)
	}
	s.Close()

	s, err = Open(path, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c = s.Correlations()
	defer c.Close()
	if a, u, ok := c.Get("a1b2"); !ok || a != "bank" || u != "carrier" {
		t.Fatalf("after reopen: %q %q %v", a, u, ok)
	}
	if _, _, ok := c.Get("old"); ok {
		t.Fatal("an expired correlation was returned")
	}
	if _, _, ok := c.Get("nope"); ok {
		t.Fatal("unknown key found")
	}
	c.expire()
	now = now.Add(2 * time.Hour)
	c.expire()
	if _, _, ok := c.Get("a1b2"); ok {
		t.Fatal("found after expiry")
	}
}

// heldCommits starts correlations whose writer reports each batch's size on batches and
// waits for a value on gate before its transaction: a commit the test holds.
func heldCommits(t *testing.T, max int) (*Store, *Correlations, chan int, chan struct{}) {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "store.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	batches, gate := make(chan int, 16), make(chan struct{})
	c := s.correlations(max, func(n int) { batches <- n; <-gate })
	t.Cleanup(func() {
		close(gate)
		c.Close()
		s.Close()
	})
	return s, c, batches, gate
}

// result records what a Commit's done was called with.
type result struct {
	key string
	err error
}

func recorder(c *Correlations, out chan<- result, key string) func(error) {
	return func(err error) {
		// done runs after the commit: the correlation is already readable (durable).
		if _, _, ok := c.Get(key); ok != (err == nil) {
			err = errors.Join(err, errors.New("stored state does not match the result"))
		}
		out <- result{key, err}
	}
}

func expectNone(t *testing.T, done chan result) {
	t.Helper()
	select {
	case r := <-done:
		t.Fatalf("done(%v) for %s while its commit is held", r.err, r.key)
	default:
	}
}

// Correlations arriving while a commit runs go together in the next transaction, and each
// done is called once, after its transaction, with nil.
func TestCommitGroupsWhileCommitting(t *testing.T) {
	_, c, batches, gate := heldCommits(t, DefaultMaxPending)
	exp := time.Now().Add(time.Hour)
	done := make(chan result, 16)
	c.Commit("a", "bank", "carrier", exp, recorder(c, done, "a"))
	if n := <-batches; n != 1 { // the writer holds "a" at its commit
		t.Fatalf("first batch %d, want 1", n)
	}
	for _, k := range []string{"b", "c", "d"} {
		c.Commit(k, "bank", "carrier", exp, recorder(c, done, k))
	}
	expectNone(t, done)
	if _, _, ok := c.Get("a"); ok {
		t.Fatal("a readable before its commit")
	}
	gate <- struct{}{} // commit "a"
	if r := <-done; r.key != "a" || r.err != nil {
		t.Fatalf("got %+v, want a, nil", r)
	}
	if n := <-batches; n != 3 { // b, c, d arrived during a's commit: one transaction
		t.Fatalf("second batch %d, want 3", n)
	}
	expectNone(t, done)
	gate <- struct{}{}
	got := map[string]bool{}
	for range 3 {
		r := <-done
		if r.err != nil || got[r.key] {
			t.Fatalf("%+v (seen %v)", r, got)
		}
		got[r.key] = true
	}
	if c.Commits() != 2 || c.Refused() != 0 || c.Failed() != 0 {
		t.Fatalf("commits %d refused %d failed %d", c.Commits(), c.Refused(), c.Failed())
	}
}

// Beyond the backlog bound, and after Close, done is called at once, before Commit
// returns, with ErrBacklog or ErrClosed; Close commits what was pending.
func TestCommitBacklogAndClose(t *testing.T) {
	_, c, batches, gate := heldCommits(t, 2)
	exp := time.Now().Add(time.Hour)
	done := make(chan result, 16)
	c.Commit("a", "bank", "carrier", exp, recorder(c, done, "a"))
	<-batches // "a" is being committed; the backlog is empty again
	c.Commit("b", "bank", "carrier", exp, recorder(c, done, "b"))
	c.Commit("c", "bank", "carrier", exp, recorder(c, done, "c"))
	var sync error
	c.Commit("d", "bank", "carrier", exp, func(err error) { sync = err })
	if !errors.Is(sync, ErrBacklog) {
		t.Fatalf("over the backlog: %v, want ErrBacklog", sync)
	}
	expectNone(t, done)
	go func() { // Close waits for the writer, which commits a, then b and c
		gate <- struct{}{}
		<-batches
		gate <- struct{}{}
	}()
	c.Close()
	for range 3 {
		if r := <-done; r.err != nil {
			t.Fatalf("%+v", r)
		}
	}
	sync = nil
	c.Commit("e", "bank", "carrier", exp, func(err error) { sync = err })
	if !errors.Is(sync, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", sync)
	}
	if c.Refused() != 2 || c.Commits() != 2 {
		t.Fatalf("refused %d commits %d", c.Refused(), c.Commits())
	}
}

// A transaction that fails reports its error to every correlation in it.
func TestCommitFailureReported(t *testing.T) {
	s, c, batches, gate := heldCommits(t, DefaultMaxPending)
	done := make(chan result, 4)
	c.Commit("a", "bank", "carrier", time.Now().Add(time.Hour), recorder(c, done, "a"))
	<-batches
	if err := s.db.Close(); err != nil { // the disk goes away under the writer
		t.Fatal(err)
	}
	gate <- struct{}{}
	r := <-done
	if !errors.Is(r.err, berrors.ErrDatabaseNotOpen) {
		t.Fatalf("done(%v), want ErrDatabaseNotOpen", r.err)
	}
	if c.Failed() != 1 || c.Commits() != 0 {
		t.Fatalf("failed %d commits %d", c.Failed(), c.Commits())
	}
}
