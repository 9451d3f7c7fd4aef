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

// AuditSink receives audit records. Record must not block for long.
type AuditSink interface {
	Record(AuditRecord)
}

// AuditFunc adapts a function to AuditSink.
type AuditFunc func(AuditRecord)

// Record calls f.
func (f AuditFunc) Record(r AuditRecord) { f(r) }

func (ic *Interceptor) auditRecord(p *Policy, m *Message, now time.Time) AuditRecord {
	r := AuditRecord{
		Time: now.UTC(), Account: m.Account, Destination: Mask(m.Dest, ic.cfg.MaskKeep), Source: m.Source,
		Command: m.Command.String(), Rule: m.Rule, Signals: m.Signals, Action: m.Decision.Action, Route: m.Decision.Route,
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

// JSONLines writes audit records as JSON lines to a writer, buffered; Flush or Close pushes
// them out. Safe for concurrent use.
type JSONLines struct {
	mu sync.Mutex
	bw *bufio.Writer
	c  io.Closer
	n  int
}

// NewJSONLines writes to w (closed by Close when it is an io.Closer).
func NewJSONLines(w io.Writer) *JSONLines {
	j := &JSONLines{bw: bufio.NewWriterSize(w, 64*1024)}
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

// Record implements AuditSink. Records are flushed at least every 64 records and by Flush.
func (j *JSONLines) Record(r AuditRecord) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.bw.Write(append(b, '\n'))
	if j.n++; j.n%64 == 0 || j.bw.Buffered() > 48*1024 {
		j.bw.Flush()
	}
}

// Flush writes buffered records.
func (j *JSONLines) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.bw.Flush()
}

// Close flushes and closes the underlying writer.
func (j *JSONLines) Close() error {
	err := j.Flush()
	if j.c != nil {
		if cerr := j.c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
