package http

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	nethttp "net/http"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/trakx/trakx/internal/frontend/engine"
	tt "github.com/trakx/trakx/internal/trackertest"
	"golang.org/x/sys/unix"
)

// TestEvictionSparesAStreamOwingReplies: an eviction that comes while a
// stream is writing its replies, the socket taking only part of them,
// finds it busy, not idle: every reply reaches the client, in order, the
// next request's too. The stream counted as idle from the moment it had
// answered its requests, before it wrote the replies: evicted then, it was
// ended with replies unsent, or answered the next request 503 in the
// middle of them. Once it owes nothing, it is idle, and evicted.
func TestEvictionSparesAStreamOwingReplies(t *testing.T) {
	const requests = 100
	request := func(i int) string {
		return fmt.Sprintf("GET /scrape?info_hash=%020d HTTP/1.1\r\nHost: t\r\n\r\n", i)
	}
	server, client := socketPair(t)
	defer unix.Close(client)
	s := echoServer(t)
	// On the stream's first write, another request comes, then an
	// eviction: as if on other goroutines, at the worst moment.
	var hooked, evictedThen atomic.Bool
	s.write = func(fd int, p []byte) (int, error) {
		if fd == server && !hooked.Swap(true) {
			if _, err := unix.Write(client, []byte(request(requests))); err != nil {
				t.Error(err)
			}
			evictedThen.Store(s.evictIdle())
		}
		return engine.Write(fd, p)
	}
	// A send buffer smaller than the replies: most wait in the stream.
	unix.SetsockoptInt(server, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<10)
	s.opts.Open.Add(1)
	s.handOff(server, netip.MustParseAddr("192.0.2.1"), nil)
	var burst []byte
	for i := range requests {
		burst = append(burst, request(i)...)
	}
	if _, err := unix.Write(client, burst); err != nil {
		t.Fatal(err)
	}
	readInOrder(t, client, requests+1)
	if !hooked.Load() {
		t.Fatal("the stream wrote nothing through write")
	}
	if evictedThen.Load() {
		t.Error("a stream writing its replies was evicted")
	}
	// The client has every reply: the stream, owing nothing once the last
	// write returns, is idle from then on.
	tt.WaitFor(t, "the stream, owing nothing, to be evicted", s.evictIdle)
	if n, err := unix.Read(client, make([]byte, 1)); n != 0 || err != nil {
		t.Fatalf("evicted, the stream sent %d bytes more, %v, not the end of stream", n, err)
	}
	tt.WaitFor(t, "the evicted stream to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.opts.Open.Load() == 0 && len(s.conns) == 0
	})
}

// readInOrder reads n scrape replies from fd, the ith for the info hash
// %020d of i.
func readInOrder(t *testing.T, fd, n int) {
	t.Helper()
	r := bufio.NewReader(fdReader(fd))
	for i := range n {
		resp, err := nethttp.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i, n, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Appendf(nil, "d5:filesd20:%020d", i)
		if err != nil || resp.StatusCode != 200 || !bytes.HasPrefix(body, want) {
			t.Fatalf("reply %d of %d: %d %q %v", i, n, resp.StatusCode, body, err)
		}
	}
	if r.Buffered() > 0 {
		t.Fatalf("%d bytes more after %d replies", r.Buffered(), n)
	}
}

// fdReader reads a blocking descriptor.
type fdReader int

func (fd fdReader) Read(p []byte) (int, error) {
	n, err := unix.Read(int(fd), p)
	if n == 0 && err == nil {
		return 0, io.EOF
	}
	return max(n, 0), err
}
