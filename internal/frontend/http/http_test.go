package http

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/swarm"
)

func TestParseRequest(t *testing.T) {
	var r request
	raw := "GET /announce?a=1&b=2 HTTP/1.1\r\nHost: x\r\nx-forwarded-for:  1.2.3.4 \r\nConnection: close\r\n\r\n"
	if !parseRequest([]byte(raw), &r, "X-Forwarded-For") {
		t.Fatal("rejected")
	}
	if string(r.method) != "GET" || string(r.path) != "/announce" || string(r.query) != "a=1&b=2" ||
		r.keepAlive || r.hasBody || string(r.realIP) != "1.2.3.4" {
		t.Fatalf("%+v", r)
	}
	r = request{}
	if !parseRequest([]byte("GET http://tracker:6969/scrape?x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &r, "") ||
		string(r.path) != "/scrape" || !r.keepAlive {
		t.Fatalf("absolute form: %+v", r)
	}
	for _, bad := range []string{
		"GET /announce\r\n\r\n",
		"GET /announce HTTP/2.0\r\n\r\n",
		"GET announce HTTP/1.1\r\n\r\n",
		"GET /announce HTTP/1.1\r\nno colon\r\n\r\n",
		"GET /announce HTTP/1.1\r\nBad Name: x\r\n\r\n",
		" / HTTP/1.1\r\n\r\n",
		"GET http://host HTTP/1.1\r\n\r\n",
	} {
		if parseRequest([]byte(bad), &request{}, "") {
			t.Errorf("accepted %q", bad)
		}
	}
	r = request{}
	parseRequest([]byte("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), &r, "")
	if !r.hasBody {
		t.Fatal("body not noticed")
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add("GET /announce?info_hash=x HTTP/1.1\r\nHost: a\r\n\r\n")
	f.Add("GET http://h/scrape HTTP/1.0\r\nConnection: close\r\nX-Real-IP: ::1\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\n:\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		var r request
		if parseRequest([]byte(raw), &r, "X-Real-IP") && (len(r.path) == 0 || r.path[0] != '/') {
			t.Fatalf("accepted path %q", r.path)
		}
	})
}

// fakeConn feeds the same request to the server n times and discards the
// replies, so that a benchmark measures the server's path and not the
// kernel's.
type fakeConn struct {
	request   []byte
	left      int
	replies   int
	lastReply []byte
}

func (c *fakeConn) Read(b []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	c.left--
	return copy(b, c.request), nil
}
func (c *fakeConn) Write(b []byte) (int, error) {
	c.replies++
	c.lastReply = append(c.lastReply[:0], b...)
	return len(b), nil
}
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return remote }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

var remote = net.TCPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.1:40000"))

// BenchmarkAnnounce is the whole request path short of the socket: HTTP
// framing, query parsing, store, peer choice, bencoding, reply headers.
// It must not allocate.
func BenchmarkAnnounce(b *testing.B) {
	store := swarm.New(swarm.Config{AnnounceInterval: 30 * time.Minute, MinInterval: 5 * time.Minute,
		PeerTTL: 45 * time.Minute, NumWantDefault: 50, NumWantMax: 200, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	var hash bittorrent.InfoHash
	copy(hash[:], "benchmark-torrent---")
	// Public addresses: private ones would be withheld from this public
	// client and the reply would carry no peers at all.
	for i := range 1000 {
		req := bittorrent.AnnounceRequest{InfoHash: hash, Addr: netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), Port: 6881, Left: uint64(i % 2)}
		store.Announce(&req, &bittorrent.AnnounceResponse{})
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := NewServer(nil, store, Options{ReadTimeout: time.Second, WriteTimeout: time.Second, MaxConnections: 10, Open: new(atomic.Int64)}, metrics.New(nil), log)
	request := []byte("GET /announce?info_hash=" + url.QueryEscape(string(hash[:])) +
		"&peer_id=-qB4500-012345678901&port=6881&uploaded=0&downloaded=0&left=1&event=&numwant=50&compact=1&key=abcd HTTP/1.1\r\n" +
		"Host: tracker.example:6969\r\nUser-Agent: qBittorrent/4.5.0\r\nAccept-Encoding: gzip\r\n\r\n")
	conn := &fakeConn{request: request}
	s.wg.Add(1)
	s.serveConn(&fakeConn{request: request, left: 10}, &connState{}) // warm the pool
	b.ReportAllocs()
	b.ResetTimer()
	conn.left = b.N
	s.wg.Add(1)
	s.serveConn(conn, &connState{})
	if conn.replies != b.N {
		b.Fatalf("%d replies to %d requests", conn.replies, b.N)
	}
	if !bytes.Contains(conn.lastReply, []byte("5:peers300:")) {
		b.Fatalf("reply without 50 compact peers: %q", conn.lastReply)
	}
}

func TestServeConnAnswersEveryPipelinedRequest(t *testing.T) {
	store := swarm.New(swarm.Config{AnnounceInterval: time.Minute, MinInterval: time.Minute, PeerTTL: 2 * time.Minute, NumWantDefault: 5, NumWantMax: 5, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := NewServer(nil, store, Options{ReadTimeout: time.Second, WriteTimeout: time.Second, MaxConnections: 10, Open: new(atomic.Int64)}, metrics.New(nil), log)
	one := "GET /scrape?info_hash=" + strings.Repeat("a", 20) + " HTTP/1.1\r\nHost: t\r\n\r\n"
	conn := &fakeConn{request: []byte(strings.Repeat(one, 20)), left: 1}
	s.wg.Add(1)
	s.serveConn(conn, &connState{})
	if conn.replies != 20 {
		t.Fatalf("%d replies to 20 pipelined requests", conn.replies)
	}
}

// TestKeepAliveRequestsDoNotAllocate asserts the HTTP keep-alive path's
// allocations: a connection that carries 1000 announces allocates no more
// than one that carries a single one.
func TestKeepAliveRequestsDoNotAllocate(t *testing.T) {
	store := swarm.New(swarm.Config{AnnounceInterval: 30 * time.Minute, MinInterval: 5 * time.Minute,
		PeerTTL: 45 * time.Minute, NumWantDefault: 50, NumWantMax: 200, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	defer store.Close()
	var hash bittorrent.InfoHash
	copy(hash[:], "allocation-test-----")
	for i := range 100 {
		req := bittorrent.AnnounceRequest{InfoHash: hash, Addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), Port: 6881, Left: 1}
		store.Announce(&req, &bittorrent.AnnounceResponse{})
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	// With the abuse defences on: a budget (never exceeded here) and a
	// host list.
	budget := ratelimit.New(ratelimit.Config{Rate: 1e9, Burst: 1e6, Tracked: 1000})
	s := NewServer(nil, store, Options{ReadTimeout: time.Second, WriteTimeout: time.Second, MaxConnections: 10, Open: new(atomic.Int64), Budget: budget}, metrics.New(nil), log)
	s.SetHosts(NewHosts([]string{"other.example", "Tracker.Example"}))
	request := []byte("GET /announce?info_hash=" + url.QueryEscape(string(hash[:])) +
		"&peer_id=-qB4500-012345678901&port=6881&left=1&numwant=50&compact=1 HTTP/1.1\r\nHost: tracker.example:6969\r\n\r\n")
	serve := func(requests int) func() {
		return func() {
			conn := &fakeConn{request: request, left: requests}
			s.wg.Add(1)
			s.serveConn(conn, &connState{})
			if conn.replies != requests || !bytes.Contains(conn.lastReply, []byte("5:peers300:")) {
				t.Fatalf("%d replies to %d requests, last %q", conn.replies, requests, conn.lastReply)
			}
		}
	}
	serve(10)() // warm the buffer pool
	one := testing.AllocsPerRun(20, serve(1))
	many := testing.AllocsPerRun(20, serve(1000))
	// Per-connection allocations vary by a few under the race detector
	// and after a garbage collection empties the buffer pool; an
	// allocation per request would add a thousand.
	if many > one+10 {
		t.Fatalf("a connection of 1000 requests allocates %v times, one of 1 request %v: requests allocate", many, one)
	}
}
