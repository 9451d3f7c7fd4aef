//go:build !unix

package smpp

import (
	"net"
	"syscall"
)

// rawConnOf: no inline writes on this platform (see inline_unix.go).
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func rawWriteOnce(syscall.RawConn, []byte) (n int, err, rcErr error) {
	return 0, nil, syscall.EINVAL
}
