package websocket

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// loop is one epoll instance and the goroutine that waits on it: it reads
// the connections that have something to read and handles their frames,
// flushes those that can take more of what they owe, and is the only one
// to close its connections' descriptors. Connections are spread over one
// loop per CPU.
type loop struct {
	epfd int
	wake int // an eventfd, written to hand the loop connections to end
	mu   sync.Mutex
	// conns are the loop's connections by descriptor; a connection stays
	// until the loop closes its descriptor, so a number here is always
	// that connection's own.
	conns map[int]*conn
	// retiring are connections closed or shut since the loop last looked,
	// by any goroutine; stopped, that the loop has ended (both guarded by
	// mu).
	retiring []*conn
	stopped  bool

	// busySince is when the loop woke to serve its connections (unix
	// nanoseconds), or 0 while it waits: a loop busy for long is wedged.
	busySince atomic.Int64

	// The loop goroutine's alone: closing connections waiting for their
	// peers, the read buffer, and where the handler composes messages.
	lingering []lingerer
	buf       []byte
	scratch   []byte
}

func newLoop(readBuffer int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err == nil {
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)})
		if err != nil {
			unix.Close(wake)
		}
	}
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	return &loop{epfd: epfd, wake: wake, conns: map[int]*conn{}, buf: make([]byte, readBuffer)}, nil
}

// closeUnused closes a loop that never ran.
func (l *loop) closeUnused() {
	unix.Close(l.wake)
	unix.Close(l.epfd)
}

// lingerer is a closing connection, and when the loop stops waiting for
// its peer.
type lingerer struct {
	c     *conn
	until time.Time
}

const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP

// errLoopStopped refuses a connection to a loop that has ended.
var errLoopStopped = errors.New("websocket: shutting down")

// add hands c's descriptor to the loop, which owns it from then on; on
// failure the caller still owns it.
func (l *loop) add(c *conn) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return errLoopStopped
	}
	err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: readEvents, Fd: int32(c.fd)})
	if err == nil {
		l.conns[c.fd] = c
	}
	return err
}

// watchWrites asks to hear when c's socket takes more (on), or stops.
// Called under c.wmu on a connection not shut, whose descriptor is open.
func (l *loop) watchWrites(c *conn, on bool) error {
	events := uint32(readEvents)
	if on {
		events |= unix.EPOLLOUT
	}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)})
}

// retire tells the loop that c began to close or was shut, from any
// goroutine: the loop will time its lingering, or close its descriptor.
func (l *loop) retire(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return // closeAll has ended it
	}
	l.retiring = append(l.retiring, c)
	l.wakeLocked()
}

// wakeUp wakes the loop from its wait, to see that it must stop.
func (l *loop) wakeUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.wakeLocked()
	}
}

func (l *loop) wakeLocked() {
	one := [8]byte{1}
	unix.Write(l.wake, one[:]) // a full counter wakes the loop just as well
}

func (l *loop) get(fd int) *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[fd]
}

// run serves the loop's connections until stop is closed (it looks when
// woken, and at least once a second), then closes every descriptor it still has, and
// the epoll instance.
func (l *loop) run(stop <-chan struct{}) {
	defer l.closeAll()
	events := make([]unix.EpollEvent, 128)
	for {
		select {
		case <-stop:
			return
		default:
		}
		l.busySince.Store(0)
		n, err := unix.EpollWait(l.epfd, events, 1000)
		now := time.Now()
		l.busySince.Store(now.UnixNano())
		if err != nil && err != unix.EINTR {
			return
		}
		l.serve(events[:max(n, 0)])
		l.tend(now)
	}
}

// serve handles one batch of events. Descriptors are closed only after a
// batch, in tend, so that no number in it can have changed hands.
func (l *loop) serve(events []unix.EpollEvent) {
	for i := range events {
		fd := int(events[i].Fd)
		if fd == l.wake {
			var count [8]byte
			unix.Read(l.wake, count[:])
			continue
		}
		c := l.get(fd)
		if c == nil {
			continue
		}
		if events[i].Events&unix.EPOLLOUT != 0 {
			c.writable()
		}
		if events[i].Events&(readEvents|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !c.isShut() {
			c.readable()
		}
	}
}

// tend closes the descriptors of the connections shut since the last
// batch, and shuts closing connections whose peers have kept them waiting
// past lingerTime.
func (l *loop) tend(now time.Time) {
	l.mu.Lock()
	retiring := l.retiring
	l.retiring = nil
	l.mu.Unlock()
	for _, c := range retiring {
		if !c.lingering {
			c.lingering = true
			l.lingering = append(l.lingering, lingerer{c, now.Add(lingerTime)})
		}
	}
	kept := l.lingering[:0]
	for _, w := range l.lingering {
		if !w.c.isShut() && now.Before(w.until) {
			kept = append(kept, w)
			continue
		}
		w.c.shut() // no-op if shut already
		l.closeFD(w.c)
	}
	clear(l.lingering[len(kept):])
	l.lingering = kept
}

// closeFD takes a shut connection out of the loop and closes its
// descriptor: the number is free for a new connection only now. It is
// called once a connection: for the lingering list, which a connection
// joins once, or on the loop's way out.
func (l *loop) closeFD(c *conn) {
	l.mu.Lock()
	delete(l.conns, c.fd)
	l.mu.Unlock()
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	c.s.forget(c)
}

// closeAll ends every connection the loop still has, on its way out.
func (l *loop) closeAll() {
	l.mu.Lock()
	l.stopped = true
	conns := make([]*conn, 0, len(l.conns))
	for _, c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.shut()
		l.closeFD(c)
	}
	l.closeUnused()
}
