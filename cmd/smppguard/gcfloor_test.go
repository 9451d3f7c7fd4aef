package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestGCFloorPercent(t *testing.T) {
	f := &gcFloor{floor: 64 << 20, base: 100}
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, maxGCPercent},
		{1 << 10, maxGCPercent}, // tiny heap: capped
		{4 << 20, 1500},         // goal 4 MiB × 16 = 64 MiB
		{16 << 20, 300},         // goal 16 MiB × 4 = 64 MiB
		{32 << 20, 100},         // at half the floor GOGC=100 reaches it
		{500 << 20, 100},        // large heaps keep GOGC=100's headroom, no more
	} {
		if got := f.percent(tc.live); got != tc.want {
			t.Errorf("live %d: GOGC %d, want %d", tc.live, got, tc.want)
		}
	}
}

// The floor is set at start, follows every collection (a finalizer per cycle), and stop
// restores GOGC=100.
func TestGCFloorFollowsCollections(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	f, stop := newGCFloor(1 << 30) // far above this test binary's live heap
	if p := debug.SetGCPercent(-1); p <= 100 {
		debug.SetGCPercent(100)
		stop()
		t.Fatalf("GOGC %d for a heap far below the floor, want more than 100", p)
	} else {
		debug.SetGCPercent(p)
	}
	adjusted := func() int { f.mu.Lock(); defer f.mu.Unlock(); return f.adjusts }
	for i := 0; i < 200 && adjusted() < 4; i++ {
		runtime.GC() // the sentinel's finalizer runs after the cycle
		time.Sleep(2 * time.Millisecond)
	}
	if n := adjusted(); n < 4 {
		stop()
		t.Fatalf("%d adjustments after 200 collections: the finalizer chain broke", n)
	}
	stop()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("GOGC %d after stop, want 100", p)
	}
	n := adjusted()
	runtime.GC()
	time.Sleep(5 * time.Millisecond)
	if adjusted() != n {
		t.Fatal("adjusted after stop")
	}
}
