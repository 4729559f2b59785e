// Package http serves the HTTP tracker protocol (BEP 3, 7, 23, 48). It
// speaks just enough HTTP/1.1 for trackers, GET with a query string, keep-alive
// and pipelining, over fixed per-connection buffers, so that a request costs
// no allocation. The query strings and replies are httpproto's business.
//
// server.go is the connections' lifecycle: accepting, the connection cap
// and eviction, shutdown. conn.go reads one connection's requests, with
// its timeouts. request.go and realip.go parse a request; handler.go turns
// a parsed request into a reply.
package http

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
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
}

// counterGroups spreads connections over several sets of counters, so that
// concurrent requests rarely add to the same cache line.
const counterGroups = 16

// Server answers tracker requests arriving on one listener.
type Server struct {
	ln      net.Listener
	tracker bittorrent.Tracker
	opts    Options
	log     *logrus.Logger

	counters  [counterGroups]*metrics.HTTP
	nextConn  atomic.Uint32
	lingering atomic.Int64 // refused connections being closed gracefully
	// fastBusySince is when the fast path began the request it is on
	// (unix nanoseconds), or 0: the watchdog's view of the accept loop.
	fastBusySince atomic.Int64
	hosts         atomic.Pointer[Hosts]

	mu      sync.Mutex
	rawFile *os.File // the fast path's duplicate of the listener
	conns   map[net.Conn]*connState
	closing bool
	wg      sync.WaitGroup
}

// NewServer prepares a server; Serve starts it.
func NewServer(ln net.Listener, tracker bittorrent.Tracker, opts Options, m *metrics.Metrics, log *logrus.Logger) *Server {
	s := &Server{ln: ln, tracker: tracker, opts: opts, log: log, conns: map[net.Conn]*connState{}}
	s.hosts.Store(AnyHost)
	for i := range s.counters {
		s.counters[i] = m.NewHTTP()
	}
	return s
}

// SetHosts sets the host names served (http.allowed_hosts); it may be
// called while requests are served.
func (s *Server) SetHosts(h *Hosts) { s.hosts.Store(h) }

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close, then waits for every connection to
// finish the request it is on.
func (s *Server) Serve() {
	defer s.wg.Wait()
	if s.serveRaw() {
		return
	}
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off rather than spin.
			s.acceptFailed(err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !s.admit() {
			s.counters[0].ConnectionsRefused.Add(1)
			s.refuseConn(c)
			continue
		}
		state := s.track(c, true)
		if state == nil {
			s.opts.Open.Add(-1)
			c.Close()
			return
		}
		s.wg.Add(1)
		go s.serveConn(c, state)
	}
}

// connState is what the server knows of a connection from outside it.
type connState struct {
	// busySince is when the request being handled was read (unix
	// nanoseconds), or 0 while the connection waits for one.
	busySince atomic.Int64
	// idleSince is when the connection began to wait for a request with
	// nothing of one received (unix nanoseconds): a keep-alive connection
	// between requests, or a new one that has sent nothing. 0: not idle;
	// evicted: closed to make room.
	idleSince atomic.Int64
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
	evicted    = -1
	handedOver = -2
)

// admit takes a slot for a new connection under http.max_connections,
// evicting the connection idle the longest if none is free; false if
// none can be had. The count of open connections (shared with the
// WebSocket frontend) never exceeds the cap: a slot is taken by compare
// and swap, and an evicted connection gives its slot back at once.
func (s *Server) admit() bool {
	for range 4 { // bounded: others may take the slot an eviction freed
		for {
			n := s.opts.Open.Load()
			if n >= s.opts.MaxConnections {
				break
			}
			if s.opts.Open.CompareAndSwap(n, n+1) {
				return true
			}
		}
		if !s.evictIdle() {
			return false
		}
	}
	return false
}

// track counts c among the connections served: idle if nothing of a
// request has come yet (it may then be evicted), busy if some has.
func (s *Server) track(c net.Conn, idle bool) *connState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	state := &connState{}
	if idle {
		state.idleSince.Store(time.Now().UnixNano())
	}
	s.conns[c] = state
	return state
}

// evictIdle closes the connection idle the longest, to make room for a new
// one at the connection cap, and reports whether there was one. Its slot is
// given back at once: it will serve nothing more, and its goroutine, which
// ends a moment later, does not count it again.
func (s *Server) evictIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var oldest net.Conn
		var since int64
		for c, st := range s.conns {
			if t := st.idleSince.Load(); t > 0 && (oldest == nil || t < since) {
				oldest, since = c, t
			}
		}
		if oldest == nil {
			return false
		}
		// It may have received a request meanwhile: then look again.
		if s.conns[oldest].idleSince.CompareAndSwap(since, evicted) {
			s.opts.Open.Add(-1)
			oldest.SetReadDeadline(time.Now())
			s.counters[0].ConnectionsEvicted.Add(1)
			return true
		}
	}
}

// Stalled reports whether a connection has been on one request for longer
// than limit: a wedged handler, for the watchdog. Connections waiting for
// requests are not stalled.
func (s *Server) Stalled(limit time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixNano()
	if since := s.fastBusySince.Load(); since != 0 && now-since > int64(limit) {
		return true
	}
	for _, st := range s.conns {
		if since := st.busySince.Load(); since != 0 && now-since > int64(limit) {
			return true
		}
	}
	return false
}

// untrack forgets a connection that ended, and gives its slot back unless
// it was evicted or handed to a WebSocket, which took it already.
func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	state := s.conns[c]
	delete(s.conns, c)
	s.mu.Unlock()
	if state == nil || state.idleSince.Load() >= 0 {
		s.opts.Open.Add(-1)
	}
}

// tooManyConnections is the whole answer to a connection over the cap.
var tooManyConnections = func() []byte {
	body := httpproto.AppendFailure(nil, "too many connections, try again later")
	head := "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n"
	return append([]byte(head), body...)
}()

// refuseConn tells a client over the connection cap to come back later.
// Its request is unread, so the connection is closed gracefully, off the
// accept loop; under a flood of refusals beyond maxLingering, it is just
// closed.
func (s *Server) refuseConn(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
	c.Write(tooManyConnections)
	if s.lingering.Add(1) > maxLingering {
		s.lingering.Add(-1)
		c.Close()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.lingering.Add(-1)
		closeGracefully(c, make([]byte, 4096))
	}()
}

// How long and how much a connection closed after an error is read from
// before it is closed, and how many refused connections may linger so at
// once. Half a second is what net/http waits for the same reason.
const (
	lingerTime   = 500 * time.Millisecond
	lingerBytes  = 64 << 10
	maxLingering = 256
)

// closeGracefully ends a connection whose request was not read to the end.
// Closing it outright would answer the unread bytes with a reset, and a
// reset can destroy the reply before the client reads it. So it sends the
// end of stream after the reply, reads and discards what the client still
// sends, for a moment and a bounded amount, and only then closes.
func closeGracefully(nc net.Conn, scratch []byte) {
	if hc, ok := nc.(interface{ CloseWrite() error }); ok {
		hc.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(lingerTime))
	for read := 0; read < lingerBytes; {
		n, err := nc.Read(scratch)
		if err != nil {
			break
		}
		read += n
	}
	nc.Close()
}

// Close stops accepting and wakes every connection waiting for a request,
// so that each closes once its current request, if any, is answered.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
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
	return !s.closing
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}
