package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/udpproto"
	"golang.org/x/net/ipv4"
)

// FloodConfig describes an abusive load over UDP: one source sending
// connects as fast as it can, beside one well-behaved client; or one
// connect from each of many distinct source addresses.
type FloodConfig struct {
	Target   string
	Duration time.Duration
	// Source is the flooder's local address (such as 127.0.0.2).
	Source string
	// Rate caps the flood, in datagrams per second; 0: as fast as it can.
	Rate int
	// Client, if set, is a well-behaved client's local address: it
	// announces ClientRate times a second, one request at a time.
	Client     string
	ClientRate float64
	// Sources, instead of a flood: send one connect from each of this many
	// distinct addresses in 127.0.0.0/8 (127.1.0.0 onwards), set per packet
	// with IP_PKTINFO, and count the replies.
	Sources int
}

// FloodResult is what a flood saw.
type FloodResult struct {
	Elapsed                    time.Duration
	Sent, Answered             uint64 // the flooder's, or the many sources'
	ClientSent, ClientAnswered uint64
}

// Fprint writes the result for a person.
func (r *FloodResult) Fprint(w io.Writer, cfg *FloodConfig) {
	secs := r.Elapsed.Seconds()
	if cfg.Sources > 0 {
		fmt.Fprintf(w, "sources: %d addresses sent one connect each in %.1fs (%.0f/s); answered %d\n",
			r.Sent, secs, float64(r.Sent)/secs, r.Answered)
		return
	}
	fmt.Fprintf(w, "flooder %s: sent %d (%.0f/s), answered %d (%.1f/s, %.3f%% of what it sent)\n",
		cfg.Source, r.Sent, float64(r.Sent)/secs, r.Answered, float64(r.Answered)/secs, 100*float64(r.Answered)/float64(max(r.Sent, 1)))
	if cfg.Client != "" {
		fmt.Fprintf(w, "client %s: sent %d (%.1f/s), answered %d (%.1f%%)\n",
			cfg.Client, r.ClientSent, float64(r.ClientSent)/secs, r.ClientAnswered, 100*float64(r.ClientAnswered)/float64(max(r.ClientSent, 1)))
		fmt.Fprintf(w, "flooder's share of answers: %.1f%%\n", 100*float64(r.Answered)/float64(max(r.Answered+r.ClientAnswered, 1)))
	}
}

// floodBatch is how many datagrams go out per sendmmsg.
const floodBatch = 64

// sourcesWindow is how many of the many sources' packets may be unanswered
// at once.
const sourcesWindow = 128

// Flood runs cfg.
func Flood(cfg FloodConfig) (*FloodResult, error) {
	raddr, err := net.ResolveUDPAddr("udp4", cfg.Target)
	if err != nil {
		return nil, err
	}
	if cfg.Sources > 0 {
		return manySources(cfg, raddr)
	}
	return flood(cfg, raddr)
}

func flood(cfg FloodConfig, raddr *net.UDPAddr) (*FloodResult, error) {
	conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(cfg.Source)}, raddr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	pc := ipv4.NewPacketConn(conn)
	r := &FloodResult{}
	var answered atomic.Uint64
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); countReplies(pc, &answered, stopped) }()
	if cfg.Client != "" {
		wg.Add(1)
		go func() { defer wg.Done(); politeClient(cfg, raddr, r, stopped) }()
	}
	msgs := make([]ipv4.Message, floodBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{udpproto.AppendConnectRequest(nil, uint32(i))}
	}
	start := time.Now()
	for elapsed := time.Duration(0); elapsed < cfg.Duration; elapsed = time.Since(start) {
		if cfg.Rate > 0 && r.Sent > uint64(elapsed.Seconds()*float64(cfg.Rate)) {
			time.Sleep(time.Millisecond)
			continue
		}
		n, err := pc.WriteBatch(msgs, 0)
		if err != nil && !isRefused(err) {
			return nil, err
		}
		r.Sent += uint64(n)
	}
	r.Elapsed = time.Since(start)
	close(stopped)
	wg.Wait()
	r.Answered = answered.Load()
	return r, nil
}

// countReplies counts datagrams until stopped, and for a moment after, so
// that replies still in flight are counted.
func countReplies(pc *ipv4.PacketConn, answered *atomic.Uint64, stopped <-chan struct{}) {
	msgs := make([]ipv4.Message, floodBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 64)}
	}
	for {
		select {
		case <-stopped:
			pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			stopped = nil
		default:
			if stopped != nil {
				pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			}
		}
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if stopped == nil && errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) && !isRefused(err) {
				return
			}
			continue
		}
		answered.Add(uint64(n))
	}
}

// politeClient announces at cfg.ClientRate, one request at a time, each
// given a second to be answered.
func politeClient(cfg FloodConfig, raddr *net.UDPAddr, r *FloodResult, stopped <-chan struct{}) {
	conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(cfg.Client)}, raddr)
	if err != nil {
		return
	}
	defer conn.Close()
	buf := make([]byte, 2048)
	exchange := func(pkt []byte, tx uint32) []byte {
		r.ClientSent++
		conn.Write(pkt)
		conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return nil
			}
			if n >= 8 && binary.BigEndian.Uint32(buf[4:8]) == tx {
				r.ClientAnswered++
				return buf[:n]
			}
		}
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.ClientRate))
	defer tick.Stop()
	var id uint64
	var tx uint32
	req := bittorrent.AnnounceRequest{InfoHash: InfoHash(1, 0), Port: 6881, Left: 1, NumWant: 50}
	copy(req.PeerID[:], "-TX0001-polite-peer-")
	for {
		select {
		case <-stopped:
			return
		case <-tick.C:
		}
		tx++
		if id == 0 {
			if reply := exchange(udpproto.AppendConnectRequest(nil, tx), tx); len(reply) >= 16 {
				id = binary.BigEndian.Uint64(reply[8:16])
			}
			continue
		}
		if reply := exchange(udpproto.AppendAnnounceRequest(nil, id, tx, &req), tx); reply == nil {
			id = 0 // unanswered: connect again
		}
	}
}

// manySources sends one connect from each of cfg.Sources addresses.
func manySources(cfg FloodConfig, raddr *net.UDPAddr) (*FloodResult, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	pc := ipv4.NewPacketConn(conn)
	var answered atomic.Uint64
	stopped := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); countReplies(pc, &answered, stopped) }()
	r := &FloodResult{}
	msgs := make([]ipv4.Message, floodBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{udpproto.AppendConnectRequest(nil, uint32(i))}
		msgs[i].Addr = raddr
	}
	start := time.Now()
	for next := 0; next < cfg.Sources; {
		n := min(floodBatch, cfg.Sources-next)
		for i := range n {
			a := next + i
			src := net.IPv4(127, byte(1+a>>16), byte(a>>8), byte(a))
			msgs[i].OOB = (&ipv4.ControlMessage{Src: src}).Marshal()
		}
		sent, err := pc.WriteBatch(msgs[:n], 0)
		if err != nil && !isRefused(err) {
			return nil, fmt.Errorf("sending from 127.x addresses (IP_PKTINFO): %w", err)
		}
		next += sent
		r.Sent += uint64(sent)
		// Keep within a window of unanswered packets, so that the
		// tracker's socket buffer does not overflow; a packet that is
		// never answered holds the window for 10 ms at most.
		for wait := 0; r.Sent-answered.Load() > sourcesWindow && wait < 100; wait++ {
			time.Sleep(100 * time.Microsecond)
		}
	}
	r.Elapsed = time.Since(start)
	close(stopped)
	<-done
	r.Answered = answered.Load()
	return r, nil
}
