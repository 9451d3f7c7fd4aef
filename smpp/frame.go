package smpp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// FrameError is a frame whose command_length is out of bounds. The stream cannot be trusted
// after it: answer generic_nack ESME_RINVCMDLEN (Seq is the frame's sequence number, when
// its header could be read) and close the connection. To report Seq the reader waits for the
// rest of the 16-byte header; a peer that sends a bad length and then nothing is cut off by
// the session's bind or inactivity timer.
type FrameError struct {
	Length uint32
	Max    int
	Seq    uint32
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("smpp: command_length %d outside [%d, %d] (ESME_RINVCMDLEN)", e.Length, HeaderLen, e.Max)
}

// Unwrap returns StatusInvCmdLen.
func (e *FrameError) Unwrap() error { return StatusInvCmdLen }

// FrameReader reads length-prefixed SMPP frames from a stream.
type FrameReader struct {
	br  *bufio.Reader
	max int
}

// NewFrameReader returns a reader that refuses frames longer than maxSize bytes
// (header included; <= 0 means DefaultMaxPDUSize).
func NewFrameReader(r io.Reader, maxSize int) *FrameReader {
	if maxSize <= 0 {
		maxSize = DefaultMaxPDUSize
	}
	return &FrameReader{br: bufio.NewReaderSize(r, 8*1024), max: maxSize}
}

// ReadFrame returns the next frame in a newly allocated slice that the caller owns.
// Memory is bounded by the maximum size whatever command_length claims: the length is
// checked before anything is allocated.
func (r *FrameReader) ReadFrame() ([]byte, error) {
	_, frame, err := r.read(false)
	return frame, err
}

// ReadPDU is ReadFrame for a frame to be parsed: it also returns a new, empty PDU for it,
// allocated together with the frame when the frame is small (what most PDUs are), so that
// reading and parsing a PDU costs one allocation. Index it with p.Reset(frame).
func (r *FrameReader) ReadPDU() (p *PDU, frame []byte, err error) {
	return r.read(true)
}

// A PDU and room for its frame in one allocation (ReadPDU). The sizes fit responses,
// typical submit_sm/deliver_sm and long ones; larger frames get their own slice.
type (
	pduFrame48 struct {
		p PDU
		b [48]byte
	}
	pduFrame128 struct {
		p PDU
		b [128]byte
	}
	pduFrame256 struct {
		p PDU
		b [256]byte
	}
)

// newPDUFrame returns a PDU and an n-byte frame buffer, in one allocation when n is small.
func newPDUFrame(n int) (*PDU, []byte) {
	switch {
	case n <= 48:
		x := new(pduFrame48)
		return &x.p, x.b[:n:n]
	case n <= 128:
		x := new(pduFrame128)
		return &x.p, x.b[:n:n]
	case n <= 256:
		x := new(pduFrame256)
		return &x.p, x.b[:n:n]
	}
	return new(PDU), make([]byte, n)
}

func (r *FrameReader) read(withPDU bool) (*PDU, []byte, error) {
	hdr, err := r.br.Peek(4)
	if err != nil {
		if len(hdr) == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			return nil, nil, io.EOF // clean end of stream between frames
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the stream ended inside command_length
		}
		return nil, nil, fmt.Errorf("smpp: reading frame length: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr)
	if n < HeaderLen || uint64(n) > uint64(r.max) {
		fe := &FrameError{Length: n, Max: r.max}
		if h, err := r.br.Peek(HeaderLen); err == nil {
			fe.Seq = binary.BigEndian.Uint32(h[12:16])
		}
		return nil, nil, fe
	}
	var (
		p     *PDU
		frame []byte
	)
	if withPDU {
		p, frame = newPDUFrame(int(n))
	} else {
		frame = make([]byte, n)
	}
	if _, err := io.ReadFull(r.br, frame); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, fmt.Errorf("smpp: reading %d-byte frame: %w", n, err)
	}
	return p, frame, nil
}

// Buffered returns the number of bytes already read from the stream but not yet returned.
func (r *FrameReader) Buffered() int { return r.br.Buffered() }
