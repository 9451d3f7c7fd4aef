package relay

import (
	"strconv"
	"testing"
	"time"
)

// Correlations expire after the TTL (a miss when looked up, removed by the sweep), a
// re-recorded id gets a new TTL, and the size bounds memory whatever the TTL.
func TestCorrelatorExpiry(t *testing.T) {
	var now int64
	c := newCorrelator(1600, time.Hour)
	c.now = func() int64 { return now }
	o := origin{account: "bank", upstream: "carrier"}
	at := func(d time.Duration) { now = int64(d) }

	at(0)
	for i := range 3 {
		c.add("old"+strconv.Itoa(i), o)
	}
	c.add("refreshed", o)
	at(30 * time.Minute)
	c.add("newer", o)
	c.add("refreshed", o) // recorded again: its hour starts now

	steps := []struct {
		at        time.Duration
		id        string
		wantFound bool
	}{
		{59 * time.Minute, "old0", true},
		{61 * time.Minute, "old1", false}, // expired: a miss before any sweep
		{61 * time.Minute, "newer", true},
		{61 * time.Minute, "refreshed", true},
		{91 * time.Minute, "refreshed", false},
	}
	for _, st := range steps {
		at(st.at)
		if _, ok := c.lookupFrom("carrier", st.id); ok != st.wantFound {
			t.Fatalf("at %v: %s found %v, want %v", st.at, st.id, ok, st.wantFound)
		}
	}

	// The sweep removes what expired (old0, old2, newer; old1 and refreshed went when
	// looked up), oldest first, and nothing else.
	c.add("fresh", o)
	if n := c.sweep(); n != 3 {
		t.Fatalf("sweep removed %d, want 3", n)
	}
	if n := c.len(); n != 1 {
		t.Fatalf("%d correlations left, want 1 (fresh)", n)
	}
	if _, ok := c.lookupFrom("carrier", "fresh"); !ok {
		t.Fatal("a fresh correlation was swept")
	}

	// The size bounds it: 10 × the size recorded within the TTL keeps about the size
	// (per shard, so up to one more per shard).
	for i := range 16000 {
		c.add("n"+strconv.Itoa(i), o)
	}
	if n := c.len(); n > 1600+corrShards {
		t.Fatalf("%d correlations held, size 1600", n)
	}
	if _, ok := c.lookupFrom("carrier", "n15999"); !ok {
		t.Fatal("the latest correlation was evicted")
	}
}

// A sweep removes at most sweepMax entries per shard, so that a shard's lock is never held
// long; the next sweeps take the rest.
func TestCorrelatorSweepBounded(t *testing.T) {
	var now int64
	c := newCorrelator(corrShards*sweepMax*4, time.Minute)
	c.now = func() int64 { return now }
	total := corrShards * sweepMax * 2
	for i := range total {
		c.add(strconv.Itoa(i), origin{account: "a", upstream: "u"})
	}
	now = int64(2 * time.Minute)
	removed, sweeps := 0, 0
	for removed < total && sweeps < 100 {
		n := c.sweep()
		if n > corrShards*sweepMax {
			t.Fatalf("one sweep removed %d, at most %d", n, corrShards*sweepMax)
		}
		removed += n
		sweeps++
	}
	if removed != total || c.len() != 0 {
		t.Fatalf("removed %d of %d in %d sweeps, %d left", removed, total, sweeps, c.len())
	}
	if sweeps < 2 {
		t.Fatalf("%d entries swept in %d sweeps: not bounded", total, sweeps)
	}
}
