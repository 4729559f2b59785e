package websocket

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/wsswarm"
	"golang.org/x/sys/unix"
)

// conn is one WebSocket connection, after its handshake: a non-blocking
// socket in one of the server's polling loops. An idle one costs this
// struct and its place in the loop's map: no goroutine, no buffer.
//
// Its life has three stages, and only moves forward:
//   - open: frames flow both ways;
//   - closing: the tracker's close frame is queued and nothing more will be
//     sent; the connection has left its swarms, and its loop reads only to
//     see the peer's close frame or end of stream, for at most lingerTime;
//   - shut: the socket is shut down (shutdown(2)), and nobody but its loop
//     touches the descriptor again; the loop closes it.
//
// Any goroutine may close or shut a connection (a relay that finds it owes
// too much, the keep-alive tick, the server's shutdown), but only the
// connection's loop closes its descriptor, after taking it out of epoll.
// The descriptor's number stays taken, and so cannot name another
// connection, until no goroutine can use it: writers use it only under
// wmu while the connection is not shut, and the loop alone reads.
type conn struct {
	s      *Server
	loop   *engine.Loop
	fd     int
	client netip.Addr
	seen   atomic.Int64 // unix milliseconds of the last frame received
	// partialSince is when a fragmented message or a frame began to
	// arrive and is not whole yet (unix seconds), or 0: a client trickling
	// one is cut off.
	partialSince atomic.Int64

	wmu sync.Mutex // guards changes of stage, and out, and serializes writes
	out []byte     // what the socket has not taken yet

	// stage is open, closing or shut; it changes under wmu, and is read
	// without it. The flags beside it share its word, each with its own
	// guard: the loop's unframed, once a frame was refused before its
	// end; gone (under mu), once the connection has left its swarms, after
	// which no announce joins one; forgotten (under Server.mu), once the
	// server no longer counts it. An idle connection's size is what a
	// tracker of browsers pays per peer.
	stage                     atomic.Uint32
	unframed, gone, forgotten bool

	// The loop's alone: bytes of a frame not yet whole, the parts of a
	// fragmented message so far, where picked peers go.
	in, message []byte
	picked      []*conn

	mu sync.Mutex
	// joined are the swarms the connection's peers are in. Several
	// clients may share one connection (WebTorrent pools its sockets per
	// tracker URL), each with its own peer id.
	joined []membership
}

// A connection's stages.
const (
	stageOpen    uint32 = iota
	stageClosing        // the close frame is queued: nothing is sent after it
	stageShut           // nobody but the loop touches the descriptor
)

// isClosing reports whether the connection is closing or shut.
func (c *conn) isClosing() bool { return c.stage.Load() != stageOpen }

// isShut reports whether the connection is shut.
func (c *conn) isShut() bool { return c.stage.Load() == stageShut }

type membership struct {
	infoHash bittorrent.InfoHash
	peerID   bittorrent.PeerID
}

// maxUnsent bounds what a connection that does not read may owe: past it,
// the connection is shut.
const maxUnsent = 256 << 10

// lingerTime is how long a closing connection waits for the peer's close
// frame or end of stream before it is shut anyway.
const lingerTime = 2 * time.Second

// shutdownLinger replaces lingerTime once the server is closing, so that
// peers that never answer the goodbye do not hold shutdown up: HTTPS's
// grace, for a wss:// peer's reader, which shutdown waits for.
const shutdownLinger = 500 * time.Millisecond

// errConnectionClosing: the connection began to close while the message
// was on its way; it gets no answer.
var errConnectionClosing = &bittorrent.ClientError{Message: "connection closing"}

