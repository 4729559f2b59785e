package engine

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// How a loop waits for events: it takes the ready ones with a
// non-blocking epoll_wait, and with none parks its goroutine in the Go
// runtime's poller, which watches the epoll descriptor, rather than
// blocking a thread in the system call.

// registerPoller hands the epoll descriptor to the Go runtime's poller,
// which owns it from then on (closing poller closes it).
func (l *Loop) registerPoller() error {
	if err := unix.SetNonblock(l.epfd, true); err != nil {
		return err
	}
	l.poller = os.NewFile(uintptr(l.epfd), "epoll")
	rc, err := l.poller.SyscallConn()
	if err == nil {
		// A descriptor the runtime could not poll has no deadlines.
		err = l.poller.SetReadDeadline(time.Time{})
	}
	if err != nil {
		return fmt.Errorf("engine: the Go runtime cannot poll an epoll descriptor: %w", err)
	}
	l.rc = rc
	l.pollFn = l.pollReady
	return nil
}

// wait returns the events ready now, or, if there are none, parks the
// loop's goroutine in the runtime's poller until there are some or
// timeout has passed (then none). A busy loop never parks: it finds
// events at once.
func (l *Loop) wait(events []unix.EpollEvent) (int, error) {
	l.pollEvents = events
	if l.pollReady(uintptr(l.epfd)) {
		return l.pollN, l.pollErr
	}
	if err := l.poller.SetReadDeadline(time.Now().Add(l.timeout())); err != nil {
		return 0, err
	}
	err := l.rc.Read(l.pollFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return l.pollN, l.pollErr
}

// pollReady takes the events ready now, for the runtime's poller: false
// asks it to wait until the epoll instance is readable.
func (l *Loop) pollReady(fd uintptr) bool {
	l.pollN, l.pollErr = epollWaitNow(int(fd), l.pollEvents)
	return l.pollN > 0 || l.pollErr != nil
}

// epollWaitNow is epoll_wait(2) with no timeout, which never blocks, as a
// raw system call (see Read); EINTR cannot happen without a wait, but
// counts as no events if it does.
func epollWaitNow(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, errno := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	switch errno {
	case 0:
		return int(n), nil
	case unix.EINTR:
		return 0, nil
	}
	return 0, errno
}

// timeout is how long the loop may wait: until the next lingering
// connection is due, or a second.
func (l *Loop) timeout() time.Duration {
	wait := time.Second
	if len(l.lingering) > 0 {
		next := l.lingering[0].until
		for _, w := range l.lingering[1:] {
			if w.until.Before(next) {
				next = w.until
			}
		}
		wait = min(wait, max(time.Until(next), 0))
	}
	return wait
}
