package https

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
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
// and gives its slot back unless the WebSocket has it.
func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	rc := &recordConn{Conn: nc}
	tc := tls.Server(rc, s.config)
	handed := s.converse(tc, rc, addrOf(nc.RemoteAddr()))
	s.untrack(nc)
	if !handed {
		nc.Close()
		s.opts.Open.Add(-1)
	}
}

// converse shakes hands, then reads and answers requests until the last
// reply, an error, a timeout or Close; true if the connection became a
// WebSocket, which has it now.
func (s *Server) converse(tc *tls.Conn, rc *recordConn, peer netip.Addr) bool {
	tc.SetDeadline(time.Now().Add(s.opts.ReadTimeout))
	if err := tc.Handshake(); err != nil {
		s.log.Debugf("https %s: handshake with %s: %v", s.Addr(), peer, err)
		return false
	}
	b := bufferPool.Get().(*buffers)
	defer func() {
		if b != nil {
			b.out = b.out[:0]
			bufferPool.Put(b)
		}
	}()
	have, served, unread := 0, 0, false
	for {
		if !unread {
			n, _ := tc.Read(b.in[have:])
			if n == 0 {
				return false // closed, reset, a timeout, or Close
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
		switch answered.Outcome {
		case http.WriteFull:
			keep, err := s.ex.WriteFullScrape(tc, tc.SetWriteDeadline, answered.Full)
			if err != nil {
				return false
			}
			if !keep {
				s.finish(tc)
				return false
			}
		case http.Upgrade:
			request := bytes.Clone(b.in[used:have])
			b.out = b.out[:0]
			bufferPool.Put(b)
			b = nil
			return s.upgrade(tc, rc, request, answered.Client)
		case http.Close:
			s.finish(tc)
			return false
		}
		have = copy(b.in[:], b.in[used:have])
		if used > 0 { // the next request's clock starts, idle or not
			tc.SetReadDeadline(time.Now().Add(s.opts.ReadTimeout))
		}
		if s.isClosing() {
			s.finish(tc)
			return false
		}
	}
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
	tc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	_, err := tc.Write(out)
	return err == nil
}

// upgrade hands the connection to the WebSocket frontend, which serves
// it until it ends; true if it took it. The connection is then no longer
// this server's: its reads have no deadline (pings keep it alive), and
// Close leaves it to the WebSocket frontend.
func (s *Server) upgrade(tc *tls.Conn, rc *recordConn, request []byte, client netip.Addr) bool {
	tc.SetDeadline(time.Time{})
	s.untrack(rc.Conn)
	if s.opts.WebSocket.ServeConn(newWSConn(tc, rc), request, client) {
		return true
	}
	s.finish(tc)
	return false
}

// finish ends a connection gracefully after its last reply: it says so
// (close_notify, then FIN), then reads what the client still sends until
// it closes too, lingerTime passes or lingerBytes came.
func (s *Server) finish(tc *tls.Conn) {
	tc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	if tc.CloseWrite() != nil {
		return
	}
	tc.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, io.LimitReader(tc, lingerBytes))
}
