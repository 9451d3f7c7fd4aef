package smpp

import "errors"

// Sentinel errors.
var (
	ErrShortHeader   = errors.New("smpp: fewer than 16 header bytes")
	ErrClosed        = errors.New("smpp: session closed")
	ErrTimeout       = errors.New("smpp: response timeout")
	ErrNotBound      = errors.New("smpp: session not bound")
	ErrWindowTimeout = errors.New("smpp: window full until deadline")
)
