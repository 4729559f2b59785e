package http

import (
	"bytes"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/swarm"
	"golang.org/x/sys/unix"
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
	f.Add("GET /scrape HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br, gzip;q=0.5\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		var r request
		if parseRequest([]byte(raw), &r, "X-Real-IP") && (len(r.path) == 0 || r.path[0] != '/') {
			t.Fatalf("accepted path %q", r.path)
		}
	})
}

// runEngine gives s an engine of its own, run until the test ends, as
// Serve does for a server with a listener.
func runEngine(t testing.TB, s *Server) {
	e, err := engine.New(ReadBuffer)
	if err != nil {
		t.Fatal(err)
	}
	s.engine = e
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); e.Run(stop) }()
	t.Cleanup(func() { close(stop); <-done })
}

// servePair hands one end of a socket pair to s as a connection the fast
// path passed on, and returns the other end, a blocking descriptor.
func servePair(t testing.TB, s *Server) int {
	server, client := socketPair(t)
	s.opts.Open.Add(1) // as admit does
	s.handOff(server, netip.MustParseAddr("192.0.2.1"), nil)
	return client
}

// socketPair is a connected pair of stream sockets: the server's end
// non-blocking, as an accepted connection is, the client's blocking. The
// caller closes the client's.
func socketPair(t testing.TB) (server, client int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}

// exchange sends request n times on fd, up to 16 at a time in one write,
// reads a reply to each, and returns the last. It allocates nothing, so
// that allocation tests see only the server's.
func exchange(t testing.TB, fd int, request []byte, n int, out, in []byte) []byte {
	var last []byte
	for n > 0 {
		k := min(n, 16)
		out = out[:0]
		for range k {
			out = append(out, request...)
		}
		if _, err := unix.Write(fd, out); err != nil {
			t.Fatal(err)
		}
		last = readReplies(t, fd, in, k)
		n -= k
	}
	return last
}

// readReplies reads want whole replies from fd into buf, which holds them
// all, and returns the last.
func readReplies(t testing.TB, fd int, buf []byte, want int) []byte {
	have, start := 0, 0
	for got := 0; got < want; {
		headEnd := bytes.Index(buf[start:have], []byte("\r\n\r\n"))
		if headEnd >= 0 {
			head := buf[start : start+headEnd]
			i := bytes.Index(head, []byte("Content-Length: "))
			if i < 0 {
				t.Fatalf("reply without Content-Length: %q", head)
			}
			length := 0
			for _, d := range head[i+len("Content-Length: "):] {
				if d < '0' || d > '9' {
					break
				}
				length = length*10 + int(d-'0')
			}
			if end := start + headEnd + 4 + length; end <= have {
				if got++; got == want {
					return buf[start:end]
				}
				start = end
				continue
			}
		}
		if have == len(buf) {
			t.Fatalf("replies overflow %d bytes", len(buf))
		}
		n, err := unix.Read(fd, buf[have:])
		if n <= 0 {
			t.Fatalf("connection ended after %d of %d replies: %v", got, want, err)
		}
		have += n
	}
	return nil
}

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
	runEngine(b, s)
	fd := servePair(b, s)
	defer unix.Close(fd)
	out, in := make([]byte, 0, 16*len(request)), make([]byte, 1<<20)
	exchange(b, fd, request, 10, out, in) // warm the pools
	b.ReportAllocs()
	b.ResetTimer()
	last := exchange(b, fd, request, b.N, out, in)
	if !bytes.Contains(last, []byte("5:peers300:")) {
		b.Fatalf("reply without 50 compact peers: %q", last)
	}
}

func TestServeConnAnswersEveryPipelinedRequest(t *testing.T) {
	store := swarm.New(swarm.Config{AnnounceInterval: time.Minute, MinInterval: time.Minute, PeerTTL: 2 * time.Minute, NumWantDefault: 5, NumWantMax: 5, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := NewServer(nil, store, Options{ReadTimeout: time.Second, WriteTimeout: time.Second, MaxConnections: 10, Open: new(atomic.Int64)}, metrics.New(nil), log)
	runEngine(t, s)
	fd := servePair(t, s)
	defer unix.Close(fd)
	one := "GET /scrape?info_hash=" + strings.Repeat("a", 20) + " HTTP/1.1\r\nHost: t\r\n\r\n"
	if _, err := unix.Write(fd, []byte(strings.Repeat(one, 20))); err != nil {
		t.Fatal(err)
	}
	last := readReplies(t, fd, make([]byte, 1<<20), 20)
	if !bytes.HasPrefix(last, []byte("HTTP/1.1 200 OK")) {
		t.Fatalf("last reply %q", last)
	}
}

// TestKeepAliveRequestsDoNotAllocate asserts the HTTP keep-alive path's
// allocations: a connection that carries 1000 announces allocates no more
// than one that carries a single one.
func TestKeepAliveRequestsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random")
	}
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
	runEngine(t, s)
	out, in := make([]byte, 0, 16*len(request)), make([]byte, 1<<20)
	serve := func(requests int) func() {
		return func() {
			fd := servePair(t, s)
			defer unix.Close(fd)
			if last := exchange(t, fd, request, requests, out, in); !bytes.Contains(last, []byte("5:peers300:")) {
				t.Fatalf("last reply of %d %q", requests, last)
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
