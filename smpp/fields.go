package smpp

// Field names a mandatory parameter of an SMPP 3.4 PDU body.
type Field uint8

// Mandatory fields (SMPP 3.4 section 4). A Field is looked up in a PDU with PDU.Field.
const (
	FieldNone Field = iota
	FieldSystemID
	FieldPassword
	FieldSystemType
	FieldInterfaceVersion
	FieldAddrTON
	FieldAddrNPI
	FieldAddressRange
	FieldServiceType
	FieldSourceAddrTON
	FieldSourceAddrNPI
	FieldSourceAddr
	FieldDestAddrTON
	FieldDestAddrNPI
	FieldDestinationAddr
	FieldESMClass
	FieldProtocolID
	FieldPriorityFlag
	FieldScheduleDeliveryTime
	FieldValidityPeriod
	FieldRegisteredDelivery
	FieldReplaceIfPresentFlag
	FieldDataCoding
	FieldSMDefaultMsgID
	FieldSMLength
	FieldShortMessage
	FieldMessageID
	FieldNumberOfDests
	FieldDestAddresses // submit_multi: the whole dest_address list
	FieldNoUnsuccess
	FieldUnsuccessSMEs // submit_multi_resp: the whole unsuccess_sme list
	FieldFinalDate
	FieldMessageState
	FieldErrorCode
	FieldESMEAddrTON
	FieldESMEAddrNPI
	FieldESMEAddr
	numFields
)

var fieldNames = [numFields]string{
	"none", "system_id", "password", "system_type", "interface_version", "addr_ton", "addr_npi",
	"address_range", "service_type", "source_addr_ton", "source_addr_npi", "source_addr",
	"dest_addr_ton", "dest_addr_npi", "destination_addr", "esm_class", "protocol_id", "priority_flag",
	"schedule_delivery_time", "validity_period", "registered_delivery", "replace_if_present_flag",
	"data_coding", "sm_default_msg_id", "sm_length", "short_message", "message_id", "number_of_dests",
	"dest_address", "no_unsuccess", "unsuccess_sme", "final_date", "message_state", "error_code",
	"esme_addr_ton", "esme_addr_npi", "esme_addr",
}

func (f Field) String() string {
	if f < numFields {
		return fieldNames[f]
	}
	return "field?"
}

type kind uint8

const (
	kInt1       kind = iota // 1-octet integer
	kCString                // NUL-terminated, max bytes incl. NUL
	kSMLength               // 1-octet length of the following octet string
	kOctets                 // octet string of the preceding kSMLength
	kDestList               // submit_multi dest_address list, count from preceding number_of_dests
	kUnsuccList             // submit_multi_resp unsuccess_sme list, count from preceding no_unsuccess
)

type fieldSpec struct {
	f   Field
	k   kind
	max int    // C-string max length including NUL
	bad Status // status when this field is malformed
}

// maxBodyFields bounds the number of mandatory fields of any command.
const maxBodyFields = 20

// layout is the mandatory part of one command's body.
type layout struct {
	specs []fieldSpec
	pos   [numFields]int8 // index into specs, -1 when the command has no such field
	// optionalBody: the body may be absent altogether (error responses, bind_resp with error).
	optionalBody bool
}

func cs(f Field, max int, bad Status) fieldSpec {
	return fieldSpec{f: f, k: kCString, max: max, bad: bad}
}
func i1(f Field) fieldSpec { return fieldSpec{f: f, k: kInt1} }

// tm is a time field: a C-string of at most 16 characters. The exact 16-character
// format is the SMSC's to judge; the proxy relays what it cannot validate better.
func tm(f Field, bad Status) fieldSpec { return fieldSpec{f: f, k: kCString, max: 17, bad: bad} }

func newLayout(optional bool, specs ...fieldSpec) *layout {
	if len(specs) > maxBodyFields {
		panic("smpp: layout too long") // internal invariant, checked at init
	}
	l := &layout{specs: specs, optionalBody: optional}
	for i := range l.pos {
		l.pos[i] = -1
	}
	for i, s := range specs {
		l.pos[s.f] = int8(i)
	}
	return l
}

