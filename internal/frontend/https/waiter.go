package https

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"syscall"
	"unsafe"
)

// An idle WebSocket over TLS should cost little: no read buffer and a
// small stack, as the WebSocket frontend's own connections cost nothing
// but their state. A goroutine blocked in tls.Conn.Read holds both, so the
// connections handed to it wait for their next bytes in the poller
// instead (WaitReadable), and read only once some came. That is exact only
// if crypto/tls keeps no bytes read from the socket and not yet handed
// out: recordConn, under it, never reads past the end of a record once
// the connection is a WebSocket, and a Read of 16 KiB (a record's whole
// plaintext) drains the record it decrypts.

// recordConn is the socket under a TLS connection. Once exact, it reads
// one record at a time, its 5-byte header then its body, so that crypto/tls
// (which asks for as much as its buffer holds) never has the start of the
// next record.
type recordConn struct {
	net.Conn
	exact   bool
	head    [5]byte // the header under way, headLen bytes of it so far
	headLen int
	left    int // bytes of the record's body still to read
}

// Read reads from the socket, up to the end of the record under way when
// exact.
func (r *recordConn) Read(b []byte) (int, error) {
	if !r.exact {
		return r.Conn.Read(b)
	}
	if r.left > 0 {
		n, err := r.Conn.Read(b[:min(len(b), r.left)])
		r.left -= n
		return n, err
	}
	n, err := r.Conn.Read(b[:min(len(b), len(r.head)-r.headLen)])
	r.headLen += copy(r.head[r.headLen:], b[:n])
	if r.headLen == len(r.head) {
		r.left, r.headLen = int(binary.BigEndian.Uint16(r.head[3:])), 0
	}
	return n, err
}

// wsConn is a TLS connection handed to the WebSocket frontend: a net.Conn
// that can wait for its next bytes without a read under way.
type wsConn struct {
	*tls.Conn
	raw syscall.RawConn // the socket's, to wait in the poller
}

// newWSConn makes tc, over rc, a wsConn from now on: rc reads records
// whole. Nothing of the client's may be buffered in tc: an upgrade
// request is the last the client sends before the 101 (RFC 6455 section
// 4.1), so at worst a client that did not wait gets its frames read late.
func newWSConn(tc *tls.Conn, rc *recordConn) net.Conn {
	sc, ok := rc.Conn.(syscall.Conn)
	if !ok {
		return tc
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return tc
	}
	rc.exact = true
	return &wsConn{Conn: tc, raw: raw}
}

// WaitReadable returns once a Read of at least 16 KiB would not wait for
// the network (bytes, an end of stream or an error are there), or the
// read deadline passed (its error then). It holds no buffer meanwhile.
func (c *wsConn) WaitReadable() error {
	return c.raw.Read(func(fd uintptr) bool {
		var probe [1]byte
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&probe[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		return errno != syscall.EAGAIN && errno != syscall.EINTR
	})
}
