package http

import (
	"cmp"
	"io"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/fullscrape"
	"github.com/trakx/trakx/internal/metrics"
)

// Exchange answers requests that reach the tracker by another way than a
// Server's own sockets: the https frontend's TLS connections, which it
// reads and writes itself. Each request is parsed, checked (per-IP budget,
// Host rules, real-IP header), answered and counted exactly as on the
// Server's connections, in the same counters; carrying the bytes is the
// caller's business.
type Exchange struct{ s *Server }

// NewExchange prepares the answering of requests under opts' checks. With
// opts.WebSocket set, an upgrade at the announce path is recognised
// (Upgrade) for the caller to hand over; the Upgrader itself is not
// called. The connection settings (timeouts, the cap, the engine) are the
// caller's to apply.
func NewExchange(tracker bittorrent.Tracker, opts Options, m *metrics.Metrics, log *logrus.Logger) *Exchange {
	return &Exchange{s: NewServer(nil, tracker, opts, m, log)}
}

// Outcome is what answering one request leaves the caller to do.
type Outcome int

// The outcomes.
const (
	// KeepAlive: the reply is appended; read the next request.
	KeepAlive Outcome = iota
	// Close: the reply is appended and is the last; then close.
	Close
	// Upgrade: a WebSocket upgrade that passed every check; nothing is
	// appended: hand the connection, and the request, over.
	Upgrade
	// WriteFull: a full scrape admitted (and counted); nothing is
	// appended: write it with WriteFullScrape, then go on as it says.
	WriteFull
)

// Answered is what answering one request leaves the caller to do.
type Answered struct {
	Outcome Outcome
	// Client is an Upgrade's client, as resolved through a trusted
	// proxy's real-IP header.
	Client netip.Addr
	// Full is a WriteFull's full scrape, as Answer admitted it, for
	// WriteFullScrape: a reload in between changes nothing of it.
	Full FullScrapeAsk
}

// FullScrapeAsk is a full scrape admitted: the snapshots it is written
// from, its deadline, whether the client takes gzip and whether the
// connection may serve on after it.
type FullScrapeAsk struct{ ask fullAsk }

// Answer appends to dst the reply to one request, raw (its line and
// headers through the blank line), from peer, the connection's address;
// served is how many requests the connection had answered before it, and
// more says whether bytes follow it.
func (e *Exchange) Answer(dst, raw []byte, peer netip.Addr, served int, more bool) ([]byte, Answered) {
	c := connPool.Get().(*conn)
	defer connPool.Put(c)
	s := e.s
	counters := s.counters[s.nextConn.Add(1)%counterGroups]
	var r request
	switch {
	case !parseRequest(raw, &r, s.opts.RealIPHeader):
		s.rejectReply(c, counters, peer, 400, "Bad Request", "malformed HTTP request")
		return append(dst, c.out...), Answered{Outcome: Close}
	case r.hasBody:
		s.rejectReply(c, counters, peer, 400, "Bad Request", "request bodies are not accepted")
		return append(dst, c.out...), Answered{Outcome: Close}
	}
	r.peer = peer
	if s.wantsUpgrade(&r) {
		if more {
			s.rejectReply(c, counters, peer, 400, "Bad Request", "data after a WebSocket upgrade request: wait for 101 Switching Protocols (RFC 6455 section 4.1)")
			return append(dst, c.out...), Answered{Outcome: Close}
		}
		client, ok := s.admitUpgrade(c, counters, &r)
		if !ok {
			return append(dst, c.out...), Answered{Outcome: Close, Client: client}
		}
		return dst, Answered{Outcome: Upgrade, Client: client}
	}
	if served+1 == s.opts.MaxRequests {
		r.keepAlive = false // this reply says Connection: close
	}
	s.handle(c, counters, &r)
	if c.full.builder != nil {
		return dst, Answered{Outcome: WriteFull, Full: FullScrapeAsk{c.full}}
	}
	if !r.keepAlive {
		return append(dst, c.out...), Answered{Outcome: Close}
	}
	return append(dst, c.out...), Answered{Outcome: KeepAlive}
}

// WriteFullScrape writes to w the full scrape Answer admitted (full): it
// waits for the snapshot, then sets w's write deadline to the full
// scrape's own and writes the reply, gzip-compressed if the client
// accepts it, else decompressed as it goes. keepAlive says whether the
// connection may serve on.
func (e *Exchange) WriteFullScrape(w io.Writer, setWriteDeadline func(time.Time) error, full FullScrapeAsk) (keepAlive bool, err error) {
	if full.ask.builder == nil {
		return false, errFullScrapeDisabled // not a WriteFull's
	}
	f := fullReply{ask: full.ask}
	f.ask.timeout = cmp.Or(f.ask.timeout, FullScrapeTimeout)
	f.snap = f.ask.builder.Wait(time.Now())
	setWriteDeadline(time.Now().Add(f.ask.timeout))
	if !f.ask.gzip {
		// Take a reader before the head goes out: without one, the
		// answer is the refusal, whole.
		var err error
		if f.plain, err = f.snap.NewPlain(); err == fullscrape.ErrBusy {
			e.s.counters[0].Refuse(metrics.RefusalFullScrapeBusy)
			_, err = w.Write(appendFullScrapeBusy(nil, f.ask.keepAlive))
			return f.ask.keepAlive && err == nil, err
		} else if err != nil {
			return false, err
		}
		defer f.plain.Close()
	}
	if _, err := w.Write(f.appendHead(nil)); err != nil {
		return false, err
	}
	if f.ask.gzip {
		_, err = w.Write(f.snap.Gzip)
	} else {
		err = f.plain.WriteAll(w)
	}
	return f.ask.keepAlive && err == nil, err
}

// TooLarge appends the answer to a request longer than MaxRequestSize
// from peer (431, or 429 over its budget); the connection then closes.
func (e *Exchange) TooLarge(dst []byte, peer netip.Addr) []byte {
	c := connPool.Get().(*conn)
	defer connPool.Put(c)
	e.s.rejectReply(c, e.s.counters[0], peer, 431, "Request Header Fields Too Large", "request too large")
	return append(dst, c.out...)
}

// RefuseConnection counts a connection refused at http.max_connections and
// appends its whole answer (503) to dst.
func (e *Exchange) RefuseConnection(dst []byte) []byte {
	e.s.counters[0].ConnectionsRefused.Add(1)
	return append(dst, tooManyConnections...)
}

// CountEviction counts an idle connection closed to make room at
// http.max_connections.
func (e *Exchange) CountEviction() { e.s.counters[0].ConnectionsEvicted.Add(1) }
