package http

import (
	"io"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/fullscrape"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/metrics"
	"golang.org/x/sys/unix"
)

// The full scrape: GET /scrape without info_hash, when http.full_scrape is
// on. handle admits or refuses it (the access from http.full_scrape_from,
// the whole burst of the per-IP budget); a stream answers it, never the
// fast path, which hands such a connection to the engine. The reply is a
// snapshot package fullscrape builds on a goroutine of its own, so no loop
// waits for a build: the stream waits, polled for nothing, until the
// builder pokes it. Then it writes the snapshot as the socket takes it,
// pumpBudget bytes at a time before it lets the loop serve others:
// gzip-compressed as it is held, or decompressed a piece at a time for a
// client that does not accept gzip. Only a few replies are decompressed
// at once (fullscrape.Options.MaxPlain): past them, a client that does
// not accept gzip is answered 503 with Retry-After and a failure reason,
// counted as refused (full_scrape_busy). The whole reply has
// FullScrapeTimeout to go out, in place of http.write_timeout. Replies to
// requests before it in the same batch go out with it; requests pipelined
// after it are kept, nothing more is read, and they are answered once it
// is out, at the loop's next turn (one full scrape at a time per turn, so
// that a packet of them cannot hold the loop). Closing the server cuts a
// full scrape off.

// FullScrape is http.full_scrape's settings, shared by every server given
// the same pointer (Options.FullScrape).
type FullScrape struct {
	Builder *fullscrape.Builder // the snapshots; nil: full scrape off
	From    []netip.Prefix      // who may ask (http.full_scrape_from); empty: anyone
	// Timeout bounds the writing of a reply, from when its snapshot is
	// ready; 0: FullScrapeTimeout.
	Timeout time.Duration
}

// FullScrapeTimeout bounds the writing of a full scrape's reply.
const FullScrapeTimeout = 60 * time.Second

// pumpBudget is the most a stream writes of a full scrape before the loop
// serves its other connections.
const pumpBudget = 1 << 20

// The refusals of a full scrape.
var (
	errFullScrapeDisabled   = &bittorrent.ClientError{Message: "full scrape is disabled"}
	errFullScrapeNotAllowed = &bittorrent.ClientError{Message: "full scrape not allowed"}
)

// fullScrapeBusy is the failure reason of a full scrape refused because
// as many replies as allowed are being decompressed already.
const fullScrapeBusy = "full scrape busy, retry later or accept gzip"

// fullScrapeRetryAfter is the Retry-After, in seconds, of that refusal.
const fullScrapeRetryAfter = 10

// fullAsk is a full scrape handle admitted, for a stream to answer.
type fullAsk struct {
	builder         *fullscrape.Builder
	timeout         time.Duration
	gzip, keepAlive bool
}

// fullScrape admits a full scrape, or composes its refusal.
func (s *Server) fullScrape(c *conn, counters *metrics.HTTP, r *request, client netip.Addr) {
	var fs *FullScrape
	if s.opts.FullScrape != nil {
		fs = s.opts.FullScrape.Load()
	}
	switch {
	case fs == nil || fs.Builder == nil:
		s.fail(c, counters, errFullScrapeDisabled, r.keepAlive)
	case !fs.allows(client):
		s.fail(c, counters, errFullScrapeNotAllowed, r.keepAlive)
	case !s.opts.Budget.AllowRest(client, time.Now()):
		s.refuseRate(c, counters)
		r.keepAlive = false
	default:
		counters.Answer(metrics.ActionFullScrape, client)
		c.out = c.out[:0] // the reply is the stream's to write, not c.out's
		c.full = fullAsk{builder: fs.Builder, timeout: fs.Timeout, gzip: r.acceptGzip, keepAlive: r.keepAlive}
		if c.full.timeout == 0 {
			c.full.timeout = FullScrapeTimeout
		}
	}
}

