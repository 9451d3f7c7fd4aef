package smpp

import (
	"bytes"
	"errors"
	"testing"
)

func submitSM(t testing.TB, seq uint32, text string, tlvs ...TLV) []byte {
	t.Helper()
	b := NewBuilder(SubmitSM, StatusOK, seq).CString("").Int(1).Int(1).CString("BANK").Int(1).Int(1).CString("447700900123").
		Int(0).Int(0).Int(0).CString("").CString("").Int(1).Int(0).Int(0).Int(0).ShortMessage([]byte(text))
	for _, tlv := range tlvs {
		b.TLV(tlv.Tag, tlv.Value)
	}
	f, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseSubmitSMFields(t *testing.T) {
	f := submitSM(t, 7, "Your code is 123456", TLV{0x1401, []byte{1, 2}}, TLV{TagUserMessageReference, []byte{0, 9}}, TLV{0x1401, []byte{3}})
	p, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() != SubmitSM || p.Seq() != 7 {
		t.Fatalf("header %v", p.Header())
	}
	if got := p.CString(FieldDestinationAddr); got != "447700900123" {
		t.Fatalf("dest %q", got)
	}
	if got := string(p.ShortMessage()); got != "Your code is 123456" {
		t.Fatalf("sm %q", got)
	}
	if v, ok := p.Uint8(FieldRegisteredDelivery); !ok || v != 1 {
		t.Fatalf("registered_delivery %d %v", v, ok)
	}
	var tags []Tag
	it := p.TLVs()
	for tlv, ok := it.Next(); ok; tlv, ok = it.Next() {
		tags = append(tags, tlv.Tag)
	}
	if want := []Tag{0x1401, TagUserMessageReference, 0x1401}; len(tags) != 3 || tags[0] != want[0] || tags[1] != want[1] || tags[2] != want[2] {
		t.Fatalf("tlv order %v", tags)
	}
	orig := bytes.Clone(f)
	p.SetSeq(0xdeadbeef)
	if p.Seq() != 0xdeadbeef || !bytes.Equal(p.Bytes()[16:], orig[16:]) || !bytes.Equal(p.Bytes()[:12], orig[:12]) {
		t.Fatal("SetSeq changed more than bytes 12-16")
	}
}

func TestParseErrors(t *testing.T) {
	good := submitSM(t, 1, "hi")
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   Status
	}{
		{"unknown command", func(b []byte) []byte { b[7] = 0x77; return b }, StatusInvCmdID},
		{"length mismatch", func(b []byte) []byte { return b[:len(b)-1] }, StatusInvCmdLen},
		{"sm_length too big", func(b []byte) []byte { b[len(b)-3] = 200; return b }, StatusInvMsgLen},
		{"trailing bytes", func(b []byte) []byte { b = append(b, 1, 2); b[3] += 2; return b }, StatusInvOptParStream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.mutate(bytes.Clone(good)))
			var st Status
			if !errors.As(err, &st) || st != tc.want {
				t.Fatalf("err %v, want %s", err, tc.want)
			}
		})
	}
}
