package interceptor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"

	"github.com/smppguard/smppguard/smpp"
)

// dtSM describes a submit_sm for the decode tests.
type dtSM struct {
	src, dst string
	ton, npi byte
	esm, dc  byte
	service  string
	sm       []byte
	tlvs     []smpp.TLV
}

func dtSubmit(t testing.TB, s dtSM) *smpp.PDU {
	t.Helper()
	if s.src == "" {
		s.src = "ACME"
	}
	if s.dst == "" {
		s.dst = "447700900123"
	}
	b := smpp.NewBuilder(smpp.SubmitSM, 0, 7).CString(s.service).Int(5).Int(0).CString(s.src).Int(s.ton).Int(s.npi).CString(s.dst).
		Int(s.esm).Int(0).Int(0).CString("").CString("").Int(1).Int(0).Int(s.dc).Int(0).ShortMessage(s.sm)
	for _, tlv := range s.tlvs {
		b.TLV(tlv.Tag, tlv.Value)
	}
	p, err := b.PDU()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// gsmEncode encodes s as GSM 03.38 septets (one per octet) with the extension table. It is
// the inverse of the decoder's tables, whose contents TestGSM7TableMatchesGoSMPP checks
// against an independent implementation.
func gsmEncode(t testing.TB, s string) []byte {
	t.Helper()
	var out []byte
next:
	for _, r := range s {
		for c := range 128 {
			if e := gsm7Ext(byte(c)); e == r {
				out = append(out, 0x1B, byte(c))
				continue next
			}
		}
		for c, b := range gsm7Basic {
			if b == r && c != 0x1B {
				out = append(out, byte(c))
				continue next
			}
		}
		t.Fatalf("%q is not in the GSM 7-bit alphabet", r)
	}
	return out
}

// pack7 packs septets 8 into 7 octets, least significant bit first (3GPP TS 23.038 §6.1.2.1.1),
// with zero fill bits. fillBits shifts the septets by that many bits (UDH alignment).
func pack7(septets []byte, fillBits int) []byte {
	bits := fillBits + len(septets)*7
	out := make([]byte, (bits+7)/8)
	for i, s := range septets {
		for k := range 7 {
			if s&(1<<k) != 0 {
				pos := fillBits + i*7 + k
				out[pos/8] |= 1 << (pos % 8)
			}
		}
	}
	return out
}

func ucs2(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.BigEndian.AppendUint16(b, u)
	}
	return b
}

func decodeSM(t *testing.T, s dtSM, o DecodeOptions) (*Message, error) {
	t.Helper()
	m := &Message{Account: "bank", PDU: dtSubmit(t, s)}
	before := bytes.Clone(m.PDU.Bytes())
	err := DecodeWith(m, o)
	if !bytes.Equal(before, m.PDU.Bytes()) {
		t.Fatal("Decode modified the PDU")
	}
	if !utf8.ValidString(m.Text) {
		t.Fatalf("text %q is not valid UTF-8", m.Text)
	}
	return m, err
}

