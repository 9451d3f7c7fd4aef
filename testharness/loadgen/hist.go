package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram over nanoseconds, in the manner of HdrHistogram with
// two significant binary digits more than a decimal "2 digits" HDR: values below 256 ns have a
// bucket each; above that every power of two is split into 128 equal buckets, so a bucket is
// at most 1/128 of its lower bound wide. Percentiles report the bucket's midpoint, within
// 1/256 (0.4 %) of any value in it, and never above the exact maximum.
//
// Written here rather than imported (github.com/HdrHistogram/hdrhistogram-go) because the
// load generator may only touch its own folder, not the module's go.mod, and because this is
// all it needs: Record is an index computation and an increment (no allocation, no lock; each
// histogram has one writer goroutine), and Merge is an array add. 7,296 buckets of int64 cover
// every non-negative int64 (292 years) in 57 KiB.
type hist struct {
	counts [numBuckets]int64
	n      int64
	min    int64
	max    int64
}

const (
	subBits    = 7
	subCount   = 1 << subBits  // buckets per power of two
	linearMax  = 2 * subCount  // values below this have a bucket of their own
	numBuckets = 57 * subCount // bits.Len64 of a non-negative int64 is at most 63: e <= 55
)

func newHist() *hist { return &hist{min: math.MaxInt64} }

func bucketOf(v int64) int {
	if v < linearMax {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - (subBits + 1)
	return e*subCount + int(uint64(v)>>uint(e))
}

// bucketRange returns the smallest value of bucket i and the bucket's width.
func bucketRange(i int) (low, width int64) {
	if i < linearMax {
		return int64(i), 1
	}
	e := i/subCount - 1
	m := i - e*subCount
	return int64(m) << uint(e), int64(1) << uint(e)
}

// Record adds one value (nanoseconds; negative counts as 0).
func (h *hist) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
	if v < h.min {
		h.min = v
	}
}

// Merge adds o's counts to h.
func (h *hist) Merge(o *hist) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
	h.min = min(h.min, o.min)
}

// Quantile returns the value at quantile q (0 < q <= 1): the midpoint of the bucket holding
// the ceil(q*n)-th smallest value, clamped to the exact minimum and maximum.
func (h *hist) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var cum int64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			low, width := bucketRange(i)
			v := low + (width-1)/2
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// Percentiles summarises h.
func (h *hist) Percentiles() Percentiles {
	if h == nil || h.n == 0 {
		return Percentiles{}
	}
	return Percentiles{
		P50:  time.Duration(h.Quantile(0.50)),
		P90:  time.Duration(h.Quantile(0.90)),
		P99:  time.Duration(h.Quantile(0.99)),
		P999: time.Duration(h.Quantile(0.999)),
		Max:  time.Duration(h.max),
		N:    h.n,
	}
}
