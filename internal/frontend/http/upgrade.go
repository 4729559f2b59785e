package http

import (
	"net/netip"

	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/metrics"
)

// Upgrader takes over connections that ask to become WebSockets (the
// WebTorrent frontend).
type Upgrader interface {
	// Upgrade takes over the connection on descriptor fd, in loop, whose
	// upgrade request is request (read and checked already), from client.
	// It is called on the loop's goroutine, and uses request only until it
	// returns. True: the connection is the Upgrader's from now on, in its
	// slot under http.max_connections, which it frees when the connection
	// ends; false: it answered with an error, and fd is still the caller's.
	Upgrade(loop *engine.Loop, fd int, request []byte, client netip.Addr) bool
}

// wantsUpgrade reports whether r asks for a WebSocket where one is served:
// a GET of the announce path with Upgrade: websocket. Anything else is
// served as plain HTTP.
func (s *Server) wantsUpgrade(r *request) bool {
	return r.upgrade && s.opts.WebSocket != nil && string(r.method) == "GET" && string(r.path) == "/announce"
}

// admitUpgrade applies to an upgrade what applies to any request, in the
// same order: the per-IP budget (charged to the client as resolved through
// a trusted proxy) and the host list. A refused upgrade's answer is
// composed in c.out; false then.
func (s *Server) admitUpgrade(c *conn, counters *metrics.HTTP, r *request) (netip.Addr, bool) {
	client, ok := s.clientAddr(r)
	switch {
	case !ok:
		counters.BadRequest.Add(1)
		s.fail(c, counters, errNoClientAddress, false)
	case !s.opts.Budget.AllowNow(client):
		s.refuseRate(c, counters)
	case !s.hosts.Load().Allowed(r.host, r.hasHost):
		s.misdirected(c, counters)
	default:
		return client, true
	}
	return client, false
}

// upgrade hands the stream to the WebSocket frontend, raw being its
// upgrade request, the last it sent. The connection is no longer idle or
// waiting in the HTTP frontend's eyes: it is never evicted to make room,
// and http.read_timeout no longer applies; the WebSocket frontend's pings
// keep it alive instead.
func (c *stream) upgrade(sc *conn, raw []byte, r *request, more bool) verdict {
	if more { // bytes after the request: frames sent before the 101
		c.s.rejectReply(sc, c.counters, c.peer, 400, "Bad Request", "data after a WebSocket upgrade request: wait for 101 Switching Protocols (RFC 6455 section 4.1)")
		return lastReply
	}
	client, ok := c.s.admitUpgrade(sc, c.counters, r)
	if !ok {
		return lastReply
	}
	if len(sc.batch) > 0 { // replies to the requests before it go first
		if n, err := engine.Write(c.fd, sc.batch); err != nil || n < len(sc.batch) {
			c.end()
			return stop
		}
	}
	c.waitingSince.Store(0)
	if c.s.opts.WebSocket.Upgrade(c.loop, c.fd, raw, client) {
		c.releaseIn()
		c.s.handOver(c)
		return stop
	}
	c.ending = true // it answered already
	c.releaseIn()
	c.closeGracefully()
	return stop
}
