package loadgen

// A paced run (Config.Rate) is open loop: requests go out on a fixed
// schedule whether or not earlier ones were answered, so that a tracker
// falling behind shows as queueing delay and timeouts, not as a generator
// that slows down with it. Latency is measured from each request's
// scheduled time, not from when it actually went out, so that the
// generator's own delays are not hidden (no coordinated omission); how late
// requests went out is reported beside it.
//
// Each worker is a lane (a UDP socket, or an HTTP connection) with its own
// share of the schedule. One goroutine per CPU (GOMAXPROCS) drives several
// lanes and waits for all of them in one ppoll, whose timeout is precise to
// microseconds: the Go runtime's timers (deadlines, time.Sleep) wake a quiet
// process to the millisecond, which would add up to a millisecond of the
// generator's own to every latency, and a goroutine per lane costs a thread
// wake-up per request.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/udpproto"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// pace is a paced run's schedule, shared by its lanes: worker w's k-th
// request is due at (k*workers + w)/rate seconds after start, so that the
// workers' requests interleave evenly.
type pace struct {
	start   time.Time     // set before the lanes start
	measure time.Duration // requests due from here on are counted
	end     time.Duration // no request is due from here on
	rate    int64
	workers int64
}

func (p *pace) due(w int, k int64) time.Duration {
	return time.Duration((k*p.workers + int64(w)) * int64(time.Second) / p.rate)
}

func (p *pace) now() time.Duration { return time.Since(p.start) }

// lateGrace is how late after the end of the schedule a request may still
// go out and count as sent; a generator further behind than that loses the
// requests it did not send, and sends fewer than it was asked to.
const lateGrace = time.Millisecond

// never is a wake-up time that does not come.
const never = time.Duration(1<<63 - 1)

// pacedSlots is how many requests a UDP socket can have outstanding in a
// paced run: all those of the last timeout, with room to spare. A slot's
// index is the low 16 bits of its transaction id.
func pacedSlots(cfg *Config) int {
	return int(float64(cfg.Rate)/float64(cfg.Workers)*cfg.Timeout.Seconds()*1.25) + 64
}

// lane is one worker of a paced run.
type lane interface {
	// send times out what has waited too long and sends what is due at
	// now. It says what to wait for on which descriptor (-1: none), and
	// when to call send again at the latest; done once the schedule is
	// over and nothing is outstanding.
	send(now time.Duration) (fd int, events int16, wake time.Duration, done bool)
	// receive handles what ppoll reported on the lane's descriptor.
	receive(revents int16) error
	close()
}

