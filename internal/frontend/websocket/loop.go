package websocket

import (
	"sync"

	"golang.org/x/sys/unix"
)

// loop is one epoll instance and the goroutine that waits on it: it reads
// the connections that have something to read and handles their frames,
// and flushes those that can take more of what they owe. Connections are
// spread over one loop per CPU.
type loop struct {
	epfd int
	mu   sync.Mutex
	// conns are the loop's connections by descriptor. A connection leaves
	// before its descriptor is closed, so that a new connection given the
	// same number is never mistaken for it.
	conns map[int]*conn
	buf   []byte // the read buffer, the loop goroutine's alone
	// scratch is where the loop's handler composes messages.
	scratch []byte
}

func newLoop(readBuffer int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &loop{epfd: epfd, conns: map[int]*conn{}, buf: make([]byte, readBuffer)}, nil
}

const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP

func (l *loop) add(c *conn) error {
	l.mu.Lock()
	l.conns[c.fd] = c
	l.mu.Unlock()
	err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: readEvents, Fd: int32(c.fd)})
	if err != nil {
		l.remove(c)
	}
	return err
}

// remove takes c out of the loop; its descriptor is still open.
func (l *loop) remove(c *conn) {
	l.mu.Lock()
	if l.conns[c.fd] == c {
		delete(l.conns, c.fd)
	}
	l.mu.Unlock()
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
}

// watchWrites asks to hear when c's socket takes more (on), or stops.
func (l *loop) watchWrites(c *conn, on bool) error {
	events := uint32(readEvents)
	if on {
		events |= unix.EPOLLOUT
	}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)})
}

func (l *loop) get(fd int) *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[fd]
}

// run serves the loop's connections until stop is closed (it looks once a
// second), then closes the epoll instance.
func (l *loop) run(stop <-chan struct{}) {
	defer unix.Close(l.epfd)
	events := make([]unix.EpollEvent, 128)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, err := unix.EpollWait(l.epfd, events, 1000)
		if err != nil && err != unix.EINTR {
			return
		}
		for i := range n {
			c := l.get(int(events[i].Fd))
			if c == nil {
				continue
			}
			if events[i].Events&unix.EPOLLOUT != 0 {
				c.writable()
			}
			if events[i].Events&(readEvents|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				c.readable()
			}
		}
	}
}
