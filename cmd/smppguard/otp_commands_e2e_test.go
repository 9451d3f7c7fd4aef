package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
)

// request sends one PDU built by b and returns the response.
func (c *esme) request(t *testing.T, b *smpp.Builder) *smpp.PDU {
	t.Helper()
	p, err := b.PDU()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := c.s.Request(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// dataSM is a data_sm to dest with text in message_payload and a receipt requested.
func dataSM(dest, text string) *smpp.Builder {
	return smpp.NewBuilder(smpp.DataSM, 0, 0).CString("").Int(5).Int(0).CString("BANK").Int(1).Int(1).CString(dest).
		Int(0).Int(1).Int(0).TLV(smpp.TagMessagePayload, []byte(text))
}

// submitMulti is a submit_multi to international numbers with text in short_message.
func submitMulti(text string, dests ...string) *smpp.Builder {
	ds := make([]smpp.Dest, len(dests))
	for i, d := range dests {
		ds[i] = smpp.Dest{TON: 1, NPI: 1, Addr: d}
	}
	return smpp.NewBuilder(smpp.SubmitMulti, 0, 0).CString("").Int(5).Int(0).CString("BANK").Int(byte(len(ds))).Dests(ds).
		Int(0).Int(0).Int(0).CString("").CString("").Int(1).Int(0).Int(0).Int(0).ShortMessage([]byte(text))
}

// OTPs in data_sm (text in message_payload) and submit_multi are intercepted like
// submit_sm: rejected, rerouted or relayed per the policy (bank: swapped SIM rejected with
// ESME_RSUBMITFAIL, call forwarding rerouted to the voice route). A submit_multi gets one
// decision for all its destinations, the most severe (docs/ARCHITECTURE.md, "Not yet
// built"): one swapped destination rejects the whole message, for its clean destination too,
// and one diverted destination reroutes the whole message.
func TestE2EOTPDataSMAndSubmitMulti(t *testing.T) {
	e := startOTPEnv(t, "")
	bank := bindTRX(t, e.proc.addr, "bank", "bankpw")

	t.Run("data_sm to a swapped SIM: rejected, not relayed", func(t *testing.T) {
		r := bank.request(t, dataSM(numSwapped, otpText))
		if r.ID() != smpp.DataSMResp || r.Status() != smpp.StatusSubmitFail {
			t.Fatalf("%s %s, want data_sm_resp ESME_RSUBMITFAIL", r.ID(), r.Status())
		}
		if n := recordsTo(e.smsc, "data_sm", numSwapped); n != 0 {
			t.Fatalf("%d data_sm relayed", n)
		}
	})
	t.Run("data_sm to a clean number: relayed", func(t *testing.T) {
		const num = "447700901601"
		r := bank.request(t, dataSM(num, otpText))
		if r.ID() != smpp.DataSMResp || r.Status() != smpp.StatusOK {
			t.Fatalf("%s %s", r.ID(), r.Status())
		}
		if n := recordsTo(e.smsc, "data_sm", num); n != 1 {
			t.Fatalf("%d data_sm relayed, want 1", n)
		}
		if n := len(callsFor(e.carrier, num)); n != 2 {
			t.Fatalf("%d carrier calls, want 2 (sim swap, call forwarding): the data_sm OTP was not looked up", n)
		}
	})
	t.Run("data_sm to a diverted number: rerouted", func(t *testing.T) {
		r := bank.request(t, dataSM(numDiverted, otpText))
		if r.Status() != smpp.StatusOK {
			t.Fatalf("status %s", r.Status())
		}
		if recordsTo(e.voice, "data_sm", numDiverted) != 1 || recordsTo(e.smsc, "data_sm", numDiverted) != 0 {
			t.Fatal("the data_sm OTP was not rerouted to the voice gateway")
		}
	})
	t.Run("submit_multi, one destination swapped: the whole message rejected", func(t *testing.T) {
		const clean = "447700901611"
		r := bank.request(t, submitMulti(otpText, clean, numSwapped))
		if r.ID() != smpp.SubmitMultiResp || r.Status() != smpp.StatusSubmitFail {
			t.Fatalf("%s %s, want submit_multi_resp ESME_RSUBMITFAIL", r.ID(), r.Status())
		}
		if n := recordsTo(e.smsc, "submit_multi", clean) + recordsTo(e.voice, "submit_multi", clean); n != 0 {
			t.Fatalf("%d submit_multi relayed: the clean destination got the message", n)
		}
		if n := len(callsFor(e.carrier, clean)); n != 2 {
			t.Fatalf("%d carrier calls for the clean destination, want 2: every destination is looked up", n)
		}
	})
	t.Run("submit_multi, every destination clean: relayed once to all", func(t *testing.T) {
		const a, b = "447700901621", "447700901622"
		r := bank.request(t, submitMulti(otpText, a, b))
		if r.ID() != smpp.SubmitMultiResp || r.Status() != smpp.StatusOK {
			t.Fatalf("%s %s", r.ID(), r.Status())
		}
		if recordsTo(e.smsc, "submit_multi", a) != 1 || recordsTo(e.smsc, "submit_multi", b) != 1 {
			t.Fatal("not relayed to the SMSC with both destinations")
		}
		if len(callsFor(e.carrier, a)) != 2 || len(callsFor(e.carrier, b)) != 2 {
			t.Fatal("each destination is looked up for each signal")
		}
	})
	t.Run("submit_multi, one destination diverted: the whole message rerouted", func(t *testing.T) {
		const clean = "447700901631"
		r := bank.request(t, submitMulti(otpText, clean, numDiverted))
		if r.Status() != smpp.StatusOK {
			t.Fatalf("status %s", r.Status())
		}
		if recordsTo(e.voice, "submit_multi", clean) != 1 || recordsTo(e.smsc, "submit_multi", clean) != 0 {
			t.Fatal("the submit_multi was not rerouted whole to the voice gateway")
		}
	})
	// The audit names the command, and the submit_multi's signal names the destination that
	// decided it (masked).
	recs := e.waitAudit(t, "six audit records", func(recs []map[string]any) bool { return len(recs) == 6 })
	byCommand := map[string]int{}
	for _, r := range recs {
		byCommand[fmt.Sprint(r["command"])]++
		if r["command"] == "submit_multi" && r["action"] == "reject" {
			sig := fmt.Sprint(r["signals"].([]any)[0])
			if !strings.Contains(sig, "********0001: SIM swapped") {
				t.Errorf("submit_multi reject: sim_swap signal %s does not name the swapped destination", sig)
			}
		}
	}
	if byCommand["data_sm"] != 3 || byCommand["submit_multi"] != 3 {
		t.Fatalf("audit commands %v", byCommand)
	}
}
