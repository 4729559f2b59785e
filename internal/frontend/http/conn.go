package http

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
)

// conn holds one connection's buffers. They are pooled, because clients
// usually open a connection per announce.
type conn struct {
	in     [MaxRequestSize]byte
	body   []byte
	out    []byte
	req    bittorrent.AnnounceRequest
	resp   bittorrent.AnnounceResponse
	opts   httpproto.AnnounceOptions
	hashes []bittorrent.InfoHash
	stats  []bittorrent.ScrapeStats
}

var connPool = sync.Pool{New: func() any {
	return &conn{
		body:   make([]byte, 0, 4096),
		out:    make([]byte, 0, 4096+256),
		hashes: make([]bittorrent.InfoHash, 0, 8),
		stats:  make([]bittorrent.ScrapeStats, 0, 8),
	}
}}

// request is what the frontend needs of one parsed HTTP request.
type request struct {
	method, path, query []byte
	keepAlive           bool
	http11              bool
	close               bool // Connection: close
	hasBody             bool
	realIP              []byte
	hasRealIP           bool // the real-IP header was sent, if empty
	host                []byte
	hasHost             bool
	upgrade             bool // Upgrade: websocket

	peer netip.Addr // the connection's remote address
}

func (s *Server) serveConn(nc net.Conn, state *connState) {
	s.serveConnWith(nc, state, connPool.Get().(*conn), 0)
}

// serveConnWith serves a connection whose first buffered bytes, if any,
// are already in c.in[:buffered] (the fast path read them).
func (s *Server) serveConnWith(nc net.Conn, state *connState, c *conn, buffered int) {
	defer s.wg.Done()
	defer s.untrack(nc)
	defer nc.Close()
	peer := remoteAddr(nc)
	defer func() {
		if c != nil { // not handed over to a WebSocket
			connPool.Put(c)
		}
	}()
	counters := s.counters[s.nextConn.Add(1)%counterGroups]

	start, end := 0, buffered               // buffered bytes not yet handled: c.in[start:end]
	if buffered > 0 && !state.leaveIdle() { // part of a request is in: not idle
		return // evicted meanwhile
	}
	served := 0
	// The read timeout bounds a whole request, not each read of it: a
	// client trickling a byte at a time cannot hold a connection longer.
	timed := false
	for {
		headerEnd := bytes.Index(c.in[start:end], []byte("\r\n\r\n"))
		if headerEnd < 0 {
			if s.isClosing() {
				return
			}
			if start > 0 { // make room for the rest of a partial request
				end = copy(c.in[:], c.in[start:end])
				start = 0
			}
			if end == len(c.in) {
				s.reject(nc, c, counters, 431, "Request Header Fields Too Large", "request too large")
				return
			}
			if !timed {
				nc.SetReadDeadline(time.Now().Add(s.opts.ReadTimeout))
				timed = true
			}
			if end == 0 && state.idleSince.Load() == 0 {
				state.idleSince.Store(time.Now().UnixNano())
			}
			if state.idleSince.Load() == evicted {
				return // evicted before its deadline was set, which undid the eviction's
			}
			n, err := nc.Read(c.in[end:])
			if !state.leaveIdle() {
				if n > 0 { // a request came just as it was evicted: tell it
					nc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
					nc.Write(tooManyConnections)
					closeGracefully(nc, c.in[:])
				}
				return
			}
			if err != nil {
				return // closed, timed out, reset or evicted: nothing to answer
			}
			end += n
			continue
		}
		timed = false
		raw := c.in[start : start+headerEnd+4]
		start += headerEnd + 4
		if start == end {
			start, end = 0, 0
		}
		state.busySince.Store(time.Now().UnixNano())
		var r request
		if !parseRequest(raw, &r, s.opts.RealIPHeader) {
			s.reject(nc, c, counters, 400, "Bad Request", "malformed HTTP request")
			return
		}
		if r.hasBody { // trackers take no bodies; reading past one is not worth it
			s.reject(nc, c, counters, 400, "Bad Request", "request bodies are not accepted")
			return
		}
		r.peer = peer
		if s.wantsUpgrade(&r) {
			if start != 0 { // bytes after the request: frames sent before the 101
				s.reject(nc, c, counters, 400, "Bad Request", "data after a WebSocket upgrade request: wait for 101 Switching Protocols (RFC 6455 section 4.1)")
				return
			}
			if client, ok := s.admitUpgrade(nc, c, counters, &r); ok {
				request := bytes.Clone(raw)
				connPool.Put(c)
				c = nil
				s.serveUpgraded(nc, state, request, client)
			}
			return
		}
		if served++; served == s.opts.MaxRequests {
			r.keepAlive = false // this reply says Connection: close
		}
		s.handle(c, counters, &r)
		more := s.write(nc, c)
		state.busySince.Store(0)
		if !more || !r.keepAlive {
			return
		}
	}
}

// write sends c.out, within the write timeout, and reports whether it went.
func (s *Server) write(nc net.Conn, c *conn) bool {
	nc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	_, err := nc.Write(c.out)
	return err == nil
}
