package smpp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// tcpPair returns a session over one end of a loopback TCP connection and the raw other end.
func tcpPair(t *testing.T, cfg Config) (*Session, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	if cfg.EnquireLinkInterval == 0 {
		cfg.EnquireLinkInterval = -1
	}
	s := NewSession(c, SideESME, nil, cfg)
	t.Cleanup(func() { s.Close(); peer.Close() })
	return s, peer
}

// numbered is a frame of n bytes (n >= HeaderLen) with sequence number seq and a body of
// bytes derived from seq, so that a reader can tell frames apart and see any byte misplaced.
func numbered(seq uint32, n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b[0:], uint32(n))
	binary.BigEndian.PutUint32(b[4:], uint32(DeliverSMResp))
	binary.BigEndian.PutUint32(b[12:], seq)
	for i := HeaderLen; i < n; i++ {
		b[i] = byte(seq) ^ byte(i)
	}
	return b
}

// readNumbered reads want frames and checks they are numbered() frames with sequence numbers
// 1..want in order.
func readNumbered(t *testing.T, peer net.Conn, want int) {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := NewFrameReader(bufio.NewReader(peer), 0)
	for i := 1; i <= want; i++ {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		seq := binary.BigEndian.Uint32(f[12:])
		if seq != uint32(i) {
			t.Fatalf("frame %d has sequence number %d: out of order", i, seq)
		}
		for j := HeaderLen; j < len(f); j++ {
			if f[j] != byte(seq)^byte(j) {
				t.Fatalf("frame %d: byte %d is %#x, want %#x", i, j, f[j], byte(seq)^byte(j))
			}
		}
	}
}

