package http

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	stdhttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/fullscrape"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/metrics"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// refusedBusy sums the server's full_scrape_busy refusals.
func refusedBusy(s *Server) (n uint64) {
	for _, c := range s.counters {
		n += c.Refused[metrics.RefusalFullScrapeBusy].Load()
	}
	return n
}

// readReply reads one reply and its whole body from br.
func readReply(t *testing.T, br *bufio.Reader) (*stdhttp.Response, []byte) {
	t.Helper()
	resp, err := stdhttp.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || int64(len(body)) != resp.ContentLength {
		t.Fatalf("%d of %d bytes: %v", len(body), resp.ContentLength, err)
	}
	return resp, body
}

// No more full scrapes are decompressed at once than the builder allows:
// with its readers held by clients that read nothing, the next client
// that does not accept gzip is answered 503, Retry-After and a failure
// reason, counted, and its connection serves on (a gzip full scrape,
// which takes no reader); once a reply is out, its reader serves another.
func TestPlainFullScrapesAreLimited(t *testing.T) {
	const limit = 2
	s, addr := fullScrapeServerWith(t, fullscrape.Options{Source: many(100_000), MaxPlain: limit}, 0)
	b := s.opts.FullScrape.Load().Builder
	snap := b.Last()
	var plain bytes.Buffer
	snap.WritePlain(&plain)
	plainReq := "GET /scrape HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
	var held []net.Conn
	for range limit { // several MB each: they wait on clients that do not read
		c := dialSmall(t, addr)
		io.WriteString(c, plainReq)
		held = append(held, c)
	}
	tt.WaitFor(t, "the readers taken", func() bool { return b.Plain() == limit })
	over := dialSmall(t, addr)
	over.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(over, "GET /scrape HTTP/1.1\r\nHost: t\r\n\r\nGET /scrape HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
	br := bufio.NewReader(over)
	resp, body := readReply(t, br)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "10" || resp.Close ||
		!bytes.Equal(body, httpproto.AppendFailure(nil, fullScrapeBusy)) || refusedBusy(s) != 1 {
		t.Fatalf("over the limit: %d %v %q, %d refused", resp.StatusCode, resp.Header, body, refusedBusy(s))
	}
	if resp, body := readReply(t, br); resp.StatusCode != 200 || !bytes.Equal(body, snap.Gzip) {
		t.Fatalf("gzip, after the refusal: %d, %d bytes", resp.StatusCode, len(body))
	}
	if b.Plain() != limit {
		t.Fatalf("%d readers", b.Plain())
	}
	held[0].SetDeadline(time.Now().Add(20 * time.Second))
	if _, body := readReply(t, bufio.NewReader(held[0])); !bytes.Equal(body, plain.Bytes()) {
		t.Fatal("a held reply is not the snapshot")
	}
	tt.WaitFor(t, "the reader given back", func() bool { return b.Plain() == limit-1 })
	next := dialSmall(t, addr)
	next.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(next, plainReq)
	if resp, body := readReply(t, bufio.NewReader(next)); resp.StatusCode != 200 || !bytes.Equal(body, plain.Bytes()) {
		t.Fatalf("with a reader free: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// A connection the fast path handed over with a full scrape and more
// requests than it read, another full scrape among them, reads nothing
// more until the first is out: the second neither cuts it off nor leaks
// its reader, and the replies come in order.
func TestNothingIsReadDuringAFullScrape(t *testing.T) {
	s, addr := fullScrapeServer(t, 100_000, 0)
	b := s.opts.FullScrape.Load().Builder
	var plain bytes.Buffer
	b.Last().WritePlain(&plain)
	full := "GET /scrape HTTP/1.1\r\nHost: t\r\n\r\n"
	announce := "GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-qB4500-012345678901&port=7000&left=1 HTTP/1.1\r\nHost: t\r\nX-Pad: " +
		strings.Repeat("x", 200) + "\r\n\r\n"
	n := 2*MaxRequestSize/len(announce) + 1 // past what the fast path reads
	conn := dialSmall(t, addr)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, full+announce+full+strings.Repeat(announce, n)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for i := range n + 3 {
		resp, body := readReply(t, br)
		if i == 0 || i == 2 {
			if resp.StatusCode != 200 || !bytes.Equal(body, plain.Bytes()) {
				t.Fatalf("reply %d, a full scrape: %d, %d bytes", i, resp.StatusCode, len(body))
			}
		} else if resp.StatusCode != 200 || !bytes.Contains(body, []byte("8:intervali")) {
			t.Fatalf("reply %d, an announce: %d %.100q", i, resp.StatusCode, body)
		}
	}
	tt.WaitFor(t, "the readers given back", func() bool { return b.Plain() == 0 })
}

// Full scrapes pipelined in one write, gzip and not, are answered in
// turn, each one whole (the loop serves one each turn), then what follows.
func TestPipelinedFullScrapesAreAnsweredInTurn(t *testing.T) {
	s, addr := fullScrapeServer(t, 100, 0)
	snap := s.opts.FullScrape.Load().Builder.Last()
	var plain bytes.Buffer
	snap.WritePlain(&plain)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	const n = 300 // more than MaxRequestSize holds: read in turns too
	var reqs strings.Builder
	for i := range n {
		fmt.Fprintf(&reqs, "GET /scrape HTTP/1.1\r\nHost: t\r\n%s\r\n", pick(i%2, "", "Accept-Encoding: gzip\r\n"))
	}
	reqs.WriteString("GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-qB4500-012345678901&port=7000&left=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
	go io.WriteString(conn, reqs.String())
	br := bufio.NewReader(conn)
	for i := range n {
		if resp, body := readReply(t, br); resp.StatusCode != 200 || !bytes.Equal(body, pick(i%2, plain.Bytes(), snap.Gzip)) {
			t.Fatalf("full scrape %d: %d, %d bytes", i, resp.StatusCode, len(body))
		}
	}
	if resp, body := readReply(t, br); !resp.Close || !bytes.Contains(body, []byte("8:intervali")) {
		t.Fatalf("the announce after: %q", body)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the last reply: %v", err)
	}
}
