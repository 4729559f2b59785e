package https

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/frontend/http"
	"github.com/trakx/trakx/internal/fullscrape"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/swarm"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// testServer is a Server on loopback, serving until the test ends.
type testServer struct {
	*Server
	store   *swarm.Store
	cert    *tt.Certificate
	open    *atomic.Int64
	metrics *metrics.Metrics
	done    chan struct{} // closed when Serve returned
}

// serveTLS runs a Server under a cap of max connections, with a read
// timeout of readTimeout, and the full scrape on if full.
func serveTLS(t *testing.T, max int64, readTimeout time.Duration, full bool) *testServer {
	t.Helper()
	cert := tt.WriteCertificate(t, t.TempDir(), "tracker", "https test")
	pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	store := swarm.New(swarm.Config{AnnounceInterval: 30 * time.Minute, MinInterval: 5 * time.Minute,
		PeerTTL: 45 * time.Minute, NumWantDefault: 50, NumWantMax: 200, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	t.Cleanup(store.Close)
	log := logrus.New()
	log.SetOutput(io.Discard)
	ts := &testServer{store: store, cert: cert, open: new(atomic.Int64), metrics: metrics.New(nil), done: make(chan struct{})}
	hopts := http.Options{ReadTimeout: readTimeout, WriteTimeout: 5 * time.Second, MaxConnections: max, Open: ts.open, MaxRequests: 1000}
	if full {
		var fs atomic.Pointer[http.FullScrape]
		fs.Store(&http.FullScrape{Builder: fullscrape.New(fullscrape.Options{Source: store, Interval: time.Minute})})
		hopts.FullScrape = &fs
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = NewServer(ln, http.NewExchange(store, hopts, ts.metrics, log), Options{ReadTimeout: readTimeout,
		WriteTimeout: 5 * time.Second, MaxConnections: max, Open: ts.open, KeyPair: NewKeyPair(&pair)}, log)
	go func() { defer close(ts.done); ts.Serve() }()
	t.Cleanup(func() { ts.Close(); <-ts.done })
	return ts
}

// dial shakes hands with the server.
func (ts *testServer) dial(t *testing.T, d *net.Dialer) *tls.Conn {
	t.Helper()
	conn, err := tls.DialWithDialer(d, "tcp", ts.Addr().String(), &tls.Config{RootCAs: ts.cert.Pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// stallHandshake connects and sends the first byte of a ClientHello, and
// no more.
func (ts *testServer) stallHandshake(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.Write([]byte{0x16})
	return conn
}

// waitServed fails the test unless Serve returns within limit of now.
func (ts *testServer) waitServed(t *testing.T, limit time.Duration, what string) {
	t.Helper()
	start := time.Now()
	select {
	case <-ts.done:
	case <-time.After(limit):
		t.Fatalf("%s: Serve had not returned %v after Close", what, limit)
	}
	t.Logf("%s: Serve returned %v after Close", what, time.Since(start))
}

// TestCloseCutsAStalledFullScrape: Close ends a full scrape whose client
// stopped reading at once, not at the end of the full scrape's own write
// deadline (a minute).
func TestCloseCutsAStalledFullScrape(t *testing.T) {
	ts := serveTLS(t, 10, 5*time.Second, true)
	for i := range 100_000 { // a reply of megabytes, more than the sockets hold
		var h bittorrent.InfoHash
		copy(h[:], fmt.Sprintf("stalled-%012d", i))
		ts.store.Announce(&bittorrent.AnnounceRequest{InfoHash: h, Addr: netip.AddrFrom4([4]byte{203, 0, 113, 1}), Port: 6881, Left: 1}, &bittorrent.AnnounceResponse{})
	}
	small := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return nil
	}}
	conn := ts.dial(t, small)
	fmt.Fprint(conn, "GET /scrape HTTP/1.1\r\nHost: x\r\n\r\n")
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("the full scrape's reply: %q %v", line, err)
	}
	// It reads no more.
	ts.Close()
	ts.waitServed(t, 3*time.Second, "a full scrape not read")
}

// TestCloseEndsRefusedHandshakes: a connection over the cap, being
// refused but stalled in its handshake, does not hold Close up for the
// read timeout.
func TestCloseEndsRefusedHandshakes(t *testing.T) {
	ts := serveTLS(t, 1, 30*time.Second, false)
	ts.open.Store(1) // the cap is reached by another server's connection
	ts.stallHandshake(t)
	tt.WaitFor(t, "the connection being refused", func() bool { return ts.refusing.Load() == 1 })
	ts.Close()
	ts.waitServed(t, 3*time.Second, "a refused connection stalled in its handshake")
	ts.open.Store(0)
}

// TestStalledWhenTheAcceptLoopIsWedged: the watchdog hears of an accept
// loop stuck on one connection (here on the lock its tracking needs), and
// no longer once it goes on.
func TestStalledWhenTheAcceptLoopIsWedged(t *testing.T) {
	ts := serveTLS(t, 10, 5*time.Second, false)
	if ts.Stalled(time.Millisecond) {
		t.Fatal("stalled while waiting for connections")
	}
	ts.mu.Lock()
	ts.stallHandshake(t)
	tt.WaitFor(t, "the watchdog to see the accept loop stuck", func() bool { return ts.Stalled(10 * time.Millisecond) })
	ts.mu.Unlock()
	tt.WaitFor(t, "the accept loop to go on", func() bool { return !ts.Stalled(10*time.Millisecond) && ts.open.Load() == 1 })
}

// TestALPNServesHTTP10Clients: a client that offers ALPN http/1.0 alone
// (curl --http1.0) is served, as over plain HTTP; one that offers both
// gets http/1.1; one that offers only h2 is refused in the handshake (no
// protocol in common, RFC 7301 §3.2).
func TestALPNServesHTTP10Clients(t *testing.T) {
	ts := serveTLS(t, 10, 5*time.Second, false)
	for offer, want := range map[string]string{"http/1.0": "http/1.0", "http/1.1 http/1.0": "http/1.1"} {
		conn, err := tls.Dial("tcp", ts.Addr().String(), &tls.Config{RootCAs: ts.cert.Pool, NextProtos: strings.Fields(offer)})
		if err != nil {
			t.Fatalf("ALPN %s: %v", offer, err)
		}
		if got := conn.ConnectionState().NegotiatedProtocol; got != want {
			t.Errorf("ALPN %s: %q negotiated, want %q", offer, got, want)
		}
		fmt.Fprint(conn, "GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.0\r\n\r\n")
		if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.HasSuffix(line, " 200 OK\r\n") {
			t.Errorf("ALPN %s: %q %v", offer, line, err)
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", ts.Addr().String(), &tls.Config{RootCAs: ts.cert.Pool, NextProtos: []string{"h2"}}); err == nil {
		conn.Close()
		t.Fatal("an h2-only client got a connection it cannot use")
	}
}
