package relay

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/smppguard/smppguard/smpp"
	"github.com/smppguard/smppguard/testharness/fakesmsc"
)

// compareLog counts the bcrypt compares a relay makes, and the hashes they were made against.
type compareLog struct {
	mu     sync.Mutex
	hashes [][]byte
}

func (c *compareLog) compare(hash, pw []byte) error {
	c.mu.Lock()
	c.hashes = append(c.hashes, bytes.Clone(hash))
	c.mu.Unlock()
	return bcrypt.CompareHashAndPassword(hash, pw)
}

func (c *compareLog) calls() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.hashes...)
}

func bindStatus(t *testing.T, addr, sysID, pw string) smpp.Status {
	t.Helper()
	_, _, err := bindESME(t, addr, smpp.BindTransceiver, sysID, pw)
	if err == nil {
		return smpp.StatusOK
	}
	var be *smpp.BindError
	if !errors.As(err, &be) {
		t.Fatalf("bind %s: %v, want a bind_resp", sysID, err)
	}
	return be.Status
}

// An unknown system_id costs one bcrypt compare, like a known bcrypt account's wrong
// password, against a dummy hash of the accounts' cost: response time does not tell which
// system_ids exist. Counted through the injected compare, not by timing.
func TestUnknownSystemIDCostsABcryptCompare(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	log := &compareLog{}
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) {
		c.Accounts[0].Password = string(hash)
		c.bcryptCompare = log.compare
	})
	if st := bindStatus(t, e.addr, "bank", "wrong"); st != smpp.StatusInvPaswd {
		t.Fatalf("wrong password: %s", st)
	}
	if n := len(log.calls()); n != 1 {
		t.Fatalf("wrong password of a bcrypt account: %d compares, want 1", n)
	}
	if st := bindStatus(t, e.addr, "nobody", "wrong"); st != smpp.StatusInvPaswd {
		t.Fatalf("unknown system_id: %s, want ESME_RINVPASWD like a wrong password", st)
	}
	if st := bindStatus(t, e.addr, "nobody2", "pw"); st != smpp.StatusInvPaswd {
		t.Fatalf("unknown system_id with the account's password: %s, want ESME_RINVPASWD", st)
	}
	calls := log.calls()
	if len(calls) != 3 {
		t.Fatalf("after two unknown system_ids: %d compares, want 3 (one each)", len(calls))
	}
	dummy := calls[1]
	if bytes.Equal(dummy, hash) {
		t.Fatal("an unknown system_id was compared against a real account's hash")
	}
	if !bytes.Equal(calls[2], dummy) {
		t.Error("the dummy hash was made again for the second unknown system_id (want once per relay)")
	}
	if c, err := bcrypt.Cost(dummy); err != nil || c != bcrypt.MinCost {
		t.Errorf("dummy hash cost %d (%v), want the account's %d", c, err, bcrypt.MinCost)
	}
	if st := bindStatus(t, e.addr, "bank", "pw"); st != smpp.StatusOK {
		t.Fatalf("right password: %s", st)
	}
	s := e.relay.Stats()
	if s.RefusedBy[RefusedUnknownSystemID] != 2 || s.RefusedBy[RefusedBadCredentials] != 1 {
		t.Errorf("refused by reason %v, want 2 unknown_system_id and 1 bad_credentials", s.RefusedBy)
	}
}

// Without bcrypt accounts no bind costs a compare, an unknown system_id neither.
func TestUnknownSystemIDWithoutBcryptAccounts(t *testing.T) {
	log := &compareLog{}
	e := newEnv(t, fakesmsc.Config{}, func(c *Config) { c.bcryptCompare = log.compare })
	for _, id := range []string{"nobody", "bank"} {
		if st := bindStatus(t, e.addr, id, "wrong"); st != smpp.StatusInvPaswd {
			t.Fatalf("%s: %s", id, st)
		}
	}
	if n := len(log.calls()); n != 0 {
		t.Fatalf("%d bcrypt compares without a bcrypt account, want 0", n)
	}
}

// The dummy hash follows the accounts in force: the cost most accounts use (the higher on
// a tie), made once per cost, recomputed when a reload changes the snapshot, none without
// bcrypt accounts.
func TestDummyHashFollowsAccounts(t *testing.T) {
	made := map[int]int{}
	a := newAuth(nil)
	a.generate = func(pw []byte, cost int) ([]byte, error) {
		made[cost]++
		return bcrypt.GenerateFromPassword(pw, cost)
	}
	h := func(cost int) string {
		b, err := bcrypt.GenerateFromPassword([]byte("x"), cost)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	h4, h5 := h(4), h(5)
	snap := func(pws ...string) *snapshot {
		s := &snapshot{accounts: map[string]*Account{}}
		for i, pw := range pws {
			id := string(rune('a' + i))
			s.accounts[id] = &Account{SystemID: id, Password: pw}
		}
		return s
	}
	cost := func(s *snapshot) int {
		d := a.dummyFor(s)
		if d == nil {
			return 0
		}
		c, err := bcrypt.Cost(d)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		s    *snapshot
		want int
	}{
		{"plain only", snap("plain", ""), 0},
		{"one cost", snap(h4, "plain"), 4},
		{"most common", snap(h4, h4, h5), 4},
		{"tie: higher", snap(h4, h5), 5},
		{"again cost 4", snap(h4), 4},
	} {
		if got := cost(tc.s); got != tc.want {
			t.Errorf("%s: dummy cost %d, want %d", tc.name, got, tc.want)
		}
	}
	if made[4] != 1 || made[5] != 1 || len(made) != 2 {
		t.Errorf("hashes made per cost %v, want one each of 4 and 5", made)
	}
	s := snap(h4)
	d1 := a.dummyFor(s)
	if d2 := a.dummyFor(s); &d1[0] != &d2[0] {
		t.Error("same snapshot: dummy recomputed")
	}
	if a.passwordOK(string(d1), []byte("x")) {
		t.Error("the dummy hash matched a password")
	}
}
