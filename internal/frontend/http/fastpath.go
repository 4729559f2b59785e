package http

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"syscall"

	"github.com/trakx/trakx/internal/frontend/engine"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The fast path. Most clients open a connection per announce, send the
// whole request in one segment and ask for the connection to close; with
// TCP_DEFER_ACCEPT the kernel holds a connection back until that request
// is in. For those, the accepting goroutine takes the connection with a
// raw accept4, reads the request with one non-blocking read, answers with
// one write and closes: no goroutine, no epoll registration, no timer.
// Anything else (nothing to read yet, a partial or pipelined request,
// keep-alive, a malformed request or one with a body) is handed, with the
// bytes already read, to the connection engine (stream.go), exactly as if
// it had been read there.

// acceptor accepts on a listener's descriptor. Its callback is made once,
// so that accepting allocates nothing.
type acceptor struct {
	fd       int // the connection accepted by the last call
	errno    syscall.Errno
	addr     unix.RawSockaddrAny
	addrLen  uint32
	acceptFn func(uintptr) bool
	// spare is a descriptor held for a tracker out of them (or -1): it is
	// given up for a moment to accept a connection and answer it 503,
	// rather than leave it waiting in the backlog with no word.
	spare int
	// answered: the last call answered a connection with the spare.
	answered bool
}

func newAcceptor() *acceptor {
	a := &acceptor{}
	a.acceptFn = a.accept
	a.spare = openSpare()
	return a
}

func openSpare() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// close gives up the spare descriptor.
func (a *acceptor) close() {
	if a.spare >= 0 {
		unix.Close(a.spare)
		a.spare = -1
	}
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
	a.fd, a.errno, a.answered = int(fd), errno, false
	if (errno == unix.EMFILE || errno == unix.ENFILE) && a.spare >= 0 {
		a.answerWithSpare(lfd)
	}
	return true
}

