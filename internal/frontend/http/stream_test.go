package http

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"net"
	nethttp "net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/metrics"
	tt "github.com/trakx/trakx/internal/trackertest"
	"golang.org/x/sys/unix"
)

// echoTracker answers an announce with its own address as the one peer,
// and a scrape with counts taken from the hash: replies are a function of
// the request alone, so that two runs can be compared byte for byte.
type echoTracker struct{}

func (echoTracker) Announce(r *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	resp.Reset()
	resp.Interval, resp.MinInterval = 30*time.Minute, 5*time.Minute
	resp.Complete, resp.Incomplete = uint32(r.Port%7), uint32(r.Left%5)
	resp.Peers4 = append(resp.Peers4, bittorrent.Peer4{IP: [4]byte{203, 0, 113, byte(r.Port)}, Port: r.Port})
	return nil
}

func (echoTracker) Scrape(h *bittorrent.InfoHash) (bittorrent.ScrapeStats, error) {
	return bittorrent.ScrapeStats{Complete: uint32(h[0]), Incomplete: uint32(h[1]), Downloaded: uint32(h[2])}, nil
}

func echoServer(t testing.TB) *Server {
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := NewServer(nil, echoTracker{}, Options{ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, MaxConnections: 10, Open: new(atomic.Int64)}, metrics.New(nil), log)
	runEngine(t, s)
	return s
}

// converse sends data on a connection handed over with its first chunk
// already read (as the fast path does), the rest in the chunks cuts makes,
// each read by the server before the next is sent; then the end of
// stream. It returns every byte the server sent until it closed.
func converse(t testing.TB, s *Server, data []byte, cuts []int) []byte {
	server, client := socketPair(t)
	defer unix.Close(client)
	replies := make(chan []byte, 1)
	go func() {
		var all []byte
		buf := make([]byte, 64<<10)
		for {
			n, _ := unix.Read(client, buf)
			if n <= 0 {
				replies <- all
				return
			}
			all = append(all, buf[:n]...)
		}
	}()
	first := 0
	if len(cuts) > 0 {
		first, cuts = cuts[0], cuts[1:]
	}
	s.opts.Open.Add(1)
	s.handOff(server, netip.MustParseAddr("192.0.2.1"), data[:first])
	for at := first; at < len(data); {
		next := len(data)
		if len(cuts) > 0 {
			next, cuts = cuts[0], cuts[1:]
		}
		if _, err := unix.Write(client, data[at:next]); err != nil {
			break // the server closed: the rest is not read
		}
		waitRead(client)
		at = next
	}
	unix.Shutdown(client, unix.SHUT_WR)
	return <-replies
}

// waitRead waits, a second at most, until the peer has read all fd sent:
// the next write then arrives in a read of its own. A server that reads no
// more (it closed, or waits for its replies to be read) is not waited for
// longer: the chunks merge, which the comparison must survive as well.
func waitRead(fd int) {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ); err != nil || n == 0 {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}

var dateLine = regexp.MustCompile(`\r\nDate: [^\r]*`)

