package interceptor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/smppguard/smppguard/smpp"
)

// esmUDHI is the esm_class bit saying the message starts with a User Data Header.
const esmUDHI = 0x40

// Errors Decode returns. The message's addresses and data_coding are filled in all the same;
// Text is empty and Binary is true.
var (
	// ErrNoPDU: the Message has no PDU to decode.
	ErrNoPDU = errors.New("interceptor: decode: no PDU")
	// ErrMalformedUDH: esm_class has UDHI set but the UDH does not fit in the message data.
	ErrMalformedUDH = errors.New("interceptor: decode: malformed user data header")
	// ErrOddUCS2: UCS2 (data_coding 0x08) text with an odd number of octets.
	ErrOddUCS2 = errors.New("interceptor: decode: UCS2 text with an odd number of octets")
)

// Values of DecodeOptions.Default0.
const (
	Default0GSM7   = "gsm7"
	Default0Latin1 = "latin1"
	Default0ASCII  = "ascii"
)

// DecodeOptions say how an account's "SMSC default alphabet" text is encoded. The zero value
// is the SMPP default: GSM 03.38, one septet per octet (unpacked).
type DecodeOptions struct {
	// GSMPacked: default-alphabet GSM 7-bit text is packed (8 septets in 7 octets) rather
	// than one septet per octet. Only applies when Default0 is "gsm7" (or empty).
	GSMPacked bool
	// Default0 is what the account's data_coding 0x00 (and the other "default alphabet"
	// codings of GSM 03.38: 0xC0–0xDF, 0xF0–0xF3, 0x10–0x13 ...) really carries: "gsm7"
	// (empty means gsm7), "latin1" (ISO-8859-1) or "ascii" (IA5). An unknown value is
	// decoded as gsm7; Validate reports it.
	Default0 string
}

// Validate reports options that Decode would silently treat as the default.
func (o DecodeOptions) Validate() error {
	switch o.Default0 {
	case "", Default0GSM7:
	case Default0Latin1, Default0ASCII:
		if o.GSMPacked {
			return fmt.Errorf("interceptor: decode options: gsm_packed applies to gsm7 only, not to default alphabet %q", o.Default0)
		}
	default:
		return fmt.Errorf("interceptor: decode options: default alphabet %q is not gsm7, latin1 or ascii", o.Default0)
	}
	return nil
}

// Decode fills in m.Command, Source, Dest, DestTON, DestNPI, DataCoding, Text, Binary and
// Part from m.PDU with the default DecodeOptions. See DecodeWith.
func Decode(m *Message) error { return DecodeWith(m, DecodeOptions{}) }

