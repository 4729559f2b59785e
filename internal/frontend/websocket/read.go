package websocket

import (
	"encoding/binary"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/trakx/trakx/internal/frontend/engine"
	"golang.org/x/sys/unix"
)

// Reading: only a connection's loop reads it (RFC 6455 section 5).

// readable reads what the socket has and handles every whole frame in it;
// the rest waits for more. The loop calls it only while the descriptor is
// open, which the loop alone can change.
func (c *conn) readable(buf []byte) {
	n, err := engine.Read(c.fd, buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if n <= 0 {
		c.shut() // end of stream, reset
		return
	}
	c.received(buf[:n])
}

// received handles every whole frame in what was read, data, after what
// was kept of the last read; the rest waits for more. Only the
// connection's reader calls it: its loop, or readNet.
func (c *conn) received(data []byte) {
	if c.unframed {
		return // what follows a broken frame cannot be read as frames
	}
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	used, ok := c.frames(data)
	if !ok {
		c.in = nil
		return
	}
	rest := data[used:]
	if len(rest) > c.s.opts.MaxMessageBytes+ws.MaxHeaderSize {
		c.broken(ws.StatusMessageTooBig, "message too big")
		return
	}
	c.notePartial(len(rest) > 0, used > 0 || len(c.in) == 0)
	if len(rest) == 0 {
		c.in = nil
	} else {
		c.in = append(c.in[:0:0], rest...)
	}
}

// frames handles the whole frames at the start of data and reports how
// many bytes they took; false if the connection began to close.
func (c *conn) frames(data []byte) (int, bool) {
	used := 0
	for {
		h, headerLen, status := parseHeader(data[used:])
		switch status {
		case headerIncomplete:
			return used, true
		case headerBadLength:
			c.broken(ws.StatusProtocolError, "frame length with its most significant bit set")
			return 0, false
		}
		state := ws.StateServerSide
		if c.message != nil {
			state = state.Set(ws.StateFragmented)
		}
		if err := ws.CheckHeader(h, state); err != nil {
			c.broken(ws.StatusProtocolError, err.Error())
			return 0, false
		}
		// Control frames, at most 125 bytes (CheckHeader), are not part of
		// the message they may interrupt (section 5.4).
		if !h.OpCode.IsControl() && h.Length > int64(c.s.opts.MaxMessageBytes-len(c.message)) {
			c.broken(ws.StatusMessageTooBig, "message too big")
			return 0, false
		}
		end := used + headerLen + int(h.Length)
		if end > len(data) {
			return used, true // the payload is not all in yet
		}
		payload := data[used+headerLen : end]
		used = end
		ws.Cipher(payload, h.Mask, 0)
		c.seen.Store(time.Now().UnixMilli())
		if !c.frame(h, payload) {
			return 0, false
		}
	}
}

// broken fails the connection for a frame it will not read to its end:
// from then on its bytes are not frames, and are read only to see the end
// of stream. A closing connection that sends one is not counted again.
func (c *conn) broken(code ws.StatusCode, reason string) {
	c.unframed = true
	if !c.isClosing() {
		c.fail(code, reason)
	}
}

// notePartial keeps partialSince, when the client began what it has not
// finished: the open fragmented message if there is one (text sets it when
// the message begins), else the frame left partial (fresh: it began in
// this read), else nothing. A client must finish either within
// http.read_timeout; frames that complete on the way do not restart a
// message's clock, but a new frame's starts afresh.
func (c *conn) notePartial(partial, fresh bool) {
	switch {
	case c.message != nil:
	case !partial:
		c.partialSince.Store(0)
	case fresh || c.partialSince.Load() == 0:
		c.partialSince.Store(time.Now().Unix())
	}
}

type headerStatus int

const (
	headerComplete   headerStatus = iota
	headerIncomplete              // more bytes are needed
	headerBadLength               // a 64-bit length with its top bit set
)

// parseHeader reads a frame header at the start of b, if it is all there
// (RFC 6455 section 5.2), and its length.
func parseHeader(b []byte) (ws.Header, int, headerStatus) {
	if len(b) < 2 {
		return ws.Header{}, 0, headerIncomplete
	}
	h := ws.Header{Fin: b[0]&0x80 != 0, Rsv: (b[0] & 0x70) >> 4, OpCode: ws.OpCode(b[0] & 0x0f), Masked: b[1]&0x80 != 0}
	size := 2
	switch n := b[1] & 0x7f; n {
	case 126:
		if len(b) < 4 {
			return h, 0, headerIncomplete
		}
		h.Length, size = int64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return h, 0, headerIncomplete
		}
		if b[2]&0x80 != 0 {
			return h, 0, headerBadLength
		}
		h.Length, size = int64(binary.BigEndian.Uint64(b[2:])), 10
	default:
		h.Length = int64(n)
	}
	if h.Masked {
		if len(b) < size+4 {
			return h, 0, headerIncomplete
		}
		copy(h.Mask[:], b[size:size+4])
		size += 4
	}
	return h, size, headerComplete
}