// answerWithSpare frees the spare descriptor to accept the connection
// there is no descriptor for, answers it 503 and closes it, and takes the
// spare back (if no other thread took the number meanwhile).
func (a *acceptor) answerWithSpare(lfd uintptr) {
	unix.Close(a.spare)
	fd, _, errno := syscall.Syscall6(unix.SYS_ACCEPT4, lfd, 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno == 0 {
		engine.Write(int(fd), outOfDescriptors) // a fresh socket takes it whole
		unix.Close(int(fd))
		a.answered = true
	}
	a.spare = openSpare()
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

// accept accepts connections with accept4 until the listener is closed,
// and serves each on the fast path if it can, or hands it to the engine.
func (s *Server) accept() error {
	// A listener's own RawConn cannot wait for readiness (its Read is
	// EINVAL); a duplicate of its descriptor as an os.File can, through
	// the same poller. Close closes the duplicate too.
	fl, ok := s.ln.(interface{ File() (*os.File, error) })
	if !ok {
		return errors.New("the listener has no descriptor")
	}
	f, err := fl.File()
	if err != nil {
		return err
	}
	rc, err := f.SyscallConn()
	if err != nil || !s.setRawFile(f) {
		f.Close()
		return err // nil if closing already: served nothing, and done
	}
	a := newAcceptor()
	defer a.close()
	for {
		if err := rc.Read(a.acceptFn); err != nil {
			return nil // the listener is closed
		}
		if a.errno != 0 {
			s.acceptFailed(a.errno, a.answered)
			if !a.answered {
				// Out of descriptors and no spare, and the like: back off
				// rather than spin.
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		if !s.admit() {
			s.counters[0].ConnectionsRefused.Add(1)
			s.refuseConn(a.fd)
			continue
		}
		s.serveFast(a.fd, a.peer())
	}
}

// serveFast answers a connection's one request on the accepting goroutine
// if it can, and hands the connection to the engine if it cannot.
func (s *Server) serveFast(fd int, peer netip.Addr) {
	c := connPool.Get().(*conn)
	defer connPool.Put(c)
	n, err := engine.Read(fd, c.in[:])
	if err != nil || n <= 0 {
		if err == unix.EAGAIN {
			s.handOff(fd, peer, nil) // nothing yet: a slow client
			return
		}
		unix.Close(fd) // closed or reset before a request
		s.opts.Open.Add(-1)
		return
	}
	var r request
	headerEnd := bytes.Index(c.in[:n], []byte("\r\n\r\n"))
	if headerEnd < 0 || headerEnd+4 != n || !parseRequest(c.in[:n], &r, s.opts.RealIPHeader) || r.hasBody || r.keepAlive {
		s.handOff(fd, peer, c.in[:n])
		return
	}
	r.peer = peer
	s.fastBusySince.Store(time.Now().UnixNano())
	s.handle(c, s.counters[s.nextConn.Add(1)%counterGroups], &r)
	s.fastBusySince.Store(0)
	if c.full.builder != nil { // too large for one write: the engine streams it
		s.handOffFull(fd, peer, c.full)
		return
	}
	// A fresh socket's send buffer takes any reply whole; if it somehow
	// does not, the client gets what fit and an end of stream.
	engine.Write(fd, c.out)
	unix.Close(fd)
	s.opts.Open.Add(-1)
}

// handOff has the engine serve a connection the fast path will not,
// starting with the bytes already read from it, read.
func (s *Server) handOff(fd int, peer netip.Addr, read []byte) {
	c := &stream{s: s, fd: fd, peer: peer, loop: s.engine.Pick(), counters: s.counters[s.nextConn.Add(1)%counterGroups]}
	now := time.Now().UnixNano()
	c.waitingSince.Store(now)
	if len(read) == 0 {
		c.idleSince.Store(now)
	} else {
		c.in = inPool.Get().(*[MaxRequestSize]byte)
		c.inLen = copy(c.in[:], read)
		c.fresh = true
	}
	if !s.track(c) { // closing
		c.releaseIn()
		unix.Close(fd)
		s.opts.Open.Add(-1)
		return
	}
	if err := c.loop.Add(c, engine.ReadEvents); err != nil {
		if err != engine.ErrStopped {
			s.log.WithError(err).Warn("http: cannot poll a connection")
		}
		unix.Close(fd) // never the loop's: this goroutine still owns it
		c.Closed()
		return
	}
	// From here on the loop owns the descriptor. Bytes read already, or an
	// eviction before the loop had it, are the loop's to act on.
	if len(read) > 0 || c.idleSince.Load() == evicted {
		c.loop.Poke(c)
	}
}

// refuseConn tells a client over the connection cap to come back later. Its
// request is unread, so the connection is closed gracefully, by the
// engine; under a flood of refusals beyond maxLingering, it is just
// closed.
func (s *Server) refuseConn(fd int) {
	engine.Write(fd, tooManyConnections) // a fresh socket takes it whole
	if s.lingering.Add(1) > maxLingering || s.closing.Load() {
		s.lingering.Add(-1)
		unix.Close(fd)
		return
	}
	r := &refusal{s: s, fd: fd}
	unix.Shutdown(fd, unix.SHUT_WR)
	s.wg.Add(1)
	loop := s.engine.Pick()
	if loop.Add(r, engine.ReadEvents) != nil {
		unix.Close(fd)
		r.Closed()
		return
	}
	loop.Retire(r, time.Now().Add(lingerTime))
}

// refusal is a refused connection, closing gracefully (see linger.go).
type refusal struct {
	s    *Server
	fd   int
	shut bool
	discarder
}

// FD is the refused connection's socket, for the engine's table.
func (r *refusal) FD() int { return r.fd }

// IsShut reports whether the refusal is done, so that the loop may close
// its descriptor.
func (r *refusal) IsShut() bool { return r.shut }

// Shut ends the refusal: its linger is over, or the loop is stopping.
func (r *refusal) Shut() { r.shut = true }

// Poked does nothing: no other goroutine has anything to tell a refusal.
func (r *refusal) Poked(time.Time) {}

// Closed is the refusal's end: the server counts it closed.
func (r *refusal) Closed() { r.s.lingering.Add(-1); r.s.wg.Done() }

// Ready discards what the client still sends, and ends the refusal once
// the client has closed its end, or enough is discarded (see linger.go).
func (r *refusal) Ready(_ uint32, buf []byte) {
	if r.discard(r.fd, buf) {
		r.shut = true // the loop closes it after this batch
	}
}
