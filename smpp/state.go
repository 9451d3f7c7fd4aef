package smpp

// State is a session's bind state (SMPP 3.4 section 2.2).
type State uint32

// Session states.
const (
	StateOpen State = iota
	StateBoundTX
	StateBoundRX
	StateBoundTRX
	StateUnbinding
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateOpen:
		return "OPEN"
	case StateBoundTX:
		return "BOUND_TX"
	case StateBoundRX:
		return "BOUND_RX"
	case StateBoundTRX:
		return "BOUND_TRX"
	case StateUnbinding:
		return "UNBINDING"
	case StateClosed:
		return "CLOSED"
	}
	return "STATE?"
}

// Bound reports whether s is one of the bound states.
func (s State) Bound() bool { return s == StateBoundTX || s == StateBoundRX || s == StateBoundTRX }

// CanTransmit reports whether a session in state s may carry submits from the ESME.
func (s State) CanTransmit() bool { return s == StateBoundTX || s == StateBoundTRX }

// CanReceive reports whether a session in state s may carry deliver_sm to the ESME.
func (s State) CanReceive() bool { return s == StateBoundRX || s == StateBoundTRX }

// BoundState returns the state a successful bind of kind id leads to.
func BoundState(id CommandID) State {
	switch id.Request() {
	case BindTransmitter:
		return StateBoundTX
	case BindReceiver:
		return StateBoundRX
	case BindTransceiver:
		return StateBoundTRX
	}
	return StateOpen
}

// Side says which end of the protocol a session plays.
type Side uint8

const (
	// SideSMSC: we accept binds; the peer is an ESME (the proxy's listener).
	SideSMSC Side = iota
	// SideESME: we bind; the peer is an SMSC (the proxy's upstream links).
	SideESME
)

// allowed reports whether the peer may send request id to a session of side in state st.
// enquire_link, unbind and generic_nack are handled before this check.
func allowed(side Side, st State, id CommandID) bool {
	if side == SideSMSC {
		switch st {
		case StateOpen:
			return id.IsBind()
		case StateBoundTX, StateBoundTRX:
			switch id {
			case SubmitSM, SubmitMulti, DataSM, QuerySM, CancelSM, ReplaceSM:
				return true
			}
		}
		return false
	}
	switch st {
	case StateOpen:
		return id == Outbind
	case StateBoundRX, StateBoundTRX:
		switch id {
		case DeliverSM, DataSM, AlertNotification:
			return true
		}
	}
	return false
}
