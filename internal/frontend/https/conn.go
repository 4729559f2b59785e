package https

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/trakx/trakx/internal/frontend/http"
)

// buffers are a connection's: the request read, and the replies to the
// requests read with it. They are held while the connection is open
// (its goroutine waits in a read into one) and pooled after.
type buffers struct {
	in  [http.MaxRequestSize]byte
	out []byte
}

var bufferPool = sync.Pool{New: func() any { return &buffers{out: make([]byte, 0, 4096)} }}

// lingerTime is how long a connection that got its last reply is read
// from, and discarded, before it is closed: closing with unread bytes
// would reset it, and the reset can overtake the reply. lingerBytes
// bounds what is read meanwhile.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 64 << 10
)

// serveConn serves one connection until it ends or becomes a WebSocket,
// and gives its slot back unless the WebSocket has it or it was evicted.
func (s *Server) serveConn(t *tracked) {
	defer s.wg.Done()
	rc := &recordConn{Conn: t.nc}
	tc := tls.Server(rc, s.config)
	handed := s.converse(tc, rc, t)
	s.untrack(t)
	if !handed {
		t.nc.Close()
		if t.release() {
			s.opts.Open.Add(-1)
		}
	}
}

// converse shakes hands, then reads and answers requests until the last
// reply, an error, a timeout, an eviction or Close; true if the
// connection became a WebSocket, which has it now.
func (s *Server) converse(tc *tls.Conn, rc *recordConn, t *tracked) bool {
	s.setReadDeadline(t.nc, time.Now().Add(s.opts.ReadTimeout))
	s.setWriteDeadline(t.nc, time.Now().Add(s.opts.ReadTimeout))
	peer := addrOf(t.nc.RemoteAddr())
	if err := tc.Handshake(); err != nil {
		s.log.Debugf("https %s: handshake with %s: %v", s.Addr(), peer, err)
		return false
	}
	b := bufferPool.Get().(*buffers)
	defer func() {
		b.out = b.out[:0]
		bufferPool.Put(b)
	}()
	have, served, unread := 0, 0, false
	for {
		if !unread {
			n, _ := tc.Read(b.in[have:])
			if n == 0 || !t.leaveIdle() {
				return false // closed, reset, a timeout, evicted, or Close
			}
			have += n
		}
		answered, used := s.answer(b, have, peer, &served)
		if !s.send(tc, b.out) {
			return false
		}
		// Requests pipelined after a full scrape are answered before
		// anything more is read.
		unread = answered.Outcome == http.WriteFull && bytes.Contains(b.in[used:have], []byte("\r\n\r\n"))
		if done, handed := s.after(session{tc, rc, t}, b, answered, used, have); done {
			return handed // the WebSocket holds no part of b
		}
		have = copy(b.in[:], b.in[used:have])
		if used > 0 { // the next request's clock starts, idle or not
			s.setReadDeadline(t.nc, time.Now().Add(s.opts.ReadTimeout))
		}
		if have == 0 && !unread {
			t.becomeIdle()
		}
	}
}

// session is a connection as converse holds it: the TLS connection, the
// socket under it, and its tracking.
type session struct {
	tc *tls.Conn
	rc *recordConn
	t  *tracked
}

// after does what the replies sent leave to do: write a full scrape, hand
// the connection to the WebSocket frontend, or close. done says the
// connection is over; handed, that it is the WebSocket's, and b is
// pooled.
func (s *Server) after(c session, b *buffers, answered http.Answered, used, have int) (done, handed bool) {
	tc, t := c.tc, c.t
	switch answered.Outcome {
	case http.WriteFull:
		keep, err := s.ex.WriteFullScrape(tc, func(at time.Time) error { return s.setWriteDeadline(t.nc, at) }, answered.Full)
		if err != nil {
			return true, false
		}
		if !keep {
			s.finish(tc, t)
			return true, false
		}
	case http.Upgrade:
		// converse gives b back as it returns, handed over or not.
		return true, s.upgrade(tc, c.rc, t, bytes.Clone(b.in[used:have]), answered.Client)
	case http.Close:
		s.finish(tc, t)
		return true, false
	}
	if s.isClosing() {
		s.finish(tc, t)
		return true, false
	}
	return false, false
}

// answer composes in b.out the replies to the whole requests in
// b.in[:have] and reports what to do next, and how many bytes the
// requests took. For an Upgrade, the upgrade request is b.in[used:have].
func (s *Server) answer(b *buffers, have int, peer netip.Addr, served *int) (http.Answered, int) {
	b.out = b.out[:0]
	start := 0
	for {
		end := bytes.Index(b.in[start:have], []byte("\r\n\r\n"))
		if end < 0 {
			break
		}
		var answered http.Answered
		b.out, answered = s.ex.Answer(b.out, b.in[start:start+end+4], peer, *served, start+end+4 < have)
		*served++
		switch answered.Outcome {
		case http.Upgrade:
			return answered, start
		case http.WriteFull, http.Close:
			return answered, start + end + 4
		}
		start += end + 4
	}
	if have-start >= http.MaxRequestSize {
		b.out = s.ex.TooLarge(b.out, peer)
		return http.Answered{Outcome: http.Close}, have
	}
	return http.Answered{Outcome: http.KeepAlive}, start
}

// send writes out within the write timeout; false if it could not.
func (s *Server) send(tc *tls.Conn, out []byte) bool {
	if len(out) == 0 {
		return true
	}
	s.setWriteDeadline(tc, time.Now().Add(s.opts.WriteTimeout))
	_, err := tc.Write(out)
	return err == nil
}

// upgrade hands the connection to the WebSocket frontend, which serves
// it until it ends; true if it took it. The connection is then no longer
// this server's: its reads have no deadline (pings keep it alive), and
// Close leaves it to the WebSocket frontend.
func (s *Server) upgrade(tc *tls.Conn, rc *recordConn, t *tracked, request []byte, client netip.Addr) bool {
	s.untrack(t)
	tc.SetDeadline(time.Time{})
	if s.opts.WebSocket.ServeConn(newWSConn(tc, rc), request, client) {
		t.release() // the WebSocket frontend has the slot
		return true
	}
	s.finish(tc, t)
	return false
}

// finish ends a connection gracefully after its last reply: it says so
// (close_notify, then FIN), then reads what the client still sends until
// it closes too, lingerTime passes or lingerBytes came.
func (s *Server) finish(tc *tls.Conn, t *tracked) {
	s.setWriteDeadline(t.nc, time.Now().Add(s.opts.WriteTimeout))
	if tc.CloseWrite() != nil {
		return
	}
	s.setReadDeadline(t.nc, time.Now().Add(lingerTime))
	io.Copy(io.Discard, io.LimitReader(tc, lingerBytes))
}
