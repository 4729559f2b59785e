package loadgen

import (
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
)

// httpClient is one worker of a closed-loop HTTP run: one request at a
// time on its connection, a new connection per request unless
// cfg.KeepAlive is set.
type httpClient struct {
	cfg      *Config
	g        *generator
	st       *stats
	counting *atomic.Bool
	conn     net.Conn // nil: none open
	req      bittorrent.AnnounceRequest
	hashes   []bittorrent.InfoHash
	out, in  []byte
}

// runHTTP sends one request at a time until stop.
func runHTTP(cfg *Config, g *generator, st *stats, counting *atomic.Bool, stop <-chan struct{}) error {
	c := &httpClient{cfg: cfg, g: g, st: st, counting: counting, out: make([]byte, 0, 2048), in: make([]byte, 64<<10)}
	defer c.hangUp()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		c.requestOnce()
	}
}

// requestOnce sends the generator's next request and counts its reply.
func (c *httpClient) requestOnce() {
	var k kind
	c.out, c.hashes, k = appendHTTPRequest(c.out[:0], c.cfg, c.g, &c.req, c.hashes)
	start := time.Now()
	if c.conn == nil && !c.dial() {
		c.countTimeout()
		time.Sleep(time.Millisecond) // not listening yet, or out of ports
		return
	}
	c.conn.SetDeadline(start.Add(c.cfg.Timeout))
	body, keep, err := exchange(c.conn, c.out, c.in)
	if !keep || err != nil || !c.cfg.KeepAlive {
		c.hangUp()
	}
	if err != nil {
		c.countTimeout()
		return
	}
	if c.counting.Load() {
		c.st.countHTTPReply(k, body, time.Since(start))
	}
}

func (c *httpClient) dial() bool {
	var conn net.Conn
	var err error
	if c.cfg.Protocol == "https" {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: c.cfg.Timeout}, "tcp", c.cfg.Target, tlsConfig)
	} else {
		conn, err = net.DialTimeout("tcp", c.cfg.Target, c.cfg.Timeout)
	}
	if err != nil {
		return false
	}
	c.conn = conn
	return true
}

// tlsConfig is the TLS of an https run, the same for every tracker and
// proxy compared: X25519 alone, ALPN http/1.1, and no session cache, so
// that each new connection is a full handshake (the cost of a client
// connecting per announce). The certificate is not checked: the load is
// the measure, not the peer.
var tlsConfig = &tls.Config{
	InsecureSkipVerify: true,
	CurvePreferences:   []tls.CurveID{tls.X25519},
	NextProtos:         []string{"http/1.1"},
	MinVersion:         tls.VersionTLS12,
}

func (c *httpClient) hangUp() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *httpClient) countTimeout() {
	if c.counting.Load() {
		c.st.timeouts++
	}
}

// countHTTPReply counts one reply to a request of kind k, answered after
// latency: an error, or a response and the peers it carries.
func (st *stats) countHTTPReply(k kind, body []byte, latency time.Duration) {
	if httpproto.IsFailure(body) {
		st.errors++
		return
	}
	st.responses[k]++
	st.latency.add(latency)
	if k == kindAnnounce {
		st.peers += uint64(httpproto.CountCompactPeers(body))
	}
}

// appendHTTPRequest appends the generator's next request, an announce or a
// scrape, and says which; hashes is scratch space for a scrape's.
func appendHTTPRequest(out []byte, cfg *Config, g *generator, req *bittorrent.AnnounceRequest, hashes []bittorrent.InfoHash) ([]byte, []bittorrent.InfoHash, kind) {
	k := kindAnnounce
	if g.isScrape() {
		k = kindScrape
		hashes = g.scrape(hashes[:0])
		out = httpproto.AppendScrapeQuery(append(out, "GET /scrape?"...), hashes)
	} else {
		g.announce(req)
		out = httpproto.AppendAnnounceQuery(append(out, "GET /announce?"...), req)
	}
	out = append(out, " HTTP/1.1\r\nHost: tracker\r\n"...)
	if !cfg.KeepAlive {
		out = append(out, "Connection: close\r\n"...)
	}
	return append(out, "\r\n"...), hashes, k
}

// exchange writes a request and reads its response into in, returning the
// body and whether the connection may carry another request.
func exchange(conn net.Conn, request, in []byte) (body []byte, keep bool, err error) {
	if _, err := conn.Write(request); err != nil {
		return nil, false, err
	}
	n := 0
	for {
		if n == len(in) {
			return nil, false, httpproto.ErrBadResponse
		}
		k, err := conn.Read(in[n:])
		n += k
		used, body, keep, perr := httpproto.ParseResponse(in[:n], err == io.EOF)
		switch {
		case used > 0:
			return body, keep, nil
		case perr != nil:
			return nil, false, perr
		case err != nil:
			return nil, false, err
		}
	}
}
