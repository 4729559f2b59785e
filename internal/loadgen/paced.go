package loadgen

// A paced run (Config.Rate) is open loop: requests go out on a fixed
// schedule whether or not earlier ones were answered, so that a tracker
// falling behind shows as queueing delay and timeouts, not as a generator
// that slows down with it. Latency is measured from each request's
// scheduled time, not from when it actually went out, so that the
// generator's own delays are not hidden (no coordinated omission); how late
// requests went out is reported beside it.
//
// Waiting is done with ppoll, whose timeout is precise to microseconds: the
// Go runtime's timers (deadlines, time.Sleep) wake a quiet process to the
// millisecond, which would add up to a millisecond of the generator's own
// to every latency.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
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

// pace is a paced run's schedule, shared by its workers: worker w's k-th
// request is due at (k*workers + w)/rate seconds after start, so that the
// workers' requests interleave evenly.
type pace struct {
	start   time.Time     // set before begin is closed
	begin   chan struct{} // closed when the schedule starts
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

// pacedSlots is how many requests a UDP socket can have outstanding in a
// paced run: all those of the last timeout, with room to spare. A slot's
// index is the low 16 bits of its transaction id.
func pacedSlots(cfg *Config) int {
	return int(float64(cfg.Rate)/float64(cfg.Workers)*cfg.Timeout.Seconds()*1.25) + 64
}

// runPaced plays a paced load: every worker's socket or connection is set
// up first, then the schedule starts; the workers stop sending at its end
// and wait for the answers still due (each for at most cfg.Timeout).
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
	p := &pace{begin: make(chan struct{}), measure: cfg.Warmup, end: cfg.Warmup + cfg.Duration,
		rate: int64(cfg.Rate), workers: int64(cfg.Workers)}
	results := make([]*stats, cfg.Workers)
	errs := make([]error, cfg.Workers)
	var ready, done sync.WaitGroup
	for w := range cfg.Workers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			gen := newGenerator(&cfg, w)
			st := &stats{}
			results[w] = st
			if cfg.Protocol == "udp" {
				errs[w] = pacedUDP(&cfg, gen, st, p, w, ready.Done)
			} else {
				errs[w] = pacedHTTP(&cfg, gen, st, p, w, ready.Done)
			}
		}()
	}
	ready.Wait()
	p.start = time.Now()
	close(p.begin)
	done.Wait()
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