// DecodeWith fills in m.Command, Source, Dest, DestTON, DestNPI, DataCoding, Text, Binary and
// Part from m.PDU. The PDU is not modified. It works for submit_sm, submit_multi, data_sm and
// deliver_sm; for submit_multi, Dest/DestTON/DestNPI are the first SME destination (a list
// with only distribution lists leaves them empty).
//
// The text comes from short_message, or from the message_payload TLV when sm_length is 0 (or
// the command has no short_message, as data_sm). When esm_class has UDHI (0x40) the User Data
// Header is stripped; its concatenation element (IE 0x00, 8-bit reference, or IE 0x08, 16-bit
// reference) sets Part, else the sar_msg_ref_num/sar_total_segments/sar_segment_seqnum TLVs
// do. Invalid concatenation data (total 0, seq 0 or seq > total, wrong lengths) is ignored.
//
// data_coding (SMPP 3.4 §5.2.19, and the GSM 03.38 coding groups it refers to):
//
//	0x00             SMSC default alphabet: see DecodeOptions (GSM 03.38 unpacked by default)
//	0x01             IA5 / ASCII (octets above 0x7F become U+FFFD)
//	0x03             Latin-1, ISO-8859-1 (strictly: 0x80–0x9F are C1 controls, not Windows-1252)
//	0x08             UCS2, decoded as UTF-16BE: surrogate pairs are combined, a lone surrogate
//	                 becomes U+FFFD, an odd number of octets is ErrOddUCS2
//	0x02, 0x04       8-bit binary: Binary
//	0x05 JIS, 0x06 ISO-8859-5, 0x07 ISO-8859-8, 0x09–0x0F: not decoded: Binary
//	0x10–0x7F        GSM 03.38 general data coding (reserved in SMPP 3.4, sent in practice
//	                 for flash SMS, e.g. 0x10, 0x18): bit 5 set (compressed) is Binary, else
//	                 bits 3–2 select default alphabet / 8-bit (Binary) / UCS2 / reserved (Binary)
//	0x80–0xBF        reserved: Binary
//	0xC0–0xDF        message waiting indication groups: default alphabet
//	0xE0–0xEF        message waiting indication group: UCS2
//	0xF0–0xFF        message class group: bit 2 clear is default alphabet, set is 8-bit (Binary)
//
// GSM 7-bit decoding uses the default table and its extension table (€ [ ] { } \ ~ ^ | and
// form feed); national language shift tables (UDH IE 0x24/0x25) are not applied. Characters
// that have no mapping become U+FFFD (unpacked octets above 0x7F) or, for an unknown escape
// sequence, the character of the default table, as 3GPP TS 23.038 asks of receivers.
//
// Decoding never panics. On ErrMalformedUDH or ErrOddUCS2 the message is marked Binary with
// no Text and the error returned; the other fields are still set. DecodeWith allocates at
// most once for the three strings (Source, Dest and Text share one allocation) and once more
// for Part when the message is a part of a concatenated one.
func DecodeWith(m *Message, o DecodeOptions) error {
	m.Command, m.Source, m.Dest, m.DestTON, m.DestNPI, m.DataCoding = 0, "", "", 0, 0, 0
	m.Text, m.Binary, m.Part, m.plusDest = "", false, nil, ""
	p := m.PDU
	if p == nil || p.Len() < smpp.HeaderLen {
		m.Binary = true
		return ErrNoPDU
	}
	m.Command = p.ID()

	src := p.Field(smpp.FieldSourceAddr)
	var dst []byte
	if p.Has(smpp.FieldDestAddresses) {
		dst, m.DestTON, m.DestNPI = firstSME(p.Field(smpp.FieldDestAddresses))
	} else {
		dst = p.Field(smpp.FieldDestinationAddr)
		m.DestTON, _ = p.Uint8(smpp.FieldDestAddrTON)
		m.DestNPI, _ = p.Uint8(smpp.FieldDestAddrNPI)
	}
	dc, _ := p.Uint8(smpp.FieldDataCoding)
	m.DataCoding = dc
	esm, _ := p.Uint8(smpp.FieldESMClass)

	data := p.ShortMessage()
	if len(data) == 0 {
		if v, ok := p.TLV(smpp.TagMessagePayload); ok {
			data = v
		}
	}

	var (
		err    error
		part   Part
		body   = data
		udhLen int // octets of the UDH including its length octet
	)
	if esm&esmUDHI != 0 {
		if len(data) == 0 || 1+int(data[0]) > len(data) {
			err = ErrMalformedUDH
			if len(data) > 0 {
				err = fmt.Errorf("%w: header length %d exceeds the %d octets of data", ErrMalformedUDH, data[0], len(data)-1)
			}
			body = nil
		} else {
			udhLen = 1 + int(data[0])
			part = udhPart(data[1:udhLen])
			body = data[udhLen:]
		}
	}
	if part.Total == 0 {
		part = sarPart(p)
	}

	alpha := alphabetOf(dc, o)
	if err != nil {
		alpha = alphaBinary
	} else if alpha == alphaUCS2 && len(body)%2 != 0 {
		alpha, err = alphaBinary, ErrOddUCS2
	}
	m.Binary = alpha == alphaBinary

	// For packed GSM 7-bit the septets are counted from the start of the user data: the
	// UDH and its fill bits occupy the first ceil(udhLen*8/7) septets.
	text, skip := body, 0
	if alpha == alphaGSM7Packed {
		text, skip = data, (udhLen*8+6)/7
	}
	// Text whose every octet stands for itself is copied in one go, not decoded twice.
	verbatim := alpha == alphaGSM7 && gsm7AllSame(text) || (alpha == alphaASCII || alpha == alphaLatin1) && allASCII(text)
	n := len(text)
	if !verbatim {
		n = decodeText(nil, alpha, text, skip)
	}

	// One allocation: source, '+', destination, text. "+" + destination is the E.164 form
	// of most destinations, which normalising then need not build (Message.plusDest).
	var sb strings.Builder
	sb.Grow(len(src) + 1 + len(dst) + n)
	sb.Write(src)
	sb.WriteByte('+')
	sb.Write(dst)
	if verbatim {
		sb.Write(text)
	} else {
		decodeText(&sb, alpha, text, skip)
	}
	s := sb.String()
	m.Source = s[:len(src)]
	m.plusDest = s[len(src) : len(src)+1+len(dst)]
	m.Dest = m.plusDest[1:]
	m.Text = s[len(src)+1+len(dst):]

	if part.Total != 0 {
		m.Part = new(Part)
		*m.Part = part
	}
	return err
}

