// Package udp serves the BEP 15 tracker protocol on a packet socket. It is a
// thin adapter: datagrams go to udpproto's parsers, the parsed requests to
// the tracker, and its answers back through udpproto's encoders. udp.go
// holds the workers, goroutines reading the socket, each with counters of
// its own; mmsg.go moves datagrams in batches (recvmmsg and sendmmsg).
package udp

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/udpproto"
)

// Server answers tracker requests arriving on one socket.
type Server struct {
	conn    *net.UDPConn
	tracker bittorrent.Tracker
	ids     *udpproto.ConnectionIDs
	budget  *ratelimit.Limiter
	metrics *metrics.Metrics
	log     *logrus.Logger

	mu      sync.Mutex
	workers []*worker
	wg      sync.WaitGroup
}

// NewServer prepares a server; Serve starts it. Every datagram is charged
// to its source's budget before anything else is done with it.
func NewServer(conn *net.UDPConn, tracker bittorrent.Tracker, ids *udpproto.ConnectionIDs, budget *ratelimit.Limiter, m *metrics.Metrics, log *logrus.Logger) *Server {
	return &Server{conn: conn, tracker: tracker, ids: ids, budget: budget, metrics: m, log: log}
}

// Addr is the socket's local address.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Describe is the start-up line's part for the server.
func (s *Server) Describe() string { return "udp " + s.Addr().String() }

// Serve answers requests with one worker per CPU and returns once Close has
// been called and every worker has finished the request it was on.
func (s *Server) Serve() {
	for range runtime.GOMAXPROCS(0) {
		s.wg.Add(1)
		go s.work()
	}
	s.wg.Wait()
}

// Close stops taking requests.
func (s *Server) Close() error { return s.conn.Close() }

// worker holds one goroutine's buffers, reused for every request so that
// the request path does not allocate.
type worker struct {
	*Server
	counters *metrics.UDP
	// busySince is when the batch being handled arrived (unix
	// nanoseconds), or 0 while the worker waits for one.
	busySince atomic.Int64
	batch     *batch
	req       bittorrent.AnnounceRequest
	resp      bittorrent.AnnounceResponse
	hashes    []bittorrent.InfoHash
}

func (s *Server) work() {
	defer s.wg.Done()
	b, err := newBatch(s.conn)
	if err != nil {
		s.log.WithError(err).Error("udp worker")
		return
	}
	w := &worker{
		Server:   s,
		counters: s.metrics.NewUDP(),
		batch:    b,
		hashes:   make([]bittorrent.InfoHash, 0, udpproto.MaxScrapeHashes),
	}
	s.mu.Lock()
	s.workers = append(s.workers, w)
	s.mu.Unlock()
	for {
		if err := b.recv(); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP errors from earlier replies surface here; they concern
			// one client, not the socket.
			s.log.WithError(err).Debug("udp receive")
			continue
		}
		now := time.Now()
		w.busySince.Store(now.UnixNano())
		for i := range b.n {
			pkt, from, truncated := b.datagram(i)
			if reply := w.answer(pkt, from, truncated, now, b.replyBuffer()); len(reply) > 0 {
				b.queueReply(i, reply)
			}
		}
		if err := b.send(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.WithError(err).Debug("udp send")
		}
		w.busySince.Store(0)
	}
}

// Stalled reports whether a worker has been on one batch of requests for
// longer than limit: a wedged worker, for the watchdog. Workers waiting for
// requests are not stalled, however long they wait.
func (s *Server) Stalled(limit time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixNano()
	for _, w := range s.workers {
		if since := w.busySince.Load(); since != 0 && now-since > int64(limit) {
			return true
		}
	}
	return false
}