func TestDecodeDataCodings(t *testing.T) {
	const gsmText = "Code 482913: @£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà €[]{}\\~^|"
	cases := []struct {
		name   string
		dc     byte
		opts   DecodeOptions
		sm     []byte
		want   string
		binary bool
		err    error
	}{
		{"gsm7 default and extension tables", 0x00, DecodeOptions{}, nil, gsmText, false, nil},
		{"gsm7 explicit option", 0x00, DecodeOptions{Default0: "gsm7"}, nil, gsmText, false, nil},
		{"gsm7 octet above 0x7f", 0x00, DecodeOptions{}, []byte{'a', 0x80, 'b'}, "a\uFFFDb", false, nil},
		{"gsm7 dangling escape", 0x00, DecodeOptions{}, []byte{'a', 0x1B}, "a ", false, nil},
		{"gsm7 unknown escape shows the base character", 0x00, DecodeOptions{}, []byte{'a', 0x1B, 'b'}, "ab", false, nil},
		{"gsm7 packed", 0x00, DecodeOptions{GSMPacked: true}, pack7([]byte("hellohello"), 0), "hellohello", false, nil},
		{"gsm7 packed @ on the eighth septet", 0x00, DecodeOptions{GSMPacked: true}, nil, "1234567@89 code 4829", false, nil},
		{"default alphabet as latin1", 0x00, DecodeOptions{Default0: "latin1"}, []byte("caf\xe9 4829"), "café 4829", false, nil},
		{"default alphabet as ascii", 0x00, DecodeOptions{Default0: "ascii"}, []byte("code_4829@x"), "code_4829@x", false, nil},
		{"ia5 ascii", 0x01, DecodeOptions{}, []byte("Your code_is {4829} @home\x80"), "Your code_is {4829} @home\uFFFD", false, nil},
		{"latin1", 0x03, DecodeOptions{}, []byte("V\xe9rification \xbf\xa9 \x80\x9f"), "Vérification ¿© \u0080\u009f", false, nil},
		{"ucs2 arabic", 0x08, DecodeOptions{}, ucs2("رمز التحقق الخاص بك هو 482913"), "رمز التحقق الخاص بك هو 482913", false, nil},
		{"ucs2 cyrillic", 0x08, DecodeOptions{}, ucs2("Ваш код подтверждения: 4829"), "Ваш код подтверждения: 4829", false, nil},
		{"ucs2 surrogate pair", 0x08, DecodeOptions{}, ucs2("🔐 code 4829 😀"), "🔐 code 4829 😀", false, nil},
		{"ucs2 lone surrogates", 0x08, DecodeOptions{}, []byte{0xD8, 0x3D, 0, 'a', 0xDE, 0x00}, "\uFFFDa\uFFFD", false, nil},
		{"ucs2 odd length", 0x08, DecodeOptions{}, []byte{0, 'a', 0}, "", true, ErrOddUCS2},
		{"binary 0x02", 0x02, DecodeOptions{}, []byte("code 4829"), "", true, nil},
		{"binary 0x04", 0x04, DecodeOptions{}, []byte("code 4829"), "", true, nil},
		{"jis not decoded", 0x05, DecodeOptions{}, []byte("code 4829"), "", true, nil},
		{"iso-8859-5 not decoded", 0x06, DecodeOptions{}, []byte("code 4829"), "", true, nil},
		{"iso-8859-8 not decoded", 0x07, DecodeOptions{}, []byte("code 4829"), "", true, nil},
		{"ks c 5601 not decoded", 0x0E, DecodeOptions{}, []byte("code 4829"), "", true, nil},
		{"flash default alphabet 0x10", 0x10, DecodeOptions{}, []byte("code 4829"), "code 4829", false, nil},
		{"flash ucs2 0x18", 0x18, DecodeOptions{}, ucs2("код 4829"), "код 4829", false, nil},
		{"general group 8-bit 0x14", 0x14, DecodeOptions{}, []byte("code 4829"), "", true, nil},
		{"general group compressed 0x30", 0x30, DecodeOptions{}, []byte("code 4829"), "", true, nil},
		{"reserved 0x80", 0x80, DecodeOptions{}, []byte("code 4829"), "", true, nil},
		{"mwi discard 0xC0", 0xC0, DecodeOptions{}, []byte("code 4829"), "code 4829", false, nil},
		{"mwi store ucs2 0xE0", 0xE0, DecodeOptions{}, ucs2("code 4829"), "code 4829", false, nil},
		{"class 0 default alphabet 0xF0", 0xF0, DecodeOptions{}, []byte("code 4829"), "code 4829", false, nil},
		{"class 0 default alphabet packed 0xF0", 0xF0, DecodeOptions{GSMPacked: true}, pack7([]byte("code 4829"), 0), "code 4829", false, nil},
		{"class 2 8-bit 0xF6", 0xF6, DecodeOptions{}, []byte("code 4829"), "", true, nil},
		{"empty", 0x00, DecodeOptions{}, []byte{}, "", false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sm := tc.sm
			if sm == nil {
				sm = gsmEncode(t, tc.want)
				if tc.opts.GSMPacked {
					sm = pack7(sm, 0)
				}
			}
			m, err := decodeSM(t, dtSM{dc: tc.dc, sm: sm}, tc.opts)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if m.Text != tc.want || m.Binary != tc.binary || m.DataCoding != tc.dc {
				t.Fatalf("text %q binary %v dc %#x, want %q %v", m.Text, m.Binary, m.DataCoding, tc.want, tc.binary)
			}
			if m.Source != "ACME" || m.Dest != "447700900123" || m.Command != smpp.SubmitSM || m.Part != nil {
				t.Fatalf("fields %+v", m)
			}
		})
	}
}

