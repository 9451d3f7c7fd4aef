package smpp

import (
	"encoding/binary"
	"sync/atomic"
)

// commands lists the SMPP 3.4 commands PDUCounts keeps apart; anything else is counted as
// an unknown command.
var commands = [...]CommandID{
	GenericNack, BindReceiver, BindReceiverResp, BindTransmitter, BindTransmitterResp, QuerySM, QuerySMResp,
	SubmitSM, SubmitSMResp, DeliverSM, DeliverSMResp, Unbind, UnbindResp, ReplaceSM, ReplaceSMResp,
	CancelSM, CancelSMResp, BindTransceiver, BindTransceiverResp, Outbind, EnquireLink, EnquireLinkResp,
	SubmitMulti, SubmitMultiResp, AlertNotification, DataSM, DataSMResp,
}

const (
	numCmdSlots   = len(commands) + 1 // + unknown
	numStatusSlot = 257               // 0..255, then "other"
)

func cmdSlot(id CommandID) int {
	for i, c := range commands {
		if c == id {
			return i
		}
	}
	return len(commands)
}

// PDUCounts counts PDUs by direction, command and command_status with one atomic add per
// PDU. Sessions share one through Config.Counts; metrics read it at scrape time.
type PDUCounts struct {
	n [2][numCmdSlots][numStatusSlot]atomic.Uint64
}

func (c *PDUCounts) add(rx bool, frame []byte) {
	if len(frame) < HeaderLen {
		return
	}
	d := 0
	if rx {
		d = 1
	}
	st := binary.BigEndian.Uint32(frame[8:12])
	if st > 255 {
		st = 256
	}
	c.n[d][cmdSlot(CommandID(binary.BigEndian.Uint32(frame[4:8])))][st].Add(1)
}

// Each calls fn for every non-zero count. id is 0 for unknown commands; status
// 0xFFFFFFFF stands for statuses above 255.
func (c *PDUCounts) Each(fn func(rx bool, id CommandID, status Status, n uint64)) {
	for d := range 2 {
		for ci := range numCmdSlots {
			var id CommandID
			if ci < len(commands) {
				id = commands[ci]
			}
			for si := range numStatusSlot {
				if v := c.n[d][ci][si].Load(); v != 0 {
					st := Status(si)
					if si == 256 {
						st = 0xFFFFFFFF
					}
					fn(d == 1, id, st, v)
				}
			}
		}
	}
}
