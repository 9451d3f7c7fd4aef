package loadgen

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/smppguard/smppguard/smpp"
)

// frameReader reads SMPP frames without allocating. smpp.FrameReader.ReadFrame returns a
// newly allocated slice per frame, which is right for a relay that keeps frames but is one
// allocation per response here; this reader returns the frame as a view of its bufio buffer
// (valid until the next call), and falls back to one reused buffer for a frame larger than
// the bufio buffer. The bounds checks are smpp.FrameReader's.
type frameReader struct {
	br   *bufio.Reader
	max  int
	skip int // bytes of the previous frame still to discard
	big  []byte
}

func newFrameReader(r io.Reader, bufSize, maxSize int) frameReader {
	if maxSize <= 0 {
		maxSize = smpp.DefaultMaxPDUSize
	}
	return frameReader{br: bufio.NewReaderSize(r, bufSize), max: maxSize}
}

// next returns the next frame, borrowed until the next call.
func (r *frameReader) next() ([]byte, error) {
	if r.skip > 0 {
		if _, err := r.br.Discard(r.skip); err != nil {
			return nil, err
		}
		r.skip = 0
	}
	h, err := r.br.Peek(smpp.HeaderLen)
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(h) == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("reading header: %w", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(h)
	if n < smpp.HeaderLen || uint64(n) > uint64(r.max) {
		return nil, &smpp.FrameError{Length: n, Max: r.max, Seq: binary.BigEndian.Uint32(h[12:16])}
	}
	if int(n) <= r.br.Size() {
		f, err := r.br.Peek(int(n))
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading %d-byte frame: %w", n, err)
		}
		r.skip = int(n)
		return f[:n:n], nil
	}
	if cap(r.big) < int(n) {
		r.big = make([]byte, n)
	}
	f := r.big[:n:n]
	if _, err := io.ReadFull(r.br, f); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading %d-byte frame: %w", n, err)
	}
	return f, nil
}

// buffered reports how many bytes of further frames are already buffered.
func (r *frameReader) buffered() int { return r.br.Buffered() - r.skip }

// submitTemplate is the submit_sm every send of a run copies: built once, then patched per
// send in place (sequence number and, for a Dest ending in "*", the counter digits).
type submitTemplate struct {
	frame     []byte
	destOff   int // offset of the counter digits in frame
	destWidth int // number of counter digits, 0 for none
	mod       int64
}

// minCounterWidth is the least number of digits of the per-message destination counter.
const minCounterWidth = 7

func buildSubmit(cfg *Config) (submitTemplate, error) {
	if len(cfg.Template) > 0 {
		p, err := smpp.Parse(bytes.Clone(cfg.Template))
		if err != nil {
			return submitTemplate{}, fmt.Errorf("loadgen: Template: %w", err)
		}
		if p.ID() != smpp.SubmitSM {
			return submitTemplate{}, fmt.Errorf("loadgen: Template is a %s, not a submit_sm", p.ID())
		}
		return submitTemplate{frame: p.Bytes(), mod: 1}, nil
	}
	dest, width := cfg.Dest, 0
	var mod int64 = 1
	if prefix, ok := strings.CutSuffix(dest, "*"); ok {
		width = minCounterWidth
		for n := int64(cfg.Count); n >= 1e7 && width < 19; n /= 10 {
			width++
		}
		if len(prefix)+width > 20 {
			return submitTemplate{}, fmt.Errorf("loadgen: Dest %q: prefix plus a %d-digit counter exceeds destination_addr's 20 characters", cfg.Dest, width)
		}
		for range width {
			mod *= 10
		}
		dest = prefix + strings.Repeat("0", width)
	}
	text := []byte(cfg.Text)
	if cfg.DataCoding == 0x08 { // UCS-2: the text is UTF-8 here, UTF-16BE on the wire
		text = appendUCS2(nil, cfg.Text)
	}
	frame, err := encodeSubmit(cfg, dest, 0, cfg.DataCoding, text)
	if err != nil {
		return submitTemplate{}, fmt.Errorf("loadgen: building submit_sm: %w", err)
	}
	t := submitTemplate{frame: frame, destWidth: width, mod: mod}
	if width > 0 {
		p, err := smpp.Parse(frame)
		if err != nil {
			return submitTemplate{}, fmt.Errorf("loadgen: built submit_sm does not parse: %w", err)
		}
		off, _ := p.FieldOffset(smpp.FieldDestinationAddr)
		t.destOff = off + len(dest) - width
	}
	return t, nil
}

// encodeSubmit encodes a submit_sm from cfg.Source to dest (international, E.164) with
// cfg.RegisteredDelivery and the given esm_class, data_coding and message: in short_message
// up to 254 octets, else in message_payload.
func encodeSubmit(cfg *Config, dest string, esm, dataCoding byte, text []byte) ([]byte, error) {
	srcTON, srcNPI := byte(1), byte(1) // international, E.164
	for _, c := range []byte(cfg.Source) {
		if (c < '0' || c > '9') && c != '+' {
			srcTON, srcNPI = 5, 0 // alphanumeric
			break
		}
	}
	b := smpp.NewBuilder(smpp.SubmitSM, smpp.StatusOK, 1).
		CString(""). // service_type
		Int(srcTON).Int(srcNPI).CString(cfg.Source).
		Int(1).Int(1).CString(dest).        // dest_addr_ton, dest_addr_npi, destination_addr
		Int(esm).Int(0).Int(0).             // esm_class, protocol_id, priority_flag
		CString("").CString("").            // schedule_delivery_time, validity_period
		Int(cfg.RegisteredDelivery).Int(0). // registered_delivery, replace_if_present_flag
		Int(dataCoding).Int(0)              // data_coding, sm_default_msg_id
	if len(text) <= 254 {
		b.ShortMessage(text)
	} else {
		b.ShortMessage(nil).TLV(smpp.TagMessagePayload, text)
	}
	return b.Bytes()
}

// putCounter writes n modulo 10^width as width zero-padded decimal digits into b.
func putCounter(b []byte, n int64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
}

// receiptID returns the message id a delivery receipt refers to: the receipted_message_id
// TLV (without its NUL), else the "id:" token of the SMSC's receipt text. Borrowed from p.
func receiptID(p *smpp.PDU) []byte {
	if v, ok := p.TLV(smpp.TagReceiptedMessageID); ok {
		if i := bytes.IndexByte(v, 0); i >= 0 {
			v = v[:i]
		}
		if len(v) > 0 {
			return v
		}
	}
	sm := p.ShortMessage()
	if len(sm) == 0 {
		if v, ok := p.TLV(smpp.TagMessagePayload); ok {
			sm = v
		}
	}
	for off := 0; ; {
		i := bytes.Index(sm[off:], []byte("id:"))
		if i < 0 {
			return nil
		}
		i += off
		if i == 0 || sm[i-1] == ' ' { // "id:" itself, not "...sid:" or the like
			v := sm[i+3:]
			if j := bytes.IndexByte(v, ' '); j >= 0 {
				v = v[:j]
			}
			return v
		}
		off = i + 3
	}
}
