package fakesmsc

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/smppguard/smppguard/smpp"
)

// rec is what the reader stores per PDU: the rest of a Record is derived when asked.
type rec struct {
	t     time.Time
	conn  uint64
	sid   string
	frame []byte
	hex   string // filled lazily by Records
}

func (r *rec) record() Record {
	if r.hex == "" {
		r.hex = hex.EncodeToString(r.frame)
	}
	out := Record{Time: r.t, Conn: r.conn, SystemID: r.sid, Hex: r.hex, Bytes: r.frame}
	if h, err := smpp.ParseHeader(r.frame); err == nil {
		out.Command, out.Seq, out.Status = h.ID.String(), h.Seq, uint32(h.Status)
	}
	return out
}

type recorder struct {
	memory bool
	limit  int

	mu      sync.Mutex
	buf     []rec // ring once len == limit
	start   int   // oldest when full
	changed chan struct{}
	waiters atomic.Int32

	file    *os.File
	fileCh  chan rec
	fileErr error
	done    chan struct{}
}

func (s *Server) initRecorder() error {
	r := &s.rec
	r.memory = !s.cfg.NoRecord
	r.limit = s.cfg.RecordLimit
	r.changed = make(chan struct{})
	if s.cfg.RecordPath == "" {
		return nil
	}
	f, err := os.OpenFile(s.cfg.RecordPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("fakesmsc: record file: %w", err)
	}
	r.file = f
	r.fileCh = make(chan rec, 8192)
	r.done = make(chan struct{})
	go r.writeFile(s.log)
	return nil
}

func (r *recorder) add(x rec) {
	if r.memory {
		r.mu.Lock()
		if len(r.buf) < r.limit {
			r.buf = append(r.buf, x)
		} else {
			r.buf[r.start] = x
			r.start++
			if r.start == len(r.buf) {
				r.start = 0
			}
		}
		if r.waiters.Load() > 0 {
			close(r.changed)
			r.changed = make(chan struct{})
		}
		r.mu.Unlock()
	}
	if r.fileCh != nil {
		r.fileCh <- x // blocking: the file loses nothing; the writer goroutine keeps up or slows the reader
	}
}

// writeFile appends JSON lines, flushing whenever it has caught up.
func (r *recorder) writeFile(log *zap.Logger) {
	defer close(r.done)
	w := bufio.NewWriterSize(r.file, 64<<10)
	enc := json.NewEncoder(w)
	for x := range r.fileCh {
		for {
			if err := enc.Encode(x.record()); err != nil && r.fileErr == nil {
				r.fileErr = err
				log.Error("fakesmsc: writing record file", zap.Error(err))
			}
			select {
			case y, ok := <-r.fileCh:
				if ok {
					x = y
					continue
				}
			default:
			}
			break
		}
		if err := w.Flush(); err != nil && r.fileErr == nil {
			r.fileErr = err
			log.Error("fakesmsc: writing record file", zap.Error(err))
		}
	}
	if err := w.Flush(); err != nil && r.fileErr == nil {
		r.fileErr = err
	}
}

// close stops the file writer after everything recorded so far is written. Called once no
// reader can add any more.
func (r *recorder) close() error {
	if r.file == nil {
		return nil
	}
	close(r.fileCh)
	<-r.done
	err := r.file.Close()
	if r.fileErr != nil {
		return r.fileErr
	}
	return err
}

func (r *recorder) snapshot() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Record, 0, len(r.buf))
	for i := range r.buf {
		j := r.start + i
		if j >= len(r.buf) {
			j -= len(r.buf)
		}
		out = append(out, r.buf[j].record())
	}
	return out
}

// Records returns a copy of the received PDUs kept in memory, in arrival order (per
// connection; across connections in the order their readers stored them). Bytes is shared
// with the server and must not be modified.
func (s *Server) Records() []Record { return s.rec.snapshot() }

// WaitRecords calls pred with the records whenever they change until it returns true (nil)
// or ctx is done (ctx.Err()) or the server is closed (ErrClosed, after a last look).
func (s *Server) WaitRecords(ctx context.Context, pred func([]Record) bool) error {
	r := &s.rec
	r.waiters.Add(1)
	defer r.waiters.Add(-1)
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if pred(s.Records()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stop:
			if pred(s.Records()) {
				return nil
			}
			return ErrClosed
		}
	}
}

// frameSeq reads a frame's sequence number.
func frameSeq(b []byte) uint32 { return binary.BigEndian.Uint32(b[12:16]) }