// runPaced plays a paced load: every lane's socket or connection is set up
// first, then the schedule starts; the lanes stop sending at its end and
// wait for the answers still due (each for at most cfg.Timeout).
func runPaced(cfg Config) (*Result, error) {
	switch {
	case cfg.Rate < 0:
		return nil, fmt.Errorf("rate %d: want requests per second above 0", cfg.Rate)
	case cfg.Timeout <= 0:
		return nil, errors.New("a paced run needs a timeout above 0")
	case cfg.Protocol == "http" && !cfg.KeepAlive:
		return nil, errors.New("a paced run over HTTP needs keep-alive (-keepalive): it pipelines requests on -workers connections")
	case cfg.Protocol != "udp" && cfg.Protocol != "http":
		return nil, fmt.Errorf("a paced run is UDP or HTTP keep-alive, not %q", cfg.Protocol)
	case cfg.Protocol == "udp" && pacedSlots(&cfg) > 1<<16:
		return nil, fmt.Errorf("%d requests a second over %d sockets with a timeout of %v can leave more than 65536 outstanding on a socket: add workers or shorten the timeout",
			cfg.Rate, cfg.Workers, cfg.Timeout)
	}
	p := &pace{measure: cfg.Warmup, end: cfg.Warmup + cfg.Duration, rate: int64(cfg.Rate), workers: int64(cfg.Workers)}
	results := make([]*stats, cfg.Workers)
	lanes := make([]lane, 0, cfg.Workers)
	defer func() {
		for _, l := range lanes {
			l.close()
		}
	}()
	for w := range cfg.Workers {
		g := newGenerator(&cfg, w)
		g.prepare()
		results[w] = &stats{}
		var l lane
		var err error
		if cfg.Protocol == "udp" {
			l, err = newUDPLane(&cfg, g, results[w], p, w)
		} else {
			l, err = newHTTPLane(&cfg, g, results[w], p, w)
		}
		if err != nil {
			return nil, err
		}
		lanes = append(lanes, l)
	}
	pacers := min(cfg.Workers, runtime.GOMAXPROCS(0))
	errs := make([]error, pacers)
	var wg sync.WaitGroup
	p.start = time.Now()
	for i := range pacers {
		var mine []lane
		for w := i; w < len(lanes); w += pacers {
			mine = append(mine, lanes[w])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = drive(p, mine)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	r := &Result{Config: cfg, Elapsed: cfg.Duration}
	for _, st := range results {
		r.merge(st)
	}
	return r, nil
}

// drive runs lanes until each is done, waiting for all of them at once.
func drive(p *pace, lanes []lane) error {
	fds := make([]unix.PollFd, len(lanes))
	done := make([]bool, len(lanes))
	for {
		now := p.now()
		wake, live := never, 0
		for i, l := range lanes {
			fds[i] = unix.PollFd{Fd: -1}
			if done[i] {
				continue
			}
			fd, events, at, finished := l.send(now)
			if finished {
				done[i] = true
				continue
			}
			live++
			fds[i] = unix.PollFd{Fd: int32(fd), Events: events}
			wake = min(wake, at)
		}
		if live == 0 {
			return nil
		}
		// At most 100 ms, as a guard: every lane names its next wake-up.
		ts := unix.NsecToTimespec(int64(min(max(wake-p.now(), 0), 100*time.Millisecond)))
		n, err := unix.Ppoll(fds, &ts, nil)
		if err == unix.EINTR || n <= 0 {
			if err != nil && err != unix.EINTR {
				return err
			}
			continue
		}
		for i := range fds {
			if fds[i].Fd >= 0 && fds[i].Revents != 0 {
				if err := lanes[i].receive(fds[i].Revents); err != nil {
					return err
				}
			}
		}
	}
}

// rawFD is a socket's descriptor, for ppoll; the socket must outlive its
// use.
func rawFD(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return -1, err
	}
	return fd, nil
}

type pacedSlot struct {
	due     time.Duration
	tx      uint32
	gen     uint16
	kind    kind
	busy    bool
	counted bool
}

// pacedBatch is how many datagrams go out or come in per system call.
const pacedBatch = 64

// udpLane sends worker w's share of the schedule on one socket, many
// requests outstanding at once, matched to replies by transaction id.
// A request due while the socket has no connection id yet is a connect;
// one due when the id is a minute old is a connect too, and announces go on
// with the old id until the new one comes.
type udpLane struct {
	cfg      *Config
	g        *generator
	st       *stats
	p        *pace
	w        int
	conn     *net.UDPConn
	bc       batchConn
	fd       int
	peerSize int
	slots    []pacedSlot
	out, in  []ipv4.Message
	outBufs  [][]byte

	connID      uint64
	connectedAt time.Duration
	connecting  bool // a connect is in flight
	req         bittorrent.AnnounceRequest
	hashes      []bittorrent.InfoHash
	next, head  int64 // the next request to send; the oldest unresolved
}

func newUDPLane(cfg *Config, g *generator, st *stats, p *pace, w int) (*udpLane, error) {
	c, err := net.Dial("udp", cfg.Target)
	if err != nil {
		return nil, err
	}
	u := &udpLane{cfg: cfg, g: g, st: st, p: p, w: w, conn: c.(*net.UDPConn), peerSize: 6,
		slots: make([]pacedSlot, pacedSlots(cfg)), out: make([]ipv4.Message, pacedBatch),
		in: make([]ipv4.Message, pacedBatch), outBufs: make([][]byte, pacedBatch)}
	u.bc = ipv4.NewPacketConn(u.conn)
	if u.conn.RemoteAddr().(*net.UDPAddr).IP.To4() == nil {
		u.bc, u.peerSize = ipv6.NewPacketConn(u.conn), 18
	}
	if u.fd, err = rawFD(u.conn); err != nil {
		u.conn.Close()
		return nil, err
	}
	for i := range u.in {
		u.in[i].Buffers = [][]byte{make([]byte, 4096)}
		u.outBufs[i] = make([]byte, 0, 1500)
		u.out[i].Buffers = [][]byte{nil}
	}
	return u, nil
}

func (u *udpLane) close() { u.conn.Close() }

func (u *udpLane) send(now time.Duration) (int, int16, time.Duration, bool) {
	cfg, p, st, n := u.cfg, u.p, u.st, int64(len(u.slots))
	// Requests go out in order, so they time out in order.
	for ; u.head < u.next; u.head++ {
		s := &u.slots[u.head%n]
		if s.busy {
			if now < s.due+cfg.Timeout {
				break
			}
			s.busy = false
			if s.kind == kindConnect {
				u.connecting = false
			}
			if s.counted {
				st.timeouts++
			}
		}
	}
	k := 0
	due := p.due(u.w, u.next)
	for k < pacedBatch && due <= now && due < p.end && now < p.end+lateGrace {
		i := u.next % n
		s := &u.slots[i]
		if s.busy { // sized never to happen: see pacedSlots
			s.busy = false
			if s.counted {
				st.timeouts++
			}
		}
		s.gen++
		s.tx = uint32(s.gen)<<16 | uint32(i)
		s.due, s.busy, s.counted = due, true, due >= p.measure
		if s.counted {
			st.sent++
			st.lag.add(now - due)
		}
		buf := u.outBufs[k][:0]
		stale := u.connID == 0 || now-u.connectedAt > reconnectEvery
		switch {
		case u.connID == 0 || (!u.connecting && (stale || u.g.isConnect())):
			s.kind, u.connecting = kindConnect, true
			buf = udpproto.AppendConnectRequest(buf, s.tx)
		case u.g.isScrape():
			s.kind = kindScrape
			u.hashes = u.g.scrape(u.hashes[:0])
			buf = udpproto.AppendScrapeRequest(buf, u.connID, s.tx, u.hashes)
		default:
			s.kind = kindAnnounce
			u.g.announce(&u.req)
			buf = udpproto.AppendAnnounceRequest(buf, u.connID, s.tx, &u.req)
		}
		u.outBufs[k] = buf
		u.out[k].Buffers[0] = buf
		k++
		u.next++
		due = p.due(u.w, u.next)
	}
	for sent := 0; sent < k; {
		m, err := u.bc.WriteBatch(u.out[sent:k], 0)
		if err != nil {
			break // ECONNREFUSED from an earlier datagram: these time out
		}
		sent += m
	}
	finished := due >= p.end || now >= p.end+lateGrace
	if finished && u.head == u.next {
		return -1, 0, 0, true
	}
	wake := never
	switch {
	case k == pacedBatch:
		wake = now // more are due
	case !finished:
		wake = due
	}
	if u.head < u.next {
		wake = min(wake, u.slots[u.head%n].due+cfg.Timeout)
	}
	return u.fd, unix.POLLIN, wake, false
}

func (u *udpLane) receive(int16) error {
	st, n := u.st, int64(len(u.slots))
	for {
		m, err := u.bc.ReadBatch(u.in, unix.MSG_DONTWAIT)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || isRefused(err) {
				return nil
			}
			return err
		}
		received := u.p.now()
		for _, msg := range u.in[:m] {
			if msg.N <= 0 {
				continue
			}
			pkt := msg.Buffers[0][:msg.N]
			h, err := udpproto.ParseResponseHeader(pkt)
			if err != nil {
				continue
			}
			i := int64(h.TransactionID & 0xffff)
			if i >= n || !u.slots[i].busy || u.slots[i].tx != h.TransactionID {
				continue
			}
			s := &u.slots[i]
			s.busy = false
			switch h.Action {
			case udpproto.ActionConnect:
				if id, err := udpproto.ParseConnectResponse(pkt); err == nil {
					u.connID, u.connectedAt, u.connecting = id, received, false
				}
			case udpproto.ActionAnnounce:
				if s.counted && len(pkt) >= 20 {
					st.peers += uint64((len(pkt) - 20) / u.peerSize)
				}
			case udpproto.ActionError:
				if s.kind == kindConnect {
					u.connecting = false
				}
				if s.counted {
					st.errors++
				}
				continue
			}
			if s.counted {
				st.responses[s.kind]++
				st.latency.add(received - s.due)
			}
		}
		if m < len(u.in) {
			return nil
		}
	}
}

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

