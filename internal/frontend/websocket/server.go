// Package websocket serves the WebTorrent tracker protocol: browsers'
// BitTorrent clients announce over a WebSocket, on the HTTP tracker's port
// and path, and the tracker relays their WebRTC offers and answers to each
// other. It is a thin adapter: the HTTP frontend hands it upgrade requests,
// github.com/gobwas/ws does the handshake and reads and writes frames,
// package wsproto reads and writes the messages, and package wsswarm keeps
// the swarms.
//
// server.go is connections' lifecycle: upgrade, the connection cap,
// keep-alive pings and the expiry of silent peers, shutdown. conn.go reads
// and writes one connection's frames; handler.go turns messages into
// replies and relays.
//
// gobwas/ws fits trakx's own HTTP server: it upgrades a net.Conn whose
// request trakx has already read and checked, with no net/http, and reads
// a frame's header before its payload, so an oversized frame is refused
// before a byte of it is buffered; and it starts no goroutine of its own,
// so an idle WebSocket costs its connection's goroutine and little else.
package websocket

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
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
	// ReadTimeout bounds the handshake and each message once its first
	// byte is in (an idle connection is kept alive by pings instead).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PingInterval is how often idle connections are pinged; one silent
	// for 2.5 intervals is closed.
	PingInterval time.Duration
	Budget       *ratelimit.Limiter
	// Intervals gives the announce interval clients are told and the TTL
	// of a silent peer; they follow the tracker section, which a reload
	// may change.
	Intervals func() (announce, ttl time.Duration)
}

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
type Server struct {
	opts     Options
	gate     Gate
	swarms   *wsswarm.Swarms[*conn]
	counters *metrics.WebSocket
	log      *logrus.Logger

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
}

// NewServer prepares a server; Run keeps its connections alive.
func NewServer(opts Options, gate Gate, m *metrics.Metrics, log *logrus.Logger) *Server {
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	s := &Server{opts: opts, gate: gate, swarms: wsswarm.New[*conn](), counters: &m.WebSocket, log: log, conns: map[*conn]struct{}{}}
	m.SetWebSocketSwarms(func() metrics.WebSocketSwarms {
		st := s.swarms.Stats()
		return metrics.WebSocketSwarms{Torrents: st.Torrents, Seeders: st.Seeders, Leechers: st.Leechers}
	})
	return s
}

// tooManyConnections answers an upgrade over websocket.max_connections.
var tooManyConnections = func() []byte {
	body := httpproto.AppendFailure(nil, "too many WebSocket connections, try again later")
	return append([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"), body...)
}()

// ServeWebSocket takes over nc, whose upgrade request (read and checked by
// the HTTP frontend) is request, from client, and serves it until it
// closes. It implements the HTTP frontend's Upgrader.
func (s *Server) ServeWebSocket(nc net.Conn, request []byte, client netip.Addr) {
	if s.counters.Connections.Add(1) > s.opts.MaxConnections {
		s.counters.Connections.Add(-1)
		s.counters.ConnectionsRefused.Add(1)
		nc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		nc.Write(tooManyConnections)
		return
	}
	defer s.counters.Connections.Add(-1)
	nc.SetDeadline(time.Now().Add(s.opts.ReadTimeout))
	handshake := struct {
		io.Reader
		io.Writer
	}{io.MultiReader(bytes.NewReader(request), nc), nc}
	if _, err := (ws.Upgrader{}).Upgrade(handshake); err != nil {
		s.counters.BadRequest.Add(1)
		return // gobwas/ws has answered 400 with the reason
	}
	nc.SetDeadline(time.Time{}) // from now on, pings keep it alive
	c := &conn{s: s, nc: nc, client: client}
	c.seen.Store(time.Now().Unix())
	if !s.track(c) {
		c.close(ws.StatusGoingAway, "tracker shutting down")
		return
	}
	defer s.untrack(c)
	c.serve()
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// untrack forgets a closed connection and takes its peer out of every
// swarm it joined.
func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	for i := range c.joined {
		s.swarms.Leave(&c.joined[i].infoHash, &c.joined[i].peerID, c)
	}
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

// Run pings idle connections, closes dead ones and expires silent peers,
// every ping interval, until stop is closed.
func (s *Server) Run(stop <-chan struct{}) {
	tick := time.NewTicker(s.opts.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			s.keepAlive(now)
			_, ttl := s.opts.Intervals()
			s.swarms.Expire(now.Add(-ttl))
		}
	}
}

// keepAlive pings every connection, and closes those that have sent
// nothing, not even a pong, for 2.5 ping intervals.
func (s *Server) keepAlive(now time.Time) {
	dead := now.Add(-s.opts.PingInterval * 5 / 2).Unix()
	for _, c := range s.snapshot() {
		if c.seen.Load() < dead {
			c.nc.Close()
			continue
		}
		c.write(ws.OpPing, nil)
	}
}

// Close says goodbye (close code 1001) to every connection and closes it;
// later upgrades are refused the same way.
func (s *Server) Close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	for _, c := range s.snapshot() {
		c.close(ws.StatusGoingAway, "tracker shutting down")
	}
}

// Swarms are the WebSocket peers' figures.
func (s *Server) Swarms() wsswarm.Stats { return s.swarms.Stats() }

// conn is one WebSocket connection. Only its own goroutine reads it and
// touches joined; any goroutine may write to it.
type conn struct {
	s      *Server
	nc     net.Conn
	client netip.Addr
	seen   atomic.Int64 // unix seconds of the last frame received
	wmu    sync.Mutex
	closed atomic.Bool

	// joined are the swarms its peers are in, to be left when it closes.
	// Several clients may share one connection (WebTorrent pools its
	// sockets per tracker URL), each with its own peer id.
	joined []membership
	picked []*conn
}

type membership struct {
	infoHash bittorrent.InfoHash
	peerID   bittorrent.PeerID
}
