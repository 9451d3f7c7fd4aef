package smpp

import (
	"fmt"
	"strconv"
)

// Status is an SMPP command_status. A non-zero Status is also an error.
type Status uint32

// SMPP 3.4 command_status values (section 5.1.3).
const (
	StatusOK              Status = 0x00000000 // ESME_ROK
	StatusInvMsgLen       Status = 0x00000001 // ESME_RINVMSGLEN
	StatusInvCmdLen       Status = 0x00000002 // ESME_RINVCMDLEN
	StatusInvCmdID        Status = 0x00000003 // ESME_RINVCMDID
	StatusInvBndSts       Status = 0x00000004 // ESME_RINVBNDSTS
	StatusAlyBnd          Status = 0x00000005 // ESME_RALYBND
	StatusInvPrtFlg       Status = 0x00000006 // ESME_RINVPRTFLG
	StatusInvRegDlvFlg    Status = 0x00000007 // ESME_RINVREGDLVFLG
	StatusSysErr          Status = 0x00000008 // ESME_RSYSERR
	StatusInvSrcAdr       Status = 0x0000000A // ESME_RINVSRCADR
	StatusInvDstAdr       Status = 0x0000000B // ESME_RINVDSTADR
	StatusInvMsgID        Status = 0x0000000C // ESME_RINVMSGID
	StatusBindFail        Status = 0x0000000D // ESME_RBINDFAIL
	StatusInvPaswd        Status = 0x0000000E // ESME_RINVPASWD
	StatusInvSysID        Status = 0x0000000F // ESME_RINVSYSID
	StatusCancelFail      Status = 0x00000011 // ESME_RCANCELFAIL
	StatusReplaceFail     Status = 0x00000013 // ESME_RREPLACEFAIL
	StatusMsgQFul         Status = 0x00000014 // ESME_RMSGQFUL
	StatusInvSerTyp       Status = 0x00000015 // ESME_RINVSERTYP
	StatusInvNumDests     Status = 0x00000033 // ESME_RINVNUMDESTS
	StatusInvDLName       Status = 0x00000034 // ESME_RINVDLNAME
	StatusInvDestFlag     Status = 0x00000040 // ESME_RINVDESTFLAG
	StatusInvSubRep       Status = 0x00000042 // ESME_RINVSUBREP
	StatusInvEsmClass     Status = 0x00000043 // ESME_RINVESMCLASS
	StatusCntSubDL        Status = 0x00000044 // ESME_RCNTSUBDL
	StatusSubmitFail      Status = 0x00000045 // ESME_RSUBMITFAIL
	StatusInvSrcTON       Status = 0x00000048 // ESME_RINVSRCTON
	StatusInvSrcNPI       Status = 0x00000049 // ESME_RINVSRCNPI
	StatusInvDstTON       Status = 0x00000050 // ESME_RINVDSTTON
	StatusInvDstNPI       Status = 0x00000051 // ESME_RINVDSTNPI
	StatusInvSysTyp       Status = 0x00000053 // ESME_RINVSYSTYP
	StatusInvRepFlag      Status = 0x00000054 // ESME_RINVREPFLAG
	StatusInvNumMsgs      Status = 0x00000055 // ESME_RINVNUMMSGS
	StatusThrottled       Status = 0x00000058 // ESME_RTHROTTLED
	StatusInvSched        Status = 0x00000061 // ESME_RINVSCHED
	StatusInvExpiry       Status = 0x00000062 // ESME_RINVEXPIRY
	StatusInvDftMsgID     Status = 0x00000063 // ESME_RINVDFTMSGID
	StatusXTAppn          Status = 0x00000064 // ESME_RX_T_APPN
	StatusXPAppn          Status = 0x00000065 // ESME_RX_P_APPN
	StatusXRAppn          Status = 0x00000066 // ESME_RX_R_APPN
	StatusQueryFail       Status = 0x00000067 // ESME_RQUERYFAIL
	StatusInvOptParStream Status = 0x000000C0 // ESME_RINVOPTPARSTREAM
	StatusOptParNotAllwd  Status = 0x000000C1 // ESME_ROPTPARNOTALLWD
	StatusInvParLen       Status = 0x000000C2 // ESME_RINVPARLEN
	StatusMissingOptParam Status = 0x000000C3 // ESME_RMISSINGOPTPARAM
	StatusInvOptParamVal  Status = 0x000000C4 // ESME_RINVOPTPARAMVAL
	StatusDeliveryFailure Status = 0x000000FE // ESME_RDELIVERYFAILURE
	StatusUnknownErr      Status = 0x000000FF // ESME_RUNKNOWNERR
)