func (h *httpLane) send(now time.Duration) (int, int16, time.Duration, bool) {
	cfg, p, st := h.cfg, h.p, h.st
	// The oldest first: if it timed out, so may others behind it.
	timedOut := 0
	for timedOut < len(h.queue) && now >= h.queue[timedOut].due+cfg.Timeout {
		if h.queue[timedOut].counted {
			st.timeouts++
		}
		timedOut++
	}
	if timedOut > 0 {
		h.queue = h.queue[timedOut:]
		h.close()
	}
	due := p.due(h.w, h.next)
	for due <= now && due < p.end && now < p.end+lateGrace {
		r := pacedRequest{due: due, counted: due >= p.measure}
		r.bytes, h.hashes, r.kind = appendHTTPRequest(nil, cfg, h.g, &h.req, h.hashes)
		if r.counted {
			st.sent++
			st.lag.add(now - due)
		}
		h.queue = append(h.queue, r)
		h.out = append(h.out, r.bytes...)
		h.next++
		due = p.due(h.w, h.next)
	}
	finished := due >= p.end || now >= p.end+lateGrace
	if finished && len(h.queue) == 0 {
		return -1, 0, 0, true
	}
	if h.fd < 0 && len(h.queue) > 0 && now >= h.dialAfter && h.dial() != nil {
		h.dialAfter = now + 10*time.Millisecond // out of descriptors or ports
	}
	if h.fd >= 0 && !h.connecting && len(h.out) > 0 {
		m, err := unix.Write(h.fd, h.out)
		if m > 0 {
			h.out = h.out[:copy(h.out, h.out[m:])]
		}
		if err != nil && err != unix.EAGAIN {
			h.retry()
		}
	}
	wake := never
	if !finished {
		wake = due
	}
	if len(h.queue) > 0 {
		wake = min(wake, h.queue[0].due+cfg.Timeout)
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
	st, received := h.st, h.p.now()
	for len(h.queue) > 0 {
		used, body, keep, err := parseResponse(h.in, h.eof)
		if err != nil || used == 0 {
			if err != nil || h.eof {
				h.close()
			}
			return nil
		}
		r := h.queue[0]
		h.queue = h.queue[1:]
		if r.counted {
			if bytes.HasPrefix(body, []byte("d14:failure reason")) {
				st.errors++
			} else {
				st.responses[r.kind]++
				st.latency.add(received - r.due)
				if r.kind == kindAnnounce {
					st.peers += uint64(countPeers(body))
				}
			}
		}
		h.in = h.in[:copy(h.in, h.in[used:])]
		if !keep {
			h.close()
			return nil
		}
	}
	if h.eof {
		h.close()
	}
	return nil
}

// parseResponse reads the first HTTP response in b: how many bytes it
// takes (0 if it is not all there yet), its body, and whether the
// connection carries more. A response without a length ends with the
// connection (eof).
func parseResponse(b []byte, eof bool) (used int, body []byte, keep bool, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if eof && len(b) > 0 {
			return 0, nil, false, errBadResponse
		}
		return 0, nil, false, nil
	}
	head := bytes.ToLower(b[:end])
	keep = !bytes.Contains(head, []byte("connection: close")) && bytes.HasPrefix(head, []byte("http/1.1"))
	start := end + 4
	i := bytes.Index(head, []byte("content-length:"))
	if i < 0 {
		if !eof {
			return 0, nil, false, nil
		}
		return len(b), b[start:], false, nil
	}
	rest := head[i+len("content-length:"):]
	if j := bytes.IndexByte(rest, '\r'); j >= 0 {
		rest = rest[:j]
	}
	length, err := strconv.Atoi(string(bytes.TrimSpace(rest)))
	if err != nil || length < 0 {
		return 0, nil, false, errBadResponse
	}
	if len(b)-start < length {
		if eof {
			return 0, nil, false, errBadResponse
		}
		return 0, nil, false, nil
	}
	return start + length, b[start : start+length], keep, nil
}
