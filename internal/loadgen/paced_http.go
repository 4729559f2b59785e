package loadgen

import (
	"net"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
	"golang.org/x/sys/unix"
)

// pacedRequest is an HTTP request issued on schedule and not yet answered.
type pacedRequest struct {
	due     time.Duration
	kind    kind
	counted bool
	bytes   []byte // kept to send again on a new connection
}

// httpLane sends worker w's share of the schedule on one keep-alive
// connection, pipelined: a request goes out when it is due even if earlier
// ones are unanswered, and replies are matched to requests in order. When
// the tracker closes the connection (Connection: close after its requests
// per connection, or an error), or when the oldest request times out (the
// ones behind it cannot be answered before it), the connection is closed
// and the requests still unanswered are sent again on a new one; their
// latency still counts from their scheduled time. The connection is a raw
// non-blocking socket, connect included, so that nothing the tracker does
// (not accepting, not reading) holds up the schedule.
type httpLane struct {
	cfg *Config
	g   *generator
	st  *stats
	p   *pace
	w   int
	sa  unix.Sockaddr

	fd         int  // -1: no connection
	connecting bool // until the socket is writable
	dialAfter  time.Duration
	queue      []pacedRequest // unanswered, oldest first
	out        []byte         // the queue's bytes not yet written
	in         []byte         // read, not yet matched to a request
	buf        []byte
	eof        bool

	req    bittorrent.AnnounceRequest
	hashes []bittorrent.InfoHash
	next   int64
}

func newHTTPLane(cfg *Config, g *generator, st *stats, p *pace, w int) (*httpLane, error) {
	sa, err := sockaddr(cfg.Target)
	if err != nil {
		return nil, err
	}
	h := &httpLane{cfg: cfg, g: g, st: st, p: p, w: w, sa: sa, fd: -1, buf: make([]byte, 64<<10)}
	h.dial() // ahead of the schedule; a failure is tried again then
	return h, nil
}

// sockaddr is target's address for a raw socket.
func sockaddr(target string) (unix.Sockaddr, error) {
	a, err := net.ResolveTCPAddr("tcp", target)
	if err != nil {
		return nil, err
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return sa, nil
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	return sa, nil
}

// dial starts a connection.
func (h *httpLane) dial() error {
	family := unix.AF_INET
	if _, ok := h.sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.Connect(fd, h.sa); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return err
	}
	h.fd, h.connecting = fd, true
	return nil
}

// close ends the connection; the requests it did not answer go out again,
// whole, on the next one.
func (h *httpLane) close() {
	if h.fd >= 0 {
		unix.Close(h.fd)
	}
	h.fd, h.connecting, h.in, h.eof = -1, false, h.in[:0], false
	h.out = h.out[:0]
	for _, r := range h.queue {
		h.out = append(h.out, r.bytes...)
	}
}

// retry closes the connection and waits a moment before the next.
func (h *httpLane) retry() {
	h.close()
	h.dialAfter = h.p.now() + 10*time.Millisecond
}

// send times out the oldest requests, queues what is due at now, writes
// what the connection takes, and says what to wait for.
func (h *httpLane) send(now time.Duration) (int, int16, time.Duration, bool) {
	h.expire(now)
	due := h.queueDue(now)
	p := h.p
	finished := due >= p.end || now >= p.end+lateGrace
	if finished && len(h.queue) == 0 {
		return -1, 0, 0, true
	}
	if h.fd < 0 && len(h.queue) > 0 && now >= h.dialAfter && h.dial() != nil {
		h.dialAfter = now + 10*time.Millisecond // out of descriptors or ports
	}
	h.write()
	wake := never
	if !finished {
		wake = due
	}
	if len(h.queue) > 0 {
		wake = min(wake, h.queue[0].due+h.cfg.Timeout)
		if h.fd < 0 {
			wake = min(wake, h.dialAfter)
		}
	}
	events := int16(unix.POLLIN)
	if h.connecting {
		events = unix.POLLOUT
	} else if len(h.out) > 0 {
		events |= unix.POLLOUT // and read meanwhile: the tracker may be waiting for its replies to be taken
	}
	return h.fd, events, wake, false
}

// expire counts the requests unanswered for the timeout as timed out, the
// oldest first: if it timed out, so may others behind it. The connection
// goes with them, and the rest go out again on the next.
func (h *httpLane) expire(now time.Duration) {
	timedOut := 0
	for timedOut < len(h.queue) && now >= h.queue[timedOut].due+h.cfg.Timeout {
		if h.queue[timedOut].counted {
			h.st.timeouts++
		}
		timedOut++
	}
	if timedOut > 0 {
		h.queue = h.queue[timedOut:]
		h.close()
	}
}

// queueDue queues the requests due by now, and says when the next is due.
func (h *httpLane) queueDue(now time.Duration) time.Duration {
	p, st := h.p, h.st
	due := p.due(h.w, h.next)
	for due <= now && due < p.end && now < p.end+lateGrace {
		r := pacedRequest{due: due, counted: due >= p.measure}
		r.bytes, h.hashes, r.kind = appendHTTPRequest(nil, h.cfg, h.g, &h.req, h.hashes)
		if r.counted {
			st.sent++
			st.lag.add(now - due)
		}
		h.queue = append(h.queue, r)
		h.out = append(h.out, r.bytes...)
		h.next++
		due = p.due(h.w, h.next)
	}
	return due
}

// write writes what the connection takes of the queue's bytes.
func (h *httpLane) write() {
	if h.fd < 0 || h.connecting || len(h.out) == 0 {
		return
	}
	m, err := unix.Write(h.fd, h.out)
	if m > 0 {
		h.out = h.out[:copy(h.out, h.out[m:])]
	}
	if err != nil && err != unix.EAGAIN {
		h.retry()
	}
}

// receive finishes a connect, or reads and matches replies.
func (h *httpLane) receive(revents int16) error {
	if h.connecting {
		if e, err := unix.GetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
			h.retry() // refused: not listening (yet)
			return nil
		}
		h.connecting = false
		return nil
	}
	if revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) == 0 {
		return nil // writable: send writes
	}
	m, err := unix.Read(h.fd, h.buf)
	switch {
	case m > 0:
		h.in = append(h.in, h.buf[:m]...)
	case err == unix.EAGAIN:
		return nil
	default:
		h.eof = true
	}
	if h.matchReplies() && h.eof {
		h.close()
	}
	return nil
}

// matchReplies matches the whole replies read to the oldest requests, in
// order, and counts them; false if it closed the connection.
func (h *httpLane) matchReplies() bool {
	received := h.p.now()
	for len(h.queue) > 0 {
		used, body, keep, err := httpproto.ParseResponse(h.in, h.eof)
		if err != nil || used == 0 {
			if err != nil || h.eof {
				h.close()
				return false
			}
			return true
		}
		r := h.queue[0]
		h.queue = h.queue[1:]
		if r.counted {
			h.st.countHTTPReply(r.kind, body, received-r.due)
		}
		h.in = h.in[:copy(h.in, h.in[used:])]
		if !keep {
			h.close()
			return false
		}
	}
	return true
}
