package smpp

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Builder encodes a PDU the proxy originates (binds, responses, enquire_link, generated
// receipts). It follows the command's layout: mandatory fields are appended in order with
// the setter matching their type, then TLVs. Every length is checked (C-string limits,
// sm_length <= 254, TLV value <= 65535); the first violation is kept and returned by Bytes.
//
//	b := smpp.NewBuilder(smpp.SubmitSMResp, smpp.StatusOK, seq)
//	frame, err := b.CString("msg-1").Bytes()
type Builder struct {
	buf []byte
	lay *layout
	i   int // next mandatory field
	cnt int // the last count/length field written
	err error
}

// NewBuilder starts a PDU with the given header fields.
func NewBuilder(id CommandID, status Status, seq uint32) *Builder {
	b := &Builder{buf: make([]byte, HeaderLen, 64)}
	binary.BigEndian.PutUint32(b.buf[4:], uint32(id))
	binary.BigEndian.PutUint32(b.buf[8:], uint32(status))
	binary.BigEndian.PutUint32(b.buf[12:], seq)
	b.lay = layoutFor(id)
	if b.lay == nil {
		b.err = fmt.Errorf("smpp: encode: unknown command_id %s", id)
	}
	return b
}

func (b *Builder) next(k kind) (fieldSpec, bool) {
	if b.err != nil {
		return fieldSpec{}, false
	}
	if b.i >= len(b.lay.specs) {
		b.err = fmt.Errorf("smpp: encode %s: more mandatory fields than the command has", b.id())
		return fieldSpec{}, false
	}
	s := b.lay.specs[b.i]
	if s.k != k {
		b.err = fmt.Errorf("smpp: encode %s: field %d is %s, not this type", b.id(), b.i, s.f)
		return fieldSpec{}, false
	}
	b.i++
	return s, true
}

func (b *Builder) id() CommandID { return CommandID(binary.BigEndian.Uint32(b.buf[4:])) }

// CString appends the next C-string field (also used for the time fields).
func (b *Builder) CString(v string) *Builder {
	s, ok := b.next(kCString)
	if !ok {
		return b
	}
	if len(v) > s.max-1 {
		b.err = fmt.Errorf("smpp: encode %s: %s is %d characters, at most %d allowed", b.id(), s.f, len(v), s.max-1)
		return b
	}
	for i := 0; i < len(v); i++ {
		if v[i] == 0 {
			b.err = fmt.Errorf("smpp: encode %s: %s contains a NUL byte", b.id(), s.f)
			return b
		}
	}
	b.buf = append(b.buf, v...)
	b.buf = append(b.buf, 0)
	return b
}

// Int appends the next 1-octet integer field.
func (b *Builder) Int(v byte) *Builder {
	if _, ok := b.next(kInt1); ok {
		b.buf = append(b.buf, v)
		b.cnt = int(v)
	}
	return b
}

// ShortMessage appends sm_length and short_message (at most 254 octets).
func (b *Builder) ShortMessage(v []byte) *Builder {
	if _, ok := b.next(kSMLength); !ok {
		return b
	}
	if len(v) > 254 {
		b.err = fmt.Errorf("smpp: encode %s: short_message is %d octets, at most 254 allowed (use message_payload)", b.id(), len(v))
		return b
	}
	if _, ok := b.next(kOctets); !ok {
		return b
	}
	b.buf = append(b.buf, byte(len(v)))
	b.buf = append(b.buf, v...)
	return b
}

// Dest is one submit_multi destination: an SME address, or a distribution list when DLName is set.
type Dest struct {
	TON, NPI byte
	Addr     string
	DLName   string
}

// Dests appends submit_multi's dest_address list; number_of_dests must have been written
// with Int(len(dests)).
func (b *Builder) Dests(dests []Dest) *Builder {
	if _, ok := b.next(kDestList); !ok {
		return b
	}
	if len(dests) == 0 || len(dests) != b.cnt {
		b.err = fmt.Errorf("smpp: encode %s: %d destinations, number_of_dests says %d (1..254)", b.id(), len(dests), b.cnt)
		return b
	}
	for _, d := range dests {
		if d.DLName != "" {
			if len(d.DLName) > 20 {
				b.err = fmt.Errorf("smpp: encode %s: dl_name longer than 20", b.id())
				return b
			}
			if strings.IndexByte(d.DLName, 0) >= 0 {
				b.err = fmt.Errorf("smpp: encode %s: dl_name contains a NUL byte", b.id())
				return b
			}
			b.buf = append(b.buf, 2)
			b.buf = append(append(b.buf, d.DLName...), 0)
			continue
		}
		if len(d.Addr) > 20 {
			b.err = fmt.Errorf("smpp: encode %s: destination_addr longer than 20", b.id())
			return b
		}
		if strings.IndexByte(d.Addr, 0) >= 0 {
			b.err = fmt.Errorf("smpp: encode %s: destination_addr contains a NUL byte", b.id())
			return b
		}
		b.buf = append(b.buf, 1, d.TON, d.NPI)
		b.buf = append(append(b.buf, d.Addr...), 0)
	}
	return b
}

// Unsuccess is one submit_multi_resp unsuccess_sme entry.
type Unsuccess struct {
	TON, NPI byte
	Addr     string
	Status   Status
}

// Unsuccessful appends submit_multi_resp's unsuccess_sme list; no_unsuccess must have been
// written with Int(len(list)).
func (b *Builder) Unsuccessful(list []Unsuccess) *Builder {
	if _, ok := b.next(kUnsuccList); !ok {
		return b
	}
	if len(list) != b.cnt {
		b.err = fmt.Errorf("smpp: encode %s: %d unsuccess_sme, no_unsuccess says %d", b.id(), len(list), b.cnt)
		return b
	}
	for _, u := range list {
		if len(u.Addr) > 20 {
			b.err = fmt.Errorf("smpp: encode %s: unsuccess_sme address longer than 20", b.id())
			return b
		}
		if strings.IndexByte(u.Addr, 0) >= 0 {
			b.err = fmt.Errorf("smpp: encode %s: unsuccess_sme address contains a NUL byte", b.id())
			return b
		}
		b.buf = append(b.buf, u.TON, u.NPI)
		b.buf = append(append(b.buf, u.Addr...), 0)
		b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(u.Status))
	}
	return b
}

