package smpp

import (
	"bytes"
	"testing"

	gpdu "github.com/fiorix/go-smpp/smpp/pdu"
)

// go test ./smpp -run '^$' -bench . -benchmem

// BenchmarkParseSubmitSM re-indexes a typical 126-byte OTP submit_sm (one TLV) with Reset on
// a reused PDU: the relay's hot path. It must not allocate.
func BenchmarkParseSubmitSM(b *testing.B) {
	f := otpSubmitSM(b)
	p := new(PDU)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if err := p.Reset(f); err != nil {
			b.Fatal(err)
		}
	}
}

// pduSink keeps the parsed PDU alive, so that escape analysis cannot put it on the stack.
var pduSink *PDU

// BenchmarkParseAlloc is Parse with a new PDU per frame.
func BenchmarkParseAlloc(b *testing.B) {
	f := otpSubmitSM(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		p, err := Parse(f)
		if err != nil {
			b.Fatal(err)
		}
		pduSink = p
	}
}

// BenchmarkSetSeq is the relay's only change to a forwarded PDU.
func BenchmarkSetSeq(b *testing.B) {
	p, err := Parse(otpSubmitSM(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var seq uint32
	for b.Loop() {
		seq++
		p.SetSeq(seq)
	}
}

// loopReader serves b over and over, in reads of at most 1500 bytes (one TCP segment).
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p[:min(len(p), 1500)], l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

// BenchmarkFrameReader reads a stream of OTP submit_sm frames; one op is one frame.
func BenchmarkFrameReader(b *testing.B) {
	f := otpSubmitSM(b)
	r := NewFrameReader(&loopReader{b: bytes.Repeat(f, 1000)}, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if _, err := r.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadPDU is what a session's reader does per PDU: read the frame and index it, the
// frame and its PDU in one allocation.
func BenchmarkReadPDU(b *testing.B) {
	f := otpSubmitSM(b)
	r := NewFrameReader(&loopReader{b: bytes.Repeat(f, 1000)}, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		p, frame, err := r.ReadPDU()
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Reset(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFieldAccess reads what a policy looks at: destination_addr, short_message and a TLV.
func BenchmarkFieldAccess(b *testing.B) {
	p, err := Parse(otpSubmitSM(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		d := p.Field(FieldDestinationAddr)
		sm := p.ShortMessage()
		v, ok := p.TLV(TagUserMessageReference)
		if !ok {
			b.Fatal("no TLV")
		}
		n += len(d) + len(sm) + len(v)
	}
	if n == 0 {
		b.Fatal(n)
	}
}

// BenchmarkBuildSubmitSM encodes the OTP submit_sm with Builder.
func BenchmarkBuildSubmitSM(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		otpSubmitSM(b)
	}
}

// BenchmarkGoSMPPDecode decodes the same 126 bytes with github.com/fiorix/go-smpp, for comparison.
func BenchmarkGoSMPPDecode(b *testing.B) {
	f := otpSubmitSM(b)
	r := bytes.NewReader(f)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		r.Reset(f)
		if _, err := gpdu.Decode(r); err != nil {
			b.Fatal(err)
		}
	}
}
