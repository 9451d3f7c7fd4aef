package smpp

import "strconv"

// CommandID is the SMPP 3.4 command_id of a PDU.
type CommandID uint32

// SMPP 3.4 command identifiers (section 5.1.2.1).
const (
	GenericNack         CommandID = 0x80000000
	BindReceiver        CommandID = 0x00000001
	BindReceiverResp    CommandID = 0x80000001
	BindTransmitter     CommandID = 0x00000002
	BindTransmitterResp CommandID = 0x80000002
	QuerySM             CommandID = 0x00000003
	QuerySMResp         CommandID = 0x80000003
	SubmitSM            CommandID = 0x00000004
	SubmitSMResp        CommandID = 0x80000004
	DeliverSM           CommandID = 0x00000005
	DeliverSMResp       CommandID = 0x80000005
	Unbind              CommandID = 0x00000006
	UnbindResp          CommandID = 0x80000006
	ReplaceSM           CommandID = 0x00000007
	ReplaceSMResp       CommandID = 0x80000007
	CancelSM            CommandID = 0x00000008
	CancelSMResp        CommandID = 0x80000008
	BindTransceiver     CommandID = 0x00000009
	BindTransceiverResp CommandID = 0x80000009
	Outbind             CommandID = 0x0000000B
	EnquireLink         CommandID = 0x00000015
	EnquireLinkResp     CommandID = 0x80000015
	SubmitMulti         CommandID = 0x00000021
	SubmitMultiResp     CommandID = 0x80000021
	AlertNotification   CommandID = 0x00000102
	DataSM              CommandID = 0x00000103
	DataSMResp          CommandID = 0x80000103
)

const respBit = 0x80000000

// IsResponse reports whether the command is a response (or generic_nack).
func (c CommandID) IsResponse() bool { return c&respBit != 0 }

// Response returns the response command for a request command.
// For commands without a response (outbind, alert_notification, generic_nack) it returns GenericNack.
func (c CommandID) Response() CommandID {
	switch c {
	case Outbind, AlertNotification, GenericNack:
		return GenericNack
	}
	if c.IsResponse() {
		return GenericNack
	}
	return c | respBit
}

// HasResponse reports whether a request of this command expects a response.
func (c CommandID) HasResponse() bool {
	return !c.IsResponse() && c != Outbind && c != AlertNotification
}

// Request returns the request command of a response (c with the response bit cleared).
func (c CommandID) Request() CommandID { return c &^ respBit }

// Known reports whether c is an SMPP 3.4 command.
func (c CommandID) Known() bool {
	_, ok := commandNames[c]
	return ok
}

// IsBind reports whether c is one of the three bind requests.
func (c CommandID) IsBind() bool {
	return c == BindReceiver || c == BindTransmitter || c == BindTransceiver
}

var commandNames = map[CommandID]string{
	GenericNack:         "generic_nack",
	BindReceiver:        "bind_receiver",
	BindReceiverResp:    "bind_receiver_resp",
	BindTransmitter:     "bind_transmitter",
	BindTransmitterResp: "bind_transmitter_resp",
	QuerySM:             "query_sm",
	QuerySMResp:         "query_sm_resp",
	SubmitSM:            "submit_sm",
	SubmitSMResp:        "submit_sm_resp",
	DeliverSM:           "deliver_sm",
	DeliverSMResp:       "deliver_sm_resp",
	Unbind:              "unbind",
	UnbindResp:          "unbind_resp",
	ReplaceSM:           "replace_sm",
	ReplaceSMResp:       "replace_sm_resp",
	CancelSM:            "cancel_sm",
	CancelSMResp:        "cancel_sm_resp",
	BindTransceiver:     "bind_transceiver",
	BindTransceiverResp: "bind_transceiver_resp",
	Outbind:             "outbind",
	EnquireLink:         "enquire_link",
	EnquireLinkResp:     "enquire_link_resp",
	SubmitMulti:         "submit_multi",
	SubmitMultiResp:     "submit_multi_resp",
	AlertNotification:   "alert_notification",
	DataSM:              "data_sm",
	DataSMResp:          "data_sm_resp",
}

func (c CommandID) String() string {
	if n, ok := commandNames[c]; ok {
		return n
	}
	return "command_0x" + strconv.FormatUint(uint64(c), 16)
}
