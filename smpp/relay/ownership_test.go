package relay

import (
	"testing"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// A pooled account may query, cancel or replace its own messages; a message_id known as
// another pooled account's message is refused with ESME_RINVMSGID and never reaches the
// SMSC. One bank must not touch another's messages over the shared binds.
func TestQueryCancelReplaceOwnMessagesOnly(t *testing.T) {
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Accounts = append(c.Accounts, Account{SystemID: "other", Password: "pw", Route: "default", QueueMax: 10})
	})
	bank := mustBind(t, e.addr, smpp.BindTransceiver, "bank", "pw")
	other := mustBind(t, e.addr, smpp.BindTransceiver, "other", "pw")
	// Receipt-requesting submits are correlated; their ids are what the relay can check.
	id := request(t, bank, submitFrame(t, smOpt{text: []byte("x"), regDel: 1})).CString(smpp.FieldMessageID)
	mk := func(cmd smpp.CommandID) []byte {
		t.Helper()
		var b *smpp.Builder
		switch cmd {
		case smpp.QuerySM:
			b = smpp.NewBuilder(smpp.QuerySM, 0, 0).CString(id).Int(5).Int(0).CString("BANK")
		case smpp.CancelSM:
			b = smpp.NewBuilder(smpp.CancelSM, 0, 0).CString("").CString(id).Int(5).Int(0).CString("BANK").Int(1).Int(1).CString("447700900123")
		case smpp.ReplaceSM:
			b = smpp.NewBuilder(smpp.ReplaceSM, 0, 0).CString(id).Int(5).Int(0).CString("BANK").CString("").CString("").Int(0).Int(0).ShortMessage([]byte("new"))
		}
		f, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, c := range []struct {
		name string
		from *esmeClient
		want smpp.Status
	}{
		{"owner", bank, smpp.StatusOK},
		{"another account", other, smpp.StatusInvMsgID},
	} {
		for _, cmd := range []smpp.CommandID{smpp.QuerySM, smpp.ReplaceSM, smpp.CancelSM} {
			t.Run(c.name+"/"+cmd.String(), func(t *testing.T) {
				before := len(e.records(cmd))
				resp := request(t, c.from, mk(cmd))
				if resp.ID() != cmd.Response() || resp.Status() != c.want {
					t.Fatalf("%s answered %s, want %s", cmd, resp.Status(), c.want)
				}
				reached := len(e.records(cmd)) - before
				if want := map[bool]int{true: 1, false: 0}[c.want == smpp.StatusOK]; reached != want {
					t.Fatalf("%d %s reached the SMSC, want %d", reached, cmd, want)
				}
			})
		}
	}
	if n := e.relay.Stats().ForeignMessageIDs; n != 3 {
		t.Fatalf("ForeignMessageIDs %d, want 3", n)
	}
}