// firstSME returns the first SME address of a submit_multi dest_address list (validated by
// smpp.Parse, bounds-checked again here).
func firstSME(b []byte) (addr []byte, ton, npi byte) {
	for i := 0; i < len(b); {
		flag := b[i]
		i++
		switch flag {
		case 1:
			if len(b)-i < 2 {
				return nil, 0, 0
			}
			ton, npi = b[i], b[i+1]
			i += 2
			end := i
			for end < len(b) && b[end] != 0 {
				end++
			}
			return b[i:end:end], ton, npi
		case 2:
			for i < len(b) && b[i] != 0 {
				i++
			}
			i++ // NUL
		default:
			return nil, 0, 0
		}
	}
	return nil, 0, 0
}

// udhPart reads the concatenation information element of a UDH (without its length octet).
// A malformed element ends the scan; the first valid concatenation element wins.
func udhPart(udh []byte) Part {
	for i := 0; i+2 <= len(udh); {
		iei, iel := udh[i], int(udh[i+1])
		i += 2
		if iel > len(udh)-i {
			break
		}
		d := udh[i : i+iel]
		i += iel
		var pt Part
		switch {
		case iei == 0x00 && iel == 3:
			pt = Part{Ref: uint16(d[0]), Total: int(d[1]), Seq: int(d[2])}
		case iei == 0x08 && iel == 4:
			pt = Part{Ref: binary.BigEndian.Uint16(d), Total: int(d[2]), Seq: int(d[3])}
		default:
			continue
		}
		if validPart(pt) {
			return pt
		}
	}
	return Part{}
}

// sarPart reads the sar_* TLVs; all three must be present with their SMPP 3.4 lengths.
func sarPart(p *smpp.PDU) Part {
	var pt Part
	var have int
	it := p.TLVs()
	for {
		tlv, ok := it.Next()
		if !ok {
			break
		}
		switch tlv.Tag {
		case smpp.TagSarMsgRefNum:
			if len(tlv.Value) == 2 && have&1 == 0 {
				pt.Ref, have = binary.BigEndian.Uint16(tlv.Value), have|1
			}
		case smpp.TagSarTotalSegments:
			if len(tlv.Value) == 1 && have&2 == 0 {
				pt.Total, have = int(tlv.Value[0]), have|2
			}
		case smpp.TagSarSegmentSeqnum:
			if len(tlv.Value) == 1 && have&4 == 0 {
				pt.Seq, have = int(tlv.Value[0]), have|4
			}
		}
	}
	if have != 7 || !validPart(pt) {
		return Part{}
	}
	return pt
}

func validPart(p Part) bool { return p.Total >= 1 && p.Seq >= 1 && p.Seq <= p.Total }

// alphabet is how the octets of a message are turned into text.
type alphabet uint8

const (
	alphaBinary alphabet = iota
	alphaGSM7
	alphaGSM7Packed
	alphaASCII
	alphaLatin1
	alphaUCS2
	alphaDefault // the SMSC default alphabet: resolved through DecodeOptions
)

// alphabetOf maps a data_coding to an alphabet (see DecodeWith for the table).
func alphabetOf(dc byte, o DecodeOptions) alphabet {
	a := alphaBinary
	switch {
	case dc == 0x00:
		a = alphaDefault
	case dc == 0x01:
		a = alphaASCII
	case dc == 0x03:
		a = alphaLatin1
	case dc == 0x08:
		a = alphaUCS2
	case dc < 0x10: // 0x02, 0x04 binary; 0x05–0x07, 0x09–0x0F not decoded
	case dc < 0x80: // GSM 03.38 general data coding groups 00xx and 01xx
		if dc&0x20 == 0 {
			switch dc & 0x0C {
			case 0x00:
				a = alphaDefault
			case 0x08:
				a = alphaUCS2
			}
		}
	case dc < 0xC0: // reserved
	case dc < 0xE0:
		a = alphaDefault
	case dc < 0xF0:
		a = alphaUCS2
	default:
		if dc&0x04 == 0 {
			a = alphaDefault
		}
	}
	if a != alphaDefault {
		return a
	}
	switch o.Default0 {
	case Default0Latin1:
		return alphaLatin1
	case Default0ASCII:
		return alphaASCII
	}
	if o.GSMPacked {
		return alphaGSM7Packed
	}
	return alphaGSM7
}