// A Tail PDU handed to an idle session is written by the caller's goroutine; a PDU with
// more read behind it goes through the writer. Both arrive.
func TestInlineWriteOfTailPDU(t *testing.T) {
	s, peer := tcpPair(t, Config{})
	cases := []struct {
		name   string
		tail   bool
		inline bool
	}{
		{"tail, idle session", true, true},
		{"more read behind it", false, false},
		{"tail again", true, true},
	}
	fr := NewFrameReader(peer, 0)
	for i, c := range cases {
		p := mustPDU(t, HeaderOnly(DeliverSMResp, StatusOK, uint32(i+1)))
		p.tail = c.tail
		waitWriterIdle(t, s)
		before := s.Counters().InlineWrites
		if err := s.TryWriteResponsePDU(p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := s.Counters().InlineWrites - before; (got == 1) != c.inline {
			t.Errorf("%s: %d inline writes, want inline %v", c.name, got, c.inline)
		}
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if seq := binary.BigEndian.Uint32(f[12:]); seq != uint32(i+1) {
			t.Fatalf("%s: got seq %d", c.name, seq)
		}
	}
	if tx := s.Counters().TxPDUs; tx != uint64(len(cases)) {
		t.Fatalf("TxPDUs %d, want %d (inline writes count too)", tx, len(cases))
	}
}

// waitWriterIdle waits until the writer goroutine has let go of the socket (it holds wmu
// from taking a frame until its flush returned, a little after the peer may have read it).
func waitWriterIdle(t *testing.T, s *Session) {
	t.Helper()
	for range 5000 {
		if s.wmu.TryLock() {
			s.wmu.Unlock()
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("writer still busy after 5 s")
}

// An inline write never overtakes a frame handed to the writer before it: with a frame
// counted as queued, or the writer busy (holding the socket), the Tail PDU is queued behind.
func TestInlineWriteKeepsOrder(t *testing.T) {
	t.Run("queued frame", func(t *testing.T) {
		s, _ := tcpPair(t, Config{})
		s.queued.Add(1) // a frame handed over, not written yet
		if s.writeInline(HeaderOnly(DeliverSMResp, StatusOK, 2)) {
			t.Fatal("written inline ahead of a queued frame")
		}
		s.queued.Add(-1)
		if !s.writeInline(HeaderOnly(DeliverSMResp, StatusOK, 2)) {
			t.Fatal("not written inline with nothing queued")
		}
	})
	t.Run("writer busy", func(t *testing.T) {
		var hold atomic.Bool
		held, rel := make(chan struct{}, 1), make(chan struct{})
		s, peer := tcpPair(t, Config{Trace: func(_ *Session, rx bool, b []byte) {
			if !rx && hold.Load() && binary.BigEndian.Uint32(b[12:]) == 1 {
				held <- struct{}{}
				<-rel
			}
		}})
		hold.Store(true)
		if err := s.write(numbered(1, 64)); err != nil {
			t.Fatal(err)
		}
		<-held // the writer is inside its batch, frame 1 not yet flushed
		p := mustPDU(t, numbered(2, 64))
		p.tail = true
		if err := s.TryWriteResponsePDU(p); err != nil {
			t.Fatal(err)
		}
		if n := s.Counters().InlineWrites; n != 0 {
			t.Fatalf("%d inline writes while the writer held the socket", n)
		}
		close(rel)
		readNumbered(t, peer, 2)
	})
}

// When the socket takes only part of an inline write (the peer reads slowly), the rest is
// the writer's and goes out before anything queued after it: the stream stays whole and in
// order however the frames were split between the two paths.
func TestInlinePartialWriteGoesFirst(t *testing.T) {
	s, peer := tcpPair(t, Config{Window: 1000, PeerWindow: 1000})
	// Small socket buffers, so that they fill quickly. (Far smaller ones stall loopback TCP
	// itself, inline writes or not.)
	s.conn.(*net.TCPConn).SetWriteBuffer(64 * 1024)
	peer.(*net.TCPConn).SetReadBuffer(64 * 1024)
	const n, size = 400, 1500
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			if err := s.tryWrite(numbered(uint32(i), size), true); err != nil {
				t.Errorf("frame %d: %v", i, err)
				return
			}
		}
	}()
	// The peer reads nothing until the socket buffers are full: inline writes stop fitting.
	time.Sleep(50 * time.Millisecond)
	readNumbered(t, peer, n)
	<-done
	c := s.Counters()
	if c.InlineWrites == 0 || c.InlineWrites == n {
		t.Fatalf("%d of %d frames inline: want both paths used", c.InlineWrites, n)
	}
	if c.TxPDUs != n {
		t.Fatalf("TxPDUs %d, want %d", c.TxPDUs, n)
	}
	t.Logf("%d of %d frames written inline", c.InlineWrites, n)
	if q := s.queued.Load(); q != 0 {
		t.Fatalf("queued %d after everything was written", q)
	}
	peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := io.ReadFull(peer, make([]byte, 1)); err == nil {
		t.Fatal("bytes beyond the frames written")
	}
}

// Inline writes need the socket's descriptor: none over TLS or in-memory pipes, or when
// the configuration turns them off.
func TestInlineWritesOnlyOnSockets(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if rawConnOf(a) != nil {
		t.Fatal("net.Pipe has no descriptor")
	}
	s, _ := tcpPair(t, Config{NoInlineWrites: true})
	if s.writeInline(HeaderOnly(DeliverSMResp, StatusOK, 1)) {
		t.Fatal("inline write with NoInlineWrites")
	}
	s2, _ := tcpPair(t, Config{})
	if s2.raw == nil {
		t.Fatal("no inline writes on TCP")
	}
}

// ReadPDU gives each frame, whatever its size, in its own buffer beside a fresh PDU: around
// the sizes that share an allocation with the PDU and beyond them.
func TestReadPDUSizes(t *testing.T) {
	sizes := []int{HeaderLen, 47, 48, 49, 127, 128, 129, 255, 256, 257, 4096}
	var stream []byte
	for i, n := range sizes {
		stream = append(stream, numbered(uint32(i+1), n)...)
	}
	fr := NewFrameReader(bytes.NewReader(stream), 0)
	var prev *PDU
	for i, n := range sizes {
		p, frame, err := fr.ReadPDU()
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if p == nil || p == prev || len(frame) != n || cap(frame) != n {
			t.Fatalf("size %d: PDU %p (previous %p), frame len %d cap %d", n, p, prev, len(frame), cap(frame))
		}
		if err := p.Reset(frame); err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if p.Seq() != uint32(i+1) || p.Len() != n {
			t.Fatalf("size %d: seq %d len %d", n, p.Seq(), p.Len())
		}
		for j := HeaderLen; j < n; j++ {
			if frame[j] != byte(i+1)^byte(j) {
				t.Fatalf("size %d: byte %d wrong", n, j)
			}
		}
		// Appending to a frame never writes into the memory of another.
		_ = append(frame, 0xFF)
		prev = p
	}
	if _, _, err := fr.ReadPDU(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// A frame that went to the spill (the send queue was full) is not overtaken by a later one
// that finds room in the queue: while the spill holds frames, try-writes go behind them.
func TestSpilledFrameNotOvertaken(t *testing.T) {
	var hold atomic.Bool
	held, rel := make(chan struct{}, 1), make(chan struct{})
	s, peer := tcpPair(t, Config{Window: 2, PeerWindow: 2, NoInlineWrites: true, Trace: func(_ *Session, rx bool, b []byte) {
		if !rx && hold.Load() && binary.BigEndian.Uint32(b[12:]) == 1 {
			held <- struct{}{}
			<-rel
		}
	}})
	hold.Store(true)
	if err := s.write(numbered(1, 64)); err != nil {
		t.Fatal(err)
	}
	<-held // the writer is busy with frame 1
	var parked [][]byte
	for i := 0; len(s.out) < cap(s.out); i++ { // the queue fills up behind it
		f := numbered(uint32(100+i), 64)
		if err := s.write(f); err != nil {
			t.Fatal(err)
		}
		parked = append(parked, f)
	}
	if err := s.tryWrite(numbered(2, 64), false); err != nil { // spilled
		t.Fatal(err)
	}
	if s.spillN.Load() != 1 {
		t.Fatalf("spill holds %d frames, want 1", s.spillN.Load())
	}
	// The queue empties (as if the writer had caught up with it), the spill still waiting.
	for range parked {
		<-s.out
		s.queued.Add(-1)
	}
	if err := s.tryWrite(numbered(3, 64), false); err != nil {
		t.Fatal(err)
	}
	close(rel)
	readNumbered(t, peer, 3) // 1, then 2 (spilled first), then 3
}
