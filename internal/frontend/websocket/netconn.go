package websocket

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// WebSockets over a net.Conn: the https frontend's TLS connections, which
// no polling loop can serve (their bytes are not the socket's). Such a
// connection is a conn like any other, in the same swarms, with the same
// stages, limits, pings and counters; what a loop does for a descriptor,
// two goroutines do for it:
//   - its reader (readNet) reads frames for as long as it is open, in a
//     small buffer of its own, and ends it;
//   - a writer (flushNet), started when a frame is queued and none is
//     running, writes out what is queued, so that no sender ever blocks,
//     within the write timeout; a connection that does not take its
//     frames is shut, as one owing more than maxUnsent is.
//
// Its descriptor is -1 and its loop nil; the net.Conn and the writer's
// flag are kept aside (Server.netConns), so that conn, what every browser
// costs, does not grow.

// netConn is what a conn served over a net.Conn has besides.
type netConn struct {
	nc       net.Conn
	flushing bool // under the conn's wmu: a writer is running
}

// netReadBuffer is what a net.Conn connection that cannot wait (Waiter)
// reads into: small, since an idle one holds it; a frame longer than that
// gathers in conn.in.
const netReadBuffer = 1024

// Waiter is a net.Conn that can wait for its next bytes with no read under
// way (the https frontend's TLS connections): an idle one then holds no
// buffer, and its reader a small stack. WaitReadable returns once a Read
// of WaitedReadBuffer bytes would not wait for the network, or with the
// read deadline's error.
type Waiter interface {
	WaitReadable() error
}

// WaitedReadBuffer is what a Waiter is read into, pooled: 16 KiB, a TLS
// record's whole plaintext, so that one Read drains the record.
const WaitedReadBuffer = 16 << 10

var waitedPool = sync.Pool{New: func() any { return new([WaitedReadBuffer]byte) }}

// ServeConn answers the upgrade request of nc (read and checked by the
// https frontend), from client, and serves nc as a WebSocket on
// goroutines of its own until it ends, then closes it. True: it took nc,
// in its slot under http.max_connections, which it frees when the
// connection ends. False: it refused the upgrade (503, 400) and answered
// it, and nc is still the caller's, to close.
func (s *Server) ServeConn(nc net.Conn, request []byte, client netip.Addr) bool {
	if !reserve(&s.counters.Connections, s.opts.MaxConnections) {
		s.counters.ConnectionsRefused.Add(1)
		writeWithin(nc, tooManyConnections, s.opts.WriteTimeout)
		return false
	}
	reply, ok := s.handshake(request)
	if !ok {
		writeWithin(nc, reply, s.opts.WriteTimeout)
		s.counters.Connections.Add(-1)
		return false
	}
	if !s.addReader() { // closing: Run waits for the readers already
		s.counters.Connections.Add(-1)
		return false
	}
	c := &conn{s: s, fd: -1, client: client}
	c.seen.Store(time.Now().UnixMilli())
	s.netConns.Store(c, &netConn{nc: nc})
	if !c.sendUpgrade(reply) || !s.track(c) {
		c.close(ws.StatusGoingAway, "tracker shutting down")
	}
	// A fresh goroutine reads: its stack starts small, unlike that of the
	// caller's, which shook hands.
	go c.readNet(nc)
	return true
}

// addReader counts a reader for Run to wait for; false if the server is
// closing.
func (s *Server) addReader() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.netWG.Add(1)
	return true
}

// writeWithin writes p to nc within timeout.
func writeWithin(nc net.Conn, p []byte, timeout time.Duration) {
	nc.SetWriteDeadline(time.Now().Add(timeout))
	nc.Write(p)
}

// netSide is c's net.Conn side, or nil once its reader closed it.
func (c *conn) netSide() *netConn {
	n, ok := c.s.netConns.Load(c)
	if !ok {
		return nil // its reader has closed it
	}
	return n.(*netConn)
}

// readNet reads and handles frames until the connection is shut, its
// client goes or its linger ends, then closes it: the loop's part.
func (c *conn) readNet(nc net.Conn) {
	defer c.s.netWG.Done()
	if w, ok := nc.(Waiter); ok {
		c.readWaiting(nc, w)
	} else {
		buf := make([]byte, netReadBuffer)
		for !c.isShut() && c.readInto(nc, buf) {
		}
	}
	c.shut()
	nc.Close()
	c.s.netConns.Delete(c)
	c.s.forget(c)
}

// readWaiting waits for bytes, then reads and handles them on a goroutine
// of its own, whose stack grows as a message needs and goes with it: the
// waiting one, which an idle connection keeps, stays small.
func (c *conn) readWaiting(nc net.Conn, w Waiter) {
	done := make(chan bool)
	for !c.isShut() && w.WaitReadable() == nil {
		go func() {
			buf := waitedPool.Get().(*[WaitedReadBuffer]byte)
			defer waitedPool.Put(buf)
			done <- c.readInto(nc, buf[:])
		}()
		if !<-done {
			return
		}
	}
}

// readInto reads once into buf and handles what came; false at the end of
// the stream, or on an error or the read deadline.
func (c *conn) readInto(nc net.Conn, buf []byte) bool {
	n, err := nc.Read(buf)
	if n > 0 {
		c.received(buf[:n])
	}
	return err == nil
}

// queueNet queues frame for the writer, under wmu, and starts one if none
// runs; false if the connection owes too much and must be shut.
func (c *conn) queueNet(frame []byte) bool {
	n := c.netSide()
	if n == nil || c.isShut() || len(c.out)+len(frame) > maxUnsent {
		return false
	}
	c.out = append(c.out, frame...)
	if !n.flushing {
		n.flushing = true
		go c.flushNet(n)
	}
	return true
}

// flushNet writes what is queued until nothing is; once a close frame is
// all out, it ends the sending side (TLS close_notify, then FIN).
func (c *conn) flushNet(n *netConn) {
	for {
		c.wmu.Lock()
		out := c.out
		c.out = nil
		if len(out) == 0 || c.isShut() {
			n.flushing = false
			closing := c.isClosing() && !c.isShut()
			c.wmu.Unlock()
			if closing {
				n.closeWrite(c.s.opts.WriteTimeout)
			}
			return
		}
		c.wmu.Unlock()
		n.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		if _, err := n.nc.Write(out); err != nil {
			c.wmu.Lock()
			n.flushing = false
			c.wmu.Unlock()
			c.shut()
			return
		}
	}
}

// closeWrite ends the sending side, if the connection can.
func (n *netConn) closeWrite(timeout time.Duration) {
	if cw, ok := n.nc.(interface{ CloseWrite() error }); ok {
		n.nc.SetWriteDeadline(time.Now().Add(timeout))
		cw.CloseWrite()
	}
}

// retire has the connection closed at the latest at at: a loop's
// connection by its loop, a net.Conn's by its reader, whose reads end
// then.
func (c *conn) retire(at time.Time) {
	if c.fd >= 0 {
		c.loop.Retire(c, at)
		return
	}
	if n := c.netSide(); n != nil {
		n.nc.SetReadDeadline(at)
	}
}

// shutNet wakes the reader and any writer of a net.Conn connection being
// shut: their reads and writes fail from now on.
func (c *conn) shutNet() {
	if n := c.netSide(); n != nil {
		n.nc.SetDeadline(time.Unix(1, 0))
	}
}