// TLV appends an optional parameter. All mandatory fields must have been written.
func (b *Builder) TLV(t Tag, v []byte) *Builder {
	if b.err != nil {
		return b
	}
	if b.i != len(b.lay.specs) {
		b.err = fmt.Errorf("smpp: encode %s: TLV before all mandatory fields", b.id())
		return b
	}
	if len(v) > 0xFFFF {
		b.err = fmt.Errorf("smpp: encode %s: TLV 0x%04x value is %d octets, at most 65535 allowed", b.id(), uint16(t), len(v))
		return b
	}
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(t))
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(len(v)))
	b.buf = append(b.buf, v...)
	return b
}

// TLVByte appends a 1-octet optional parameter.
func (b *Builder) TLVByte(t Tag, v byte) *Builder { return b.TLV(t, []byte{v}) }

// TLVString appends a C-octet-string optional parameter (value plus NUL).
func (b *Builder) TLVString(t Tag, v string) *Builder {
	return b.TLV(t, append([]byte(v), 0))
}

// Bytes finishes the PDU: it checks that the body is complete (or, for commands whose body
// is optional, absent) and writes command_length.
func (b *Builder) Bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.i != len(b.lay.specs) && !(b.i == 0 && b.lay.optionalBody) {
		return nil, fmt.Errorf("smpp: encode %s: %d of %d mandatory fields written", b.id(), b.i, len(b.lay.specs))
	}
	if uint64(len(b.buf)) > 0xFFFFFFFF { // uint64: the constant does not fit a 32-bit int
		return nil, fmt.Errorf("smpp: encode %s: PDU too long", b.id())
	}
	binary.BigEndian.PutUint32(b.buf, uint32(len(b.buf)))
	return b.buf, nil
}

// PDU finishes the PDU and indexes it.
func (b *Builder) PDU() (*PDU, error) {
	frame, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	return Parse(frame)
}

