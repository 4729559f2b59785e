// Package http serves the HTTP tracker protocol (BEP 3, 7, 23, 48). It
// speaks just enough HTTP/1.1 for trackers, GET with a query string, keep-alive
// and pipelining, over fixed per-connection buffers, so that a request costs
// no allocation. The query strings and replies are httpproto's business.
package http

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/metrics"
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

	mu      sync.Mutex
	conns   map[net.Conn]*connState
	closing bool
	wg      sync.WaitGroup
}

// NewServer prepares a server; Serve starts it.
func NewServer(ln net.Listener, tracker bittorrent.Tracker, opts Options, m *metrics.Metrics, log *logrus.Logger) *Server {
	s := &Server{ln: ln, tracker: tracker, opts: opts, log: log, conns: map[net.Conn]*connState{}}
	for i := range s.counters {
		s.counters[i] = m.NewHTTP()
	}
	return s
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close, then waits for every connection to
// finish the request it is on.
func (s *Server) Serve() {
	defer s.wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off rather than spin.
			s.log.WithError(err).Warn("http accept")
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if s.opts.Open.Add(1) > s.opts.MaxConnections && !s.evictIdle() {
			s.opts.Open.Add(-1)
			s.counters[0].ConnectionsRefused.Add(1)
			s.refuseConn(c)
			continue
		}
		state := s.track(c)
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

const evicted = -1

func (s *Server) track(c net.Conn) *connState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	state := &connState{}
	state.idleSince.Store(time.Now().UnixNano())
	s.conns[c] = state
	return state
}

// evictIdle closes the connection idle the longest, to make room for a new
// one at the connection cap, and reports whether there was one. Its slot is
// given back when its goroutine ends, a moment later; until then the count
// runs one over the cap.
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
	for _, st := range s.conns {
		if since := st.busySince.Load(); since != 0 && now-since > int64(limit) {
			return true
		}
	}
	return false
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.opts.Open.Add(-1)
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
	s.mu.Unlock()
	return s.ln.Close()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// conn holds one connection's buffers. They are pooled, because clients
// usually open a connection per announce.
type conn struct {
	in     [MaxRequestSize]byte
	body   []byte
	out    []byte
	req    bittorrent.AnnounceRequest
	resp   bittorrent.AnnounceResponse
	opts   httpproto.AnnounceOptions
	hashes []bittorrent.InfoHash
	stats  []bittorrent.ScrapeStats
}

var connPool = sync.Pool{New: func() any {
	return &conn{
		body:   make([]byte, 0, 4096),
		out:    make([]byte, 0, 4096+256),
		hashes: make([]bittorrent.InfoHash, 0, 8),
		stats:  make([]bittorrent.ScrapeStats, 0, 8),
	}
}}

// request is what the frontend needs of one parsed HTTP request.
type request struct {
	method, path, query []byte
	keepAlive           bool
	http11              bool
	close               bool // Connection: close
	hasBody             bool
	realIP              []byte
	hasRealIP           bool       // the real-IP header was sent, if empty
	peer                netip.Addr // the connection's remote address
}

func (s *Server) serveConn(nc net.Conn, state *connState) {
	defer s.wg.Done()
	defer s.untrack(nc)
	defer nc.Close()
	peer := remoteAddr(nc)
	c := connPool.Get().(*conn)
	defer connPool.Put(c)
	counters := s.counters[s.nextConn.Add(1)%counterGroups]

	start, end := 0, 0 // buffered bytes not yet handled: c.in[start:end]
	served := 0
	// The read timeout bounds a whole request, not each read of it: a
	// client trickling a byte at a time cannot hold a connection longer.
	timed := false
	for {
		headerEnd := bytes.Index(c.in[start:end], []byte("\r\n\r\n"))
		if headerEnd < 0 {
			if s.isClosing() {
				return
			}
			if start > 0 { // make room for the rest of a partial request
				end = copy(c.in[:], c.in[start:end])
				start = 0
			}
			if end == len(c.in) {
				s.reject(nc, c, counters, 431, "Request Header Fields Too Large", "request too large")
				return
			}
			if !timed {
				nc.SetReadDeadline(time.Now().Add(s.opts.ReadTimeout))
				timed = true
			}
			if end == 0 && state.idleSince.Load() == 0 {
				state.idleSince.Store(time.Now().UnixNano())
			}
			n, err := nc.Read(c.in[end:])
			if err != nil || state.idleSince.Swap(0) == evicted {
				return // closed, timed out, reset or evicted: nothing to answer
			}
			end += n
			continue
		}
		timed = false
		raw := c.in[start : start+headerEnd+4]
		start += headerEnd + 4
		if start == end {
			start, end = 0, 0
		}
		state.busySince.Store(time.Now().UnixNano())
		var r request
		if !parseRequest(raw, &r, s.opts.RealIPHeader) {
			s.reject(nc, c, counters, 400, "Bad Request", "malformed HTTP request")
			return
		}
		if r.hasBody { // trackers take no bodies; reading past one is not worth it
			s.reject(nc, c, counters, 400, "Bad Request", "request bodies are not accepted")
			return
		}
		r.peer = peer
		if served++; served == s.opts.MaxRequests {
			r.keepAlive = false // this reply says Connection: close
		}
		more := s.handle(nc, c, counters, &r)
		state.busySince.Store(0)
		if !more || !r.keepAlive {
			return
		}
	}
}

// errNoClientAddress refuses a request whose trusted proxy named no address
// it could read: guessing (the connection's address, the ip parameter)
// would let any client behind the proxy pick its address.
var errNoClientAddress = &bittorrent.ClientError{Message: "the proxy's real-IP header names no client address"}

// handle answers one request and reports whether the connection may carry
// another.
func (s *Server) handle(nc net.Conn, c *conn, counters *metrics.HTTP, r *request) bool {
	switch string(r.path) {
	case "/announce", "/scrape":
	default:
		return s.reply(nc, c, counters, 404, "Not Found", "not found: the announce URL ends in /announce", r.keepAlive)
	}
	if string(r.method) != "GET" {
		counters.BadRequest.Add(1)
		return s.reply(nc, c, counters, 405, "Method Not Allowed", "only GET is served", r.keepAlive)
	}
	client, ok := s.clientAddr(r)
	if !ok {
		counters.BadRequest.Add(1)
		return s.fail(nc, c, counters, errNoClientAddress, r.keepAlive)
	}
	if string(r.path) == "/announce" {
		return s.announce(nc, c, counters, r, client)
	}
	return s.scrape(nc, c, counters, r)
}

func (s *Server) announce(nc net.Conn, c *conn, counters *metrics.HTTP, r *request, client netip.Addr) bool {
	if err := httpproto.ParseAnnounce(r.query, &c.req, &c.opts); err != nil {
		counters.BadRequest.Add(1)
		return s.fail(nc, c, counters, err, r.keepAlive)
	}
	if c.opts.IP.IsValid() && !r.hasRealIP && s.trusted(r.peer) {
		client = c.opts.IP // a trusted proxy's ip parameter, when no header said
	}
	c.req.Addr = client
	c.req.BothFamilies = true
	if err := s.tracker.Announce(&c.req, &c.resp); err != nil {
		return s.refuse(nc, c, counters, err, r.keepAlive)
	}
	counters.Announce.Add(1)
	if s.log.IsLevelEnabled(logrus.DebugLevel) {
		s.log.Debugf("http announce %s from %s port %d event %d left %d: %d peers", c.req.InfoHash, client, c.req.Port, c.req.Event, c.req.Left, len(c.resp.Peers4)+len(c.resp.Peers6))
	}
	c.body = httpproto.AppendAnnounceResponse(c.body[:0], &c.resp, c.opts)
	return s.send(nc, c, 200, "OK", r.keepAlive)
}

func (s *Server) scrape(nc net.Conn, c *conn, counters *metrics.HTTP, r *request) bool {
	var err error
	c.hashes, err = httpproto.ParseScrape(r.query, c.hashes[:0])
	if err != nil {
		counters.BadRequest.Add(1)
		return s.fail(nc, c, counters, err, r.keepAlive)
	}
	c.stats = c.stats[:0]
	for i := range c.hashes {
		st, err := s.tracker.Scrape(&c.hashes[i])
		if err != nil {
			return s.refuse(nc, c, counters, err, r.keepAlive)
		}
		c.stats = append(c.stats, st)
	}
	counters.Scrape.Add(1)
	c.body = httpproto.AppendScrapeResponse(c.body[:0], c.hashes, c.stats)
	return s.send(nc, c, 200, "OK", r.keepAlive)
}

// refuse answers a request the tracker turned down.
func (s *Server) refuse(nc net.Conn, c *conn, counters *metrics.HTTP, err error, keepAlive bool) bool {
	if err == bittorrent.ErrNotAllowed {
		counters.Refused.Add(1)
	}
	return s.fail(nc, c, counters, err, keepAlive)
}

// fail answers with a bencoded failure reason. Trackers send those with
// status 200: that is what clients read them from.
func (s *Server) fail(nc net.Conn, c *conn, counters *metrics.HTTP, err error, keepAlive bool) bool {
	var ce *bittorrent.ClientError
	msg := "internal error"
	if errors.As(err, &ce) {
		msg = ce.Message
	} else {
		s.log.WithError(err).Error("http request failed")
	}
	return s.reply(nc, c, counters, 200, "OK", msg, keepAlive)
}

// reply sends a bencoded failure reason with the given status.
func (s *Server) reply(nc net.Conn, c *conn, counters *metrics.HTTP, status int, text, reason string, keepAlive bool) bool {
	counters.Error.Add(1)
	c.body = httpproto.AppendFailure(c.body[:0], reason)
	return s.send(nc, c, status, text, keepAlive)
}

// send writes the status line, headers and c.body in one write.
func (s *Server) send(nc net.Conn, c *conn, status int, text string, keepAlive bool) bool {
	out := append(c.out[:0], "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, ' ')
	out = append(out, text...)
	out = append(out, "\r\nContent-Type: text/plain\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(c.body)), 10)
	out = append(out, "\r\nDate: "...)
	out = appendDate(out)
	if !keepAlive {
		out = append(out, "\r\nConnection: close"...)
	}
	out = append(out, "\r\n\r\n"...)
	out = append(out, c.body...)
	c.out = out
	nc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	_, err := nc.Write(out)
	return err == nil
}

// reject answers a request the server will not read to the end, and ends
// the connection without losing the answer to a reset.
func (s *Server) reject(nc net.Conn, c *conn, counters *metrics.HTTP, status int, text, reason string) {
	counters.BadRequest.Add(1)
	s.reply(nc, c, counters, status, text, reason, false)
	closeGracefully(nc, c.in[:])
}

// clientAddr is the connection's address, or the one a trusted proxy's
// real-IP header names; false when that header names none.
func (s *Server) clientAddr(r *request) (netip.Addr, bool) {
	if !r.hasRealIP || !s.trusted(r.peer) {
		return r.peer, true
	}
	return forwardedClient(r.realIP)
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
