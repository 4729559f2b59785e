// Package frontend says what a frontend is to the daemon: an adapter that
// reads one protocol's requests from sockets it is given, hands them to the
// tracker (the access gate in front of the swarm store), and writes the
// replies. It knows nothing of any one protocol; the packages under it do:
//
//   - udp: BEP 15 over datagram sockets, one worker per CPU.
//   - http: BEP 3/23/48 over TCP listeners, and the hand-over of WebSocket
//     upgrades on the announce path.
//   - websocket: WebTorrent signalling over the connections http hands it.
//   - https: HTTP and WebSocket over TLS (crypto/tls, a goroutine per
//     connection), answered by http and websocket.
//   - engine: the epoll loops that http and websocket serve their
//     connections in (not a frontend: a machine both ride on).
//
// The daemon keeps its frontends in one list and starts, watches, reloads
// and stops them through this interface, so that a new protocol is its own
// package plus one constructor in the daemon.
package frontend

import (
	"net"
	"time"
)

// Frontend is one protocol served on one socket, or on another frontend's
// sockets (WebSocket on HTTP's).
type Frontend interface {
	// Serve serves until Close has been called and the requests under way
	// are answered, then returns.
	Serve()
	// Close stops taking requests and makes Serve return. It may be
	// called once, from any goroutine.
	Close() error
	// Stalled reports whether the frontend has been on one request for
	// longer than limit: a wedged worker, for the systemd watchdog. One
	// waiting for requests is not stalled, however long it waits.
	Stalled(limit time.Duration) bool
	// Addr is the address of the socket served, or nil for a frontend
	// on another one's sockets.
	Addr() net.Addr
	// Describe says what is served where, for the start-up line: the
	// protocol's name, then the address ("udp 127.0.0.1:6969").
	Describe() string
}
