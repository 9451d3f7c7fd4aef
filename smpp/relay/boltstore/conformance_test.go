package boltstore_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/smppguard/smppguard/smpp/relay"
	"github.com/smppguard/smppguard/smpp/relay/boltstore"
)

// op is one step of the conformance table. Items are named by their frame: ids are learnt
// from Peek, since MemStore numbers items globally and boltstore per account.
type op struct {
	do    string // enq, peek, rm (the item peeked with this frame), rmhead, rmbogus, len, expired, sleep
	acc   string
	frame string
	d     time.Duration
	want  string
}

// confLimits: "a" bound 3; "b" bound 2; "ttl" expires after 1ms (real clock: MemStore's
// clock cannot be injected from outside its package, so the table only peeks at it after
// sleeping well past the TTL); "ttl-long" expires after an hour; "zero" refuses everything.
func confLimits(acc string) (int, time.Duration) {
	switch acc {
	case "a":
		return 3, 0
	case "b":
		return 2, 0
	case "ttl":
		return 10, time.Millisecond
	case "ttl-long":
		return 10, time.Hour
	case "zero":
		return 0, 0
	}
	return 100, 0
}

var confOps = []op{
	{do: "peek", acc: "a", want: "none"},
	{do: "len", acc: "a", want: "0"},
	{do: "enq", acc: "a", frame: "a1", want: "ok"},
	{do: "enq", acc: "a", frame: "a2", want: "ok"},
	{do: "enq", acc: "b", frame: "b1", want: "ok"},
	{do: "enq", acc: "a", frame: "a3", want: "ok"},
	{do: "enq", acc: "a", frame: "a4", want: "full"},
	{do: "enq", acc: "zero", frame: "z", want: "full"},
	{do: "len", acc: "a", want: "3"},
	{do: "len", acc: "b", want: "1"},
	{do: "len", acc: "zero", want: "0"},
	{do: "peek", acc: "a", want: "a1"},
	{do: "peek", acc: "a", want: "a1"},
	{do: "rmbogus", acc: "a"},
	{do: "len", acc: "a", want: "3"},
	{do: "rm", acc: "b", frame: "a1"}, // right id, wrong account
	{do: "len", acc: "a", want: "3"},
	{do: "rm", acc: "a", frame: "a1"},
	{do: "rm", acc: "a", frame: "a1"}, // twice
	{do: "len", acc: "a", want: "2"},
	{do: "enq", acc: "a", frame: "a4", want: "ok"},
	{do: "enq", acc: "a", frame: "a5", want: "full"},
	{do: "peek", acc: "a", want: "a2"},
	{do: "peek", acc: "b", want: "b1"},
	{do: "enq", acc: "b", frame: "b2", want: "ok"},
	{do: "enq", acc: "b", frame: "b3", want: "full"},
	{do: "rmhead", acc: "b", want: "b1"},
	{do: "enq", acc: "b", frame: "b3", want: "ok"},
	{do: "enq", acc: "ttl", frame: "t1", want: "ok"},
	{do: "enq", acc: "ttl", frame: "t2", want: "ok"},
	{do: "len", acc: "ttl", want: "2"}, // Len does not expire
	{do: "sleep", d: 20 * time.Millisecond},
	{do: "len", acc: "ttl", want: "2"},
	{do: "expired", want: "0"},
	{do: "peek", acc: "ttl", want: "none"},
	{do: "expired", want: "2"},
	{do: "len", acc: "ttl", want: "0"},
	{do: "enq", acc: "ttl-long", frame: "t3", want: "ok"},
	{do: "rmhead", acc: "ttl-long", want: "t3"},
	{do: "rmhead", acc: "a", want: "a2"},
	{do: "rmhead", acc: "a", want: "a3"},
	{do: "rmhead", acc: "a", want: "a4"},
	{do: "rmhead", acc: "a", want: "none"},
	{do: "rmhead", acc: "b", want: "b2"},
	{do: "rmhead", acc: "b", want: "b3"},
	{do: "len", acc: "a", want: "0"},
	{do: "len", acc: "b", want: "0"},
	{do: "expired", want: "2"},
}

type confStore interface {
	relay.Store
	Expired() uint64
}

// runConf applies ops to s and returns each op's answer; ids maps frames to the ids Peek
// returned for them.
func runConf(t *testing.T, s confStore, ops []op, ids map[string]uint64) []string {
	t.Helper()
	out := make([]string, len(ops))
	for i, o := range ops {
		var got string
		switch o.do {
		case "enq":
			err := s.Enqueue(o.acc, []byte(o.frame))
			switch {
			case err == nil:
				got = "ok"
			case errors.Is(err, relay.ErrQueueFull):
				got = "full"
			default:
				got = "error: " + err.Error()
			}
		case "peek", "rmhead":
			it, ok := s.Peek(o.acc)
			if !ok {
				got = "none"
				break
			}
			got = string(it.Frame)
			ids[got] = it.ID
			if o.do == "rmhead" {
				s.Remove(o.acc, it.ID)
			}
		case "rm":
			id, ok := ids[o.frame]
			if !ok {
				t.Fatalf("op %d: %q was never peeked", i, o.frame)
			}
			s.Remove(o.acc, id)
		case "rmbogus":
			s.Remove(o.acc, 1<<62)
		case "len":
			got = strconv.Itoa(s.Len(o.acc))
		case "expired":
			got = strconv.FormatUint(s.Expired(), 10)
		case "sleep":
			time.Sleep(o.d)
		default:
			t.Fatalf("op %d: unknown %q", i, o.do)
		}
		out[i] = got
	}
	return out
}

func TestConformance(t *testing.T) {
	mem := relay.NewMemStore(confLimits)
	bolt, _ := tempStore(t, boltstore.Options{Limits: confLimits})
	gotMem := runConf(t, mem, confOps, map[string]uint64{})
	gotBolt := runConf(t, bolt, confOps, map[string]uint64{})
	for i, o := range confOps {
		desc := fmt.Sprintf("op %d %s(%s,%s)", i, o.do, o.acc, o.frame)
		if gotMem[i] != gotBolt[i] {
			t.Errorf("%s: MemStore %q, boltstore %q", desc, gotMem[i], gotBolt[i])
		}
		if gotMem[i] != o.want {
			t.Errorf("%s: MemStore %q, table wants %q", desc, gotMem[i], o.want)
		}
	}
}

// TestConformanceReopen runs the table against a boltstore that is closed and reopened
// after every step: durability must not change any answer. Expired counts since Open and
// the 1ms-TTL steps depend on timing, so both are left out.
func TestConformanceReopen(t *testing.T) {
	var ops []op
	for _, o := range confOps {
		if o.acc == "ttl" || o.do == "expired" || o.do == "sleep" {
			continue
		}
		ops = append(ops, o)
	}
	want := runConf(t, relay.NewMemStore(confLimits), ops, map[string]uint64{})

	path := filepath.Join(t.TempDir(), "q.db")
	opts := boltstore.Options{Limits: confLimits}
	ids := map[string]uint64{}
	for i, o := range ops {
		s, err := boltstore.Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		got := runConf(t, s, []op{o}, ids)[0]
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got != want[i] {
			t.Errorf("op %d %s(%s,%s): MemStore %q, reopened boltstore %q", i, o.do, o.acc, o.frame, want[i], got)
		}
	}
}