func TestDecodeAddresses(t *testing.T) {
	m, err := decodeSM(t, dtSM{src: "BANK-OTP", dst: "+33612345678", ton: 1, npi: 1, sm: []byte("x")}, DecodeOptions{})
	if err != nil || m.Source != "BANK-OTP" || m.Dest != "+33612345678" || m.DestTON != 1 || m.DestNPI != 1 {
		t.Fatalf("%v %+v", err, m)
	}

	// submit_multi: the first SME destination, after a distribution list.
	b := smpp.NewBuilder(smpp.SubmitMulti, 0, 3).CString("").Int(5).Int(0).CString("ACME").Int(3).
		Dests([]smpp.Dest{{DLName: "staff"}, {TON: 1, NPI: 1, Addr: "447700900777"}, {TON: 2, NPI: 1, Addr: "07700900888"}}).
		Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).ShortMessage([]byte("Your OTP is 4829"))
	p, err := b.PDU()
	if err != nil {
		t.Fatal(err)
	}
	m = &Message{PDU: p}
	if err := Decode(m); err != nil || m.Command != smpp.SubmitMulti || m.Dest != "447700900777" || m.DestTON != 1 || m.DestNPI != 1 ||
		m.Source != "ACME" || m.Text != "Your OTP is 4829" {
		t.Fatalf("submit_multi: %v %+v", err, m)
	}
	// Only distribution lists: no destination.
	p, err = smpp.NewBuilder(smpp.SubmitMulti, 0, 3).CString("").Int(5).Int(0).CString("ACME").Int(1).
		Dests([]smpp.Dest{{DLName: "staff"}}).Int(0).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).
		ShortMessage([]byte("hi")).PDU()
	if err != nil {
		t.Fatal(err)
	}
	m = &Message{PDU: p}
	if err := Decode(m); err != nil || m.Dest != "" || m.Text != "hi" {
		t.Fatalf("dl only: %v %+v", err, m)
	}
	// The dest list scan is bounds-checked by itself too.
	for _, b := range [][]byte{nil, {1}, {1, 1}, {2, 'a'}, {3}, {1, 1, 1, '4', '4'}} {
		firstSME(b)
	}

	// data_sm: text from message_payload.
	p, err = smpp.NewBuilder(smpp.DataSM, 0, 9).CString("").Int(5).Int(0).CString("ACME").Int(1).Int(1).CString("447700900999").
		Int(0).Int(1).Int(8).TLV(smpp.TagMessagePayload, ucs2("Код: 4829")).PDU()
	if err != nil {
		t.Fatal(err)
	}
	m = &Message{PDU: p}
	if err := Decode(m); err != nil || m.Command != smpp.DataSM || m.Dest != "447700900999" || m.Text != "Код: 4829" || m.DataCoding != 8 {
		t.Fatalf("data_sm: %v %+v", err, m)
	}

	// No PDU.
	m = &Message{Source: "stale", Text: "stale"}
	if err := Decode(m); !errors.Is(err, ErrNoPDU) || m.Text != "" || m.Source != "" || !m.Binary {
		t.Fatalf("no PDU: %v %+v", err, m)
	}
}