// decodeText decodes b in alphabet a, writing to sb when it is not nil, and returns the
// length in bytes of the UTF-8 text. skip is the number of leading septets to ignore (packed
// GSM 7-bit only).
func decodeText(sb *strings.Builder, a alphabet, b []byte, skip int) int {
	switch a {
	case alphaGSM7:
		return decodeGSM7(sb, b, false, 0)
	case alphaGSM7Packed:
		return decodeGSM7(sb, b, true, skip)
	case alphaASCII, alphaLatin1:
		n := 0
		for i := 0; i < len(b); i++ {
			j := i
			for j < len(b) && b[j] < utf8.RuneSelf {
				j++
			}
			if j > i { // ASCII is copied as it is
				if sb != nil {
					sb.Write(b[i:j])
				}
				n += j - i
				i = j - 1
				continue
			}
			r := rune(b[i]) // Latin-1 is the first 256 code points
			if a == alphaASCII {
				r = utf8.RuneError
			}
			n += put(sb, r)
		}
		return n
	case alphaUCS2:
		return decodeUCS2(sb, b)
	}
	return 0
}

func put(sb *strings.Builder, r rune) int {
	if sb != nil {
		sb.WriteRune(r)
	}
	return utf8.RuneLen(r)
}

// decodeUCS2 decodes UTF-16BE; a trailing odd octet is ignored (the caller rejects it).
func decodeUCS2(sb *strings.Builder, b []byte) int {
	n := 0
	for i := 0; i+1 < len(b); i += 2 {
		r := rune(b[i])<<8 | rune(b[i+1])
		switch {
		case r >= 0xD800 && r < 0xDC00: // high surrogate
			if i+3 < len(b) {
				lo := rune(b[i+2])<<8 | rune(b[i+3])
				if lo >= 0xDC00 && lo < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 2
					break
				}
			}
			r = utf8.RuneError
		case r >= 0xDC00 && r < 0xE000: // lone low surrogate
			r = utf8.RuneError
		}
		n += put(sb, r)
	}
	return n
}

// gsm7Basic is the GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1). Read-only.
var gsm7Basic = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 0x1B, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsm7Ext maps the septet after an escape (0x1B) to its extension-table character, or 0.
func gsm7Ext(c byte) rune {
	switch c {
	case 0x0A:
		return '\f'
	case 0x14:
		return '^'
	case 0x28:
		return '{'
	case 0x29:
		return '}'
	case 0x2F:
		return '\\'
	case 0x3C:
		return '['
	case 0x3D:
		return '~'
	case 0x3E:
		return ']'
	case 0x40:
		return '|'
	case 0x65:
		return '€'
	}
	return 0
}

// septetAt returns septet i of packed GSM 7-bit data (LSB first, 3GPP TS 23.038 §6.1.2.1.1).
func septetAt(b []byte, i int) byte {
	bit := i * 7
	j, sh := bit>>3, uint(bit&7)
	v := b[j] >> sh
	if sh > 1 && j+1 < len(b) {
		v |= b[j+1] << (8 - sh)
	}
	return v & 0x7F
}

// packedSeptets is the number of septets in n packed octets, without the padding: when the
// septets end exactly on an octet boundary (n a multiple of 7) and the last one is 0x00
// (zero fill bits) or CR (the padding 3GPP TS 23.038 §6.1.2.3.1 prescribes), it is padding.
// A real '@' in that last position cannot be told from padding by anybody: SMPP gives the
// length in octets, not septets.
func packedSeptets(b []byte) int {
	n := len(b) * 8 / 7
	if n > 0 && len(b)%7 == 0 {
		if last := septetAt(b, n-1); last == 0x00 || last == 0x0D {
			n--
		}
	}
	return n
}

