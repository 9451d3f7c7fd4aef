package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

func queueDepth(t *testing.T, p *proc) string {
	t.Helper()
	_, body := adminCall(t, p, "GET", "/metrics", "")
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, `smppguard_receiver_queue_depth{account="bank"}`) {
			return strings.TrimSpace(strings.TrimPrefix(l, `smppguard_receiver_queue_depth{account="bank"}`))
		}
	}
	return ""
}

func waitDepth(t *testing.T, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if queueDepth(t, p) == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("queue depth %s, want %s", queueDepth(t, p), want)
}

// The proxy is killed (SIGKILL) with receipts queued for an offline ESME, and with receipts
// for messages it relayed still to come from the SMSC, at once after the last submit_sm_resp.
// After a restart every receipt reaches the ESME exactly once: the queue and the message_id
// correlations were on disk.
func TestE2EDurableAcrossKill(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{DLRDelay: 1500 * time.Millisecond})
	dir := t.TempDir()
	cfg := strings.Replace(readFile(t, writeConfig(t, smsc.Addr())), "relay:\n", "relay:\n  store_path: "+filepath.Join(dir, "store.db")+"\n", 1)
	path := filepath.Join(dir, "durable.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)

	p1 := startBinary(t, "serve", "-c", path)
	tx := bindTX(t, p1.addr)
	var ids []string
	for i := range 5 {
		r := tx.submit(t, sm{dest: "44770090010" + string(rune('0'+i)), text: []byte("queued"), esm: 0})
		ids = append(ids, r.CString(smpp.FieldMessageID))
	}
	waitDepth(t, p1, "5") // the 5 receipts came back and wait, on disk, for a receiver
	for i := range 3 {    // 3 more whose receipts the SMSC sends 1.5 s later
		r := tx.submit(t, sm{dest: "44770090020" + string(rune('0'+i)), text: []byte("in flight")})
		ids = append(ids, r.CString(smpp.FieldMessageID))
	}
	// Killed right after the last submit_sm_resp arrived: a response reaches the ESME only
	// once its correlation is committed, so there is no write-behind window to wait out.
	p1.cmd.Process.Kill()
	<-p1.exited
	p1.exited <- nil

	p2 := startBinary(t, "serve", "-c", path)
	waitDepth(t, p2, "8") // 5 from disk, 3 correlated from disk when the SMSC delivered them
	rx := bindTRX(t, p2.addr, "bank", "bankpw")
	deadline := time.Now().Add(10 * time.Second)
	for len(rx.receipts()) < 8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // anything extra (a duplicate) would show up now
	got := rx.receipts()
	if len(got) != 8 {
		t.Fatalf("%d receipts after restart, want 8", len(got))
	}
	// The SMSC sends receipts over two binds in its own order, and the queue keeps arrival
	// order; so: the 5 queued before the kill come first, then the 3 correlated after it,
	// each exactly once.
	seen := map[string]int{}
	for i, p := range got {
		v, _ := p.TLV(smpp.TagReceiptedMessageID)
		id := strings.TrimRight(string(v), "\x00")
		seen[id]++
		want := ids[:5]
		if i >= 5 {
			want = ids[5:]
		}
		if !slices.Contains(want, id) {
			t.Fatalf("receipt %d is for %s, want one of %v", i, id, want)
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("message %s got %d receipts", id, seen[id])
		}
	}
	waitDepth(t, p2, "0")
}

func bindTX(t *testing.T, addr string) *esme {
	t.Helper()
	c := bindTRXAs(t, addr, "bank", "bankpw", smpp.BindTransmitter)
	return c
}