func TestDecodeMessagePayload(t *testing.T) {
	payload := []byte(strings.Repeat("long text ", 40) + "code 4829")
	m, err := decodeSM(t, dtSM{sm: nil, tlvs: []smpp.TLV{{Tag: smpp.TagMessagePayload, Value: payload}}}, DecodeOptions{})
	if err != nil || m.Text != string(payload) {
		t.Fatalf("%v %q", err, m.Text)
	}
	// short_message wins when both are present.
	m, err = decodeSM(t, dtSM{sm: []byte("short"), tlvs: []smpp.TLV{{Tag: smpp.TagMessagePayload, Value: payload}}}, DecodeOptions{})
	if err != nil || m.Text != "short" {
		t.Fatalf("%v %q", err, m.Text)
	}
	// UDH inside message_payload.
	udh := []byte{0x05, 0x00, 0x03, 0x99, 2, 1}
	m, err = decodeSM(t, dtSM{esm: 0x40, tlvs: []smpp.TLV{{Tag: smpp.TagMessagePayload, Value: append(udh, "Your code"...)}}}, DecodeOptions{})
	if err != nil || m.Text != "Your code" || m.Part == nil || *m.Part != (Part{Ref: 0x99, Total: 2, Seq: 1}) {
		t.Fatalf("%v %q %+v", err, m.Text, m.Part)
	}
}

