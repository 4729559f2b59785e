package websocket

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/metrics"
	tt "github.com/trakx/trakx/internal/trackertest"
	"golang.org/x/sys/unix"
)

type openGate struct{}

func (openGate) Admit(*bittorrent.InfoHash, *bittorrent.PeerID) error { return nil }
func (openGate) AdmitTorrent(*bittorrent.InfoHash) error              { return nil }

// serve runs a Server behind a listener that reads each upgrade request
// and hands the connection over, as the HTTP frontend does, until the
// test ends.
func serve(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	s, addr, stop := start(t, opts)
	t.Cleanup(stop)
	return s, addr
}

// start is serve with a stop that returns once the server, its listener
// and every goroutine of theirs have ended.
func start(t *testing.T, opts Options) (*Server, string, func()) {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	s, err := NewServer(opts, openGate{}, metrics.New(nil), log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stopping := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.Run(stopping) }()
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				var req []byte
				buf := make([]byte, 4096)
				for !bytes.Contains(req, []byte("\r\n\r\n")) {
					n, err := nc.Read(buf)
					if err != nil {
						return
					}
					req = append(req, buf[:n]...)
				}
				s.opts.Open.Add(1) // as the HTTP frontend counts nc
				if !upgrade(s, nc, req) {
					s.opts.Open.Add(-1)
				}
			}()
		}
	}()
	stop := sync.OnceFunc(func() { ln.Close(); close(stopping); wg.Wait() })
	return s, ln.Addr().String(), stop
}

// upgrade hands nc's socket to s as the HTTP frontend does: as a
// connection in one of the engine's loops, whose upgrade request is req.
// nc is closed; the socket lives on in the loop if it was upgraded.
func upgrade(s *Server, nc net.Conn, req []byte) bool {
	f, err := nc.(*net.TCPConn).File()
	nc.Close()
	if err != nil {
		return false
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil || unix.SetNonblock(fd, true) != nil {
		return false
	}
	loop := s.engine.Pick()
	held := &heldConn{fd: fd}
	if loop.Add(held, engine.ReadEvents) != nil {
		unix.Close(fd)
		return false
	}
	if s.Upgrade(loop, fd, req, netip.MustParseAddr("127.0.0.1")) {
		return true
	}
	held.shut.Store(true)
	loop.Retire(held, time.Now()) // shut: the loop closes it
	return false
}

// heldConn holds a descriptor in a loop until a WebSocket takes its place.
type heldConn struct {
	fd   int
	shut atomic.Bool
}

func (h *heldConn) FD() int              { return h.fd }
func (h *heldConn) Ready(uint32, []byte) {}
func (h *heldConn) Poked(time.Time)      {}
func (h *heldConn) IsShut() bool         { return h.shut.Load() }
func (h *heldConn) Shut()                { h.shut.Store(true) }
func (h *heldConn) Closed()              {}

func options() Options {
	return Options{MaxConnections: 10, MaxOffers: 10, MaxMessageBytes: 4096, ReadTimeout: time.Second, WriteTimeout: time.Second,
		PingInterval: 40 * time.Millisecond, Intervals: func() (time.Duration, time.Duration) { return 30 * time.Minute, 45 * time.Minute }}
}

// TestPingsKeepAliveAndFindTheDead: a client that answers pings stays; one
// that sends nothing for 2.5 ping intervals is closed.
func TestPingsKeepAliveAndFindTheDead(t *testing.T) {
	s, addr := serve(t, options())
	alive, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/announce")
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()
	silent, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/announce")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	// The live client reads, and so answers, every ping, all along.
	pings, texts := make(chan struct{}, 1000), make(chan []byte, 10)
	go func() {
		for {
			f, err := tt.ReadWSFrame(alive)
			if err != nil {
				close(texts)
				return
			}
			switch f.Header.OpCode {
			case ws.OpPing:
				pings <- struct{}{}
				ws.WriteFrame(alive, ws.MaskFrame(ws.NewPongFrame(f.Payload)))
			case ws.OpText:
				texts <- f.Payload
			}
		}
	}()
	// The silent one is closed: after some pings, end of stream.
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := tt.ReadWSFrame(silent); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			t.Fatalf("silent client: %v, want the connection closed", err)
		}
	}
	// Several intervals later the live one is open and answered.
	for range 6 {
		select {
		case <-pings:
		case <-time.After(5 * time.Second):
			t.Fatal("pings stopped")
		}
	}
	wsutil.WriteClientText(alive, []byte(`{"action":"scrape"}`))
	select {
	case data, ok := <-texts:
		if !ok || !bytes.Contains(data, []byte(`"action":"scrape"`)) {
			t.Fatalf("live client got %q (open %v)", data, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("live client: no answer")
	}
	// The silent one's goroutine has ended, or ends soon.
	for deadline := time.Now().Add(5 * time.Second); s.counters.Connections.Load() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want 1", s.counters.Connections.Load())
		}
	}
}

// TestIdleConnectionSize: what an idle browser costs the tracker is mostly
// its conn; it must not grow unnoticed (208 bytes is a size class of the
// Go allocator on 64-bit platforms).
func TestIdleConnectionSize(t *testing.T) {
	if size := unsafe.Sizeof(conn{}); unsafe.Sizeof(uintptr(0)) == 8 && size > 208 {
		t.Fatalf("a connection takes %d bytes, more than 208", size)
	}
}
