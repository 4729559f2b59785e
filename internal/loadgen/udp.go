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

// runUDP keeps cfg.InFlight requests outstanding on one socket until stop.
// A fill ends with an error once nothing has answered for fillSilence
// timeouts: it would otherwise re-send to a dead address for ever.
func runUDP(cfg *Config, g *generator, st *stats, counting *atomic.Bool, stop <-chan struct{}) error {
	if cfg.InFlight > 1<<16 {
		return errors.New("at most 65536 requests in flight per socket")
	}
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
	slots := make([]slot, cfg.InFlight)
	out := make([]ipv4.Message, cfg.InFlight)
	outBufs := make([][]byte, cfg.InFlight)
	in := make([]ipv4.Message, cfg.InFlight)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 4096)}
	}
	for i := range outBufs {
		outBufs[i] = make([]byte, 0, 1500)
		out[i].Buffers = [][]byte{nil}
	}
	var (
		connID      uint64
		connectedAt time.Time
		connecting  bool // a connect is in flight
		req         bittorrent.AnnounceRequest
		hashes      []bittorrent.InfoHash
		lastAnswer  = time.Now()
	)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		now := time.Now()
		if g.fill != nil && now.Sub(lastAnswer) > fillSilence*cfg.Timeout {
			return fmt.Errorf("no answer from %s in %v", cfg.Target, fillSilence*cfg.Timeout)
		}
		n := 0
		idle := true
		for i := range slots {
			s := &slots[i]
			if s.busy {
				if now.Sub(s.sent) > cfg.Timeout {
					s.busy = false
					if s.kind == kindConnect {
						connecting = false
					}
					if s.kind == kindAnnounce && g.fill != nil {
						g.retry = append(g.retry, s.peer) // a fill loses no peer
					}
					if counting.Load() {
						st.timeouts++
					}
				}
				continue
			}
			stale := connID == 0 || now.Sub(connectedAt) > reconnectEvery
			if stale && connecting {
				continue // wait for the connect under way
			}
			fillPeer := int64(-1)
			if !stale && g.fill != nil {
				j, ok := g.claimFillPeer()
				if !ok {
					continue
				}
				fillPeer = j
			}
			s.gen++
			s.tx = uint32(s.gen)<<16 | uint32(i)
			s.sent, s.busy = now, true
			buf := outBufs[n][:0]
			switch {
			case stale || (!connecting && g.isConnect()):
				s.kind, connecting = kindConnect, true
				buf = udpproto.AppendConnectRequest(buf, s.tx)
			case g.isScrape():
				s.kind = kindScrape
				hashes = g.scrape(hashes[:0])
				buf = udpproto.AppendScrapeRequest(buf, connID, s.tx, hashes)
			default:
				s.kind = kindAnnounce
				if fillPeer >= 0 {
					g.fillAnnounce(&req, fillPeer)
				} else {
					g.announce(&req)
				}
				s.peer = fillPeer
				buf = udpproto.AppendAnnounceRequest(buf, connID, s.tx, &req)
			}
			outBufs[n] = buf
			out[n].Buffers[0] = buf
			n++
		}
		for i := range slots {
			idle = idle && !slots[i].busy
		}
		if idle && g.exhausted() {
			return nil
		}
		for sent := 0; sent < n; {
			k, err := bc.WriteBatch(out[sent:n], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				// ECONNREFUSED from an earlier datagram: the tracker is
				// not (yet) listening. Those requests time out.
				break
			}
			sent += k
		}
		conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		k, err := bc.ReadBatch(in, 0)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) && !isRefused(err) {
				return err
			}
			k = 0
		}
		received := time.Now()
		for _, m := range in[:k] {
			if m.N <= 0 {
				continue
			}
			pkt := m.Buffers[0][:m.N]
			h, err := udpproto.ParseResponseHeader(pkt)
			if err != nil {
				continue
			}
			i := int(h.TransactionID & 0xffff)
			if i >= len(slots) || !slots[i].busy || slots[i].tx != h.TransactionID {
				continue
			}
			s := &slots[i]
			s.busy = false
			lastAnswer = received
			count := counting.Load()
			switch h.Action {
			case udpproto.ActionConnect:
				if id, err := udpproto.ParseConnectResponse(pkt); err == nil {
					connID, connectedAt, connecting = id, received, false
				}
			case udpproto.ActionAnnounce:
				if count && len(pkt) >= 20 {
					st.peers += uint64((len(pkt) - 20) / peerSize)
				}
			case udpproto.ActionError:
				if s.kind == kindConnect {
					connecting = false
				}
				if count {
					st.errors++
				}
				continue
			}
			if count {
				st.responses[s.kind]++
				st.latency.add(received.Sub(s.sent))
			}
		}
	}
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
