package websocket

import (
	"io"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// serve reads frames until the connection ends. Text messages go to the
// handler, whole (fragments joined, within websocket.max_message_bytes);
// pings are answered, pongs keep the connection alive; anything else ends
// the connection with the close code that says why.
func (c *conn) serve() {
	var message []byte // a fragmented message's parts so far
	var header [ws.MaxHeaderSize - 2]byte
	for {
		h, err := ws.ReadHeaderBuffer(c.nc, header[:])
		if err != nil {
			c.closeAfterRead(err)
			return
		}
		c.seen.Store(time.Now().Unix())
		state := ws.StateServerSide
		if message != nil {
			state = state.Set(ws.StateFragmented)
		}
		if err := ws.CheckHeader(h, state); err != nil {
			c.fail(ws.StatusProtocolError, err.Error())
			return
		}
		if h.Length > int64(c.s.opts.MaxMessageBytes-len(message)) {
			c.fail(ws.StatusMessageTooBig, "message too big")
			return
		}
		payload, ok := c.readPayload(h)
		if !ok {
			return
		}
		switch h.OpCode {
		case ws.OpPing:
			c.write(ws.OpPong, payload)
		case ws.OpPong:
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(payload)
			c.close(code, "")
			return
		case ws.OpBinary:
			c.fail(ws.StatusUnsupportedData, "binary messages are not part of the protocol")
			return
		case ws.OpText, ws.OpContinuation:
			if (h.OpCode == ws.OpText) != (message == nil) {
				c.fail(ws.StatusProtocolError, "unexpected continuation")
				return
			}
			if message = append(message, payload...); message == nil {
				message = []byte{} // an empty first fragment still starts a message
			}
			if h.Fin {
				c.s.handle(c, message)
				message = nil
			}
		}
	}
}

// readPayload reads and unmasks a frame's payload, within the read
// timeout: a client that announces a frame and trickles it is cut off.
func (c *conn) readPayload(h ws.Header) ([]byte, bool) {
	if h.Length == 0 {
		return nil, true
	}
	payload := make([]byte, h.Length)
	c.nc.SetReadDeadline(time.Now().Add(c.s.opts.ReadTimeout))
	_, err := io.ReadFull(c.nc, payload)
	c.nc.SetReadDeadline(time.Time{})
	if err != nil {
		c.closeAfterRead(err)
		return nil, false
	}
	ws.Cipher(payload, h.Mask, 0)
	return payload, true
}

// closeAfterRead ends a connection whose read failed: gone, reset, cut off
// by a timeout, or woken by shutdown.
func (c *conn) closeAfterRead(error) { c.nc.Close() }

// fail closes the connection for a protocol error of the client's.
func (c *conn) fail(code ws.StatusCode, reason string) {
	c.s.counters.BadRequest.Add(1)
	c.close(code, reason)
}

// close sends a close frame, once, and closes the connection.
func (c *conn) close(code ws.StatusCode, reason string) {
	if c.closed.Swap(true) {
		return
	}
	if code == 0 {
		code = ws.StatusNormalClosure
	}
	c.write(ws.OpClose, ws.NewCloseFrameBody(code, reason))
	c.nc.Close()
}

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// write sends one whole frame, header and payload in one write, within the
// write timeout. A connection that cannot take it is closed: it is dead or
// not reading.
func (c *conn) write(op ws.OpCode, payload []byte) bool {
	bp := framePool.Get().(*[]byte)
	defer framePool.Put(bp)
	frame := appendFrame((*bp)[:0], op, payload)
	*bp = frame
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	if _, err := c.nc.Write(frame); err != nil {
		c.nc.Close()
		return false
	}
	return true
}

// appendFrame appends an unmasked final frame, as a server sends them.
func appendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(payload))}
	var head [ws.MaxHeaderSize]byte
	w := headerWriter{buf: head[:0]}
	ws.WriteHeader(&w, h)
	dst = append(dst, w.buf...)
	return append(dst, payload...)
}

type headerWriter struct{ buf []byte }

func (w *headerWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}
