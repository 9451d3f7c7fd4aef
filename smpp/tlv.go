package smpp

import "encoding/binary"

// Tag is an optional parameter (TLV) tag.
type Tag uint16

// SMPP 3.4 optional parameter tags (section 5.3.2).
const (
	TagDestAddrSubunit          Tag = 0x0005
	TagDestNetworkType          Tag = 0x0006
	TagDestBearerType           Tag = 0x0007
	TagDestTelematicsID         Tag = 0x0008
	TagSourceAddrSubunit        Tag = 0x000D
	TagSourceNetworkType        Tag = 0x000E
	TagSourceBearerType         Tag = 0x000F
	TagSourceTelematicsID       Tag = 0x0010
	TagQosTimeToLive            Tag = 0x0017
	TagPayloadType              Tag = 0x0019
	TagAdditionalStatusInfoText Tag = 0x001D
	TagReceiptedMessageID       Tag = 0x001E
	TagMsMsgWaitFacilities      Tag = 0x0030
	TagPrivacyIndicator         Tag = 0x0201
	TagSourceSubaddress         Tag = 0x0202
	TagDestSubaddress           Tag = 0x0203
	TagUserMessageReference     Tag = 0x0204
	TagUserResponseCode         Tag = 0x0205
	TagSourcePort               Tag = 0x020A
	TagDestinationPort          Tag = 0x020B
	TagSarMsgRefNum             Tag = 0x020C
	TagLanguageIndicator        Tag = 0x020D
	TagSarTotalSegments         Tag = 0x020E
	TagSarSegmentSeqnum         Tag = 0x020F
	TagSCInterfaceVersion       Tag = 0x0210
	TagCallbackNumPresInd       Tag = 0x0302
	TagCallbackNumAtag          Tag = 0x0303
	TagNumberOfMessages         Tag = 0x0304
	TagCallbackNum              Tag = 0x0381
	TagDpfResult                Tag = 0x0420
	TagSetDpf                   Tag = 0x0421
	TagMsAvailabilityStatus     Tag = 0x0422
	TagNetworkErrorCode         Tag = 0x0423
	TagMessagePayload           Tag = 0x0424
	TagDeliveryFailureReason    Tag = 0x0425
	TagMoreMessagesToSend       Tag = 0x0426
	TagMessageState             Tag = 0x0427
	TagUssdServiceOp            Tag = 0x0501
	TagDisplayTime              Tag = 0x1201
	TagSmsSignal                Tag = 0x1203
	TagMsValidity               Tag = 0x1204
	TagAlertOnMessageDelivery   Tag = 0x130C
	TagItsReplyType             Tag = 0x1380
	TagItsSessionInfo           Tag = 0x1383
)

// IsVendor reports whether t is in the vendor-specific range 0x1400–0x3FFF.
func (t Tag) IsVendor() bool { return t >= 0x1400 && t <= 0x3FFF }

// TLV is one optional parameter. Value is borrowed from the PDU.
type TLV struct {
	Tag   Tag
	Value []byte
}

// TLVIter walks a PDU's optional parameters in wire order without allocating.
type TLVIter struct {
	b   []byte
	off int
}

// Next returns the next TLV, or false at the end. The stream was validated by Parse.
func (it *TLVIter) Next() (TLV, bool) {
	if it.off+4 > len(it.b) {
		return TLV{}, false
	}
	t := Tag(binary.BigEndian.Uint16(it.b[it.off:]))
	l := int(binary.BigEndian.Uint16(it.b[it.off+2:]))
	start := it.off + 4
	if l > len(it.b)-start {
		it.off = len(it.b)
		return TLV{}, false
	}
	it.off = start + l
	return TLV{Tag: t, Value: it.b[start:it.off:it.off]}, true
}
