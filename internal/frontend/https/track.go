package https

import (
	"net"
	"sync/atomic"
	"time"
)

// The connections a server has, as Close and eviction see them. Each is
// tracked from its accept until it ends or becomes a WebSocket: Close
// wakes and cuts them all, the refused ones included, and eviction closes
// the one idle the longest when a new connection needs a slot under
// http.max_connections. Idle is what the HTTP frontend's engine calls
// idle, waiting for a request with nothing of one received, and also
// still in the TLS handshake: neither owes its client anything, and both
// are what silent sockets look like.

// tracked is one connection of the server's.
type tracked struct {
	nc net.Conn
	// idleSince is when the connection began to be idle (unix
	// nanoseconds): in its handshake since its accept, or between
	// requests with nothing of the next received. 0: busy with a request;
	// evicted or ended: see below.
	idleSince atomic.Int64
	// counted says it holds a slot under http.max_connections; a refused
	// connection, being answered 503, holds none and is never evicted.
	counted bool
}

// idleSince's marks.
const (
	evicted = -1 // closed to make room: its slot is given back already
	ended   = -2 // its goroutine gave its slot back, or handed it on
)

// leaveIdle marks t busy, as bytes of a request came; false if it was
// evicted (its slot is gone: it must answer nothing more).
func (t *tracked) leaveIdle() bool {
	for {
		v := t.idleSince.Load()
		if v < 0 {
			return false
		}
		if t.idleSince.CompareAndSwap(v, 0) {
			return true
		}
	}
}

// becomeIdle marks t idle from now, unless it was evicted.
func (t *tracked) becomeIdle() { t.idleSince.CompareAndSwap(0, time.Now().UnixNano()) }

// release ends t's claim to its slot; true if the slot is still its own
// to give back (it was not evicted, which gave it back already).
func (t *tracked) release() bool { return t.idleSince.Swap(ended) != evicted }

// track counts nc among the connections Close ends, idle from now, as
// holding a slot if counted; nil if the server is closing.
func (s *Server) track(nc net.Conn, counted bool) *tracked {
	t := &tracked{nc: nc, counted: counted}
	t.idleSince.Store(time.Now().UnixNano())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	s.conns[t] = struct{}{}
	s.wg.Add(1)
	return t
}

// untrack forgets t: it ended, or is a WebSocket's now.
func (s *Server) untrack(t *tracked) {
	s.mu.Lock()
	delete(s.conns, t)
	s.mu.Unlock()
}

// EvictIdle closes the connection idle the longest, in its handshake or
// between requests, to make room for a new one at the connection cap, and
// reports whether there was one. Its slot is given back at once; its
// goroutine then finds it closed, and gives back nothing more.
func (s *Server) EvictIdle() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for {
		var oldest *tracked
		var since int64
		for t := range s.conns {
			if v := t.idleSince.Load(); v > 0 && t.counted && (oldest == nil || v < since) {
				oldest, since = t, v
			}
		}
		if oldest == nil {
			return false
		}
		// It may have received a request meanwhile: then look again.
		if oldest.idleSince.CompareAndSwap(since, evicted) {
			s.opts.Open.Add(-1)
			oldest.nc.Close()
			s.ex.CountEviction()
			return true
		}
	}
}

// closeGrace is how long, after Close, the replies under way have to go
// out, and a connection to say it is done: every deadline is cut to it.
const closeGrace = 500 * time.Millisecond

// setReadDeadline and setWriteDeadline set nc's deadlines, to at most
// Close's cut-off once it was called.
func (s *Server) setReadDeadline(nc net.Conn, at time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return nc.SetReadDeadline(s.cut(at))
}

func (s *Server) setWriteDeadline(nc net.Conn, at time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return nc.SetWriteDeadline(s.cut(at))
}

// cut is at, or Close's cut-off if that is earlier; s.mu is held.
func (s *Server) cut(at time.Time) time.Time {
	if s.closing && at.After(s.cutOff) {
		return s.cutOff
	}
	return at
}

// Close stops accepting, wakes every connection waiting for a request or
// in its handshake, refused ones too, which then close, and gives the
// replies under way (a full scrape's too) closeGrace to go out: Serve
// returns within about that. WebSockets are the WebSocket frontend's to
// close.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	now := time.Now()
	s.cutOff = now.Add(closeGrace)
	for t := range s.conns {
		t.nc.SetReadDeadline(now)
		t.nc.SetWriteDeadline(s.cutOff)
	}
	s.mu.Unlock()
	return s.ln.Close()
}
