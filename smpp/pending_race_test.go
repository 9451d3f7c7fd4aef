package smpp

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// A response with the wrong command for an outstanding request's sequence number leaves
// that request waiting, and never touches another: a request sent while the reader handles
// the wrong response, whose sequence number maps to the same table slot, still gets its
// response. (Taking the request and putting it back freed the slot for a moment: the new
// request got A's slot, was overwritten when A was put back and was never answered, its
// window slot lost.) The reader is held inside its handling of the wrong response by a hook
// on its debug log line; the next sequence number is the one that maps to A's slot, so B
// must skip it.
func TestWrongCommandResponseKeepsOtherRequests(t *testing.T) {
	inGap, release := make(chan struct{}), make(chan struct{})
	var once, releaseOnce sync.Once
	closeRelease := func() { releaseOnce.Do(func() { close(release) }) }
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(discard{}), zapcore.DebugLevel)
	log := zap.New(zapcore.RegisterHooks(core, func(e zapcore.Entry) error {
		if e.Message == "smpp: response matches no request" {
			once.Do(func() { close(inGap); <-release })
		}
		return nil
	}))
	s, peer := tcpPair(t, Config{Window: 4, ResponseTimeout: 2 * time.Second, BindTimeout: time.Hour, Logger: log})
	defer closeRelease() // before tcpPair's cleanup closes the session: a failing test must not leave the reader held
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := NewFrameReader(peer, DefaultMaxPDUSize)
	readSeq := func() uint32 {
		t.Helper()
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		return mustPDU(t, f).Seq()
	}
	answer := func(seq uint32) {
		t.Helper()
		b, err := Response(mustPDU(t, submitSM(t, seq, "x")), StatusOK, "id")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	chA := make(chanHandler, 1)
	if err := s.SendFrame(t.Context(), submitSM(t, 0, "A"), chA, Ref{}); err != nil {
		t.Fatal(err)
	}
	seqA := readSeq()
	slots := uint32(len(s.pending.slots)) // 16 for a window of 4
	// A whole table of other requests, answered, so that the next sequence number maps to A's slot.
	for range slots - 1 {
		ch := make(chanHandler, 1)
		if err := s.SendFrame(t.Context(), submitSM(t, 0, "x"), ch, Ref{}); err != nil {
			t.Fatal(err)
		}
		answer(readSeq())
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}
	if _, err := peer.Write(HeaderOnly(DeliverSMResp, StatusOK, seqA)); err != nil { // the wrong command for A
		t.Fatal(err)
	}
	select {
	case <-inGap:
	case <-time.After(5 * time.Second):
		t.Fatal("the wrong response was not handled")
	}
	chB := make(chanHandler, 1)
	if err := s.SendFrame(t.Context(), submitSM(t, 0, "B"), chB, Ref{}); err != nil {
		t.Fatal(err)
	}
	seqB := readSeq()
	if seqB%slots == seqA%slots {
		t.Fatalf("B got sequence number %d, in the slot of A (%d), which is still waiting", seqB, seqA)
	}
	closeRelease()
	answer(seqB)
	answer(seqA)
	for name, ch := range map[string]chanHandler{"A": chA, "B": chB} {
		select {
		case r := <-ch:
			if r.err != nil || r.p.Status() != StatusOK {
				t.Fatalf("%s: %v %v", name, r.err, r.p)
			}
		case <-time.After(5 * time.Second):
			ours, _ := s.InFlight()
			t.Fatalf("%s got no response; window in use %d, unmatched %d", name, ours, s.Counters().UnmatchedResponses)
		}
	}
	if ours, _ := s.InFlight(); ours != 0 {
		t.Fatalf("%d window slots held after every request was answered", ours)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