// waitFD waits up to d for events on fd (none if fd is negative: a precise
// sleep) and returns those that happened. An interrupted wait returns none.
func waitFD(fd int, events int16, d time.Duration) (int16, error) {
	ts := unix.NsecToTimespec(int64(min(max(d, 0), 100*time.Millisecond)))
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := unix.Ppoll(fds, &ts, nil)
	if err == unix.EINTR {
		return 0, nil
	}
	if err != nil || n == 0 {
		return 0, err
	}
	return fds[0].Revents, nil
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

// pacedUDP sends worker w's share of the schedule on one socket, many
// requests outstanding at once, matched to replies by transaction id.
// A request due while the socket has no connection id yet is a connect;
// one due when the id is a minute old is a connect too, and announces go on
// with the old id until the new one comes.
func pacedUDP(cfg *Config, g *generator, st *stats, p *pace, w int, ready func()) error {
	readied := false
	defer func() {
		if !readied {
			ready()
		}
	}()
	c, err := net.Dial("udp", cfg.Target)
	if err != nil {
		return err
	}
	conn := c.(*net.UDPConn)
	defer conn.Close()
	var bc batchConn = ipv4.NewPacketConn(conn)
	peerSize := 6
	if conn.RemoteAddr().(*net.UDPAddr).IP.To4() == nil {
		bc, peerSize = ipv6.NewPacketConn(conn), 18
	}
	fd, err := rawFD(conn)
	if err != nil {
		return err
	}
	slots := make([]pacedSlot, pacedSlots(cfg))
	n := int64(len(slots))
	out := make([]ipv4.Message, pacedBatch)
	outBufs := make([][]byte, pacedBatch)
	in := make([]ipv4.Message, pacedBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 4096)}
		outBufs[i] = make([]byte, 0, 1500)
		out[i].Buffers = [][]byte{nil}
	}
	var (
		connID      uint64
		connectedAt time.Duration
		connecting  bool // a connect is in flight
		req         bittorrent.AnnounceRequest
		hashes      []bittorrent.InfoHash
		next, head  int64 // the next request to send; the oldest unresolved
	)
	readied = true
	ready()
	<-p.begin
	for {
		now := p.now()
		// Requests go out in order, so they time out in order.
		for ; head < next; head++ {
			s := &slots[head%n]
			if s.busy {
				if now < s.due+cfg.Timeout {
					break
				}
				s.busy = false
				if s.kind == kindConnect {
					connecting = false
				}
				if s.counted {
					st.timeouts++
				}
			}
		}
		k := 0
		due := p.due(w, next)
		for k < pacedBatch && due <= now && due < p.end && now < p.end+lateGrace {
			i := next % n
			s := &slots[i]
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
			buf := outBufs[k][:0]
			stale := connID == 0 || now-connectedAt > reconnectEvery
			switch {
			case connID == 0 || (!connecting && (stale || g.isConnect())):
				s.kind, connecting = kindConnect, true
				buf = udpproto.AppendConnectRequest(buf, s.tx)
			case g.isScrape():
				s.kind = kindScrape
				hashes = g.scrape(hashes[:0])
				buf = udpproto.AppendScrapeRequest(buf, connID, s.tx, hashes)
			default:
				s.kind = kindAnnounce
				g.announce(&req)
				buf = udpproto.AppendAnnounceRequest(buf, connID, s.tx, &req)
			}
			outBufs[k] = buf
			out[k].Buffers[0] = buf
			k++
			next++
			due = p.due(w, next)
		}
		for sent := 0; sent < k; {
			m, err := bc.WriteBatch(out[sent:k], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				break // ECONNREFUSED from an earlier datagram: these time out
			}
			sent += m
		}
		finished := due >= p.end || now >= p.end+lateGrace
		if finished && head == next {
			return nil
		}
		wait := time.Duration(0)
		if k < pacedBatch { // else more are due now
			wake := time.Duration(1<<63 - 1)
			if !finished {
				wake = due
			}
			if head < next {
				wake = min(wake, slots[head%n].due+cfg.Timeout)
			}
			wait = wake - p.now()
		}
		ev, err := waitFD(fd, unix.POLLIN, wait)
		if err != nil {
			return err
		}
		if ev == 0 {
			continue
		}
		for {
			m, err := bc.ReadBatch(in, unix.MSG_DONTWAIT)
			if err != nil {
				if errors.Is(err, syscall.EAGAIN) || isRefused(err) {
					break
				}
				return err
			}
			received := p.now()
			for _, msg := range in[:m] {
				if msg.N <= 0 {
					continue
				}
				pkt := msg.Buffers[0][:msg.N]
				h, err := udpproto.ParseResponseHeader(pkt)
				if err != nil {
					continue
				}
				i := int64(h.TransactionID & 0xffff)
				if i >= n || !slots[i].busy || slots[i].tx != h.TransactionID {
					continue
				}
				s := &slots[i]
				s.busy = false
				switch h.Action {
				case udpproto.ActionConnect:
					if id, err := udpproto.ParseConnectResponse(pkt); err == nil {
						connID, connectedAt, connecting = id, received, false
					}
				case udpproto.ActionAnnounce:
					if s.counted && len(pkt) >= 20 {
						st.peers += uint64((len(pkt) - 20) / peerSize)
					}
				case udpproto.ActionError:
					if s.kind == kindConnect {
						connecting = false
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
			if m < len(in) {
				break
			}
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

// httpPipe is one keep-alive connection of a paced run, with the requests
// it carries in order. It is a raw non-blocking socket, connect included,
// so that nothing the tracker does (not accepting, not reading) can hold
// up the schedule.
type httpPipe struct {
	fd         int            // -1: no connection
	connecting bool           // until the socket is writable
	queue      []pacedRequest // unanswered, oldest first
	out        []byte         // the queue's bytes not yet written
	in         []byte         // read, not yet matched to a request
	eof        bool
}

// dial starts a connection to sa.
func (h *httpPipe) dial(sa unix.Sockaddr) error {
	family := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return err
	}
	h.fd, h.connecting = fd, true
	return nil
}

// close ends the connection; the requests it did not answer go out again,
// whole, on the next one.
func (h *httpPipe) close() {
	if h.fd >= 0 {
		unix.Close(h.fd)
	}
	h.fd, h.connecting, h.in, h.eof = -1, false, h.in[:0], false
	h.out = h.out[:0]
	for _, r := range h.queue {
		h.out = append(h.out, r.bytes...)
	}
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

// pacedHTTP sends worker w's share of the schedule on one keep-alive
// connection, pipelined: a request goes out when it is due even if earlier
// ones are unanswered, and replies are matched to requests in order. When
// the tracker closes the connection (Connection: close after its requests
// per connection, or an error), or when the oldest request times out (the
// ones behind it cannot be answered before it), the connection is closed
// and the requests still unanswered are sent again on a new one; their
// latency still counts from their scheduled time.
func pacedHTTP(cfg *Config, g *generator, st *stats, p *pace, w int, ready func()) error {
	h := &httpPipe{fd: -1, in: make([]byte, 0, 64<<10)}
	defer h.close()
	sa, err := sockaddr(cfg.Target)
	if err != nil {
		ready()
		return err
	}
	var (
		req       bittorrent.AnnounceRequest
		hashes    []bittorrent.InfoHash
		next      int64
		dialAfter time.Duration
	)
	h.dial(sa) // ahead of the schedule; a failure is tried again then
	ready()
	<-p.begin
	buf := make([]byte, 64<<10)
	for {
		now := p.now()
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
		due := p.due(w, next)
		for due <= now && due < p.end && now < p.end+lateGrace {
			r := pacedRequest{due: due, counted: due >= p.measure}
			r.bytes, hashes, r.kind = appendHTTPRequest(nil, cfg, g, &req, hashes)
			if r.counted {
				st.sent++
				st.lag.add(now - due)
			}
			h.queue = append(h.queue, r)
			h.out = append(h.out, r.bytes...)
			next++
			due = p.due(w, next)
		}
		finished := due >= p.end || now >= p.end+lateGrace
		if finished && len(h.queue) == 0 {
			return nil
		}
		if h.fd < 0 && len(h.queue) > 0 && now >= dialAfter && h.dial(sa) != nil {
			dialAfter = now + 10*time.Millisecond // out of descriptors or ports
		}
		if h.fd >= 0 && !h.connecting && len(h.out) > 0 {
			m, err := unix.Write(h.fd, h.out)
			if m > 0 {
				h.out = h.out[:copy(h.out, h.out[m:])]
			}
			if err != nil && err != unix.EAGAIN {
				h.close()
				dialAfter = now + 10*time.Millisecond
				continue
			}
		}
		wake := time.Duration(1<<63 - 1)
		if !finished {
			wake = due
		}
		if len(h.queue) > 0 {
			wake = min(wake, h.queue[0].due+cfg.Timeout)
			if h.fd < 0 {
				wake = min(wake, dialAfter)
			}
		}
		events := int16(unix.POLLIN)
		if h.connecting {
			events = unix.POLLOUT
		} else if len(h.out) > 0 {
			events |= unix.POLLOUT // and read meanwhile: the tracker may be waiting for its replies to be taken
		}
		ev, err := waitFD(h.fd, events, wake-p.now())
		if err != nil {
			return err
		}
		if h.connecting {
			if ev == 0 {
				continue
			}
			if e, err := unix.GetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
				h.close() // refused: not listening (yet)
				dialAfter = p.now() + 10*time.Millisecond
				continue
			}
			h.connecting = false
			continue
		}
		if ev&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) == 0 {
			continue
		}
		m, err := unix.Read(h.fd, buf)
		switch {
		case m > 0:
			h.in = append(h.in, buf[:m]...)
		case err == unix.EAGAIN:
			continue
		default:
			h.eof = true
		}
		received := p.now()
		for len(h.queue) > 0 {
			used, body, keep, err := parseResponse(h.in, h.eof)
			if err != nil || used == 0 {
				if err != nil || h.eof {
					h.close()
				}
				break
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
				break
			}
		}
		if h.eof && h.fd >= 0 {
			h.close()
		}
	}
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
