package daemon_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/config"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// connections is trakx.http.connections, the open connections under
// http.max_connections.
func connections(t *testing.T, statsAddr string) float64 {
	v, _ := tt.Lookup(tt.Vars(t, statsAddr), "trakx.http.connections")
	return v
}

// TestHTTPSSilentSocketsDoNotDenyHTTP: connections to the HTTPS port that
// stall in their handshake fill http.max_connections, yet a plain HTTP
// client is served: it evicts one; so is an HTTPS one, evicting a TLS
// connection idle between requests. The count of open connections stays
// exact throughout, and falls to 0 when all are closed.
func TestHTTPSSilentSocketsDoNotDenyHTTP(t *testing.T) {
	d, cert := startHTTPS(t, func(c *config.Config) { c.HTTP.MaxConnections = 2 })
	stats := d.StatsAddr().String()
	var stalled []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", d.HTTPSAddrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte{0x16}) // the first byte of a ClientHello, and no more
		stalled = append(stalled, conn)
	}
	tt.WaitFor(t, "two stalled handshakes open", func() bool { return connections(t, stats) == 2 })
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := plain.Get("http://" + d.HTTPAddrs()[0].String() + "/scrape?info_hash=" + urlHash(tt.Hash("x")))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain HTTP with the cap full of stalled TLS handshakes: %v %v, want 200", resp, err)
	}
	resp.Body.Close()
	stalled[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, stalled[0]); err != nil && !isReset(err) {
		t.Fatalf("the oldest stalled handshake was not closed: %v", err)
	}
	// The plain client's connection gives its slot back once closed;
	// until then a newcomer would evict the other stalled handshake.
	tt.WaitFor(t, "one stalled handshake left open", func() bool { return connections(t, stats) == 1 })

	idle, err := tls.Dial("tcp", d.HTTPSAddrs()[0].String(), &tls.Config{RootCAs: cert.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /scrape?info_hash=%s HTTP/1.1\r\nHost: x\r\n\r\n", urlHash(tt.Hash("x")))
	r := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("an HTTPS request at the cap: %v %v", resp, err)
	}
	tt.WaitFor(t, "the HTTPS connection open and idle, with a stalled one", func() bool { return connections(t, stats) == 2 })
	// A plain connection on a request, which evicts the stalled one, then
	// a plain request, which evicts the idle TLS connection.
	busy, err := net.Dial("tcp", d.HTTPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fmt.Fprint(busy, "GET /scrape")
	stalled[1].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, stalled[1]); err != nil && !isReset(err) {
		t.Fatalf("the other stalled handshake was not closed: %v", err)
	}
	resp, err = plain.Get("http://" + d.HTTPAddrs()[0].String() + "/scrape?info_hash=" + urlHash(tt.Hash("x")))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain HTTP at the cap: %v %v, want 200", resp, err)
	}
	resp.Body.Close()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, r); err != nil && !isReset(err) {
		t.Fatalf("the idle TLS connection was not closed: %v", err)
	}
	busy.Close()
	tt.WaitFor(t, "no connection open", func() bool { return connections(t, stats) == 0 })
	if ev, _ := tt.Lookup(tt.Vars(t, stats), "trakx.http.connections_evicted"); ev != 3 {
		t.Fatalf("%v connections evicted, want 3", ev)
	}
}

// isReset reports whether err is a connection reset: an evicted
// connection may end so, as it had unread bytes.
func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// TestHTTPSDefersAccept: a TLS listener is handed a connection only once
// its client sent something (TCP_DEFER_ACCEPT), as an HTTP one is: a
// socket that says nothing is not counted, however early it came.
func TestHTTPSDefersAccept(t *testing.T) {
	d, cert := startHTTPS(t, func(c *config.Config) { c.HTTP.ReadTimeout = config.Duration{Duration: 30 * time.Second} })
	silent, err := net.Dial("tcp", d.HTTPSAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	conn, err := tls.Dial("tcp", d.HTTPSAddrs()[0].String(), &tls.Config{RootCAs: cert.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /scrape?info_hash=%s HTTP/1.1\r\nHost: x\r\n\r\n", urlHash(tt.Hash("x")))
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	// Accepted in the order they came, the silent one would be first.
	if n := connections(t, d.StatsAddr().String()); n != 1 {
		t.Fatalf("%v connections open, want 1: the silent one was accepted", n)
	}
}
