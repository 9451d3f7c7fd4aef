package smpp_test

import (
	"errors"
	"fmt"

	"github.com/smppguard/smppguard/smpp"
)

// Parse indexes a frame without copying it; Field returns sub-slices of the frame.
func ExampleParse() {
	frame := []byte{
		0x00, 0x00, 0x00, 0x31, // command_length 49
		0x00, 0x00, 0x00, 0x04, // submit_sm
		0x00, 0x00, 0x00, 0x00, // command_status
		0x00, 0x00, 0x00, 0x07, // sequence_number
		0x00,                                 // service_type ""
		0x05, 0x00, 'B', 'A', 'N', 'K', 0x00, // source_addr_ton, _npi, source_addr
		0x01, 0x01, '4', '4', '7', '7', 0x00, // dest_addr_ton, _npi, destination_addr
		0x00, 0x00, 0x00, 0x00, 0x00, // esm_class, protocol_id, priority_flag, two empty times
		0x01, 0x00, 0x00, 0x00, // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
		0x02, 'h', 'i', // sm_length, short_message
		0x02, 0x04, 0x00, 0x02, 0x00, 0x09, // TLV user_message_reference = 9
	}
	p, err := smpp.Parse(frame)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Header())
	fmt.Printf("%s -> %s: %q\n", p.Field(smpp.FieldSourceAddr), p.Field(smpp.FieldDestinationAddr), p.ShortMessage())
	if v, ok := p.TLV(smpp.TagUserMessageReference); ok {
		fmt.Printf("user_message_reference % x\n", v)
	}

	// A malformed request carries the command_status to answer it with.
	frame[46] = 0x09 // the TLV now claims 9 octets
	_, err = smpp.Parse(frame)
	var st smpp.Status
	if errors.As(err, &st) {
		fmt.Println(st.String()) // String: as an error, Println would print "smpp: ESME_RINVPARLEN"
	}
	// Output:
	// submit_sm seq=7 status=ESME_ROK len=49
	// BANK -> 4477: "hi"
	// user_message_reference 00 09
	// ESME_RINVPARLEN
}

// NewBuilder encodes a PDU field by field, in the command's order, checking every length.
func ExampleNewBuilder() {
	frame, err := smpp.NewBuilder(smpp.SubmitSMResp, smpp.StatusOK, 7).
		CString("msg-0001").
		Bytes()
	fmt.Printf("% x %v\n", frame, err)

	_, err = smpp.NewBuilder(smpp.SubmitSM, smpp.StatusOK, 8).
		CString("").Int(5).Int(0).CString("BANK").Int(1).Int(1).CString("447700900123").
		Int(0).Int(0).Int(0).CString("").CString("").Int(1).Int(0).Int(0).Int(0).
		ShortMessage(make([]byte, 300)).
		Bytes()
	fmt.Println(err)
	// Output:
	// 00 00 00 19 80 00 00 04 00 00 00 00 00 00 00 07 6d 73 67 2d 30 30 30 31 00 <nil>
	// smpp: encode submit_sm: short_message is 300 octets, at most 254 allowed (use message_payload)
}
