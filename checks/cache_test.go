package checks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func numKey(i int) cacheKey {
	return cacheKey{signal: SimSwap, msisdn: fmt.Sprintf("+4477009%05d", i), maxAge: 72}
}

func TestLRUCacheGetAddExpiry(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, size := range []int{1, 3, 1000, 100000} {
		c, err := newLRUCache[cacheKey](size)
		if err != nil {
			t.Fatal(err)
		}
		k := numKey(1)
		if _, ok := c.get(k, t0); ok {
			t.Fatalf("size %d: hit in an empty cache", size)
		}
		c.add(k, &cacheEntry{res: Result{Swapped: true}, expires: t0.Add(time.Minute)})
		e, ok := c.get(k, t0.Add(time.Minute-time.Nanosecond))
		if !ok || !e.res.Swapped {
			t.Fatalf("size %d: get before expiry = %+v, %v", size, e, ok)
		}
		// Other keys of the same number (another signal or window) are other entries.
		if _, ok := c.get(cacheKey{signal: SimSwap, msisdn: k.msisdn, maxAge: 24}, t0); ok {
			t.Fatalf("size %d: another window hit", size)
		}
		// Replacing stores the new entry.
		c.add(k, &cacheEntry{res: Result{Swapped: false}, expires: t0.Add(2 * time.Minute)})
		if e, ok := c.get(k, t0.Add(time.Minute)); !ok || e.res.Swapped {
			t.Fatalf("size %d: replaced entry = %+v, %v", size, e, ok)
		}
		// At its expiry, the entry is gone and removed.
		if _, ok := c.get(k, t0.Add(2*time.Minute)); ok {
			t.Fatalf("size %d: hit at expiry", size)
		}
		if c.contains(k) || c.len() != 0 {
			t.Fatalf("size %d: expired entry not removed (len %d)", size, c.len())
		}
	}
	if _, err := newLRUCache[cacheKey](0); err == nil {
		t.Fatal("size 0 accepted")
	}
}

func TestLRUCacheSharding(t *testing.T) {
	for _, tc := range []struct{ size, shards int }{{1, 1}, {511, 1}, {512, 2}, {4096, 16}, {100000, 16}} {
		c, err := newLRUCache[cacheKey](tc.size)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.shards) != tc.shards {
			t.Errorf("size %d: %d shards, want %d", tc.size, len(c.shards), tc.shards)
		}
		total := 0
		for i := range c.shards {
			total += c.shards[i].size
		}
		if total != tc.size {
			t.Errorf("size %d: shards hold %d", tc.size, total)
		}
	}
}

func TestLRUCacheBoundAndRecency(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	const size = 4096
	c, err := newLRUCache[cacheKey](size)
	if err != nil {
		t.Fatal(err)
	}
	hot := numKey(0)
	c.add(hot, &cacheEntry{expires: t0.Add(time.Hour)})
	// Many more numbers than fit, the hot one read after every few additions: it stays, and
	// the cache never holds more than its size.
	for i := 1; i <= 10*size; i++ {
		c.add(numKey(i), &cacheEntry{expires: t0.Add(time.Hour)})
		if i%16 == 0 {
			if _, ok := c.get(hot, t0); !ok {
				t.Fatalf("hot entry evicted after %d additions", i)
			}
		}
		if n := c.len(); n > size {
			t.Fatalf("%d entries, size %d", n, size)
		}
	}
	if n := c.len(); n < size*9/10 {
		t.Fatalf("%d entries after filling, size %d", n, size)
	}
	// The oldest unread ones went first.
	if c.contains(numKey(1)) {
		t.Fatal("oldest unread entry kept")
	}
	if !c.contains(numKey(10 * size)) {
		t.Fatal("newest entry evicted")
	}
}

func TestLRUCacheSingleShardExactLRU(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	c, err := newLRUCache[cacheKey](4)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		c.add(numKey(i), &cacheEntry{expires: t0.Add(time.Hour)})
	}
	// Entry 0 is the oldest: half the shard (2 moves) happened since it was added, so a read
	// moves it to the front, and entry 1 is evicted by the next addition.
	if _, ok := c.get(numKey(0), t0); !ok {
		t.Fatal("miss")
	}
	c.add(numKey(4), &cacheEntry{expires: t0.Add(time.Hour)})
	if !c.contains(numKey(0)) || c.contains(numKey(1)) {
		t.Fatalf("after reading 0 and adding 4: 0 kept %v, 1 kept %v", c.contains(numKey(0)), c.contains(numKey(1)))
	}
}

