package boltstore

import (
	"path/filepath"
	"testing"
	"time"
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