// allows reports whether client may ask for a full scrape.
func (fs *FullScrape) allows(client netip.Addr) bool {
	if len(fs.From) == 0 {
		return true
	}
	for _, p := range fs.From {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// fullReply is a full scrape a stream answers. Its fields are the loop's
// alone, but ready, which the builder's goroutine sets.
type fullReply struct {
	c     *stream
	ask   fullAsk
	ready atomic.Pointer[fullscrape.Snapshot]
	asked bool // the builder was asked for a snapshot
	snap  *fullscrape.Snapshot
	// pending is what the socket has not taken of the piece being
	// written: the replies before, with the head; the body, or a piece
	// of it decompressed.
	pending  []byte
	inBody   bool
	plain    *fullscrape.Plain // nil: the body goes out gzip-compressed
	watching bool              // polled for EPOLLOUT
}

// SnapshotReady hands the reply its snapshot, from the builder.
func (f *fullReply) SnapshotReady(s *fullscrape.Snapshot) {
	f.ready.Store(s)
	f.c.loop.Poke(f.c)
}

// handOffFull has the engine answer a full scrape the fast path admitted
// on a new connection, which then closes.
func (s *Server) handOffFull(fd int, peer netip.Addr, ask fullAsk) {
	c := &stream{s: s, fd: fd, peer: peer, loop: s.engine.Pick(), counters: s.counters[s.nextConn.Add(1)%counterGroups], ending: true}
	c.full = &fullReply{c: c, ask: ask}
	if !s.track(c) { // closing
		unix.Close(fd)
		s.opts.Open.Add(-1)
		return
	}
	if err := c.loop.Add(c, 0); err != nil {
		unix.Close(fd) // never the loop's: this goroutine still owns it
		c.Closed()
		return
	}
	c.loop.Poke(c)
}

// startFull has the stream answer a full scrape, after before, the
// replies to the requests before it, which go out with its head. It reads
// nothing until the reply is out.
func (c *stream) startFull(ask fullAsk, before []byte) {
	c.full = &fullReply{c: c, ask: ask, pending: append([]byte(nil), before...)}
	c.waitingSince.Store(0)
	if !ask.keepAlive {
		c.ending = true
	}
	if c.loop.Watch(c, 0) != nil {
		c.end()
		return
	}
	c.stepFull(c.loop.Now())
}

// stepFull moves the full scrape on: asks for the snapshot, or, once it
// has it, begins or goes on writing.
func (c *stream) stepFull(now time.Time) {
	f := c.full
	if f.snap == nil {
		if f.snap = f.ready.Load(); f.snap == nil && !f.asked {
			f.asked = true
			f.snap = f.ask.builder.Get(now, f)
		}
		if f.snap == nil {
			return // SnapshotReady pokes the stream
		}
		c.fullUntil.Store(now.Add(f.ask.timeout).UnixNano())
		if !c.beginFull() {
			return
		}
	}
	c.pump()
}

// beginFull puts the reply's head after the replies before it, and takes
// a reader if the body goes out decompressed, or, if none is free, puts
// the refusal in place of the reply; false if the stream ended.
func (c *stream) beginFull() bool {
	f := c.full
	if !f.ask.gzip {
		var err error
		f.plain, err = f.snap.NewPlain()
		if err == fullscrape.ErrBusy {
			c.counters.Refuse(metrics.RefusalFullScrapeBusy)
			f.pending = appendFullScrapeBusy(f.pending, f.ask.keepAlive)
			f.inBody = true // and no body follows
			return true
		}
		if err != nil {
			c.end()
			return false
		}
	}
	f.pending = f.appendHead(f.pending)
	return true
}

// appendFullScrapeBusy appends the whole answer to a full scrape refused
// for want of a reader to decompress it: 503, Retry-After, and a failure
// reason; the connection may serve on if keepAlive.
func appendFullScrapeBusy(dst []byte, keepAlive bool) []byte {
	sc := connPool.Get().(*conn)
	defer connPool.Put(sc)
	sc.body = httpproto.AppendFailure(sc.body[:0], fullScrapeBusy)
	composeRetry(sc, 503, "Service Unavailable", keepAlive, fullScrapeRetryAfter)
	return append(dst, sc.out...)
}

// appendHead appends the reply's status line and headers.
func (f *fullReply) appendHead(dst []byte) []byte {
	n := f.snap.Plain
	if f.ask.gzip {
		n = int64(len(f.snap.Gzip))
	}
	dst = append(dst, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, n, 10)
	if f.ask.gzip {
		dst = append(dst, "\r\nContent-Encoding: gzip"...)
	}
	dst = append(dst, "\r\nVary: Accept-Encoding\r\nDate: "...)
	dst = appendDate(dst)
	if !f.ask.keepAlive {
		dst = append(dst, "\r\nConnection: close"...)
	}
	return append(dst, "\r\n\r\n"...)
}

// pump writes the reply until the socket takes no more, pumpBudget bytes
// are out, or the reply is.
func (c *stream) pump() {
	f := c.full
	for sent := 0; sent < pumpBudget; {
		if len(f.pending) == 0 {
			more, err := f.next()
			if err != nil {
				c.end()
				return
			}
			if !more {
				c.endFull()
				return
			}
		}
		n, err := c.s.write(c.fd, f.pending)
		if err == unix.EAGAIN {
			n, err = 0, nil
		}
		if err != nil {
			c.end()
			return
		}
		f.pending, sent = f.pending[n:], sent+n
		if len(f.pending) > 0 {
			break // the socket is full
		}
	}
	if !f.watching { // level-triggered: a socket with room wakes the loop again
		f.watching = true
		if c.loop.Watch(c, unix.EPOLLOUT) != nil {
			c.end()
		}
	}
}

// next puts the next piece of the body in pending; false once all of it
// is out.
func (f *fullReply) next() (bool, error) {
	if f.plain != nil {
		piece, err := f.plain.Next()
		if len(piece) > 0 {
			f.pending = piece
			return true, nil
		}
		if err == io.EOF {
			return false, nil
		}
		return false, err
	}
	if f.inBody {
		return false, nil
	}
	f.inBody, f.pending = true, f.snap.Gzip
	return len(f.pending) > 0, nil
}

// endFull ends a full scrape whose reply is out: the stream reads again,
// or closes if that was its last reply.
func (c *stream) endFull() {
	c.dropFull()
	if c.loop.Watch(c, engine.ReadEvents) != nil {
		c.end()
		return
	}
	if c.ending || c.s.closing.Load() {
		c.closeGracefully()
		return
	}
	c.waitForRequest()
	if c.in != nil { // requests that came with the full scrape wait no more
		c.fresh = true // but for the loop's next turn: Poked, or Ready, serves them
		c.loop.Poke(c)
	}
}

// dropFull forgets the stream's full scrape, and gives its buffers back.
func (c *stream) dropFull() {
	if c.full != nil && c.full.plain != nil {
		c.full.plain.Close()
	}
	c.full = nil
	c.fullUntil.Store(0)
}

// fullReady is Ready while the stream answers a full scrape.
func (c *stream) fullReady(events uint32) {
	switch {
	case events&(unix.EPOLLHUP|unix.EPOLLERR) != 0:
		c.end() // the client is gone
	case events&unix.EPOLLOUT != 0 && c.full.snap != nil:
		c.pump()
	}
}

// fullPoked is Poked while the stream answers a full scrape: its snapshot
// is ready, its time is up, or the server is closing, which cuts it off
// rather than wait up to FullScrapeTimeout for it.
func (c *stream) fullPoked(now time.Time) {
	if c.expired(now.UnixNano()) || c.s.closing.Load() {
		c.end() // what the client is owed cannot reach it
		return
	}
	c.stepFull(now)
}
