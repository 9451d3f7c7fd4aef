package relay

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkCorrelator records a message id and looks up its receipt: what a pooled
// submit with a receipt costs the correlator.
func BenchmarkCorrelator(b *testing.B) {
	c := newCorrelator(1_000_000, 72*time.Hour)
	o := origin{account: "bank", upstream: "carrier"}
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = strconv.FormatUint(uint64(0x5a000000+i*7919), 16)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			id := ids[i&(len(ids)-1)]
			c.add(id, o)
			if _, ok := c.lookupFrom("carrier", id); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}
