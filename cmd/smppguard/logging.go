package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/smppguard/smppguard/config"
	"github.com/smppguard/smppguard/smpp"
)

// componentCore applies per-component levels: the component is the first part of the
// logger's name ("relay", "session", "otp", ...), so every log.Named(...) gets its level.
type componentCore struct {
	zapcore.Core // enabled at the lowest level any component uses
	base         zapcore.Level
	levels       map[string]zapcore.Level
}

func (c componentCore) Enabled(l zapcore.Level) bool { return c.Core.Enabled(l) }

func (c componentCore) With(f []zapcore.Field) zapcore.Core {
	return componentCore{Core: c.Core.With(f), base: c.base, levels: c.levels}
}

func (c componentCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	lvl := c.base
	comp, _, _ := strings.Cut(e.LoggerName, ".")
	if l, ok := c.levels[comp]; ok {
		lvl = l
	}
	if e.Level < lvl {
		return ce
	}
	return c.Core.Check(e, ce)
}

// newConfiguredLogger builds the process logger from the log section: JSON or console, a
// base level and per-component levels.
func newConfiguredLogger(lc config.Log, w io.Writer) (*zap.Logger, error) {
	base, err := zapcore.ParseLevel(lc.Level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", lc.Level, err)
	}
	levels := map[string]zapcore.Level{}
	lowest := base
	for _, comp := range []string{"relay", "session", "otp", "checks", "oauth", "admin", "fake-smsc", "fake-carrier"} {
		if s := lc.Levels.Of(comp); s != "" {
			l, err := zapcore.ParseLevel(s)
			if err != nil {
				return nil, fmt.Errorf("log level for %s %q: %w", comp, s, err)
			}
			levels[comp] = l
			lowest = min(lowest, l)
		}
	}
	inner, err := newLogger(lowest.String(), lc.Format, w)
	if err != nil {
		return nil, err
	}
	return zap.New(componentCore{Core: inner.Core(), base: base, levels: levels}), nil
}

// pduTracer logs one frame in sample at debug level with its hex dump; bind and outbind
// frames carry passwords and are never dumped. Nil when the logger has debug off.
func pduTracer(log *zap.Logger, sample int) func(*smpp.Session, bool, []byte) {
	if ce := log.Check(zap.DebugLevel, "pdu"); ce == nil {
		return nil
	}
	if sample < 1 {
		sample = 1
	}
	var n atomic.Uint64
	return func(s *smpp.Session, rx bool, frame []byte) {
		if n.Add(1)%uint64(sample) != 0 {
			return
		}
		h, err := smpp.ParseHeader(frame)
		if err != nil {
			return
		}
		dir := "tx"
		if rx {
			dir = "rx"
		}
		dump := hex.EncodeToString(frame)
		if h.ID.Request().IsBind() || h.ID == smpp.Outbind {
			dump = "(bind: not dumped)"
		}
		log.Debug("pdu", zap.String("dir", dir), zap.Stringer("peer", s.RemoteAddr()), zap.Stringer("command", h.ID),
			zap.Uint32("seq", h.Seq), zap.Stringer("status", h.Status), zap.Int("len", len(frame)), zap.String("hex", dump))
	}
}
