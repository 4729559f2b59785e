package websocket

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/trakx/trakx/internal/bittorrent"
	"golang.org/x/sys/unix"
)

// conn is one WebSocket connection, after its handshake: a non-blocking
// socket in one of the server's polling loops. An idle one costs this
// struct and its place in the loop's map: no goroutine, no buffer.
type conn struct {
	s      *Server
	loop   *loop
	fd     int
	client netip.Addr
	seen   atomic.Int64 // unix seconds of the last frame received
	// partialSince is when a frame began to arrive and is not whole yet
	// (unix seconds), or 0: a client trickling one is cut off.
	partialSince atomic.Int64

	wmu      sync.Mutex // guards closed and out, and serializes writes
	closed   bool
	shutDown atomic.Bool // closed, for readers without the lock
	out      []byte      // what the socket has not taken yet

	// The loop's alone: bytes of a frame not yet whole, and the parts of
	// a fragmented message so far.
	in, message []byte
	picked      []*conn

	mu sync.Mutex
	// joined are the swarms its peers are in, to be left when it closes.
	// Several clients may share one connection (WebTorrent pools its
	// sockets per tracker URL), each with its own peer id.
	joined []membership
}

type membership struct {
	infoHash bittorrent.InfoHash
	peerID   bittorrent.PeerID
}

// maxUnsent bounds what a connection that does not read may owe: past it,
// the connection is closed.
const maxUnsent = 256 << 10

// readable reads what the socket has and handles every whole frame in it;
// the rest waits for more.
func (c *conn) readable() {
	buf := c.loop.buf
	n, err := unix.Read(c.fd, buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if n <= 0 {
		c.shut() // end of stream, reset
		return
	}
	data := buf[:n]
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	used, ok := c.frames(data)
	if !ok {
		return
	}
	rest := data[used:]
	switch {
	case len(rest) == 0:
		c.in = nil
		c.partialSince.Store(0)
	case len(rest) > c.s.opts.MaxMessageBytes+ws.MaxHeaderSize:
		c.fail(ws.StatusMessageTooBig, "message too big")
	default:
		if len(c.in) == 0 {
			c.partialSince.Store(time.Now().Unix())
		}
		c.in = append(c.in[:0:0], rest...)
	}
}

// frames handles the whole frames at the start of data and reports how
// many bytes they took; false if the connection was closed.
func (c *conn) frames(data []byte) (int, bool) {
	used := 0
	for {
		h, headerLen, ok := parseHeader(data[used:])
		if !ok {
			return used, true
		}
		state := ws.StateServerSide
		if c.message != nil {
			state = state.Set(ws.StateFragmented)
		}
		if err := ws.CheckHeader(h, state); err != nil {
			c.fail(ws.StatusProtocolError, err.Error())
			return 0, false
		}
		if h.Length > int64(c.s.opts.MaxMessageBytes-len(c.message)) {
			c.fail(ws.StatusMessageTooBig, "message too big")
			return 0, false
		}
		end := used + headerLen + int(h.Length)
		if end > len(data) {
			return used, true // the payload is not all in yet
		}
		payload := data[used+headerLen : end]
		used = end
		ws.Cipher(payload, h.Mask, 0)
		c.seen.Store(time.Now().Unix())
		if !c.frame(h, payload) {
			return 0, false
		}
	}
}

// parseHeader reads a frame header at the start of b, if it is all there
// (RFC 6455 section 5.2), and its length.
func parseHeader(b []byte) (ws.Header, int, bool) {
	if len(b) < 2 {
		return ws.Header{}, 0, false
	}
	h := ws.Header{Fin: b[0]&0x80 != 0, Rsv: (b[0] & 0x70) >> 4, OpCode: ws.OpCode(b[0] & 0x0f), Masked: b[1]&0x80 != 0}
	size := 2
	switch n := b[1] & 0x7f; n {
	case 126:
		if len(b) < 4 {
			return h, 0, false
		}
		h.Length, size = int64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return h, 0, false
		}
		h.Length, size = int64(binary.BigEndian.Uint64(b[2:])), 10
		if h.Length < 0 {
			h.Length = 1 << 62 // refused by the length check
		}
	default:
		h.Length = int64(n)
	}
	if h.Masked {
		if len(b) < size+4 {
			return h, 0, false
		}
		copy(h.Mask[:], b[size:size+4])
		size += 4
	}
	return h, size, true
}

// frame acts on one frame; false if the connection was closed.
func (c *conn) frame(h ws.Header, payload []byte) bool {
	switch h.OpCode {
	case ws.OpPing:
		c.write(ws.OpPong, payload)
	case ws.OpPong:
	case ws.OpClose:
		code, _ := ws.ParseCloseFrameData(payload)
		c.close(code, "")
		return false
	case ws.OpBinary:
		c.fail(ws.StatusUnsupportedData, "binary messages are not part of the protocol")
		return false
	case ws.OpText, ws.OpContinuation:
		if (h.OpCode == ws.OpText) != (c.message == nil) {
			c.fail(ws.StatusProtocolError, "unexpected continuation")
			return false
		}
		if !h.Fin || c.message != nil {
			c.message = append(c.message, payload...)
			if c.message == nil {
				c.message = []byte{} // an empty first fragment still starts a message
			}
			if !h.Fin {
				return true
			}
			payload, c.message = c.message, nil
		}
		c.s.handle(c, payload)
	}
	return !c.shutDown.Load()
}

// fail closes the connection for a protocol error of the client's.
func (c *conn) fail(code ws.StatusCode, reason string) {
	c.s.counters.BadRequest.Add(1)
	c.close(code, reason)
}

// close sends a close frame and closes the connection.
func (c *conn) close(code ws.StatusCode, reason string) {
	if code == 0 {
		code = ws.StatusNormalClosure
	}
	c.write(ws.OpClose, ws.NewCloseFrameBody(code, reason))
	c.shut()
}

// shut closes the socket, once, from any goroutine, and takes the
// connection's peers out of their swarms.
func (c *conn) shut() {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return
	}
	c.closed = true
	c.shutDown.Store(true)
	c.out = nil
	c.loop.remove(c) // before the descriptor can be reused
	unix.Close(c.fd)
	c.wmu.Unlock()
	c.s.closed(c)
}

func (c *conn) isIn(m membership) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.joined {
		if c.joined[i] == m {
			return true
		}
	}
	return false
}

// remember notes the swarms the connection's peers are in, for its close.
func (c *conn) remember(m membership, left bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.joined {
		if c.joined[i] == m {
			if left {
				c.joined[i] = c.joined[len(c.joined)-1]
				c.joined = c.joined[:len(c.joined)-1]
			}
			return
		}
	}
	if !left {
		c.joined = append(c.joined, m)
	}
}

func (c *conn) memberships() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.joined)
}