func TestLRUCacheConcurrent(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	c, err := newLRUCache[cacheKey](1024)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				k := numKey((i * (w + 1)) % 3000)
				if e, ok := c.get(k, t0.Add(time.Duration(i)*time.Millisecond)); ok && e.res.MonitoredDays != k.maxAge {
					t.Errorf("entry of another key")
					return
				}
				if i%3 == 0 {
					c.add(k, &cacheEntry{res: Result{MonitoredDays: k.maxAge}, expires: t0.Add(time.Duration(i+500) * time.Millisecond)})
				}
			}
		}()
	}
	wg.Wait()
	if n := c.len(); n > 1024 {
		t.Fatalf("%d entries, size 1024", n)
	}
}

func TestGuardPeekAt(t *testing.T) {
	clk := newClock()
	unknown := Query{MSISDN: "+447700900002", Signal: SimSwap, MaxAge: 72 * time.Hour}
	p := &fakeProvider{fn: func(ctx context.Context, q Query) (Result, error) {
		if q.MSISDN == unknown.MSISDN {
			return Result{}, fmt.Errorf("no such number: %w", ErrUnknownNumber)
		}
		return okResult(clk)(ctx, q)
	}}
	g := NewGuard(p, GuardConfig{Now: clk.Now}, nil)
	ctx := context.Background()
	q := Query{MSISDN: "+447700900001", Signal: SimSwap, MaxAge: 72 * time.Hour}
	if _, _, ok := g.PeekAt(q, g.Now()); ok {
		t.Fatal("hit before any call")
	}
	want, err := g.Check(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Check(ctx, unknown); !errors.Is(err, ErrUnknownNumber) {
		t.Fatalf("unknown: %v", err)
	}
	now := g.Now()
	res, err, ok := g.PeekAt(q, now)
	if !ok || err != nil || !res.Cached || res.Latency != 0 || !res.Swapped || !res.FetchedAt.Equal(want.FetchedAt) {
		t.Fatalf("PeekAt = %+v, %v, %v", res, err, ok)
	}
	if c, cerr, cok := g.Cached(q); !cok || cerr != nil || c.Swapped != res.Swapped || c.Cached != res.Cached {
		t.Fatalf("Cached = %+v, %v, %v; PeekAt %+v", c, cerr, cok, res)
	}
	if _, err, ok := g.PeekAt(unknown, now); !ok || !errors.Is(err, ErrUnknownNumber) || !FromCache(err) {
		t.Fatalf("PeekAt unknown = %v, %v", err, ok)
	}
	if st := g.Stats(); st.Hits != 3 || p.calls.Load() != 2 {
		t.Fatalf("hits %d, calls %d", st.Hits, p.calls.Load())
	}
	// Expiry is as of the reading passed, on the Guard's clock.
	if _, _, ok := g.PeekAt(q, now.Add(DefaultTTL(SimSwap))); ok {
		t.Fatal("hit at the TTL")
	}
	if _, _, ok := g.Cached(q); ok {
		t.Fatal("expired entry not removed")
	}
}

func TestGuardWallClock(t *testing.T) {
	if !NewGuard(&fakeProvider{}, GuardConfig{}, nil).WallClock() {
		t.Error("default clock is not the wall clock")
	}
	if NewGuard(&fakeProvider{}, GuardConfig{Now: newClock().Now}, nil).WallClock() {
		t.Error("configured clock taken for the wall clock")
	}
}

// BenchmarkGuardPeekAt is a cached answer as the interceptor's fast path asks for it (the
// clock read apart), from one goroutine and from all (different numbers).
func BenchmarkGuardPeekAt(b *testing.B) {
	clk := newClock()
	g := NewGuard(&fakeProvider{fn: okResult(clk)}, GuardConfig{}, nil)
	const numbers = 1000
	qs := make([]Query, numbers)
	for i := range qs {
		qs[i] = Query{MSISDN: fmt.Sprintf("+4477009%05d", i), Signal: SimSwap, MaxAge: 72 * time.Hour}
		if _, err := g.Check(context.Background(), qs[i]); err != nil {
			b.Fatal(err)
		}
	}
	now := g.Now()
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, _, ok := g.PeekAt(qs[i%numbers], now); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, _, ok := g.PeekAt(qs[i%numbers], now); !ok {
					b.Fatal("miss")
				}
				i += 7
			}
		})
	})
}
