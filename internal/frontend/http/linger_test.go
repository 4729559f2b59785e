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
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
	s, ln := cappedServer(t, 10, new(atomic.Int64), false)
	s.opts.MaxRequests = limit
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	defer func() { s.Close(); <-served }()
	// A small receive buffer: most of the replies wait in the server's
	// send queue until the client reads.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10) })
		return nil
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var burst strings.Builder
	for i := range sent {
		fmt.Fprintf(&burst, "GET /announce?info_hash=%020d&peer_id=-qB4500-012345678901&port=%d&left=1 HTTP/1.1\r\nHost: t\r\n\r\n", i%50, 1024+i)
	}
	if _, err := io.WriteString(c, burst.String()); err != nil {
		t.Fatalf("sending %d requests (%d bytes): %v", sent, burst.Len(), err)
	}
	// The client reads once the server has taken every request (or reset
	// the connection).
	tt.WaitFor(t, "the server to take the requests", func() bool { return sentAll(t, c) })
	got, err := io.ReadAll(c)
	r := bufio.NewReader(bytes.NewReader(got))
	for i := range limit {
		resp, rerr := nethttp.ReadResponse(r, nil)
		if rerr != nil {
			t.Fatalf("reply %d of %d: %v (%d bytes came, then %v)", i, limit, rerr, len(got), err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("d8:complete")) {
			t.Fatalf("reply %d: %d %q", i, resp.StatusCode, body)
		}
		if last := i == limit-1; resp.Close != last {
			t.Fatalf("reply %d of %d: Connection: close is %v", i, limit, resp.Close)
		}
	}
	if rest, _ := io.ReadAll(r); len(rest) > 0 || err != nil {
		t.Fatalf("after the %d replies: %d more bytes, then %v", limit, len(rest), err)
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
