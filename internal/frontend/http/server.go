// Package http serves the HTTP tracker protocol (BEP 3, 7, 23, 48). It
// speaks just enough HTTP/1.1 for trackers, GET with a query string, keep-alive
// and pipelining, over fixed per-connection buffers, so that a request costs
// no allocation. The query strings and replies are httpproto's business.
//
// server.go is the connections' lifecycle: accepting, the connection cap
// and eviction, shutdown. fastpath.go answers a new connection's first
// request on the accepting goroutine, and hands any connection that
// outlives it to the connection engine as a stream (stream.go reads and
// answers its requests, streamsend.go writes its replies and ends it).
// fullscrape.go answers a full scrape (GET /scrape without info_hash)
// from package fullscrape's snapshot, streamed by the engine.
// linger.go closes connections gracefully; descriptors.go answers 503
// when the open files limit is reached; upgrade.go hands WebSocket
// upgrades over. conn.go holds the buffers a request is answered in;
// request.go and realip.go parse a request, hosts.go checks its host, and
// handler.go answers and counts it; exchange.go, one another frontend read.
package http

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/frontend"
	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/ratelimit"
)

// MaxRequestSize bounds a request's line and headers together. Announces
// are a few hundred bytes; a scrape of many torrents is the largest thing a
// client sends.
const MaxRequestSize = 8192

// Options are the HTTP frontend's settings.
type Options struct {
	ReadTimeout    time.Duration // for a whole request to arrive, and idle keep-alive
	WriteTimeout   time.Duration
	RealIPHeader   string         // e.g. X-Forwarded-For; empty: none
	TrustedProxies []netip.Prefix // who may set RealIPHeader
	// MaxConnections bounds the connections open at once across every
	// server sharing Open; one more is answered 503 and closed.
	MaxConnections int64
	Open           *atomic.Int64
	// MaxRequests is how many requests one connection serves; the last
	// reply closes it. 0: no limit.
	MaxRequests int
	// Budget is the per-source request budget, shared with the other
	// frontends; nil: none. The address charged is the client's as
	// resolved through a trusted proxy's real-IP header.
	Budget *ratelimit.Limiter
	// WebSocket serves upgrades to WebSocket at the announce path; nil:
	// they are served as plain requests.
	WebSocket Upgrader
	// Engine serves the connections that outlive their first read; nil:
	// the server makes one of its own, which Serve runs.
	Engine *engine.Engine
	// Hosts are the host names served (http.allowed_hosts), shared by
	// every server given the same pointer, so that one store reconfigures
	// them all; nil: the server keeps its own, AnyHost until SetHosts.
	Hosts *atomic.Pointer[Hosts]
	// FullScrape is http.full_scrape, swappable (SIGHUP); nil or empty: off.
	FullScrape *atomic.Pointer[FullScrape]
	// Evict, if set, is tried at the cap when none of the server's own
	// connections is idle: it evicts another's sharing Open (HTTPS's).
	Evict func() bool
}

// ReadBuffer is the least read buffer an engine serving HTTP needs.
const ReadBuffer = MaxRequestSize

// counterGroups spreads connections over several sets of counters, so that
// concurrent requests rarely add to the same cache line.
const counterGroups = 16

// Server answers tracker requests arriving on one listener.
type Server struct {
	ln        net.Listener
	tracker   bittorrent.Tracker
	opts      Options
	log       *logrus.Logger
	engine    *engine.Engine
	ownEngine bool

	counters  [counterGroups]*metrics.HTTP
	nextConn  atomic.Uint32
	lingering atomic.Int64 // refused connections being closed gracefully
	// fastBusySince is when the fast path began the request it is on
	// (unix nanoseconds), or 0: the watchdog's view of the accept loop.
	fastBusySince atomic.Int64
	hosts         *atomic.Pointer[Hosts]
	closing       atomic.Bool
	// write is how streams write their replies: engine.Write, or a test's
	// own, which acts there as another goroutine might, between a stream's
	// composing its replies and the socket's taking them.
	write func(fd int, p []byte) (int, error)

	mu      sync.Mutex
	rawFile *os.File // the duplicate of the listener accepted on
	conns   map[*stream]struct{}
	wg      sync.WaitGroup // the streams and refusals not yet closed
}

// NewServer prepares a server; Serve starts it.
func NewServer(ln net.Listener, tracker bittorrent.Tracker, opts Options, m *metrics.Metrics, log *logrus.Logger) *Server {
	s := &Server{ln: ln, tracker: tracker, opts: opts, log: log, conns: map[*stream]struct{}{}, engine: opts.Engine, write: engine.Write}
	if s.hosts = opts.Hosts; s.hosts == nil {
		s.hosts = new(atomic.Pointer[Hosts])
	}
	if s.hosts.Load() == nil {
		s.hosts.Store(AnyHost)
	}
	for i := range s.counters {
		s.counters[i] = m.NewHTTP()
	}
	return s
}

// SetHosts sets the host names served (http.allowed_hosts), for every
// server sharing Options.Hosts; it may be called while requests are
// served.
func (s *Server) SetHosts(h *Hosts) { s.hosts.Store(h) }

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Describe is the start-up line's part for the server.
func (s *Server) Describe() string { return "http " + s.Addr().String() }

// Serve accepts connections until Close, then waits for every connection to
// finish the request it is on. It logs an error and returns at once if the
// listener has no descriptor to accept on, or no engine can be made.
func (s *Server) Serve() {
	if err := s.serve(); err != nil {
		s.log.WithError(err).Errorf("http %s: cannot serve", s.ln.Addr())
	}
}

