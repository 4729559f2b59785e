package http

import (
	"bytes"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/metrics"
	"golang.org/x/sys/unix"
)

// stream is an HTTP connection served by the connection engine: one that
// outlived its first read (keep-alive, a request in pieces, a slow
// client). Only its loop's goroutine reads, writes or ends it; other
// goroutines (eviction, timeouts, shutdown) mark it and poke the loop.
// Between requests it holds no buffer: its size, and its places in the
// loop's table and the server's, is what an idle keep-alive connection
// costs.
type stream struct {
	s        *Server
	loop     *engine.Loop
	counters *metrics.HTTP
	fd       int
	peer     netip.Addr
	connState

	// The loop's alone.
	served int // requests answered
	// in holds a request not whole yet (inLen bytes); nil when none.
	in    *[MaxRequestSize]byte
	inLen int
	// out is what the socket has not taken yet, sent when it can; reads
	// wait until it is all out.
	out []byte
	// fresh: in holds bytes read before the connection came to the loop,
	// or pipelined after a full scrape now out, not looked at yet; nothing
	// more is read until they are served.
	fresh bool
	// ending: the reply out is the last; closing: the connection is being
	// closed gracefully, its reads discarded; shut: it is done, and the
	// loop closes its descriptor.
	ending, closing, shut bool
	discarder
	// full is the full scrape the stream answers (fullscrape.go), or nil;
	// fullUntil is when its reply must be out (unix nanoseconds), or 0.
	full      *fullReply
	fullUntil atomic.Int64
}

var inPool = sync.Pool{New: func() any { return new([MaxRequestSize]byte) }}

// FD is the stream's socket, for the engine's table.
func (c *stream) FD() int { return c.fd }

// IsShut reports whether the stream is done, so that the loop may close
// its descriptor.
func (c *stream) IsShut() bool { return c.shut }

// Shut ends the stream on its loop's way out, or at the end of its linger.
func (c *stream) Shut() {
	if !c.shut {
		c.shut = true
		unix.Shutdown(c.fd, unix.SHUT_RDWR)
	}
}

// Closed is the stream's end: the server forgets it.
func (c *stream) Closed() {
	c.dropFull()
	c.releaseIn()
	c.out = nil
	c.s.untrack(c)
}

