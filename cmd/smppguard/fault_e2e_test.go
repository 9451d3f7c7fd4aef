package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// faultE2EBind binds as sysID/pw to addr from the local address from (nil: any) and
// returns the bind_transceiver_resp status.
func faultE2EBind(t *testing.T, addr string, from net.IP, sysID, pw string) smpp.Status {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != nil {
		d.LocalAddr = &net.TCPAddr{IP: from}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %v: %v", addr, from, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	frame, err := smpp.BindParams{SystemID: sysID, Password: pw}.Encode(smpp.BindTransceiver, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("bind %s from %v: no bind_resp: %v", sysID, from, err)
	}
	h, err := smpp.ParseHeader(hdr)
	if err != nil || h.ID != smpp.BindTransceiverResp {
		t.Fatalf("bind %s from %v: got %v (%v), want bind_transceiver_resp", sysID, from, h, err)
	}
	return h.Status
}

func faultE2ELockoutConfig(t *testing.T, smscAddr string) string {
	t.Helper()
	cfg := fmt.Sprintf(`listen:
  smpp: 127.0.0.1:0
  lockout: {failures: 5, window: 1m, duration: 1m}
session:
  response_timeout: 5s
upstreams:
  - name: carrier
    address: %s
    system_id: proxy
    password: secret
    binds: 1
    reconnect_min: 50ms
    reconnect_max: 500ms
routes:
  - name: default
    upstream: carrier
accounts:
  - system_id: victim
    password: victimpw
    route: default
  - system_id: other
    password: otherpw
    route: default
admin:
  listen: 127.0.0.1:0
log:
  level: warn
`, smscAddr)
	path := filepath.Join(t.TempDir(), "smppguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Five wrong passwords for one account from 127.0.0.1 lock out (a) the address — even the
// right password, and another account, are refused from it — while (b) another account
// still binds from another address (127.0.0.2) and (c) the attacked system_id stays locked
// from that other address too.
func TestE2EBruteForceLockout(t *testing.T) {
	smsc := startSMSC(t, fakesmsc.Config{})
	p := startBinary(t, "serve", "-c", faultE2ELockoutConfig(t, smsc.Addr()))
	attacker, other := net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2")
	if c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: other}, Timeout: 2 * time.Second}).Dial("tcp", p.addr); err != nil {
		t.Skipf("cannot connect from %s on this host: %v", other, err)
	} else {
		c.Close()
	}

	// Before any failure, both accounts bind from the attacker's address.
	if st := faultE2EBind(t, p.addr, attacker, "other", "otherpw"); st != smpp.StatusOK {
		t.Fatalf("other from %s before the attack: %s", attacker, st)
	}
	for i := range 5 {
		if st := faultE2EBind(t, p.addr, attacker, "victim", fmt.Sprintf("guess%d", i)); st != smpp.StatusInvPaswd {
			t.Fatalf("wrong password #%d: %s, want ESME_RINVPASWD", i+1, st)
		}
	}
	// (a) The 6th bind, with the right password, is refused; so is another account from
	// the same address.
	if st := faultE2EBind(t, p.addr, attacker, "victim", "victimpw"); st != smpp.StatusBindFail {
		t.Fatalf("(a) right password after 5 failures: %s, want ESME_RBINDFAIL", st)
	}
	if st := faultE2EBind(t, p.addr, attacker, "other", "otherpw"); st != smpp.StatusBindFail {
		t.Fatalf("(a) other account from the locked address: %s, want ESME_RBINDFAIL", st)
	}
	// (b) Another account from another address is unaffected.
	if st := faultE2EBind(t, p.addr, other, "other", "otherpw"); st != smpp.StatusOK {
		t.Fatalf("(b) other account from %s: %s, want ESME_ROK", other, st)
	}
	// (c) The attacked system_id is locked from every address.
	if st := faultE2EBind(t, p.addr, other, "victim", "victimpw"); st != smpp.StatusBindFail {
		t.Fatalf("(c) attacked account from %s: %s, want ESME_RBINDFAIL", other, st)
	}
	t.Logf("5 failed binds from %s: address locked (right password and other account refused); %s binds other, victim refused (system_id locked)", attacker, other)
}
