package smpp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// The seed corpora live in testdata/fuzz/FuzzParse and testdata/fuzz/FuzzFrameReader
// (one valid frame of every command, plus malformed frames and streams); the targets also
// seed themselves from commandCases. Run:
//
//	go test ./smpp -run '^$' -fuzz '^FuzzParse$' -fuzztime 60s
//	go test ./smpp -run '^$' -fuzz '^FuzzFrameReader$' -fuzztime 60s

// FuzzParse indexes arbitrary frames. command_length is forced to the frame's length so
// that the body parser, not the length check, sees the input.
func FuzzParse(f *testing.F) {
	for _, c := range commandCases() {
		f.Add(c.frame())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < HeaderLen {
			p, err := Parse(data)
			var st Status
			if !errors.As(err, &st) || st != StatusInvCmdLen || p.Bytes() != nil {
				t.Fatalf("short frame: %v", err)
			}
			return
		}
		frame := bytes.Clone(data)
		binary.BigEndian.PutUint32(frame, uint32(len(frame)))
		in := bytes.Clone(frame)
		p, err := Parse(frame)
		if !bytes.Equal(frame, in) {
			t.Fatal("Parse modified its input")
		}
		checkIndex(t, p, err)
		if err != nil {
			return
		}
		// A copy owns identical bytes and an identical index; so does a re-parse of it.
		c := p.Copy()
		if !bytes.Equal(c.Bytes(), in) {
			t.Fatal("Copy().Bytes() differs from the input")
		}
		sameIndex(t, p, c)
		q, err := Parse(c.Bytes())
		if err != nil {
			t.Fatalf("re-Parse: %v", err)
		}
		sameIndex(t, p, q)
		var r PDU
		if err := r.Reset(bytes.Clone(in)); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		sameIndex(t, p, &r)
		// The encoder agrees with the decoder: rebuilding the parsed values through Builder
		// gives the input back, byte for byte.
		if out, ok := rebuild(t, p); ok && !bytes.Equal(out, in) {
			t.Fatalf("Builder(Parse(x)) != x\n got %x\nwant %x", out, in)
		}
	})
}

// FuzzFrameReader feeds an arbitrary byte stream through a FrameReader with a small maximum
// and parses every frame it yields.
func FuzzFrameReader(f *testing.F) {
	var stream []byte
	for _, c := range commandCases() {
		fr := c.frame()
		f.Add(fr)
		if len(fr) <= fuzzMax {
			stream = append(stream, fr...)
		}
	}
	f.Add(stream)
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := readAll(t, bytes.NewReader(data), data, false)
		// ReadPDU (frame and PDU in one allocation) must read the same frames.
		oneByte := readAll(t, iotest.OneByteReader(bytes.NewReader(data)), data, true)
		if len(whole) != len(oneByte) {
			t.Fatalf("%d frames read at once, %d one byte at a time", len(whole), len(oneByte))
		}
		for i := range whole {
			if !bytes.Equal(whole[i], oneByte[i]) {
				t.Fatalf("frame %d depends on read sizes", i)
			}
		}
	})
}

const fuzzMax = 512

// readAll reads r to its end (with ReadPDU when withPDU, else ReadFrame), checking every
// frame and the final error against data, and indexes every frame.
func readAll(t *testing.T, r io.Reader, data []byte, withPDU bool) [][]byte {
	fr := NewFrameReader(r, fuzzMax)
	var frames [][]byte
	p := new(PDU)
	consumed := 0
	for {
		if len(frames) > len(data)/HeaderLen {
			t.Fatal("more frames than the stream can hold")
		}
		var frame []byte
		var err error
		if withPDU {
			var np *PDU
			np, frame, err = fr.ReadPDU()
			if (np == nil) != (err != nil) {
				t.Fatalf("ReadPDU: PDU %v with error %v", np != nil, err)
			}
			if np != nil {
				p = np
			}
		} else {
			frame, err = fr.ReadFrame()
		}
		rest := data[consumed:]
		if err != nil {
			if frame != nil {
				t.Fatal("frame with an error")
			}
			var fe *FrameError
			switch {
			case err == io.EOF:
				if len(rest) != 0 {
					t.Fatalf("io.EOF with %d bytes left", len(rest))
				}
			case errors.As(err, &fe):
				n := binary.BigEndian.Uint32(rest)
				if fe.Length != n || (n >= HeaderLen && n <= fuzzMax) || fe.Max != fuzzMax {
					t.Fatalf("FrameError %+v for length %d", fe, n)
				}
				var seq uint32
				if len(rest) >= HeaderLen {
					seq = binary.BigEndian.Uint32(rest[12:])
				}
				if fe.Seq != seq {
					t.Fatalf("FrameError seq %d, want %d", fe.Seq, seq)
				}
			case errors.Is(err, io.ErrUnexpectedEOF):
				if len(rest) == 0 {
					t.Fatal("unexpected EOF at a frame boundary")
				}
				if len(rest) >= 4 && int(binary.BigEndian.Uint32(rest)) <= len(rest) {
					t.Fatalf("unexpected EOF with a whole frame left")
				}
			default:
				t.Fatalf("unexpected error %v", err)
			}
			return frames
		}
		if len(frame) < HeaderLen || len(frame) > fuzzMax || cap(frame) != len(frame) {
			t.Fatalf("frame of %d bytes (cap %d), max %d", len(frame), cap(frame), fuzzMax)
		}
		if !bytes.Equal(frame, rest[:len(frame)]) || int(binary.BigEndian.Uint32(frame)) != len(frame) {
			t.Fatal("frame is not the next command_length bytes of the stream")
		}
		consumed += len(frame)
		frames = append(frames, frame)
		err = p.Reset(frame)
		checkIndex(t, p, err)
	}
}