// frame acts on one frame; false if the connection began to close or was
// shut. A closing connection heeds nothing but the peer's close frame.
func (c *conn) frame(h ws.Header, payload []byte) bool {
	if c.isClosing() {
		if h.OpCode == ws.OpClose {
			c.shut() // the peer answered: the handshake is over
			return false
		}
		return true
	}
	switch h.OpCode {
	case ws.OpPing:
		c.write(ws.OpPong, payload)
	case ws.OpPong:
	case ws.OpClose:
		c.peerClosed(payload)
		return false
	case ws.OpBinary:
		c.fail(ws.StatusUnsupportedData, "binary messages are not part of the protocol")
		return false
	case ws.OpText, ws.OpContinuation:
		return c.text(h, payload)
	}
	return !c.isClosing()
}

// text gathers a text message's fragments and handles it whole, once it is
// known to be UTF-8 (RFC 6455 section 8.1): nothing else is ever relayed.
func (c *conn) text(h ws.Header, payload []byte) bool {
	if !h.Fin || c.message != nil {
		if c.message == nil { // the message's clock starts
			c.partialSince.Store(time.Now().Unix())
		}
		c.message = append(c.message, payload...)
		if c.message == nil {
			c.message = []byte{} // an empty first fragment still starts a message
		}
		if !h.Fin {
			return true
		}
		payload, c.message = c.message, nil
		c.partialSince.Store(0)
	}
	if !utf8.Valid(payload) {
		c.fail(ws.StatusInvalidFramePayloadData, "text message is not UTF-8")
		return false
	}
	c.s.handle(c, payload)
	return !c.isClosing()
}

// peerClosed answers the peer's close frame with the tracker's (section
// 5.5.1), then ends the connection, the server's side closing first.
func (c *conn) peerClosed(payload []byte) {
	code, valid := closeReply(payload)
	if !valid {
		c.fail(code, "invalid close frame")
		return
	}
	c.close(code, "")
	c.wmu.Lock()
	sent := len(c.out) == 0 && c.fd >= 0 // a net.Conn's writer may be sending it
	c.wmu.Unlock()
	if sent {
		c.shut()
	} // else the loop sends the rest, then waits for the peer's end
}

// closeReply is the code to answer a close frame's body with: its own code
// if it is one an endpoint may send (RFC 6455 section 7.4), 1000 if it has
// none; otherwise 1002, or 1007 for a reason that is not UTF-8, and false.
func closeReply(body []byte) (ws.StatusCode, bool) {
	switch {
	case len(body) == 0:
		return ws.StatusNormalClosure, true
	case len(body) == 1:
		return ws.StatusProtocolError, false
	}
	code := ws.StatusCode(binary.BigEndian.Uint16(body))
	if !sendableCloseCode(code) {
		return ws.StatusProtocolError, false
	}
	if !utf8.Valid(body[2:]) {
		return ws.StatusInvalidFramePayloadData, false
	}
	return code, true
}

// sendableCloseCode reports whether an endpoint may put code in a close
// frame: the codes RFC 6455 and the IANA registry define for use on the
// wire (1000-1003, 1007-1014), and those for applications (3000-4999).
// 1004 is reserved, and 1005, 1006 and 1015 stand for the absence of a
// close frame: they must never be sent.
func sendableCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}
