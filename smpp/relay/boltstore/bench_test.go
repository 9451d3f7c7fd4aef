package boltstore_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp/relay"
	"github.com/smppguard/smppguard/smpp/relay/boltstore"
)

// benchFrame is about the size of a deliver_sm carrying a delivery receipt.
var benchFrame = bytes.Repeat([]byte{0x5a}, 160)

// benchCycle is one queued delivery as the relay does it: Enqueue (before acknowledging
// the SMSC), Peek (the drain loop), Remove (after the ESME's deliver_sm_resp).
func benchCycle(b *testing.B, s relay.Store) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchFrame)))
	for b.Loop() {
		if err := s.Enqueue("acc", benchFrame); err != nil {
			b.Fatal(err)
		}
		it, ok := s.Peek("acc")
		if !ok {
			b.Fatal("nothing queued")
		}
		s.Remove("acc", it.ID)
	}
}

// BenchmarkEnqueuePeekRemove: boltstore pays two fsynced commits per item (Enqueue and
// Remove; Peek is a read-only transaction). The figure depends on the disk under TMPDIR.
func BenchmarkEnqueuePeekRemove(b *testing.B) {
	b.Run("bolt", func(b *testing.B) {
		s, _ := tempStore(b, boltstore.Options{Limits: limits(1<<20, time.Hour)})
		benchCycle(b, s)
	})
	b.Run("mem", func(b *testing.B) {
		benchCycle(b, relay.NewMemStore(limits(1<<20, time.Hour)))
	})
}

// BenchmarkPeek: the drain loop's read with a backlog of 1000 items; no fsync.
func BenchmarkPeek(b *testing.B) {
	s, _ := tempStore(b, boltstore.Options{Limits: limits(1<<20, time.Hour)})
	for range 1000 {
		if err := s.Enqueue("acc", benchFrame); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Peek("acc"); !ok {
			b.Fatal("nothing queued")
		}
	}
}
