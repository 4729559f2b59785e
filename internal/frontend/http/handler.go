package http

import (
	"errors"
	"net/netip"
	"strconv"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/metrics"
)

// errNoClientAddress refuses a request whose trusted proxy named no address
// it could read: guessing (the connection's address, the ip parameter)
// would let any client behind the proxy pick its address.
var errNoClientAddress = &bittorrent.ClientError{Message: "the proxy's real-IP header names no client address"}

// handle composes the reply to one request in c.out. It does not write:
// the caller does, on whatever carries the connection.
func (s *Server) handle(c *conn, counters *metrics.HTTP, r *request) {
	c.full = fullAsk{}
	client, ok := s.clientAddr(r)
	if ok && !s.opts.Budget.AllowNow(client) {
		s.refuseRate(c, counters)
		r.keepAlive = false
		return
	}
	if !s.hosts.Load().Allowed(r.host, r.hasHost) {
		s.misdirected(c, counters)
		r.keepAlive = false
		return
	}
	switch string(r.path) {
	case "/announce", "/scrape":
	default:
		counters.Errors[metrics.ReasonNotFound].Add(1)
		composeFailure(c, 404, "Not Found", "not found: the announce URL ends in /announce", r.keepAlive)
		return
	}
	if string(r.method) != "GET" {
		counters.BadRequest.Add(1)
		counters.Errors[metrics.ReasonMalformed].Add(1)
		composeFailure(c, 405, "Method Not Allowed", "only GET is served", r.keepAlive)
		return
	}
	if !ok {
		counters.BadRequest.Add(1)
		s.fail(c, counters, errNoClientAddress, r.keepAlive)
		return
	}
	if string(r.path) == "/announce" {
		s.announce(c, counters, r, client)
		return
	}
	s.scrape(c, counters, r, client)
}

func (s *Server) announce(c *conn, counters *metrics.HTTP, r *request, client netip.Addr) {
	if err := httpproto.ParseAnnounce(r.query, &c.req, &c.opts); err != nil {
		counters.BadRequest.Add(1)
		s.fail(c, counters, err, r.keepAlive)
		return
	}
	if c.opts.IP.IsValid() && !r.hasRealIP && s.trusted(r.peer) {
		client = c.opts.IP // a trusted proxy's ip parameter, when no header said
	}
	c.req.Addr = client
	c.req.BothFamilies = true
	if err := s.tracker.Announce(&c.req, &c.resp); err != nil {
		s.fail(c, counters, err, r.keepAlive)
		return
	}
	counters.Answer(metrics.ActionAnnounce, client)
	if s.log.IsLevelEnabled(logrus.DebugLevel) {
		s.log.Debugf("http announce %s from %s port %d event %d left %d: %d peers", c.req.InfoHash, client, c.req.Port, c.req.Event, c.req.Left, len(c.resp.Peers4)+len(c.resp.Peers6))
	}
	c.body = httpproto.AppendAnnounceResponse(c.body[:0], &c.resp, c.opts)
	compose(c, 200, "OK", r.keepAlive)
}

func (s *Server) scrape(c *conn, counters *metrics.HTTP, r *request, client netip.Addr) {
	var err error
	c.hashes, err = httpproto.ParseScrape(r.query, c.hashes[:0])
	if err == httpproto.ErrMissingInfoHash {
		s.fullScrape(c, counters, r, client)
		return
	}
	if err != nil {
		counters.BadRequest.Add(1)
		s.fail(c, counters, err, r.keepAlive)
		return
	}
	c.stats = c.stats[:0]
	for i := range c.hashes {
		st, err := s.tracker.Scrape(c.hashes[i].InfoHash())
		if err != nil {
			s.fail(c, counters, err, r.keepAlive)
			return
		}
		c.stats = append(c.stats, st)
	}
	counters.Answer(metrics.ActionScrape, client)
	c.body = httpproto.AppendScrapeResponse(c.body[:0], c.hashes, c.stats)
	compose(c, 200, "OK", r.keepAlive)
}

// fail answers an error, a parser's or the tracker's refusal, with a
// bencoded failure reason. Trackers send those with status 200: that is
// what clients read them from.
func (s *Server) fail(c *conn, counters *metrics.HTTP, err error, keepAlive bool) {
	counters.Fail(err)
	var ce *bittorrent.ClientError
	msg := "internal error"
	if errors.As(err, &ce) {
		msg = ce.Message
	} else {
		s.log.WithError(err).Error("http request failed")
	}
	composeFailure(c, 200, "OK", msg, keepAlive)
}

// composeFailure composes a bencoded failure reason with the given status.
// The caller has counted it.
func composeFailure(c *conn, status int, text, reason string, keepAlive bool) {
	c.body = httpproto.AppendFailure(c.body[:0], reason)
	compose(c, status, text, keepAlive)
}

// misdirected composes the answer to a request for a host not served:
// 421, and the connection closes.
func (s *Server) misdirected(c *conn, counters *metrics.HTTP) {
	counters.Refuse(metrics.RefusalHost)
	c.body = httpproto.AppendFailure(c.body[:0], "misdirected request: this tracker does not serve that host name")
	compose(c, 421, "Misdirected Request", false)
}

// refuseRate composes the answer to a request over its source's budget:
// 429, with when to come back, and the connection closes.
func (s *Server) refuseRate(c *conn, counters *metrics.HTTP) {
	counters.Refuse(metrics.RefusalRate)
	c.body = httpproto.AppendFailure(c.body[:0], "too many requests from your address, slow down")
	composeRetry(c, 429, "Too Many Requests", false, s.opts.Budget.RetryAfter())
}

// compose puts the status line, headers and c.body in c.out, to go out in
// one write.
func compose(c *conn, status int, text string, keepAlive bool) {
	composeRetry(c, status, text, keepAlive, 0)
}

// composeRetry is compose with a Retry-After header of that many seconds,
// unless 0.
func composeRetry(c *conn, status int, text string, keepAlive bool, retryAfter int) {
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
	if retryAfter > 0 {
		out = append(out, "\r\nRetry-After: "...)
		out = strconv.AppendInt(out, int64(retryAfter), 10)
	}
	out = append(out, "\r\n\r\n"...)
	out = append(out, c.body...)
	c.out = out
}

// rejectReply composes the answer to a request the server will not read
// to the end, from peer: 429 if peer is over its budget, else status. The
// connection then closes.
func (s *Server) rejectReply(c *conn, counters *metrics.HTTP, peer netip.Addr, status int, text, reason string) {
	if !s.trusted(peer) && !s.opts.Budget.AllowNow(peer) {
		s.refuseRate(c, counters)
		return
	}
	counters.BadRequest.Add(1)
	counters.Errors[metrics.ReasonMalformed].Add(1)
	composeFailure(c, status, text, reason, false)
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
