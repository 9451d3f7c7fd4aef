package interceptor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// AuditRecord is the one structured record every OTP decision produces.
type AuditRecord struct {
	Time          time.Time       `json:"time"`
	Account       string          `json:"account"`
	Destination   string          `json:"destination"` // masked
	Source        string          `json:"source"`
	Command       string          `json:"command"`
	Rule          string          `json:"rule"`
	Parts         int             `json:"parts,omitempty"`
	Signals       []SignalOutcome `json:"signals"`
	Action        Action          `json:"action"`
	Status        string          `json:"status,omitempty"`
	Route         string          `json:"route,omitempty"`
	Reason        string          `json:"reason"`
	Shadow        bool            `json:"shadow,omitempty"`
	CorrelationID string          `json:"correlation_id"`
	DecisionTime  time.Duration   `json:"decision_ns"`
}

// AuditSink receives audit records. Record must not block for long, and must not keep
// r.Signals after it returns (copy it): it may be the message's own storage, reused for the
// next message.
type AuditSink interface {
	Record(AuditRecord)
}

// AuditFunc adapts a function to AuditSink.
type AuditFunc func(AuditRecord)

// Record calls f.
func (f AuditFunc) Record(r AuditRecord) { f(r) }

// auditRecord is m's record; masked is its destination as Mask hides it.
func (ic *Interceptor) auditRecord(m *Message, masked string, now time.Time) AuditRecord {
	r := AuditRecord{
		Time: now.UTC(), Account: m.Account, Destination: masked, Source: m.Source,
		Command: ic.commandName(m.Command), Rule: m.Rule, Signals: m.Signals, Action: m.Decision.Action, Route: m.Decision.Route,
		Reason: m.Decision.Reason, Shadow: m.Decision.Shadow, CorrelationID: m.CorrelationID,
	}
	if !m.Received.IsZero() {
		r.DecisionTime = now.Sub(m.Received)
	}
	if m.Part != nil {
		r.Parts = m.Part.Total
	}
	if m.Decision.Action == ActionReject {
		r.Status = m.Decision.Status.String()
	}
	return r
}

// auditFlushDelay is the longest a record stays in the buffer: the first record written
// after a flush arms a timer that flushes this much later.
const auditFlushDelay = time.Second

// JSONLines writes audit records as JSON lines to a writer, buffered. The buffer is written
// out every 64 records, above 48 KiB, at most auditFlushDelay (1 s) after the first record it
// holds (a timer armed by that record, so an idle file costs nothing), and by Flush and Close.
// Safe for concurrent use.
type JSONLines struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	c      io.Closer
	n      int
	delay  time.Duration
	timer  *time.Timer // created by the first record; armed while records wait in bw
	armed  bool
	closed bool
}

// NewJSONLines writes to w (closed by Close when it is an io.Closer).
func NewJSONLines(w io.Writer) *JSONLines {
	j := &JSONLines{bw: bufio.NewWriterSize(w, 64*1024), delay: auditFlushDelay}
	if c, ok := w.(io.Closer); ok {
		j.c = c
	}
	return j
}

// OpenRotatingAudit appends JSON lines to path (created 0600), rotating it when it reaches
// maxSizeMB and keeping maxFiles old files (gopkg.in/natefinch/lumberjack.v2).
func OpenRotatingAudit(path string, maxSizeMB, maxFiles int) (*JSONLines, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	f.Close()
	return NewJSONLines(&lumberjack.Logger{Filename: path, MaxSize: maxSizeMB, MaxBackups: maxFiles}), nil
}

// OpenAuditFile appends JSON lines to path (created 0600).
func OpenAuditFile(path string) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit file: %w", err)
	}
	return NewJSONLines(f), nil
}

// Record implements AuditSink. Records after Close are dropped.
func (j *JSONLines) Record(r AuditRecord) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return
	}
	j.bw.Write(append(b, '\n'))
	if j.n++; j.n%64 == 0 || j.bw.Buffered() > 48*1024 {
		j.bw.Flush()
	}
	switch {
	case j.bw.Buffered() == 0 || j.armed:
	case j.timer == nil:
		j.timer, j.armed = time.AfterFunc(j.delay, j.flushLater), true
	default:
		j.timer.Reset(j.delay)
		j.armed = true
	}
}

// flushLater runs on the timer's goroutine.
func (j *JSONLines) flushLater() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.armed = false
	if !j.closed {
		j.bw.Flush() // an error sticks in bw: the next Flush or Close returns it
	}
}

// Flush writes buffered records.
func (j *JSONLines) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flushLocked()
}

func (j *JSONLines) flushLocked() error {
	if err := j.bw.Flush(); err != nil {
		return fmt.Errorf("audit file: %w", err)
	}
	return nil
}

// Close flushes, stops the flush timer and closes the underlying writer. A second Close
// returns nil.
func (j *JSONLines) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	if j.timer != nil {
		j.timer.Stop()
		j.armed = false
	}
	err := j.flushLocked()
	if j.c != nil {
		if cerr := j.c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("audit file: %w", cerr)
		}
	}
	return err
}
