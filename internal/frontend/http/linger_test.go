//go:build linux

package http

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/metrics"
	tt "github.com/trakx/trakx/internal/trackertest"
	"golang.org/x/sys/unix"
)

// TestPipeliningPastTheLimitGetsEveryReply: a keep-alive client that
// pipelines far more requests than http.max_requests_per_connection, in
// one burst, and reads only once it has sent them all, gets every reply it
// is owed, the last saying Connection: close, and then the end of stream.
// The stream discards the requests past the limit while its replies wait
// in the send queue for the client to read: closing once it had discarded
// lingerBytes reset the connection with replies still queued, and the
// client lost them.
func TestPipeliningPastTheLimitGetsEveryReply(t *testing.T) {
	const limit, sent = 1000, 3000
	_, c := pipeliningClient(t, 10, limit)
	if _, err := io.WriteString(c, announces(0, sent)); err != nil {
		t.Fatalf("sending %d requests: %v", sent, err)
	}
	// The client reads once the server has taken every request (or reset
	// the connection).
	tt.WaitFor(t, "the server to take the requests", func() bool { return sentAll(t, c) })
	expectReplies(t, c, limit, limit)
}

// TestARequestAfterTheLastReply: a pipelining client whose next request
// comes only after the reply at the request limit went (nothing of it
// was there to read then) still gets every reply it was owed, then the
// end of stream. The stream used to close at once when its last read
// ended with the limit's request, and the request that came next drew a
// reset that destroyed the replies the client had not read.
func TestARequestAfterTheLastReply(t *testing.T) {
	const limit = 100
	s, c := pipeliningClient(t, 10, limit)
	if _, err := io.WriteString(c, announces(0, limit)); err != nil {
		t.Fatal(err)
	}
	tt.WaitFor(t, "the server to answer them", func() bool { return answered(s) == limit })
	speakAfterServerCloses(t, c)
	expectReplies(t, c, limit, limit)
}

// TestEvictedStreamKeepsItsReplies: a stream evicted at the connection
// cap with its replies written but not yet read by the client, whose
// client then sends another request, is closed gracefully: the client
// reads every reply, then the end of stream (a reset destroyed them).
func TestEvictedStreamKeepsItsReplies(t *testing.T) {
	const n = 200
	s, a := pipeliningClient(t, 1, 1000)
	if _, err := io.WriteString(a, announces(0, n)); err != nil {
		t.Fatal(err)
	}
	tt.WaitFor(t, "the stream to have written its replies", func() bool {
		if answered(s) != n {
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for c := range s.conns {
			return c.idleSince.Load() > 0
		}
		return false
	})
	b, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	io.WriteString(b, announces(n, 1))
	if resp, err := nethttp.ReadResponse(bufio.NewReader(b), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the connection that evicts: %v %v", resp, err)
	}
	speakAfterServerCloses(t, a)
	expectReplies(t, a, n, 0)
	if evicted := s.counters[0].ConnectionsEvicted.Load(); evicted != 1 {
		t.Fatalf("%d evicted, want 1", evicted)
	}
}

// TestShutdownKeepsRepliesSent: at shutdown a pipelining client whose
// replies are written but unread, and who sends another request, reads
// them all, then the end of stream.
func TestShutdownKeepsRepliesSent(t *testing.T) {
	const n = 200
	s, c := pipeliningClient(t, 10, 1000)
	if _, err := io.WriteString(c, announces(0, n)); err != nil {
		t.Fatal(err)
	}
	tt.WaitFor(t, "the server to answer them", func() bool { return answered(s) == n })
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	speakAfterServerCloses(t, c)
	expectReplies(t, c, n, 0)
	<-closed
}

// pipeliningClient serves a server capped at maxConns connections and
// limit requests a connection, and connects to it with a small receive
// window (most replies wait in the server's send queue until the client
// reads). The server is closed when the test ends.
func pipeliningClient(t *testing.T, maxConns int64, limit int) (*Server, net.Conn) {
	s, ln := cappedServer(t, maxConns, new(atomic.Int64), false)
	s.opts.MaxRequests = limit
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	t.Cleanup(func() { s.Close(); <-served })
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10) })
		return nil
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return s, c
}

// announces is n announce requests of distinct peers, numbered from.
func announces(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "GET /announce?info_hash=%020d&peer_id=-qB4500-012345678901&port=%d&left=1 HTTP/1.1\r\nHost: t\r\n\r\n", i%50, 1024+i)
	}
	return b.String()
}

// answered is how many announces s has answered.
func answered(s *Server) (n uint64) {
	for _, c := range s.counters {
		for f := range c.Answered[metrics.ActionAnnounce] {
			n += c.Answered[metrics.ActionAnnounce][f].Load()
		}
	}
	return n
}

