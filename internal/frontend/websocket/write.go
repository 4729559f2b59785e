package websocket

import (
	"sync"

	"github.com/gobwas/ws"
	"github.com/trakx/trakx/internal/frontend/engine"
	"golang.org/x/sys/unix"
)

// Writing: any goroutine may write to a connection (a relay writes to
// another peer's), never blocking, under the connection's write lock, and
// only while the connection is not shut.

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// write sends one whole frame without blocking: what the socket does not
// take now is kept and sent when it can (EPOLLOUT). A connection that owes
// more than maxUnsent is not reading, and is shut. Nothing is sent after
// a close frame.
func (c *conn) write(op ws.OpCode, payload []byte) bool {
	bp := framePool.Get().(*[]byte)
	defer framePool.Put(bp)
	frame := appendFrame((*bp)[:0], op, payload)
	*bp = frame
	c.wmu.Lock()
	if c.isClosing() {
		c.wmu.Unlock()
		return false
	}
	ok := c.sendLocked(frame)
	c.wmu.Unlock()
	if !ok {
		c.shut()
	}
	return ok
}

// sendLocked writes frame, or keeps what the socket does not take, under
// wmu, on a connection not shut; false if the connection must be shut (it
// owes too much, or the socket failed).
func (c *conn) sendLocked(frame []byte) bool {
	if c.fd < 0 {
		return c.queueNet(frame)
	}
	if len(c.out) > 0 {
		if len(c.out)+len(frame) > maxUnsent {
			return false
		}
		c.out = append(c.out, frame...)
		return true
	}
	n, err := engine.Write(c.fd, frame)
	if err == unix.EAGAIN {
		n, err = 0, nil
	}
	if err == nil && n < len(frame) {
		c.out = append(c.out, frame[n:]...)
		err = c.loop.Watch(c, engine.ReadEvents|unix.EPOLLOUT)
	}
	return err == nil
}

// writable sends what was kept back, now that the socket takes more; once
// a close frame is all out, the sending side is shut (FIN).
func (c *conn) writable() {
	c.wmu.Lock()
	if c.isShut() || len(c.out) == 0 {
		c.wmu.Unlock()
		return
	}
	n, err := engine.Write(c.fd, c.out)
	if err == unix.EAGAIN {
		n, err = 0, nil
	}
	if err == nil {
		c.out = c.out[n:]
		if len(c.out) == 0 {
			c.out = nil
			err = c.loop.Watch(c, engine.ReadEvents)
			if c.isClosing() {
				unix.Shutdown(c.fd, unix.SHUT_WR)
			}
		}
	}
	c.wmu.Unlock()
	if err != nil {
		c.shut()
	}
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

// headerWriter is the io.Writer ws.WriteHeader needs, appending to a
// buffer on the stack.
type headerWriter struct{ buf []byte }

// Write appends p.
func (w *headerWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// send writes one text message.
func (c *conn) send(msg []byte) bool { return c.write(ws.OpText, msg) }