var statusNames = map[Status]string{
	StatusOK:              "ESME_ROK",
	StatusInvMsgLen:       "ESME_RINVMSGLEN",
	StatusInvCmdLen:       "ESME_RINVCMDLEN",
	StatusInvCmdID:        "ESME_RINVCMDID",
	StatusInvBndSts:       "ESME_RINVBNDSTS",
	StatusAlyBnd:          "ESME_RALYBND",
	StatusInvPrtFlg:       "ESME_RINVPRTFLG",
	StatusInvRegDlvFlg:    "ESME_RINVREGDLVFLG",
	StatusSysErr:          "ESME_RSYSERR",
	StatusInvSrcAdr:       "ESME_RINVSRCADR",
	StatusInvDstAdr:       "ESME_RINVDSTADR",
	StatusInvMsgID:        "ESME_RINVMSGID",
	StatusBindFail:        "ESME_RBINDFAIL",
	StatusInvPaswd:        "ESME_RINVPASWD",
	StatusInvSysID:        "ESME_RINVSYSID",
	StatusCancelFail:      "ESME_RCANCELFAIL",
	StatusReplaceFail:     "ESME_RREPLACEFAIL",
	StatusMsgQFul:         "ESME_RMSGQFUL",
	StatusInvSerTyp:       "ESME_RINVSERTYP",
	StatusInvNumDests:     "ESME_RINVNUMDESTS",
	StatusInvDLName:       "ESME_RINVDLNAME",
	StatusInvDestFlag:     "ESME_RINVDESTFLAG",
	StatusInvSubRep:       "ESME_RINVSUBREP",
	StatusInvEsmClass:     "ESME_RINVESMCLASS",
	StatusCntSubDL:        "ESME_RCNTSUBDL",
	StatusSubmitFail:      "ESME_RSUBMITFAIL",
	StatusInvSrcTON:       "ESME_RINVSRCTON",
	StatusInvSrcNPI:       "ESME_RINVSRCNPI",
	StatusInvDstTON:       "ESME_RINVDSTTON",
	StatusInvDstNPI:       "ESME_RINVDSTNPI",
	StatusInvSysTyp:       "ESME_RINVSYSTYP",
	StatusInvRepFlag:      "ESME_RINVREPFLAG",
	StatusInvNumMsgs:      "ESME_RINVNUMMSGS",
	StatusThrottled:       "ESME_RTHROTTLED",
	StatusInvSched:        "ESME_RINVSCHED",
	StatusInvExpiry:       "ESME_RINVEXPIRY",
	StatusInvDftMsgID:     "ESME_RINVDFTMSGID",
	StatusXTAppn:          "ESME_RX_T_APPN",
	StatusXPAppn:          "ESME_RX_P_APPN",
	StatusXRAppn:          "ESME_RX_R_APPN",
	StatusQueryFail:       "ESME_RQUERYFAIL",
	StatusInvOptParStream: "ESME_RINVOPTPARSTREAM",
	StatusOptParNotAllwd:  "ESME_ROPTPARNOTALLWD",
	StatusInvParLen:       "ESME_RINVPARLEN",
	StatusMissingOptParam: "ESME_RMISSINGOPTPARAM",
	StatusInvOptParamVal:  "ESME_RINVOPTPARAMVAL",
	StatusDeliveryFailure: "ESME_RDELIVERYFAILURE",
	StatusUnknownErr:      "ESME_RUNKNOWNERR",
}

// String returns the ESME_R* name, or the hex value for vendor statuses.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "0x" + strconv.FormatUint(uint64(s), 16)
}

// Error makes a Status usable as an error.
func (s Status) Error() string { return "smpp: " + s.String() }

// ParseStatus reads a command_status written as its ESME_R* name ("ESME_RSUBMITFAIL") or as a
// number ("0x45", "69").
func ParseStatus(s string) (Status, error) {
	for st, name := range statusNames {
		if name == s {
			return st, nil
		}
	}
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("smpp: %q is neither an ESME_R* status name nor a number", s)
	}
	return Status(n), nil
}