// answer charges a datagram that arrived at now to its source's budget,
// before anything else, and answers it, returning the reply or nothing.
func (w *worker) answer(pkt []byte, from netip.AddrPort, truncated bool, now time.Time, out []byte) []byte {
	if !w.budget.Allow(from.Addr(), now) {
		// Over budget: no reply at all, so a flood of forged sources
		// gets nothing amplified back.
		w.counters.Refuse(metrics.RefusalRate)
		return out
	}
	if truncated { // larger than any request
		w.counters.BadRequest.Add(1)
		return out
	}
	return w.handle(pkt, from, uint32(now.Unix()), out)
}

// handle answers one well-sized datagram, returning the reply or nothing.
func (w *worker) handle(pkt []byte, from netip.AddrPort, now uint32, out []byte) []byte {
	h, err := udpproto.ParseHeader(pkt)
	if err != nil {
		w.counters.BadRequest.Add(1)
		return out
	}
	addr := from.Addr().Unmap()
	if h.Action == udpproto.ActionConnect {
		if h.ConnectionID != udpproto.ProtocolID {
			w.counters.BadRequest.Add(1)
			return out
		}
		w.counters.Answer(metrics.ActionConnect, addr)
		return udpproto.AppendConnectResponse(out, h.TransactionID, w.ids.Issue(addr, now))
	}
	// Nothing but a connect is answered without a valid connection id: a
	// reply to a forged source address would make the tracker an amplifier.
	if !w.ids.Valid(h.ConnectionID, addr, now) {
		w.counters.BadConnectionID.Add(1)
		return out
	}
	switch h.Action {
	case udpproto.ActionAnnounce:
		return w.announce(pkt, h.TransactionID, addr, out)
	case udpproto.ActionScrape:
		return w.scrape(pkt, h.TransactionID, addr, out)
	}
	w.counters.BadRequest.Add(1)
	return w.fail(out, h.TransactionID, udpproto.ErrUnknownAction)
}

func (w *worker) announce(pkt []byte, tx uint32, addr netip.Addr, out []byte) []byte {
	if err := udpproto.ParseAnnounce(pkt, &w.req); err != nil {
		w.counters.BadRequest.Add(1)
		return w.fail(out, tx, err)
	}
	w.req.Addr = addr
	w.req.BothFamilies = false
	w.req.PeerLimit = udpproto.MaxPeers(addr.Is6())
	if err := w.tracker.Announce(&w.req, &w.resp); err != nil {
		return w.fail(out, tx, err)
	}
	w.counters.Answer(metrics.ActionAnnounce, addr)
	if w.log.IsLevelEnabled(logrus.DebugLevel) {
		w.log.Debugf("udp announce %s from %s port %d event %d left %d: %d peers", w.req.InfoHash, addr, w.req.Port, w.req.Event, w.req.Left, len(w.resp.Peers4)+len(w.resp.Peers6))
	}
	return udpproto.AppendAnnounceResponse(out, tx, &w.resp, addr.Is6())
}

func (w *worker) scrape(pkt []byte, tx uint32, addr netip.Addr, out []byte) []byte {
	var err error
	w.hashes, err = udpproto.ParseScrape(pkt, w.hashes[:0])
	if err != nil {
		w.counters.BadRequest.Add(1)
		return w.fail(out, tx, err)
	}
	w.counters.Answer(metrics.ActionScrape, addr)
	out = udpproto.AppendScrapeResponseHeader(out, tx)
	for i := range w.hashes {
		st, err := w.tracker.Scrape(&w.hashes[i])
		if err != nil {
			return w.fail(out[:0], tx, err)
		}
		out = udpproto.AppendScrapeStats(out, st)
	}
	return out
}

// fail turns an error, a parser's or the tracker's refusal, into an error
// packet. Errors that are not meant for the client are logged and reported
// as an internal error.
func (w *worker) fail(out []byte, tx uint32, err error) []byte {
	w.counters.Fail(err)
	var ce *bittorrent.ClientError
	if !errors.As(err, &ce) {
		w.log.WithError(err).Error("udp request failed")
		return udpproto.AppendError(out, tx, "internal error")
	}
	return udpproto.AppendError(out, tx, ce.Message)
}