// Ready sends what the stream owes once the socket takes it, and reads
// and answers requests while it owes nothing.
func (c *stream) Ready(events uint32, buf []byte) {
	if c.closing {
		if events&(engine.ReadEvents|unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.discard(c.fd, buf) {
			c.end()
		}
		return
	}
	if c.full != nil {
		c.fullReady(events)
		return
	}
	if events&unix.EPOLLOUT != 0 && !c.flush() {
		return
	}
	if len(c.out) > 0 {
		if events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.end() // the client is gone: what it is owed cannot reach it
		}
		return
	}
	if events&(engine.ReadEvents|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	if c.fresh { // what the fast path read comes first
		c.serveFresh()
		if c.shut || c.closing || len(c.out) > 0 || c.full != nil || c.fresh {
			return // nothing more is read until that is out, or served (fresh again: a full scrape's end)
		}
	}
	c.read(buf)
}

// serveFresh serves the bytes the fast path read, or those that came with
// a full scrape.
func (c *stream) serveFresh() {
	c.fresh = false
	c.serve(c.in[:c.inLen])
}

// Poked acts on what other goroutines saw: the stream was evicted, waited
// too long for a request or for the client to take a reply, or the server
// is closing. It also serves the bytes the fast path read before handing
// the connection over.
func (c *stream) Poked(now time.Time) {
	if c.closing {
		return // its linger ends it
	}
	if c.full != nil {
		c.fullPoked(now)
		return
	}
	if c.idleSince.Load() == evicted {
		c.evicted()
		return
	}
	// Bytes not served yet came in time, whenever the loop gets to them (a
	// full scrape's turn may outlast http.read_timeout): served, not timed out.
	expired := !c.fresh && c.expired(now.UnixNano())
	switch {
	case expired && len(c.out) > 0:
		c.end() // the client takes no more: what it is owed cannot reach it
		return
	case expired || (c.s.closing.Load() && len(c.out) == 0):
		c.closeGracefully()
		return
	}
	if c.fresh {
		c.serveFresh()
	}
}

// evicted ends a stream evicted to make room. A request that came just
// before gets 503; either way the stream closes gracefully, as after
// every reply: its replies may still be on their way to the client.
func (c *stream) evicted() {
	var probe [1]byte
	if n, _ := engine.Read(c.fd, probe[:]); n > 0 {
		c.finish(tooManyConnections)
		return
	}
	c.closeGracefully()
}

// expired reports whether the stream has waited for a request for longer
// than http.read_timeout, or for the client to take a reply for longer than
// http.write_timeout. The read timeout bounds a whole request, not each
// read of it: a client trickling a byte at a time cannot hold a connection
// longer.
func (c *stream) expired(now int64) bool {
	if until := c.fullUntil.Load(); until != 0 { // a full scrape has a time of its own
		return now > until
	}
	if since := c.waitingSince.Load(); since != 0 && now-since > int64(c.s.opts.ReadTimeout) {
		return true
	}
	since := c.writingSince.Load()
	return since != 0 && now-since > int64(c.s.opts.WriteTimeout)
}

// read reads what the socket has, after the part of a request kept if
// there is one, and serves it. A read takes at most MaxRequestSize bytes,
// so that whatever of them is left unanswered fits in the stream's own
// buffer.
func (c *stream) read(buf []byte) {
	if c.in != nil {
		buf = c.in[c.inLen:]
	} else {
		buf = buf[:min(len(buf), MaxRequestSize)]
	}
	n, err := engine.Read(c.fd, buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if n <= 0 {
		c.end() // end of stream, reset: nothing to answer
		return
	}
	if !c.leaveIdle() { // a request came just as it was evicted: tell it
		c.finish(tooManyConnections)
		return
	}
	if c.in != nil {
		c.inLen += n
		c.serve(c.in[:c.inLen])
		return
	}
	c.serve(buf[:n])
}

// serve answers every whole request at the start of data (at most
// MaxRequestSize bytes, the loop's buffer or the stream's own), and keeps
// the part of one that follows them. The replies go out in one write for
// each maxBatch bytes of them; a stream whose client does not take them
// reads and answers nothing more until it does.
func (c *stream) serve(data []byte) {
	sc := connPool.Get().(*conn)
	defer connPool.Put(sc)
	for c.serveBatch(sc, data) && !c.shut && !c.closing && !c.ending && len(c.out) == 0 {
		data = c.in[:c.inLen] // whole requests wait there
	}
}

// maxBatch bounds the replies gathered for one write, and so what a
// stream whose client reads nothing may hold (http.write_timeout ends it).
const maxBatch = 32 << 10

// serveBatch answers the whole requests at the start of data until their
// replies reach maxBatch, sends them, and keeps the rest of data; true if
// whole requests are among what it kept.
func (c *stream) serveBatch(sc *conn, data []byte) bool {
	sc.batch = sc.batch[:0]
	start := 0
	for len(sc.batch) < maxBatch {
		headerEnd := bytes.Index(data[start:], []byte("\r\n\r\n"))
		if headerEnd < 0 {
			break
		}
		if headerEnd+4 > MaxRequestSize {
			c.tooLarge(sc)
			return false
		}
		raw := data[start : start+headerEnd+4]
		start += headerEnd + 4
		switch c.answer(sc, raw, start < len(data)) {
		case keepServing:
			sc.batch = append(sc.batch, sc.out...)
			continue
		case lastReply:
			sc.batch = append(sc.batch, sc.out...)
			c.finish(sc.batch)
		case fullScrape:
			c.keep(data[start:])
			c.startFull(sc.full, sc.batch)
		case stop:
		}
		return false
	}
	rest := data[start:]
	if len(rest) >= MaxRequestSize {
		c.tooLarge(sc)
		return false
	}
	more := len(sc.batch) >= maxBatch && bytes.Contains(rest, []byte("\r\n\r\n"))
	c.keep(rest)
	c.send(sc.batch)
	return more
}

// tooLarge answers, after the replies in sc.batch, a request longer than
// MaxRequestSize, and closes.
func (c *stream) tooLarge(sc *conn) {
	c.s.rejectReply(sc, c.counters, c.peer, 431, "Request Header Fields Too Large", "request too large")
	sc.batch = append(sc.batch, sc.out...)
	c.finish(sc.batch)
}

// keep keeps rest, the start of a request, for the next read; with nothing
// kept, the stream holds no buffer (and is idle once its replies are out:
// waitForRequest).
func (c *stream) keep(rest []byte) {
	if len(rest) == 0 {
		c.releaseIn()
		return
	}
	if c.in == nil {
		c.in = inPool.Get().(*[MaxRequestSize]byte)
	}
	c.inLen = copy(c.in[:], rest) // rest may lie in c.in itself
}

func (c *stream) releaseIn() {
	if c.in != nil {
		inPool.Put(c.in)
		c.in, c.inLen = nil, 0
	}
}

// What answering a request leaves the stream to do.
type verdict int

const (
	keepServing verdict = iota // the reply is in sc.out; read the next request
	lastReply                  // the reply in sc.out is the last; then close
	stop                       // nothing more: the connection ended, or is a WebSocket's now
	fullScrape                 // a full scrape admitted, in sc.full: the stream answers it
)

// answer composes in sc.out the reply to one request, raw, which more
// bytes follow if more.
func (c *stream) answer(sc *conn, raw []byte, more bool) verdict {
	var r request
	if !parseRequest(raw, &r, c.s.opts.RealIPHeader) {
		c.s.rejectReply(sc, c.counters, c.peer, 400, "Bad Request", "malformed HTTP request")
		return lastReply
	}
	if r.hasBody { // trackers take no bodies; reading past one is not worth it
		c.s.rejectReply(sc, c.counters, c.peer, 400, "Bad Request", "request bodies are not accepted")
		return lastReply
	}
	r.peer = c.peer
	if c.s.wantsUpgrade(&r) {
		return c.upgrade(sc, raw, &r, more)
	}
	if c.served++; c.served == c.s.opts.MaxRequests {
		r.keepAlive = false // this reply says Connection: close
	}
	c.s.handle(sc, c.counters, &r)
	if sc.full.builder != nil {
		return fullScrape
	}
	if !r.keepAlive || c.s.closing.Load() {
		return lastReply
	}
	return keepServing
}
