//go:build unix

package smpp

import (
	"net"
	"syscall"
)

// rawConnOf returns conn's file descriptor access for inline writes: plain TCP and Unix
// sockets only (a TLS connection must go through its record layer; net.Pipe has no fd).
func rawConnOf(conn net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := conn.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawWriteOnce writes as much of b as the socket takes now, without waiting: n < len(b)
// with a nil error means the socket's send buffer is full (the rest is the writer's). err
// is a socket error (the connection is broken); rcErr means the descriptor could not be
// used (closed, or its write deadline passed) and nothing was written.
func rawWriteOnce(rc syscall.RawConn, b []byte) (n int, err, rcErr error) {
	rcErr = rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := syscall.Write(int(fd), b[n:])
			if e == syscall.EINTR {
				continue
			}
			if e == syscall.EAGAIN {
				return true
			}
			if e != nil {
				err = e
				return true
			}
			if m <= 0 {
				return true
			}
			n += m
		}
		return true
	})
	return n, err, rcErr
}