func bindLayout() *layout {
	return newLayout(false,
		cs(FieldSystemID, 16, StatusInvSysID),
		cs(FieldPassword, 9, StatusInvPaswd),
		cs(FieldSystemType, 13, StatusInvSysTyp),
		i1(FieldInterfaceVersion),
		i1(FieldAddrTON),
		i1(FieldAddrNPI),
		cs(FieldAddressRange, 41, StatusInvMsgLen),
	)
}

// smLayout is the body shared by submit_sm and deliver_sm.
func smLayout() *layout {
	return newLayout(false,
		cs(FieldServiceType, 6, StatusInvSerTyp),
		i1(FieldSourceAddrTON),
		i1(FieldSourceAddrNPI),
		cs(FieldSourceAddr, 21, StatusInvSrcAdr),
		i1(FieldDestAddrTON),
		i1(FieldDestAddrNPI),
		cs(FieldDestinationAddr, 21, StatusInvDstAdr),
		i1(FieldESMClass),
		i1(FieldProtocolID),
		i1(FieldPriorityFlag),
		tm(FieldScheduleDeliveryTime, StatusInvSched),
		tm(FieldValidityPeriod, StatusInvExpiry),
		i1(FieldRegisteredDelivery),
		i1(FieldReplaceIfPresentFlag),
		i1(FieldDataCoding),
		i1(FieldSMDefaultMsgID),
		fieldSpec{f: FieldSMLength, k: kSMLength, bad: StatusInvMsgLen},
		fieldSpec{f: FieldShortMessage, k: kOctets, bad: StatusInvMsgLen},
	)
}

func msgIDRespLayout() *layout {
	return newLayout(true, cs(FieldMessageID, 65, StatusInvMsgID))
}

func emptyLayout() *layout { return newLayout(true) }

// layoutFor returns the body layout of an SMPP 3.4 command, or nil for an unknown command.
func layoutFor(id CommandID) *layout {
	req := id.Request()
	if req < CommandID(len(layoutTable[0])) {
		return layoutTable[id>>31][req]
	}
	switch req {
	case AlertNotification:
		if id == AlertNotification {
			return layoutAlert
		}
	case DataSM:
		return layoutData[id>>31]
	}
	return nil
}

var (
	layoutTable = func() (t [2][0x22]*layout) {
		for id, l := range layouts {
			if r := id.Request(); r < 0x22 {
				t[id>>31][r] = l
			}
		}
		return t
	}()
	layoutAlert = layouts[AlertNotification]
	layoutData  = [2]*layout{layouts[DataSM], layouts[DataSMResp]}
)

