package loadgen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/udpproto"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn sends and receives many datagrams per system call
// (sendmmsg/recvmmsg); ipv4 and ipv6 share the Message type.
type batchConn interface {
	ReadBatch([]ipv4.Message, int) (int, error)
	WriteBatch([]ipv4.Message, int) (int, error)
}

// reconnectEvery is how often a client gets a new connection id, well
// within any tracker's lifetime for one.
const reconnectEvery = time.Minute

type slot struct {
	tx   uint32
	kind kind
	sent time.Time
	busy bool
	gen  uint16
	peer int64 // in a fill, the peer announced
}

// fillSilence is how long a fill waits for any answer before it gives up
// on the tracker, in units of the request timeout.
const fillSilence = 10

// udpClient is one worker of a closed-loop UDP run (or of a fill): one
// socket with up to cfg.InFlight requests outstanding, each in a slot
// whose index is the low 16 bits of its transaction id.
type udpClient struct {
	cfg      *Config
	g        *generator
	st       *stats
	counting *atomic.Bool
	conn     *net.UDPConn
	bc       batchConn
	peerSize int // of a peer in an announce reply: 6 (IPv4) or 18 (IPv6)
	slots    []slot
	out, in  []ipv4.Message
	outBufs  [][]byte

	connID      uint64
	connectedAt time.Time
	connecting  bool // a connect is in flight
	req         bittorrent.AnnounceRequest
	hashes      []bittorrent.InfoHash
	lastAnswer  time.Time
}

// runUDP keeps cfg.InFlight requests outstanding on one socket until stop.
// A fill ends with an error once nothing has answered for fillSilence
// timeouts: it would otherwise re-send to a dead address for ever.
func runUDP(cfg *Config, g *generator, st *stats, counting *atomic.Bool, stop <-chan struct{}) error {
	if cfg.InFlight > 1<<16 {
		return errors.New("at most 65536 requests in flight per socket")
	}
	c, err := dialUDP(cfg, g, st, counting)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		now := time.Now()
		if g.fill != nil && now.Sub(c.lastAnswer) > fillSilence*cfg.Timeout {
			return fmt.Errorf("no answer from %s in %v", cfg.Target, fillSilence*cfg.Timeout)
		}
		n := c.compose(now)
		if c.idle() && g.exhausted() {
			return nil
		}
		if closed := c.write(n); closed {
			return nil
		}
		if err := c.read(); err != nil {
			return err
		}
	}
}

// dialUDP opens a worker's socket and its buffers.
func dialUDP(cfg *Config, g *generator, st *stats, counting *atomic.Bool) (*udpClient, error) {
	conn, err := net.Dial("udp", cfg.Target)
	if err != nil {
		return nil, err
	}
	c := &udpClient{cfg: cfg, g: g, st: st, counting: counting, conn: conn.(*net.UDPConn), peerSize: 6,
		slots: make([]slot, cfg.InFlight), out: make([]ipv4.Message, cfg.InFlight), outBufs: make([][]byte, cfg.InFlight),
		in: make([]ipv4.Message, cfg.InFlight), lastAnswer: time.Now()}
	c.bc = ipv4.NewPacketConn(c.conn)
	if c.conn.RemoteAddr().(*net.UDPAddr).IP.To4() == nil {
		c.bc, c.peerSize = ipv6.NewPacketConn(c.conn), 18
	}
	for i := range c.in {
		c.in[i].Buffers = [][]byte{make([]byte, 4096)}
	}
	for i := range c.outBufs {
		c.outBufs[i] = make([]byte, 0, 1500)
		c.out[i].Buffers = [][]byte{nil}
	}
	return c, nil
}

// compose times out the slots waiting too long and composes a request in
// every free slot, into c.out; it returns how many.
func (c *udpClient) compose(now time.Time) (n int) {
	for i := range c.slots {
		s := &c.slots[i]
		if s.busy {
			c.expire(s, now)
			continue
		}
		if c.fillSlot(i, now, n) {
			n++
		}
	}
	return n
}

// expire frees slot s if its request has waited past the timeout. A fill
// sends a timed-out announce's peer again: it loses no peer.
func (c *udpClient) expire(s *slot, now time.Time) {
	if now.Sub(s.sent) <= c.cfg.Timeout {
		return
	}
	s.busy = false
	if s.kind == kindConnect {
		c.connecting = false
	}
	if s.kind == kindAnnounce && c.g.fill != nil {
		c.g.retry = append(c.g.retry, s.peer)
	}
	if c.counting.Load() {
		c.st.timeouts++
	}
}

