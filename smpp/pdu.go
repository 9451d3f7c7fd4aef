package smpp

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// HeaderLen is the length of the fixed PDU header.
const HeaderLen = 16

// DefaultMaxPDUSize is the default bound on command_length: 64 KiB of body plus the header.
const DefaultMaxPDUSize = 64*1024 + HeaderLen

// Header is the fixed 16-byte PDU header.
type Header struct {
	Length uint32
	ID     CommandID
	Status Status
	Seq    uint32
}

// ParseHeader reads the header from the first 16 bytes of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrShortHeader
	}
	return Header{
		Length: binary.BigEndian.Uint32(b[0:4]),
		ID:     CommandID(binary.BigEndian.Uint32(b[4:8])),
		Status: Status(binary.BigEndian.Uint32(b[8:12])),
		Seq:    binary.BigEndian.Uint32(b[12:16]),
	}, nil
}

// PDU is one SMPP frame: its bytes, kept as received, and an index of its mandatory fields
// and optional-parameter (TLV) stream. Accessors return sub-slices of the frame (borrowed:
// valid as long as the PDU is and the frame is not modified); nothing is decoded per field.
//
// A PDU is relayed by forwarding Bytes(), after at most an in-place SetSeq. A PDU is not safe
// for concurrent mutation; concurrent reads are fine.
type PDU struct {
	raw []byte
	lay *layout
	n   uint8                     // mandatory fields present (all of lay.specs, or 0 for an absent optional body)
	off [maxBodyFields + 1]uint32 // off[i] is where field i starts; off[n] is where the TLVs start
	// tail: the session reader that read this frame had nothing more buffered behind it
	// (see Tail).
	tail bool
}

// ParseError describes a malformed PDU body: Status is the command_status to answer it with.
type ParseError struct {
	Status Status
	Field  Field
	Offset int
	Reason string
}

func (e *ParseError) Error() string {
	if e.Field != FieldNone {
		// Status.String, not %s of the Status: a Status is an error, and fmt would use Error().
		return fmt.Sprintf("smpp: %s at offset %d: %s (%s)", e.Field, e.Offset, e.Reason, e.Status.String())
	}
	return fmt.Sprintf("smpp: offset %d: %s (%s)", e.Offset, e.Reason, e.Status.String())
}

// Unwrap lets errors.As(err, &status) find the command_status.
func (e *ParseError) Unwrap() error { return e.Status }

// Parse indexes a complete frame (header included). The PDU keeps frame; frame must not be
// modified afterwards except through the PDU's setters.
//
// Requests are checked strictly: a malformed body is an error whose Status is the
// command_status to answer with. Responses are indexed leniently (a response is relayed to
// whoever is waiting for it, not judged): an error response may omit its body, and a body
// that does not parse leaves the PDU with no fields and no TLVs.
func Parse(frame []byte) (*PDU, error) {
	p := new(PDU)
	if err := p.Reset(frame); err != nil {
		return p, err
	}
	return p, nil
}

// Reset re-indexes p over frame, reusing p. See Parse. On error p still holds frame and its
// header is readable, except when frame is shorter than the header: then p holds nothing.
func (p *PDU) Reset(frame []byte) error {
	p.raw = frame
	p.lay = nil
	p.n = 0
	p.tail = false
	p.off[0] = HeaderLen
	if len(frame) < HeaderLen {
		p.raw = nil
		return &ParseError{Status: StatusInvCmdLen, Reason: "frame shorter than the 16-byte header"}
	}
	if int(binary.BigEndian.Uint32(frame)) != len(frame) {
		return &ParseError{Status: StatusInvCmdLen, Reason: fmt.Sprintf("command_length %d does not match the frame's %d bytes", binary.BigEndian.Uint32(frame), len(frame))}
	}
	id := p.ID()
	lay := layoutFor(id)
	if lay == nil {
		return &ParseError{Status: StatusInvCmdID, Reason: "unknown command_id " + id.String()}
	}
	p.lay = lay
	if id.IsResponse() {
		if len(frame) == HeaderLen && lay.optionalBody {
			return nil
		}
		if err := p.index(); err != nil {
			p.n = 0
			p.off[0] = uint32(len(frame)) // relay as is, expose nothing
		}
		return nil
	}
	return p.index()
}