// checkIndex checks what holds for any frame Parse was given: every exposed field lies
// within the frame, in layout order, before the TLVs; TLV iteration terminates within the
// frame; errors carry a non-OK Status; responses of known commands never fail.
func checkIndex(t *testing.T, p *PDU, err error) {
	t.Helper()
	if p == nil {
		t.Fatal("nil PDU")
	}
	if err != nil {
		var st Status
		var pe *ParseError
		if !errors.As(err, &st) || st == StatusOK || !errors.As(err, &pe) || err.Error() == "" {
			t.Fatalf("error without a status: %v", err)
		}
		if p.Bytes() != nil && p.ID().IsResponse() && layoutFor(p.ID()) != nil {
			t.Fatalf("response %s failed: %v", p.ID(), err)
		}
	}
	if p.Bytes() == nil {
		return
	}
	n := p.Len()
	tlvOff := p.TLVOffset()
	if tlvOff < HeaderLen || tlvOff > n {
		t.Fatalf("TLV offset %d in a %d-byte frame", tlvOff, n)
	}
	prev := HeaderLen
	if p.lay != nil {
		for _, s := range p.lay.specs {
			if !p.Has(s.f) {
				continue
			}
			b := p.Field(s.f)
			o, ok := p.FieldOffset(s.f)
			if !ok || b == nil || o < prev || o+len(b) > tlvOff || cap(b) != len(b) {
				t.Fatalf("%s: offset %d len %d cap %d (prev %d, TLVs at %d, frame %d)", s.f, o, len(b), cap(b), prev, tlvOff, n)
			}
			if len(b) > 0 && &b[0] != &p.Bytes()[o] {
				t.Fatalf("%s is not borrowed from the frame", s.f)
			}
			switch s.k {
			case kCString:
				if len(b) >= s.max || bytes.IndexByte(b, 0) >= 0 || p.Bytes()[o+len(b)] != 0 {
					t.Fatalf("%s: C-string of %d bytes, max %d", s.f, len(b), s.max)
				}
			case kInt1, kSMLength:
				if len(b) != 1 {
					t.Fatalf("%s: %d bytes", s.f, len(b))
				}
			}
			prev = o + len(b)
		}
	}
	if err == nil && p.Has(FieldShortMessage) {
		if l, _ := p.Uint8(FieldSMLength); int(l) != len(p.ShortMessage()) {
			t.Fatalf("sm_length %d, short_message %d", l, len(p.ShortMessage()))
		}
	}
	it := p.TLVs()
	end := tlvOff
	for i := 0; ; i++ {
		if i > (n-tlvOff)/4 {
			t.Fatal("TLV iteration does not terminate")
		}
		tlv, ok := it.Next()
		if !ok {
			break
		}
		if end+4+len(tlv.Value) > n || cap(tlv.Value) != len(tlv.Value) {
			t.Fatalf("TLV %d past the frame", i)
		}
		if tag := Tag(binary.BigEndian.Uint16(p.Bytes()[end:])); tag != tlv.Tag {
			t.Fatalf("TLV %d tag %04x, frame has %04x", i, uint16(tlv.Tag), uint16(tag))
		}
		end += 4 + len(tlv.Value)
	}
	if err == nil && end != n {
		t.Fatalf("TLVs of a parsed PDU end at %d, frame at %d", end, n)
	}
}

