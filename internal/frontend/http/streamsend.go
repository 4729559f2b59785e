package http

import (
	"time"

	"github.com/trakx/trakx/internal/frontend/engine"
	"golang.org/x/sys/unix"
)

// A stream's way out: its replies go out in one write when the socket
// takes them, and are kept, with reads paused, when it does not; after its
// last reply it closes gracefully.

// send writes the replies composed, and keeps what the socket does not
// take; the stream then waits for the socket rather than for requests.
func (c *stream) send(replies []byte) {
	if len(replies) == 0 { // part of a request came: its clock runs on
		c.waitingSince.CompareAndSwap(0, c.loop.Now().UnixNano())
		return
	}
	n, err := c.s.write(c.fd, replies)
	if err == unix.EAGAIN {
		n, err = 0, nil
	}
	if err != nil {
		c.end()
		return
	}
	if n == len(replies) {
		c.waitForRequest()
		return
	}
	c.out = append(c.out[:0:0], replies[n:]...) // owing them, it is not idle
	c.waitingSince.Store(0)
	c.writingSince.Store(c.loop.Now().UnixNano())
	if c.loop.Watch(c, unix.EPOLLOUT) != nil {
		c.end()
	}
}

// waitForRequest starts the read timeout's clock for the next request,
// once the replies to the last ones are out: the next may have begun to
// arrive with them (a pipelining client always has one on the way), but
// its time counts from now. With nothing of it kept, and more to come,
// the stream is idle from now, and may be evicted: only now that it owes
// nothing, lest an eviction end it or answer 503 with replies unsent.
func (c *stream) waitForRequest() {
	now := c.loop.Now().UnixNano()
	c.waitingSince.Store(now)
	if c.in == nil && !c.ending {
		c.idleSince.CompareAndSwap(0, now) // an eviction already made stays
	}
}

// flush sends what the stream owes; false if it ended. Once all is out, it
// reads again, or, if that was its last reply, closes.
func (c *stream) flush() bool {
	n, err := c.s.write(c.fd, c.out)
	if err == unix.EAGAIN {
		return true
	}
	if err != nil {
		c.end()
		return false
	}
	if c.out = c.out[n:]; len(c.out) > 0 {
		return true
	}
	c.out = nil
	c.writingSince.Store(0)
	if c.loop.Watch(c, engine.ReadEvents) != nil {
		c.end()
		return false
	}
	if c.ending || c.s.closing.Load() { // it reads again, to discard
		c.closeGracefully()
		return false
	}
	c.waitForRequest()
	if c.in != nil { // requests that came with the last ones wait no more
		c.serve(c.in[:c.inLen])
	}
	return true
}

// finish sends the stream's last reply and closes it gracefully.
func (c *stream) finish(reply []byte) {
	c.ending = true
	c.releaseIn()
	c.send(reply)
	if len(c.out) > 0 || c.shut {
		return // flush closes it once the reply is out
	}
	c.closeGracefully()
}

// closeGracefully ends a connection that has answered (see linger.go): it
// sends the end of stream after its replies, and discards what the client
// still sends until it may close. Every end after a reply is graceful,
// not only one with a request's bytes unread: a pipelining client may
// send again at any moment, even when nothing more had come when the last
// reply went, and a closed socket answers what comes with a reset, which
// destroys the replies the client has not read yet (at the request limit,
// at an eviction, at shutdown).
func (c *stream) closeGracefully() {
	c.closing = true
	c.waitingSince.Store(0)
	unix.Shutdown(c.fd, unix.SHUT_WR)
	c.loop.Linger(c, c.loop.Now().Add(lingerTime))
}

// end closes the stream at once: the loop closes its descriptor after the
// batch of events it is in.
func (c *stream) end() {
	if !c.shut {
		c.shut = true
		c.loop.Linger(c, time.Time{})
	}
}