func (p *PDU) index() error {
	b := p.raw
	off := HeaderLen
	var count int // from number_of_dests / no_unsuccess / sm_length
	for i, s := range p.lay.specs {
		p.off[i] = uint32(off)
		switch s.k {
		case kInt1, kSMLength:
			if off >= len(b) {
				return &ParseError{Status: bodyStatus(s), Field: s.f, Offset: off, Reason: "body ends before this field"}
			}
			count = int(b[off])
			off++
		case kCString:
			end, err := cstring(b, off, s)
			if err != nil {
				return err
			}
			off = end
		case kOctets:
			if count > len(b)-off {
				return &ParseError{Status: StatusInvMsgLen, Field: s.f, Offset: off, Reason: fmt.Sprintf("sm_length %d exceeds the %d bytes left", count, len(b)-off)}
			}
			off += count
		case kDestList:
			end, err := destList(b, off, count)
			if err != nil {
				return err
			}
			off = end
		case kUnsuccList:
			end, err := unsuccList(b, off, count)
			if err != nil {
				return err
			}
			off = end
		}
	}
	p.n = uint8(len(p.lay.specs))
	p.off[p.n] = uint32(off)
	return checkTLVs(b, off)
}

func bodyStatus(s fieldSpec) Status {
	if s.bad != 0 {
		return s.bad
	}
	return StatusInvMsgLen
}

// cstring returns the offset after the NUL of the C-string at off.
func cstring(b []byte, off int, s fieldSpec) (int, error) {
	lim := len(b) - off
	if lim > s.max {
		lim = s.max
	}
	if lim <= 0 {
		return 0, &ParseError{Status: bodyStatus(s), Field: s.f, Offset: off, Reason: "body ends before this field"}
	}
	i := bytes.IndexByte(b[off:off+lim], 0)
	if i < 0 {
		if lim == s.max {
			return 0, &ParseError{Status: bodyStatus(s), Field: s.f, Offset: off, Reason: fmt.Sprintf("longer than %d characters", s.max-1)}
		}
		return 0, &ParseError{Status: bodyStatus(s), Field: s.f, Offset: off, Reason: "no NUL terminator before the end of the body"}
	}
	return off + i + 1, nil
}

var (
	specDestAddr = fieldSpec{f: FieldDestinationAddr, k: kCString, max: 21, bad: StatusInvDstAdr}
	specDLName   = fieldSpec{f: FieldDestAddresses, k: kCString, max: 21, bad: StatusInvDLName}
	specUnsAddr  = fieldSpec{f: FieldUnsuccessSMEs, k: kCString, max: 21, bad: StatusInvMsgLen}
)

func destList(b []byte, off, n int) (int, error) {
	if n == 0 {
		return 0, &ParseError{Status: StatusInvNumDests, Field: FieldNumberOfDests, Offset: off - 1, Reason: "number_of_dests is 0"}
	}
	for range n {
		if off >= len(b) {
			return 0, &ParseError{Status: StatusInvNumDests, Field: FieldDestAddresses, Offset: off, Reason: "fewer dest_address entries than number_of_dests"}
		}
		flag := b[off]
		off++
		var err error
		switch flag {
		case 1: // SME address: ton, npi, destination_addr
			if len(b)-off < 2 {
				return 0, &ParseError{Status: StatusInvNumDests, Field: FieldDestAddresses, Offset: off, Reason: "truncated SME address"}
			}
			off, err = cstring(b, off+2, specDestAddr)
		case 2: // distribution list name
			off, err = cstring(b, off, specDLName)
		default:
			return 0, &ParseError{Status: StatusInvDestFlag, Field: FieldDestAddresses, Offset: off - 1, Reason: fmt.Sprintf("dest_flag %d is neither 1 nor 2", flag)}
		}
		if err != nil {
			return 0, err
		}
	}
	return off, nil
}

func unsuccList(b []byte, off, n int) (int, error) {
	for range n {
		if len(b)-off < 2 {
			return 0, &ParseError{Status: StatusInvMsgLen, Field: FieldUnsuccessSMEs, Offset: off, Reason: "truncated unsuccess_sme"}
		}
		end, err := cstring(b, off+2, specUnsAddr)
		if err != nil {
			return 0, err
		}
		if len(b)-end < 4 {
			return 0, &ParseError{Status: StatusInvMsgLen, Field: FieldUnsuccessSMEs, Offset: end, Reason: "truncated error_status_code"}
		}
		off = end + 4
	}
	return off, nil
}

func checkTLVs(b []byte, off int) error {
	for off < len(b) {
		if len(b)-off < 4 {
			return &ParseError{Status: StatusInvOptParStream, Offset: off, Reason: fmt.Sprintf("%d trailing bytes are not a TLV", len(b)-off)}
		}
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		if l > len(b)-off-4 {
			return &ParseError{Status: StatusInvParLen, Offset: off, Reason: fmt.Sprintf("TLV 0x%04x length %d exceeds the %d bytes left", binary.BigEndian.Uint16(b[off:]), l, len(b)-off-4)}
		}
		off += 4 + l
	}
	return nil
}

