//go:build linux

package http

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/swarm"
)

// TestConnectionCapHolds: three times http.max_connections clients arrive
// at once, a third sending nothing (idle, so evicted to make room), a
// third holding part of a request, a third asking a whole one. However
// they interleave, the count of connections being served never exceeds
// the cap (evictions used to leave it one over per eviction until the
// evicted goroutine ended), and once all have gone it is back to zero.
func TestConnectionCapHolds(t *testing.T) {
	const limit = 20
	open := new(atomic.Int64)
	s, ln := cappedServer(t, limit, open, false)
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()

	var most atomic.Int64
	watching := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if n := open.Load(); n > most.Load() {
				most.Store(n)
			}
			select {
			case <-watching:
				return
			default:
			}
		}
	}()
	var wg sync.WaitGroup
	var conns sync.Map
	for i := range 3 * limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return
			}
			conns.Store(c, true)
			switch i % 3 {
			case 1:
				c.Write([]byte("GET /scrape HTTP/1.1\r\nHo"))
			case 2:
				c.Write([]byte("GET /scrape HTTP/1.1\r\nHost: t\r\n\r\n"))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				c.Read(make([]byte, 512))
			}
		}()
	}
	wg.Wait()
	conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
	for deadline := time.Now().Add(10 * time.Second); open.Load() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still counted after every client left", open.Load())
		}
	}
	close(watching)
	<-watched
	if n := most.Load(); n > limit {
		t.Fatalf("%d connections counted at once, over the cap of %d", n, limit)
	}
	s.Close()
	<-served
}

// TestNoRequestIsDroppedAtTheCap: at the cap, a connection that arrives
// with a whole request in hand is busy, not idle: it is never evicted to
// admit the next one. Every client gets an answer, 200 or 503, never an
// end of stream with nothing.
func TestNoRequestIsDroppedAtTheCap(t *testing.T) {
	const limit = 20
	// As the daemon does: a connection is accepted once it has sent
	// something, so that none is taken for idle while its request is on
	// its way.
	s, ln := cappedServer(t, limit, new(atomic.Int64), true)
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	defer func() { s.Close(); <-served }() // after the clients close
	// All but one slot held by partial requests.
	for range limit - 1 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /scrape HTTP/1.1\r\nHo"))
	}
	var wg sync.WaitGroup
	answers := make(chan string, 60)
	for range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				answers <- err.Error()
				return
			}
			defer c.Close()
			c.Write([]byte("GET /scrape HTTP/1.1\r\nHost: t\r\n\r\n")) // keep-alive: handed off
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			head := make([]byte, 12)
			n, _ := io.ReadFull(c, head)
			answers <- string(head[:n])
		}()
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if a != "HTTP/1.1 200" && a != "HTTP/1.1 503" {
			t.Errorf("a client with a whole request got %q, want a 200 or a 503", a)
		}
	}
}

// cappedServer is a server of its own store on a loopback listener, at a
// cap of limit connections counted in open, with TCP_DEFER_ACCEPT if
// deferAccept; the caller serves it.
func cappedServer(t *testing.T, limit int64, open *atomic.Int64, deferAccept bool) (*Server, net.Listener) {
	t.Helper()
	store := swarm.New(swarm.Config{AnnounceInterval: 30 * time.Minute, MinInterval: 5 * time.Minute,
		PeerTTL: 45 * time.Minute, NumWantDefault: 50, NumWantMax: 200, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	t.Cleanup(store.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if deferAccept {
		rc, _ := ln.(*net.TCPListener).SyscallConn()
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 5) })
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := NewServer(ln, store, Options{ReadTimeout: 3 * time.Second, WriteTimeout: time.Second, MaxConnections: limit, Open: open},
		metrics.New(nil), log)
	return s, ln
}
