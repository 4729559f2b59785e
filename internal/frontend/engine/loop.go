package engine

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Loop is one epoll instance and the goroutine that waits on it.
type Loop struct {
	epfd int
	// poller is epfd registered with the Go runtime's own poller (an epoll
	// instance is readable while it has events), so that the loop parks
	// like any goroutine waiting for a socket instead of blocking its
	// thread in epoll_wait: a goroutine blocked in a system call keeps its
	// P until the runtime's monitor takes it back, which it does only every
	// 10-20 ms once it has backed off, and with one P (a tracker pinned to
	// one core) the UDP workers waited that long behind an idle loop.
	poller *os.File
	rc     syscall.RawConn
	// pollFn is pollReady as a func made once (a closure made at each wait
	// would be an allocation), and pollEvents, pollN and pollErr its
	// arguments and results.
	pollFn     func(uintptr) bool
	pollEvents []unix.EpollEvent
	pollN      int
	pollErr    error
	wake       int // an eventfd, written to bring the loop to its pokes and retirements
	mu         sync.Mutex
	// conns are the loop's connections by descriptor; a connection stays
	// until the loop closes its descriptor, so a number here is always
	// that connection's own.
	conns map[int]Conn
	// poked and retiring are what other goroutines asked of the loop since
	// it last looked; stopped, that the loop has ended (all under mu).
	poked    []Conn
	retiring []lingerer
	stopped  bool

	// busySince is when the loop woke to serve its connections (unix
	// nanoseconds), or 0 while it waits: a loop busy for long is wedged.
	busySince atomic.Int64

	// The loop goroutine's alone: connections waiting to be closed, and
	// the read buffer.
	lingering []lingerer
	buf       []byte
	now       time.Time // when the loop woke for the batch it serves
}

func newLoop(readBuffer int) (*Loop, error) {
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
	l := &Loop{epfd: epfd, wake: wake, conns: map[int]Conn{}, buf: make([]byte, readBuffer)}
	if err := l.registerPoller(); err != nil {
		l.closeUnused()
		return nil, err
	}
	return l, nil
}

// closeUnused closes a loop that never ran.
func (l *Loop) closeUnused() {
	unix.Close(l.wake)
	if l.poller != nil {
		l.poller.Close()
	} else {
		unix.Close(l.epfd)
	}
}

// lingerer is a connection to close once it is shut, or at until.
type lingerer struct {
	c     Conn
	until time.Time
}

// ReadEvents are the events a connection is polled for while it reads.
const ReadEvents = unix.EPOLLIN | unix.EPOLLRDHUP

// ErrStopped refuses a connection to a loop that has ended.
var ErrStopped = errors.New("engine: shutting down")

// Add hands c's descriptor to the loop, polled for events, which owns it
// from then on; on failure the caller still owns it.
func (l *Loop) Add(c Conn, events uint32) error {
	fd := c.FD()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return ErrStopped
	}
	err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
	if err == nil {
		l.conns[fd] = c
	}
	return err
}

// Replace puts c in place of the connection on c's descriptor, which
// becomes c's: a protocol upgrade. Called on the loop, from the Ready of
// the connection replaced, which hears from the loop no more.
func (l *Loop) Replace(c Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns[c.FD()] = c
}

// Watch sets the events c's descriptor is polled for. Called while the
// descriptor is open, which the loop alone ends.
func (l *Loop) Watch(c Conn, events uint32) error {
	fd := c.FD()
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
}

// Poke has the loop call c.Poked, from any goroutine.
func (l *Loop) Poke(c Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return // closeAll has ended it
	}
	l.poked = append(l.poked, c)
	l.wakeLocked()
}

// Retire tells the loop, from any goroutine, that c began to close: the
// loop closes its descriptor once it is shut, shutting it at until if it
// is not by then.
func (l *Loop) Retire(c Conn, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.retiring = append(l.retiring, lingerer{c, until})
	l.wakeLocked()
}

// Now is when the loop woke for the batch of events it is serving, a
// clock for its connections that costs no system call; on the loop's
// goroutine only.
func (l *Loop) Now() time.Time { return l.now }

// Linger is Retire on the loop's own goroutine (from Ready or Poked),
// which need not wake the loop.
func (l *Loop) Linger(c Conn, until time.Time) {
	l.lingering = append(l.lingering, lingerer{c, until})
}

// wakeUp wakes the loop from its wait, to see that it must stop.
func (l *Loop) wakeUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.wakeLocked()
	}
}

func (l *Loop) wakeLocked() {
	one := [8]byte{1}
	unix.Write(l.wake, one[:]) // a full counter wakes the loop just as well
}

func (l *Loop) get(fd int) Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[fd]
}

// run serves the loop's connections until stop is closed (it looks when
// woken, and at least once a second), then closes every descriptor it
// still has, and the epoll instance.
func (l *Loop) run(stop <-chan struct{}) {
	defer l.closeAll()
	events := make([]unix.EpollEvent, 128)
	for {
		select {
		case <-stop:
			return
		default:
		}
		l.busySince.Store(0)
		n, err := l.wait(events)
		now := time.Now()
		l.now = now
		l.busySince.Store(now.UnixNano())
		if err != nil {
			return
		}
		l.serve(events[:n])
		l.tend(now)
	}
}

// serve handles one batch of events. Descriptors are closed only after a
// batch, in tend, so that no number in it can have changed hands.
func (l *Loop) serve(events []unix.EpollEvent) {
	for i := range events {
		fd := int(events[i].Fd)
		if fd == l.wake {
			var count [8]byte
			unix.Read(l.wake, count[:])
			continue
		}
		if c := l.get(fd); c != nil && !c.IsShut() {
			c.Ready(events[i].Events, l.buf)
		}
	}
}

// tend makes the pokes asked for since the last batch, and closes the
// descriptors of connections that are shut or whose lingering time is
// over.
func (l *Loop) tend(now time.Time) {
	l.mu.Lock()
	poked, retiring := l.poked, l.retiring
	l.poked, l.retiring = nil, nil
	l.mu.Unlock()
	for _, c := range poked {
		if !c.IsShut() && l.owns(c) {
			c.Poked(now)
		}
	}
	l.lingering = append(l.lingering, retiring...)
	kept := l.lingering[:0]
	for _, w := range l.lingering {
		if !w.c.IsShut() && now.Before(w.until) {
			kept = append(kept, w)
			continue
		}
		l.closeFD(w.c)
	}
	clear(l.lingering[len(kept):])
	l.lingering = kept
}

// owns reports whether c is still the loop's connection on its descriptor.
func (l *Loop) owns(c Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[c.FD()] == c
}

// closeFD shuts c if it is not, takes it out of the loop and closes its
// descriptor: the number is free for a new connection only now. A
// connection the loop no longer has (closed already, or replaced) is left
// alone.
func (l *Loop) closeFD(c Conn) {
	fd := c.FD()
	l.mu.Lock()
	if l.conns[fd] != c {
		l.mu.Unlock()
		return
	}
	delete(l.conns, fd)
	l.mu.Unlock()
	c.Shut() // a no-op if shut already
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	unix.Close(fd)
	c.Closed()
}

// closeAll ends every connection the loop still has, on its way out.
func (l *Loop) closeAll() {
	l.mu.Lock()
	l.stopped = true
	conns := make([]Conn, 0, len(l.conns))
	for _, c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		l.closeFD(c)
	}
	l.closeUnused()
}
