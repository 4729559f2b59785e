package http

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"net"
	stdhttp "net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/fullscrape"
	"github.com/trakx/trakx/internal/metrics"
)

func TestAcceptsGzip(t *testing.T) {
	for value, want := range map[string]bool{
		"gzip":                    true,
		"GZip":                    true,
		"deflate, gzip;q=1.0, br": true,
		"x-gzip":                  true,
		"br ,\tgzip ; q=0.5":      true,
		"gzip;q=0":                false,
		"gzip; Q=0.000":           false,
		"gzip;q=0.001":            true,
		"identity":                false,
		"":                        false,
		"gzipped":                 false,
		"deflate;q=0, gzip;q=0.":  false,
		"*":                       false, // identity is always acceptable: sent plain
	} {
		if got := acceptsGzip([]byte(value)); got != want {
			t.Errorf("%q: %v, want %v", value, got, want)
		}
	}
}

// Reading Accept-Encoding keeps a request's parse free of allocations.
func TestParseRequestWithAcceptEncodingDoesNotAllocate(t *testing.T) {
	raw := []byte("GET /scrape HTTP/1.1\r\nHost: t\r\nAccept-Encoding: deflate, gzip;q=0.9\r\n\r\n")
	var r request
	if n := testing.AllocsPerRun(1000, func() { r = request{}; parseRequest(raw, &r, "X-Real-IP") }); n != 0 || !r.acceptGzip {
		t.Fatalf("%v allocations, gzip %v", n, r.acceptGzip)
	}
}

type waitBuild chan *fullscrape.Snapshot

func (w waitBuild) SnapshotReady(s *fullscrape.Snapshot) { w <- s }

// many is a Source of n made-up torrents.
type many int

func (n many) EachTorrent(f func(*bittorrent.InfoHash, bittorrent.ScrapeStats)) {
	for i := range int(n) {
		h := bittorrent.InfoHash(sha1.Sum(fmt.Appendf(nil, "%d", i)))
		f(&h, bittorrent.ScrapeStats{Complete: uint32(i)})
	}
}

// fullScrapeServer serves HTTP with a write timeout of 1 s and a full
// scrape of torrents made-up torrents with a timeout of its own.
func fullScrapeServer(t *testing.T, torrents int, timeout time.Duration) (*Server, string) {
	return fullScrapeServerWith(t, fullscrape.Options{Source: many(torrents)}, timeout)
}

// fullScrapeServerWith is fullScrapeServer with the builder's options
// (its interval is an hour).
func fullScrapeServerWith(t *testing.T, opts fullscrape.Options, timeout time.Duration) (*Server, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	fs := new(atomic.Pointer[FullScrape])
	opts.Interval = time.Hour
	b := fullscrape.New(opts)
	built := make(waitBuild, 1)
	if b.Get(time.Now(), built) == nil {
		<-built // built before the requests: their time runs from them
	}
	fs.Store(&FullScrape{Builder: b, Timeout: timeout})
	s := NewServer(ln, echoTracker{}, Options{ReadTimeout: time.Second, WriteTimeout: time.Second, MaxConnections: 100,
		Open: new(atomic.Int64), FullScrape: fs}, metrics.New(nil), log)
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	t.Cleanup(func() { s.Close(); <-served })
	return s, ln.Addr().String()
}

// dialSmall connects with a small receive buffer, so that a reply of
// megabytes waits on the client.
func dialSmall(t *testing.T, addr string) net.Conn {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A full scrape's reply is not bound by http.write_timeout, but by a
// timeout of its own: a client that reads nothing for longer than the
// first still gets all of it, one that reads nothing for longer than the
// second is cut off. (The waits are the timeouts themselves: what is
// tested is that one passes without effect.)
func TestFullScrapeHasATimeoutOfItsOwn(t *testing.T) {
	_, addr := fullScrapeServer(t, 300_000, 6*time.Second)
	slow, stalled := dialSmall(t, addr), dialSmall(t, addr)
	// gzip, so that the server's pace is the socket's, not decompression's.
	req := "GET /scrape HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
	start := time.Now()
	io.WriteString(slow, req)
	io.WriteString(stalled, req)
	time.Sleep(2 * time.Second) // twice http.write_timeout
	slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := stdhttp.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || int64(len(body)) != resp.ContentLength || resp.ContentLength < 6<<20 {
		t.Fatalf("%d of %d bytes: %v", len(body), resp.ContentLength, err)
	}
	time.Sleep(time.Until(start.Add(7 * time.Second))) // past the full scrape's 6 s
	stalled.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, _ := io.ReadAll(stalled)
	if len(got) >= len(body) {
		t.Fatalf("a client that read nothing for 7 s got all %d bytes", len(got))
	}
}

// Clients at once, each asking on one keep-alive connection for the full
// scrape several times, gzip or not, between announces: every reply is
// the one snapshot, whole, and the connection goes on serving after it.
func TestFullScrapesAtOnce(t *testing.T) {
	s, addr := fullScrapeServerWith(t, fullscrape.Options{Source: many(20_000), MaxPlain: 16}, 0) // a plain reader each
	snap := s.opts.FullScrape.Load().Builder.Last()
	var plain bytes.Buffer
	snap.WritePlain(&plain)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			announce := "GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-qB4500-012345678901&port=7000&left=1 HTTP/1.1\r\nHost: t\r\n\r\n"
			full := "GET /scrape HTTP/1.1\r\nHost: t\r\n%s\r\n"
			gz := []string{"", "Accept-Encoding: gzip\r\n"}
			fmt.Fprintf(conn, full+announce+full+announce, gz[i%2], gz[1-i%2])
			br := bufio.NewReader(conn)
			for k, want := range [][]byte{pick(i%2, plain.Bytes(), snap.Gzip), nil, pick(1-i%2, plain.Bytes(), snap.Gzip), nil} {
				resp, err := stdhttp.ReadResponse(br, nil)
				if err != nil {
					t.Errorf("client %d reply %d: %v", i, k, err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				if want != nil && !bytes.Equal(body, want) {
					t.Errorf("client %d reply %d: %d bytes, not the snapshot's %d", i, k, len(body), len(want))
				}
			}
		}()
	}
	wg.Wait()
}

// pick is a if i is 0, else b.
func pick[T any](i int, a, b T) T {
	if i == 0 {
		return a
	}
	return b
}