// Bytes returns the frame, header included. This is what the relay forwards.
func (p *PDU) Bytes() []byte { return p.raw }

// Tail reports whether p was the last frame its session's reader had read: nothing else
// had arrived behind it (window 1, or the end of a burst). A session written to with such a
// PDU (TrySend, TryWriteResponsePDU) writes it at once on the caller's goroutine when its
// writer has nothing queued, saving the hand-off to the writer goroutine; PDUs with more
// behind them are queued, so that a burst leaves in few writes. Parse and Reset clear it.
func (p *PDU) Tail() bool { return p.tail }

// Len returns the frame length.
func (p *PDU) Len() int { return len(p.raw) }

// ID returns the command_id.
func (p *PDU) ID() CommandID { return CommandID(binary.BigEndian.Uint32(p.raw[4:8])) }

// Status returns the command_status.
func (p *PDU) Status() Status { return Status(binary.BigEndian.Uint32(p.raw[8:12])) }

// Seq returns the sequence_number.
func (p *PDU) Seq() uint32 { return binary.BigEndian.Uint32(p.raw[12:16]) }

// Header returns the decoded header.
func (p *PDU) Header() Header {
	h, _ := ParseHeader(p.raw)
	return h
}

// SetSeq patches the sequence_number in place (bytes 12–16): the only change the relay makes.
func (p *PDU) SetSeq(seq uint32) { binary.BigEndian.PutUint32(p.raw[12:16], seq) }

// SetStatus patches the command_status in place.
func (p *PDU) SetStatus(s Status) { binary.BigEndian.PutUint32(p.raw[8:12], uint32(s)) }

// Has reports whether the PDU's body holds mandatory field f.
func (p *PDU) Has(f Field) bool {
	return p.lay != nil && p.n > 0 && f < numFields && p.lay.pos[f] >= 0
}

// Field returns the bytes of mandatory field f: a C-string without its NUL, a 1-byte integer
// as one byte, short_message as its octets, a list as its encoded entries. Nil when absent.
func (p *PDU) Field(f Field) []byte {
	if !p.Has(f) {
		return nil
	}
	i := p.lay.pos[f]
	start, end := p.off[i], p.off[i+1]
	if p.lay.specs[i].k == kCString {
		end-- // drop NUL
	}
	return p.raw[start:end:end]
}

// CString returns a C-string field as a string (allocates).
func (p *PDU) CString(f Field) string { return string(p.Field(f)) }

// Uint8 returns a 1-octet field and whether it is present.
func (p *PDU) Uint8(f Field) (byte, bool) {
	b := p.Field(f)
	if len(b) != 1 {
		return 0, false
	}
	return b[0], true
}

// ShortMessage returns the short_message octets (nil for commands without one).
func (p *PDU) ShortMessage() []byte { return p.Field(FieldShortMessage) }

// FieldOffset returns the offset in Bytes() where field f starts, and false when absent.
// It lets the relay patch a 1-octet field in place.
func (p *PDU) FieldOffset(f Field) (int, bool) {
	if !p.Has(f) {
		return 0, false
	}
	return int(p.off[p.lay.pos[f]]), true
}

// TLVOffset returns the offset in Bytes() where the optional parameters start.
func (p *PDU) TLVOffset() int { return int(p.off[p.n]) }

// TLVs returns an iterator over the optional parameters in wire order, duplicates included.
func (p *PDU) TLVs() TLVIter {
	if p.raw == nil {
		return TLVIter{}
	}
	return TLVIter{b: p.raw, off: int(p.off[p.n])}
}

// TLV returns the value of the first optional parameter with tag t.
func (p *PDU) TLV(t Tag) ([]byte, bool) {
	it := p.TLVs()
	for {
		tlv, ok := it.Next()
		if !ok {
			return nil, false
		}
		if tlv.Tag == t {
			return tlv.Value, true
		}
	}
}

// Copy returns a deep copy of p that owns its bytes.
func (p *PDU) Copy() *PDU {
	c := *p
	c.raw = bytes.Clone(p.raw)
	return &c
}

// String describes the PDU for logs: command, sequence, status and length. No contents.
func (h Header) String() string {
	return fmt.Sprintf("%s seq=%d status=%s len=%d", h.ID, h.Seq, h.Status.String(), h.Length)
}
