// Package websocket serves the WebTorrent tracker protocol: browsers'
// BitTorrent clients announce over a WebSocket, on the HTTP tracker's port
// and path, and the tracker relays their WebRTC offers and answers to each
// other. It is a thin adapter: the HTTP frontend hands it upgrade requests,
// github.com/gobwas/ws does the handshake and reads and writes frames,
// package wsproto reads and writes the messages, and package wsswarm keeps
// the swarms, which the daemon makes (NewSwarms) and hands over in Options.
//
// server.go is connections' lifecycle: upgrade, the connection cap,
// keep-alive pings and the expiry of silent peers, shutdown. The
// connection engine (package engine) polls the sockets; handshake.go
// answers the upgrade; conn.go is one connection's stages and the swarms it
// joined; read.go and write.go read and write its frames; handler.go turns
// messages into replies and relays. netconn.go serves the WebSockets the
// https frontend hands over as net.Conns (TLS), which no loop can poll, on
// goroutines (ServeConn), in the same swarms.
//
// gobwas/ws fits trakx's own HTTP server: it upgrades a net.Conn whose
// request trakx has already read and checked, with no net/http, and reads
// a frame's header before its payload, so an oversized frame is refused
// before its payload is kept; and it starts no goroutine and keeps no
// buffer of its own, so trakx can poll the sockets itself.
package websocket

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/wsswarm"
)

// Options are the WebSocket frontend's settings.
type Options struct {
	MaxConnections  int64
	MaxOffers       int
	MaxMessageBytes int
	// ReadTimeout bounds the handshake, and a frame once its first byte
	// is in (an idle connection is kept alive by pings instead).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration // for the handshake's reply
	// PingInterval is how often idle connections are pinged; one silent
	// for 2.5 intervals is closed.
	PingInterval time.Duration
	Budget       *ratelimit.Limiter
	// Intervals gives the announce interval clients are told and the TTL
	// of a silent peer; they follow the tracker section, which a reload
	// may change.
	Intervals func() (announce, ttl time.Duration)
	// Open counts connections against http.max_connections; a WebSocket
	// stays counted after the HTTP frontend has handed it over.
	Open *atomic.Int64
	// Engine is the connection engine the HTTP frontend's connections are
	// in, and whose loops serve the WebSockets they become; nil: the
	// server makes one of its own, and Run runs it.
	Engine *engine.Engine
	// Swarms are the WebSocket swarms the server's peers join, made by
	// the daemon (NewSwarms) as it makes the UDP/HTTP store; nil: the
	// server makes its own.
	Swarms *Swarms
}

// Swarms are the WebSocket swarms: package wsswarm's, each peer reached
// through the connection it announced on, a handle only this package can
// look into. The daemon makes them with NewSwarms and hands them to
// NewServer in Options, as it makes the UDP/HTTP store and hands it to
// those frontends; the type is wsswarm's own, so a peer costs no more and
// an announce calls the store directly.
type Swarms = wsswarm.Swarms[*conn]

// NewSwarms returns empty WebSocket swarms, for Options.Swarms.
func NewSwarms() *Swarms { return wsswarm.New[*conn]() }

// DefaultPingInterval keeps a connection alive through proxies that close
// idle ones after a minute (nginx's proxy_read_timeout).
const DefaultPingInterval = 30 * time.Second

// MaxTorrentsPerConnection bounds the swarms one connection may join, so
// that one socket cannot fill memory.
const MaxTorrentsPerConnection = 200

// Gate is the access list and client filter.
type Gate interface {
	Admit(*bittorrent.InfoHash, *bittorrent.PeerID) error
	AdmitTorrent(*bittorrent.InfoHash) error
}

// Server serves WebSocket connections handed over by the HTTP frontend.
// After the handshake a connection's socket joins one of the server's
// polling loops (epoll): an idle WebSocket holds no goroutine and no
// buffer, which is what lets a tracker keep many browsers connected.
type Server struct {
	opts     Options
	gate     Gate
	swarms   *Swarms
	counters *metrics.WebSocket
	log      *logrus.Logger
	engine   *engine.Engine
	ownsLoop bool // Run runs the engine

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool

	stop     chan struct{} // closed by Close: Serve's stop
	stopOnce sync.Once

	// netConns are the connections served over a net.Conn (ServeConn):
	// *conn to *netConn. netWG counts their readers, which Run waits for.
	netConns sync.Map
	netWG    sync.WaitGroup
}

// NewServer prepares a server and its polling loops; Run starts them.
func NewServer(opts Options, gate Gate, m *metrics.Metrics, log *logrus.Logger) (*Server, error) {
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.Open == nil {
		opts.Open = new(atomic.Int64)
	}
	if opts.Swarms == nil {
		opts.Swarms = NewSwarms()
	}
	s := &Server{opts: opts, gate: gate, swarms: opts.Swarms, counters: &m.WebSocket, log: log, conns: map[*conn]struct{}{},
		engine: opts.Engine, stop: make(chan struct{})}
	if s.engine == nil {
		e, err := engine.New(ReadBuffer(opts.MaxMessageBytes))
		if err != nil {
			return nil, err
		}
		s.engine, s.ownsLoop = e, true
	}
	m.SetWebSocketSwarms(func() metrics.WebSocketSwarms {
		st := s.swarms.Stats()
		return metrics.WebSocketSwarms{Torrents: st.Torrents, Seeders: st.Seeders, Leechers: st.Leechers}
	})
	return s, nil
}