// FuzzStreamChunking: what the server answers a byte stream does not
// depend on how the stream is cut into reads (the model: the same stream
// sent whole). Requests split anywhere, pipelined, oversized or malformed
// get the same replies, in the same order, and the same end.
func FuzzStreamChunking(f *testing.F) {
	announce := "GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-qB4500-012345678901&port=7000&left=3 HTTP/1.1\r\nHost: t\r\n\r\n"
	scrape := "GET /scrape?info_hash=bbbbbbbbbbbbbbbbbbbb HTTP/1.1\r\n\r\n"
	f.Add([]byte(announce+scrape+announce), []byte{10, 90, 91, 200})
	f.Add([]byte(scrape+"GET /x HTTP/1.0\r\n\r\n"+scrape), []byte{3})
	f.Add([]byte(announce+"GET /announce HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), []byte{100, 1})
	f.Add(append([]byte(scrape), bytes.Repeat([]byte("x"), 9000)...), []byte{30, 255, 255, 255})
	f.Add([]byte(scrape+"GET /scrape HTTP/1.1\r\nConnection: close\r\n\r\n"+scrape), []byte{5, 40})
	f.Add([]byte(strings.Repeat("GET / HTTP/1.1\r\n\r\n", 1500)), []byte{200, 7}) // replies past maxBatch
	f.Fuzz(func(t *testing.T, data, cutBytes []byte) {
		if len(data) > 32<<10 || len(cutBytes) > 64 {
			return
		}
		var cuts []int
		at := 0
		for _, b := range cutBytes {
			if at += int(b)*int(b)/8 + 1; at >= len(data) {
				break
			}
			cuts = append(cuts, at)
		}
		s := echoServer(t)
		whole := converse(t, s, data, nil)
		chunked := converse(t, s, data, cuts)
		whole, chunked = dateLine.ReplaceAll(whole, nil), dateLine.ReplaceAll(chunked, nil)
		if !bytes.Equal(whole, chunked) {
			t.Fatalf("sent whole, answered\n%q\nsent in chunks at %v, answered\n%q", whole, cuts, chunked)
		}
		tt.WaitFor(t, "every connection to end", func() bool { return s.opts.Open.Load() == 0 })
	})
}

// TestStressStreamsEndInReference: clients in five behaviours hit one
// server at a cap small enough for evictions and refusals, under -race:
// keep-alive readers checking each reply in order, pipeliners that close
// without reading, clients that send half a request and reset, clients
// that never read a stream of scrapes (the write timeout ends them), and
// silent ones. Every reader gets exactly its replies, well-formed and in
// order, or a 503 and the end; and once all are gone the exact reference
// holds: no connection counted, none tracked, no descriptor open that was
// not before the server existed.
func TestStressStreamsEndInReference(t *testing.T) {
	before := settledDescriptors(t)
	open := new(atomic.Int64)
	s, ln := cappedServer(t, 16, open, false)
	s.opts.ReadTimeout, s.opts.WriteTimeout = 500*time.Millisecond, 200*time.Millisecond
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	addr := ln.Addr().String()

	const clients, rounds = 24, 5
	var wg sync.WaitGroup
	errs := make(chan error, clients*rounds)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if err := stressClient(addr, i%5, i*100+r); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tt.WaitFor(t, "every connection to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return open.Load() == 0 && len(s.conns) == 0 && s.lingering.Load() == 0
	})
	s.Close()
	<-served
	var opened []string
	defer func() {
		if len(opened) > 0 { // WaitFor gave up: say which
			t.Logf("open since the server began: %v", opened)
		}
	}()
	tt.WaitFor(t, "no descriptor open that was not before the server", func() bool {
		opened = openedSince(t, before)
		return len(opened) == 0
	})
}

// descriptors are the process's open descriptors, each with what it names
// (a socket by its inode, a file by its path).
func descriptors(t testing.TB) map[string]string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	fds := make(map[string]string, len(entries))
	for _, e := range entries {
		// The directory's own descriptor is gone by now: it names nothing.
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[e.Name()] = target
		}
	}
	return fds
}

// settledDescriptors are the process's descriptors once they have held
// still for 20 ms: earlier tests' servers may still be closing theirs.
func settledDescriptors(t testing.TB) map[string]string {
	t.Helper()
	var last map[string]string
	var since time.Time
	tt.WaitFor(t, "the descriptors to settle", func() bool {
		if fds := descriptors(t); !maps.Equal(fds, last) {
			last, since = fds, time.Now()
		}
		return time.Since(since) >= 20*time.Millisecond
	})
	return last
}

// openedSince lists the descriptors open now that were not in before, the
// same number naming the same thing: any such is a leak, whatever closed
// meanwhile of before.
func openedSince(t testing.TB, before map[string]string) []string {
	var opened []string
	for fd, target := range descriptors(t) {
		if before[fd] != target {
			opened = append(opened, fd+" "+target)
		}
	}
	return opened
}

