package interceptor

import (
	"fmt"
	"time"

	"github.com/smppguard/smppguard/smpp"
)

// receiptStates maps receipt stat words to message_state values (SMPP 3.4 §5.2.28).
var receiptStates = map[string]byte{"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}

// WantsReceipt reports whether the message asked for an SMSC delivery receipt.
func WantsReceipt(m *Message) bool {
	rd, _ := m.PDU.Uint8(smpp.FieldRegisteredDelivery)
	return rd&0x03 != 0
}

// Receipt builds the deliver_sm receipt the proxy sends for a message it answered itself
// (accept-and-drop): from the message's destination to its source, esm_class 0x04, the
// usual receipt text and the receipted_message_id and message_state TLVs.
func Receipt(m *Message, messageID, stat string, errCode int, now time.Time) ([]byte, error) {
	state, ok := receiptStates[stat]
	if !ok {
		return nil, fmt.Errorf("interceptor: unknown receipt stat %q", stat)
	}
	ts := now.UTC().Format("0601021504")
	text := fmt.Sprintf("id:%s sub:001 dlvrd:000 submit date:%s done date:%s stat:%s err:%03d text:", messageID, ts, ts, stat, errCode)
	srcTON, _ := m.PDU.Uint8(smpp.FieldSourceAddrTON)
	srcNPI, _ := m.PDU.Uint8(smpp.FieldSourceAddrNPI)
	dst := m.Dest
	if len(dst) > 20 {
		dst = dst[:20]
	}
	src := m.Source
	if len(src) > 20 {
		src = src[:20]
	}
	return smpp.NewBuilder(smpp.DeliverSM, smpp.StatusOK, 0).
		CString("").Int(m.DestTON).Int(m.DestNPI).CString(dst).Int(srcTON).Int(srcNPI).CString(src).
		Int(0x04).Int(0).Int(0).CString("").CString("").Int(0).Int(0).Int(0).Int(0).ShortMessage([]byte(text)).
		TLVString(smpp.TagReceiptedMessageID, messageID).TLVByte(smpp.TagMessageState, state).Bytes()
}