// fillSlot composes free slot i's next request into c.out[n], unless it
// must wait: for the connect under way, or, in a fill, for a peer left to
// announce.
func (c *udpClient) fillSlot(i int, now time.Time, n int) bool {
	stale := c.connID == 0 || now.Sub(c.connectedAt) > reconnectEvery
	if stale && c.connecting {
		return false // wait for the connect under way
	}
	fillPeer := int64(-1)
	if !stale && c.g.fill != nil {
		j, ok := c.g.claimFillPeer()
		if !ok {
			return false
		}
		fillPeer = j
	}
	s := &c.slots[i]
	s.gen++
	s.tx = uint32(s.gen)<<16 | uint32(i)
	s.sent, s.busy = now, true
	c.outBufs[n] = c.appendRequest(c.outBufs[n][:0], s, stale, fillPeer)
	c.out[n].Buffers[0] = c.outBufs[n]
	return true
}

// appendRequest appends slot s's request: a connect if the connection id
// is stale (or now and then, as clients do), else a scrape or an announce
// (of fillPeer in a fill).
func (c *udpClient) appendRequest(buf []byte, s *slot, stale bool, fillPeer int64) []byte {
	switch {
	case stale || (!c.connecting && c.g.isConnect()):
		s.kind, c.connecting = kindConnect, true
		return udpproto.AppendConnectRequest(buf, s.tx)
	case c.g.isScrape():
		s.kind = kindScrape
		c.hashes = c.g.scrape(c.hashes[:0])
		return udpproto.AppendScrapeRequest(buf, c.connID, s.tx, c.hashes)
	default:
		s.kind = kindAnnounce
		if fillPeer >= 0 {
			c.g.fillAnnounce(&c.req, fillPeer)
		} else {
			c.g.announce(&c.req)
		}
		s.peer = fillPeer
		return udpproto.AppendAnnounceRequest(buf, c.connID, s.tx, &c.req)
	}
}

// idle reports whether no request is outstanding.
func (c *udpClient) idle() bool {
	for i := range c.slots {
		if c.slots[i].busy {
			return false
		}
	}
	return true
}

// write sends the n requests composed; true if the socket is closed.
func (c *udpClient) write(n int) (closed bool) {
	for sent := 0; sent < n; {
		k, err := c.bc.WriteBatch(c.out[sent:n], 0)
		if err != nil {
			// ECONNREFUSED from an earlier datagram: the tracker is
			// not (yet) listening. Those requests time out.
			return errors.Is(err, net.ErrClosed)
		}
		sent += k
	}
	return false
}

// read takes the replies that come within 20 ms.
func (c *udpClient) read() error {
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	k, err := c.bc.ReadBatch(c.in, 0)
	if err != nil {
		if !errors.Is(err, os.ErrDeadlineExceeded) && !isRefused(err) {
			return err
		}
		k = 0
	}
	received := time.Now()
	for _, m := range c.in[:k] {
		if m.N > 0 {
			c.answer(m.Buffers[0][:m.N], received)
		}
	}
	return nil
}

// answer matches a reply to its slot by transaction id and counts it.
func (c *udpClient) answer(pkt []byte, received time.Time) {
	h, err := udpproto.ParseResponseHeader(pkt)
	if err != nil {
		return
	}
	i := int(h.TransactionID & 0xffff)
	if i >= len(c.slots) || !c.slots[i].busy || c.slots[i].tx != h.TransactionID {
		return
	}
	s, st := &c.slots[i], c.st
	s.busy = false
	c.lastAnswer = received
	count := c.counting.Load()
	switch h.Action {
	case udpproto.ActionConnect:
		if id, err := udpproto.ParseConnectResponse(pkt); err == nil {
			c.connID, c.connectedAt, c.connecting = id, received, false
		}
	case udpproto.ActionAnnounce:
		if count && len(pkt) >= 20 {
			st.peers += uint64((len(pkt) - 20) / c.peerSize)
		}
	case udpproto.ActionError:
		if s.kind == kindConnect {
			c.connecting = false
		}
		if count {
			st.errors++
		}
		return
	}
	if count {
		st.responses[s.kind]++
		st.latency.add(received.Sub(s.sent))
	}
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