// HeaderOnly encodes a body-less PDU: enquire_link(_resp), unbind(_resp), generic_nack,
// cancel_sm_resp, replace_sm_resp, or any error response without a body.
func HeaderOnly(id CommandID, status Status, seq uint32) []byte {
	b := make([]byte, HeaderLen)
	binary.BigEndian.PutUint32(b[0:], HeaderLen)
	binary.BigEndian.PutUint32(b[4:], uint32(id))
	binary.BigEndian.PutUint32(b[8:], uint32(status))
	binary.BigEndian.PutUint32(b[12:], seq)
	return b
}

// BindParams are the fields of a bind request.
type BindParams struct {
	SystemID         string
	Password         string
	SystemType       string
	InterfaceVersion byte // 0 means 0x34
	AddrTON, AddrNPI byte
	AddressRange     string
}

// Encode builds a bind request of the given kind.
func (bp BindParams) Encode(id CommandID, seq uint32) ([]byte, error) {
	if !id.IsBind() {
		return nil, fmt.Errorf("smpp: encode: %s is not a bind", id)
	}
	iv := bp.InterfaceVersion
	if iv == 0 {
		iv = 0x34
	}
	return NewBuilder(id, StatusOK, seq).CString(bp.SystemID).CString(bp.Password).CString(bp.SystemType).
		Int(iv).Int(bp.AddrTON).Int(bp.AddrNPI).CString(bp.AddressRange).Bytes()
}

// BindParamsOf reads the fields of a bind request PDU.
func BindParamsOf(p *PDU) BindParams {
	iv, _ := p.Uint8(FieldInterfaceVersion)
	ton, _ := p.Uint8(FieldAddrTON)
	npi, _ := p.Uint8(FieldAddrNPI)
	return BindParams{
		SystemID: p.CString(FieldSystemID), Password: p.CString(FieldPassword), SystemType: p.CString(FieldSystemType),
		InterfaceVersion: iv, AddrTON: ton, AddrNPI: npi, AddressRange: p.CString(FieldAddressRange),
	}
}

// Response builds the response to req with the given status and, for responses that carry a
// message_id (submit_sm_resp, data_sm_resp, submit_multi_resp, query_sm_resp), nothing else:
// use NewBuilder for richer bodies. An error status gets a header-only response, as SMPP 3.4
// allows; deliver_sm_resp always carries its empty message_id. A successful query_sm_resp
// must carry its whole body: it gets an empty final_date, message_state UNKNOWN (7) and
// error_code 0 (use NewBuilder to report a known state).
func Response(req *PDU, status Status, messageID string) ([]byte, error) {
	rid := req.ID().Response()
	if rid == GenericNack {
		return nil, fmt.Errorf("smpp: %s has no response", req.ID())
	}
	switch rid {
	case SubmitSMResp, DataSMResp, DeliverSMResp:
		if status != StatusOK && rid != DeliverSMResp {
			return HeaderOnly(rid, status, req.Seq()), nil
		}
		return NewBuilder(rid, status, req.Seq()).CString(messageID).Bytes()
	case SubmitMultiResp:
		if status != StatusOK {
			return HeaderOnly(rid, status, req.Seq()), nil
		}
		return NewBuilder(rid, status, req.Seq()).CString(messageID).Int(0).Unsuccessful(nil).Bytes()
	case QuerySMResp:
		if status != StatusOK {
			return HeaderOnly(rid, status, req.Seq()), nil
		}
		return NewBuilder(rid, status, req.Seq()).CString(messageID).CString("").Int(7).Int(0).Bytes()
	case BindReceiverResp, BindTransmitterResp, BindTransceiverResp:
		return nil, fmt.Errorf("smpp: use BindResponse for %s", rid)
	}
	return HeaderOnly(rid, status, req.Seq()), nil
}

// BindResponse builds a bind_*_resp echoing req's sequence number. A successful response
// carries systemID and the sc_interface_version TLV (0x34).
func BindResponse(req *PDU, status Status, systemID string) ([]byte, error) {
	rid := req.ID().Response()
	if !req.ID().IsBind() {
		return nil, fmt.Errorf("smpp: %s is not a bind", req.ID())
	}
	if status != StatusOK {
		return HeaderOnly(rid, status, req.Seq()), nil
	}
	return NewBuilder(rid, status, req.Seq()).CString(systemID).TLVByte(TagSCInterfaceVersion, 0x34).Bytes()
}
