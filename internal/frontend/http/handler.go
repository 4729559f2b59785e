package http

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/metrics"
)

// errNoClientAddress refuses a request whose trusted proxy named no address
// it could read: guessing (the connection's address, the ip parameter)
// would let any client behind the proxy pick its address.
var errNoClientAddress = &bittorrent.ClientError{Message: "the proxy's real-IP header names no client address"}

// handle answers one request and reports whether the connection may carry
// another.
func (s *Server) handle(nc net.Conn, c *conn, counters *metrics.HTTP, r *request) bool {
	switch string(r.path) {
	case "/announce", "/scrape":
	default:
		return s.reply(nc, c, counters, 404, "Not Found", "not found: the announce URL ends in /announce", r.keepAlive)
	}
	if string(r.method) != "GET" {
		counters.BadRequest.Add(1)
		return s.reply(nc, c, counters, 405, "Method Not Allowed", "only GET is served", r.keepAlive)
	}
	client, ok := s.clientAddr(r)
	if !ok {
		counters.BadRequest.Add(1)
		return s.fail(nc, c, counters, errNoClientAddress, r.keepAlive)
	}
	if string(r.path) == "/announce" {
		return s.announce(nc, c, counters, r, client)
	}
	return s.scrape(nc, c, counters, r)
}

func (s *Server) announce(nc net.Conn, c *conn, counters *metrics.HTTP, r *request, client netip.Addr) bool {
	if err := httpproto.ParseAnnounce(r.query, &c.req, &c.opts); err != nil {
		counters.BadRequest.Add(1)
		return s.fail(nc, c, counters, err, r.keepAlive)
	}
	if c.opts.IP.IsValid() && !r.hasRealIP && s.trusted(r.peer) {
		client = c.opts.IP // a trusted proxy's ip parameter, when no header said
	}
	c.req.Addr = client
	c.req.BothFamilies = true
	if err := s.tracker.Announce(&c.req, &c.resp); err != nil {
		return s.refuse(nc, c, counters, err, r.keepAlive)
	}
	counters.Announce.Add(1)
	if s.log.IsLevelEnabled(logrus.DebugLevel) {
		s.log.Debugf("http announce %s from %s port %d event %d left %d: %d peers", c.req.InfoHash, client, c.req.Port, c.req.Event, c.req.Left, len(c.resp.Peers4)+len(c.resp.Peers6))
	}
	c.body = httpproto.AppendAnnounceResponse(c.body[:0], &c.resp, c.opts)
	return s.send(nc, c, 200, "OK", r.keepAlive)
}

func (s *Server) scrape(nc net.Conn, c *conn, counters *metrics.HTTP, r *request) bool {
	var err error
	c.hashes, err = httpproto.ParseScrape(r.query, c.hashes[:0])
	if err != nil {
		counters.BadRequest.Add(1)
		return s.fail(nc, c, counters, err, r.keepAlive)
	}
	c.stats = c.stats[:0]
	for i := range c.hashes {
		st, err := s.tracker.Scrape(&c.hashes[i])
		if err != nil {
			return s.refuse(nc, c, counters, err, r.keepAlive)
		}
		c.stats = append(c.stats, st)
	}
	counters.Scrape.Add(1)
	c.body = httpproto.AppendScrapeResponse(c.body[:0], c.hashes, c.stats)
	return s.send(nc, c, 200, "OK", r.keepAlive)
}

// refuse answers a request the tracker turned down.
func (s *Server) refuse(nc net.Conn, c *conn, counters *metrics.HTTP, err error, keepAlive bool) bool {
	if err == bittorrent.ErrNotAllowed {
		counters.Refused.Add(1)
	}
	return s.fail(nc, c, counters, err, keepAlive)
}

// fail answers with a bencoded failure reason. Trackers send those with
// status 200: that is what clients read them from.
func (s *Server) fail(nc net.Conn, c *conn, counters *metrics.HTTP, err error, keepAlive bool) bool {
	var ce *bittorrent.ClientError
	msg := "internal error"
	if errors.As(err, &ce) {
		msg = ce.Message
	} else {
		s.log.WithError(err).Error("http request failed")
	}
	return s.reply(nc, c, counters, 200, "OK", msg, keepAlive)
}

// reply sends a bencoded failure reason with the given status.
func (s *Server) reply(nc net.Conn, c *conn, counters *metrics.HTTP, status int, text, reason string, keepAlive bool) bool {
	counters.Error.Add(1)
	c.body = httpproto.AppendFailure(c.body[:0], reason)
	return s.send(nc, c, status, text, keepAlive)
}

// send writes the status line, headers and c.body in one write.
func (s *Server) send(nc net.Conn, c *conn, status int, text string, keepAlive bool) bool {
	out := append(c.out[:0], "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, ' ')
	out = append(out, text...)
	out = append(out, "\r\nContent-Type: text/plain\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(c.body)), 10)
	out = append(out, "\r\nDate: "...)
	out = appendDate(out)
	if !keepAlive {
		out = append(out, "\r\nConnection: close"...)
	}
	out = append(out, "\r\n\r\n"...)
	out = append(out, c.body...)
	c.out = out
	nc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	_, err := nc.Write(out)
	return err == nil
}

// reject answers a request the server will not read to the end, and ends
// the connection without losing the answer to a reset.
func (s *Server) reject(nc net.Conn, c *conn, counters *metrics.HTTP, status int, text, reason string) {
	counters.BadRequest.Add(1)
	s.reply(nc, c, counters, status, text, reason, false)
	closeGracefully(nc, c.in[:])
}

// clientAddr is the connection's address, or the one a trusted proxy's
// real-IP header names; false when that header names none.
func (s *Server) clientAddr(r *request) (netip.Addr, bool) {
	if !r.hasRealIP || !s.trusted(r.peer) {
		return r.peer, true
	}
	return forwardedClient(r.realIP)
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