// speakAfterServerCloses waits until the server has closed its end of c
// (its socket is no longer established: it has queued its end of stream,
// after replies c may not have read yet), then sends one more request, as
// a pipelining client that has not read yet does.
func speakAfterServerCloses(t *testing.T, c net.Conn) {
	t.Helper()
	// The server's socket, as /proc/net/tcp names it: local address the
	// server's, remote ours, in hexadecimal, and its state.
	hex := func(a net.Addr) string {
		ap := netip.MustParseAddrPort(a.String())
		ip := ap.Addr().As4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())
	}
	local, remote := hex(c.RemoteAddr()), hex(c.LocalAddr())
	tt.WaitFor(t, "the server to close its end", func() bool {
		table, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(table), "\n") {
			if f := strings.Fields(line); len(f) > 3 && f[1] == local && f[2] == remote {
				return f[3] != "01" // TCP_ESTABLISHED
			}
		}
		return true // gone
	})
	if _, err := io.WriteString(c, announces(1<<20, 1)); err != nil {
		t.Fatal(err)
	}
}

// expectReplies reads n announce replies from c, only the closing-th
// saying Connection: close (0: none), then the end of stream: no more
// bytes and no reset.
func expectReplies(t *testing.T, c net.Conn, n, closing int) {
	t.Helper()
	got, err := io.ReadAll(c)
	r := bufio.NewReader(bytes.NewReader(got))
	for i := 1; i <= n; i++ {
		resp, rerr := nethttp.ReadResponse(r, nil)
		if rerr != nil {
			t.Fatalf("reply %d of %d: %v (%d bytes came, then %v)", i, n, rerr, len(got), err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("d8:complete")) {
			t.Fatalf("reply %d: %d %q", i, resp.StatusCode, body)
		}
		if resp.Close != (i == closing) {
			t.Fatalf("reply %d of %d: Connection: close is %v", i, n, resp.Close)
		}
	}
	if rest, _ := io.ReadAll(r); len(rest) > 0 || err != nil {
		t.Fatalf("after the %d replies: %d more bytes, then %v", n, len(rest), err)
	}
}

// sentAll reports whether everything sent on c has reached the peer, or c
// is closed (reset).
func sentAll(t *testing.T, c net.Conn) bool {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	done := false
	rc.Control(func(fd uintptr) {
		queued, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		info, ierr := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		done = err != nil || queued == 0 || ierr != nil || info.State == unix.BPF_TCP_CLOSE
	})
	return done
}

// TestLastReplyWaitingForTheClientThenDiscards: a stream whose last reply
// had to wait for the client to take it (the limit of requests reached,
// more sent after) discards what the client sends after it, as one whose
// last reply went at once does. It was polled for writes alone then: it
// never read, and woke for its writable socket until its linger was over.
func TestLastReplyWaitingForTheClientThenDiscards(t *testing.T) {
	const limit = 50
	s := echoServer(t)
	s.opts.MaxRequests = limit
	server, client := socketPair(t)
	defer unix.Close(client)
	// A send buffer smaller than the replies: the last waits in the stream.
	unix.SetsockoptInt(server, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<10)
	s.opts.Open.Add(1)
	s.handOff(server, netip.MustParseAddr("192.0.2.1"), nil)
	scrape := "GET /scrape?info_hash=bbbbbbbbbbbbbbbbbbbb HTTP/1.1\r\nHost: t\r\n\r\n"
	after := bytes.Repeat([]byte("x"), 16<<10) // unread when the last reply goes
	if _, err := unix.Write(client, append([]byte(strings.Repeat(scrape, limit)), after...)); err != nil {
		t.Fatal(err)
	}
	if last := readReplies(t, client, make([]byte, 1<<20), limit); !bytes.Contains(last, []byte("Connection: close")) {
		t.Fatalf("last reply %q", last)
	}
	tt.WaitFor(t, "the stream to discard what came after its last reply", func() bool {
		s.mu.Lock()
		open := len(s.conns) == 1
		s.mu.Unlock()
		queued, err := unix.IoctlGetInt(client, unix.SIOCOUTQ)
		return err == nil && queued == 0 && open
	})
	unix.Shutdown(client, unix.SHUT_WR)
	tt.WaitFor(t, "the stream to end", func() bool { return s.opts.Open.Load() == 0 })
}

// TestRefusalDiscardsWhileItsAnswerIsUnread: a refused client that sends
// more than lingerBytes before it reads its 503 can still send (the
// refusal discards it, up to maxDiscard) and then reads the 503 and the
// end of stream. The refusal used to close once it had discarded
// lingerBytes, whether its answer had reached the client or not; over TCP
// the reset that follows can destroy an answer still queued (a socket
// pair, here, shows only that the refusal stopped reading).
func TestRefusalDiscardsWhileItsAnswerIsUnread(t *testing.T) {
	s := echoServer(t)
	server, client := socketPair(t)
	defer unix.Close(client)
	s.refuseConn(server)
	request := bytes.Repeat([]byte("x"), 4*lingerBytes)
	for sent := 0; sent < len(request); {
		n, err := unix.Write(client, request[sent:])
		if err != nil {
			t.Fatalf("the refusal stopped reading after %d bytes: %v", sent, err)
		}
		sent += n
	}
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(client, buf)
		if n <= 0 {
			if err != nil {
				t.Fatalf("after %q: %v", got, err)
			}
			break
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, tooManyConnections) {
		t.Fatalf("refused with %q", got)
	}
	unix.Shutdown(client, unix.SHUT_WR)
	tt.WaitFor(t, "the refusal to end", func() bool { return s.lingering.Load() == 0 })
}
