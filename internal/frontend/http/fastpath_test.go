//go:build linux

package http

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/swarm"
	"golang.org/x/sys/unix"
)

// TestNewConnectionAllocatesAtMostOnce: a client that connects, sends one
// announce and asks for the close, as most do, costs the server at most
// one allocation (the fast path takes none; one is allowed for the rare
// connection the kernel hands over before its request). The client side
// uses raw system calls so that it allocates nothing itself.
func TestNewConnectionAllocatesAtMostOnce(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random; make test runs this without it")
	}
	store := swarm.New(swarm.Config{AnnounceInterval: 30 * time.Minute, MinInterval: 5 * time.Minute,
		PeerTTL: 45 * time.Minute, NumWantDefault: 50, NumWantMax: 200, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	defer store.Close()
	var hash bittorrent.InfoHash
	copy(hash[:], "fast-path-allocation")
	for i := range 100 {
		req := bittorrent.AnnounceRequest{InfoHash: hash, Addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), Port: 6881, Left: 1}
		store.Announce(&req, &bittorrent.AnnounceResponse{})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := ln.(*net.TCPListener).SyscallConn()
	rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 5) })
	log := logrus.New()
	log.SetOutput(io.Discard)
	budget := ratelimit.New(ratelimit.Config{Rate: 1e9, Burst: 1e6, Tracked: 1000}) // on, never exceeded
	s := NewServer(ln, store, Options{ReadTimeout: time.Second, WriteTimeout: time.Second, MaxConnections: 100, Open: new(atomic.Int64), Budget: budget}, metrics.New(nil), log)
	s.SetHosts(NewHosts([]string{"t"}))
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	defer func() { s.Close(); <-served }()

	request := []byte("GET /announce?info_hash=fast-path-allocation&peer_id=-qB4500-012345678901&port=7000&left=1&numwant=50 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
	sa := &unix.SockaddrInet4{Port: ln.Addr().(*net.TCPAddr).Port, Addr: [4]byte{127, 0, 0, 1}}
	reply := make([]byte, 4096)
	var got []byte
	exchange := func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.Connect(fd, sa); err != nil {
			t.Fatal(err)
		}
		unix.Write(fd, request)
		n := 0
		for n < len(reply) {
			k, err := unix.Read(fd, reply[n:])
			if err != nil || k == 0 {
				break
			}
			n += k
		}
		got = reply[:n]
	}
	exchange() // warm the pools
	if n := testing.AllocsPerRun(200, exchange); n > 1 {
		t.Fatalf("%v allocations per new connection", n)
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 OK")) || !bytes.Contains(got, []byte("5:peers300:")) || !bytes.Contains(got, []byte("Connection: close")) {
		t.Fatalf("reply %q", got)
	}
}