func (s *Server) serve() error {
	if s.engine == nil {
		e, err := engine.New(ReadBuffer)
		if err != nil {
			return err
		}
		s.engine, s.ownEngine = e, true
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { defer close(done); e.Run(stop) }()
		defer func() { close(stop); <-done }()
	}
	sweeping := make(chan struct{})
	defer close(sweeping)
	go s.sweep(sweeping)
	defer s.wg.Wait()
	return s.accept()
}

// connState is what the server knows of a connection from outside its
// loop.
type connState struct {
	// idleSince is when the connection began to wait for a request with
	// nothing of one received (unix nanoseconds): a keep-alive connection
	// between requests, or a new one that has sent nothing. 0: not idle;
	// evicted: closed to make room.
	idleSince atomic.Int64
	// waitingSince is when the connection began to wait for the request it
	// is on, or 0 (http.read_timeout); writingSince, when it began to wait
	// for the client to take a reply, or 0 (http.write_timeout).
	waitingSince, writingSince atomic.Int64
}

// leaveIdle marks a connection no longer idle, as bytes of a request came
// in; false if it was evicted, which stays marked (its slot is gone).
func (st *connState) leaveIdle() bool {
	for {
		v := st.idleSince.Load()
		if v < 0 {
			return false
		}
		if st.idleSince.CompareAndSwap(v, 0) {
			return true
		}
	}
}

// idleSince's marks: the connection was evicted, or handed its slot to a
// WebSocket. Either way its slot in the count is no longer its own.
const (
	evicted      = -1
	handedToPeer = -2
)

// admit takes a slot for a new connection under http.max_connections,
// evicting the connection idle the longest if none is free; false if
// none can be had (frontend.TakeSlot: the count of open connections,
// shared with the WebSocket and HTTPS frontends, never exceeds the cap).
func (s *Server) admit() bool {
	return frontend.TakeSlot(s.opts.Open, s.opts.MaxConnections, s.evictAny)
}

// evictAny closes the connection idle the longest, this server's or,
// through Options.Evict, another's sharing the cap (HTTPS's).
func (s *Server) evictAny() bool {
	return s.evictIdle() || (s.opts.Evict != nil && s.opts.Evict())
}

// track counts c among the connections served; false if the server is
// closing.
func (s *Server) track(c *stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// EvictIdle is evictIdle, for another server sharing Open (HTTPS's).
func (s *Server) EvictIdle() bool { return s.evictIdle() }

// evictIdle closes the connection idle the longest, to make room for a new
// one at the connection cap, and reports whether there was one. Its slot is
// given back at once: it will serve nothing more, and its end does not
// count it again.
func (s *Server) evictIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var oldest *stream
		var since int64
		for c := range s.conns {
			if t := c.idleSince.Load(); t > 0 && (oldest == nil || t < since) {
				oldest, since = c, t
			}
		}
		if oldest == nil {
			return false
		}
		// It may have received a request meanwhile: then look again.
		if oldest.idleSince.CompareAndSwap(since, evicted) {
			s.opts.Open.Add(-1)
			oldest.loop.Poke(oldest)
			s.counters[0].ConnectionsEvicted.Add(1)
			return true
		}
	}
}

// sweep pokes, until done is closed, the connections that have waited
// past a timeout, a few times a timeout so that one ends between one and
// one and a quarter of it late. Their loops end them: a connection's loop
// alone may.
func (s *Server) sweep(done <-chan struct{}) {
	tick := time.NewTicker(max(min(s.opts.ReadTimeout, s.opts.WriteTimeout)/4, 10*time.Millisecond))
	defer tick.Stop()
	var late []*stream
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			late = s.expired(now.UnixNano(), late[:0])
			for i, c := range late {
				c.loop.Poke(c)
				late[i] = nil
			}
		}
	}
}

// expired appends the connections past a timeout to late.
func (s *Server) expired(now int64, late []*stream) []*stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.expired(now) {
			late = append(late, c)
		}
	}
	return late
}

// Stalled reports whether the server has been on one request for longer
// than limit: a wedged handler, for the watchdog. Connections waiting for
// requests are not stalled.
func (s *Server) Stalled(limit time.Duration) bool {
	if since := s.fastBusySince.Load(); since != 0 && time.Now().UnixNano()-since > int64(limit) {
		return true
	}
	return s.ownEngine && s.engine.Stalled(limit)
}

// untrack forgets a connection that ended, and gives its slot back unless
// it was evicted or handed to a WebSocket, which took it already.
func (s *Server) untrack(c *stream) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if c.idleSince.Load() >= 0 {
		s.opts.Open.Add(-1)
	}
	s.wg.Done()
}

// handOver forgets a connection that became a WebSocket, which has its
// slot now.
func (s *Server) handOver(c *stream) {
	c.idleSince.Store(handedToPeer)
	s.untrack(c)
}

// Close stops accepting and has every connection waiting for a request
// closed; one that owes a reply closes once it is out.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing.Store(true)
	for c := range s.conns {
		c.loop.Poke(c)
	}
	if s.rawFile != nil {
		s.rawFile.Close()
	}
	s.mu.Unlock()
	return s.ln.Close()
}

// setRawFile records the duplicate listener the fast path accepts on, so
// that Close closes it; false if the server is closing already.
func (s *Server) setRawFile(f *os.File) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rawFile = f
	return !s.closing.Load()
}
