package udp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg or sendmmsg call moves: a
// system call per batch rather than per packet is most of what makes the
// UDP tracker fast. 64, as the kernel's floor (../shared/floor) uses: under
// load a batch fills, and 32 paid a recvmmsg, a sendmmsg and the scheduler's
// round between them twice as often.
const batchSize = 64

// mmsghdr is struct mmsghdr of recvmmsg(2): a msghdr and the length the
// kernel received or sent. Go pads it as C does on every platform: to 64
// bytes where pointers are 8 bytes (msghdr 56 + 4 + 4 of padding), to 32
// where they are 4 (28 + 4). Padding written out by hand would be right on
// one kind only, and the kernel would read every header after the first at
// the wrong place.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
}

// batch is one worker's datagrams, in and out, with the kernel's structures
// built once so that a batch costs no allocation.
type batch struct {
	rc syscall.RawConn

	in      [batchSize][2048]byte
	inNames [batchSize]syscall.RawSockaddrInet6
	inIov   [batchSize]syscall.Iovec
	inHdrs  [batchSize]mmsghdr
	n       int // datagrams received by the last recv

	out      [batchSize][]byte
	outNames [batchSize]syscall.RawSockaddrInet6
	outIov   [batchSize]syscall.Iovec
	outHdrs  [batchSize]mmsghdr
	queued   int // replies waiting in out
	sent     int

	errno syscall.Errno
	// The callbacks handed to RawConn, made once: a closure made per call
	// would be an allocation per batch.
	recvFn, sendFn func(uintptr) bool
}

func newBatch(conn *net.UDPConn) (*batch, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batch{rc: rc}
	for i := range b.inHdrs {
		b.inIov[i].Base = &b.in[i][0]
		b.inIov[i].SetLen(len(b.in[i]))
		b.inHdrs[i].hdr.Iov = &b.inIov[i]
		b.inHdrs[i].hdr.Iovlen = 1
		b.inHdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.inNames[i]))
		b.out[i] = make([]byte, 0, 2048)
		b.outHdrs[i].hdr.Iov = &b.outIov[i]
		b.outHdrs[i].hdr.Iovlen = 1
		b.outHdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.outNames[i]))
	}
	b.recvFn, b.sendFn = b.recvmmsg, b.sendmmsg
	return b, nil
}

// recv waits for datagrams and receives up to batchSize of them.
func (b *batch) recv() error {
	for i := range b.inHdrs {
		b.inHdrs[i].hdr.Namelen = syscall.SizeofSockaddrInet6
		b.inHdrs[i].hdr.Flags = 0
	}
	b.n, b.errno = 0, 0
	if err := b.rc.Read(b.recvFn); err != nil {
		return err
	}
	if b.errno != 0 {
		return b.errno
	}
	return nil
}

// Both calls are raw system calls, which the scheduler does not see: with
// MSG_DONTWAIT they never block, they only copy. Through syscall.Syscall6
// the runtime marked the worker as in a system call, and a sendmmsg of a
// full batch lasts longer than sysmon's tick, so its P was taken away and
// handed to another thread, which found nothing to do and slept in
// epoll_wait; the worker, back from the kernel, then had to win a P back:
// two or three thread switches a batch on the tracker's core (perf: about
// as many epoll_pwait calls as batches, 13k context switches a second).
// The cost is the GC's: a stop-the-world waits for the call to end, a
// batch's worth of copying (well under a millisecond).

func (b *batch) recvmmsg(fd uintptr) bool {
	var n uintptr
	var errno syscall.Errno
	for {
		n, _, errno = syscall.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.inHdrs[0])), batchSize, syscall.MSG_DONTWAIT, 0, 0)
		if errno != syscall.EINTR {
			break
		}
	}
	if errno == syscall.EAGAIN {
		return false // wait until the socket is readable
	}
	if errno != 0 {
		b.errno = errno
		return true
	}
	b.n = int(n)
	return true
}

// datagram returns the i-th datagram received, its sender, and whether it
// was cut short (larger than any request).
func (b *batch) datagram(i int) (pkt []byte, from netip.AddrPort, truncated bool) {
	h := &b.inHdrs[i]
	return b.in[i][:h.len], sockaddrAddrPort(&b.inNames[i]), h.hdr.Flags&syscall.MSG_TRUNC != 0
}

// replyBuffer is the buffer the next reply is built in.
func (b *batch) replyBuffer() []byte { return b.out[b.queued][:0] }

// queueReply queues a reply, built in replyBuffer, to datagram i's sender.
func (b *batch) queueReply(i int, reply []byte) {
	q := b.queued
	b.out[q] = reply
	b.outNames[q] = b.inNames[i]
	b.outHdrs[q].hdr.Namelen = b.inHdrs[i].hdr.Namelen
	b.outIov[q].Base = &reply[0]
	b.outIov[q].SetLen(len(reply))
	b.queued++
}

// send writes the queued replies. A reply the kernel refuses (the client's
// port closed, say) is dropped; the rest still go.
func (b *batch) send() error {
	for b.sent = 0; b.sent < b.queued; {
		b.errno = 0
		if err := b.rc.Write(b.sendFn); err != nil {
			return err
		}
		if b.errno != 0 {
			b.sent++ // skip the one that failed
		}
	}
	b.queued = 0
	return nil
}

func (b *batch) sendmmsg(fd uintptr) bool {
	var n uintptr
	var errno syscall.Errno
	for {
		n, _, errno = syscall.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.outHdrs[b.sent])), uintptr(b.queued-b.sent), syscall.MSG_DONTWAIT, 0, 0)
		if errno != syscall.EINTR {
			break
		}
	}
	if errno == syscall.EAGAIN {
		return false // wait until the socket is writable
	}
	if errno != 0 {
		b.errno = errno
		return true
	}
	b.sent += int(n)
	return true
}

// sockaddrAddrPort reads a sockaddr_in or sockaddr_in6 without allocating.
func sockaddrAddrPort(sa *syscall.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	if sa.Family == syscall.AF_INET {
		sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
}