// tooManyConnections answers an upgrade over websocket.max_connections.
var tooManyConnections = func() []byte {
	body := httpproto.AppendFailure(nil, "too many WebSocket connections, try again later")
	return append([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"), body...)
}()

// ReadBuffer is how large an engine's read buffer must be for messages of
// maxMessageBytes: a whole frame fits in one read.
func ReadBuffer(maxMessageBytes int) int { return maxMessageBytes + ws.MaxHeaderSize }

// Upgrade takes over the connection on descriptor fd, in loop, whose
// upgrade request (read and checked by the HTTP frontend) is request, from
// client: it completes the handshake, and its WebSocket takes fd's place in
// the loop. It is called on the loop's goroutine. False: it answered with
// an error (503, 400) and fd is still the caller's, to close. The
// connection keeps its slot under http.max_connections, which the
// WebSocket frees when it ends. It implements the HTTP frontend's
// Upgrader.
func (s *Server) Upgrade(loop *engine.Loop, fd int, request []byte, client netip.Addr) bool {
	if !reserve(&s.counters.Connections, s.opts.MaxConnections) {
		s.counters.ConnectionsRefused.Add(1)
		engine.Write(fd, tooManyConnections)
		return false
	}
	reply, ok := s.handshake(request)
	if !ok {
		engine.Write(fd, reply)
		s.counters.Connections.Add(-1)
		return false
	}
	c := &conn{s: s, fd: fd, client: client, loop: loop}
	c.seen.Store(time.Now().UnixMilli())
	loop.Replace(c)
	// From here on the connection is the WebSocket's, and ends as one.
	if !c.sendUpgrade(reply) || !s.track(c) {
		c.close(ws.StatusGoingAway, "tracker shutting down")
	}
	return true
}

// reserve adds one to count if that keeps it within limit.
func reserve(count *atomic.Int64, limit int64) bool {
	for {
		n := count.Load()
		if n >= limit {
			return false
		}
		if count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// track counts c among the connections to ping and to say goodbye to;
// false if the server is closing, or c has ended already.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || c.forgotten {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// forget stops counting a connection whose descriptor its loop closed; it
// has left its swarms already.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	c.forgotten = true
	s.mu.Unlock()
	s.counters.Connections.Add(-1)
	s.opts.Open.Add(-1)
}

func (s *Server) snapshot() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Run serves the connections in the polling loops and, every ping
// interval, pings idle ones, closes dead ones and expires silent peers,
// until stop is closed; then it says goodbye to every connection (Close),
// and the loops close them.
func (s *Server) Run(stop <-chan struct{}) {
	var wg sync.WaitGroup
	loopsStop := make(chan struct{})
	if s.ownsLoop {
		wg.Add(1)
		go func() { defer wg.Done(); s.engine.Run(loopsStop) }()
	}
	defer wg.Wait()
	tick := time.NewTicker(s.opts.PingInterval)
	defer tick.Stop()
	// Unfinished messages are looked for twice a read timeout, so that one
	// is cut off between one and one and a half timeouts after it began.
	unfinished := time.NewTicker(max(s.opts.ReadTimeout/2, 10*time.Millisecond))
	defer unfinished.Stop()
	for {
		select {
		case <-stop:
			s.Close()
			close(loopsStop)
			s.netWG.Wait()
			return
		case now := <-unfinished.C:
			s.cutUnfinished(now)
		case now := <-tick.C:
			s.keepAlive(now)
			_, ttl := s.opts.Intervals()
			s.swarms.Expire(now.Add(-ttl))
		}
	}
}

// keepAlive pings every connection, and shuts those that have sent
// nothing, not even a pong, for 2.5 ping intervals.
func (s *Server) keepAlive(now time.Time) {
	dead := now.Add(-s.opts.PingInterval * 5 / 2).UnixMilli()
	for _, c := range s.snapshot() {
		if c.seen.Load() < dead {
			c.shut()
			continue
		}
		c.write(ws.OpPing, nil)
	}
}

// cutUnfinished closes connections that began a frame or a fragmented
// message longer than the read timeout ago and have not finished it: a
// client trickling one would hold its buffer forever.
func (s *Server) cutUnfinished(now time.Time) {
	stalled := now.Add(-s.opts.ReadTimeout).Unix()
	for _, c := range s.snapshot() {
		if since := c.partialSince.Load(); since != 0 && since < stalled {
			c.fail(ws.StatusPolicyViolation, "message not finished in time")
		}
	}
}

// Stalled reports whether a polling loop has been serving one batch of
// events for longer than limit: a wedged loop, for the watchdog. Loops
// waiting for events are not stalled, however long they wait.
func (s *Server) Stalled(limit time.Duration) bool { return s.engine.Stalled(limit) }

// Engine is the connection engine the server's WebSockets are in.
func (s *Server) Engine() *engine.Engine { return s.engine }

// Stall holds the lock of h's WebSocket swarm until release is called:
// announces of h wait meanwhile, and their loop with them, as behind a
// deadlock. It exists for tests of what must notice a wedged loop (the
// systemd watchdog), which have no other way to make one.
func (s *Server) Stall(h *bittorrent.InfoHash) (release func()) {
	return s.swarms.Stall(h)
}

// Serve is Run until Close: the server as a frontend.Frontend.
func (s *Server) Serve() { s.Run(s.stop) }

// Addr is nil: the server has no socket of its own, but serves the
// connections the HTTP frontend hands it.
func (s *Server) Addr() net.Addr { return nil }

// Describe is the start-up line's part for the server.
func (s *Server) Describe() string { return "websocket at /announce on the http listeners" }

// shuttingDown reports whether Close has been called.
func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Close says goodbye (close code 1001) to every connection and closes it;
// later upgrades are refused the same way. Serve returns once the loops
// have closed them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	for _, c := range s.snapshot() {
		c.close(ws.StatusGoingAway, "tracker shutting down")
	}
	s.stopOnce.Do(func() { close(s.stop) })
	return nil
}