// layouts maps every SMPP 3.4 command to its mandatory body. Read-only after init.
var layouts = map[CommandID]*layout{
	GenericNack:         emptyLayout(),
	BindReceiver:        bindLayout(),
	BindTransmitter:     bindLayout(),
	BindTransceiver:     bindLayout(),
	BindReceiverResp:    newLayout(true, cs(FieldSystemID, 16, StatusInvSysID)),
	BindTransmitterResp: newLayout(true, cs(FieldSystemID, 16, StatusInvSysID)),
	BindTransceiverResp: newLayout(true, cs(FieldSystemID, 16, StatusInvSysID)),
	Outbind: newLayout(false,
		cs(FieldSystemID, 16, StatusInvSysID),
		cs(FieldPassword, 9, StatusInvPaswd)),
	Unbind:          emptyLayout(),
	UnbindResp:      emptyLayout(),
	EnquireLink:     emptyLayout(),
	EnquireLinkResp: emptyLayout(),
	SubmitSM:        smLayout(),
	SubmitSMResp:    msgIDRespLayout(),
	DeliverSM:       smLayout(),
	DeliverSMResp:   msgIDRespLayout(),
	SubmitMulti: newLayout(false,
		cs(FieldServiceType, 6, StatusInvSerTyp),
		i1(FieldSourceAddrTON),
		i1(FieldSourceAddrNPI),
		cs(FieldSourceAddr, 21, StatusInvSrcAdr),
		fieldSpec{f: FieldNumberOfDests, k: kInt1},
		fieldSpec{f: FieldDestAddresses, k: kDestList, bad: StatusInvNumDests},
		i1(FieldESMClass),
		i1(FieldProtocolID),
		i1(FieldPriorityFlag),
		tm(FieldScheduleDeliveryTime, StatusInvSched),
		tm(FieldValidityPeriod, StatusInvExpiry),
		i1(FieldRegisteredDelivery),
		i1(FieldReplaceIfPresentFlag),
		i1(FieldDataCoding),
		i1(FieldSMDefaultMsgID),
		fieldSpec{f: FieldSMLength, k: kSMLength, bad: StatusInvMsgLen},
		fieldSpec{f: FieldShortMessage, k: kOctets, bad: StatusInvMsgLen},
	),
	SubmitMultiResp: newLayout(true,
		cs(FieldMessageID, 65, StatusInvMsgID),
		fieldSpec{f: FieldNoUnsuccess, k: kInt1},
		fieldSpec{f: FieldUnsuccessSMEs, k: kUnsuccList, bad: StatusInvMsgLen},
	),
	DataSM: newLayout(false,
		cs(FieldServiceType, 6, StatusInvSerTyp),
		i1(FieldSourceAddrTON),
		i1(FieldSourceAddrNPI),
		cs(FieldSourceAddr, 65, StatusInvSrcAdr),
		i1(FieldDestAddrTON),
		i1(FieldDestAddrNPI),
		cs(FieldDestinationAddr, 65, StatusInvDstAdr),
		i1(FieldESMClass),
		i1(FieldRegisteredDelivery),
		i1(FieldDataCoding),
	),
	DataSMResp: msgIDRespLayout(),
	QuerySM: newLayout(false,
		cs(FieldMessageID, 65, StatusInvMsgID),
		i1(FieldSourceAddrTON),
		i1(FieldSourceAddrNPI),
		cs(FieldSourceAddr, 21, StatusInvSrcAdr),
	),
	QuerySMResp: newLayout(true,
		cs(FieldMessageID, 65, StatusInvMsgID),
		tm(FieldFinalDate, StatusQueryFail),
		i1(FieldMessageState),
		i1(FieldErrorCode),
	),
	CancelSM: newLayout(false,
		cs(FieldServiceType, 6, StatusInvSerTyp),
		cs(FieldMessageID, 65, StatusInvMsgID),
		i1(FieldSourceAddrTON),
		i1(FieldSourceAddrNPI),
		cs(FieldSourceAddr, 21, StatusInvSrcAdr),
		i1(FieldDestAddrTON),
		i1(FieldDestAddrNPI),
		cs(FieldDestinationAddr, 21, StatusInvDstAdr),
	),
	CancelSMResp: emptyLayout(),
	ReplaceSM: newLayout(false,
		cs(FieldMessageID, 65, StatusInvMsgID),
		i1(FieldSourceAddrTON),
		i1(FieldSourceAddrNPI),
		cs(FieldSourceAddr, 21, StatusInvSrcAdr),
		tm(FieldScheduleDeliveryTime, StatusInvSched),
		tm(FieldValidityPeriod, StatusInvExpiry),
		i1(FieldRegisteredDelivery),
		i1(FieldSMDefaultMsgID),
		fieldSpec{f: FieldSMLength, k: kSMLength, bad: StatusInvMsgLen},
		fieldSpec{f: FieldShortMessage, k: kOctets, bad: StatusInvMsgLen},
	),
	ReplaceSMResp: emptyLayout(),
	AlertNotification: newLayout(false,
		i1(FieldSourceAddrTON),
		i1(FieldSourceAddrNPI),
		cs(FieldSourceAddr, 65, StatusInvSrcAdr),
		i1(FieldESMEAddrTON),
		i1(FieldESMEAddrNPI),
		cs(FieldESMEAddr, 65, StatusInvDstAdr),
	),
}