// TestDescriptorReference: the stress test's reference holds however many
// of the process's descriptors from before close meanwhile (an earlier
// test's server still closing its own made the count lower than at the
// start, and failed the test), and still names a descriptor opened since
// and left open, even when as many closed as were opened.
func TestDescriptorReference(t *testing.T) {
	var earlier, leaked [2]int
	if err := unix.Pipe2(earlier[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	before := settledDescriptors(t)
	unix.Close(earlier[0])
	unix.Close(earlier[1])
	if opened := openedSince(t, before); len(opened) > 0 {
		t.Fatalf("with two descriptors from before closed, %v open since", opened)
	}
	if err := unix.Pipe2(leaked[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leaked[0])
	defer unix.Close(leaked[1])
	if opened := openedSince(t, before); len(opened) != 2 {
		t.Fatalf("with two descriptors from before closed and two opened (%v), %v open since", leaked, opened)
	}
}

// stressClient is one client of TestStressStreamsEndInReference.
func stressClient(addr string, kind, id int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	scrape := fmt.Sprintf("GET /scrape?info_hash=%020d HTTP/1.1\r\nHost: t\r\n\r\n", id)
	switch kind {
	case 0: // keep-alive, a reply read for each request, in order
		counted := &countingReader{r: c}
		r := bufio.NewReader(counted)
		for k := range 5 {
			if _, err := io.WriteString(c, scrape); err != nil {
				return nil // evicted between requests: the end of stream is its answer
			}
			resp, err := nethttp.ReadResponse(r, nil)
			if err != nil {
				if counted.n == 0 || counted.atReply(k) {
					return nil // evicted before the request came: nothing of a reply, just the end
				}
				return fmt.Errorf("client %d request %d: %v after %d bytes", id, k, err, counted.n)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case err != nil:
				return fmt.Errorf("client %d request %d: body: %v", id, k, err)
			case resp.StatusCode == 503:
				return nil // over the cap, told so
			case resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("d5:filesd20:")) || !bytes.Contains(body, fmt.Appendf(nil, "%020d", id)):
				return fmt.Errorf("client %d request %d: %d %q", id, k, resp.StatusCode, body)
			}
			counted.replied = append(counted.replied, counted.n)
		}
	case 1: // pipelines and closes without reading
		io.WriteString(c, strings.Repeat(scrape, 20))
	case 2: // half a request, then a reset
		io.WriteString(c, scrape[:30])
		c.(*net.TCPConn).SetLinger(0)
	case 3: // a stream of scrapes it never reads: the write timeout cuts it off
		for {
			if _, err := io.WriteString(c, strings.Repeat(scrape, 50)); err != nil {
				return timedOut(id, "never reading", err)
			}
		}
	case 4: // silent: evicted, or cut off by the read timeout
		_, err := c.Read(make([]byte, 1))
		return timedOut(id, "silent", err)
	}
	return nil
}

// countingReader counts the bytes a client received, and where each reply
// ended: an error with no byte of a reply read is an eviction, one in the
// middle of a reply a defect.
type countingReader struct {
	r       io.Reader
	n       int
	replied []int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

// atReply reports whether what came ends exactly after the k replies read.
func (c *countingReader) atReply(k int) bool { return k > 0 && c.replied[k-1] == c.n }

// timedOut is an error if the client, not the server, ended the
// connection: its own deadline passed first.
func timedOut(id int, kind string, err error) error {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return fmt.Errorf("client %d (%s) was never cut off", id, kind)
	}
	return nil
}

// TestIdleStreamSize: an idle keep-alive connection costs its stream and
// two map entries (the loop's, the server's), and no buffer: what a
// tracker behind a keep-alive proxy pays per connection
// (test/http-connections.sh idle measures the whole, 0.6 KiB).
func TestIdleStreamSize(t *testing.T) {
	if size := unsafe.Sizeof(stream{}); unsafe.Sizeof(uintptr(0)) == 8 && size > 160 {
		t.Fatalf("a stream takes %d bytes, more than 160", size)
	}
}

// TestPipeliningClientIsNotCutOff: a client that always has its next
// request on the way (every read ends in part of one) is answered for as
// long as it keeps sending: the read timeout counts from each reply, not
// from the first request (it once cut such a client off after one
// timeout, whatever it sent).
func TestPipeliningClientIsNotCutOff(t *testing.T) {
	s, ln := cappedServer(t, 10, new(atomic.Int64), false)
	s.opts.ReadTimeout = 200 * time.Millisecond
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	defer func() { s.Close(); <-served }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	request := "GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: t\r\n\r\n"
	half := len(request) / 2
	r := bufio.NewReader(c)
	io.WriteString(c, request[:half])
	for i := 0; i < 60; i++ { // 60 x 10 ms: three read timeouts
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, request[half:]+request[:half]); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := nethttp.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(10 * time.Millisecond) // the client's pace, not a wait for the server
	}
}
