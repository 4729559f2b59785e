package loadgen

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/udpproto"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

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

// send times out what waited too long, sends what is due at now in one
// batch, and says when to come back.
func (u *udpLane) send(now time.Duration) (int, int16, time.Duration, bool) {
	u.expire(now)
	k, due := u.composeDue(now)
	for sent := 0; sent < k; {
		m, err := u.bc.WriteBatch(u.out[sent:k], 0)
		if err != nil {
			break // ECONNREFUSED from an earlier datagram: these time out
		}
		sent += m
	}
	p := u.p
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
		wake = min(wake, u.slots[u.head%int64(len(u.slots))].due+u.cfg.Timeout)
	}
	return u.fd, unix.POLLIN, wake, false
}

// expire counts the requests unanswered for the timeout as timed out.
// Requests go out in order, so they time out in order.
func (u *udpLane) expire(now time.Duration) {
	n := int64(len(u.slots))
	for ; u.head < u.next; u.head++ {
		s := &u.slots[u.head%n]
		if s.busy {
			if now < s.due+u.cfg.Timeout {
				break
			}
			s.busy = false
			if s.kind == kindConnect {
				u.connecting = false
			}
			if s.counted {
				u.st.timeouts++
			}
		}
	}
}

// composeDue composes up to a batch of the requests due by now into
// u.out: how many, and when the next one is due.
func (u *udpLane) composeDue(now time.Duration) (k int, due time.Duration) {
	p, st, n := u.p, u.st, int64(len(u.slots))
	due = p.due(u.w, u.next)
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
		u.outBufs[k] = u.appendRequest(u.outBufs[k][:0], s, now)
		u.out[k].Buffers[0] = u.outBufs[k]
		k++
		u.next++
		due = p.due(u.w, u.next)
	}
	return k, due
}

// appendRequest appends slot s's request: a connect while the lane has no
// connection id or its id is stale (or now and then, as clients do), else
// a scrape or an announce.
func (u *udpLane) appendRequest(buf []byte, s *pacedSlot, now time.Duration) []byte {
	stale := u.connID == 0 || now-u.connectedAt > reconnectEvery
	switch {
	case u.connID == 0 || (!u.connecting && (stale || u.g.isConnect())):
		s.kind, u.connecting = kindConnect, true
		return udpproto.AppendConnectRequest(buf, s.tx)
	case u.g.isScrape():
		s.kind = kindScrape
		u.hashes = u.g.scrape(u.hashes[:0])
		return udpproto.AppendScrapeRequest(buf, u.connID, s.tx, u.hashes)
	default:
		s.kind = kindAnnounce
		u.g.announce(&u.req)
		return udpproto.AppendAnnounceRequest(buf, u.connID, s.tx, &u.req)
	}
}

// receive reads every datagram waiting, a batch at a time.
func (u *udpLane) receive(int16) error {
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
			if msg.N > 0 {
				u.answer(msg.Buffers[0][:msg.N], received)
			}
		}
		if m < len(u.in) {
			return nil
		}
	}
}

// answer matches a reply to its slot by transaction id and counts it.
func (u *udpLane) answer(pkt []byte, received time.Duration) {
	h, err := udpproto.ParseResponseHeader(pkt)
	if err != nil {
		return
	}
	i := int64(h.TransactionID & 0xffff)
	if i >= int64(len(u.slots)) || !u.slots[i].busy || u.slots[i].tx != h.TransactionID {
		return
	}
	s, st := &u.slots[i], u.st
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
		return
	}
	if s.counted {
		st.responses[s.kind]++
		st.latency.add(received - s.due)
	}
}
