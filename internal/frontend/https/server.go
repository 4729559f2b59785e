// Package https serves the HTTP tracker, and WebSocket (wss://), over TLS
// from the process itself. TLS cannot ride the raw-descriptor engine the
// HTTP frontend polls, so TLS connections are served the standard Go way:
// crypto/tls, one goroutine each. What is said on them is not this
// package's: every request is parsed, checked and answered by the HTTP
// frontend (http.Exchange), every WebSocket served by the WebSocket
// frontend (Upgrader), so the tracker, the scrape, the WebSocket swarms and
// the limits (the per-IP budget, http.max_connections, the real-IP and Host
// rules) are those of plain HTTP, and so are the counters.
//
// TLS 1.2 and 1.3 only, session tickets on, ALPN http/1.1 (TLSConfig). The
// certificate is a KeyPair's: Set swaps it for new handshakes, and open
// connections continue with theirs.
//
// server.go is the listener's life: accepting, the connection cap;
// track.go the connections it has, their eviction at the cap and
// shutdown; conn.go is one connection's requests; keypair.go the
// certificate.
package https

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/frontend"
	"github.com/trakx/trakx/internal/frontend/http"
)

// Options are the HTTPS frontend's settings.
type Options struct {
	// ReadTimeout bounds the handshake, a whole request, and an idle
	// keep-alive connection (http.read_timeout); WriteTimeout a reply.
	ReadTimeout, WriteTimeout time.Duration
	// MaxConnections bounds the connections open at once across every
	// server sharing Open (the HTTP frontend's too). At the cap a new one
	// evicts an idle one (Evict); if there is none, it is answered 503 and
	// closed.
	MaxConnections int64
	Open           *atomic.Int64
	// Evict closes an idle connection of any server sharing Open, giving
	// its slot back, and reports whether there was one; nil: the server's
	// own (EvictIdle).
	Evict func() bool
	// KeyPair is the certificate served.
	KeyPair *KeyPair
	// WebSocket serves the upgrades the Exchange lets through; nil: none
	// (and the Exchange must have been made without a WebSocket).
	WebSocket Upgrader
}

// Upgrader serves WebSockets over connections it is handed (the
// WebSocket frontend).
type Upgrader interface {
	// ServeConn answers the upgrade request (read and checked already)
	// of the connection nc, from client, and serves it as a WebSocket, on
	// goroutines of its own, until it ends; then it closes nc and frees
	// its slot under http.max_connections. False: it refused the upgrade
	// (and answered it, unless shutting down), and nc and its slot are
	// still the caller's.
	ServeConn(nc net.Conn, request []byte, client netip.Addr) bool
}

// Server serves one TLS listener.
type Server struct {
	ln     net.Listener
	ex     *http.Exchange
	opts   Options
	config *tls.Config
	log    *logrus.Logger

	refusing atomic.Int64 // refused connections being answered
	// busySince is when the accept loop took the connection it is on
	// (unix nanoseconds), or 0 while it waits in Accept: the watchdog's
	// view.
	busySince atomic.Int64

	mu      sync.RWMutex
	conns   map[*tracked]struct{} // the connections not handed over
	closing bool
	cutOff  time.Time      // Close's: no deadline is set past it
	wg      sync.WaitGroup // every connection's goroutine
}

// NewServer prepares a server on ln, whose requests ex answers; Serve
// starts it.
func NewServer(ln net.Listener, ex *http.Exchange, opts Options, log *logrus.Logger) *Server {
	return &Server{ln: ln, ex: ex, opts: opts, config: TLSConfig(opts.KeyPair), log: log, conns: map[*tracked]struct{}{}}
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Describe is the start-up line's part for the server.
func (s *Server) Describe() string { return "https " + s.Addr().String() }

// Stalled reports whether the accept loop has been on one connection
// for longer than limit: it only admits and starts connections, so that
// means it is wedged (on a lock), and nothing new is served. Connections
// themselves are not watched: each has a goroutine of its own, so none
// waits behind another's request, and a wedged store shows in the other
// frontends' loops and workers.
func (s *Server) Stalled(limit time.Duration) bool {
	since := s.busySince.Load()
	return since != 0 && time.Now().UnixNano()-since > int64(limit)
}

// Serve accepts connections until Close, then waits for every connection
// to end: those serving a request finish it, WebSockets end when the
// WebSocket frontend closes them.
func (s *Server) Serve() {
	defer s.wg.Wait()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosing() {
				return
			}
			// Out of descriptors and the like: back off rather than spin.
			s.log.WithError(err).Warn("https: accept")
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.busySince.Store(time.Now().UnixNano())
		s.start(nc)
		s.busySince.Store(0)
	}
}

// start serves nc on a goroutine of its own, or refuses it at the cap.
func (s *Server) start(nc net.Conn) {
	if !s.admit() {
		s.refuse(nc)
		return
	}
	t := s.track(nc, true)
	if t == nil {
		nc.Close()
		s.opts.Open.Add(-1)
		return
	}
	go s.serveConn(t)
}

// admit takes a slot for a new connection under http.max_connections,
// evicting an idle connection if none is free; false if none can be had.
func (s *Server) admit() bool {
	return frontend.TakeSlot(s.opts.Open, s.opts.MaxConnections, s.evict)
}

// evict makes room at the cap: Options.Evict, or the server's own.
func (s *Server) evict() bool {
	if s.opts.Evict != nil {
		return s.opts.Evict()
	}
	return s.EvictIdle()
}

// maxRefusing bounds the refused connections answered at once; past it,
// one is just closed.
const maxRefusing = 64

// refuse answers a connection over the cap 503, after its handshake, on a
// goroutine of its own, and closes it. It holds no slot, and Close ends it
// as it ends the others.
func (s *Server) refuse(nc net.Conn) {
	if s.refusing.Add(1) > maxRefusing {
		s.refusing.Add(-1)
		s.ex.RefuseConnection(nil)
		nc.Close()
		return
	}
	t := s.track(nc, false)
	if t == nil {
		s.refusing.Add(-1)
		nc.Close()
		return
	}
	go func() {
		defer s.wg.Done()
		defer s.refusing.Add(-1)
		defer s.untrack(t)
		defer nc.Close()
		tc := tls.Server(nc, s.config)
		s.setReadDeadline(nc, time.Now().Add(s.opts.ReadTimeout))
		s.setWriteDeadline(nc, time.Now().Add(s.opts.WriteTimeout))
		if tc.Handshake() == nil {
			tc.Write(s.ex.RefuseConnection(nil))
			tc.CloseWrite()
		}
	}()
}

func (s *Server) isClosing() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closing
}

// addrOf is a connection's remote address.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}
