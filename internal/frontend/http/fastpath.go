//go:build linux

package http

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The fast path. Most clients open a connection per announce, send the
// whole request in one segment and ask for the connection to close; with
// TCP_DEFER_ACCEPT the kernel holds a connection back until that request
// is in. For those, the accepting goroutine takes the connection with a
// raw accept4, reads the request with one non-blocking read, answers with
// one write and closes: no goroutine, no netpoller registration, no
// deadline timer, no net.Conn. Anything else (nothing to read yet, a
// partial or pipelined request, keep-alive, a malformed request or one
// with a body) is handed, with the bytes already read, to a goroutine with
// deadlines (conn.go), exactly as if it had been accepted there.

// acceptor accepts on a listener's descriptor. Its callback is made once,
// so that accepting allocates nothing.
type acceptor struct {
	fd       int // the connection accepted by the last call
	errno    syscall.Errno
	addr     unix.RawSockaddrAny
	addrLen  uint32
	acceptFn func(uintptr) bool
}

func newAcceptor() *acceptor {
	a := &acceptor{}
	a.acceptFn = a.accept
	return a
}

// accept takes one connection if one is waiting; false asks the poller to
// wait until one is.
func (a *acceptor) accept(lfd uintptr) bool {
	a.addrLen = unix.SizeofSockaddrAny
	fd, _, errno := syscall.Syscall6(unix.SYS_ACCEPT4, lfd, uintptr(unsafe.Pointer(&a.addr)), uintptr(unsafe.Pointer(&a.addrLen)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	switch errno {
	case unix.EAGAIN:
		return false
	case unix.EINTR, unix.ECONNABORTED:
		return a.accept(lfd)
	}
	a.fd, a.errno = int(fd), errno
	return true
}

// peer is the accepted connection's remote address.
func (a *acceptor) peer() netip.Addr {
	switch a.addr.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&a.addr))
		return netip.AddrFrom4(sa.Addr)
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&a.addr))
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}

// serveRaw is Serve for a TCP listener whose descriptor it can reach: it
// accepts with accept4 and serves what it can on the fast path. It reports
// false, having done nothing, when the listener is not of that kind.
func (s *Server) serveRaw() bool {
	tl, ok := s.ln.(*net.TCPListener)
	if !ok {
		return false
	}
	// A listener's own RawConn cannot wait for readiness (its Read is
	// EINVAL); a duplicate of its descriptor as an os.File can, through
	// the same poller. Close closes the duplicate too.
	f, err := tl.File()
	if err != nil {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil || !s.setRawFile(f) {
		f.Close()
		return err == nil // closing already: served nothing, and done
	}
	a := newAcceptor()
	for {
		if err := rc.Read(a.acceptFn); err != nil {
			return true // the listener is closed
		}
		if a.errno != 0 {
			// Out of descriptors and the like: back off rather than spin.
			s.acceptFailed(a.errno)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !s.admit() {
			s.counters[0].ConnectionsRefused.Add(1)
			if nc := s.fileConn(a.fd); nc != nil {
				s.refuseConn(nc)
			}
			continue
		}
		s.serveFast(a.fd, a.peer())
	}
}

// serveFast answers a connection's one request on the accepting goroutine
// if it can, and hands the connection to a goroutine if it cannot.
func (s *Server) serveFast(fd int, peer netip.Addr) {
	c := connPool.Get().(*conn)
	n, err := unix.Read(fd, c.in[:])
	if err != nil || n <= 0 {
		if err == unix.EAGAIN {
			s.handOff(fd, c, 0) // nothing yet: a slow client
			return
		}
		connPool.Put(c)
		unix.Close(fd) // closed or reset before a request
		s.opts.Open.Add(-1)
		return
	}
	var r request
	headerEnd := bytes.Index(c.in[:n], []byte("\r\n\r\n"))
	if headerEnd < 0 || headerEnd+4 != n || !parseRequest(c.in[:n], &r, s.opts.RealIPHeader) || r.hasBody || r.keepAlive {
		s.handOff(fd, c, n)
		return
	}
	r.peer = peer
	s.fastBusySince.Store(time.Now().UnixNano())
	s.handle(c, s.counters[s.nextConn.Add(1)%counterGroups], &r)
	s.fastBusySince.Store(0)
	// A fresh socket's send buffer takes any reply whole; if it somehow
	// does not, the client gets what fit and an end of stream.
	unix.Write(fd, c.out)
	unix.Close(fd)
	connPool.Put(c)
	s.opts.Open.Add(-1)
}

// handOff serves a connection the fast path will not, on a goroutine of
// its own, starting with the n bytes already read into c.
func (s *Server) handOff(fd int, c *conn, n int) {
	nc := s.fileConn(fd)
	if nc == nil {
		connPool.Put(c)
		s.opts.Open.Add(-1)
		return
	}
	state := s.track(nc, n == 0)
	if state == nil { // closing
		connPool.Put(c)
		nc.Close()
		s.opts.Open.Add(-1)
		return
	}
	s.wg.Add(1)
	go s.serveConnWith(nc, state, c, n)
}

// fileConn makes a net.Conn of a raw connected socket, which it takes
// over; nil if that fails (the socket is then closed, and the failure
// counted and warned of).
func (s *Server) fileConn(fd int) net.Conn {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	nc, err := net.FileConn(f) // a duplicate, registered with the poller
	if err != nil {
		if isDescriptorShortage(err) {
			s.descriptorShortage(err, "taking over a connection")
			unix.Write(fd, outOfDescriptors) // a fresh socket takes it whole
		} else if s.warnNow() {
			s.log.WithError(err).Warn("http: taking over a connection")
		}
		return nil
	}
	return nc
}