func TestDecodeConcatenation(t *testing.T) {
	sar := func(ref uint16, total, seq byte) []smpp.TLV {
		return []smpp.TLV{
			{Tag: smpp.TagSarMsgRefNum, Value: binary.BigEndian.AppendUint16(nil, ref)},
			{Tag: smpp.TagSarTotalSegments, Value: []byte{total}},
			{Tag: smpp.TagSarSegmentSeqnum, Value: []byte{seq}},
		}
	}
	cases := []struct {
		name string
		s    dtSM
		opts DecodeOptions
		text string
		part *Part
		err  error
	}{
		{"8-bit reference", dtSM{esm: 0x40, sm: append([]byte{5, 0x00, 3, 0xA7, 3, 2}, "part two"...)}, DecodeOptions{}, "part two", &Part{Ref: 0xA7, Total: 3, Seq: 2}, nil},
		{"16-bit reference", dtSM{esm: 0x40, sm: append([]byte{6, 0x08, 4, 0x12, 0x34, 2, 2}, "second"...)}, DecodeOptions{}, "second", &Part{Ref: 0x1234, Total: 2, Seq: 2}, nil},
		{"other elements first", dtSM{esm: 0x43, sm: append([]byte{14, 0x24, 1, 0x01, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0, 0x00, 3, 9, 2, 1}, "x"...)}, DecodeOptions{}, "x", &Part{Ref: 9, Total: 2, Seq: 1}, nil},
		{"udh without concatenation", dtSM{esm: 0x40, sm: append([]byte{3, 0x24, 1, 0x01}, "plain"...)}, DecodeOptions{}, "plain", nil, nil},
		{"udh only", dtSM{esm: 0x40, sm: []byte{5, 0x00, 3, 1, 2, 2}}, DecodeOptions{}, "", &Part{Ref: 1, Total: 2, Seq: 2}, nil},
		{"total 0 ignored", dtSM{esm: 0x40, sm: append([]byte{5, 0x00, 3, 1, 0, 1}, "t"...)}, DecodeOptions{}, "t", nil, nil},
		{"seq 0 ignored", dtSM{esm: 0x40, sm: append([]byte{5, 0x00, 3, 1, 2, 0}, "t"...)}, DecodeOptions{}, "t", nil, nil},
		{"seq beyond total ignored", dtSM{esm: 0x40, sm: append([]byte{5, 0x00, 3, 1, 2, 3}, "t"...)}, DecodeOptions{}, "t", nil, nil},
		{"wrong element length ignored", dtSM{esm: 0x40, sm: append([]byte{6, 0x00, 4, 1, 2, 1, 0}, "t"...)}, DecodeOptions{}, "t", nil, nil},
		{"element overrunning the udh ignored", dtSM{esm: 0x40, sm: append([]byte{4, 0x00, 3, 1, 2}, "t"...)}, DecodeOptions{}, "t", nil, nil},
		{"udh length beyond the data", dtSM{esm: 0x40, sm: []byte{9, 0x00, 3, 1, 2, 1}}, DecodeOptions{}, "", nil, ErrMalformedUDH},
		{"udh length 255", dtSM{esm: 0x40, sm: []byte{0xFF}}, DecodeOptions{}, "", nil, ErrMalformedUDH},
		{"udhi without data", dtSM{esm: 0x40, sm: []byte{}}, DecodeOptions{}, "", nil, ErrMalformedUDH},
		{"malformed udh still has sar", dtSM{esm: 0x40, sm: []byte{9}, tlvs: sar(77, 2, 1)}, DecodeOptions{}, "", &Part{Ref: 77, Total: 2, Seq: 1}, ErrMalformedUDH},
		{"sar", dtSM{sm: []byte("sar part"), tlvs: sar(0xBEEF, 4, 4)}, DecodeOptions{}, "sar part", &Part{Ref: 0xBEEF, Total: 4, Seq: 4}, nil},
		{"sar seq beyond total ignored", dtSM{sm: []byte("t"), tlvs: sar(1, 2, 3)}, DecodeOptions{}, "t", nil, nil},
		{"sar incomplete ignored", dtSM{sm: []byte("t"), tlvs: sar(1, 2, 1)[:2]}, DecodeOptions{}, "t", nil, nil},
		{"sar wrong length ignored", dtSM{sm: []byte("t"), tlvs: []smpp.TLV{{Tag: smpp.TagSarMsgRefNum, Value: []byte{1}}, sar(1, 2, 1)[1], sar(1, 2, 1)[2]}}, DecodeOptions{}, "t", nil, nil},
		{"udh wins over sar", dtSM{esm: 0x40, sm: append([]byte{5, 0x00, 3, 5, 2, 1}, "t"...), tlvs: sar(6, 3, 1)}, DecodeOptions{}, "t", &Part{Ref: 5, Total: 2, Seq: 1}, nil},
		{"ucs2 after udh", dtSM{esm: 0x40, dc: 8, sm: append([]byte{5, 0x00, 3, 5, 2, 1}, ucs2("رمز 4829")...)}, DecodeOptions{}, "رمز 4829", &Part{Ref: 5, Total: 2, Seq: 1}, nil},
		{"ucs2 odd after udh", dtSM{esm: 0x40, dc: 8, sm: append([]byte{5, 0x00, 3, 5, 2, 1}, 0, 'a', 0)}, DecodeOptions{}, "", &Part{Ref: 5, Total: 2, Seq: 1}, ErrOddUCS2},
		// Packed GSM 7-bit after a 6-octet UDH: 48 bits, 1 fill bit, text from septet 7.
		{"packed after udh with fill bits", dtSM{esm: 0x40, sm: append([]byte{5, 0x00, 3, 5, 2, 1}, pack7(gsmEncode(t, "Code 4829 @ ok"), 1)...)}, DecodeOptions{GSMPacked: true}, "Code 4829 @ ok", &Part{Ref: 5, Total: 2, Seq: 1}, nil},
		// 16-bit reference: 7-octet UDH, 56 bits, no fill bits.
		{"packed after 7-octet udh", dtSM{esm: 0x40, sm: append([]byte{6, 0x08, 4, 1, 2, 2, 1}, pack7(gsmEncode(t, "@code"), 0)...)}, DecodeOptions{GSMPacked: true}, "@code", &Part{Ref: 0x102, Total: 2, Seq: 1}, nil},
		{"binary keeps its part", dtSM{esm: 0x40, dc: 4, sm: append([]byte{5, 0x00, 3, 5, 2, 2}, 0xDE, 0xAD)}, DecodeOptions{}, "", &Part{Ref: 5, Total: 2, Seq: 2}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeSM(t, tc.s, tc.opts)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if m.Text != tc.text {
				t.Fatalf("text %q, want %q", m.Text, tc.text)
			}
			if (m.Part == nil) != (tc.part == nil) || m.Part != nil && *m.Part != *tc.part {
				t.Fatalf("part %+v, want %+v", m.Part, tc.part)
			}
			if err != nil && !m.Binary {
				t.Fatal("an undecodable message is not marked binary")
			}
		})
	}
}