// announce records a for c's peer, as one step with respect to c's end:
// either the peer joins and c will take it out of the swarm when it ends,
// or c has already left its swarms and the peer joins nothing. A
// connection may join at most MaxTorrentsPerConnection swarms.
func (c *conn) announce(a *wsswarm.Announce[*conn], picked []*conn) ([]*conn, bittorrent.ScrapeStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return picked, bittorrent.ScrapeStats{}, errConnectionClosing
	}
	m := membership{a.InfoHash, a.PeerID}
	at := c.indexOf(m)
	stopped := a.Event == bittorrent.EventStopped
	if !stopped && at < 0 && len(c.joined) >= MaxTorrentsPerConnection {
		return picked, bittorrent.ScrapeStats{}, errTooManyTorrents
	}
	picked, st, err := c.s.swarms.Announce(a, picked)
	switch {
	case err != nil:
	case stopped && at >= 0:
		c.joined[at] = c.joined[len(c.joined)-1]
		c.joined = c.joined[:len(c.joined)-1]
	case !stopped && at < 0:
		c.joined = append(c.joined, m)
	}
	return picked, st, err
}

func (c *conn) indexOf(m membership) int {
	for i := range c.joined {
		if c.joined[i] == m {
			return i
		}
	}
	return -1
}

// leave takes the connection's peers out of every swarm they joined, once;
// no announce of its own can put one back afterwards.
func (c *conn) leave() {
	c.mu.Lock()
	joined := c.joined
	c.joined, c.gone = nil, true
	c.mu.Unlock()
	for i := range joined {
		c.s.swarms.Leave(&joined[i].infoHash, &joined[i].peerID, c)
	}
}

// fail closes the connection for a protocol error of the client's.
func (c *conn) fail(code ws.StatusCode, reason string) {
	c.s.counters.BadRequest.Add(1)
	c.close(code, reason)
}

// close starts the closing handshake: it sends a close frame with code
// and reason, sends nothing after it, and leaves the swarms. Once the
// frame is out the socket's sending side is shut (FIN); the loop then
// waits a little for the peer's close frame or end of stream, and shuts
// the connection.
func (c *conn) close(code ws.StatusCode, reason string) {
	frame := appendFrame(nil, ws.OpClose, ws.NewCloseFrameBody(code, reason))
	c.wmu.Lock()
	if c.isClosing() {
		c.wmu.Unlock()
		return
	}
	c.stage.Store(stageClosing)
	ok := c.sendLocked(frame)
	if ok && len(c.out) == 0 && c.fd >= 0 { // over a net.Conn, its writer does
		unix.Shutdown(c.fd, unix.SHUT_WR)
	}
	c.wmu.Unlock()
	if !ok {
		c.shut()
		return
	}
	c.leave()
	linger := lingerTime
	if c.s.shuttingDown() {
		linger = shutdownLinger
	}
	c.retire(time.Now().Add(linger))
}

// shut ends the connection at once, from any goroutine: it shuts the
// socket down, which wakes the loop, leaves the swarms, and hands the
// descriptor to its loop to close.
func (c *conn) shut() {
	c.wmu.Lock()
	if c.isShut() {
		c.wmu.Unlock()
		return
	}
	c.stage.Store(stageShut)
	c.out = nil
	if c.fd >= 0 {
		unix.Shutdown(c.fd, unix.SHUT_RDWR)
	} else {
		c.shutNet()
	}
	c.wmu.Unlock()
	c.leave()
	c.retire(time.Now())
}

// The connection as the engine sees it.

// FD is the connection's descriptor.
func (c *conn) FD() int { return c.fd }

// IsShut reports whether the connection is shut.
func (c *conn) IsShut() bool { return c.isShut() }

// Shut ends the connection at once.
func (c *conn) Shut() { c.shut() }

// Ready serves the socket's events: it sends what was kept back, and reads.
func (c *conn) Ready(events uint32, buf []byte) {
	if events&unix.EPOLLOUT != 0 {
		c.writable()
	}
	if events&(engine.ReadEvents|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !c.isShut() {
		c.readable(buf)
	}
}

// Poked: nothing asks a WebSocket's loop for a poke.
func (c *conn) Poked(time.Time) {}

// Closed: the loop closed the descriptor; the server forgets c.
func (c *conn) Closed() { c.s.forget(c) }
