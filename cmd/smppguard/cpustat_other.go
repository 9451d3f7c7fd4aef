//go:build !linux

package main

import (
	"errors"
	"time"
)

var errNoCPUStat = errors.New("per-process CPU time is read from /proc (Linux only)")

func processCPU(pid int) (time.Duration, error) { return 0, errNoCPUStat }

func selfCPU() (time.Duration, error) { return 0, errNoCPUStat }
