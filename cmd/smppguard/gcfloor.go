package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcFloor keeps the garbage collector's heap goal at or above a floor. A relay's live heap
// is small (a few MiB) while it allocates ~400 bytes per relayed message, so with GOGC=100
// it collects dozens of times a second: ~20% of its CPU in `smppguard bench`. After each
// collection gcFloor sets GOGC so that the next goal is max(floor, 2 × live): small heaps
// get room up to the floor, large ones (10,000 idle sessions: ~500 MiB) keep GOGC=100's
// headroom and no more. It is a process setting like GOGC itself; GOGC or GOMEMLIMIT in
// the environment switch it off.
type gcFloor struct {
	floor   uint64
	base    int // the GOGC to keep when the heap is above the floor
	mu      sync.Mutex
	current int // the GOGC last set
	stopped bool
	adjusts int // how many times adjust ran (tests)
	sample  []metrics.Sample
}

// gcSentinel is allocated once per cycle; its finalizer runs after the collection that
// found it unreachable. (A pointer field keeps it out of the tiny allocator, whose
// objects' finalizers may never run.)
type gcSentinel struct{ f *gcFloor }

// maxGCPercent bounds the GOGC set for very small heaps.
const maxGCPercent = 5000

// startGCFloor starts the floor of floorBytes and returns the function that stops it and
// restores GOGC=100.
func startGCFloor(floorBytes uint64) (stop func()) {
	_, stop = newGCFloor(floorBytes)
	return stop
}

func newGCFloor(floorBytes uint64) (*gcFloor, func()) {
	f := &gcFloor{floor: floorBytes, base: 100, current: 100,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	f.adjust()
	f.arm()
	return f, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.stopped = true
		debug.SetGCPercent(f.base)
	}
}

func (f *gcFloor) arm() {
	runtime.SetFinalizer(&gcSentinel{f: f}, func(s *gcSentinel) {
		if s.f.adjust() {
			s.f.arm()
		}
	})
}

// percent returns the GOGC that puts the heap goal (live × (1 + GOGC/100)) at the floor,
// never below base.
func (f *gcFloor) percent(live uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	if live >= f.floor/2 {
		return f.base
	}
	p := (f.floor - live) * 100 / live
	return int(min(max(p, uint64(f.base)), maxGCPercent))
}

// adjust sets GOGC for the live heap now and reports whether the floor is still on.
func (f *gcFloor) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	f.adjusts++
	metrics.Read(f.sample)
	if f.sample[0].Value.Kind() != metrics.KindUint64 {
		return false // no such metric in this Go: leave GOGC alone
	}
	p := f.percent(f.sample[0].Value.Uint64())
	// Only a change of more than 10% is worth telling the runtime.
	if d := p - f.current; d*10 > f.current || -d*10 > f.current {
		debug.SetGCPercent(p)
		f.current = p
	}
	return true
}