// gsm7SameLo and gsm7SameHi have a bit for each octet below 0x80 (0x00–0x3F, 0x40–0x7F)
// whose GSM 03.38 character is the ASCII one, the escape 0x1B excluded (TestGSM7SameMask
// checks them against gsm7Basic).
const gsm7SameLo, gsm7SameHi uint64 = 0xffffffef00002400, 0x07fffffe07fffffe

// gsm7Same reports whether the unpacked GSM 7-bit octet c decodes to the byte c itself.
func gsm7Same(c byte) bool {
	if c < 64 {
		return gsm7SameLo>>c&1 != 0
	}
	return c < 128 && gsm7SameHi>>(c-64)&1 != 0
}

// gsm7AllSame reports whether every octet of unpacked GSM 7-bit b decodes to itself.
func gsm7AllSame(b []byte) bool {
	masks := [4]uint64{gsm7SameLo, gsm7SameHi} // octets from 0x80 have no bit
	var same uint64 = 1
	for _, c := range b { // no branch per octet
		same &= masks[c>>6] >> (c & 63)
	}
	return same&1 != 0
}

// allASCII reports whether b is all 7-bit ASCII.
func allASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decodeGSM7 decodes GSM 7-bit text, packed or one septet per octet, skipping skip septets.
func decodeGSM7(sb *strings.Builder, b []byte, packed bool, skip int) int {
	count := len(b)
	if packed {
		count = packedSeptets(b)
	}
	at := func(i int) byte {
		if packed {
			return septetAt(b, i)
		}
		return b[i]
	}
	n := 0
	for i := skip; i < count; i++ {
		if !packed { // a run of characters GSM 03.38 and ASCII share is copied as it is
			j := i
			for j < count && gsm7Same(b[j]) {
				j++
			}
			if j > i {
				if sb != nil {
					sb.Write(b[i:j])
				}
				n += j - i
				i = j - 1
				continue
			}
		}
		c := at(i)
		var r rune
		switch {
		case c >= 0x80:
			r = utf8.RuneError
		case c == 0x1B:
			if i+1 >= count {
				r = ' ' // a dangling escape is shown as a space
				break
			}
			i++
			e := at(i)
			if e >= 0x80 {
				r = utf8.RuneError
			} else if r = gsm7Ext(e); r == 0 {
				r = gsm7Basic[e]
				if e == 0x1B { // escape to a further extension table: not defined
					r = ' '
				}
			}
		default:
			r = gsm7Basic[c]
		}
		n += put(sb, r)
	}
	return n
}

// DecodeGSM7 decodes GSM 03.38 text stored one septet per octet (SMPP data_coding 0 as most
// SMSCs use it), with the extension table. Octets above 0x7F become U+FFFD.
func DecodeGSM7(b []byte) string {
	var sb strings.Builder
	sb.Grow(decodeGSM7(nil, b, false, 0))
	decodeGSM7(&sb, b, false, 0)
	return sb.String()
}

// DecodeGSM7Packed decodes packed GSM 03.38 text (8 septets in 7 octets, LSB first), with the
// extension table. Unlike go-smpp's pdutext.GSM7Packed it keeps an '@' (septet 0x00) that
// falls on the eighth septet of a 7-octet group; only trailing padding is dropped (see
// packedSeptets: a final 0x00 or CR septet when the data ends on a 7-octet boundary).
func DecodeGSM7Packed(b []byte) string {
	var sb strings.Builder
	sb.Grow(decodeGSM7(nil, b, true, 0))
	decodeGSM7(&sb, b, true, 0)
	return sb.String()
}

// Destination is one SME address of a submit_multi.
type Destination struct {
	Addr     string
	TON, NPI byte
}

// SMEDestinations lists every SME address of a submit_multi dest_address list (distribution
// lists, which the SMSC expands, are skipped). Bounded by the list's bytes.
func SMEDestinations(b []byte) []Destination {
	var out []Destination
	for i := 0; i < len(b); {
		flag := b[i]
		i++
		switch flag {
		case 1:
			if len(b)-i < 2 {
				return out
			}
			ton, npi := b[i], b[i+1]
			i += 2
			end := i
			for end < len(b) && b[end] != 0 {
				end++
			}
			out = append(out, Destination{Addr: string(b[i:end]), TON: ton, NPI: npi})
			i = end + 1
		case 2:
			for i < len(b) && b[i] != 0 {
				i++
			}
			i++
		default:
			return out
		}
	}
	return out
}
