package http

import (
	"net"
	"net/netip"
	"time"

	"github.com/trakx/trakx/internal/metrics"
)

// Upgrader takes over connections that ask to become WebSockets (the
// WebTorrent frontend).
type Upgrader interface {
	// ServeWebSocket takes nc over, whose upgrade request is request (read
	// and checked already), from client. True: it serves the connection
	// from now on, in nc's slot under http.max_connections, and frees the
	// slot when the connection ends; false: it answered and is done.
	ServeWebSocket(nc net.Conn, request []byte, client netip.Addr) bool
}

// wantsUpgrade reports whether r asks for a WebSocket where one is served:
// a GET of the announce path with Upgrade: websocket. Anything else is
// served as plain HTTP.
func (s *Server) wantsUpgrade(r *request) bool {
	return r.upgrade && s.opts.WebSocket != nil && string(r.method) == "GET" && string(r.path) == "/announce"
}

// admitUpgrade applies to an upgrade what applies to any request, in the
// same order: the per-IP budget (charged to the client as resolved through
// a trusted proxy) and the host list. A refused upgrade is answered and
// closed here; false then.
func (s *Server) admitUpgrade(nc net.Conn, c *conn, counters *metrics.HTTP, r *request) (netip.Addr, bool) {
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
	s.write(nc, c)
	return client, false
}

// serveUpgraded hands a connection to the WebSocket frontend. It is no
// longer idle or busy in the connection cap's eyes: it is never evicted to
// make room, and the watchdog does not take a quiet WebSocket for a wedged
// request. http.read_timeout no longer applies; the WebSocket frontend's
// pings keep it alive instead.
func (s *Server) serveUpgraded(nc net.Conn, state *connState, request []byte, client netip.Addr) {
	state.idleSince.Store(0)
	state.busySince.Store(0)
	nc.SetReadDeadline(time.Time{})
	if s.opts.WebSocket.ServeWebSocket(nc, request, client) {
		state.idleSince.Store(handedOver) // the slot is the WebSocket's
	}
}