func TestDecodeGSM7Packed(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"classic", []byte{0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37}, "hellohello"},
		{"single @", []byte{0x00}, "@"},
		{"@@", []byte{0x00, 0x00}, "@@"},
		{"@ mid-message on the eighth septet", pack7([]byte("1234567\x0089"), 0), "1234567@89"},
		{"@ first", pack7([]byte("\x00abc"), 0), "@abc"},
		{"7 septets: zero fill is not @", pack7([]byte("abcdefg"), 0), "abcdefg"},
		{"7 septets: CR padding dropped", pack7([]byte("abcdefg\r"), 0), "abcdefg"},
		{"8 septets exactly", pack7([]byte("abcdefgh"), 0), "abcdefgh"},
		{"euro across octets", pack7([]byte("x\x1b\x65y"), 0), "x€y"},
		{"empty", nil, ""},
	}
	for _, tc := range cases {
		if got := DecodeGSM7Packed(tc.in); got != tc.want {
			t.Errorf("%s: % x → %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
	if got := DecodeGSM7(gsmEncode(t, "€ [x] {y} \\ ~ ^ |")); got != "€ [x] {y} \\ ~ ^ |" {
		t.Errorf("unpacked: %q", got)
	}
}

// go-smpp's pdutext, pinned in go.mod, is the independent reference where it is right.
// TestGSM7TableMatchesGoSMPP checks every default and extension code against it.
func TestGSM7TableMatchesGoSMPP(t *testing.T) {
	for c := range 128 {
		if c == 0x1B {
			continue
		}
		want := string(pdutext.GSM7([]byte{byte(c)}).Decode())
		if got := DecodeGSM7([]byte{byte(c)}); got != want {
			t.Errorf("septet %#x: %q, go-smpp %q", c, got, want)
		}
		if gsm7Ext(byte(c)) != 0 {
			want := string(pdutext.GSM7([]byte{0x1B, byte(c)}).Decode())
			if got := DecodeGSM7([]byte{0x1B, byte(c)}); got != want {
				t.Errorf("escape %#x: %q, go-smpp %q", c, got, want)
			}
		}
	}
	// Whole messages, unpacked and packed, where go-smpp's encoder is right.
	for _, s := range []string{"Your verification code is 482913", "Paiement de 25€ : code 4829 [ok] {x}", "Codigo: 4829 ¿Ñ? @home", "Ünd ßo ΔΦΓ 1234"} {
		if got := DecodeGSM7(pdutext.GSM7([]byte(s)).Encode()); got != s {
			t.Errorf("unpacked %q → %q", s, got)
		}
		if got := DecodeGSM7Packed(pdutext.GSM7Packed([]byte(s)).Encode()); got != s {
			t.Errorf("packed %q → %q", s, got)
		}
	}
	// UCS2 and Latin-1 agree on what both decode as the standards say.
	for _, s := range []string{"رمز التحقق 482913", "Ваш код: 4829", "🔐 код 😀", "验证码：482913"} {
		if got, want := decodeBytes(t, 0x08, ucs2(s)), string(pdutext.UCS2(ucs2(s)).Decode()); got != want || got != s {
			t.Errorf("ucs2 %q: %q, go-smpp %q", s, got, want)
		}
	}
	latin := []byte("V\xe9rification \xe0 \xff\xa3")
	if got, want := decodeBytes(t, 0x03, latin), string(pdutext.Latin1(latin).Decode()); got != want {
		t.Errorf("latin1: %q, go-smpp %q", got, want)
	}
}

// TestGoSMPPDivergences records where go-smpp's pdutext (at the pinned version) is wrong and
// this package does otherwise. If go-smpp is upgraded and one of these starts to fail, the
// divergence is gone: drop it from the test and from the documentation.
func TestGoSMPPDivergences(t *testing.T) {
	// 1. Packed: an '@' on the eighth septet of any 7-octet group is dropped whenever that
	// octet is zero (the previous septet below 0x40), not only as final padding.
	enc := pack7([]byte("1234567\x0089"), 0)
	if got := string(pdutext.GSM7Packed(enc).Decode()); got != "123456789" {
		t.Errorf("go-smpp packed '@' bug gone? %q", got)
	}
	if got := DecodeGSM7Packed(enc); got != "1234567@89" {
		t.Errorf("ours: %q", got)
	}
	// 2. Packed: 7 septets with zero fill bits decode as 8 when the seventh septet is 0x40 or
	// above: the fill becomes a trailing '@'.
	enc = pack7([]byte("abcdefg"), 0)
	if got := string(pdutext.GSM7Packed(enc).Decode()); got != "abcdefg@" {
		t.Errorf("go-smpp fill bug gone? %q", got)
	}
	if got := DecodeGSM7Packed(enc); got != "abcdefg" {
		t.Errorf("ours: %q", got)
	}
	// 3. Invalid input is returned undecoded (raw octets as "text", not UTF-8).
	if got := pdutext.GSM7([]byte{'a', 0x80, 'b'}).Decode(); string(got) != "a\x80b" {
		t.Errorf("go-smpp raw fallback gone? %q", got)
	}
	if got := DecodeGSM7([]byte{'a', 0x80, 'b'}); got != "a\uFFFDb" {
		t.Errorf("ours: %q", got)
	}
	// 4. "Latin1" is Windows-1252: 0x80–0x9F become €, Ÿ... instead of the C1 controls.
	if got := string(pdutext.Latin1([]byte{0x80, 0x9F}).Decode()); got != "€Ÿ" {
		t.Errorf("go-smpp cp1252 gone? %q", got)
	}
	if got := decodeBytes(t, 0x03, []byte{0x80, 0x9F}); got != "\u0080\u009f" {
		t.Errorf("ours: %q", got)
	}
	// 5. UCS2 with an odd number of octets decodes with a trailing U+FFFD, no error.
	if got := string(pdutext.UCS2([]byte{0, 'a', 0}).Decode()); got != "a\uFFFD" {
		t.Errorf("go-smpp odd ucs2 changed? %q", got)
	}
	// 6. Every call allocates several times (x/text transformers, maps, buffers).
	if n := testing.AllocsPerRun(50, func() { pdutext.GSM7([]byte("Your code is 4829")).Decode() }); n < 3 {
		t.Errorf("go-smpp GSM7 decode allocates %v times now", n)
	}
}

func decodeBytes(t *testing.T, dc byte, sm []byte) string {
	t.Helper()
	m, err := decodeSM(t, dtSM{dc: dc, sm: sm}, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m.Text
}

func TestDecodeOptionsValidate(t *testing.T) {
	for _, o := range []DecodeOptions{{}, {GSMPacked: true}, {Default0: "gsm7", GSMPacked: true}, {Default0: "latin1"}, {Default0: "ascii"}} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for _, o := range []DecodeOptions{{Default0: "utf8"}, {Default0: "latin1", GSMPacked: true}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	// An unknown Default0 decodes as gsm7.
	m, _ := decodeSM(t, dtSM{sm: gsmEncode(t, "€1")}, DecodeOptions{Default0: "utf8"})
	if m.Text != "€1" {
		t.Fatalf("%q", m.Text)
	}
}

// Decode allocates once (Source, Dest and Text share one string) and once more for Part.
func TestDecodeAllocs(t *testing.T) {
	plain := &Message{PDU: dtSubmit(t, dtSM{dc: 8, sm: ucs2("Ваш код: 4829")})}
	concat := &Message{PDU: dtSubmit(t, dtSM{esm: 0x40, sm: append([]byte{5, 0, 3, 1, 2, 1}, "Your code"...)})}
	binaryMsg := &Message{PDU: dtSubmit(t, dtSM{dc: 4, sm: []byte{1, 2, 3}})}
	for _, tc := range []struct {
		m    *Message
		want float64
	}{{plain, 1}, {concat, 2}, {binaryMsg, 1}} {
		if n := testing.AllocsPerRun(100, func() { _ = Decode(tc.m) }); n != tc.want {
			t.Errorf("%s: %v allocations, want %v", tc.m.PDU.Header(), n, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(byte(0), byte(0), false, []byte("Your code is 4829"))
	f.Add(byte(0x40), byte(8), false, []byte{5, 0, 3, 1, 2, 1, 0, 'a'})
	f.Add(byte(0x40), byte(0), true, []byte{6, 8, 4, 1, 2, 2, 1, 0x41})
	f.Add(byte(0x40), byte(0), true, []byte{0xFF})
	f.Fuzz(func(t *testing.T, esm, dc byte, packed bool, sm []byte) {
		if len(sm) > 254 {
			sm = sm[:254]
		}
		p, err := smpp.NewBuilder(smpp.SubmitSM, 0, 1).CString("").Int(0).Int(0).CString("A").Int(0).Int(0).CString("B").
			Int(esm).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(dc).Int(0).ShortMessage(sm).PDU()
		if err != nil {
			t.Skip()
		}
		m := &Message{PDU: p}
		err = DecodeWith(m, DecodeOptions{GSMPacked: packed})
		if !utf8.ValidString(m.Text) || m.Source != "A" || m.Dest != "B" {
			t.Fatalf("%+v", m)
		}
		if err != nil && (!m.Binary || m.Text != "") {
			t.Fatalf("error %v but text %q", err, m.Text)
		}
		if m.Part != nil && !validPart(*m.Part) {
			t.Fatalf("invalid part %+v", m.Part)
		}
	})
}

// Packing any septets and decoding them gives them back (as text), except a final 0x00 or CR
// septet when the data ends on a 7-octet boundary, which is padding.
func FuzzGSM7PackedRoundTrip(f *testing.F) {
	f.Add([]byte("1234567\x0089"))
	f.Add([]byte("abcdefg"))
	f.Fuzz(func(t *testing.T, septets []byte) {
		for i := range septets {
			septets[i] &= 0x7F
		}
		want := DecodeGSM7(septets)
		packed := pack7(septets, 0)
		got := DecodeGSM7Packed(packed)
		if got == want {
			return
		}
		n := len(septets)
		if len(packed)%7 == 0 && n == len(packed)*8/7-1 {
			return // the ambiguous fill: decoded as padding or not, by the rule in packedSeptets
		}
		if n > 0 && len(packed)*8/7 == n && len(packed)%7 == 0 && (septets[n-1] == 0 || septets[n-1] == '\r') &&
			got == DecodeGSM7(septets[:n-1]) {
			return
		}
		t.Fatalf("% x: packed % x → %q, want %q", septets, packed, got, want)
	})
}

func BenchmarkDecode(b *testing.B) {
	text := "Your ACME verification code is 482913. Do not share it with anyone. It expires in 10 minutes."
	cases := []struct {
		name string
		s    dtSM
		opts DecodeOptions
	}{
		{"gsm7", dtSM{sm: gsmEncode(b, text)}, DecodeOptions{}},
		{"gsm7-packed", dtSM{sm: pack7(gsmEncode(b, text), 0)}, DecodeOptions{GSMPacked: true}},
		{"ascii", dtSM{dc: 1, sm: []byte(text)}, DecodeOptions{}},
		{"latin1", dtSM{dc: 3, sm: []byte(text)}, DecodeOptions{}},
		{"ucs2-arabic", dtSM{dc: 8, sm: ucs2("رمز التحقق الخاص بك هو 482913. لا تشاركه مع أحد.")}, DecodeOptions{}},
		{"binary", dtSM{dc: 4, sm: []byte(text)}, DecodeOptions{}},
		{"gsm7-udh-concat", dtSM{esm: 0x40, sm: append([]byte{5, 0, 3, 1, 2, 1}, gsmEncode(b, text)...)}, DecodeOptions{}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			m := &Message{PDU: dtSubmit(b, tc.s)}
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.s.sm)))
			for b.Loop() {
				if err := DecodeWith(m, tc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGoSMPPDecode is go-smpp's pdutext on the same text, for comparison.
func BenchmarkGoSMPPDecode(b *testing.B) {
	text := "Your ACME verification code is 482913. Do not share it with anyone. It expires in 10 minutes."
	gsm := gsmEncode(b, text)
	u := ucs2("رمز التحقق الخاص بك هو 482913. لا تشاركه مع أحد.")
	b.Run("gsm7", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = string(pdutext.GSM7(gsm).Decode())
		}
	})
	b.Run("ucs2-arabic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = string(pdutext.UCS2(u).Decode())
		}
	})
}