// sameIndex checks that p and q expose identical headers, fields, offsets and TLVs.
func sameIndex(t *testing.T, p, q *PDU) {
	t.Helper()
	if p.Header() != q.Header() || p.TLVOffset() != q.TLVOffset() {
		t.Fatalf("headers %v / %v", p.Header(), q.Header())
	}
	for f := FieldNone; f <= numFields; f++ {
		po, pok := p.FieldOffset(f)
		qo, qok := q.FieldOffset(f)
		if p.Has(f) != q.Has(f) || !bytes.Equal(p.Field(f), q.Field(f)) || po != qo || pok != qok {
			t.Fatalf("%s differs", f)
		}
	}
	pi, qi := p.TLVs(), q.TLVs()
	for {
		a, aok := pi.Next()
		b, bok := qi.Next()
		if aok != bok || a.Tag != b.Tag || !bytes.Equal(a.Value, b.Value) {
			t.Fatal("TLVs differ")
		}
		if !aok {
			return
		}
	}
}

// rebuild encodes p's parsed values with Builder. ok is false when p cannot be rebuilt
// by design: a lenient response whose body did not parse, sm_length 255 (parsed, refused
// by the encoder), or an empty distribution-list name (Dest has no way to say it).
func rebuild(t *testing.T, p *PDU) ([]byte, bool) {
	t.Helper()
	if p.n == 0 && p.TLVOffset() == p.Len() && p.Len() > HeaderLen {
		return nil, false // response body that did not parse: relayed as is
	}
	b := NewBuilder(p.ID(), p.Status(), p.Seq())
	if p.n > 0 {
		for _, s := range p.lay.specs {
			v := p.Field(s.f)
			switch s.k {
			case kInt1:
				b.Int(v[0])
			case kCString:
				b.CString(string(v))
			case kSMLength:
				if len(p.ShortMessage()) > 254 {
					return nil, false
				}
				b.ShortMessage(p.ShortMessage())
			case kOctets:
				// written with sm_length
			case kDestList:
				dests, ok := decodeDests(v)
				if !ok {
					return nil, false
				}
				b.Dests(dests)
			case kUnsuccList:
				b.Unsuccessful(decodeUnsuccess(t, v))
			}
		}
	}
	it := p.TLVs()
	for tlv, ok := it.Next(); ok; tlv, ok = it.Next() {
		b.TLV(tlv.Tag, tlv.Value)
	}
	out, err := b.Bytes()
	if err != nil {
		t.Fatalf("Builder refuses what Parse accepted: %v", err)
	}
	return out, true
}

// decodeDests splits an indexed dest_address list (already validated by Parse).
func decodeDests(b []byte) ([]Dest, bool) {
	var ds []Dest
	for len(b) > 0 {
		flag := b[0]
		b = b[1:]
		var d Dest
		if flag == 1 {
			d.TON, d.NPI = b[0], b[1]
			b = b[2:]
		}
		i := bytes.IndexByte(b, 0)
		if flag == 1 {
			d.Addr = string(b[:i])
		} else {
			if i == 0 {
				return nil, false
			}
			d.DLName = string(b[:i])
		}
		b = b[i+1:]
		ds = append(ds, d)
	}
	return ds, true
}

// decodeUnsuccess splits an indexed unsuccess_sme list.
func decodeUnsuccess(t *testing.T, b []byte) []Unsuccess {
	var us []Unsuccess
	for len(b) > 0 {
		u := Unsuccess{TON: b[0], NPI: b[1]}
		b = b[2:]
		i := bytes.IndexByte(b, 0)
		u.Addr = string(b[:i])
		u.Status = Status(binary.BigEndian.Uint32(b[i+1:]))
		b = b[i+5:]
		us = append(us, u)
	}
	if us == nil {
		us = []Unsuccess{}
	}
	return us
}

// readCorpusFile reads a one-value []byte file in Go's fuzz corpus format.
func readCorpusFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
		!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s: not a []byte corpus file", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// TestFuzzSeedCorpus checks that the committed corpora hold a valid frame of every
// command and some malformed input, and that every seed passes its target's checks.
func TestFuzzSeedCorpus(t *testing.T) {
	for _, target := range []string{"FuzzParse", "FuzzFrameReader"} {
		t.Run(target, func(t *testing.T) {
			files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no corpus: %v", err)
			}
			valid := map[CommandID]bool{}
			bad := 0
			for _, path := range files {
				data := readCorpusFile(t, path)
				r := bufio.NewReader(bytes.NewReader(data))
				fr := NewFrameReader(r, DefaultMaxPDUSize)
				for {
					frame, err := fr.ReadFrame()
					if err != nil {
						if err != io.EOF {
							bad++
						}
						break
					}
					p, err := Parse(frame)
					if err != nil {
						bad++
						continue
					}
					valid[p.ID()] = true
				}
			}
			for id := range commandNames {
				if !valid[id] {
					t.Errorf("no valid %s seed", id)
				}
			}
			if bad < 5 {
				t.Errorf("only %d malformed seeds", bad)
			}
		})
	}
}
